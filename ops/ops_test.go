package ops

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/backprop-dev/backprop/autograd"
	"github.com/backprop-dev/backprop/explain"
	"github.com/backprop-dev/backprop/expr"
	"github.com/backprop-dev/backprop/gradcheck"
	"github.com/backprop-dev/backprop/tensor"
)

type V = autograd.Var[float64]

func rng(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 7)) }

// checkExplain evaluates the op's element formulas with numbers and
// compares them with the op's own forward values and gradients, so the text
// a student reads is the computation that ran.
func checkExplain(t *testing.T, out *V) {
	t.Helper()
	ex, ok := out.Op.(explain.Explainer)
	if !ok {
		t.Fatalf("%s does not implement Explainer", out.Op.Name())
	}
	num := func(i, m int) expr.Expr { return expr.Num(out.Inputs[i].Value.Data()[m]) }
	for k, want := range out.Value.Data() {
		got, err := expr.Eval(ex.ForwardElem(k, num))
		if err != nil {
			t.Fatal(err)
		}
		if gradcheck.RelErr(got, want) > 1e-12 {
			t.Fatalf("%s ForwardElem(%d) = %g, forward computed %g", out.Op.Name(), k, got, want)
		}
	}
	outv := func(k int) expr.Expr { return expr.Num(out.Value.Data()[k]) }
	g := func(k int) expr.Expr { return expr.Num(out.Grad.Data()[k]) }
	for i, in := range out.Inputs {
		if in.Grad == nil {
			continue
		}
		for m, want := range in.Grad.Data() {
			got, err := expr.Eval(ex.BackwardElem(i, m, num, outv, g))
			if err != nil {
				t.Fatal(err)
			}
			if gradcheck.RelErr(got, want) > 1e-12 {
				t.Fatalf("%s BackwardElem(%d, %d) = %g, backward computed %g", out.Op.Name(), i, m, got, want)
			}
		}
	}
	checkWholeTensor(t, out, ex)
}

// notation lists the whole-tensor formulas that are notation for the reader,
// by op name and formula ("forward" or "∂/∂x<i>"): they name functions or
// statistics (maxpool, softmax, μ_B, a dropout mask) or broadcast a bias
// along an axis, which expr.EvalTensor has no values for. Every other
// formula must evaluate, and every formula that evaluates must match.
var notation = map[string]bool{
	"max_pool2d forward": true, "max_pool2d ∂/∂x1": true,
	"avg_pool2d forward": true, "avg_pool2d ∂/∂x1": true,
	"batch_norm forward": true, "batch_norm ∂/∂x1": true, "batch_norm ∂/∂x2": true, "batch_norm ∂/∂x3": true,
	"cross_entropy forward": true, "cross_entropy ∂/∂x1": true,
	"dropout forward": true, "dropout ∂/∂x1": true,
	"flatten forward": true, "reshape forward": true,
	"sum forward": true, "mean forward": true,
	"bce_with_logits forward": true, "squared_error forward": true,
	"bias_add forward": true,
}

// checkWholeTensor evaluates the op's whole-tensor formulas, the forward
// step and each input's gradient, with the graph's values (expr.EvalTensor,
// as `derive --check` does) and compares them element by element with the
// forward value and the gradients backward computed, within 1e-12 of each
// tensor's largest magnitude.
func checkWholeTensor(t *testing.T, out *V, ex explain.Explainer) {
	t.Helper()
	name := out.Op.Name()
	names := make([]expr.Expr, len(out.Inputs))
	vals := map[string]*tensor.Tensor[float64]{"y": out.Value, "g": out.Grad}
	for i, in := range out.Inputs {
		n := fmt.Sprintf("x%d", i+1)
		names[i] = expr.Ref{Name: n}
		vals[n] = in.Value
	}
	env := func(e expr.Expr) (*tensor.Tensor[float64], bool) {
		v, ok := vals[expr.String(e)]
		return v, ok
	}
	compare := func(what string, f expr.Expr, want *tensor.Tensor[float64]) {
		t.Helper()
		got, err := expr.EvalTensor(f, env)
		if err != nil {
			if notation[name+" "+what] {
				return
			}
			t.Fatalf("%s: %s = %s does not evaluate: %v", name, what, expr.String(f), err)
		}
		if got.Len() != want.Len() && got.Len() != 1 {
			t.Fatalf("%s: %s = %s has %d elements, want %d", name, what, expr.String(f), got.Len(), want.Len())
		}
		scale := 0.0
		for _, v := range want.Data() {
			scale = math.Max(scale, math.Abs(v))
		}
		for k, w := range want.Data() {
			v := got.Data()[min(k, got.Len()-1)]
			if d := math.Abs(v - w); !(d <= 1e-12*scale) && d != 0 {
				t.Fatalf("%s: %s = %s evaluates to %.17g at element %d, the op computed %.17g (largest magnitude %.3g)",
					name, what, expr.String(f), v, k, w, scale)
			}
		}
	}
	compare("forward", ex.Formula(names), out.Value)
	for i, in := range out.Inputs {
		if in.Grad == nil {
			continue
		}
		compare(fmt.Sprintf("∂/∂x%d", i+1), ex.BackwardFormula(i, names, expr.Ref{Name: "y"}, expr.Ref{Name: "g"}), in.Grad)
	}
}

