package gan

import (
	"compress/gzip"
	"context"
	"encoding/binary"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"math"
	"math/rand/v2"
	"path/filepath"
	"strings"

	"github.com/backprop-dev/backprop/autograd"
	"github.com/backprop-dev/backprop/data"
	"github.com/backprop-dev/backprop/internal/atomicfile"
	"github.com/backprop-dev/backprop/nn"
	"github.com/backprop-dev/backprop/tensor"
	"github.com/backprop-dev/backprop/training"
	"github.com/backprop-dev/backprop/viz"
)

// SampleChunk is how many images a Sampler generates at a time (Generate's
// chunk as well): what WriteSampleFile holds in memory however many images
// it writes.
const SampleChunk = 256

// Sample draws n images from the generator g (in evaluation mode, see
// Generate) with noise from the sampling stream of seed, so that the same
// checkpoint and seed always give the same images. The images are
// (n, 1, 28, 28) in [0, 1]. It holds all n images at once; WriteSampleFile
// writes the same images to a file one chunk at a time.
func Sample(g *nn.Sequential[float32], n int, seed uint64) (*tensor.Tensor[float32], error) {
	if n <= 0 {
		return nil, fmt.Errorf("gan: sample count %d: want at least 1", n)
	}
	z := Noise(training.NewRand(seed, streamSample), n)
	return Generate(g, z)
}

// A Sampler draws the images of Sample(g, n, seed) in order, SampleChunk
// at a time: the images it gives are bit for bit Sample's, while only one
// chunk of noise and images is held at once.
type Sampler struct {
	g       *nn.Sequential[float32]
	rng     *rand.Rand
	left    int       // images not generated yet
	pending []float32 // images generated but not taken yet, ImageSize² values each (in buf)
	buf     []float32 // one chunk of images
	done    int       // images taken
	made    int       // images generated
	classOf func(i int) int
}

// NewSampler prepares to draw n images from g with the noise of seed.
func NewSampler(g *nn.Sequential[float32], n int, seed uint64) (*Sampler, error) {
	if n <= 0 {
		return nil, fmt.Errorf("gan: sample count %d: want at least 1", n)
	}
	if IsConditional(g) {
		return nil, fmt.Errorf("gan: the generator is class-conditional: give the class of every sample (NewLabeledSampler)")
	}
	return &Sampler{g: g, rng: training.NewRand(seed, streamSample), left: n}, nil
}

// NewLabeledSampler prepares to draw n images from the conditional
// generator g with the noise of seed, image i of class classOf(i). The
// noise is the same as NewSampler's: image i of a class differs from
// image i of another class only by its class.
func NewLabeledSampler(g *nn.Sequential[float32], n int, seed uint64, classOf func(i int) int) (*Sampler, error) {
	if n <= 0 {
		return nil, fmt.Errorf("gan: sample count %d: want at least 1", n)
	}
	if !IsConditional(g) {
		return nil, fmt.Errorf("gan: the generator is not class-conditional: it takes no classes")
	}
	return &Sampler{g: g, rng: training.NewRand(seed, streamSample), left: n, classOf: classOf}, nil
}

// Done is the number of images taken so far.
func (s *Sampler) Done() int { return s.done }

// Next fills dst with the next len(dst)/ImageSize² images, in [0, 1], row
// after row, generating chunks as needed. It checks ctx before each chunk
// and returns its error (wrapped) once it is cancelled.
func (s *Sampler) Next(ctx context.Context, dst []float32) error {
	const per = ImageSize * ImageSize
	if len(dst)%per != 0 {
		return fmt.Errorf("gan: Sampler.Next: %d values are not whole images of %d×%d", len(dst), ImageSize, ImageSize)
	}
	if want := len(dst) / per; want > s.left+len(s.pending)/per {
		return fmt.Errorf("gan: Sampler.Next: %d images asked, %d left", want, s.left+len(s.pending)/per)
	}
	for len(dst) > 0 {
		if len(s.pending) == 0 {
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("gan: sampling stopped after %d images: %w", s.done, err)
			}
			k := min(SampleChunk, s.left)
			if err := s.generate(k); err != nil {
				return err
			}
		}
		c := copy(dst, s.pending)
		dst, s.pending = dst[c:], s.pending[c:]
		s.done += c / per
	}
	return nil
}

