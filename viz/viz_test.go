package viz

import (
	"image"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/backprop-dev/backprop/tensor"
)

// numbered returns n images of h×w where image i is filled with i/(n-1)
// except its top-left pixel, which is 1.
func numbered(n, h, w int) *tensor.Tensor[float32] {
	t := tensor.New[float32](n, 1, h, w)
	d := t.Data()
	for i := 0; i < n; i++ {
		for j := 0; j < h*w; j++ {
			d[i*h*w+j] = float32(i) / float32(n-1)
		}
		d[i*h*w] = 1
	}
	return t
}

func TestImageGridLayout(t *testing.T) {
	const n, h, w, cols = 5, 3, 4, 2
	g, err := ImageGrid(numbered(n, h, w), cols, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	// 2 columns, 3 rows, gaps between.
	wantW, wantH := cols*w+(cols-1)*GridGap, 3*h+2*GridGap
	if b := g.Bounds(); b.Dx() != wantW || b.Dy() != wantH {
		t.Fatalf("grid is %dx%d, want %dx%d", b.Dx(), b.Dy(), wantW, wantH)
	}
	for i := 0; i < n; i++ {
		x0, y0 := (i%cols)*(w+GridGap), (i/cols)*(h+GridGap)
		if got := g.GrayAt(x0, y0).Y; got != 255 {
			t.Errorf("image %d top-left = %d, want 255", i, got)
		}
		want := uint8(math.Round(float64(i) / (n - 1) * 255))
		if got := g.GrayAt(x0+w-1, y0+h-1).Y; got != want {
			t.Errorf("image %d bottom-right = %d, want %d", i, got, want)
		}
	}
	// Gap pixels and the empty sixth cell are gap-gray.
	for _, p := range []image.Point{{w, 0}, {w + 1, h - 1}, {0, h}, {wantW - 1, wantH - 1}} {
		if got := g.GrayAt(p.X, p.Y).Y; got != GridGapGray {
			t.Errorf("pixel %v = %d, want gap gray %d", p, got, GridGapGray)
		}
	}
}

func TestImageGridRangeMapping(t *testing.T) {
	nan := float32(math.NaN())
	imgs := [][]float32{{-1, 0, 1, 3, -5, nan}}
	g, err := ImageGridSlices(imgs, 2, 3, 8, -1, 1)
	if err != nil {
		t.Fatal(err)
	}
	if b := g.Bounds(); b.Dx() != 3 || b.Dy() != 2 {
		t.Fatalf("single image grid is %v, want 3x2 (columns capped at N)", b)
	}
	want := []uint8{0, 128, 255, 255, 0, 0}
	for i, v := range want {
		if got := g.GrayAt(i%3, i/3).Y; got != v {
			t.Errorf("pixel %d = %d, want %d", i, got, v)
		}
	}
}

func TestImageGridAcceptsRank3(t *testing.T) {
	x := tensor.MustFromSlice([]float32{0, 1, 1, 0}, 2, 1, 2)
	g, err := ImageGrid(x, 2, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	if g.Bounds().Dx() != 2+GridGap+2 || g.GrayAt(1, 0).Y != 255 || g.GrayAt(2+GridGap, 0).Y != 255 {
		t.Fatalf("rank-3 grid wrong: %v %v", g.Bounds(), g.Pix)
	}
}

func TestPairGrid(t *testing.T) {
	const n, h, w, cols = 3, 2, 2, 2
	top := numbered(n, h, w)
	bottom := tensor.New[float32](n, 1, h, w) // all black
	g, err := PairGrid(top, bottom, cols, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	// Two pair-rows of (top row, bottom row): four image rows.
	if b := g.Bounds(); b.Dx() != cols*w+GridGap || b.Dy() != 4*h+3*GridGap {
		t.Fatalf("pair grid is %v", b)
	}
	rowY := func(r int) int { return r * (h + GridGap) }
	for i := 0; i < n; i++ {
		x := (i % cols) * (w + GridGap)
		pair := i / cols
		if got := g.GrayAt(x, rowY(2*pair)).Y; got != 255 {
			t.Errorf("original %d top-left = %d, want 255", i, got)
		}
		if got := g.GrayAt(x, rowY(2*pair+1)).Y; got != 0 {
			t.Errorf("reconstruction %d top-left = %d, want 0", i, got)
		}
	}
	if _, err := PairGrid(top, tensor.New[float32](n+1, 1, h, w), cols, 0, 1); err == nil || !strings.Contains(err.Error(), "same number") {
		t.Errorf("mismatched sets: err = %v", err)
	}
}

func TestGridErrors(t *testing.T) {
	ok := numbered(2, 2, 2)
	for _, tc := range []struct {
		err  func() error
		want string
	}{
		{func() error { _, err := ImageGrid(ok, 0, 0, 1); return err }, "0 columns"},
		{func() error { _, err := ImageGrid(ok, 2, 1, 1); return err }, "want lo < hi"},
		{func() error { _, err := ImageGrid(tensor.New[float32](2, 3, 2, 2), 2, 0, 1); return err }, "[2×3×2×2]"},
		{func() error { _, err := ImageGrid(tensor.New[float32](0, 1, 2, 2), 2, 0, 1); return err }, "no images"},
		{func() error { _, err := ImageGrid(nil, 2, 0, 1); return err }, "nil"},
		{func() error { _, err := ImageGridSlices([][]float32{{1, 2}}, 2, 2, 1, 0, 1); return err }, "image 0 has 2 values, want 2×2"},
		{func() error { _, err := PairGrid(ok, nil, 2, 0, 1); return err }, "bottom is nil"},
	} {
		if err := tc.err(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("err = %v, want %q", err, tc.want)
		}
	}
}

func TestSavePNGRoundTrip(t *testing.T) {
	g, err := ImageGrid(numbered(4, 5, 5), 2, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "grid.png")
	if err := SavePNG(path, g); err != nil {
		t.Fatal(err)
	}
	back := decodePNG(t, path)
	if back.Bounds() != g.Bounds() {
		t.Fatalf("decoded bounds %v, want %v", back.Bounds(), g.Bounds())
	}
	for y := 0; y < g.Bounds().Dy(); y++ {
		for x := 0; x < g.Bounds().Dx(); x++ {
			r, _, _, _ := back.At(x, y).RGBA()
			if uint8(r>>8) != g.GrayAt(x, y).Y {
				t.Fatalf("pixel (%d,%d) changed in the PNG", x, y)
			}
		}
	}
	if err := SavePNG(path, nil); err == nil {
		t.Error("nil image: no error")
	}
}

func decodePNG(t *testing.T, path string) image.Image {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("%s is not a valid PNG: %v", path, err)
	}
	return img
}

func TestLossCurve(t *testing.T) {
	dir := t.TempDir()
	train := make([]float64, 200)
	for i := range train {
		train[i] = 2*math.Exp(-float64(i)/40) + 0.05
	}
	series := []Series{
		{Name: "train", Y: train},
		{Name: "test", X: []float64{0, 50, 100, 150, 199}, Y: []float64{2.1, 0.6, 0.25, 0.15, 0.12}},
	}
	path := filepath.Join(dir, "loss.png")
	if err := LossCurve(path, "MNIST MLP", series); err != nil {
		t.Fatal(err)
	}
	img := decodePNG(t, path)
	if b := img.Bounds(); b.Dx() != DefaultCurveWidth || b.Dy() != DefaultCurveHeight {
		t.Fatalf("loss curve is %v, want %dx%d", b, DefaultCurveWidth, DefaultCurveHeight)
	}
	// Something other than the white background was drawn.
	colored := 0
	for y := 0; y < DefaultCurveHeight; y += 3 {
		for x := 0; x < DefaultCurveWidth; x += 3 {
			if r, g, b, _ := img.At(x, y).RGBA(); r != g || g != b {
				colored++
			}
		}
	}
	if colored < 50 {
		t.Errorf("only %d coloured pixels: the curves were not drawn", colored)
	}

	logPath := filepath.Join(dir, "loss-log.png")
	if err := LossCurveWith(logPath, "log", series, CurveOptions{Width: 320, Height: 240, LogY: true, XLabel: "epoch"}); err != nil {
		t.Fatal(err)
	}
	if b := decodePNG(t, logPath).Bounds(); b.Dx() != 320 || b.Dy() != 240 {
		t.Fatalf("log curve is %v, want 320x240", b)
	}
	single := filepath.Join(dir, "single.png")
	if err := LossCurve(single, "one point", []Series{{Name: "only", Y: []float64{1.5}}}); err != nil {
		t.Fatalf("single point: %v", err)
	}
}

func TestLossCurveErrors(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "loss.png")
	for _, tc := range []struct {
		series []Series
		opt    CurveOptions
		want   string
	}{
		{nil, CurveOptions{}, "no series"},
		{[]Series{{Name: "a"}}, CurveOptions{}, `series "a" has no points`},
		{[]Series{{Name: "a", X: []float64{1}, Y: []float64{1, 2}}}, CurveOptions{}, "1 x values and 2 y values"},
		{[]Series{{Name: "a", Y: []float64{1, math.NaN()}}}, CurveOptions{}, `series "a" point 1 is (1, NaN)`},
		{[]Series{{Name: "a", Y: []float64{1, 0}}}, CurveOptions{LogY: true}, "want > 0 on a log axis"},
		{[]Series{{Name: "a", Y: []float64{1}}}, CurveOptions{Width: 10, Height: 10}, "10×10"},
	} {
		err := LossCurveWith(path, "t", tc.series, tc.opt)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), path) {
			t.Errorf("err = %v, want %q and the path", err, tc.want)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("failed plots left %d files", len(entries))
	}
}

func TestSaveCSV(t *testing.T) {
	path := filepath.Join(t.TempDir(), "history.csv")
	if err := os.WriteFile(path, []byte("old contents"), 0o644); err != nil {
		t.Fatal(err)
	}
	err := SaveCSV(path, "step", []Series{
		{Name: "loss", X: []float64{1, 2, 3}, Y: []float64{0.5, 0.25, 1.0 / 3}},
		{Name: "test error", X: []float64{3}, Y: []float64{math.NaN()}},
		{Name: "numbered", Y: []float64{7, 8}},
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want := "step,loss,test error,numbered\n0,,,7\n1,0.5,,8\n2,0.25,,\n3,0.3333333333333333,NaN,\n"
	if string(got) != want {
		t.Fatalf("csv:\n%s\nwant:\n%s", got, want)
	}
	err = SaveCSV(path, "step", []Series{{Name: "loss", X: []float64{1}, Y: []float64{1, 2}}})
	if err == nil || !strings.Contains(err.Error(), `series "loss" has 1 x values and 2 y values`) {
		t.Fatalf("mismatched series: error %v", err)
	}
	if b, _ := os.ReadFile(path); string(b) != want {
		t.Fatal("a failed SaveCSV changed the existing file")
	}
}
