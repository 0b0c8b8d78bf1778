package vec

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"runtime"
	"testing"
)

var kernelNames = []string{"go", "avx2", "avx512"}

// withKernel runs f with forceKernel pinned, skipping paths the CPU or the
// build lacks.
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

var lengths = []int{0, 1, 7, 15, 16, 17, 31, 63, 65, 1023, 100003}

// refAdam is optim.Adam's float32 loop, element by element, with every
// product rounded explicitly (as Go on amd64 compiles the unconverted
// expressions by default).
func refAdam(theta, m, v, g []float32, c AdamCoeffs) {
	for j := range g {
		d := g[j]
		if c.WeightDecay != 0 {
			d += float32(c.WeightDecay * theta[j])
		}
		m[j] = float32(m[j]*c.B1) + float32(c.C1*d)
		v[j] = float32(v[j]*c.B2) + float32(float32(c.C2*d)*d)
		denom := float32(math.Sqrt(float64(v[j])))/c.BC2Sqrt + c.Eps
		theta[j] -= float32(c.StepSize*m[j]) / denom
	}
}

// refSGD is optim.SGD's float32 loop.
func refSGD(theta, buf, g []float32, c SGDCoeffs) {
	for j := range g {
		d := g[j]
		if c.WeightDecay != 0 {
			d += float32(c.WeightDecay * theta[j])
		}
		if c.HasMomentum {
			if c.First {
				buf[j] = d
			} else {
				buf[j] = float32(buf[j]*c.Momentum) + float32(c.Damp*d)
			}
			if c.Nesterov {
				d += float32(c.Momentum * buf[j])
			} else {
				d = buf[j]
			}
		}
		theta[j] -= float32(c.LR * d)
	}
}

// normal returns a value of about scale with magnitude at least scale/100,
// so that no product of the update underflows.
func normal(r *rand.Rand, scale float64) float32 {
	x := r.NormFloat64()
	return float32(math.Copysign(scale*(0.01+math.Abs(x)), x))
}

// buffers returns n random values at an offset of off elements into a slice
// with guard values after them (checked by checkGuards).
func buffers(r *rand.Rand, n, off int, scale float64, positive bool) (full, x []float32) {
	full = make([]float32, off+n+guard)
	for i := range full {
		full[i] = normal(r, scale)
		if positive {
			full[i] = float32(math.Abs(float64(full[i])))
		}
	}
	return full, full[off : off+n]
}

const guard = 20

func sameBits(t *testing.T, what string, got, want []float32) {
	t.Helper()
	for i := range want {
		if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
			t.Fatalf("%s[%d] = %v (%#08x), want %v (%#08x)", what, i, got[i], math.Float32bits(got[i]), want[i], math.Float32bits(want[i]))
		}
	}
}

func adamConfigs() []AdamCoeffs {
	var cs []AdamCoeffs
	for _, o := range []struct{ lr, b1, b2, eps, wd float64 }{
		{1e-3, 0.9, 0.999, 1e-8, 0},
		{1e-3, 0.9, 0.999, 1e-8, 1e-2},
		{2e-4, 0.5, 0.999, 1e-8, 0}, // DCGAN
		{0.1, 0, 0.99, 1e-3, 0.5},
		{1e-2, 0.9, 0.999, 0, 0},
	} {
		for _, step := range []float64{1, 7, 1000} {
			bc1 := 1 - math.Pow(o.b1, step)
			bc2 := 1 - math.Pow(o.b2, step)
			cs = append(cs, AdamCoeffs{
				B1: float32(o.b1), B2: float32(o.b2), C1: float32(1 - o.b1), C2: float32(1 - o.b2),
				WeightDecay: float32(o.wd), Eps: float32(o.eps),
				StepSize: float32(o.lr / bc1), BC2Sqrt: float32(math.Sqrt(bc2)),
			})
		}
	}
	return cs
}

func sgdConfigs() []SGDCoeffs {
	var cs []SGDCoeffs
	for _, wd := range []float32{0, 1e-4} {
		cs = append(cs, SGDCoeffs{LR: 0.01, WeightDecay: wd})
		for _, first := range []bool{true, false} {
			for _, nesterov := range []bool{false, true} {
				damp := float32(1)
				if !nesterov {
					damp = float32(1 - 0.1)
				}
				cs = append(cs, SGDCoeffs{LR: 0.05, WeightDecay: wd, Momentum: 0.9, Damp: damp,
					HasMomentum: true, First: first, Nesterov: nesterov})
			}
		}
	}
	return cs
}

