package vec

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"testing"
)

// The references below are the batch-normalisation loops of package ops as
// they were before they moved here, written element by element (with the
// products converted explicitly, so that no compiler fuses them), and the
// fixed order of the sums written as plainly as possible: lane i mod 8,
// then the reduction tree. Every path must agree with them bit for bit.

func refReduce(s [8]float64) float64 {
	return ((s[0] + s[4]) + (s[2] + s[6])) + ((s[1] + s[5]) + (s[3] + s[7]))
}

func refSum[F Float](x []F) float64 {
	var s [8]float64
	for i, v := range x {
		s[i%8] += float64(v)
	}
	return refReduce(s)
}

func refSumSqDev[F Float](x []F, mu float64) float64 {
	var s [8]float64
	for i, v := range x {
		d := float64(v) - mu
		s[i%8] += float64(d * d)
	}
	return refReduce(s)
}

func refSumGradDot[F Float](g, x []F, mu, is float64) (float64, float64) {
	var a, b [8]float64
	for i := range g {
		gv := float64(g[i])
		a[i%8] += gv
		b[i%8] += float64(float64(gv*(float64(x[i])-mu)) * is)
	}
	return refReduce(a), refReduce(b)
}

func refNormalize[F Float](x, y []F, mu, is, gamma, beta []float64) {
	for i, v := range x {
		y[i] = F(float64(float64((float64(v)-mu[i])*is[i])*gamma[i]) + beta[i])
	}
}

func refNormGrad[F Float](x, g, dx []F, mu, is, scale, mg, mgx []float64) {
	for i, v := range x {
		xh := float64((float64(v) - mu[i]) * is[i])
		dx[i] = F(scale[i] * (float64(g[i]) - mg[i] - float64(xh*mgx[i])))
	}
}

func refScaleGrad[F Float](g, dx []F, scale []float64) {
	for i, v := range g {
		dx[i] = F(scale[i] * float64(v))
	}
}

var bnLengths = []int{0, 1, 3, 7, 8, 9, 15, 16, 17, 49, 196, 1000}

// specials64 are float64 parameter values: signed zeros, infinities, NaNs
// (with payloads), subnormals, huge and tiny values.
var specials64 = []float64{0, math.Copysign(0, -1), math.Inf(1), math.Inf(-1), math.NaN(),
	math.Float64frombits(0x7ff8000000000123), math.Float64frombits(0xfff4000000000005),
	5e-324, -5e-324, 1e-310, -2.5e-315, math.MaxFloat64, -math.MaxFloat64, 1e300, -1e300, 1e-300, 1, -1, 1e38, 3e-39}

// bnRegimes are the kinds of float32 rows the tests draw.
var bnRegimes = []string{"normal", "mixed", "subnormal", "huge"}

// bnRow returns n float32 values of the regime at offset off into a slice
// with guard values after them: "normal" N(μ, 3²) values around a random
// centre, "mixed" those of actInput (specials and random bit patterns at
// random places), "subnormal" subnormals, ±0 and the smallest normals,
// "huge" values up to ±MaxFloat32.
func bnRow(r *rand.Rand, regime string, n, off int) (full, x []float32) {
	if regime == "mixed" {
		return actInput(r, n, off)
	}
	full = make([]float32, off+n+guard)
	c := r.NormFloat64() * 5
	for i := range full {
		switch regime {
		case "normal":
			full[i] = float32(c + 3*r.NormFloat64())
		case "subnormal":
			v := f32(r.Uint32N(1<<23+100) | r.Uint32()&(1<<31)) // subnormal, ±0 or just normal
			full[i] = v
		case "huge":
			full[i] = float32(math.Ldexp(r.NormFloat64(), 100+r.IntN(28)))
		}
	}
	return full, full[off : off+n]
}

// bnParam returns a parameter value: usually a normal value of about scale
// (scale 0 gives values near 1), in one case in special a value of
// specials64.
func bnParam(r *rand.Rand, scale float64, special int) float64 {
	if special > 0 && r.IntN(special) == 0 {
		return specials64[r.IntN(len(specials64))]
	}
	if scale == 0 {
		return 0.5 + r.Float64()
	}
	return r.NormFloat64() * scale
}

