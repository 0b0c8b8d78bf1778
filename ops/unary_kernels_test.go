package ops

import (
	"math"
	"math/rand/v2"
	"testing"
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
