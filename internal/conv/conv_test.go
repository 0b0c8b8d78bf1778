package conv

import (
	"math"
	"math/rand/v2"
	"testing"
)

// naive is the definition of the correlation, loop by loop.
func naive(g Geom, n, cout int, x, w []float64) []float64 {
	y := make([]float64, n*cout*g.OH*g.OW)
	for b := 0; b < n; b++ {
		for o := 0; o < cout; o++ {
			for i := 0; i < g.OH; i++ {
				for j := 0; j < g.OW; j++ {
					s := 0.0
					for c := 0; c < g.C; c++ {
						for a := 0; a < g.KH; a++ {
							for q := 0; q < g.KW; q++ {
								h, v := i*g.SH+a-g.PH, j*g.SW+q-g.PW
								if h < 0 || h >= g.H || v < 0 || v >= g.W {
									continue
								}
								s += w[((o*g.C+c)*g.KH+a)*g.KW+q] * x[((b*g.C+c)*g.H+h)*g.W+v]
							}
						}
					}
					y[((b*cout+o)*g.OH+i)*g.OW+j] = s
				}
			}
		}
	}
	return y
}

func randSlice(rng *rand.Rand, n int) []float64 {
	s := make([]float64, n)
	for i := range s {
		s[i] = rng.NormFloat64()
	}
	return s
}

func dot(a, b []float64) float64 {
	s := 0.0
	for i := range a {
		s += a[i] * b[i]
	}
	return s
}

func geoms() []Geom {
	var gs []Geom
	for _, c := range []struct{ c, h, w, kh, kw, sh, sw, ph, pw int }{
		{1, 5, 5, 3, 3, 1, 1, 0, 0},
		{2, 6, 7, 2, 3, 2, 1, 1, 0},
		{3, 7, 5, 3, 2, 2, 3, 1, 2},
		{2, 4, 4, 4, 4, 2, 2, 1, 1},
		{1, 2, 3, 3, 3, 1, 2, 2, 2}, // padding wider than the input
		{2, 1, 1, 1, 1, 1, 1, 0, 0},
	} {
		g := Geom{C: c.c, H: c.h, W: c.w, KH: c.kh, KW: c.kw, SH: c.sh, SW: c.sw, PH: c.ph, PW: c.pw}
		g.OH, g.OW = OutSize(g.H, g.KH, g.SH, g.PH), OutSize(g.W, g.KW, g.SW, g.PW)
		gs = append(gs, g)
	}
	return gs
}

// TestForwardMatchesDefinition checks the im2col product against the loops.
func TestForwardMatchesDefinition(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, g := range geoms() {
		n, cout := 2, 3
		x := randSlice(rng, n*g.ImageLen())
		w := randSlice(rng, cout*g.ColRows())
		y := make([]float64, n*cout*g.ColCols())
		for i := range y {
			y[i] = math.NaN() // every element must be overwritten
		}
		Forward(g, n, cout, x, w, y, nil)
		want := naive(g, n, cout, x, w)
		for i := range y {
			if math.Abs(y[i]-want[i]) > 1e-12 {
				t.Fatalf("%+v: y[%d] = %v, want %v", g, i, y[i], want[i])
			}
		}
	}
}

// TestGroups uses a geometry whose column matrix is so large that the batch
// is split into several groups of images, the last one a single image.
func TestGroups(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	g := Geom{C: 3, H: 200, W: 201, KH: 3, KW: 3, SH: 1, SW: 1, PH: 1, PW: 1}
	g.OH, g.OW = OutSize(g.H, g.KH, g.SH, g.PH), OutSize(g.W, g.KW, g.SW, g.PW)
	n, cout := 7, 2
	if b := g.group(n); b != 3 {
		t.Fatalf("group(%d) = %d, want 3 (groups of 3, 3, 1)", n, b)
	}
	x := randSlice(rng, n*g.ImageLen())
	w := randSlice(rng, cout*g.ColRows())
	y := make([]float64, n*cout*g.ColCols())
	Forward(g, n, cout, x, w, y, nil)
	want := naive(g, n, cout, x, w)
	for i := range y {
		if math.Abs(y[i]-want[i]) > 1e-12 {
			t.Fatalf("y[%d] = %v, want %v", i, y[i], want[i])
		}
	}
	ws := make([]float64, g.WorkLen(n, cout))
	dy := randSlice(rng, len(y))
	dx := make([]float64, len(x))
	BackwardInput(g, n, cout, w, dy, dx, ws)
	dw := make([]float64, len(w))
	BackwardWeight(g, n, cout, x, dy, dw, ws)
	ref := dot(dy, y)
	if a := dot(dx, x); math.Abs(a-ref) > 1e-9*math.Max(1, math.Abs(ref)) {
		t.Errorf("<dx, x> = %v, want <dy, y> = %v", a, ref)
	}
	if a := dot(dw, w); math.Abs(a-ref) > 1e-9*math.Max(1, math.Abs(ref)) {
		t.Errorf("<dw, w> = %v, want <dy, y> = %v", a, ref)
	}
}

