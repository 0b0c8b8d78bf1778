package blas

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// matSource is a Source over a stored row-major matrix (row stride ld).
type matSource struct {
	a  []float32
	ld int
}

func (s matSource) Pack(dst []float32, r0, nr, c0, nc, w int) {
	for j := 0; j < nc; j++ {
		d := dst[j/w*nr*w+j%w:]
		for i := 0; i < nr; i++ {
			d[i*w] = s.a[(r0+i)*s.ld+c0+j]
		}
	}
}

func randF32(rng *rand.Rand, n int) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(rng.Float64()*2 - 1)
	}
	return x
}

func sameBits(t *testing.T, what string, got, want []float32) {
	t.Helper()
	for i := range want {
		if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
			t.Fatalf("%s: C[%d] = %v, want %v (stored operands)", what, i, got[i], want[i])
		}
	}
}

// checkSrc runs GemmSrcA and GemmSrcB on stored operands wrapped in a
// Source and compares them bit for bit with the driver on the stored
// operands (Gemm without the transposed evaluation and the small-product
// loops), and GemmSrcA also with the float64 reference within checkGemm's
// bound.
func checkSrc(t *testing.T, s shape, tA, tB bool, beta float32, rng *rand.Rand) {
	t.Helper()
	a, lda, b, ldb, c, ldc := operands[float32](rng, tA, tB, s, 1)
	alpha := float32(-1.25)
	what := fmt.Sprintf("%v tA=%v tB=%v beta=%v", s, tA, tB, beta)
	if !tA {
		want := append([]float32(nil), c...)
		gemmBlocked(pools32, pickKernel32(s.n), false, tB, s.m, s.n, s.k, alpha, a, lda, b, ldb, beta, want, ldc, nil, nil)
		got := append([]float32(nil), c...)
		GemmSrcA(s.m, s.n, s.k, alpha, matSource{a, lda}, tB, b, ldb, beta, got, ldc)
		sameBits(t, "GemmSrcA "+what, got, want)
		ref := append([]float32(nil), c...)
		noSwap = true
		Gemm(false, tB, s.m, s.n, s.k, alpha, a, lda, b, ldb, beta, ref, ldc)
		noSwap = false
		tol := 8 * 1.2e-7 * math.Sqrt(float64(s.k)+1) * (float64(s.k) + 1) * 2
		for i := range ref {
			if d := math.Abs(float64(got[i] - ref[i])); d > tol {
				t.Fatalf("GemmSrcA %s: C[%d] = %v, Gemm %v", what, i, got[i], ref[i])
			}
		}
	}
	if !tB {
		want := append([]float32(nil), c...)
		gemmBlocked(pools32, pickKernel32(s.n), tA, false, s.m, s.n, s.k, alpha, a, lda, b, ldb, beta, want, ldc, nil, nil)
		got := append([]float32(nil), c...)
		GemmSrcB(tA, s.m, s.n, s.k, alpha, a, lda, matSource{b, ldb}, beta, got, ldc)
		sameBits(t, "GemmSrcB "+what, got, want)
	}
}

// TestGemmSrc checks the Source entry points on every kernel, for the
// shapes of TestSgemmPaths and the convolution products' shapes, and with
// the blocks shrunk and the parallel split forced so that every driver
// branch packs from the Source (strips and blocks of A, private, shared
// and split-k panels of B, edge tiles).
func TestGemmSrc(t *testing.T) {
	shapes := append(testShapes(), shape{3136 / 8, 128, 1024}, shape{128, 1024, 3136 / 4}, shape{7 * 7 * 3, 64, 16 * 8})
	type cfg struct {
		kc, mc, nc, dA int
		par            float64
	}
	cfgs := []cfg{{0, 0, 0, 0, 0}, {16, 24, 64, 1 << 30, 1}, {33, 36, 96, 0, 1}, {7, 12, 32, 1 << 30, 1e12}}
	save := []any{blockKC, blockMC, blockNC, directAMaxN, parallelFlops, flopsPerWorker}
	defer func() {
		blockKC, blockMC, blockNC, directAMaxN = save[0].(int), save[1].(int), save[2].(int), save[3].(int)
		parallelFlops, flopsPerWorker = save[4].(float64), save[5].(float64)
	}()
	for _, name := range kernelNames {
		withKernel(t, name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(31, 32))
			for ci, c := range cfgs {
				ss := shapes
				if ci > 0 {
					blockKC, blockMC, blockNC, directAMaxN = c.kc, c.mc, c.nc, c.dA
					parallelFlops, flopsPerWorker = c.par, 1
					ss = []shape{{1, 1, 1}, {7, 9, 13}, {25, 70, 40}, {63, 65, 66}, {130, 33, 17}, {40, 200, 51}, {7, 20, 200}, {13, 70, 150}}
				}
				for si, s := range ss {
					if raceEnabled && s.m*s.n*s.k > 1<<22 {
						continue
					}
					for tc := 0; tc < 4; tc++ {
						checkSrc(t, s, tc&1 != 0, tc&2 != 0, []float32{0, 1, 0.5}[(si+tc+ci)%3], rng)
					}
				}
				blockKC, blockMC, blockNC, directAMaxN = save[0].(int), save[1].(int), save[2].(int), save[3].(int)
				parallelFlops, flopsPerWorker = save[4].(float64), save[5].(float64)
			}
		})
	}
}
