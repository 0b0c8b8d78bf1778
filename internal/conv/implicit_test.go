package conv

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

func randF32(rng *rand.Rand, n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(rng.NormFloat64())
	}
	return s
}

func to64(x []float32) []float64 {
	y := make([]float64, len(x))
	for i, v := range x {
		y[i] = float64(v)
	}
	return y
}

// twinCase is one layer for TestImplicitTwin: a geometry, batch and
// number of channels on the output side.
type twinCase struct {
	g       Geom
	n, cout int
}

func (c twinCase) String() string {
	g := c.g
	return fmt.Sprintf("n=%d C=%d %dx%d k=%dx%d s=%dx%d p=%dx%d cout=%d", c.n, g.C, g.H, g.W, g.KH, g.KW, g.SH, g.SW, g.PH, g.PW, c.cout)
}

// twinCases returns the DCGAN's layers (conv2, whose correlation is also
// deconv1's, and conv1, which keeps the column layout) at batch 64 and 3,
// and random layers: batch 1–4, 1–8 channels, 4×4 kernels (the AVX-512
// packer) and others (the Go packer), strides 1–2, padding 0–2.
func twinCases(rng *rand.Rand, random int) []twinCase {
	cs := []twinCase{
		{Geom{C: 64, H: 14, W: 14, KH: 4, KW: 4, SH: 2, SW: 2, PH: 1, PW: 1}, 64, 128},
		{Geom{C: 64, H: 14, W: 14, KH: 4, KW: 4, SH: 2, SW: 2, PH: 1, PW: 1}, 3, 128},
		{Geom{C: 1, H: 28, W: 28, KH: 4, KW: 4, SH: 2, SW: 2, PH: 1, PW: 1}, 64, 64},
		{Geom{C: 3, H: 200, W: 201, KH: 3, KW: 3, SH: 1, SW: 1, PH: 1, PW: 1}, 7, 2}, // several groups of images
	}
	for len(cs) < 4+random {
		k := []int{4, 4, 4, 3, 2, 5}[rng.IntN(6)]
		kw := k
		if rng.IntN(4) == 0 {
			kw = 1 + rng.IntN(5)
		}
		g := Geom{C: 1 + rng.IntN(8), H: k + rng.IntN(10), W: kw + rng.IntN(10), KH: k, KW: kw,
			SH: 1 + rng.IntN(2), SW: 1 + rng.IntN(2), PH: rng.IntN(3), PW: rng.IntN(3)}
		g.OH, g.OW = OutSize(g.H, g.KH, g.SH, g.PH), OutSize(g.W, g.KW, g.SW, g.PW)
		if g.OH <= 0 || g.OW <= 0 {
			continue
		}
		cs = append(cs, twinCase{g, 1 + rng.IntN(4), 1 + rng.IntN(40)})
	}
	for i := range cs {
		g := &cs[i].g
		g.OH, g.OW = OutSize(g.H, g.KH, g.SH, g.PH), OutSize(g.W, g.KW, g.SW, g.PW)
	}
	return cs
}

// twinResults are the outputs of every entry point that has an implicit
// path, for one layer.
type twinResults struct {
	y, sdx, sdw, dx, dw, tdx, tdw, idx []float32
}

func runTwin(c twinCase, x, w, dy, tx []float32) twinResults {
	g, n, cout := c.g, c.n, c.cout
	var r twinResults
	r.y = make([]float32, n*cout*g.ColCols())
	Forward(g, n, cout, x, w, r.y, nil)
	y2 := make([]float32, len(r.y))
	s := ForwardSave(g, n, cout, x, w, y2)
	r.sdx, r.sdw = make([]float32, len(x)), make([]float32, len(w))
	BackwardSaved(g, n, cout, x, w, dy, r.sdx, r.sdw, s)
	r.dx, r.dw = make([]float32, len(x)), make([]float32, len(w))
	Backward(g, n, cout, x, w, dy, r.dx, r.dw, nil)
	// The transposed layer with cin = cout: its input tx is on the
	// correlation's output side, its output gradient (x here) on the image
	// side.
	r.tdx, r.tdw = make([]float32, len(tx)), make([]float32, len(w))
	TransposedBackward(g, n, cout, tx, w, x, r.tdx, r.tdw, nil)
	// BackwardInput: the input gradient alone, the transposed layer's
	// forward.
	r.idx = make([]float32, len(x))
	BackwardInput(g, n, cout, w, dy, r.idx, nil)
	return r
}

