package ops

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"strings"
	"testing"

	"github.com/backprop-dev/backprop/autograd"
	"github.com/backprop-dev/backprop/explain"
	"github.com/backprop-dev/backprop/expr"
	"github.com/backprop-dev/backprop/gradcheck"
	"github.com/backprop-dev/backprop/internal/ruleeval"
	"github.com/backprop-dev/backprop/tensor"
)

// The ops of recurrent networks and attention: Slice (LSTM gates, attention
// heads), Embedding (token lookup), CausalMask (masked attention scores) and
// the exact GELU (a transformer's MLP).

func TestSliceGrad(t *testing.T) {
	r := rng(201)
	for _, c := range []struct {
		shape             []int
		axis, start, stop int
	}{
		{[]int{8}, 0, 2, 5},
		{[]int{8}, -1, 0, 8},
		{[]int{3, 12}, -1, 6, 9},   // one LSTM gate of a batch of 3, H = 3
		{[]int{5, 4}, 0, 1, 4},     // rows
		{[]int{4, 6}, 1, 5, 6},     // one column
		{[]int{2, 3, 8}, 2, 4, 8},  // an attention head's columns, batch 2
		{[]int{2, 5, 3}, -2, 0, 2}, // the middle axis
		{[]int{2, 3, 4, 4}, 1, 1, 2},
		{[]int{1, 6}, 1, 2, 4},
	} {
		f := func(in []*V) (*V, error) { return Slice("y", in[0], c.axis, c.start, c.stop) }
		runAll(t, f, r, nil, all1, gradcheck.Random(r, c.shape...))
	}
}

func TestEmbeddingGrad(t *testing.T) {
	r := rng(202)
	for _, c := range []struct {
		v, d int
		ids  []int
	}{
		{5, 3, []int{1, 4, 1, 0, 1}}, // token 1 three times: its row's gradient is a sum of three
		{4, 6, []int{3}},
		{3, 2, []int{2, 1, 0}},
		{6, 1, []int{5, 5, 2}},
		{1, 4, []int{0, 0}},
	} {
		f := func(in []*V) (*V, error) { return Embedding("y", in[0], c.ids) }
		runAll(t, f, r, nil, all1, gradcheck.Random(r, c.v, c.d))
	}
	// the rows of W no id uses get exactly 0, a repeated token the sum
	w := autograd.Leaf("W", gradcheck.Random(r, 4, 2), true)
	y, err := Embedding("E", w, []int{2, 0, 2})
	if err != nil {
		t.Fatal(err)
	}
	g := tensor.MustFromSlice([]float64{1, 2, 10, 20, 100, 200}, 3, 2)
	if err := autograd.BackwardFrom(y, g); err != nil {
		t.Fatal(err)
	}
	want := []float64{10, 20, 0, 0, 101, 202, 0, 0}
	for k, v := range w.Grad.Data() {
		if v != want[k] {
			t.Fatalf("∂J/∂W = %v, want %v", w.Grad.Data(), want)
		}
	}
}

// TestCausalMaskGrad: the mask's gradient by finite differences through
// the softmax that follows it in attention (a −∞ output has no finite
// difference of its own), with every shape's softmax explained and its
// rules evaluated; then the mask's own formulas, element by element and
// whole, and its rules, with −∞ compared as −∞.
func TestCausalMaskGrad(t *testing.T) {
	r := rng(203)
	for _, s := range [][]int{{1, 1}, {2, 2}, {4, 4}, {3, 5, 5}, {2, 2, 3, 3}} {
		f := func(in []*V) (*V, error) {
			m, err := CausalMask("m", in[0])
			if err != nil {
				return nil, err
			}
			return Softmax("y", m, -1)
		}
		runAll(t, f, r, nil, all1, gradcheck.Random(r, s...))

		x := autograd.Leaf("x1", gradcheck.Random(r, s...), true)
		y, err := CausalMask("y", x)
		if err != nil {
			t.Fatal(err)
		}
		if err := autograd.BackwardFrom(y, gradcheck.Random(r, s...)); err != nil {
			t.Fatal(err)
		}
		n := s[len(s)-1]
		for k, v := range y.Value.Data() {
			i, j := (k/n)%n, k%n
			wantY, wantG := x.Value.Data()[k], y.Grad.Data()[k]
			if j > i {
				wantY, wantG = math.Inf(-1), 0
			}
			if v != wantY || x.Grad.Data()[k] != wantG {
				t.Fatalf("%v element %d (i=%d, j=%d): y = %v, ∂J/∂x = %v; want %v, %v", s, k, i+1, j+1, v, x.Grad.Data()[k], wantY, wantG)
			}
		}
		checkMaskExplain(t, y)
	}
}