// TestAdamBitExact checks every kernel path against refAdam bit for bit on
// normal values, at every tail length and a misaligned start, and that no
// element past the end is touched.
func TestAdamBitExact(t *testing.T) {
	for _, name := range kernelNames {
		withKernel(t, name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(1, 2))
			for ci, c := range adamConfigs() {
				for _, n := range lengths {
					off := r.IntN(3)
					th, theta := buffers(r, n, off, 1, false)
					mf, m := buffers(r, n, off, 0.1, false)
					vf, v := buffers(r, n, off, 0.01, true)
					gf, g := buffers(r, n, off, 1, false)
					want := [][]float32{append([]float32(nil), th...), append([]float32(nil), mf...), append([]float32(nil), vf...)}
					gWant := append([]float32(nil), gf...)
					refAdam(want[0][off:off+n], want[1][off:off+n], want[2][off:off+n], g, c)
					Adam(theta, m, v, g, &c)
					what := fmt.Sprintf("config %d n=%d", ci, n)
					sameBits(t, what+" theta", th, want[0])
					sameBits(t, what+" m", mf, want[1])
					sameBits(t, what+" v", vf, want[2])
					sameBits(t, what+" grad", gf, gWant)
				}
			}
		})
	}
}

// TestSGDBitExact is TestAdamBitExact for SGD.
func TestSGDBitExact(t *testing.T) {
	for _, name := range kernelNames {
		withKernel(t, name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(3, 4))
			for ci, c := range sgdConfigs() {
				for _, n := range lengths {
					off := r.IntN(3)
					th, theta := buffers(r, n, off, 1, false)
					bf, buf := buffers(r, n, off, 0.1, false)
					gf, g := buffers(r, n, off, 1, false)
					thWant, bWant := append([]float32(nil), th...), append([]float32(nil), bf...)
					gWant := append([]float32(nil), gf...)
					refSGD(thWant[off:off+n], bWant[off:off+n], g, c)
					if !c.HasMomentum {
						buf = nil // the kernels must not need it
					}
					SGD(theta, buf, g, &c)
					what := fmt.Sprintf("config %d n=%d", ci, n)
					sameBits(t, what+" theta", th, thWant)
					sameBits(t, what+" buf", bf, bWant)
					sameBits(t, what+" grad", gf, gWant)
				}
			}
		})
	}
}

// Package variables keep the compiler from folding the subnormal checks.
var (
	subnormal = float32(1e-39)
	one       = float32(1)
	small     = float32(1e-30)
	smaller   = float32(1e-10)
)

// goKeepsSubnormals reports whether Go arithmetic on this thread still
// produces and reads subnormals (MXCSR's FTZ and DAZ clear).
func goKeepsSubnormals() bool {
	daz := subnormal * one // DAZ would read the input as 0
	ftz := small * smaller // 1e-40: FTZ would flush the result
	return daz == subnormal && ftz != 0 && ftz < 1.2e-38
}

// TestSubnormals checks that the SIMD kernels flush subnormal moments and
// gradients to zero, that the Go loop keeps them, and that MXCSR is as
// before after a kernel has run (on the same OS thread).
func TestSubnormals(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if !goKeepsSubnormals() {
		t.Fatal("Go arithmetic flushes subnormals before any kernel ran")
	}
	const n = 37 // two AVX2 vectors, one AVX-512 vector and masked tails
	for _, name := range kernelNames {
		withKernel(t, name, func(t *testing.T) {
			c := adamConfigs()[0]
			theta, m, v, g := make([]float32, n), make([]float32, n), make([]float32, n), make([]float32, n)
			for i := range n {
				theta[i], m[i], v[i] = 0.5, subnormal, subnormal
			}
			g[n-1] = subnormal // d is subnormal: DAZ reads it as 0
			Adam(theta, m, v, g, &c)
			if !goKeepsSubnormals() {
				t.Fatal("MXCSR changed by the Adam kernel")
			}
			for i := range n {
				if name == "go" {
					if m[i] == 0 || v[i] == 0 {
						t.Fatalf("Go loop flushed m[%d]=%g v[%d]=%g", i, m[i], i, v[i])
					}
					continue
				}
				if m[i] != 0 || v[i] != 0 || theta[i] != 0.5 {
					t.Fatalf("%s: element %d: m=%g v=%g theta=%g, want 0 0 0.5", name, i, m[i], v[i], theta[i])
				}
			}

			s := SGDCoeffs{LR: 0.01, Momentum: 0.9, Damp: 1, HasMomentum: true}
			buf := make([]float32, n)
			for i := range n {
				theta[i], buf[i], g[i] = 0.5, subnormal, 0
			}
			SGD(theta, buf, g, &s)
			if !goKeepsSubnormals() {
				t.Fatal("MXCSR changed by the SGD kernel")
			}
			for i := range n {
				if (buf[i] == 0) != (name != "go") {
					t.Fatalf("%s: buf[%d] = %g", name, i, buf[i])
				}
				if theta[i] != 0.5 {
					t.Fatalf("%s: theta[%d] = %g, want 0.5", name, i, theta[i])
				}
			}
		})
	}
}

