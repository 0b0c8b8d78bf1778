package vec

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"runtime"
	"sync"
	"testing"
)

// The references below are the float32 loops of package ops as they were
// before they moved here (reluf, leakyf, reluGradf), written with branches
// instead of masks, and the scalar Sigmoid: every kernel path must agree
// with them bit for bit, NaN payloads included.

func refReLU(x, y []float32) {
	for i, v := range x {
		if v > 0 {
			y[i] = v
		} else {
			y[i] = 0
		}
	}
}

func refLeakyReLU(x, y []float32, slope float32) {
	for i, v := range x {
		if v > 0 {
			y[i] = v
		} else {
			y[i] = v * slope
		}
	}
}

func refReLUGrad(x, up, g []float32) {
	for i, v := range x {
		if v > 0 {
			g[i] = up[i]
		} else {
			g[i] = 0
		}
	}
}

// refLeakyReLUGrad multiplies by 1 on the positive side, as ops'
// reluGradf did (up·1 quiets a signalling NaN; one is a variable, which the
// compiler cannot fold away as it would the constant 1).
func refLeakyReLUGrad(x, up, g []float32, slope float32) {
	for i, v := range x {
		if v > 0 {
			g[i] = up[i] * one
		} else {
			g[i] = up[i] * slope
		}
	}
}

func refSigmoidPair(x, s, c []float32) {
	for i, v := range x {
		s[i], c[i] = Sigmoid(v), Sigmoid(-v)
	}
}

var actLengths = []int{0, 1, 7, 15, 16, 17, 31, 33, 1000, 100003}

func f32(b uint32) float32 { return math.Float32frombits(b) }

// specials are the values every kernel must get right: signed zeros,
// infinities, NaNs (quiet, signalling, negative, with payloads),
// subnormals, the ends of the normal range and the edges of Exp's range:
// ±88.72 (overflow), ±87.34 (2^−126, where e^x turns subnormal), ±103.97
// (underflow to 0) and ±104, with their float32 neighbours.
func specials() []float32 {
	inf := float32(math.Inf(1))
	xs := []float32{0, f32(1 << 31), inf, -inf,
		f32(0x7fc00000), f32(0xffc00000), f32(0x7f800001), f32(0xff800001), f32(0x7fa00005), f32(0xffc12345),
		f32(1), f32(0x80000001), f32(0x007fffff), f32(0x807fffff), 1e-40, -1e-40, 1e-39, -1e-39,
		math.SmallestNonzeroFloat32, -math.SmallestNonzeroFloat32, 1.17549435e-38, -1.17549435e-38,
		math.MaxFloat32, -math.MaxFloat32, 1, -1, 0.5, -0.5, 1e-8, -1e-8,
		16.635532, -16.635532, 17.328680, -17.328680, 200, -200, 1e10, -1e10}
	for _, c := range []float32{88, 88.5, 88.72283, 88.7229, 89, 87, 87.3, 87.33654, 87.34, 100, 103.5, 103.97208, 104, 104.5, 126, 150} {
		for _, v := range []float32{c, -c} {
			b := math.Float32bits(v)
			for d := uint32(0); d < 4; d++ {
				xs = append(xs, f32(b+d), f32(b-d))
			}
		}
	}
	return xs
}

// actInput returns n inputs: mostly normals of varied scale, with specials
// and random bit patterns at random places (so that they land in full
// vectors and in tails), starting off elements into a slice with guards on
// both sides.
func actInput(r *rand.Rand, n, off int) (full, x []float32) {
	sp := specials()
	full = make([]float32, off+n+guard)
	for i := range full {
		switch k := r.IntN(16); {
		case k == 0:
			full[i] = sp[r.IntN(len(sp))]
		case k == 1:
			full[i] = f32(r.Uint32())
		case k < 5:
			full[i] = float32(r.NormFloat64() * 40)
		default:
			full[i] = float32(r.NormFloat64() * 3)
		}
	}
	return full, full[off : off+n]
}

// sameBitsAll is sameBits over a whole buffer, guards included.
func sameBitsAll(t *testing.T, what string, got, want []float32) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: length %d, want %d", what, len(got), len(want))
	}
	sameBits(t, what, got, want)
}

var slopes = []float32{0.2, 0.01, 0, -0.5, 3, 1e-40}