// bnParams are the parameters of one call: for the scalar kernels the
// first element of each slice, for the per-channel kernels n of them.
type bnParams struct {
	mu, is, gamma, beta, scale, mg, mgx []float64
}

// newBNParams draws n sets of parameters. special is 0 (no special
// values), or k for one in k a value of specials64; regime "subnormal"
// scales is and mgx down so that products land in the float64 subnormal
// range, "huge" up so that they overflow.
func newBNParams(r *rand.Rand, n int, special int, regime string) bnParams {
	p := bnParams{}
	f := func(scale float64) []float64 {
		s := make([]float64, max(n, 1))
		for i := range s {
			s[i] = bnParam(r, scale, special)
		}
		return s
	}
	p.mu, p.is, p.gamma, p.beta = f(1), f(0), f(1), f(0.1)
	p.scale, p.mg, p.mgx = f(1), f(0.1), f(0.1)
	switch regime {
	case "subnormal":
		for i := range p.is {
			p.is[i] *= 1e-270
			p.mgx[i] *= 1e-270
		}
	case "huge":
		for i := range p.is {
			p.is[i] *= 1e270
			p.scale[i] *= 1e270
		}
	}
	return p
}

// fill returns n copies of v[0] (the scalar kernels' parameters, for the
// references).
func fill(v []float64, n int) []float64 {
	s := make([]float64, n)
	for i := range s {
		s[i] = v[0]
	}
	return s
}

// sameBits64 checks float64 values bit for bit, except that any NaN
// matches any NaN: when two NaNs meet in one operation, which payload
// survives depends on the order of the operands, which Go's compiler may
// swap for + and · (the references and the Go loops, compiled from the
// same expressions, disagree on it), so the payload of a NaN result is not
// part of the contract.
func sameBits64(t *testing.T, what string, got, want []float64) {
	t.Helper()
	for i := range want {
		if math.Float64bits(got[i]) != math.Float64bits(want[i]) && !(math.IsNaN(got[i]) && math.IsNaN(want[i])) {
			t.Fatalf("%s[%d] = %v (%#016x), want %v (%#016x)", what, i, got[i], math.Float64bits(got[i]), want[i], math.Float64bits(want[i]))
		}
	}
}

// sameBits32 is sameBits64 for float32 values.
func sameBits32(t *testing.T, what string, got, want []float32) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: length %d, want %d", what, len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if math.Float32bits(g) != math.Float32bits(w) && !(g != g && w != w) {
			t.Fatalf("%s[%d] = %v (%#08x), want %v (%#08x)", what, i, g, math.Float32bits(g), w, math.Float32bits(w))
		}
	}
}

// garbage returns a buffer of random bits: an output with guards.
func garbage(r *rand.Rand, n, off int) (full, y []float32) {
	full = make([]float32, off+n+guard)
	for i := range full {
		full[i] = f32(r.Uint32())
	}
	return full, full[off : off+n]
}

func garbage64(r *rand.Rand, n, off int) (full, y []float64) {
	full = make([]float64, off+n+guard)
	for i := range full {
		full[i] = r.NormFloat64() * 100
	}
	return full, full[off : off+n]
}

func clone[E any](s []E) []E { return append([]E(nil), s...) }

// bnCases runs f for every kernel path, length, regime and special-value
// density, with fresh inputs x and g (float32, with guards, at a random
// offset) and parameters.
func bnCases(t *testing.T, f func(t *testing.T, r *rand.Rand, what string, n, off int, x, g []float32, p bnParams)) {
	for _, name := range kernelNames {
		withKernel(t, name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(21, 22))
			for _, n := range bnLengths {
				for _, regime := range bnRegimes {
					for _, special := range []int{0, 4} {
						for rep := range 3 {
							off := r.IntN(9)
							_, x := bnRow(r, regime, n, off)
							_, g := bnRow(r, regime, n, off)
							p := newBNParams(r, n, special, regime)
							what := fmt.Sprintf("n=%d %s special=%d rep=%d", n, regime, special, rep)
							f(t, r, what, n, off, x, g, p)
						}
					}
				}
			}
		})
	}
}

