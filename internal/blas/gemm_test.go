package blas

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"runtime"
	"testing"

	"github.com/backprop-dev/backprop/internal/parallel"
)

type shape struct{ m, n, k int }

// withKernel runs f with forceKernel pinned, skipping paths the CPU lacks.
func withKernel(t *testing.T, name string, f func(t *testing.T)) {
	t.Run(name, func(t *testing.T) {
		if !kernelAvailable(name) {
			t.Skipf("kernel %s not available on this CPU/build", name)
		}
		old := forceKernel
		forceKernel = name
		defer func() { forceKernel = old }()
		f(t)
	})
}

var kernelNames = []string{"avx512", "avx2", "go"}

// operands builds op(A) m×k, op(B) k×n and C m×n stored with padded strides.
func operands[T Float](rng *rand.Rand, tA, tB bool, s shape, pad int) (a []T, lda int, b []T, ldb int, c []T, ldc int) {
	ar, ac := s.m, s.k
	if tA {
		ar, ac = s.k, s.m
	}
	br, bc := s.k, s.n
	if tB {
		br, bc = s.n, s.k
	}
	lda, ldb, ldc = ac+pad, bc+pad, s.n+pad
	fill := func(rows, ld int) []T {
		x := make([]T, (rows-1)*ld+ld)
		for i := range x {
			x[i] = T(rng.Float64()*2 - 1)
		}
		return x
	}
	return fill(ar, lda), lda, fill(br, ldb), ldb, fill(s.m, ldc), ldc
}

// checkGemm compares Gemm against gemmGeneric evaluated in float64, with an
// error bound scaled by Σ|a||b| (the float32 accumulation error grows with
// the sum of magnitudes, roughly like √k·eps).
func checkGemm[T Float](t *testing.T, tA, tB bool, s shape, pad int, alpha, beta T, rng *rand.Rand) {
	t.Helper()
	a, lda, b, ldb, c, ldc := operands[T](rng, tA, tB, s, pad)
	c0 := append([]T(nil), c...)
	Gemm(tA, tB, s.m, s.n, s.k, alpha, a, lda, b, ldb, beta, c, ldc)

	a64, b64, c64 := to64(a), to64(b), to64(c0)
	abs := func(x []float64) []float64 {
		y := make([]float64, len(x))
		for i, v := range x {
			y[i] = math.Abs(v)
		}
		return y
	}
	ref := append([]float64(nil), c64...)
	scaleC(s.m, s.n, float64(beta), ref, ldc)
	gemmGeneric(tA, tB, s.m, s.n, s.k, float64(alpha), a64, lda, b64, ldb, ref, ldc)
	mag := make([]float64, len(c64))
	gemmGeneric(tA, tB, s.m, s.n, s.k, math.Abs(float64(alpha)), abs(a64), lda, abs(b64), ldb, mag, ldc)

	var eps float64 = 1.2e-7
	if _, ok := any(alpha).(float64); ok {
		eps = 2.3e-16
	}
	tol := 8 * eps * math.Sqrt(float64(s.k)+1)
	for i := 0; i < s.m; i++ {
		for j := 0; j < ldc && i*ldc+j < len(c); j++ {
			idx := i*ldc + j
			got := float64(c[idx])
			if j >= s.n { // padding must be untouched
				if c[idx] != c0[idx] {
					t.Fatalf("%v tA=%v tB=%v: padding C[%d,%d] changed", s, tA, tB, i, j)
				}
				continue
			}
			bound := tol*(mag[idx]+math.Abs(float64(beta)*c64[idx])) + 1e-30
			if d := math.Abs(got - ref[idx]); !(d <= bound) {
				t.Fatalf("%v tA=%v tB=%v pad=%d alpha=%v beta=%v: C[%d,%d]=%v want %v (|diff| %.3g > %.3g)",
					s, tA, tB, pad, alpha, beta, i, j, got, ref[idx], d, bound)
			}
		}
	}
}

func to64[T Float](x []T) []float64 {
	y := make([]float64, len(x))
	for i, v := range x {
		y[i] = float64(v)
	}
	return y
}

func testShapes() []shape {
	sizes := []int{1, 7, 63, 65, 1023}
	var out []shape
	for i, m := range sizes {
		for j, n := range sizes {
			for l, k := range sizes {
				// Keep every combination with at most one 1023 (two when
				// the third side is 1) so the suite stays quick.
				big := 0
				for _, x := range []int{m, n, k} {
					if x == 1023 {
						big++
					}
				}
				if big > 1 && !(big == 2 && (m == 1 || n == 1 || k == 1)) {
					continue
				}
				if raceEnabled && (big > 0 || (i+j+l)%3 != 0) {
					continue
				}
				out = append(out, shape{m, n, k})
			}
		}
	}
	out = append(out, shape{12, 32, 5}, shape{24, 64, 300}, shape{13, 33, 257}, shape{100, 16, 40}, shape{50, 17, 9}, shape{130, 200, 600})
	if !raceEnabled {
		out = append(out, shape{1000, 32, 25}, shape{300, 128, 600}, shape{16, 64, 2000}, shape{520, 530, 270})
	}
	return out
}