// TestSubnormalCoefficients checks that a subnormal coefficient sends the
// update to the Go loop on every path: eps = 1e-40 read as zero by DAZ
// would turn the zero update of a zero moment into 0/0.
func TestSubnormalCoefficients(t *testing.T) {
	for _, name := range kernelNames {
		withKernel(t, name, func(t *testing.T) {
			c := adamConfigs()[0]
			c.Eps = 1e-40
			theta, m, v, g := []float32{0.5, 1, 2}, make([]float32, 3), make([]float32, 3), make([]float32, 3)
			g[2] = 1
			want := [][]float32{append([]float32(nil), theta...), make([]float32, 3), make([]float32, 3)}
			refAdam(want[0], want[1], want[2], g, c)
			Adam(theta, m, v, g, &c)
			sameBits(t, "theta", theta, want[0])
			sameBits(t, "m", m, want[1])
			sameBits(t, "v", v, want[2])

			s := SGDCoeffs{LR: 1e-40, Momentum: 0.9, Damp: 1, HasMomentum: true}
			buf, bWant := []float32{1, 1, 1}, []float32{1, 1, 1}
			thWant := append([]float32(nil), theta...)
			refSGD(thWant, bWant, g, s)
			SGD(theta, buf, g, &s)
			sameBits(t, "sgd theta", theta, thWant)
			sameBits(t, "sgd buf", buf, bWant)
		})
	}
}

// TestBatch runs batches of many tensors (large enough to split across
// goroutines when GOMAXPROCS > 1) against the references, and checks that
// Run allocates nothing once warm.
func TestBatch(t *testing.T) {
	if runtime.GOMAXPROCS(0) < 2 {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(2))
	}
	sizes := []int{3, ParallelMin/2 + 5, 17, ParallelMin + 1, 1, 0, 40000}
	for _, name := range kernelNames {
		withKernel(t, name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(5, 6))
			var ab AdamBatch
			var sb SGDBatch
			type st struct{ theta, m, v, g, wTheta, wM, wV, sTheta, sBuf, wsTheta, wsBuf []float32 }
			var ts []st
			for _, n := range sizes {
				_, theta := buffers(r, n, 0, 1, false)
				_, m := buffers(r, n, 0, 0.1, false)
				_, v := buffers(r, n, 0, 0.01, true)
				_, g := buffers(r, n, 0, 1, false)
				_, buf := buffers(r, n, 0, 0.1, false)
				x := st{theta: theta, m: m, v: v, g: g,
					wTheta: append([]float32(nil), theta...), wM: append([]float32(nil), m...), wV: append([]float32(nil), v...),
					sTheta: append([]float32(nil), theta...), sBuf: buf,
					wsTheta: append([]float32(nil), theta...), wsBuf: append([]float32(nil), buf...)}
				ts = append(ts, x)
			}
			ac, sc := adamConfigs(), sgdConfigs()
			for i, x := range ts {
				refAdam(x.wTheta, x.wM, x.wV, x.g, ac[i%len(ac)])
				ab.Add(AdamTensor{Theta: x.theta, M: x.m, V: x.v, Grad: x.g, Coeffs: ac[i%len(ac)]})
				c := sc[3+i%4] // momentum configurations, with weight decay
				refSGD(x.wsTheta, x.wsBuf, x.g, c)
				sb.Add(SGDTensor{Theta: x.sTheta, Buf: x.sBuf, Grad: x.g, Coeffs: c})
			}
			ab.Run()
			sb.Run()
			for i, x := range ts {
				what := fmt.Sprintf("tensor %d (n=%d)", i, sizes[i])
				sameBits(t, what+" adam theta", x.theta, x.wTheta)
				sameBits(t, what+" adam m", x.m, x.wM)
				sameBits(t, what+" adam v", x.v, x.wV)
				sameBits(t, what+" sgd theta", x.sTheta, x.wsTheta)
				sameBits(t, what+" sgd buf", x.sBuf, x.wsBuf)
			}
			allocs := testing.AllocsPerRun(10, func() {
				for i, x := range ts {
					ab.Add(AdamTensor{Theta: x.theta, M: x.m, V: x.v, Grad: x.g, Coeffs: ac[i%len(ac)]})
					sb.Add(SGDTensor{Theta: x.sTheta, Buf: x.sBuf, Grad: x.g, Coeffs: sc[3+i%4]})
				}
				ab.Run()
				sb.Run()
			})
			if allocs != 0 {
				t.Errorf("%v allocations per Add+Run", allocs)
			}
		})
	}
}