// TestBNSumsBitExact checks Sum, SumSqDev and SumGradDot on every path
// against the references bit for bit, and that they leave their inputs
// alone.
func TestBNSumsBitExact(t *testing.T) {
	bnCases(t, func(t *testing.T, r *rand.Rand, what string, n, off int, x, g []float32, p bnParams) {
		xk, gk := clone(x), clone(g)
		mu, is := p.mu[0], p.is[0]
		sameBits64(t, what+" Sum", []float64{Sum(x)}, []float64{refSum(x)})
		sameBits64(t, what+" SumSqDev", []float64{SumSqDev(x, mu)}, []float64{refSumSqDev(x, mu)})
		sg, sgx := SumGradDot(g, x, mu, is)
		wg, wgx := refSumGradDot(g, x, mu, is)
		sameBits64(t, what+" SumGradDot", []float64{sg, sgx}, []float64{wg, wgx})
		sameBits(t, what+" x", x, xk)
		sameBits(t, what+" g", g, gk)
	})
}

// TestBNAccBitExact checks AccSum, AccSqDev and AccGradDot on every path
// against the references, bit for bit, guards included.
func TestBNAccBitExact(t *testing.T) {
	bnCases(t, func(t *testing.T, r *rand.Rand, what string, n, off int, x, g []float32, p bnParams) {
		check := func(name string, run func(acc, acc2 []float64), ref func(acc, acc2 []float64)) {
			t.Helper()
			af, acc := garbage64(r, n, off)
			bf, acc2 := garbage64(r, n, off)
			aw, bw := clone(af), clone(bf)
			ref(aw[off:off+n], bw[off:off+n])
			run(acc, acc2)
			sameBits64(t, what+" "+name, af, aw)
			sameBits64(t, what+" "+name+" (second)", bf, bw)
		}
		check("AccSum", func(acc, _ []float64) { AccSum(acc, x) }, func(acc, _ []float64) {
			for i, v := range x {
				acc[i] += float64(v)
			}
		})
		check("AccSqDev", func(acc, _ []float64) { AccSqDev(acc, x, p.mu[:n]) }, func(acc, _ []float64) {
			for i, v := range x {
				d := float64(v) - p.mu[i]
				acc[i] += float64(d * d)
			}
		})
		check("AccGradDot", func(sg, sgx []float64) { AccGradDot(sg, sgx, g, x, p.mu[:n], p.is[:n]) }, func(sg, sgx []float64) {
			for i := range g {
				gv := float64(g[i])
				sg[i] += gv
				sgx[i] += float64(float64(gv*(float64(x[i])-p.mu[i])) * p.is[i])
			}
		})
	})
}