func TestSgemmPaths(t *testing.T) {
	for _, name := range kernelNames {
		withKernel(t, name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(1, 2))
			for si, s := range testShapes() {
				for tc := 0; tc < 4; tc++ {
					tA, tB := tc&1 != 0, tc&2 != 0
					pad := (si + tc) % 3 * 3
					beta := []float32{0, 1, 0.5}[(si+tc)%3]
					checkGemm(t, tA, tB, s, pad, float32(1.5), beta, rng)
				}
			}
		})
	}
}

// TestSgemmBlocking shrinks the cache blocks and forces each of the packed /
// direct operand modes and the parallel split so every driver branch runs on
// small inputs (and under -race).
func TestSgemmBlocking(t *testing.T) {
	type cfg struct {
		kc, mc, nc, dA, dB int
		par                float64
	}
	cfgs := []cfg{
		{kc: 16, mc: 24, nc: 64, dA: 0, dB: 0, par: 1},
		{kc: 16, mc: 24, nc: 64, dA: 1 << 30, dB: 1 << 30, par: 1},
		{kc: 33, mc: 36, nc: 96, dA: 0, dB: 1 << 30, par: 1e12},
		{kc: 7, mc: 12, nc: 32, dA: 1 << 30, dB: 0, par: 1},
	}
	save := []any{blockKC, blockMC, blockNC, directAMaxN, directBMaxM, parallelFlops, flopsPerWorker, directBMaxK}
	defer func() {
		blockKC, blockMC, blockNC = save[0].(int), save[1].(int), save[2].(int)
		directAMaxN, directBMaxM = save[3].(int), save[4].(int)
		parallelFlops, flopsPerWorker = save[5].(float64), save[6].(float64)
		directBMaxK = save[7].(int)
	}()
	shapes := []shape{{1, 1, 1}, {7, 9, 13}, {25, 70, 40}, {63, 65, 66}, {130, 33, 17}, {40, 200, 51}, {7, 20, 200}, {13, 70, 150}}
	for _, name := range kernelNames {
		withKernel(t, name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(3, 4))
			for ci, c := range cfgs {
				blockKC, blockMC, blockNC = c.kc, c.mc, c.nc
				directAMaxN, directBMaxM, directBMaxK = c.dA, c.dB, c.dB
				parallelFlops, flopsPerWorker = c.par, 1
				for si, s := range shapes {
					for tc := 0; tc < 4; tc++ {
						tA, tB := tc&1 != 0, tc&2 != 0
						beta := []float32{0, 1, 0.5}[(si+tc+ci)%3]
						t.Run(fmt.Sprint(ci), func(t *testing.T) {
							checkGemm(t, tA, tB, s, (si+ci)%2*5, float32(-0.75), beta, rng)
						})
					}
				}
			}
		})
	}
}

func TestDgemm(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	shapes := []shape{{1, 1, 1}, {7, 63, 65}, {65, 7, 63}, {63, 65, 7}, {130, 129, 300}}
	if !raceEnabled {
		shapes = append(shapes, shape{1023, 65, 7}, shape{65, 63, 1023}, shape{200, 300, 400})
	}
	for si, s := range shapes {
		for tc := 0; tc < 4; tc++ {
			beta := []float64{0, 1, 0.5}[(si+tc)%3]
			checkGemm(t, tc&1 != 0, tc&2 != 0, s, tc%2*2, 0.5, beta, rng)
		}
	}
}

// TestNamedFloat covers element types that are ~float32 but not float32.
func TestNamedFloat(t *testing.T) {
	type f32 float32
	rng := rand.New(rand.NewPCG(7, 8))
	checkGemm(t, false, true, shape{20, 30, 40}, 1, f32(2), f32(0.5), rng)
}

// TestBetaZeroIgnoresNaN: beta == 0 must overwrite C, not multiply NaNs.
func TestBetaZeroIgnoresNaN(t *testing.T) {
	for _, name := range kernelNames {
		withKernel(t, name, func(t *testing.T) {
			for _, s := range []shape{{3, 3, 3}, {40, 50, 60}, {13, 33, 20}} {
				a := make([]float32, s.m*s.k)
				b := make([]float32, s.k*s.n)
				c := make([]float32, s.m*s.n)
				for i := range a {
					a[i] = 1
				}
				for i := range b {
					b[i] = 1
				}
				for i := range c {
					c[i] = float32(math.NaN())
				}
				Gemm(false, false, s.m, s.n, s.k, 1, a, s.k, b, s.n, 0, c, s.n)
				for i, v := range c {
					if v != float32(s.k) {
						t.Fatalf("%v: c[%d]=%v want %d", s, i, v, s.k)
					}
				}
			}
		})
	}
}

