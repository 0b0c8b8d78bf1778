package gan

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
)

// TestWriteSampleFileMatchesSample: the streamed files (IDX, gzipped IDX,
// PNG grid) are byte for byte the files written from all the images at
// once (Sample then WriteSamples), for counts around the chunk size; and
// a Sampler taken in uneven pieces gives Sample's images bit for bit.
func TestWriteSampleFileMatchesSample(t *testing.T) {
	dir := t.TempDir()
	tr := newTestTrainer(t, writeDataDir(t, 64))
	// one training step, so that BatchNorm's running statistics are not
	// the initial ones
	if _, err := tr.TrainStep(); err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{1, 7, SampleChunk, SampleChunk + 1, 2*SampleChunk + 45} {
		all, err := Sample(tr.G, n, 9)
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{"s.idx", "s.idx.gz", "s.png"} {
			ref, streamed := filepath.Join(dir, "ref-"+name), filepath.Join(dir, "streamed-"+name)
			if err := WriteSamples(ref, all); err != nil {
				t.Fatal(err)
			}
			if err := WriteSampleFile(context.Background(), streamed, tr.G, n, 9); err != nil {
				t.Fatalf("n %d, %s: %v", n, name, err)
			}
			a, _ := os.ReadFile(ref)
			b, _ := os.ReadFile(streamed)
			if len(a) == 0 || !bytes.Equal(a, b) {
				t.Errorf("n %d, %s: the streamed file (%d bytes) differs from the one written at once (%d bytes)", n, name, len(b), len(a))
			}
		}
		s, err := NewSampler(tr.G, n, 9)
		if err != nil {
			t.Fatal(err)
		}
		const per = ImageSize * ImageSize
		var got []float32
		for k := 1; len(got) < n*per; k = k*3 + 1 {
			part := make([]float32, min(k, n-len(got)/per)*per)
			if err := s.Next(context.Background(), part); err != nil {
				t.Fatal(err)
			}
			got = append(got, part...)
		}
		if !slices.Equal(got, all.Data()) || s.Done() != n {
			t.Errorf("n %d: the Sampler's images (%d taken) differ from Sample's", n, s.Done())
		}
		if err := s.Next(context.Background(), make([]float32, per)); err == nil {
			t.Errorf("n %d: an image beyond n given", n)
		}
	}
	if err := WriteSampleFile(context.Background(), filepath.Join(dir, "zero.idx"), tr.G, 0, 1); err == nil {
		t.Error("n = 0 accepted")
	}
}

// cancelAfter is a context whose Err reports context.Canceled from its
// calls+1st call on: a Sampler checks it once per chunk, so the write
// stops after calls chunks, deterministically.
type cancelAfter struct {
	context.Context
	calls int
}

func (c *cancelAfter) Err() error {
	if c.calls <= 0 {
		return context.Canceled
	}
	c.calls--
	return nil
}

// TestWriteSampleFileInterrupted: a write cancelled before its first chunk
// or in the middle returns the context's error, leaves no file (nor a
// temporary one), and leaves a file already at the path as it was.
func TestWriteSampleFileInterrupted(t *testing.T) {
	tr := newTestTrainer(t, writeDataDir(t, 64))
	for _, name := range []string{"s.idx", "s.idx.gz", "s.png"} {
		for _, calls := range []int{0, 2} {
			dir := t.TempDir()
			path := filepath.Join(dir, name)
			ctx := &cancelAfter{Context: context.Background(), calls: calls}
			err := WriteSampleFile(ctx, path, tr.G, 5*SampleChunk, 1)
			if !errors.Is(err, context.Canceled) {
				t.Errorf("%s cancelled after %d chunks: error %v, want context.Canceled", name, calls, err)
			}
			if ctx.calls != 0 {
				t.Errorf("%s: %d of the %d chunks before the cancellation not generated", name, ctx.calls, calls)
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 0 {
				t.Errorf("%s cancelled after %d chunks: %v left in the directory, want nothing", name, calls, entries)
			}
			old := []byte("the previous samples " + strconv.Itoa(calls))
			if err := os.WriteFile(path, old, 0o644); err != nil {
				t.Fatal(err)
			}
			ctx = &cancelAfter{Context: context.Background(), calls: calls}
			if err := WriteSampleFile(ctx, path, tr.G, 5*SampleChunk, 1); !errors.Is(err, context.Canceled) {
				t.Errorf("%s over an existing file: error %v, want context.Canceled", name, err)
			}
			if got, _ := os.ReadFile(path); !bytes.Equal(got, old) {
				t.Errorf("%s: an interrupted write changed the existing file", name)
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 1 {
				t.Errorf("%s: %v in the directory, want only the existing file", name, entries)
			}
		}
	}
}