// TestBNMapsBitExact checks Normalize, NormGrad, ScaleGrad and their
// per-channel forms on every path against the references bit for bit, that
// nothing outside the output is written and the inputs are left alone;
// and in place (the output is an input).
func TestBNMapsBitExact(t *testing.T) {
	bnCases(t, func(t *testing.T, r *rand.Rand, what string, n, off int, x, g []float32, p bnParams) {
		xk, gk := clone(x), clone(g)
		check := func(name string, run, ref func(y []float32)) {
			t.Helper()
			yf, y := garbage(r, n, off)
			wf := clone(yf)
			ref(wf[off : off+n])
			run(y)
			sameBits32(t, what+" "+name, yf, wf)
			sameBits(t, what+" "+name+" x", x, xk)
			sameBits(t, what+" "+name+" g", g, gk)
			// in place: the output is x (Normalize) or g (the gradients)
			in := x
			if name != "Normalize" && name != "NormalizeCh" {
				in = g
			}
			keep := clone(in)
			want := make([]float32, n)
			ref(want)
			run(in)
			sameBits32(t, what+" "+name+" in place", in, want)
			copy(in, keep)
		}
		q := bnParams{fill(p.mu, n), fill(p.is, n), fill(p.gamma, n), fill(p.beta, n), fill(p.scale, n), fill(p.mg, n), fill(p.mgx, n)}
		check("Normalize", func(y []float32) { Normalize(x, y, p.mu[0], p.is[0], p.gamma[0], p.beta[0]) },
			func(y []float32) { refNormalize(x, y, q.mu, q.is, q.gamma, q.beta) })
		check("NormGrad", func(dx []float32) { NormGrad(x, g, dx, p.mu[0], p.is[0], p.scale[0], p.mg[0], p.mgx[0]) },
			func(dx []float32) { refNormGrad(x, g, dx, q.mu, q.is, q.scale, q.mg, q.mgx) })
		check("ScaleGrad", func(dx []float32) { ScaleGrad(g, dx, p.scale[0]) },
			func(dx []float32) { refScaleGrad(g, dx, q.scale) })
		c := bnParams{p.mu[:n], p.is[:n], p.gamma[:n], p.beta[:n], p.scale[:n], p.mg[:n], p.mgx[:n]}
		check("NormalizeCh", func(y []float32) { NormalizeCh(x, y, c.mu, c.is, c.gamma, c.beta) },
			func(y []float32) { refNormalize(x, y, c.mu, c.is, c.gamma, c.beta) })
		check("NormGradCh", func(dx []float32) { NormGradCh(x, g, dx, c.mu, c.is, c.scale, c.mg, c.mgx) },
			func(dx []float32) { refNormGrad(x, g, dx, c.mu, c.is, c.scale, c.mg, c.mgx) })
		check("ScaleGradCh", func(dx []float32) { ScaleGradCh(g, dx, c.scale) },
			func(dx []float32) { refScaleGrad(g, dx, c.scale) })
	})
}

// TestBNFloat64 checks the float64 forms (always the Go loops) against the
// references: the same order of the sums, the same expressions.
func TestBNFloat64(t *testing.T) {
	r := rand.New(rand.NewPCG(23, 24))
	for _, n := range bnLengths {
		for _, special := range []int{0, 4} {
			x, g := make([]float64, n), make([]float64, n)
			for i := range x {
				x[i], g[i] = bnParam(r, 3, special), bnParam(r, 1, special)
			}
			p := newBNParams(r, n, special, "normal")
			what := fmt.Sprintf("n=%d special=%d", n, special)
			sameBits64(t, what+" Sum", []float64{Sum(x)}, []float64{refSum(x)})
			sameBits64(t, what+" SumSqDev", []float64{SumSqDev(x, p.mu[0])}, []float64{refSumSqDev(x, p.mu[0])})
			sg, sgx := SumGradDot(g, x, p.mu[0], p.is[0])
			wg, wgx := refSumGradDot(g, x, p.mu[0], p.is[0])
			sameBits64(t, what+" SumGradDot", []float64{sg, sgx}, []float64{wg, wgx})
			c := bnParams{p.mu[:n], p.is[:n], p.gamma[:n], p.beta[:n], p.scale[:n], p.mg[:n], p.mgx[:n]}
			y, w := make([]float64, n), make([]float64, n)
			NormalizeCh(x, y, c.mu, c.is, c.gamma, c.beta)
			refNormalize(x, w, c.mu, c.is, c.gamma, c.beta)
			sameBits64(t, what+" NormalizeCh", y, w)
			NormGradCh(x, g, y, c.mu, c.is, c.scale, c.mg, c.mgx)
			refNormGrad(x, g, w, c.mu, c.is, c.scale, c.mg, c.mgx)
			sameBits64(t, what+" NormGradCh", y, w)
			ScaleGradCh(g, y, c.scale)
			refScaleGrad(g, w, c.scale)
			sameBits64(t, what+" ScaleGradCh", y, w)
			q := bnParams{fill(p.mu, n), fill(p.is, n), fill(p.gamma, n), fill(p.beta, n), fill(p.scale, n), fill(p.mg, n), fill(p.mgx, n)}
			Normalize(x, y, p.mu[0], p.is[0], p.gamma[0], p.beta[0])
			refNormalize(x, w, q.mu, q.is, q.gamma, q.beta)
			sameBits64(t, what+" Normalize", y, w)
			NormGrad(x, g, y, p.mu[0], p.is[0], p.scale[0], p.mg[0], p.mgx[0])
			refNormGrad(x, g, w, q.mu, q.is, q.scale, q.mg, q.mgx)
			sameBits64(t, what+" NormGrad", y, w)
			ScaleGrad(g, y, p.scale[0])
			refScaleGrad(g, w, q.scale)
			sameBits64(t, what+" ScaleGrad", y, w)
			acc, acc2 := make([]float64, n), make([]float64, n)
			AccSum(acc, x)
			AccSqDev(acc2, x, c.mu)
			for i, v := range x {
				d := v - c.mu[i]
				if acc[i] != v && !(math.IsNaN(v) && math.IsNaN(acc[i])) ||
					math.Float64bits(acc2[i]) != math.Float64bits(0+float64(d*d)) {
					t.Fatalf("%s: AccSum/AccSqDev[%d] = %v, %v for x %v, mu %v", what, i, acc[i], acc2[i], v, c.mu[i])
				}
			}
		}
	}
}

