package ops

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/backprop-dev/backprop/autograd"
	"github.com/backprop-dev/backprop/gradcheck"
	"github.com/backprop-dev/backprop/tensor"
)

// runAll checks f with finite differences (float64), then its last op's
// element and whole-tensor formulas (checkExplain) and its symbolic rules
// (checkRules, which must include want), on one more random upstream
// gradient.
func runAll(t *testing.T, f gradcheck.Func, r *rand.Rand, skip map[int]bool, want []string, inputs ...*tensor.Tensor[float64]) {
	t.Helper()
	run(t, f, r, skip, inputs...)
	vs := make([]*V, len(inputs))
	for i, x := range inputs {
		vs[i] = autograd.Leaf(fmt.Sprintf("x%d", i+1), x, !skip[i])
	}
	out, err := f(vs)
	if err != nil {
		t.Fatal(err)
	}
	if err := autograd.BackwardFrom(out, gradcheck.Random(r, out.Value.Shape()...)); err != nil {
		t.Fatal(err)
	}
	if n := checkRules(t, out, want...); testing.Verbose() {
		t.Logf("%s: %d rules checked", out.Op.Name(), n)
	}
}

var (
	fwd  = []string{"forward"}
	all1 = []string{"forward", "∂/∂x1"}
	all2 = []string{"forward", "∂/∂x1", "∂/∂x2"}
	all3 = []string{"forward", "∂/∂x1", "∂/∂x2", "∂/∂x3"}
)

// shapes with a batch of more than one and several channels
var elementShapes = [][]int{{7}, {5, 6}, {2, 3, 4, 4}, {3, 2, 5}}

func TestAddMulGrad(t *testing.T) {
	r := rng(101)
	for _, s := range elementShapes {
		runAll(t, func(in []*V) (*V, error) { return Add("y", in[0], in[1]) }, r, nil, all2, gradcheck.Random(r, s...), gradcheck.Random(r, s...))
		runAll(t, func(in []*V) (*V, error) { return Mul("y", in[0], in[1]) }, r, nil, all2, gradcheck.Random(r, s...), gradcheck.Random(r, s...))
	}
	// a residual block x + relu(x) and the same tensor twice (x ⊙ x,
	// x + x): finite differences only, as x's gradient sums several paths
	// (checkExplain compares one operand's element with x's whole gradient)
	for _, f := range []gradcheck.Func{
		func(in []*V) (*V, error) {
			h, err := ReLU("h", in[0])
			if err != nil {
				return nil, err
			}
			return Add("y", in[0], h)
		},
		func(in []*V) (*V, error) { return Mul("y", in[0], in[0]) },
		func(in []*V) (*V, error) { return Add("y", in[0], in[0]) },
	} {
		if _, err := gradcheck.Check(f, []*tensor.Tensor[float64]{gradcheck.Random(r, 3, 4)}, gradcheck.Options{}, r); err != nil {
			t.Fatal(err)
		}
	}
}

func TestDropoutMaskGrad(t *testing.T) {
	r := rng(102)
	for _, s := range elementShapes {
		mask := tensor.New[float64](s...)
		for i := range mask.Data() {
			mask.Data()[i] = float64(r.IntN(2))
		}
		for _, scale := range []float64{1, 2, 1 / 0.7} {
			runAll(t, func(in []*V) (*V, error) { return DropoutMask("y", in[0], in[1], scale) }, r, map[int]bool{1: true}, all1, gradcheck.Random(r, s...), mask)
		}
	}
	// the mask gets no gradient even when it asks for one
	x := autograd.Leaf("x", gradcheck.Random(r, 2, 3), true)
	m := autograd.Leaf("m", tensor.MustFromSlice([]float64{1, 0, 1, 1, 0, 0}, 2, 3), true)
	y, err := DropoutMask("y", x, m, 2)
	if err != nil {
		t.Fatal(err)
	}
	s, _ := Sum("s", y)
	if err := autograd.Backward(s); err != nil {
		t.Fatal(err)
	}
	if m.Grad != nil {
		t.Fatalf("the mask got a gradient %v", m.Grad.Data())
	}
	for i, v := range x.Grad.Data() {
		if v != 2*m.Value.Data()[i] {
			t.Fatalf("dx = %v, want 2·mask", x.Grad.Data())
		}
	}
}

func TestSumSquaresGrad(t *testing.T) {
	r := rng(103)
	for _, s := range [][]int{{6}, {4, 3}, {2, 3, 3, 3}, {1, 5}} {
		runAll(t, func(in []*V) (*V, error) { return SumSquares("R", in[0], 0.005) }, r, nil, all1, gradcheck.Random(r, s...))
	}
}

