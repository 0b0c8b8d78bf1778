// Package autoencoder is Problem 2 of the problem set, the seed's
// auto-encoder, trained on real images:
//
//	h  = ReLU(W1 x + b1)      (encoder, Input → Hidden)
//	x' = σ(W2 h + b2)         (decoder, Hidden → Input)
//
// with the loss the seed uses, the sum of squared errors of an image,
// averaged over a mini-batch. The package holds the model (built from the
// engine's nn layers with PyTorch's names, so that its weights move to and
// from torch.nn.Linear), the training loop behind `backprop train
// autoencoder`, and checkpoints in the safetensors format that `backprop
// reconstruct` and PyTorch both read. A checkpoint also holds the optimizer
// state, the shuffling generator's state and the loss history, so that an
// interrupted run resumes (Options.Resume, `--resume DIR`) bit for bit.
package autoencoder

import (
	"fmt"
	"math/rand/v2"

	"github.com/backprop-dev/backprop/autograd"
	"github.com/backprop-dev/backprop/data"
	"github.com/backprop-dev/backprop/nn"
	"github.com/backprop-dev/backprop/ops"
	"github.com/backprop-dev/backprop/tensor"
)

// Default architecture: 28×28 MNIST images through 256 hidden units, the
// sizes of `backprop train autoencoder` without flags.
const (
	DefaultInput  = 784
	DefaultHidden = 256
)

// maxUnits bounds the layer sizes accepted from flags and checkpoint
// metadata, so that a typo or a corrupt file cannot ask for terabytes.
const maxUnits = 1 << 20

// Config is the architecture of an auto-encoder: how many values an input
// has and how many hidden units encode it. It is all a checkpoint needs,
// besides the weights, to rebuild the model.
type Config struct {
	Input  int // values per input: pixels per image (784 for 28×28)
	Hidden int // hidden units (the code size)
}

// Validate reports a size that is not positive or absurdly large.
func (c Config) Validate() error {
	if c.Input <= 0 || c.Input > maxUnits {
		return fmt.Errorf("autoencoder: input size %d, want 1…%d", c.Input, maxUnits)
	}
	if c.Hidden <= 0 || c.Hidden > maxUnits {
		return fmt.Errorf("autoencoder: hidden size %d, want 1…%d", c.Hidden, maxUnits)
	}
	return nil
}

// String renders the architecture as "784 → 256 ReLU → 784 sigmoid".
func (c Config) String() string {
	return fmt.Sprintf("%d → %d ReLU → %d sigmoid", c.Input, c.Hidden, c.Input)
}

// Model is the auto-encoder: a Sequential of the children "encoder"
// (Linear Input → Hidden), "relu", "decoder" (Linear Hidden → Input) and
// "sigmoid". Its state dict is therefore named as the PyTorch module
//
//	class AE(nn.Module):
//	    def __init__(self): self.encoder = nn.Linear(784, 256); self.decoder = nn.Linear(256, 784)
//	    def forward(self, x): return torch.sigmoid(self.decoder(torch.relu(self.encoder(x))))
//
// names it: "encoder.weight" (Hidden, Input), "encoder.bias",
// "decoder.weight" (Input, Hidden), "decoder.bias". Model is an nn.Module
// through the embedded Sequential.
type Model struct {
	*nn.Sequential[float32]
	Config  Config              // the architecture
	Encoder *nn.Linear[float32] // the child "encoder"
	Decoder *nn.Linear[float32] // the child "decoder"
}

// New builds an auto-encoder of the given architecture with PyTorch's
// default Linear initialization drawn from rng (encoder weight, encoder
// bias, decoder weight, decoder bias, in that order), so a seed fixes the
// model. A nil rng leaves every parameter at zero, for a model about to
// load a checkpoint.
func New(cfg Config, rng *rand.Rand) (*Model, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	enc := nn.NewLinear[float32](cfg.Input, cfg.Hidden, true, rng)
	dec := nn.NewLinear[float32](cfg.Hidden, cfg.Input, true, rng)
	net := nn.NewNamedSequential(
		nn.Child[float32]{Name: "encoder", Module: enc},
		nn.Child[float32]{Name: "relu", Module: nn.NewReLU[float32]()},
		nn.Child[float32]{Name: "decoder", Module: dec},
		nn.Child[float32]{Name: "sigmoid", Module: nn.NewSigmoid[float32]()},
	)
	return &Model{Sequential: net, Config: cfg, Encoder: enc, Decoder: dec}, nil
}