// TestBNSumOrder pins the order of the sums with values whose sum depends
// on it: ±2⁶⁰ in lanes 1 and 3 cancel in ((s1+s5)+(s3+s7)), while the 1 of
// lane 2 and the ½ of the tail (lane 0) survive in ((s0+s4)+(s2+s6)); a
// sequential sum, or four partial sums, would lose the 1 to 2⁶⁰.
func TestBNSumOrder(t *testing.T) {
	for _, name := range kernelNames {
		withKernel(t, name, func(t *testing.T) {
			x := make([]float32, 17)
			x[1], x[2], x[3], x[16] = 1<<60, 1, -(1 << 60), 0.5
			if got := Sum(x); got != 1.5 {
				t.Fatalf("Sum = %v, want 1.5", got)
			}
			g := make([]float32, 17)
			copy(g, x)
			for i := range x {
				x[i] = 1
			}
			if sg, sgx := SumGradDot(g, x, 0, 1); sg != 1.5 || sgx != 1.5 {
				t.Fatalf("SumGradDot = %v, %v, want 1.5, 1.5", sg, sgx)
			}
		})
	}
}

// TestBNMXCSR checks that the kernels leave Go's subnormal handling alone
// and compute with subnormals.
func TestBNMXCSR(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	for _, name := range kernelNames {
		withKernel(t, name, func(t *testing.T) {
			x := make([]float32, 19)
			for i := range x {
				x[i] = subnormal
			}
			y := make([]float32, len(x))
			if s := Sum(x); s != 19*float64(subnormal) {
				t.Fatalf("Sum of subnormals = %g", s)
			}
			Normalize(x, y, 0, 1, 1, 0)
			if y[18] != subnormal {
				t.Fatalf("Normalize(%g) = %g", subnormal, y[18])
			}
			if !goKeepsSubnormals() {
				t.Fatal("MXCSR changed by a batch-normalisation kernel")
			}
		})
	}
}

// TestBNLengthMismatch checks the panics on slices of different lengths.
func TestBNLengthMismatch(t *testing.T) {
	a, b := make([]float32, 4), make([]float32, 5)
	p4, p5 := make([]float64, 4), make([]float64, 5)
	for what, f := range map[string]func(){
		"SumGradDot":  func() { SumGradDot(a, b, 0, 1) },
		"AccSum":      func() { AccSum(p5, a) },
		"AccSqDev":    func() { AccSqDev(p4, a, p5) },
		"AccGradDot":  func() { AccGradDot(p4, p4, a, a, p4, p5) },
		"Normalize":   func() { Normalize(a, b, 0, 1, 1, 0) },
		"NormalizeCh": func() { NormalizeCh(a, a, p4, p4, p5, p4) },
		"NormGrad":    func() { NormGrad(a, a, b, 0, 1, 1, 0, 0) },
		"NormGradCh":  func() { NormGradCh(a, a, a, p4, p4, p4, p4, p5) },
		"ScaleGrad":   func() { ScaleGrad(a, b, 1) },
		"ScaleGradCh": func() { ScaleGradCh(a, a, p5) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s did not panic", what)
				}
			}()
			f()
		}()
	}
}