// run checks f with gradcheck and then the explanation of its last op.
func run(t *testing.T, f gradcheck.Func, r *rand.Rand, skip map[int]bool, inputs ...*tensor.Tensor[float64]) {
	t.Helper()
	if _, err := gradcheck.Check(f, inputs, gradcheck.Options{Skip: skip}, r); err != nil {
		t.Fatal(err)
	}
	vs := make([]*V, len(inputs))
	for i, x := range inputs {
		vs[i] = autograd.Leaf("x", x, !skip[i])
	}
	out, err := f(vs)
	if err != nil {
		t.Fatal(err)
	}
	seed := gradcheck.Random(r, out.Value.Shape()...)
	if err := autograd.BackwardFrom(out, seed); err != nil {
		t.Fatal(err)
	}
	checkExplain(t, out)
}

func TestMatMulGrad(t *testing.T) {
	r := rng(1)
	cases := []struct {
		a, b   []int
		ta, tb bool
	}{
		{[]int{8, 2}, []int{2}, false, false},
		{[]int{3}, []int{3}, false, false},
		{[]int{4}, []int{4, 5}, false, false},
		{[]int{3, 4}, []int{4, 5}, false, false},
		{[]int{4, 3}, []int{4, 5}, true, false},
		{[]int{3, 4}, []int{5, 4}, false, true},
		{[]int{4, 3}, []int{5, 4}, true, true},
		{[]int{4, 3}, []int{4}, true, false},
	}
	for _, c := range cases {
		f := func(in []*V) (*V, error) { return MatMul("y", in[0], in[1], c.ta, c.tb) }
		run(t, f, r, nil, gradcheck.Random(r, c.a...), gradcheck.Random(r, c.b...))
	}
}

func TestMatMulShapeError(t *testing.T) {
	a := autograd.Leaf("w0", tensor.New[float64](8, 2), true)
	b := autograd.Leaf("z", tensor.New[float64](3), false)
	_, err := MatMul("u0", a, b, false, false)
	if err == nil || err.Error() != "u0: matmul: right operand has shape [3], want 2 rows (the left operand has 2 columns)" {
		t.Fatalf("got %v", err)
	}
}

func TestUnaryGrad(t *testing.T) {
	r := rng(2)
	for _, fn := range []Activation{ActReLU, ActLeakyReLU, ActSigmoid, ActTanh, ActLogSigmoid} {
		f := func(in []*V) (*V, error) {
			if fn == ActLeakyReLU {
				return LeakyReLU("y", in[0], 0.2)
			}
			return Unary("y", fn, in[0])
		}
		run(t, f, r, nil, gradcheck.RandomAwayFromZero(r, 0.01, 3, 2, 4))
	}
}