// same says a and b are equal, −∞ included, or within 1e-12.
func same(a, b float64) bool {
	return a == b || math.Abs(a-b) <= 1e-12*math.Max(1, math.Abs(b))
}

// checkMaskExplain is checkExplain and checkRules for an output holding
// −∞: each element, whole-tensor formula and rule evaluates to the op's
// value or gradient, −∞ exactly where the op put −∞.
func checkMaskExplain(t *testing.T, out *V) {
	t.Helper()
	op := out.Op.(*CausalMaskOp[float64])
	x := out.Inputs[0]
	num := func(i, m int) expr.Expr { return expr.Num(x.Value.Data()[m]) }
	outv := func(k int) expr.Expr { return expr.Num(out.Value.Data()[k]) }
	g := func(k int) expr.Expr { return expr.Num(out.Grad.Data()[k]) }
	for k, want := range out.Value.Data() {
		if v, err := expr.Eval(op.ForwardElem(k, num)); err != nil || !same(v, want) {
			t.Fatalf("ForwardElem(%d) = %v (%v), the op computed %v", k, v, err, want)
		}
	}
	for m, want := range x.Grad.Data() {
		if v, err := expr.Eval(op.BackwardElem(0, m, num, outv, g)); err != nil || !same(v, want) {
			t.Fatalf("BackwardElem(%d) = %v (%v), the op computed %v", m, v, err, want)
		}
	}
	vals := map[string]*tensor.Tensor[float64]{"x1": x.Value, "y": out.Value, "g": out.Grad}
	env := func(e expr.Expr) (*tensor.Tensor[float64], bool) { v, ok := vals[expr.String(e)]; return v, ok }
	for _, c := range []struct {
		f    expr.Expr
		want *tensor.Tensor[float64]
	}{
		{op.Formula([]expr.Expr{expr.Ref{Name: "x1"}}), out.Value},
		{op.BackwardFormula(0, []expr.Expr{expr.Ref{Name: "x1"}}, expr.Ref{Name: "y"}, expr.Ref{Name: "g"}), x.Grad},
	} {
		got, err := expr.EvalTensor(c.f, env)
		if err != nil || got.Len() != c.want.Len() {
			t.Fatalf("%s does not evaluate to %d elements: %v", expr.String(c.f), c.want.Len(), err)
		}
		for k, w := range c.want.Data() {
			if !same(got.Data()[k], w) {
				t.Fatalf("%s element %d = %v, the op computed %v", expr.String(c.f), k, got.Data()[k], w)
			}
		}
	}
	// the rules, evaluated as ops' other rules are (rules_eval_test.go)
	lhs := explain.IndexNames(out.Value.Shape(), false)
	if lhs == nil {
		return
	}
	env2 := ruleeval.New()
	env2.Values["y"], env2.Values["x1"] = out.Value, x.Value
	env2.Grads["y"], env2.Grads["x1"] = out.Grad, x.Grad
	in := func(i int, at []string) expr.Expr { return expr.Ref{Name: "x1", Sym: at} }
	fr, _ := op.ForwardRule(lhs, in, freshSet{}.fresh)
	br, _ := op.BackwardRule(0, lhs, in, func(at []string) expr.Expr { return expr.Ref{Name: "y", Sym: at} },
		func(at []string) expr.Expr { return expr.Grad{Of: "J", Wrt: expr.Ref{Name: "y", Sym: at}} }, freshSet{}.fresh)
	for _, c := range []struct {
		rule expr.Expr
		want *tensor.Tensor[float64]
	}{{fr, out.Value}, {br, x.Grad}} {
		for k, w := range c.want.Data() {
			env2.Ints = map[string]int{}
			for a, s := range lhs {
				if s != "1" {
					env2.Ints[s] = tensor.Index(c.want.Shape(), k)[a] + 1
				}
			}
			if v, err := env2.Eval(c.rule); err != nil || !same(v, w) {
				t.Fatalf("rule %s at %v = %v (%v), the op computed %v", expr.String(c.rule), tensor.Index(c.want.Shape(), k), v, err, w)
			}
		}
	}
}

