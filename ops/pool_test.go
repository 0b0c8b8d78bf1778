package ops

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/backprop-dev/backprop/autograd"
	"github.com/backprop-dev/backprop/gradcheck"
	"github.com/backprop-dev/backprop/tensor"
)

type poolCase struct {
	Name            string    `json:"name"`
	Op              string    `json:"op"`
	Kernel          [2]int    `json:"kernel"`
	Stride          [2]int    `json:"stride"`
	Padding         [2]int    `json:"padding"`
	CountIncludePad bool      `json:"count_include_pad"`
	Shape           []int     `json:"shape"`
	X               []float64 `json:"x"`
	Gout            []float64 `json:"gout"`
	YShape          []int     `json:"y_shape"`
	Y               []float64 `json:"y"`
	DX              []float64 `json:"dx"`
}

func (c poolCase) options() PoolOptions {
	return PoolOptions{KernelH: c.Kernel[0], KernelW: c.Kernel[1], StrideH: c.Stride[0], StrideW: c.Stride[1],
		PadH: c.Padding[0], PadW: c.Padding[1], ExcludePad: !c.CountIncludePad}
}

func pool[T tensor.Float](op string, x *autograd.Var[T], opt PoolOptions) (*autograd.Var[T], error) {
	if op == "max" {
		return MaxPool2d("y", x, opt)
	}
	return AvgPool2d("y", x, opt)
}

func loadPoolCases(t *testing.T) []poolCase {
	t.Helper()
	b, err := os.ReadFile("testdata/pool.json")
	if err != nil {
		t.Fatal(err)
	}
	var ref struct {
		Cases []poolCase `json:"cases"`
	}
	if err := json.Unmarshal(b, &ref); err != nil {
		t.Fatal(err)
	}
	if len(ref.Cases) < 10 {
		t.Fatalf("only %d cases", len(ref.Cases))
	}
	return ref.Cases
}

// TestPoolPyTorch compares outputs and input gradients with F.max_pool2d
// and F.avg_pool2d (testdata/pool.py): batches, several channels, strides
// 1 and 2, padding, rectangular kernels, an unbatched input, tied maxima,
// and count_include_pad both ways; then the explanation's element formulas
// against the same numbers.
func TestPoolPyTorch(t *testing.T) {
	for _, c := range loadPoolCases(t) {
		t.Run(c.Name, func(t *testing.T) {
			x := autograd.Leaf("x", tensor.MustFromSlice(c.X, c.Shape...), true)
			y, err := pool(c.Op, x, c.options())
			if err != nil {
				t.Fatal(err)
			}
			if !tensor.SameShape(y.Value.Shape(), c.YShape) {
				t.Fatalf("output shape %v, PyTorch %v", y.Value.Shape(), c.YShape)
			}
			for i, v := range y.Value.Data() {
				if math.Abs(v-c.Y[i]) > 1e-12 {
					t.Fatalf("y[%d] = %.17g, PyTorch %.17g", i, v, c.Y[i])
				}
			}
			if err := autograd.BackwardFrom(y, tensor.MustFromSlice(c.Gout, c.YShape...)); err != nil {
				t.Fatal(err)
			}
			for i, v := range x.Grad.Data() {
				if math.Abs(v-c.DX[i]) > 1e-12 {
					t.Fatalf("dx[%d] = %.17g, PyTorch %.17g", i, v, c.DX[i])
				}
			}
			checkExplain(t, y)
		})
	}
}