// generate makes the next k ≤ SampleChunk images pending: Generate's
// computation for one chunk, whose intermediate tensors are then handed
// back for reuse (autograd.Release), so that chunk after chunk reuses the
// same storage instead of leaving it to the garbage collector.
func (s *Sampler) generate(k int) error {
	if s.buf == nil {
		s.buf = make([]float32, SampleChunk*ImageSize*ImageSize)
	}
	was := s.g.IsTraining()
	s.g.SetTraining(false)
	defer s.g.SetTraining(was)
	z := Noise(s.rng, k)
	defer tensor.Release(z)
	if s.classOf != nil {
		ids := make([]int, k)
		for i := range ids {
			ids[i] = s.classOf(s.made + i)
		}
		if err := SetLabels(s.g, ids); err != nil {
			return err
		}
	}
	y, err := s.g.Forward(autograd.Leaf("z", z, false))
	if err != nil {
		return err
	}
	defer autograd.Release(y)
	out := s.buf[:k*ImageSize*ImageSize]
	if got := y.Value.Len(); got != len(out) {
		return fmt.Errorf("gan: the generator gave %d values for %d images, want %d", got, k, len(out))
	}
	for i, v := range y.Value.Data() {
		out[i] = (v + 1) / 2
	}
	s.left -= k
	s.made += k
	s.pending = out
	return nil
}

// WriteSamples saves images (n, 1, 28, 28) in [0, 1] by the extension of
// path: ".png" gives a grid of ⌈√n⌉ columns; anything else an IDX file of
// unsigned bytes in MNIST's format (data.WriteImages), gzip-compressed when
// path ends in ".gz". Both writes are atomic.
func WriteSamples(path string, images *tensor.Tensor[float32]) error {
	if isPNG(path) {
		img, err := viz.ImageGrid(images, gridColumns(images.Dim(0)), 0, 1)
		if err != nil {
			return fmt.Errorf("gan: %s: %w", path, err)
		}
		return viz.SavePNG(path, img)
	}
	return data.WriteImages(path, images)
}

// WriteSampleFile draws n images from g with the noise of seed and writes
// them to path, byte for byte the file WriteSamples(path, Sample(g, n,
// seed)) writes (a PNG grid for ".png", otherwise IDX, gzipped for ".gz"),
// but streaming: the IDX header first, then the images SampleChunk at a
// time; a PNG grid one row of tiles at a time. Memory does not grow with n
// for IDX, and only with √n (one row of the grid) for PNG.
//
// The write is atomic (a temporary file beside path, synced and renamed):
// if ctx is cancelled (Ctrl-C) or anything fails, the temporary file is
// removed and whatever was at path is left as it was; the error then
// wraps ctx's error.
func WriteSampleFile(ctx context.Context, path string, g *nn.Sequential[float32], n int, seed uint64) error {
	s, err := NewSampler(g, n, seed)
	if err != nil {
		return err
	}
	return writeSampleFile(ctx, path, s, n, 0)
}

// WriteLabeledSampleFile is WriteSampleFile for a conditional generator:
// image i is of class classOf(i) (NewLabeledSampler), and a PNG grid has
// cols columns (0: ⌈√n⌉).
func WriteLabeledSampleFile(ctx context.Context, path string, g *nn.Sequential[float32], n int, seed uint64, classOf func(i int) int, cols int) error {
	s, err := NewLabeledSampler(g, n, seed, classOf)
	if err != nil {
		return err
	}
	return writeSampleFile(ctx, path, s, n, cols)
}

// writeSampleFile writes the n images of s to path (a PNG grid of cols
// columns, ⌈√n⌉ for 0, or IDX).
func writeSampleFile(ctx context.Context, path string, s *Sampler, n, cols int) error {
	if isPNG(path) {
		grid, err := newSampleGrid(ctx, s, n, cols)
		if err != nil {
			return fmt.Errorf("gan: %s: %w", path, err)
		}
		return atomicfile.WriteFile(path, func(w io.Writer) error {
			err := png.Encode(stopWriter{w, &grid.err}, grid)
			if grid.err != nil {
				return grid.err
			}
			return err
		})
	}
	if int64(n) > math.MaxUint32 {
		return fmt.Errorf("gan: %s: an IDX file holds at most %d images, asked for %d", path, uint32(math.MaxUint32), n)
	}
	return atomicfile.WriteFile(path, func(w io.Writer) error {
		if !strings.HasSuffix(path, ".gz") { // as data.WriteIDX
			return writeIDXSamples(ctx, w, s, n)
		}
		zw := gzip.NewWriter(w)
		if err := writeIDXSamples(ctx, zw, s, n); err != nil {
			return err
		}
		return zw.Close()
	})
}

// writeIDXSamples writes the IDX header of n images (data.EncodeIDX's:
// unsigned bytes, rank 3) and then the images chunk by chunk.
func writeIDXSamples(ctx context.Context, w io.Writer, s *Sampler, n int) error {
	hdr := make([]byte, 16)
	hdr[2], hdr[3] = data.TypeUint8, 3
	binary.BigEndian.PutUint32(hdr[4:], uint32(n))
	binary.BigEndian.PutUint32(hdr[8:], ImageSize)
	binary.BigEndian.PutUint32(hdr[12:], ImageSize)
	if _, err := w.Write(hdr); err != nil {
		return err
	}
	const per = ImageSize * ImageSize
	vals := make([]float32, SampleChunk*per)
	px := make([]byte, SampleChunk*per)
	for done := 0; done < n; {
		k := min(SampleChunk, n-done)
		if err := s.Next(ctx, vals[:k*per]); err != nil {
			return err
		}
		for i, v := range vals[:k*per] {
			px[i] = toLevel(v)
		}
		if _, err := w.Write(px[:k*per]); err != nil {
			return err
		}
		done += k
	}
	return nil
}

