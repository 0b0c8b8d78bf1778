package explain_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/backprop-dev/backprop/autograd"
	"github.com/backprop-dev/backprop/explain"
	"github.com/backprop-dev/backprop/ops"
	"github.com/backprop-dev/backprop/tensor"
)

type V = autograd.Var[float64]

func names(g *explain.Graph[float64], vs []*V) []string {
	var out []string
	for _, v := range vs {
		out = append(out, g.Name(v))
	}
	return out
}

// TestGraph reads J = Σ(h + h), h = ReLU(w x + b): the t<n> name of the
// anonymous product, its gradient aliased to u through the bias addition,
// h consumed once by s although s takes it twice, the parameters each node
// depends on, and the backward order (each parameter after its earliest
// consumer).
func TestGraph(t *testing.T) {
	must := func(v *V, err error) *V {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	w := autograd.Leaf("w", must2(tensor.FromSlice([]float64{1, -2, 0.5, 1}, 2, 2)), true)
	b := autograd.Leaf("b", must2(tensor.FromSlice([]float64{0.1, 0.2}, 2)), true)
	x := autograd.Leaf("x", must2(tensor.FromSlice([]float64{1, 2}, 2)), false)
	m := must(ops.MatMul("", w, x, false, false))
	u := must(ops.BiasAdd("u", m, b, 0))
	h := must(ops.ReLU("h", u))
	s := must(ops.Add("s", h, h))
	j := must(ops.Sum("J", s))
	if err := autograd.Backward(j); err != nil {
		t.Fatal(err)
	}
	nodes := []*V{w, b, x, m, u, h, s, j}
	g, err := explain.New(nodes)
	if err != nil {
		t.Fatal(err)
	}
	if g.Name(m) != "t4" || g.Node("t4") != m || g.Name(u) != "u" {
		t.Errorf("names %s, %s", g.Name(m), g.Name(u))
	}
	if !g.Aliased(m) || g.GradNode(m) != u || g.Aliased(u) || g.GradNode(h) != h {
		t.Errorf("aliases: m→%s, u aliased %v", g.Name(g.GradNode(m)), g.Aliased(u))
	}
	if got := names(g, g.Consumers(h)); !slices.Equal(got, []string{"s"}) {
		t.Errorf("consumers of h %v, want [s]", got)
	}
	if got := names(g, g.GradConsumers(w)); !slices.Equal(got, []string{"t4"}) {
		t.Errorf("gradient consumers of w %v", got)
	}
	if got := g.DependsOn(h); !slices.Equal(got, []string{"w", "b"}) {
		t.Errorf("h depends on %v, want [w b]", got)
	}
	if got := names(g, g.Computed()); !slices.Equal(got, []string{"t4", "u", "h", "s", "J"}) {
		t.Errorf("computed %v", got)
	}
	if got := names(g, g.BackwardOrder()); !slices.Equal(got, []string{"s", "h", "u", "b", "w"}) {
		t.Errorf("backward order %v, want [s h u b w]", got)
	}
}

type opaque struct{ autograd.Op[float64] }

func (opaque) Name() string { return "opaque" }

// TestNotExplained: an op without Explainer methods is refused, naming the
// op and the node.
func TestNotExplained(t *testing.T) {
	x := autograd.Leaf("x", tensor.Scalar(1.0), true)
	y := &V{Name: "y", Value: tensor.Scalar(1.0), Op: opaque{}, Inputs: []*V{x}}
	_, err := explain.New([]*V{x, y})
	var ne *explain.NotExplainedError
	if !errors.As(err, &ne) || ne.Op != "opaque" || ne.Node != "y" {
		t.Fatalf("err = %v", err)
	}
}

func must2(t *tensor.Tensor[float64], err error) *tensor.Tensor[float64] {
	if err != nil {
		panic(err)
	}
	return t
}