func TestGELUGrad(t *testing.T) {
	r := rng(204)
	for _, s := range [][]int{{7}, {3, 4}, {2, 3, 4, 4}} {
		x := gradcheck.Random(r, s...)
		for k := range x.Data() {
			x.Data()[k] *= 2.5
		}
		run(t, func(in []*V) (*V, error) { return Unary("y", ActGELU, in[0]) }, r, nil, x)
	}
	// the trace's derivative note and symbolic derivative
	op := &UnaryOp[float64]{Fn: ActGELU}
	if got := expr.String(op.deriv(expr.Ref{Name: "x"}, expr.Ref{Name: "y"}, false)); got != "Φ(x) + x·φ(x)" {
		t.Errorf("GELU′ reads %q", got)
	}
	if got := expr.String(op.BackwardFormula(0, []expr.Expr{expr.Ref{Name: "u"}}, expr.Ref{Name: "h"}, expr.Ref{Name: "g"})); got != "g ⊙ (Φ(u) + u ⊙ φ(u))" {
		t.Errorf("GELU's backward formula reads %q", got)
	}
	if n := op.DerivativeNote("u", "h"); !strings.Contains(n, "GELU′(u) = Φ(u) + u·φ(u)") || !strings.Contains(n, "erf") {
		t.Errorf("GELU's note: %q", n)
	}
	if !Activations[ActGELU].Layer {
		t.Error("a layer may not name gelu")
	}
}

// TestSoftmaxJacobianForm: softmax's whole-tensor gradient is the
// Jacobian-vector product (diag(y) − y yᵀ)·g, per line of a tensor, and
// evaluates to the gradient backward computed (checkWholeTensor, through
// runAll in TestSoftmaxGrad, for every axis); its element line keeps
// y_i·(g_i − Σ_j g_j·y_j) and its rule's note names the Jacobian.
func TestSoftmaxJacobianForm(t *testing.T) {
	r := rng(205)
	for _, c := range []struct {
		shape []int
		want  string
	}{
		{[]int{4}, "(diag(a) - a·aᵀ)·g"},
		{[]int{3, 4}, "((diag(a) - a·aᵀ)·g; per row)"},
		{[]int{3, 4}, "((diag(a) - a·aᵀ)·g; along axis 0)"},
	} {
		axis := -1
		if strings.Contains(c.want, "axis 0") {
			axis = 0
		}
		x := autograd.Leaf("s", gradcheck.Random(r, c.shape...), true)
		y, err := Softmax("a", x, axis)
		if err != nil {
			t.Fatal(err)
		}
		if err := autograd.BackwardFrom(y, gradcheck.Random(r, c.shape...)); err != nil {
			t.Fatal(err)
		}
		op := y.Op.(*SoftmaxOp[float64])
		f := op.BackwardFormula(0, []expr.Expr{expr.Ref{Name: "s"}}, expr.Ref{Name: "a"}, expr.Ref{Name: "g"})
		if got := expr.String(f); got != c.want {
			t.Errorf("%v axis %d: %q, want %q", c.shape, axis, got, c.want)
		}
		if tex := f.Render(expr.Style{LaTeX: true}); !strings.Contains(tex, `\operatorname{diag}`) || !strings.Contains(tex, `^{\top}`) {
			t.Errorf("LaTeX %q", tex)
		}
		checkExplain(t, y)
		num := func(i, m int) expr.Expr { return expr.Ref{Name: "s", Index: []int{m}} }
		ref := func(n string) func(k int) expr.Expr {
			return func(k int) expr.Expr { return expr.Ref{Name: n, Index: []int{k}} }
		}
		if got := expr.String(op.BackwardElem(0, 0, num, ref("a"), ref("g"))); !strings.HasPrefix(got, "a[1]·(g[1] - g[1]·a[1] - g[") && !strings.HasPrefix(got, "a[1]·(g[1] - (g[1]·a[1] + ") {
			t.Errorf("element line %q", got)
		}
		_, note := op.BackwardRule(0, explain.IndexNames(c.shape, false), func(i int, at []string) expr.Expr { return expr.Ref{Name: "s", Sym: at} },
			func(at []string) expr.Expr { return expr.Ref{Name: "a", Sym: at} }, func(at []string) expr.Expr { return expr.Ref{Name: "g", Sym: at} }, freshSet{"i": true, "j": true}.fresh)
		if !strings.Contains(note, "(diag(y) − y yᵀ)·g") {
			t.Errorf("rule note %q", note)
		}
	}
}