// toLevel maps [0, 1] to 0…255, clamping and rounding, NaN to 0: the
// conversion of data.WriteImages and viz.ImageGrid (lo 0, hi 1).
func toLevel(v float32) uint8 {
	if !(v > 0) {
		return 0
	}
	if v >= 1 {
		return 255
	}
	return uint8(v*255 + 0.5)
}

func isPNG(path string) bool { return strings.EqualFold(filepath.Ext(path), ".png") }

// gridColumns is the number of columns of a grid of n samples, ⌈√n⌉.
func gridColumns(n int) int { return int(math.Ceil(math.Sqrt(float64(n)))) }

// sampleGrid is the grid viz.ImageGrid draws of n samples in ⌈√n⌉
// columns, as an image whose pixel rows are drawn when the PNG encoder
// asks for them (top to bottom): it holds one row of tiles and one row of
// pixels. A failure to draw (ctx cancelled, the generator's error) is
// kept in err, which stops the encoder's writes.
type sampleGrid struct {
	ctx           context.Context
	s             *Sampler
	n, cols, rows int
	width, height int
	tileRow       int       // the row of tiles in tiles, -1 before the first
	tiles         []float32 // its images
	inRow         int       // how many images it has
	y             int       // the pixel row in line, -1 before the first
	line          []uint8
	err           error
}

func newSampleGrid(ctx context.Context, s *Sampler, n, cols int) (*sampleGrid, error) {
	const size, gap = ImageSize, viz.GridGap
	if cols <= 0 {
		cols = gridColumns(n)
	}
	cols = min(cols, n)
	rows := (n + cols - 1) / cols
	width, height := int64(cols)*(size+gap)-gap, int64(rows)*(size+gap)-gap
	if width > math.MaxInt32 || height > math.MaxInt32 {
		return nil, fmt.Errorf("a grid of %d images would be %d×%d pixels, more than a PNG file can hold (2³¹−1 a side)", n, width, height)
	}
	return &sampleGrid{ctx: ctx, s: s, n: n, cols: cols, rows: rows, width: int(width), height: int(height),
		tileRow: -1, tiles: make([]float32, cols*size*size), y: -1, line: make([]uint8, width)}, nil
}

// ColorModel is gray, so that the PNG is 8-bit grayscale as viz.SavePNG
// writes an *image.Gray.
func (g *sampleGrid) ColorModel() color.Model { return color.GrayModel }

// Bounds is the grid's size.
func (g *sampleGrid) Bounds() image.Rectangle { return image.Rect(0, 0, g.width, g.height) }

// At is the gray level at (x, y); rows must be asked for top to bottom.
func (g *sampleGrid) At(x, y int) color.Color {
	if y != g.y {
		g.drawLine(y)
	}
	return color.Gray{Y: g.line[x]}
}

// drawLine draws pixel row y into line, generating the next row of tiles
// when y enters it.
func (g *sampleGrid) drawLine(y int) {
	const size, gap = ImageSize, viz.GridGap
	g.y = y
	for i := range g.line {
		g.line[i] = viz.GridGapGray
	}
	r, ty := y/(size+gap), y%(size+gap)
	if g.err != nil || ty >= size {
		return
	}
	if r != g.tileRow {
		if r != g.tileRow+1 {
			g.err = fmt.Errorf("gan: grid row %d asked after row %d", r, g.tileRow)
			return
		}
		g.tileRow = r
		g.inRow = min(g.cols, g.n-r*g.cols)
		if err := g.s.Next(g.ctx, g.tiles[:g.inRow*size*size]); err != nil {
			g.err = err
			return
		}
	}
	for c := range g.inRow {
		src := g.tiles[c*size*size+ty*size:][:size]
		dst := g.line[c*(size+gap):][:size]
		for i, v := range src {
			dst[i] = toLevel(v)
		}
	}
}

// Opaque reports that every pixel is opaque.
func (g *sampleGrid) Opaque() bool { return true }

// stopWriter fails every write once *err is set, so that the PNG encoder
// stops at the first failure to draw the grid.
type stopWriter struct {
	w   io.Writer
	err *error
}

func (w stopWriter) Write(p []byte) (int, error) {
	if *w.err != nil {
		return 0, *w.err
	}
	return w.w.Write(p)
}