// TestActivationsBitExact checks every activation kernel on every path
// against the references bit for bit, at every tail length and a
// misaligned start, that nothing outside the output range is written and
// that the inputs are left alone; and in place (output = input).
func TestActivationsBitExact(t *testing.T) {
	for _, name := range kernelNames {
		withKernel(t, name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(7, 8))
			for _, n := range actLengths {
				off := r.IntN(5)
				xf, x := actInput(r, n, off)
				uf, up := actInput(r, n, off)
				xKeep, uKeep := append([]float32(nil), xf...), append([]float32(nil), uf...)
				out := func() (full, y []float32) {
					full = make([]float32, off+n+guard)
					for i := range full {
						full[i] = f32(r.Uint32())
					}
					return full, full[off : off+n]
				}
				check := func(what string, run, ref func(y []float32)) {
					t.Helper()
					gf, got := out()
					wf := append([]float32(nil), gf...)
					ref(wf[off : off+n])
					run(got)
					sameBitsAll(t, fmt.Sprintf("%s n=%d", what, n), gf, wf)
					sameBitsAll(t, what+" x", xf, xKeep)
					sameBitsAll(t, what+" up", uf, uKeep)
				}
				check("ReLU", func(y []float32) { ReLU(x, y) }, func(y []float32) { refReLU(x, y) })
				check("ReLUGrad", func(g []float32) { ReLUGrad(x, up, g) }, func(g []float32) { refReLUGrad(x, up, g) })
				for _, slope := range slopes {
					check(fmt.Sprint("LeakyReLU ", slope), func(y []float32) { LeakyReLU(x, y, slope) },
						func(y []float32) { refLeakyReLU(x, y, slope) })
					check(fmt.Sprint("LeakyReLUGrad ", slope), func(g []float32) { LeakyReLUGrad(x, up, g, slope) },
						func(g []float32) { refLeakyReLUGrad(x, up, g, slope) })
				}
				sf, s := out()
				cf, c := out()
				sw, cw := append([]float32(nil), sf...), append([]float32(nil), cf...)
				refSigmoidPair(x, sw[off:off+n], cw[off:off+n])
				SigmoidPair(x, s, c)
				sameBitsAll(t, fmt.Sprintf("SigmoidPair s n=%d", n), sf, sw)
				sameBitsAll(t, fmt.Sprintf("SigmoidPair c n=%d", n), cf, cw)
				sameBitsAll(t, "SigmoidPair x", xf, xKeep)

				// In place: the output is the input.
				inPlace := func(what string, run func(y []float32), ref func(x, y []float32)) {
					t.Helper()
					got := append([]float32(nil), xf...)
					want := append([]float32(nil), xf...)
					ref(xf[off:off+n], want[off:off+n])
					run(got[off : off+n])
					sameBitsAll(t, fmt.Sprintf("%s in place n=%d", what, n), got, want)
				}
				inPlace("ReLU", func(y []float32) { ReLU(y, y) }, refReLU)
				inPlace("LeakyReLU", func(y []float32) { LeakyReLU(y, y, 0.2) },
					func(x, y []float32) { refLeakyReLU(x, y, 0.2) })
				inPlace("ReLUGrad", func(g []float32) { ReLUGrad(x, g, g) },
					func(_, g []float32) { refReLUGrad(x, append([]float32(nil), g...), g) })
				inPlace("LeakyReLUGrad", func(g []float32) { LeakyReLUGrad(x, g, g, 0.2) },
					func(_, g []float32) { refLeakyReLUGrad(x, append([]float32(nil), g...), g, 0.2) })
				inPlace("SigmoidPair", func(y []float32) { SigmoidPair(y, y, make([]float32, n)) },
					func(x, y []float32) { refSigmoidPair(x, y, make([]float32, n)) })
			}
		})
	}
}

// TestSigmoidPairSweep runs SigmoidPair on every path over dense sweeps of
// float32 values (every value around the edges of Exp's range and zero,
// a stride through the rest of [−110, 110]) and random bit patterns.
func TestSigmoidPairSweep(t *testing.T) {
	var xs []float32
	for _, c := range []float32{0, 87.33655, 88.72283, 103.97208, 16.635532, 0.5, 1e-30, 1.1754944e-38} {
		for _, v := range []float32{c, -c} {
			b := math.Float32bits(v)
			for d := uint32(0); d < 5000; d++ {
				xs = append(xs, f32(b+d), f32(b-d))
			}
		}
	}
	for b := math.Float32bits(-110); b > 1<<31; b -= 997 {
		xs = append(xs, f32(b), f32(b&^(1<<31)))
	}
	r := rand.New(rand.NewPCG(9, 10))
	for range 1 << 18 {
		xs = append(xs, f32(r.Uint32()))
	}
	sw, cw := make([]float32, len(xs)), make([]float32, len(xs))
	refSigmoidPair(xs, sw, cw)
	for _, name := range kernelNames {
		withKernel(t, name, func(t *testing.T) {
			s, c := make([]float32, len(xs)), make([]float32, len(xs))
			SigmoidPair(xs, s, c)
			checkPair(t, xs, s, c, sw, cw)
		})
	}
}