// Flatten views a batch of images [N, 1, H, W] (or [N, H, W], or already
// flat [N, Input]) as the [N, Input] matrix the model takes, sharing the
// data. It fails when an image does not have the model's Input values.
func (m *Model) Flatten(images *tensor.Tensor[float32]) (*tensor.Tensor[float32], error) {
	if images == nil {
		return nil, fmt.Errorf("autoencoder: nil image batch")
	}
	s := images.Shape()
	if len(s) < 2 {
		return nil, &tensor.ShapeError{Op: "autoencoder", Tensor: "images", Want: fmt.Sprintf("[N×1×H×W] or [N×%d]", m.Config.Input), Got: s}
	}
	if per := tensor.NumElements(s[1:]); per != m.Config.Input {
		return nil, &tensor.ShapeError{Op: "autoencoder", Tensor: "images", Got: s,
			Want: fmt.Sprintf("%d values per image (the model's input size), not %d", m.Config.Input, per)}
	}
	return images.Reshape(s[0], m.Config.Input)
}

// Loss records the seed's objective for a batch of images: the model's
// reconstruction x' and L = Σ (x' − x)² / N, the sum of squared errors
// per image averaged over the N images of the batch. Calling
// autograd.Backward on the loss fills the parameters' gradients.
func (m *Model) Loss(images *tensor.Tensor[float32]) (recon, loss *autograd.Var[float32], err error) {
	flat, err := m.Flatten(images)
	if err != nil {
		return nil, nil, err
	}
	n := flat.Dim(0)
	if n == 0 {
		return nil, nil, fmt.Errorf("autoencoder: empty batch")
	}
	x := autograd.Leaf("x", flat, false)
	recon, err = m.Forward(x)
	if err != nil {
		return nil, nil, err
	}
	loss, err = ops.SquaredError("loss", recon, x, float64(n))
	if err != nil {
		return nil, nil, err
	}
	return recon, loss, nil
}

// Reconstruct returns the model's reconstructions of images, in the shape
// the images were given.
func (m *Model) Reconstruct(images *tensor.Tensor[float32]) (*tensor.Tensor[float32], error) {
	flat, err := m.Flatten(images)
	if err != nil {
		return nil, err
	}
	if flat.Dim(0) == 0 {
		return images.Clone(), nil
	}
	y, err := m.Forward(autograd.Leaf("x", flat, false))
	if err != nil {
		return nil, err
	}
	return y.Value.Reshape(images.Shape()...)
}

// evalBatch is how many images TestError reconstructs at once: big enough
// for efficient matrix products, small enough to keep memory modest.
const evalBatch = 500

// TestError is the reconstruction error of the model on a data set: the
// mean over its images of the per-image sum of squared errors Σ (x' − x)²,
// accumulated in float64. It is the training loss's own measure, so the
// two can be compared directly.
func (m *Model) TestError(d *data.Dataset) (float64, error) {
	if d == nil || d.Len() == 0 {
		return 0, fmt.Errorf("autoencoder: no images to measure the reconstruction error on")
	}
	h, w := d.ImageShape()
	per := h * w
	if per != m.Config.Input {
		return 0, fmt.Errorf("autoencoder: data set %s has %d×%d images (%d pixels), the model's input size is %d",
			d.Name, h, w, per, m.Config.Input)
	}
	src := d.Images.Data()
	total := 0.0
	for lo := 0; lo < d.Len(); lo += evalBatch {
		hi := min(lo+evalBatch, d.Len())
		batch, err := tensor.FromSlice(src[lo*per:hi*per], hi-lo, per)
		if err != nil {
			return 0, err
		}
		rec, err := m.Reconstruct(batch)
		if err != nil {
			return 0, err
		}
		x, y := batch.Data(), rec.Data()
		for i := range x {
			e := float64(y[i]) - float64(x[i])
			total += e * e
		}
	}
	return total / float64(d.Len()), nil
}
