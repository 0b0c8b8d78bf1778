package ops

import (
	"math"
	"math/rand/v2"
	"testing"
)

// ulps is the distance between a and b in units in the last place of
// float32.
func ulps(a, b float32) float64 {
	if a == b {
		return 0
	}
	ia, ib := int64(math.Float32bits(a)), int64(math.Float32bits(b))
	if ia < 0x80000000 != (ib < 0x80000000) {
		return math.Inf(1)
	}
	return math.Abs(float64(ia - ib))
}

// TestFloat32Kernels checks expf, sigmoidf and tanhf against the float64
// functions of package math rounded to float32, over the whole useful
// range and the special values.
func TestFloat32Kernels(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	worst := map[string]float64{}
	check := func(name string, x, got float32, want float64, tol float64) {
		w := float32(want)
		if math.IsNaN(want) {
			if got == got {
				t.Fatalf("%s(%g) = %g, want NaN", name, x, got)
			}
			return
		}
		u := ulps(got, w)
		// below the normal range count absolute error in units of the
		// smallest subnormal instead
		if math.Abs(want) < 1.2e-38 {
			u = math.Abs(float64(got)-want) / 1.4e-45
		}
		worst[name] = max(worst[name], u)
		if u > tol {
			t.Fatalf("%s(%g) = %g, want %g (%v ulp)", name, x, got, w, u)
		}
	}
	xs := []float32{0, -0, 1, -1, 1e-8, -1e-8, 0.55, -0.55, 88.7, 88.72283, -87.3, -103.9, -104, 89, -200, 200,
		float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.NaN())}
	for range 200000 {
		xs = append(xs, float32(rng.Float64()*220-110), float32(rng.NormFloat64()*3))
	}
	for _, x := range xs {
		check("expf", x, expf(x), math.Exp(float64(x)), 2)
		check("sigmoidf", x, sigmoidf(x), SigmoidF(float64(x)), 3)
		check("tanhf", x, tanhf(x), math.Tanh(float64(x)), 3)
	}
	t.Logf("worst errors (ulp): %v", worst)
}

// BenchmarkSigmoid32 compares the float32 sigmoid with the float64 one.
func BenchmarkSigmoid32(b *testing.B) {
	xs := make([]float32, 4096)
	for i := range xs {
		xs[i] = float32(i)/256 - 8
	}
	b.Run("float32", func(b *testing.B) {
		for range b.N {
			for i, x := range xs {
				xs[i] = sigmoidf(x) - 0.5
			}
		}
	})
	b.Run("float64", func(b *testing.B) {
		for range b.N {
			for i, x := range xs {
				xs[i] = float32(SigmoidF(float64(x))) - 0.5
			}
		}
	})
}
