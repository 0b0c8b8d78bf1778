package data

import (
	"bytes"
	"compress/gzip"
	"flag"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the fixtures in testdata/")

// tinyDir is a committed fixture in the MNIST layout: a gzip-compressed
// training split of 4 images of 2×3 pixels and a plain test split of 2.
const tinyDir = "testdata/tiny"

func tinyTrainPixels() []byte {
	return []byte{0, 51, 102, 153, 204, 255, 1, 2, 3, 4, 5, 6, 10, 20, 30, 40, 50, 60, 255, 255, 0, 0, 255, 255}
}
func tinyTestPixels() []byte { return []byte{9, 8, 7, 6, 5, 4, 100, 110, 120, 130, 140, 150} }

// TestWriteTinyFixture writes the tiny fixture with WriteIDX and compares
// it with the committed testdata/tiny (gzip files by their decompressed
// bytes, since compressed bytes may change with the Go version); with
// -update it rewrites testdata/tiny instead.
func TestWriteTinyFixture(t *testing.T) {
	dir := t.TempDir()
	if *update {
		dir = tinyDir
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []struct {
		name string
		dims []int
		data []byte
	}{
		{"train-images-idx3-ubyte.gz", []int{4, 2, 3}, tinyTrainPixels()},
		{"train-labels-idx1-ubyte.gz", []int{4}, []byte{3, 1, 4, 1}},
		{"t10k-images-idx3-ubyte", []int{2, 2, 3}, tinyTestPixels()},
		{"t10k-labels-idx1-ubyte", []int{2}, []byte{5, 9}},
	} {
		if err := WriteIDX(filepath.Join(dir, f.name), f.dims, f.data); err != nil {
			t.Fatal(err)
		}
		if *update {
			continue
		}
		got, want := plainBytes(t, filepath.Join(dir, f.name)), plainBytes(t, filepath.Join(tinyDir, f.name))
		if !bytes.Equal(got, want) {
			t.Errorf("%s/%s differs from what WriteIDX writes now (%d vs %d bytes); run go test ./data -run TinyFixture -update", tinyDir, f.name, len(want), len(got))
		}
	}
}

// plainBytes reads a file, decompressing it when its name ends in .gz.
func plainBytes(t *testing.T, path string) []byte {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(path, ".gz") {
		return raw
	}
	zr, err := gzip.NewReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	out, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return out
}

func TestLoadTinyFixture(t *testing.T) {
	for _, tc := range []struct {
		split  string
		pixels []byte
		labels []uint8
		file   string
	}{
		{Train, tinyTrainPixels(), []uint8{3, 1, 4, 1}, "train-images-idx3-ubyte.gz"},
		{Test, tinyTestPixels(), []uint8{5, 9}, "t10k-images-idx3-ubyte"},
		{"t10k", tinyTestPixels(), []uint8{5, 9}, "t10k-images-idx3-ubyte"},
	} {
		d, err := Load(tinyDir, tc.split)
		if err != nil {
			t.Fatal(err)
		}
		n := len(tc.labels)
		if !reflect.DeepEqual(d.Images.Shape(), []int{n, 1, 2, 3}) {
			t.Fatalf("%s: shape %v", tc.split, d.Images.Shape())
		}
		if d.Len() != n || !reflect.DeepEqual(d.Labels, tc.labels) {
			t.Fatalf("%s: labels %v, want %v", tc.split, d.Labels, tc.labels)
		}
		if filepath.Base(d.ImagesFile) != tc.file || d.Name != tinyDir {
			t.Errorf("%s: read %s as %q", tc.split, d.ImagesFile, d.Name)
		}
		for i, b := range tc.pixels {
			if got, want := d.Images.Data()[i], float32(b)/255; got != want {
				t.Fatalf("%s: pixel %d = %v, want %v", tc.split, i, got, want)
			}
		}
	}
}

func TestBatchGathers(t *testing.T) {
	d, err := Load(tinyDir, Train)
	if err != nil {
		t.Fatal(err)
	}
	x, y, err := d.Batch([]int{2, 0})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(x.Shape(), []int{2, 1, 2, 3}) || !reflect.DeepEqual(y, []uint8{4, 3}) {
		t.Fatalf("batch shape %v labels %v", x.Shape(), y)
	}
	if x.Data()[0] != float32(10)/255 || x.Data()[6] != 0 {
		t.Fatalf("batch pixels %v", x.Data())
	}
	if _, _, err := d.Batch([]int{0, 4}); err == nil || !strings.Contains(err.Error(), "index 4") {
		t.Errorf("out-of-range index: err = %v", err)
	}
}

// makeDir writes a training split with the given image and label counts
// (plain images, gzip-compressed labels) into a temporary directory.
func makeDir(t *testing.T, nImages, nLabels int) string {
	t.Helper()
	dir := t.TempDir()
	if err := WriteIDX(filepath.Join(dir, "train-images-idx3-ubyte"), []int{nImages, 2, 2}, make([]byte, 4*nImages)); err != nil {
		t.Fatal(err)
	}
	if err := WriteIDX(filepath.Join(dir, "train-labels-idx1-ubyte.gz"), []int{nLabels}, make([]byte, nLabels)); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestLoadMismatchedCounts(t *testing.T) {
	dir := makeDir(t, 5, 4)
	_, err := Load(dir, Train)
	if err == nil {
		t.Fatal("no error")
	}
	for _, s := range []string{"train-images-idx3-ubyte", "train-labels-idx1-ubyte.gz", "5 images", "4 labels"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q lacks %q", err, s)
		}
	}
}

func TestLoadDirectoryErrors(t *testing.T) {
	empty := t.TempDir()
	_, err := Load(empty, Train)
	if err == nil {
		t.Fatal("empty dir: no error")
	}
	for _, s := range []string{empty, "train-images-idx3-ubyte", "train-labels-idx1-ubyte", ".gz"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("empty dir error %q lacks %q", err, s)
		}
	}

	// The training split is there but the test split is not.
	dir := makeDir(t, 2, 2)
	if _, err := Load(dir, Train); err != nil {
		t.Fatal(err)
	}
	_, err = Load(dir, Test)
	if err == nil || !strings.Contains(err.Error(), "t10k-images-idx3-ubyte") {
		t.Errorf("missing test split: err = %v", err)
	}

	// Only the labels file is missing.
	os.Remove(filepath.Join(dir, "train-labels-idx1-ubyte.gz"))
	_, err = Load(dir, Train)
	if err == nil || !strings.Contains(err.Error(), "missing train-labels-idx1-ubyte[.gz]") || strings.Contains(err.Error(), "missing train-images") {
		t.Errorf("missing labels: err = %v", err)
	}

	if _, err := Load(dir, "validation"); err == nil || !strings.Contains(err.Error(), `"validation"`) {
		t.Errorf("bad split: err = %v", err)
	}
	missing := filepath.Join(empty, "nope")
	if _, err := Load(missing, Train); err == nil || !strings.Contains(err.Error(), missing) || !strings.Contains(err.Error(), `"mnist"`) {
		t.Errorf("missing dir: err = %v", err)
	}
	file := filepath.Join(dir, "train-images-idx3-ubyte")
	if _, err := Load(file, Train); err == nil || !strings.Contains(err.Error(), "is a file") {
		t.Errorf("file as dir: err = %v", err)
	}
}

func TestLoadCorruptImagesNamesFile(t *testing.T) {
	dir := makeDir(t, 3, 3)
	path := filepath.Join(dir, "train-images-idx3-ubyte")
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, raw[:len(raw)-1], 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = Load(dir, Train)
	if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "truncated data") {
		t.Fatalf("err = %v", err)
	}
}