type seqCase struct {
	Name   string    `json:"name"`
	Op     string    `json:"op"`
	Dtype  string    `json:"dtype"`
	Axis   int       `json:"axis"`
	Start  int       `json:"start"`
	Stop   int       `json:"stop"`
	IDs    []int     `json:"ids"`
	Shape  []int     `json:"shape"`
	X      []float64 `json:"x"`
	Gout   []float64 `json:"gout"`
	Y      []float64 `json:"y"`
	Masked []bool    `json:"masked"`
	GradX  []float64 `json:"grad_x"`
}

// seqRun runs a case in T: the output and x's gradient for the upstream
// gradient gout.
func seqRun[T tensor.Float](c seqCase) (y, gx []float64, err error) {
	x := leafOf[T]("x", c.X, c.Shape...)
	var out *autograd.Var[T]
	switch c.Op {
	case "slice":
		out, err = Slice("y", x, c.Axis, c.Start, c.Stop)
	case "embedding":
		out, err = Embedding("y", x, c.IDs)
	case "causal_mask":
		out, err = CausalMask("y", x)
	case "causal_softmax":
		var m *autograd.Var[T]
		if m, err = CausalMask("m", x); err == nil {
			out, err = Softmax("y", m, -1)
		}
	case "gelu":
		out, err = Unary("y", ActGELU, x)
	default:
		err = fmt.Errorf("unknown op %s", c.Op)
	}
	if err != nil {
		return
	}
	g := leafOf[T]("g", c.Gout, out.Value.Shape()...)
	if err = autograd.BackwardFrom(out, g.Value); err != nil {
		return
	}
	return float64s(out.Value), float64s(x.Grad), nil
}

// TestSeqOpsPyTorch compares Slice, Embedding, CausalMask (alone and
// before a softmax) and GELU with PyTorch (testdata/seq_ops.py): outputs
// and gradients, float64 to 1e-12 and float32 to 1e-5 of each tensor's
// largest magnitude; the mask's −∞ exactly where PyTorch's are.
func TestSeqOpsPyTorch(t *testing.T) {
	b, err := os.ReadFile("testdata/seq_ops.json")
	if err != nil {
		t.Fatal(err)
	}
	var ref struct {
		Cases []seqCase `json:"cases"`
	}
	if err := json.Unmarshal(b, &ref); err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	for _, c := range ref.Cases {
		count[c.Op+" "+c.Dtype]++
		t.Run(c.Name, func(t *testing.T) {
			run, tol := seqRun[float64], 1e-12
			if c.Dtype == "float32" {
				run, tol = seqRun[float32], 1e-5
			}
			y, gx, err := run(c)
			if err != nil {
				t.Fatal(err)
			}
			if c.Masked != nil {
				for k, m := range c.Masked {
					if m != math.IsInf(y[k], -1) {
						t.Fatalf("element %d: output %v, PyTorch masked: %v", k, y[k], m)
					}
					if m {
						y[k] = 0 // as the reference writes it
					}
				}
			}
			for _, p := range []struct {
				what      string
				got, want []float64
			}{{"output", y, c.Y}, {"∂/∂x", gx, c.GradX}} {
				if len(p.got) != len(p.want) {
					t.Fatalf("%s: %d values, PyTorch %d", p.what, len(p.got), len(p.want))
				}
				scale := 1e-3
				for _, v := range p.want {
					scale = math.Max(scale, math.Abs(v))
				}
				for i, v := range p.got {
					if d := math.Abs(v - p.want[i]); !(d <= tol*scale) {
						t.Fatalf("%s[%d] = %.17g, PyTorch %.17g (difference %.3g, largest magnitude %.3g)", p.what, i, v, p.want[i], d, scale)
					}
				}
			}
		})
	}
	for _, op := range []string{"slice", "embedding", "causal_mask", "causal_softmax", "gelu"} {
		if count[op+" float64"] < 2 || count[op+" float32"] < 1 {
			t.Errorf("%s: %d float64 and %d float32 cases", op, count[op+" float64"], count[op+" float32"])
		}
	}
}