func TestConcatGrad(t *testing.T) {
	r := rng(104)
	cases := []struct {
		axis   int
		shapes [][]int
	}{
		{0, [][]int{{3}, {4}}},
		{-1, [][]int{{2, 3}, {2, 1}, {2, 4}}},
		{0, [][]int{{2, 3}, {3, 3}}},
		{1, [][]int{{2, 3, 4, 4}, {2, 2, 4, 4}}},
		{-3, [][]int{{2, 1, 3, 2}, {2, 2, 3, 2}}},
		{2, [][]int{{2, 3, 2}, {2, 3, 3}}},
	}
	for _, c := range cases {
		in := make([]*tensor.Tensor[float64], len(c.shapes))
		want := []string{}
		for i, s := range c.shapes {
			in[i] = gradcheck.Random(r, s...)
			want = append(want, fmt.Sprintf("∂/∂x%d", i+1))
		}
		runAll(t, func(vs []*V) (*V, error) { return Concat("y", c.axis, vs...) }, r, nil, want, in...)
	}
}

func TestSoftmaxGrad(t *testing.T) {
	r := rng(105)
	cases := []struct {
		shape []int
		axis  int
	}{
		{[]int{6}, 0}, {[]int{6}, -1}, {[]int{4, 5}, -1}, {[]int{4, 5}, 0},
		{[]int{2, 3, 4, 4}, 1}, {[]int{3, 4, 5}, -1}, {[]int{5, 1}, -1},
	}
	for _, c := range cases {
		for _, log := range []bool{false, true} {
			f := func(in []*V) (*V, error) {
				if log {
					return LogSoftmax("y", in[0], c.axis)
				}
				return Softmax("y", in[0], c.axis)
			}
			x := gradcheck.Random(r, c.shape...)
			for i := range x.Data() {
				x.Data()[i] *= 3
			}
			runAll(t, f, r, nil, all1, x)
		}
	}
	// softmax then cross-entropy on its log: the classifier's chain
	labels := []int{2, 0, 1, 1}
	run(t, func(in []*V) (*V, error) {
		ls, err := LogSoftmax("ls", in[0], -1)
		if err != nil {
			return nil, err
		}
		picked, err := Mul("p", ls, in[1])
		if err != nil {
			return nil, err
		}
		return Sum("l", picked)
	}, r, map[int]bool{1: true}, gradcheck.Random(r, 4, 3), oneHot(labels, 3))
}

func oneHot(labels []int, k int) *tensor.Tensor[float64] {
	t := tensor.New[float64](len(labels), k)
	for i, y := range labels {
		t.Data()[i*k+y] = 1
	}
	return t
}

func TestLayerNormGrad(t *testing.T) {
	r := rng(106)
	for _, c := range []struct {
		shape      []int
		w, b       bool
		eps        float64
		wantDerivs []string
	}{
		{[]int{4, 6}, true, true, 1e-5, all3},
		{[]int{2, 3, 5}, true, false, 1e-5, all2},
		{[]int{7}, false, false, 1e-5, all1},
		{[]int{3, 1, 4}, false, true, 0.1, all2},
		{[]int{5, 2}, true, true, 0, all3},
	} {
		k := c.shape[len(c.shape)-1]
		inputs := []*tensor.Tensor[float64]{gradcheck.Random(r, c.shape...)}
		if c.w {
			inputs = append(inputs, gradcheck.Random(r, k))
		}
		if c.b {
			inputs = append(inputs, gradcheck.Random(r, k))
		}
		f := func(in []*V) (*V, error) {
			var w, b *V
			q := 1
			if c.w {
				w, q = in[q], q+1
			}
			if c.b {
				b = in[q]
			}
			return LayerNorm("y", in[0], w, b, c.eps)
		}
		runAll(t, f, r, nil, c.wantDerivs, inputs...)
	}
}

func TestCrossEntropyReduceGrad(t *testing.T) {
	r := rng(107)
	for _, s := range [][2]int{{1, 3}, {4, 2}, {5, 10}} {
		n, k := s[0], s[1]
		labels := make([]uint8, n)
		for i := range labels {
			labels[i] = uint8(r.IntN(k))
		}
		for _, mean := range []bool{true, false} {
			runAll(t, func(in []*V) (*V, error) { return CrossEntropyReduce("l", in[0], labels, mean) }, r, nil, all1, gradcheck.Random(r, n, k))
		}
	}
	for _, mean := range []bool{true, false} {
		runAll(t, func(in []*V) (*V, error) { return CrossEntropyReduce("l", in[0], []int{3}, mean) }, r, nil, all1, gradcheck.Random(r, 5))
	}
	// sum is N times the mean
	a := autograd.Leaf("a", gradcheck.Random(r, 6, 4), true)
	lm, _ := CrossEntropyReduce("l", a, []int{0, 1, 2, 3, 0, 1}, true)
	ls, _ := CrossEntropyReduce("l", a, []int{0, 1, 2, 3, 0, 1}, false)
	if d := math.Abs(ls.Value.Data()[0] - 6*lm.Value.Data()[0]); d > 1e-13 {
		t.Fatalf("sum %v is not 6 × mean %v", ls.Value.Data()[0], lm.Value.Data()[0])
	}
}

