package gan

import (
	"fmt"
	"math"
	"path/filepath"
	"strings"

	"github.com/backprop-dev/backprop/data"
	"github.com/backprop-dev/backprop/nn"
	"github.com/backprop-dev/backprop/tensor"
	"github.com/backprop-dev/backprop/training"
	"github.com/backprop-dev/backprop/viz"
)

// Sample draws n images from the generator g (in evaluation mode, see
// Generate) with noise from the sampling stream of seed, so that the same
// checkpoint and seed always give the same images. The images are
// (n, 1, 28, 28) in [0, 1].
func Sample(g *nn.Sequential[float32], n int, seed uint64) (*tensor.Tensor[float32], error) {
	if n <= 0 {
		return nil, fmt.Errorf("gan: sample count %d: want at least 1", n)
	}
	z := Noise(training.NewRand(seed, streamSample), n)
	return Generate(g, z)
}

// WriteSamples saves images (n, 1, 28, 28) in [0, 1] by the extension of
// path: ".png" gives a grid of ⌈√n⌉ columns; anything else an IDX file of
// unsigned bytes in MNIST's format (data.WriteImages), gzip-compressed when
// path ends in ".gz". Both writes are atomic.
func WriteSamples(path string, images *tensor.Tensor[float32]) error {
	if strings.EqualFold(filepath.Ext(path), ".png") {
		cols := int(math.Ceil(math.Sqrt(float64(images.Dim(0)))))
		img, err := viz.ImageGrid(images, cols, 0, 1)
		if err != nil {
			return fmt.Errorf("gan: %s: %w", path, err)
		}
		return viz.SavePNG(path, img)
	}
	return data.WriteImages(path, images)
}