// TestPoolFloat32 runs the reference cases in float32: max pooling picks
// the same elements exactly, average pooling agrees to float32 precision.
func TestPoolFloat32(t *testing.T) {
	for _, c := range loadPoolCases(t) {
		xs := make([]float32, len(c.X))
		for i, v := range c.X {
			xs[i] = float32(v)
		}
		gs := make([]float32, len(c.Gout))
		for i, v := range c.Gout {
			gs[i] = float32(v)
		}
		x := autograd.Leaf("x", tensor.MustFromSlice(xs, c.Shape...), true)
		y, err := pool(c.Op, x, c.options())
		if err != nil {
			t.Fatal(err)
		}
		if err := autograd.BackwardFrom(y, tensor.MustFromSlice(gs, c.YShape...)); err != nil {
			t.Fatal(err)
		}
		for i, v := range y.Value.Data() {
			if math.Abs(float64(v)-c.Y[i]) > 1e-6*math.Max(1, math.Abs(c.Y[i])) {
				t.Fatalf("%s: y[%d] = %g, PyTorch (float64) %g", c.Name, i, v, c.Y[i])
			}
		}
		for i, v := range x.Grad.Data() {
			if math.Abs(float64(v)-c.DX[i]) > 1e-6*math.Max(1, math.Abs(c.DX[i])) {
				t.Fatalf("%s: dx[%d] = %g, PyTorch (float64) %g", c.Name, i, v, c.DX[i])
			}
		}
	}
}

// distinct fills a tensor with values at least 0.05 apart in random order,
// so that no finite-difference step can change which element is a
// window's maximum.
func distinct(r *rand.Rand, shape ...int) *tensor.Tensor[float64] {
	x := tensor.New[float64](shape...)
	perm := r.Perm(x.Len())
	for i, p := range perm {
		x.Data()[i] = (float64(p) - float64(len(perm))/2) * 0.05
	}
	return x
}

// TestPoolGrad checks both poolings against finite differences over
// random shapes and options.
func TestPoolGrad(t *testing.T) {
	r := rng(12)
	for i := range 12 {
		kh, kw := 1+r.IntN(3), 1+r.IntN(3)
		opt := PoolOptions{KernelH: kh, KernelW: kw, StrideH: r.IntN(3), StrideW: r.IntN(3),
			PadH: r.IntN(kh/2 + 1), PadW: r.IntN(kw/2 + 1), ExcludePad: i%3 == 2}
		shape := []int{1 + r.IntN(3), 1 + r.IntN(3), kh + r.IntN(4), kw + r.IntN(4)}
		if i%4 == 3 {
			shape = shape[1:] // unbatched
		}
		run(t, func(in []*V) (*V, error) { return MaxPool2d("y", in[0], opt) }, r, nil, distinct(r, shape...))
		run(t, func(in []*V) (*V, error) { return AvgPool2d("y", in[0], opt) }, r, nil, gradcheck.Random(r, shape...))
	}
}

// TestPoolErrors: shapes and options PyTorch rejects are errors naming
// what was expected.
func TestPoolErrors(t *testing.T) {
	x := autograd.Leaf("x", tensor.New[float32](2, 3, 4, 4), true)
	for _, c := range []struct {
		x    *autograd.Var[float32]
		opt  PoolOptions
		want string
	}{
		{autograd.Leaf("v", tensor.New[float32](16), true), PoolOptions{KernelH: 2, KernelW: 2}, "(N, C, H, W) or (C, H, W)"},
		{x, PoolOptions{KernelH: 2, KernelW: 2, PadH: 2}, "padding 2×0 is more than half the kernel 2×2"},
		{x, PoolOptions{KernelH: 7, KernelW: 2, PadH: 1}, "at least 7×2 rows and columns"},
		{x, PoolOptions{KernelH: 0, KernelW: 2}, "want a kernel and stride of at least 1"},
		{x, PoolOptions{KernelH: 2, KernelW: 2, StrideW: -1}, "want a kernel and stride of at least 1"},
	} {
		for _, op := range []string{"max", "avg"} {
			_, err := pool(op, c.x, c.opt)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("%s pool %+v on %v: error %v, want it to say %q", op, c.opt, c.x.Value.Shape(), err, c.want)
			}
		}
	}
}