// TestSeqOpsFloat32 runs each new op in float32 and float64 on the same
// values and compares outputs and gradients to 1e-5 of the largest
// magnitude.
func TestSeqOpsFloat32(t *testing.T) {
	r := rng(206)
	type pair struct {
		name  string
		shape []int
		f64   func(*V) (*V, error)
		f32   func(*autograd.Var[float32]) (*autograd.Var[float32], error)
	}
	ids := []int{3, 0, 3, 1}
	cases := []pair{
		{"slice", []int{3, 8}, func(x *V) (*V, error) { return Slice("y", x, -1, 2, 6) },
			func(x *autograd.Var[float32]) (*autograd.Var[float32], error) { return Slice("y", x, -1, 2, 6) }},
		{"embedding", []int{5, 3}, func(x *V) (*V, error) { return Embedding("y", x, ids) },
			func(x *autograd.Var[float32]) (*autograd.Var[float32], error) { return Embedding("y", x, ids) }},
		{"causal softmax", []int{2, 4, 4}, func(x *V) (*V, error) {
			m, _ := CausalMask("m", x)
			return Softmax("y", m, -1)
		}, func(x *autograd.Var[float32]) (*autograd.Var[float32], error) {
			m, _ := CausalMask("m", x)
			return Softmax("y", m, -1)
		}},
		{"gelu", []int{4, 6}, func(x *V) (*V, error) { return Unary("y", ActGELU, x) },
			func(x *autograd.Var[float32]) (*autograd.Var[float32], error) { return Unary("y", ActGELU, x) }},
	}
	for _, c := range cases {
		x := gradcheck.Random(r, c.shape...)
		for k := range x.Data() {
			x.Data()[k] = float64(float32(3 * x.Data()[k]))
		}
		x64, x32 := autograd.Leaf("x", x, true), autograd.Leaf("x", tensor.Convert[float32](x), true)
		y64, err := c.f64(x64)
		if err != nil {
			t.Fatal(err)
		}
		y32, err := c.f32(x32)
		if err != nil {
			t.Fatal(err)
		}
		seed := gradcheck.Random(r, y64.Value.Shape()...)
		for k := range seed.Data() {
			seed.Data()[k] = float64(float32(seed.Data()[k]))
		}
		if err := autograd.BackwardFrom(y64, seed); err != nil {
			t.Fatal(err)
		}
		if err := autograd.BackwardFrom(y32, tensor.Convert[float32](seed)); err != nil {
			t.Fatal(err)
		}
		for _, p := range []struct {
			what string
			a    *tensor.Tensor[float64]
			b    *tensor.Tensor[float32]
		}{{"output", y64.Value, y32.Value}, {"gradient", x64.Grad, x32.Grad}} {
			scale := 1e-3
			for _, v := range p.a.Data() {
				scale = math.Max(scale, math.Abs(v))
			}
			for k, v := range p.a.Data() {
				if d := math.Abs(v - float64(p.b.Data()[k])); !(d <= 1e-5*scale) {
					t.Fatalf("%s: %s[%d] float64 %.9g, float32 %.9g", c.name, p.what, k, v, p.b.Data()[k])
				}
			}
		}
	}
	// the mask's −∞ in float32 too
	x := autograd.Leaf("x", tensor.MustFromSlice([]float32{1, 2, 3, 4}, 2, 2), true)
	y, err := CausalMask("m", x)
	if err != nil {
		t.Fatal(err)
	}
	if d := y.Value.Data(); d[0] != 1 || !math.IsInf(float64(d[1]), -1) || d[2] != 3 || d[3] != 4 {
		t.Fatalf("float32 mask %v", d)
	}
}

