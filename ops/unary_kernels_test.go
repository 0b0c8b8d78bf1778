package ops

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/backprop-dev/backprop/tensor"
)

// TestReLUFloat32Kernels checks the branch-free float32 ReLU and LeakyReLU
// kernels bit for bit against the generic loops, special values included.
func TestReLUFloat32Kernels(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	inf := float32(math.Inf(1))
	nan := float32(math.NaN())
	x := []float32{0, float32(math.Copysign(0, -1)), inf, -inf, nan, 1e-45, -1e-45, math.MaxFloat32, -math.MaxFloat32}
	for range 1000 {
		x = append(x, float32(rng.NormFloat64()))
	}
	up := make([]float32, len(x))
	for i := range up {
		up[i] = float32(rng.NormFloat64())
	}
	up[0], up[1], up[3] = inf, -inf, nan
	same := func(a, b float32) bool {
		return math.Float32bits(a) == math.Float32bits(b) || (a != a && b != b)
	}
	for _, fn := range []Activation{ActReLU, ActLeakyReLU} {
		for _, slope := range []float64{0.2, 0} {
			fast := &UnaryOp[float32]{Fn: fn, Slope: slope}
			y := make([]float32, len(x))
			g := make([]float32, len(x))
			fast.forward(x, y)
			fast.backward(x, y, up, g)
			for i, v := range x {
				var wy, wg float32
				if v > 0 {
					wy, wg = v, up[i]
				} else if fn == ActLeakyReLU {
					wy = v * float32(slope)
					wg = up[i] * float32(slope)
				}
				if !same(y[i], wy) || !same(g[i], wg) {
					t.Fatalf("%v slope %v x=%v up=%v: got y=%v g=%v, want %v %v", fn, slope, v, up[i], y[i], g[i], wy, wg)
				}
			}
		}
	}
}

// TestSigmoidFloat32Kept checks float32 sigmoid through Forward and
// Backward: σ(x) and the gradient from the σ(−x) Forward keeps must equal
// the per-element kernels (sigmoidf(x); up·(σ(x)·sigmoidf(−x)), the path
// Backward takes without a kept buffer) bit for bit, special values
// included (for NaN x the gradient is some NaN: y and σ(−x) are NaNs of
// opposite signs, and which of two NaN operands a product propagates
// depends on how the compiler ordered the operands), and Backward must fall
// back to that path when the op kept nothing or kept it for another length.
func TestSigmoidFloat32Kept(t *testing.T) {
	sameG := func(a, b float32) bool {
		return math.Float32bits(a) == math.Float32bits(b) || (a != a && b != b)
	}
	rng := rand.New(rand.NewPCG(5, 6))
	inf := float32(math.Inf(1))
	specials := []float32{0, float32(math.Copysign(0, -1)), inf, -inf, float32(math.NaN()), 1e-45, -1e-45, 1e-40,
		math.MaxFloat32, -math.MaxFloat32, 88.72283, -88.72283, 87.3, -87.3, 103.97208, -103.97208, 104, -104, 16.6, -16.6}
	for _, n := range []int{len(specials), 5003, 40000} { // below and above the pool's minimum and parallel.MinWork
		x := make([]float32, n)
		up := make([]float32, n)
		for i := range x {
			x[i] = float32(rng.NormFloat64() * 8)
			up[i] = float32(rng.NormFloat64())
		}
		copy(x, specials)
		up[1], up[3] = inf, float32(math.NaN())
		wantY, wantG := make([]float32, n), make([]float32, n)
		for i, v := range x {
			wantY[i] = sigmoidf(v)
			wantG[i] = up[i] * (wantY[i] * sigmoidf(-v))
		}
		xt, ut := tensor.MustFromSlice(x, n), tensor.MustFromSlice(up, n)
		for _, kept := range []bool{true, false} {
			op := &UnaryOp[float32]{Fn: ActSigmoid}
			y, err := op.Forward([]*tensor.Tensor[float32]{xt})
			if err != nil {
				t.Fatal(err)
			}
			if op.comp == nil || op.comp.Len() != n {
				t.Fatal("float32 sigmoid Forward kept no σ(−x)")
			}
			if !kept {
				tensor.Release(op.comp)
				op.comp = nil
			}
			g := op.Backward([]*tensor.Tensor[float32]{xt}, y, ut, []bool{true})[0]
			if op.comp != nil {
				t.Fatal("Backward did not drop the kept σ(−x)")
			}
			for i := range x {
				if math.Float32bits(y.Data()[i]) != math.Float32bits(wantY[i]) || !sameG(g.Data()[i], wantG[i]) {
					t.Fatalf("n=%d kept=%v x=%v up=%v: y=%v g=%v, want %v %v", n, kept, x[i], up[i], y.Data()[i], g.Data()[i], wantY[i], wantG[i])
				}
			}
			// A second Backward (nothing kept any more) gives the same.
			g2 := op.Backward([]*tensor.Tensor[float32]{xt}, y, ut, []bool{true})[0]
			for i := range x {
				if !sameG(g2.Data()[i], wantG[i]) {
					t.Fatalf("n=%d second Backward: g[%d]=%v, want %v", n, i, g2.Data()[i], wantG[i])
				}
			}
		}
		// Kept for another input length: Backward must not use it.
		op := &UnaryOp[float32]{Fn: ActSigmoid}
		if _, err := op.Forward([]*tensor.Tensor[float32]{tensor.MustFromSlice(make([]float32, n+1), n+1)}); err != nil {
			t.Fatal(err)
		}
		y := tensor.MustFromSlice(append([]float32(nil), wantY...), n)
		g := op.Backward([]*tensor.Tensor[float32]{xt}, y, ut, []bool{true})[0]
		for i := range x {
			if !sameG(g.Data()[i], wantG[i]) {
				t.Fatalf("n=%d other length: g[%d]=%v, want %v", n, i, g.Data()[i], wantG[i])
			}
		}
	}
}