func TestSaturatedSigmoidFloat32(t *testing.T) {
	// log σ(a) and its gradient σ(−a) at a large logit keep float32's
	// relative precision: 1 − σ(a) is never formed by subtraction.
	for _, a := range []float64{12.7, 20, 40, -30} {
		x64 := autograd.Leaf("a", tensor.Scalar(a), true)
		y64, _ := LogSigmoid("l", x64)
		_ = autograd.Backward(y64)
		x32 := autograd.Leaf("a", tensor.Scalar(float32(a)), true)
		y32, _ := LogSigmoid("l", x32)
		_ = autograd.Backward(y32)
		for _, p := range [][2]float64{{y64.Value.Data()[0], float64(y32.Value.Data()[0])}, {x64.Grad.Data()[0], float64(x32.Grad.Data()[0])}} {
			if math.Abs(p[0]-p[1]) > 1e-6*math.Abs(p[0]) {
				t.Errorf("a=%g: float64 %g vs float32 %g", a, p[0], p[1])
			}
		}
	}
}

func TestBiasAddGrad(t *testing.T) {
	r := rng(3)
	cases := []struct {
		x, b []int
		axis int
	}{
		{[]int{8}, []int{8}, 0},
		{[]int{5, 8}, []int{8}, 1},
		{[]int{2, 3, 4, 4}, []int{3}, 1},
		{[]int{3, 4, 4}, []int{3}, 0},
		{[]int{1, 4, 4}, []int{1, 4, 4}, 0},
		{[]int{2, 3, 4, 5}, []int{3, 4, 5}, 1},
	}
	for _, c := range cases {
		f := func(in []*V) (*V, error) { return BiasAdd("y", in[0], in[1], c.axis) }
		run(t, f, r, nil, gradcheck.Random(r, c.x...), gradcheck.Random(r, c.b...))
	}
	x := autograd.Leaf("x", tensor.New[float64](2, 3, 4, 4), false)
	b := autograd.Leaf("b", tensor.New[float64](4), true)
	if _, err := BiasAdd("y", x, b, 1); err == nil {
		t.Fatal("expected a shape error for a bias of 4 channels on 3")
	}
}

func TestReshapeGrad(t *testing.T) {
	r := rng(4)
	for _, col := range []bool{false, true} {
		f := func(in []*V) (*V, error) { return Reshape("y", in[0], col, 2, 2, 2) }
		run(t, f, r, nil, gradcheck.Random(r, 8))
		g := func(in []*V) (*V, error) { return Flatten("y", in[0], 1, col) }
		run(t, g, r, nil, gradcheck.Random(r, 2, 3, 2, 4))
		h := func(in []*V) (*V, error) { return Flatten("y", in[0], 0, col) }
		run(t, h, r, nil, gradcheck.Random(r, 1, 3, 4))
	}
}

func TestReshapeColumnMajorIsMATLAB(t *testing.T) {
	// MATLAB: reshape(1:8, 2, 2, 2) gives channel 1 = [1 3; 2 4], channel 2 = [5 7; 6 8].
	x := autograd.Leaf("h0", tensor.MustFromSlice([]float64{1, 2, 3, 4, 5, 6, 7, 8}, 8), false)
	y, err := Reshape("h1", x, true, 2, 2, 2)
	if err != nil {
		t.Fatal(err)
	}
	want := []float64{1, 3, 2, 4, 5, 7, 6, 8}
	for i, v := range y.Value.Data() {
		if v != want[i] {
			t.Fatalf("column-major reshape = %v, want %v", y.Value.Data(), want)
		}
	}
	// and flatten in column-major order undoes it, as h2(:) does
	z, _ := Flatten("H", y, 0, true)
	for i, v := range z.Value.Data() {
		if v != float64(i+1) {
			t.Fatalf("column-major flatten = %v", z.Value.Data())
		}
	}
	if _, err := Reshape("h1", x, false, 3, 3); err == nil {
		t.Fatal("reshape of 8 values into 3×3 must fail")
	}
}

func TestReductionsAndLossesGrad(t *testing.T) {
	r := rng(5)
	run(t, func(in []*V) (*V, error) { return Sum("s", in[0]) }, r, nil, gradcheck.Random(r, 3, 4))
	run(t, func(in []*V) (*V, error) { return Mean("s", in[0]) }, r, nil, gradcheck.Random(r, 2, 3, 4))
	run(t, func(in []*V) (*V, error) { return Scale("s", in[0], -1) }, r, nil, gradcheck.Random(r, 5))
	targets := tensor.New[float64](4, 3)
	for i := range targets.Data() {
		targets.Data()[i] = float64(r.IntN(2))
	}
	run(t, func(in []*V) (*V, error) { return BCEWithLogits("l", in[0], in[1]) }, r, map[int]bool{1: true}, gradcheck.Random(r, 4, 3), targets)
	run(t, func(in []*V) (*V, error) { return SquaredError("l", in[0], in[1], 4) }, r, nil, gradcheck.Random(r, 4, 6), gradcheck.Random(r, 4, 6))
}