// TestImplicitTwin compares the implicit layout (rows packed from the
// padded images through rowSource) with its twin, the explicit im2row +
// blas.Gemm: Forward, ForwardSave/BackwardSaved, Backward,
// TransposedBackward and BackwardInput, on the DCGAN's layer shapes and random ones, with the
// AVX-512 packer and with the Go one. The results agree bit for bit
// wherever the explicit product runs on the blocked driver (the packed
// panels hold the same values in the same order); where blas.Gemm takes
// another evaluation (products of at most smallMNK = 200 multiply-adds,
// or short, wide products it evaluates transposed) only the check against
// float64 applies. Every result is checked against float64 (the
// definition for Forward, the float64 twin for the gradients) within
// 8e-6·√(k·n·cout)·(1+|ref|). The input gradient, computed a chunk of
// images at a time in the implicit layout (dxChunked), is checked with
// chunks and without.
func TestImplicitTwin(t *testing.T) {
	oldK, oldK4 := rowsMinK, haveK4
	defer func() { rowsMinK, haveK4, implicitMode, dxChunked = oldK, oldK4, implicitAuto, true }()
	rowsMinK = 0 // the row layout (and so the implicit one) for every row length
	rng := rand.New(rand.NewPCG(41, 42))
	random := 60
	if testing.Short() || raceEnabled {
		random = 15
	}
	for _, c := range twinCases(rng, random) {
		g, n, cout := c.g, c.n, c.cout
		if raceEnabled && n*g.ImageLen() > 1<<16 {
			continue
		}
		x, w := randF32(rng, n*g.ImageLen()), randF32(rng, cout*g.ColRows())
		dy, tx := randF32(rng, n*cout*g.ColCols()), randF32(rng, n*cout*g.ColCols())
		implicitMode = implicitOff
		want := runTwin(c, x, w, dy, tx)
		// float64 references
		x64, w64, dy64, tx64 := to64(x), to64(w), to64(dy), to64(tx)
		ref := twinResults64(c, x64, w64, dy64, tx64)

		// Rows of the products as the driver sees them: explicit twin takes
		// other evaluations for tiny or short-and-wide products.
		bm := g.group(n) * g.ColCols()
		k := g.ColRows()
		bitsA := bm*cout*k > 200 && !(bm <= 96 && cout >= 2*bm && k >= 64)
		bitsB := bm*cout*k > 200
		for _, v := range []struct{ k4, chunked bool }{{oldK4, true}, {false, true}, {oldK4, false}} {
			haveK4, dxChunked = v.k4, v.chunked
			implicitMode = implicitForce
			if !useImplicit[float32](g, cout) {
				t.Fatalf("%v: implicit layout not selected", c)
			}
			// The input gradient's product runs a chunk of images at a
			// time: bit for bit unless one of the two is small enough for
			// blas.Gemm's plain loops.
			p := newPlan(g, n, cout, []float32(nil), true)
			cm := p.chunk * p.m
			p.release()
			bitsDx := (cm*cout*k > 200) == (bm*cout*k > 200)
			got := runTwin(c, x, w, dy, tx)
			name := fmt.Sprintf("%v k4=%v chunked=%v (%d images)", c, v.k4, v.chunked, cm/g.ColCols())
			for _, f := range []struct {
				what      string
				got, want []float32
				ref       []float64
				bits      bool
			}{
				{"Forward y", got.y, want.y, ref.y, bitsA},
				{"BackwardSaved dx", got.sdx, want.sdx, ref.dx, bitsDx},
				{"BackwardSaved dw", got.sdw, want.sdw, ref.dw, bitsB},
				{"Backward dx", got.dx, want.dx, ref.dx, bitsDx},
				{"Backward dw", got.dw, want.dw, ref.dw, bitsB},
				{"TransposedBackward dx", got.tdx, want.tdx, ref.tdx, bitsA},
				{"TransposedBackward dw", got.tdw, want.tdw, ref.tdw, bitsB},
				{"BackwardInput dx", got.idx, want.idx, ref.dx, bitsDx},
			} {
				for i := range f.want {
					if f.bits && math.Float32bits(f.got[i]) != math.Float32bits(f.want[i]) {
						t.Fatalf("%s: %s[%d] = %v, explicit twin %v", name, f.what, i, f.got[i], f.want[i])
					}
					tol := 2e-6 * math.Sqrt(float64(k*n*cout)) * 4
					if d := math.Abs(float64(f.got[i]) - f.ref[i]); d > tol*(1+math.Abs(f.ref[i])) {
						t.Fatalf("%s: %s[%d] = %v, float64 %v", name, f.what, i, f.got[i], f.ref[i])
					}
				}
			}
		}
		haveK4, dxChunked = oldK4, true
	}
}

