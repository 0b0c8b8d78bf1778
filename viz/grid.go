// Package viz turns tensors and training histories into pictures: grids of
// images (samples, reconstructions) and loss curves, saved as PNG files that
// any viewer opens. Files are written atomically, so a viewer refreshing
// the picture during training never sees a half-written file.
package viz

import (
	"errors"
	"fmt"
	"image"
	"image/png"
	"io"

	"github.com/backprop-dev/backprop/internal/atomicfile"
	"github.com/backprop-dev/backprop/tensor"
)

// Grid layout constants: tiles are separated by GridGap pixels of the gray
// level GridGapGray, a mid-gray distinct from both the black background and
// the white strokes of MNIST-like images.
const (
	GridGap     = 2
	GridGapGray = 128
)

// ImageGrid lays out images of shape [N, 1, H, W] or [N, H, W] in a grid of
// cols columns (fewer when N < cols), row after row, mapping the value lo to
// black and hi to white (values outside are clamped, NaN is black).
func ImageGrid(images *tensor.Tensor[float32], cols int, lo, hi float32) (*image.Gray, error) {
	tiles, h, w, err := splitImages("ImageGrid", "images", images)
	if err != nil {
		return nil, err
	}
	return gridOf("ImageGrid", tiles, h, w, cols, lo, hi)
}

// ImageGridSlices is ImageGrid for images given as slices, each holding
// h×w values in row-major order.
func ImageGridSlices(images [][]float32, h, w, cols int, lo, hi float32) (*image.Gray, error) {
	if h <= 0 || w <= 0 {
		return nil, fmt.Errorf("viz: ImageGridSlices: image size %d×%d, want positive", h, w)
	}
	for i, im := range images {
		if len(im) != h*w {
			return nil, fmt.Errorf("viz: ImageGridSlices: image %d has %d values, want %d×%d = %d", i, len(im), h, w, h*w)
		}
	}
	return gridOf("ImageGridSlices", images, h, w, cols, lo, hi)
}

// PairGrid shows two sets of images of the same shape, such as originals
// and their reconstructions: each row of up to cols images from top is
// directly followed by the row of the corresponding images from bottom, so
// every original sits just above its reconstruction.
func PairGrid(top, bottom *tensor.Tensor[float32], cols int, lo, hi float32) (*image.Gray, error) {
	a, h, w, err := splitImages("PairGrid", "top", top)
	if err != nil {
		return nil, err
	}
	b, h2, w2, err := splitImages("PairGrid", "bottom", bottom)
	if err != nil {
		return nil, err
	}
	if len(a) != len(b) || h != h2 || w != w2 {
		return nil, fmt.Errorf("viz: PairGrid: top has shape %s, bottom %s; want the same number and size of images",
			tensor.FormatShape(top.Shape()), tensor.FormatShape(bottom.Shape()))
	}
	if err := checkGridArgs("PairGrid", len(a), cols, lo, hi); err != nil {
		return nil, err
	}
	cols = min(cols, len(a))
	var rows [][][]float32
	for start := 0; start < len(a); start += cols {
		end := min(start+cols, len(a))
		rows = append(rows, a[start:end], b[start:end])
	}
	return drawRows(rows, h, w, cols, lo, hi), nil
}

// splitImages checks an image tensor's shape and returns one slice per image.
func splitImages(fn, arg string, t *tensor.Tensor[float32]) ([][]float32, int, int, error) {
	if t == nil {
		return nil, 0, 0, fmt.Errorf("viz: %s: %s is nil", fn, arg)
	}
	s := t.Shape()
	var n, h, w int
	switch {
	case len(s) == 4 && s[1] == 1:
		n, h, w = s[0], s[2], s[3]
	case len(s) == 3:
		n, h, w = s[0], s[1], s[2]
	default:
		return nil, 0, 0, fmt.Errorf("viz: %s: %s has shape %s, want [N×1×H×W] or [N×H×W] (one channel)", fn, arg, tensor.FormatShape(s))
	}
	if h == 0 || w == 0 {
		return nil, 0, 0, fmt.Errorf("viz: %s: %s has shape %s, want non-empty images", fn, arg, tensor.FormatShape(s))
	}
	d := t.Data()
	tiles := make([][]float32, n)
	for i := range tiles {
		tiles[i] = d[i*h*w : (i+1)*h*w]
	}
	return tiles, h, w, nil
}

// checkGridArgs validates the arguments shared by all grid functions.
func checkGridArgs(fn string, n, cols int, lo, hi float32) error {
	switch {
	case n == 0:
		return fmt.Errorf("viz: %s: no images to show", fn)
	case cols <= 0:
		return fmt.Errorf("viz: %s: %d columns, want > 0", fn, cols)
	case !(hi > lo):
		return fmt.Errorf("viz: %s: value range [%v, %v], want lo < hi", fn, lo, hi)
	}
	return nil
}

// gridOf arranges tiles row-major in cols columns.
func gridOf(fn string, tiles [][]float32, h, w, cols int, lo, hi float32) (*image.Gray, error) {
	if err := checkGridArgs(fn, len(tiles), cols, lo, hi); err != nil {
		return nil, err
	}
	cols = min(cols, len(tiles))
	var rows [][][]float32
	for start := 0; start < len(tiles); start += cols {
		rows = append(rows, tiles[start:min(start+cols, len(tiles))])
	}
	return drawRows(rows, h, w, cols, lo, hi), nil
}

// drawRows renders rows of h×w tiles, cols cells wide, separated by GridGap
// pixels of GridGapGray; cells without a tile are gap-gray too.
func drawRows(rows [][][]float32, h, w, cols int, lo, hi float32) *image.Gray {
	width := cols*w + (cols-1)*GridGap
	height := len(rows)*h + (len(rows)-1)*GridGap
	img := image.NewGray(image.Rect(0, 0, width, height))
	for i := range img.Pix {
		img.Pix[i] = GridGapGray
	}
	scale := 1 / (hi - lo)
	for r, row := range rows {
		y0 := r * (h + GridGap)
		for c, tile := range row {
			x0 := c * (w + GridGap)
			for y := 0; y < h; y++ {
				line := img.Pix[(y0+y)*img.Stride+x0:]
				for x := 0; x < w; x++ {
					line[x] = level((tile[y*w+x] - lo) * scale)
				}
			}
		}
	}
	return img
}

// level maps [0, 1] to a gray level 0…255, clamping and rounding; NaN is 0.
func level(v float32) uint8 {
	if !(v > 0) {
		return 0
	}
	if v >= 1 {
		return 255
	}
	return uint8(v*255 + 0.5)
}

// SavePNG encodes img as PNG at path, atomically: a failed write leaves any
// previous file in place.
func SavePNG(path string, img image.Image) error {
	if img == nil {
		return errors.New("viz: SavePNG " + path + ": nil image")
	}
	return atomicfile.WriteFile(path, func(w io.Writer) error {
		return png.Encode(w, img)
	})
}