func TestBatchesDeterministic(t *testing.T) {
	const n, bs = 103, 10
	r1 := rand.New(rand.NewPCG(42, 7))
	r2 := rand.New(rand.NewPCG(42, 7))
	var epochs [][][]int
	for epoch := 0; epoch < 3; epoch++ {
		a, err := Batches(n, r1, bs)
		if err != nil {
			t.Fatal(err)
		}
		b, err := Batches(n, r2, bs)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("epoch %d: same seed gave different batches", epoch)
		}
		if len(a) != 11 || len(a[10]) != 3 {
			t.Fatalf("epoch %d: %d batches, last of %d; want 11, last of 3", epoch, len(a), len(a[len(a)-1]))
		}
		seen := make([]bool, n)
		for _, batch := range a {
			for _, i := range batch {
				if seen[i] {
					t.Fatalf("index %d twice", i)
				}
				seen[i] = true
			}
		}
		for i, s := range seen {
			if !s {
				t.Fatalf("index %d missing", i)
			}
		}
		epochs = append(epochs, a)
	}
	if reflect.DeepEqual(epochs[0], epochs[1]) {
		t.Error("epochs 0 and 1 have the same order")
	}
	// Appending to one batch must not overwrite the next.
	a := append(epochs[0][0], -1)
	if epochs[0][1][0] == -1 || len(a) != bs+1 {
		t.Error("batches share capacity")
	}
	other, _ := Batches(n, rand.New(rand.NewPCG(43, 7)), bs)
	if reflect.DeepEqual(other, epochs[0]) {
		t.Error("different seeds gave the same order")
	}
}

// TestBatchesGolden pins the permutation for one seed, so a change to the
// shuffle (which would silently change every training run) is noticed.
func TestBatchesGolden(t *testing.T) {
	got, err := Batches(10, rand.New(rand.NewPCG(1, 2)), 4)
	if err != nil {
		t.Fatal(err)
	}
	want := [][]int{{2, 4, 3, 9}, {0, 1, 8, 6}, {5, 7}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Batches(10, PCG(1,2), 4) = %v, want %v", got, want)
	}
}

func TestBatchesErrors(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	for _, tc := range []struct {
		n, bs int
		rng   *rand.Rand
		want  string
	}{
		{10, 0, rng, "batch size 0"},
		{10, -2, rng, "batch size -2"},
		{-1, 2, rng, "example count -1"},
		{10, 2, nil, "nil random generator"},
	} {
		if _, err := Batches(tc.n, tc.rng, tc.bs); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Batches(%d, _, %d) err = %v, want %q", tc.n, tc.bs, err, tc.want)
		}
	}
	b, err := Batches(0, rng, 3)
	if err != nil || len(b) != 0 {
		t.Errorf("empty data set: %v, %v", b, err)
	}
}

func TestBoundedUniform(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 9))
	const bound, draws = 7, 70000
	var counts [bound]int
	for range draws {
		counts[boundedUint64(rng, bound)]++
	}
	for i, c := range counts {
		if math.Abs(float64(c)-draws/bound) > 5*math.Sqrt(draws/bound) {
			t.Errorf("value %d drawn %d times of %d", i, c, draws)
		}
	}
}