// twinResults64 computes what runTwin computes in float64 with the
// explicit layout (the reference the float64 tests check against the
// definition).
func twinResults64(c twinCase, x, w, dy, tx []float64) (r struct{ y, dx, dw, tdx, tdw []float64 }) {
	g, n, cout := c.g, c.n, c.cout
	r.y = naive(g, n, cout, x, w)
	r.dx, r.dw = make([]float64, len(x)), make([]float64, len(w))
	Backward(g, n, cout, x, w, dy, r.dx, r.dw, nil)
	r.tdx, r.tdw = make([]float64, len(tx)), make([]float64, len(w))
	TransposedBackward(g, n, cout, tx, w, x, r.tdx, r.tdw, nil)
	return r
}

// TestRowSourcePack checks rowSource.Pack against the stored rows im2row
// writes, for random blocks in both of the driver's layouts (an A strip:
// one block, rows w apart; B micro-panels: w columns each), with the
// AVX-512 packer and the Go loop.
func TestRowSourcePack(t *testing.T) {
	defer func(k4 bool) { haveK4 = k4 }(haveK4)
	rng := rand.New(rand.NewPCG(43, 44))
	for _, k4 := range []bool{haveK4, false} {
		haveK4 = k4
		for _, c := range twinCases(rng, 20)[1:] {
			g, n := c.g, min(c.n, 3)
			x := randF32(rng, n*g.ImageLen())
			m, k := g.ColCols(), g.ColRows()
			rows := make([]float32, n*m*k)
			pad := make([]float32, n*g.PaddedLen())
			for b := 0; b < n; b++ {
				im2row(g, x[b*g.ImageLen():(b+1)*g.ImageLen()], rows[b*m*k:(b+1)*m*k], make([]float32, g.PaddedLen()))
				if g.PH > 0 || g.PW > 0 {
					padImage(g, x[b*g.ImageLen():(b+1)*g.ImageLen()], pad[b*g.PaddedLen():])
				} else {
					copy(pad[b*g.ImageLen():], x[b*g.ImageLen():(b+1)*g.ImageLen()])
				}
			}
			var s rowSource
			s.set(g, pad)
			for trial := 0; trial < 20; trial++ {
				r0 := rng.IntN(n * m)
				nr := 1 + rng.IntN(n*m-r0)
				c0, nc := rng.IntN(k), 0
				if trial%2 == 0 && k%16 == 0 { // whole channels: the AVX-512 packer
					c0 = rng.IntN(k/16) * 16
					nc = 16 * (1 + rng.IntN((k-c0)/16))
				} else {
					nc = 1 + rng.IntN(k-c0)
				}
				w := []int{16, 32, 64, nc + 16}[rng.IntN(4)]
				panels := (nc + w - 1) / w
				dst := make([]float32, panels*nr*w)
				for i := range dst {
					dst[i] = float32(math.NaN())
				}
				s.Pack(dst, r0, nr, c0, nc, w)
				for i := 0; i < nr; i++ {
					for j := 0; j < nc; j++ {
						got, want := dst[j/w*nr*w+i*w+j%w], rows[(r0+i)*k+c0+j]
						if math.Float32bits(got) != math.Float32bits(want) {
							t.Fatalf("%v k4=%v Pack(r0=%d nr=%d c0=%d nc=%d w=%d): (%d,%d) = %v, want %v", c, k4, r0, nr, c0, nc, w, i, j, got, want)
						}
					}
				}
			}
		}
	}
}