func checkPair(t *testing.T, xs, s, c, sw, cw []float32) {
	t.Helper()
	for i, x := range xs {
		if math.Float32bits(s[i]) != math.Float32bits(sw[i]) || math.Float32bits(c[i]) != math.Float32bits(cw[i]) {
			t.Fatalf("x = %v (%#08x): s, c = %v, %v (%#08x, %#08x), want %v, %v (%#08x, %#08x)",
				x, math.Float32bits(x), s[i], c[i], math.Float32bits(s[i]), math.Float32bits(c[i]),
				sw[i], cw[i], math.Float32bits(sw[i]), math.Float32bits(cw[i]))
		}
	}
}

// TestSigmoidPairExhaustive checks SigmoidPair on every path against
// Sigmoid for all 2³² float32 values. It takes a few minutes of CPU: set
// VEC_EXHAUSTIVE=1 to run it.
func TestSigmoidPairExhaustive(t *testing.T) {
	if os.Getenv("VEC_EXHAUSTIVE") != "1" {
		t.Skip("set VEC_EXHAUSTIVE=1 to run")
	}
	const block = 1 << 16
	workers := runtime.GOMAXPROCS(0)
	var wg sync.WaitGroup
	errs := make(chan string, workers)
	for w := range workers {
		wg.Go(func() {
			xs := make([]float32, block)
			s, c, sw, cw := make([]float32, block), make([]float32, block), make([]float32, block), make([]float32, block)
			paths := []func(x, s, c []float32){sigmoidPairGo}
			if kernelAvailable("avx2") {
				paths = append(paths, avx2Pair)
			}
			if kernelAvailable("avx512") {
				paths = append(paths, avx512Pair)
			}
			for hi := uint64(w); hi < 1<<32/block; hi += uint64(workers) {
				for i := range xs {
					xs[i] = f32(uint32(hi*block) + uint32(i))
				}
				refSigmoidPair(xs, sw, cw)
				for k, f := range paths {
					f(xs, s, c)
					for i := range xs {
						if math.Float32bits(s[i]) != math.Float32bits(sw[i]) || math.Float32bits(c[i]) != math.Float32bits(cw[i]) {
							errs <- fmt.Sprintf("path %d: x = %#08x: got %#08x %#08x, want %#08x %#08x", k,
								math.Float32bits(xs[i]), math.Float32bits(s[i]), math.Float32bits(c[i]),
								math.Float32bits(sw[i]), math.Float32bits(cw[i]))
							return
						}
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

// TestActivationsMXCSR checks that the activation kernels leave Go's
// subnormal handling as it was, and compute with subnormals (no DAZ).
func TestActivationsMXCSR(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	for _, name := range kernelNames {
		withKernel(t, name, func(t *testing.T) {
			x := []float32{subnormal, -subnormal, 1, subnormal, -subnormal, 2, subnormal, -1, subnormal, subnormal, subnormal, subnormal, subnormal, subnormal, subnormal, subnormal, subnormal}
			y, c := make([]float32, len(x)), make([]float32, len(x))
			ReLU(x, y)
			LeakyReLU(x, y, 0.5)
			SigmoidPair(x, y, c)
			if !goKeepsSubnormals() {
				t.Fatal("MXCSR changed by an activation kernel")
			}
			ReLU(x, y)
			if y[0] != subnormal {
				t.Fatalf("ReLU(%g) = %g", subnormal, y[0])
			}
			LeakyReLU(x, y, 0.5)
			if y[1] != -subnormal*0.5 || y[1] == 0 {
				t.Fatalf("LeakyReLU(%g) = %g", -subnormal, y[1])
			}
		})
	}
}

// TestActivationsLengthMismatch checks the panics on slices of different
// lengths.
func TestActivationsLengthMismatch(t *testing.T) {
	a, b := make([]float32, 4), make([]float32, 5)
	for what, f := range map[string]func(){
		"ReLU":          func() { ReLU(a, b) },
		"LeakyReLU":     func() { LeakyReLU(a, b, 0.2) },
		"ReLUGrad":      func() { ReLUGrad(a, a, b) },
		"LeakyReLUGrad": func() { LeakyReLUGrad(a, b, a, 0.2) },
		"SigmoidPair":   func() { SigmoidPair(a, a, b) },
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