// TestSeqOpsErrors: operands that do not fit are errors naming the node,
// the tensor, what was expected and what was given.
func TestSeqOpsErrors(t *testing.T) {
	leaf := func(name string, s ...int) *autograd.Var[float32] {
		return autograd.Leaf(name, tensor.New[float32](s...), true)
	}
	q, w := leaf("Q", 3, 8), leaf("W_emb", 5, 4)
	for _, c := range []struct {
		err  func() error
		want []string
	}{
		{func() error { _, err := Slice("q1", q, 2, 0, 4); return err }, []string{"q1: slice: axis 2 does not exist in input Q, whose shape is [3×8]"}},
		{func() error { _, err := Slice("q1", q, -1, 4, 9); return err }, []string{"q1: slice: elements [4, 9) along axis -1 of input Q", "[3×8]", "0 ≤ start < stop ≤ 8"}},
		{func() error { _, err := Slice("q1", q, 1, 3, 3); return err }, []string{"elements [3, 3)"}},
		{func() error { _, err := Slice("q1", q, 0, -1, 2); return err }, []string{"elements [-1, 2) along axis 0"}},
		{func() error { _, err := Embedding("E", w, []int{1, 5}); return err }, []string{"E: embedding: id 5 (position 1) is not a token of the vocabulary of 5 of weight W_emb", "0 ≤ id < 5"}},
		{func() error { _, err := Embedding("E", w, []int{-2}); return err }, []string{"id -2 (position 0)", "vocabulary of 5"}},
		{func() error { _, err := Embedding("E", leaf("W", 5), []int{1}); return err }, []string{"E: embedding: weight W has shape [5], want a (V×d) matrix"}},
		{func() error { _, err := Embedding("E", w, nil); return err }, []string{"no token ids"}},
		{func() error { _, err := CausalMask("S", q); return err }, []string{"S: causal_mask: scores Q has shape [3×8], want its last two axes equal (T×T"}},
		{func() error { _, err := CausalMask("S", leaf("s", 4)); return err }, []string{"causal_mask: scores s has shape [4]"}},
	} {
		err := c.err()
		if err == nil {
			t.Errorf("no error, want %q", c.want)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("error %q, want it to say %q", err, w)
			}
		}
	}
}

// TestSeqOpsRuleText: the rules read as a reader expects them.
func TestSeqOpsRuleText(t *testing.T) {
	r := rng(207)
	text := func(v *V) (fwd, bwd, fnote, bnote string) {
		type ruler interface {
			ForwardRule(out []string, in InputIndex, fresh func(string) string) (expr.Expr, string)
			BackwardRule(i int, idx []string, in InputIndex, out, gout Index, fresh func(string) string) (expr.Expr, string)
		}
		op := v.Op.(ruler)
		in := func(i int, at []string) expr.Expr { return expr.Ref{Name: "x", Sym: at} }
		out := func(at []string) expr.Expr { return expr.Ref{Name: "y", Sym: at} }
		g := func(at []string) expr.Expr { return expr.Grad{Of: "J", Wrt: expr.Ref{Name: "y", Sym: at}} }
		f, fn := op.ForwardRule([]string{"i", "j"}, in, freshSet{"i": true, "j": true}.fresh)
		b, bn := op.BackwardRule(0, []string{"i", "j"}, in, out, g, freshSet{"i": true, "j": true}.fresh)
		return expr.String(f), expr.String(b), fn, bn
	}
	x := autograd.Leaf("x", gradcheck.Random(r, 3, 12), true)
	s, _ := Slice("y", x, 1, 6, 9)
	if f, b, _, bn := text(s); f != "x[i,j+6]" || b != "Σ_k ∂J/∂y[i,k]·1[j = k+6]" || !strings.Contains(bn, "the one term is k = j−6, for 7 ≤ j ≤ 9") {
		t.Errorf("slice rules %q, %q (%s)", f, b, bn)
	}
	e, _ := Embedding("y", x, []int{2, 0, 2})
	if f, b, fn, bn := text(e); f != "Σ_k 1[k = id[i]]·x[k,j]" || b != "Σ_k 1[id[k] = i]·∂J/∂y[k,j]" || !strings.Contains(fn, "id = 3, 1, 3") || !strings.Contains(bn, "sum") {
		t.Errorf("embedding rules %q, %q (%s; %s)", f, b, fn, bn)
	}
	sq := autograd.Leaf("x", gradcheck.Random(r, 3, 3), true)
	m, _ := CausalMask("y", sq)
	if f, b, fn, _ := text(m); f != "x[i,j] + log(1[j <= i])" || b != "∂J/∂y[i,j]·1[j <= i]" || !strings.Contains(fn, "−∞ where j > i") {
		t.Errorf("mask rules %q, %q (%s)", f, b, fn)
	}
	if got := expr.String(m.Op.(*CausalMaskOp[float64]).Formula([]expr.Expr{expr.Ref{Name: "S"}})); got != "S + log(tril(𝟏))" {
		t.Errorf("mask formula %q", got)
	}
	if got := expr.String(e.Op.(*EmbeddingOp[float64]).BackwardFormula(0, []expr.Expr{expr.Ref{Name: "W"}}, expr.Ref{Name: "E"}, expr.Ref{Name: "g"})); got != "onehot(id)ᵀ·g" {
		t.Errorf("embedding gradient formula %q", got)
	}
}