// TestCutAt checks the work split: positions are monotone, cut at cache
// line multiples, and cover every element exactly once.
func TestCutAt(t *testing.T) {
	var b AdamBatch
	sizes := []int{5, 0, 100, 33, 1000, 1}
	total := 0
	for _, n := range sizes {
		x := make([]float32, n)
		b.Add(AdamTensor{Theta: x, M: x, V: x, Grad: x})
		total += n
	}
	for parts := 1; parts <= 7; parts++ {
		seen := make([]int, total)
		prev := pos{}
		for k := 1; k <= parts; k++ {
			p := cutAt(&b, total*k/parts)
			if p.i < prev.i || (p.i == prev.i && p.off < prev.off) || p.off%line != 0 {
				t.Fatalf("parts=%d: cut %d at %+v after %+v", parts, k, p, prev)
			}
			start := 0
			for i, n := range sizes {
				for j := range n {
					in := (i > prev.i || (i == prev.i && j >= prev.off)) && (i < p.i || (i == p.i && j < p.off))
					if in {
						seen[start+j]++
					}
				}
				start += n
			}
			prev = p
		}
		for e, c := range seen {
			if c != 1 {
				t.Fatalf("parts=%d: element %d covered %d times", parts, e, c)
			}
		}
	}
}

// TestNoSIMD: BACKPROP_NOSIMD=1 (read at start-up) selects the Go loop, and
// forceKernel overrides detection.
func TestNoSIMD(t *testing.T) {
	if os.Getenv("VEC_NOSIMD_CHILD") == "1" {
		if !noSIMD || kernel() != "go" {
			t.Fatal("BACKPROP_NOSIMD=1 did not select the Go loop")
		}
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestNoSIMD$", "-test.count=1")
	cmd.Env = append(os.Environ(), "BACKPROP_NOSIMD=1", "VEC_NOSIMD_CHILD=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	old := forceKernel
	defer func() { forceKernel = old }()
	for _, name := range kernelNames {
		forceKernel = name
		if got := kernel(); got != name && kernelAvailable(name) {
			t.Errorf("forceKernel=%q picked %q", name, got)
		}
	}
}

// TestLengthMismatch checks the panics on slices of different lengths.
func TestLengthMismatch(t *testing.T) {
	mustPanic := func(what string, f func()) {
		t.Helper()
		defer func() {
			if recover() == nil {
				t.Errorf("%s did not panic", what)
			}
		}()
		f()
	}
	a, b := make([]float32, 4), make([]float32, 5)
	mustPanic("Adam", func() { Adam(a, a, b, a, &AdamCoeffs{}) })
	mustPanic("SGD", func() { SGD(a, b, a, &SGDCoeffs{HasMomentum: true}) })
	mustPanic("AdamBatch.Add", func() { new(AdamBatch).Add(AdamTensor{Theta: a, M: a, V: a, Grad: b}) })
	mustPanic("SGDBatch.Add", func() { new(SGDBatch).Add(SGDTensor{Theta: a, Grad: b}) })
	SGD(a, nil, a, &SGDCoeffs{LR: 1}) // no buffer needed without momentum
}