// TestNewOpsFloat32 runs every new op in float32 and float64 on the same
// values (logits up to ±1000 for the softmax family) and compares outputs
// and gradients.
func TestNewOpsFloat32(t *testing.T) {
	r := rng(108)
	type build[T tensor.Float] func(in []*autograd.Var[T]) (*autograd.Var[T], error)
	type pair struct {
		name   string
		shapes [][]int
		scale  float64
		f64    build[float64]
		f32    build[float32]
	}
	mask := []float64{1, 0, 1, 1, 0, 1, 0, 0, 1, 1, 1, 0}
	cases := []pair{
		{"add", [][]int{{3, 4}, {3, 4}}, 1, func(in []*V) (*V, error) { return Add("y", in[0], in[1]) }, func(in []*autograd.Var[float32]) (*autograd.Var[float32], error) { return Add("y", in[0], in[1]) }},
		{"mul", [][]int{{3, 4}, {3, 4}}, 1, func(in []*V) (*V, error) { return Mul("y", in[0], in[1]) }, func(in []*autograd.Var[float32]) (*autograd.Var[float32], error) { return Mul("y", in[0], in[1]) }},
		{"concat", [][]int{{3, 4}, {3, 2}}, 1, func(in []*V) (*V, error) { return Concat("y", -1, in...) }, func(in []*autograd.Var[float32]) (*autograd.Var[float32], error) { return Concat("y", -1, in...) }},
		{"softmax", [][]int{{3, 4}}, 1, func(in []*V) (*V, error) { return Softmax("y", in[0], -1) }, func(in []*autograd.Var[float32]) (*autograd.Var[float32], error) { return Softmax("y", in[0], -1) }},
		{"softmax large", [][]int{{3, 4}}, 1000, func(in []*V) (*V, error) { return Softmax("y", in[0], 0) }, func(in []*autograd.Var[float32]) (*autograd.Var[float32], error) { return Softmax("y", in[0], 0) }},
		{"log_softmax large", [][]int{{3, 4}}, 1000, func(in []*V) (*V, error) { return LogSoftmax("y", in[0], -1) }, func(in []*autograd.Var[float32]) (*autograd.Var[float32], error) { return LogSoftmax("y", in[0], -1) }},
		{"layer_norm", [][]int{{3, 4}, {4}, {4}}, 1, func(in []*V) (*V, error) { return LayerNorm("y", in[0], in[1], in[2], 1e-5) }, func(in []*autograd.Var[float32]) (*autograd.Var[float32], error) {
			return LayerNorm("y", in[0], in[1], in[2], 1e-5)
		}},
		{"layer_norm offset", [][]int{{2, 6}}, 1, func(in []*V) (*V, error) {
			s, _ := Scale("s", in[0], 1)
			return LayerNorm("y", s, nil, nil, 1e-5)
		}, func(in []*autograd.Var[float32]) (*autograd.Var[float32], error) {
			return LayerNorm("y", in[0], nil, nil, 1e-5)
		}},
		{"dropout_mask", [][]int{{3, 4}}, 1, func(in []*V) (*V, error) {
			return DropoutMask("y", in[0], autograd.Leaf("m", tensor.MustFromSlice(mask, 3, 4), false), 1/0.6)
		}, func(in []*autograd.Var[float32]) (*autograd.Var[float32], error) {
			return DropoutMask("y", in[0], autograd.Leaf("m", tensor.Convert[float32](tensor.MustFromSlice(mask, 3, 4)), false), 1/0.6)
		}},
		{"sum_squares", [][]int{{3, 4}}, 1, func(in []*V) (*V, error) { return SumSquares("y", in[0], 0.05) }, func(in []*autograd.Var[float32]) (*autograd.Var[float32], error) { return SumSquares("y", in[0], 0.05) }},
		{"cross_entropy sum", [][]int{{3, 4}}, 100, func(in []*V) (*V, error) { return CrossEntropyReduce("y", in[0], []int{1, 3, 0}, false) }, func(in []*autograd.Var[float32]) (*autograd.Var[float32], error) {
			return CrossEntropyReduce("y", in[0], []int{1, 3, 0}, false)
		}},
	}
	for _, c := range cases {
		var in64 []*V
		var in32 []*autograd.Var[float32]
		for i, s := range c.shapes {
			x := gradcheck.Random(r, s...)
			for k := range x.Data() {
				x.Data()[k] = float64(float32(x.Data()[k] * c.scale)) // representable in float32
			}
			if c.name == "layer_norm offset" { // a large common offset: the variance must not cancel
				for k := range x.Data() {
					x.Data()[k] = float64(float32(x.Data()[k] + 300))
				}
			}
			in64 = append(in64, autograd.Leaf(fmt.Sprint("x", i), x, true))
			in32 = append(in32, autograd.Leaf(fmt.Sprint("x", i), tensor.Convert[float32](x), true))
		}
		y64, err := c.f64(in64)
		if err != nil {
			t.Fatal(err)
		}
		y32, err := c.f32(in32)
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
		agree := func(what string, a *tensor.Tensor[float64], b *tensor.Tensor[float32]) {
			scale := 0.0
			for _, v := range a.Data() {
				scale = math.Max(scale, math.Abs(v))
			}
			for k, v := range a.Data() {
				if d := math.Abs(v - float64(b.Data()[k])); d > 1e-5*math.Max(scale, 1e-3) || math.IsNaN(float64(b.Data()[k])) {
					t.Fatalf("%s: %s[%d] float64 %.9g, float32 %.9g", c.name, what, k, v, b.Data()[k])
				}
			}
		}
		agree("output", y64.Value, y32.Value)
		for i := range in64 {
			if i == 0 && c.name == "layer_norm offset" {
				continue // the float64 side runs through Scale; its x has a gradient too
			}
			agree(fmt.Sprintf("gradient %d", i), in64[i].Grad, in32[i].Grad)
		}
	}
}