func TestNoAllocsAfterWarmup(t *testing.T) {
	if raceEnabled || testing.Short() {
		t.Skip("sync.Pool drops items at random under -race")
	}
	for _, s := range []shape{{256, 256, 256}, {3000, 32, 25}, {16, 64, 3000}} {
		a := make([]float32, s.m*s.k)
		b := make([]float32, s.k*s.n)
		c := make([]float32, s.m*s.n)
		f := func() { Gemm(false, false, s.m, s.n, s.k, 1, a, s.k, b, s.n, 0, c, s.n) }
		f()
		if n := testing.AllocsPerRun(20, f); n > 0.5 {
			t.Errorf("%v: %.1f allocations per call after warm-up", s, n)
		}
	}
}

func TestBadArgsPanic(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("short A did not panic")
		}
	}()
	a := make([]float32, 10)
	b := make([]float32, 100)
	c := make([]float32, 100)
	Gemm(false, false, 10, 10, 10, 1, a, 10, b, 10, 0, c, 10)
}

// TestNoSIMD: BACKPROP_NOSIMD=1 (read at start-up) selects the Go kernel.
func TestNoSIMD(t *testing.T) {
	if os.Getenv("BLAS_NOSIMD_CHILD") == "1" {
		if !noSIMD || pickKernel32(100) != kernGo32 {
			t.Fatal("BACKPROP_NOSIMD=1 did not select the Go kernel")
		}
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestNoSIMD$", "-test.count=1")
	cmd.Env = append(os.Environ(), "BACKPROP_NOSIMD=1", "BLAS_NOSIMD_CHILD=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	old := forceKernel
	defer func() { forceKernel = old }()
	for _, name := range kernelNames {
		forceKernel = name
		if got := pickKernel32(100).name; got != name && kernelAvailable(name) {
			t.Errorf("forceKernel=%q picked %q", name, got)
		}
	}
}

// TestSwappedProduct checks the short-and-wide A·Bᵀ products that run as
// their transpose (see swapped) against the reference, with the swap on
// and off, for every beta.
func TestSwappedProduct(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	shapes := []shape{{64, 256, 784}, {64, 784, 256}, {1, 130, 64}, {96, 192, 64}, {33, 100, 70}}
	for _, off := range []bool{false, true} {
		noSwap = off
		for _, s := range shapes {
			if !off && !swapped(s.m, s.n, s.k) {
				t.Fatalf("%v: expected the transposed evaluation", s)
			}
			for _, beta := range []float32{0, 1, 0.5} {
				checkGemm(t, false, true, s, 2, 1.5, beta, rng)
			}
		}
	}
	noSwap = false
}

// TestSplitKDeterministic: a product split along k must give the same bits
// whether or not helper goroutines are free (another product may be
// holding them), since training runs must be reproducible bit for bit.
func TestSplitKDeterministic(t *testing.T) {
	if runtime.GOMAXPROCS(0) < 2 {
		t.Skip("needs GOMAXPROCS ≥ 2 for a parallel split")
	}
	rng := rand.New(rand.NewPCG(21, 22))
	m, n, k := 128, 128, 4096 // deep and large: split along k
	if serial(m, n, k) {
		t.Fatalf("%d×%d×%d runs serially; the test needs a parallel product", m, n, k)
	}
	a, b := make([]float32, m*k), make([]float32, k*n)
	for i := range a {
		a[i] = float32(rng.NormFloat64())
	}
	for i := range b {
		b[i] = float32(rng.NormFloat64())
	}
	free := make([]float32, m*n)
	Gemm(false, false, m, n, k, 1, a, k, b, n, 0, free, n)
	// Hold every helper, as a concurrent product would.
	held := parallel.Claim(nil, 64)
	busy := make([]float32, m*n)
	Gemm(false, false, m, n, k, 1, a, k, b, n, 0, busy, n)
	for _, h := range held {
		h.Release()
	}
	if len(held) == 0 {
		t.Skip("no helper goroutines to hold")
	}
	for i := range free {
		if math.Float32bits(free[i]) != math.Float32bits(busy[i]) {
			t.Fatalf("C[%d] = %v with helpers free, %v with them busy", i, free[i], busy[i])
		}
	}
}
