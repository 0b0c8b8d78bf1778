package ops

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/backprop-dev/backprop/autograd"
	"github.com/backprop-dev/backprop/gradcheck"
	"github.com/backprop-dev/backprop/tensor"
)

// rulesOf builds f on leaves x1, x2, … (skip: no gradient), runs backward
// from a random upstream gradient and evaluates the last op's rules,
// which must include want; it returns how many it checked.
func rulesOf(t *testing.T, f gradcheck.Func, r *rand.Rand, skip map[int]bool, want []string, inputs ...*tensor.Tensor[float64]) int {
	t.Helper()
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
	n := checkRules(t, out, want...)
	if testing.Verbose() {
		t.Logf("%s %v: %d rules checked", out.Op.Name(), out.Inputs[0].Value.Shape(), n)
	}
	return n
}

// TestExistingOpsRules evaluates the rules of the reductions, losses,
// dropout, pooling and batch norm for every element, batched and not.
func TestExistingOpsRules(t *testing.T) {
	r := rng(201)
	for _, s := range [][]int{{5}, {3, 4}, {2, 3, 2, 2}} {
		rulesOf(t, func(in []*V) (*V, error) { return Sum("s", in[0]) }, r, nil, all1, gradcheck.Random(r, s...))
		rulesOf(t, func(in []*V) (*V, error) { return Mean("s", in[0]) }, r, nil, all1, gradcheck.Random(r, s...))
		targets := tensor.New[float64](s...)
		for i := range targets.Data() {
			targets.Data()[i] = r.Float64()
		}
		rulesOf(t, func(in []*V) (*V, error) { return BCEWithLogits("l", in[0], in[1]) }, r, nil, all2, gradcheck.Random(r, s...), targets)
		for _, p := range []float64{0, 0.3, 1} {
			for _, training := range []bool{true, false} {
				rulesOf(t, func(in []*V) (*V, error) { return Dropout("d", in[0], p, training, rng(7)) }, r, nil, all1, gradcheck.Random(r, s...))
			}
		}
	}
	// pooling, batched and not, with overlapping windows and padding
	for _, c := range []struct {
		shape []int
		opt   PoolOptions
		fwd   bool // the forward rule is written out (no padding, small window)
	}{
		{[]int{2, 3, 4, 4}, PoolOptions{KernelH: 2, KernelW: 2}, true},
		{[]int{3, 5, 4}, PoolOptions{KernelH: 3, KernelW: 2, StrideH: 1, StrideW: 2}, true},
		{[]int{2, 2, 5, 5}, PoolOptions{KernelH: 3, KernelW: 3, StrideH: 2, StrideW: 2, PadH: 1, PadW: 1}, false},
		{[]int{1, 4, 4}, PoolOptions{KernelH: 2, KernelW: 2, StrideH: 1, StrideW: 1}, true},
	} {
		want := []string{"∂/∂x1"}
		if c.fwd {
			want = all1
		}
		// ties within windows (zeros of a ReLU): PyTorch's first maximum wins
		x := gradcheck.Random(r, c.shape...)
		for i := range x.Data() {
			if i%3 == 0 {
				x.Data()[i] = 0
			}
		}
		rulesOf(t, func(in []*V) (*V, error) { return MaxPool2d("p", in[0], c.opt) }, r, nil, want, x)
		rulesOf(t, func(in []*V) (*V, error) { return AvgPool2d("p", in[0], c.opt) }, r, nil, want, gradcheck.Random(r, c.shape...))
	}
	// padding not counted: the divisor varies, so there is no rule
	excl := PoolOptions{KernelH: 3, KernelW: 3, StrideH: 2, StrideW: 2, PadH: 1, PadW: 1, ExcludePad: true}
	if n := rulesOf(t, func(in []*V) (*V, error) { return AvgPool2d("p", in[0], excl) }, r, nil, nil, gradcheck.Random(r, 1, 2, 5, 5)); n != 0 {
		t.Fatalf("avg_pool2d with count_include_pad=False gave %d rules", n)
	}
	// batch norm, training and evaluation, (N,C), (N,C,L), (N,C,H,W)
	for _, s := range [][]int{{5, 3}, {3, 2, 4}, {2, 3, 3, 2}, {4, 1}} {
		c := s[1]
		for _, training := range []bool{true, false} {
			opt := BatchNormOptions[float64]{Training: training, Eps: 1e-5}
			if !training {
				opt.RunningMean = gradcheck.Random(r, c)
				opt.RunningVar = tensor.New[float64](c)
				for i := range opt.RunningVar.Data() {
					opt.RunningVar.Data()[i] = 0.5 + r.Float64()
				}
			}
			rulesOf(t, func(in []*V) (*V, error) { return BatchNorm("bn", in[0], in[1], in[2], opt) }, r, nil, all3,
				gradcheck.Random(r, s...), gradcheck.Random(r, c), gradcheck.Random(r, c))
		}
	}
}
