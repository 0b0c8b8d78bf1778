package gradcheck

import (
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/backprop-dev/backprop/autograd"
	"github.com/backprop-dev/backprop/tensor"
)

// square is y = x² with a backward that can be made wrong on purpose.
type square struct{ factor float64 }

func (square) Name() string { return "square" }
func (square) Forward(in []*tensor.Tensor[float64]) (*tensor.Tensor[float64], error) {
	out := in[0].Clone()
	for i, v := range out.Data() {
		out.Data()[i] = v * v
	}
	return out, nil
}
func (s square) Backward(in []*tensor.Tensor[float64], out, g *tensor.Tensor[float64], need []bool) []*tensor.Tensor[float64] {
	d := g.Clone()
	for i := range d.Data() {
		d.Data()[i] *= s.factor * in[0].Data()[i]
	}
	return []*tensor.Tensor[float64]{d}
}

func TestCheckAcceptsRightAndRejectsWrong(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	x := Random(r, 3, 4)
	for _, c := range []struct {
		factor float64
		ok     bool
	}{{2, true}, {2.001, false}, {1, false}} {
		f := func(in []*autograd.Var[float64]) (*autograd.Var[float64], error) {
			return autograd.Apply("y", autograd.Op[float64](square{c.factor}), in[0])
		}
		res, err := Check(f, []*tensor.Tensor[float64]{x}, Options{}, r)
		if (err == nil) != c.ok {
			t.Fatalf("factor %g: err = %v, max rel err %v", c.factor, err, res.MaxRelErr)
		}
		if !c.ok && !strings.Contains(err.Error(), "finite difference") {
			t.Fatalf("unhelpful error %v", err)
		}
	}
}

func TestGradientsAccumulateWhenAValueIsUsedTwice(t *testing.T) {
	// y = x² + x² through two separate nodes reading the same leaf
	x := autograd.Leaf("x", tensor.MustFromSlice([]float64{3}, 1), true)
	a, _ := autograd.Apply("a", autograd.Op[float64](square{2}), x)
	b, _ := autograd.Apply("b", autograd.Op[float64](square{2}), x)
	seed := tensor.MustFromSlice([]float64{1}, 1)
	if err := autograd.BackwardFrom(a, seed); err != nil {
		t.Fatal(err)
	}
	if err := autograd.BackwardFrom(b, seed); err != nil {
		t.Fatal(err)
	}
	if got := x.Grad.Data()[0]; got != 12 {
		t.Fatalf("dx = %g, want 12 (6 from each use)", got)
	}
	autograd.ZeroGrad(x)
	if x.Grad.Data()[0] != 0 {
		t.Fatal("ZeroGrad left a gradient")
	}
}