// TestNewOpsErrors: operands that do not fit are errors naming the node,
// the tensor, the shape expected and the shape received.
func TestNewOpsErrors(t *testing.T) {
	leaf := func(name string, s ...int) *autograd.Var[float32] {
		return autograd.Leaf(name, tensor.New[float32](s...), true)
	}
	h, x := leaf("h1", 2, 3), leaf("x", 2, 4)
	mask := autograd.Leaf("m", tensor.MustFromSlice([]float32{1, 0, 2, 1, 1, 1}, 2, 3), false)
	for _, c := range []struct {
		err  func() error
		want []string
	}{
		{func() error { _, err := Add("h2", h, x); return err }, []string{"h2: add: second operand x has shape [2×4], want [2×3] (the shape of the first operand h1)"}},
		{func() error { _, err := Mul("p", h, x); return err }, []string{"p: mul: second operand x", "[2×4]", "[2×3]"}},
		{func() error { _, err := Concat("c", 0, h, x); return err }, []string{"c: concat: input 2 x has shape [2×4], want [*×3]"}},
		{func() error { _, err := Concat("c", 2, h, x); return err }, []string{"c: concat: axis 2 does not exist in input 1 h1", "[2×3]"}},
		{func() error { _, err := Softmax("p", h, 2); return err }, []string{"p: softmax: axis 2 does not exist in input h1, whose shape is [2×3]"}},
		{func() error { _, err := LogSoftmax("p", h, -3); return err }, []string{"log_softmax: axis -3"}},
		{func() error { _, err := LayerNorm("n", h, leaf("g", 2), nil, 1e-5); return err }, []string{"n: layer_norm: weight g has shape [2], want [3]", "[2×3]"}},
		{func() error { _, err := LayerNorm("n", h, nil, leaf("b", 3, 1), 1e-5); return err }, []string{"layer_norm: bias b has shape [3×1], want [3]"}},
		{func() error { _, err := LayerNorm("n", h, nil, nil, -1); return err }, []string{"eps must be"}},
		{func() error { _, err := DropoutMask("d", h, leaf("m", 3, 2), 2); return err }, []string{"d: dropout_mask: mask m has shape [3×2], want [2×3] (the shape of the input h1)"}},
		{func() error { _, err := DropoutMask("d", h, mask, 2); return err }, []string{"mask m element 2 is 2"}},
		{func() error { _, err := DropoutMask("d", h, leaf("m", 2, 3), math.Inf(1)); return err }, []string{"scale"}},
		{func() error { _, err := SumSquares("R", h, math.NaN()); return err }, []string{"coefficient"}},
		{func() error { _, err := CrossEntropyReduce("l", leaf("a", 4), []int{1, 2}, false); return err }, []string{"logits has shape [4]", "a (K) vector takes one label"}},
		{func() error { _, err := CrossEntropyReduce("l", leaf("a", 4), []int{4}, false); return err }, []string{"label 4 of row 0 is not a class index in [0, 4)"}},
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