func TestBCEWithLogitsExtreme(t *testing.T) {
	a := autograd.Leaf("a", tensor.MustFromSlice([]float32{100, -100, 0}, 3), true)
	y := autograd.Leaf("y", tensor.MustFromSlice([]float32{0, 1, 1}, 3), false)
	l, err := BCEWithLogits("l", a, y)
	if err != nil {
		t.Fatal(err)
	}
	want := (100 + 100 + math.Log(2)) / 3
	if got := float64(l.Value.Data()[0]); math.Abs(got-want) > 1e-4 || math.IsInf(got, 0) {
		t.Fatalf("bce = %g, want %g", got, want)
	}
}

func TestValueUsedTwiceAccumulates(t *testing.T) {
	// y = Σ (x ⊙ ... ) with x feeding two branches: d/dx Σ(relu(x) + σ(x))
	r := rng(6)
	f := func(in []*V) (*V, error) {
		a, err := ReLU("a", in[0])
		if err != nil {
			return nil, err
		}
		b, err := MatMul("b", in[0], in[0], false, false) // xᵀx uses x twice in one op
		if err != nil {
			return nil, err
		}
		sa, _ := Sum("sa", a)
		s, err := MatMul("s", sa, b, false, false)
		_ = s
		if err != nil {
			// scalars are not matrices: combine with a bias add instead
			return BiasAdd("s", sa, b, 0)
		}
		return s, nil
	}
	if _, err := gradcheck.Check(f, []*tensor.Tensor[float64]{gradcheck.RandomAwayFromZero(r, 0.05, 5)}, gradcheck.Options{}, r); err != nil {
		t.Fatal(err)
	}
}

// TestPassThroughGradSharing: bias add hands its upstream gradient on
// unchanged and a row-major reshape hands on a view; autograd may share
// that storage only with a node that has no other consumer. Here u feeds
// both a bias add and a ReLU, so its gradient must be a sum in storage of
// its own, and the gradients shown for v and w must stay as they were.
func TestPassThroughGradSharing(t *testing.T) {
	x := autograd.Leaf("x", tensor.MustFromSlice([]float64{-1, 2, -3, 4, 5, -6}, 2, 3), true)
	b := autograd.Leaf("b", tensor.MustFromSlice([]float64{0.5, 0.5, 0.5}, 3), true)
	u, _ := Scale("u", x, 2)
	v, _ := BiasAdd("v", u, b, 1)
	w, _ := Flatten("w", v, 0, false)
	s1, _ := Sum("s1", w)
	r, _ := ReLU("r", u)
	r3, _ := Scale("r3", r, 3)
	s2, _ := Sum("s2", r3)
	loss, err := BiasAdd("loss", s1, s2, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := autograd.Backward(loss); err != nil {
		t.Fatal(err)
	}
	for i, xv := range x.Value.Data() {
		relu := 0.0
		if xv > 0 {
			relu = 3
		}
		if got, want := u.Grad.Data()[i], 1+relu; got != want {
			t.Errorf("du[%d] = %v, want %v", i, got, want)
		}
		if got, want := x.Grad.Data()[i], 2*(1+relu); got != want {
			t.Errorf("dx[%d] = %v, want %v", i, got, want)
		}
		if v.Grad.Data()[i] != 1 || w.Grad.Data()[i] != 1 {
			t.Errorf("dv[%d] = %v, dw[%d] = %v, want 1 (overwritten by a shared accumulation?)", i, v.Grad.Data()[i], i, w.Grad.Data()[i])
		}
	}
	if got := b.Grad.Data(); got[0] != 2 || got[1] != 2 || got[2] != 2 {
		t.Errorf("db = %v, want [2 2 2]", got)
	}
}