// TestAdjoints checks ⟨im2col(x), c⟩ = ⟨x, col2im(c)⟩ and that the two
// backward kernels are the adjoints of Forward in x and in w.
func TestAdjoints(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, g := range geoms() {
		x := randSlice(rng, g.ImageLen())
		c := randSlice(rng, g.ColLen())
		col := make([]float64, g.ColLen())
		Im2col(g, x, col)
		img := make([]float64, g.ImageLen())
		Col2im(g, c, img)
		if a, b := dot(col, c), dot(x, img); math.Abs(a-b) > 1e-10*math.Max(1, math.Abs(a)) {
			t.Errorf("%+v: <im2col x, c> = %v, <x, col2im c> = %v", g, a, b)
		}

		n, cout := 3, 2
		xs := randSlice(rng, n*g.ImageLen())
		w := randSlice(rng, cout*g.ColRows())
		dy := randSlice(rng, n*cout*g.ColCols())
		y := make([]float64, len(dy))
		Forward(g, n, cout, xs, w, y, col)
		dx := make([]float64, len(xs))
		BackwardInput(g, n, cout, w, dy, dx, col)
		dw := make([]float64, len(w))
		BackwardWeight(g, n, cout, xs, dy, dw, col)
		// y is bilinear in (x, w): ⟨dy, y⟩ = ⟨dx, x⟩ = ⟨dw, w⟩
		ref := dot(dy, y)
		if a := dot(dx, xs); math.Abs(a-ref) > 1e-10*math.Max(1, math.Abs(ref)) {
			t.Errorf("%+v: <dx, x> = %v, want <dy, y> = %v", g, a, ref)
		}
		if a := dot(dw, w); math.Abs(a-ref) > 1e-10*math.Max(1, math.Abs(ref)) {
			t.Errorf("%+v: <dw, w> = %v, want <dy, y> = %v", g, a, ref)
		}
	}
}

// TestTransposedBackward checks the fused gradients of a transposed
// convolution against the separate kernels, with either gradient skipped.
func TestTransposedBackward(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	for _, g := range geoms() {
		n, cin := 3, 2
		x := randSlice(rng, n*cin*g.ColCols())
		w := randSlice(rng, cin*g.ColRows())
		dy := randSlice(rng, n*g.ImageLen())
		wantDx := make([]float64, len(x))
		Forward(g, n, cin, dy, w, wantDx, nil)
		wantDw := make([]float64, len(w))
		BackwardWeight(g, n, cin, dy, x, wantDw, nil)
		for _, skip := range []string{"", "dx", "dw"} {
			dx, dw := make([]float64, len(x)), make([]float64, len(w))
			switch skip {
			case "dx":
				TransposedBackward(g, n, cin, x, w, dy, nil, dw, nil)
			case "dw":
				TransposedBackward(g, n, cin, x, w, dy, dx, nil, nil)
			default:
				TransposedBackward(g, n, cin, x, w, dy, dx, dw, nil)
			}
			if skip != "dx" && maxDiff(dx, wantDx) > 1e-12 {
				t.Errorf("%+v (skip %q): dx differs by %g", g, skip, maxDiff(dx, wantDx))
			}
			if skip != "dw" && maxDiff(dw, wantDw) > 1e-12 {
				t.Errorf("%+v (skip %q): dw differs by %g", g, skip, maxDiff(dw, wantDw))
			}
		}
	}
}

func maxDiff(a, b []float64) float64 {
	d := 0.0
	for i := range a {
		d = math.Max(d, math.Abs(a[i]-b[i]))
	}
	return d
}

func TestRot180(t *testing.T) {
	w := []float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}
	dst := make([]float64, len(w))
	Rot180(2, 3, w, dst)
	want := []float64{6, 5, 4, 3, 2, 1, 12, 11, 10, 9, 8, 7}
	for i := range want {
		if dst[i] != want[i] {
			t.Fatalf("Rot180 = %v, want %v", dst, want)
		}
	}
}

// TestLayouts runs the tests of Forward and Backward again with the row
// layout switched off entirely (the column layout, used above rowsMaxCout
// output channels) and switched on for every row length (the test
// geometries have rows shorter than rowsMinK), so that both layouts are
// checked in every function.
func TestLayouts(t *testing.T) {
	oldCout, oldK := rowsMaxCout, rowsMinK
	defer func() { rowsMaxCout, rowsMinK = oldCout, oldK }()
	for _, l := range []struct {
		name        string
		maxCout, mk int
	}{{"columns", 0, oldK}, {"rows", oldCout, 0}} {
		rowsMaxCout, rowsMinK = l.maxCout, l.mk
		t.Run(l.name+"/Forward", TestForwardMatchesDefinition)
		t.Run(l.name+"/Groups", TestGroups)
		t.Run(l.name+"/Adjoints", TestAdjoints)
		t.Run(l.name+"/TransposedBackward", TestTransposedBackward)
		t.Run(l.name+"/Saved", TestSaved)
	}
}