// TestPoolParallelSplit runs a batch large enough to be split across
// cores and compares it with the same planes pooled one at a time.
func TestPoolParallelSplit(t *testing.T) {
	r := rng(13)
	x := gradcheck.Random(r, 8, 16, 20, 20)
	opt := PoolOptions{KernelH: 3, KernelW: 3, StrideH: 2, StrideW: 2, PadH: 1, PadW: 1}
	for _, op := range []string{"max", "avg"} {
		xv := autograd.Leaf("x", x, true)
		y, err := pool(op, xv, opt)
		if err != nil {
			t.Fatal(err)
		}
		g := gradcheck.Random(r, y.Value.Shape()...)
		if err := autograd.BackwardFrom(y, g); err != nil {
			t.Fatal(err)
		}
		per := 20 * 20
		outPer := y.Value.Len() / (8 * 16)
		for p := range 8 * 16 {
			xp := autograd.Leaf("x", tensor.MustFromSlice(slices.Clone(x.Data()[p*per:(p+1)*per]), 1, 20, 20), true)
			yp, err := pool(op, xp, opt)
			if err != nil {
				t.Fatal(err)
			}
			if err := autograd.BackwardFrom(yp, tensor.MustFromSlice(slices.Clone(g.Data()[p*outPer:(p+1)*outPer]), yp.Value.Shape()...)); err != nil {
				t.Fatal(err)
			}
			for i, v := range yp.Value.Data() {
				if v != y.Value.Data()[p*outPer+i] {
					t.Fatalf("%s plane %d: y[%d] = %g split, %g alone", op, p, i, y.Value.Data()[p*outPer+i], v)
				}
			}
			for i, v := range xp.Grad.Data() {
				if v != xv.Grad.Data()[p*per+i] {
					t.Fatalf("%s plane %d: dx[%d] = %g split, %g alone", op, p, i, xv.Grad.Data()[p*per+i], v)
				}
			}
		}
	}
}

// TestMaxPool2x2FastPath compares the 2×2/stride-2 fast path with the
// general window loop on odd and even sizes, in float32 and float64, with
// tied maxima (small integers) and NaNs: outputs and argmax positions must
// be identical.
func TestMaxPool2x2FastPath(t *testing.T) {
	r := rng(17)
	for _, shape := range [][]int{{2, 3, 6, 5}, {3, 7, 7}, {4, 2, 28, 28}, {1, 1, 2, 3}} {
		x := tensor.New[float32](shape...)
		for i := range x.Data() {
			switch v := r.IntN(40); {
			case v == 0:
				x.Data()[i] = float32(math.NaN())
			default:
				x.Data()[i] = float32(v % 4)
			}
		}
		opt := PoolOptions{KernelH: 2, KernelW: 2}
		run := func(generic bool) (*MaxPool2dOp[float32], *tensor.Tensor[float32]) {
			genericPool = generic
			defer func() { genericPool = false }()
			op := &MaxPool2dOp[float32]{Options: opt}
			y, err := op.Forward([]*tensor.Tensor[float32]{x})
			if err != nil {
				t.Fatal(err)
			}
			return op, y
		}
		fop, fy := run(false)
		gop, gy := run(true)
		if !slices.Equal(fy.Shape(), gy.Shape()) {
			t.Fatalf("%v: shapes %v fast, %v generic", shape, fy.Shape(), gy.Shape())
		}
		for k := range gy.Data() {
			a, b := fy.Data()[k], gy.Data()[k]
			if (a != b && !(a != a && b != b)) || fop.argmax[k] != gop.argmax[k] {
				t.Fatalf("%v: output %d = %g at %d fast, %g at %d generic", shape, k, a, fop.argmax[k], b, gop.argmax[k])
			}
		}
	}
}

// BenchmarkMaxPool2d is the forward and backward pass of a 2×2 max pool over
// a conv net's feature maps (64 images, 32 channels, 28×28), by the fast
// path and by the general window loop.
func BenchmarkMaxPool2d(b *testing.B) {
	x32 := tensor.Convert[float32](gradcheck.Random(rng(3), 64, 32, 28, 28))
	for _, generic := range []bool{false, true} {
		name := "fast"
		if generic {
			name = "generic"
		}
		b.Run(name, func(b *testing.B) {
			genericPool = generic
			defer func() { genericPool = false }()
			g := tensor.New[float32](64, 32, 14, 14)
			for b.Loop() {
				xv := autograd.Leaf("x", x32, true)
				y, err := MaxPool2d("y", xv, PoolOptions{KernelH: 2, KernelW: 2})
				if err != nil {
					b.Fatal(err)
				}
				if err := autograd.BackwardFrom(y, g); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
