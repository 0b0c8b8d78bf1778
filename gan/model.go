// Package gan trains the reference DCGAN of the project on MNIST-like
// images: the generator and discriminator built exactly as their PyTorch
// twins in bench/gan/train_torch.py (so the two engines can be raced), the
// training loop with the recipe of the DCGAN paper, checkpoints that
// resume bit for bit, and sampling from a trained generator.
package gan

import (
	"math/rand/v2"

	"github.com/backprop-dev/backprop/autograd"
	"github.com/backprop-dev/backprop/nn"
	"github.com/backprop-dev/backprop/tensor"
)

// Sizes of the reference models.
const (
	// ZDim is the size of the noise vector z ~ N(0, 1) fed to the generator.
	ZDim = 100
	// ImageSize is the height and width of the generated images (28, as
	// MNIST); the models are built for 1×28×28.
	ImageSize = 28
	// genChannels is the channel count of the generator's first feature
	// map (128×7×7) and of the discriminator's last one.
	genChannels = 128
	// midChannels is the channel count of the 14×14 feature maps.
	midChannels = 64
	// base is the side of the smallest feature map (7).
	base = ImageSize / 4
)

// Bias usage, stated once for both models and mirrored by the PyTorch
// script: a layer followed by BatchNorm has no bias (BatchNorm subtracts
// the batch mean, so a bias there is dead weight, as in the DCGAN paper
// and PyTorch's DCGAN example); the other layers (the generator's last
// transposed convolution, the discriminator's first convolution and its
// final Linear) keep theirs.
const (
	biasBeforeBN = false
	biasElsewise = true
)

// NewGenerator builds the reference generator as an nn.Sequential with
// PyTorch's state_dict names:
//
//	0 Linear(100 → 6272, bias=False)   3 Unflatten(1, (128, 7, 7))   6 ReLU
//	1 BatchNorm1d(6272)                4 ConvTranspose2d(128 → 64, 4, 2, 1, bias=False)
//	2 ReLU                             5 BatchNorm2d(64)
//	7 ConvTranspose2d(64 → 1, 4, 2, 1, bias=True)   8 Tanh
//
// It maps (N, 100) noise to (N, 1, 28, 28) images in [−1, 1]. The weights
// get PyTorch's default initialization from rng, then DCGAN's N(0, 0.02)
// (nn.DCGANInit); a nil rng leaves zeros, for a model about to load a
// checkpoint.
func NewGenerator(rng *rand.Rand) *nn.Sequential[float32] {
	g := nn.NewSequential[float32](
		nn.NewLinear[float32](ZDim, genChannels*base*base, biasBeforeBN, rng),
		nn.NewBatchNorm1d[float32](genChannels*base*base),
		nn.NewReLU[float32](),
		nn.NewUnflatten[float32](genChannels, base, base),
		nn.NewConvTranspose2d[float32](genChannels, midChannels, 4, 2, 1, 0, biasBeforeBN, rng),
		nn.NewBatchNorm2d[float32](midChannels),
		nn.NewReLU[float32](),
		nn.NewConvTranspose2d[float32](midChannels, 1, 4, 2, 1, 0, biasElsewise, rng),
		nn.NewTanh[float32](),
	)
	if rng != nil {
		nn.DCGANInit[float32](g, rng)
	}
	return g
}

// NewDiscriminator builds the reference discriminator as an
// nn.Sequential with PyTorch's state_dict names:
//
//	0 Conv2d(1 → 64, 4, 2, 1, bias=True)      4 LeakyReLU(0.2)
//	1 LeakyReLU(0.2)                          5 Flatten
//	2 Conv2d(64 → 128, 4, 2, 1, bias=False)   6 Linear(6272 → 1, bias=True)
//	3 BatchNorm2d(128)
//
// It maps (N, 1, 28, 28) images in [−1, 1] to (N, 1) logits of "real".
// Initialization as NewGenerator.
func NewDiscriminator(rng *rand.Rand) *nn.Sequential[float32] {
	d := nn.NewSequential[float32](
		nn.NewConv2d[float32](1, midChannels, 4, 2, 1, biasElsewise, rng),
		nn.NewLeakyReLU[float32](0.2),
		nn.NewConv2d[float32](midChannels, genChannels, 4, 2, 1, biasBeforeBN, rng),
		nn.NewBatchNorm2d[float32](genChannels),
		nn.NewLeakyReLU[float32](0.2),
		nn.NewFlatten[float32](),
		nn.NewLinear[float32](genChannels*base*base, 1, biasElsewise, rng),
	)
	if rng != nil {
		nn.DCGANInit[float32](d, rng)
	}
	return d
}

// NewModels builds the generator and discriminator of recipe r, drawing
// their initial weights from rng (nil: zeros, for models about to load a
// checkpoint).
//
// The reference recipe gives NewGenerator and NewDiscriminator, drawn in
// that order. With r.Conditional, G starts with a LabelEmbedding ("0",
// N(0, 1) as torch.nn.Embedding) and its Linear takes ZDim + EmbedDim
// inputs; D's last layer becomes a Projection whose class embedding
// ("6.embed") starts N(0, 0.02). With r.SpectralNorm, D's two
// convolutions and its Linear are wrapped in SpectralNorm, their u and v
// drawn after every weight. The other layers are initialized as in the
// reference models.
func NewModels(r Recipe, rng *rand.Rand) (g, d *nn.Sequential[float32]) {
	if !r.Conditional {
		g = NewGenerator(rng)
	} else {
		body := []nn.Module[float32]{
			nn.NewLinear[float32](ZDim+EmbedDim, genChannels*base*base, biasBeforeBN, rng),
			nn.NewBatchNorm1d[float32](genChannels * base * base),
			nn.NewReLU[float32](),
			nn.NewUnflatten[float32](genChannels, base, base),
			nn.NewConvTranspose2d[float32](genChannels, midChannels, 4, 2, 1, 0, biasBeforeBN, rng),
			nn.NewBatchNorm2d[float32](midChannels),
			nn.NewReLU[float32](),
			nn.NewConvTranspose2d[float32](midChannels, 1, 4, 2, 1, 0, biasElsewise, rng),
			nn.NewTanh[float32](),
		}
		if rng != nil {
			nn.DCGANInit[float32](nn.NewSequential(body...), rng)
		}
		emb := &LabelEmbedding{Weight: autograd.Leaf("weight", tensor.New[float32](Classes, EmbedDim), true), training: true}
		if rng != nil {
			nn.Normal(emb.Weight.Value, 0, 1, rng)
		}
		g = nn.NewSequential(append([]nn.Module[float32]{emb}, body...)...)
	}
	d = NewDiscriminator(rng)
	if !r.SpectralNorm && !r.Conditional {
		return g, d
	}
	layers := make([]nn.Module[float32], d.Len())
	for i := range layers {
		layers[i] = d.At(i)
	}
	if r.SpectralNorm {
		for _, i := range []int{0, 2, 6} {
			layers[i] = NewSpectralNorm(layers[i], rng)
		}
	}
	if r.Conditional {
		p := &Projection{Out: layers[6], Embed: autograd.Leaf("embed", tensor.New[float32](Classes, genChannels*base*base), true), training: true}
		if rng != nil {
			nn.Normal(p.Embed.Value, 0, 0.02, rng)
		}
		layers[6] = p
	}
	return g, nn.NewSequential(layers...)
}