// TestSaved checks that ForwardSave/BackwardSaved give exactly what
// Forward/Backward give, with the saved rows reused, stale (other images)
// or absent, and with either gradient skipped.
func TestSaved(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	for _, g := range geoms() {
		n, cout := 3, 2
		x := randSlice(rng, n*g.ImageLen())
		x2 := randSlice(rng, n*g.ImageLen())
		w := randSlice(rng, cout*g.ColRows())
		dy := randSlice(rng, n*cout*g.ColCols())
		wantY := make([]float64, len(dy))
		Forward(g, n, cout, x, w, wantY, nil)
		wantDx, wantDw := make([]float64, len(x)), make([]float64, len(w))
		Backward(g, n, cout, x, w, dy, wantDx, wantDw, nil)
		for _, c := range []struct {
			name  string
			stale bool
			skip  string
		}{{"reused", false, ""}, {"reused/no dx", false, "dx"}, {"reused/no dw", false, "dw"}, {"stale", true, ""}} {
			y := make([]float64, len(dy))
			s := ForwardSave(g, n, cout, x, w, y)
			if maxDiff(y, wantY) != 0 {
				t.Fatalf("%+v %s: ForwardSave differs from Forward by %g", g, c.name, maxDiff(y, wantY))
			}
			if rowsMinK == 0 && rowsMaxCout >= cout && s == nil {
				t.Fatalf("%+v: row layout on, but ForwardSave kept no rows", g)
			}
			if c.stale && s != nil { // rows of other images must not be used
				s2 := ForwardSave(g, n, cout, x2, w, y)
				s.Release()
				s = s2
			}
			dx, dw := make([]float64, len(x)), make([]float64, len(w))
			switch c.skip {
			case "dx":
				BackwardSaved(g, n, cout, x, w, dy, nil, dw, s)
			case "dw":
				BackwardSaved(g, n, cout, x, w, dy, dx, nil, s)
			default:
				BackwardSaved(g, n, cout, x, w, dy, dx, dw, s)
			}
			if c.skip != "dx" && maxDiff(dx, wantDx) != 0 {
				t.Errorf("%+v %s: dx differs by %g", g, c.name, maxDiff(dx, wantDx))
			}
			if c.skip != "dw" && maxDiff(dw, wantDw) != 0 {
				t.Errorf("%+v %s: dw differs by %g", g, c.name, maxDiff(dw, wantDw))
			}
		}
	}
}

// TestK4Kernels checks the AVX-512 im2row and row2im for 4×4 kernels
// against the Go loops, bit for bit, on float32 images of several
// channels, with and without padding, strides 1 and 2.
func TestK4Kernels(t *testing.T) {
	if !haveK4 {
		t.Skip("no AVX-512 (or BACKPROP_NOSIMD=1 / purego): only the Go loops run")
	}
	defer func() { haveK4 = true }()
	rng := rand.New(rand.NewPCG(13, 14))
	for _, g := range []Geom{
		{C: 1, H: 28, W: 28, KH: 4, KW: 4, SH: 2, SW: 2, PH: 1, PW: 1},
		{C: 64, H: 14, W: 14, KH: 4, KW: 4, SH: 2, SW: 2, PH: 1, PW: 1},
		{C: 3, H: 9, W: 11, KH: 4, KW: 4, SH: 1, SW: 1, PH: 0, PW: 0},
		{C: 5, H: 10, W: 7, KH: 4, KW: 4, SH: 2, SW: 1, PH: 2, PW: 1},
	} {
		g.OH, g.OW = OutSize(g.H, g.KH, g.SH, g.PH), OutSize(g.W, g.KW, g.SW, g.PW)
		img := make([]float32, g.ImageLen())
		for i := range img {
			img[i] = float32(rng.NormFloat64())
		}
		rowsIn := make([]float32, g.ColLen())
		for i := range rowsIn {
			rowsIn[i] = float32(rng.NormFloat64())
		}
		var want, got [2][]float32 // im2row, row2im
		for pass, k4 := range []bool{false, true} {
			haveK4 = k4
			rows := make([]float32, g.ColLen())
			im2row(g, img, rows, make([]float32, g.PaddedLen()))
			back := make([]float32, g.ImageLen())
			row2im(g, rowsIn, back, make([]float32, g.PaddedLen()))
			if pass == 0 {
				want = [2][]float32{rows, back}
			} else {
				got = [2][]float32{rows, back}
			}
		}
		for f, name := range []string{"im2row", "row2im"} {
			for i := range want[f] {
				if math.Float32bits(want[f][i]) != math.Float32bits(got[f][i]) {
					t.Fatalf("%+v %s: element %d = %v with AVX-512, %v in Go", g, name, i, got[f][i], want[f][i])
				}
			}
		}
	}
}
