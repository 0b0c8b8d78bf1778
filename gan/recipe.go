package gan

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/backprop-dev/backprop/autograd"
	"github.com/backprop-dev/backprop/tensor"
)

// Losses a Recipe may name.
const (
	// LossBCE is the reference DCGAN's objective: BCE-with-logits for D on
	// real (target 1, or the smoothed label) and fake (target 0) batches,
	// and the non-saturating BCE(D(G(z)), 1) for G.
	LossBCE = "bce"
	// LossNS is the non-saturating loss of Goodfellow et al. as the R1 and
	// StyleGAN papers write it, softplus(−D(x)) + softplus(D(G(z))) for D
	// and softplus(−D(G(z))) for G: the same function as LossBCE, computed
	// by the same code. It is accepted under the name practitioners use.
	LossNS = "ns"
	// LossHinge is the hinge loss of the SAGAN / BigGAN recipes:
	// mean(max(0, 1 − D(x))) + mean(max(0, 1 + D(G(z)))) for D and
	// −mean(D(G(z))) for G.
	LossHinge = "hinge"
)

// Classes is the number of classes a conditional model is built for (the
// ten digits or garments of MNIST and Fashion-MNIST).
const Classes = 10

// EmbedDim is the size of the learned class embedding a conditional
// generator concatenates to z.
const EmbedDim = 10

// ErrR1Unsupported is the error of a Recipe asking for an R1 penalty: R1
// is the squared norm of ∇ₓD(x), and its gradient with respect to D's
// weights needs the gradient of a gradient (double backprop), which the
// engine's autograd cannot record — autograd.Backward computes gradients
// as plain tensors, not as nodes of a graph.
var ErrR1Unsupported = errors.New("gan: the R1 penalty needs the gradient of a gradient (double backprop), which this engine's autograd does not record; it is not implemented")

// Recipe lists the training ingredients beyond the reference DCGAN. The
// zero value is the reference recipe (the defaults of every field), whose
// steps match PyTorch's DCGAN example to 1e-7.
type Recipe struct {
	// Loss is LossBCE (default, also ""), LossNS or LossHinge.
	Loss string
	// EMA, when in (0, 1), keeps an exponential moving average of G's
	// weights, θ_ema ← β·θ_ema + (1 − β)·θ after every G step, with the
	// warm-up of tf.train.ExponentialMovingAverage's num_updates,
	// β = min(EMA, (1 + t)/(10 + t)) at global step t (EMADecay), so that
	// the untrained initial weights do not linger in a short run;
	// BatchNorm's running statistics are copied from G. Sample grids,
	// `backprop sample` and the checkpoint's "G." entries use it. 0: off.
	EMA float64
	// LRG and LRD are Adam's step sizes for G and D (two-timescale update
	// rule when they differ); 0 means LearningRate.
	LRG, LRD float64
	// LabelSmoothing, when in (0, 1), is D's target for real images
	// (one-sided label smoothing, Salimans et al. 2016); 0: off (target 1).
	// Only with the BCE/NS loss.
	LabelSmoothing float64
	// SpectralNorm divides each weight of D (both convolutions and the
	// final Linear) by its largest singular value, estimated by one step
	// of power iteration per training step (Miyato et al. 2018, as
	// torch.nn.utils.spectral_norm).
	SpectralNorm bool
	// Conditional trains a class-conditional pair: G gets a learned
	// EmbedDim-sized embedding of the label concatenated to z, D is a
	// projection discriminator (its logit plus ⟨V[y], φ(x)⟩ with φ(x) the
	// features before its last layer).
	Conditional bool
	// R1 is the weight γ of an R1 penalty. Any value other than 0 is
	// refused (ErrR1Unsupported).
	R1 float64
}

// Arches a run may start from (`backprop train gan --arch`); the recipe
// options given beside it change single ingredients.
const (
	// ArchDefault is DefaultRecipe, what `backprop train gan` trains.
	ArchDefault = "default"
	// ArchReference is the reference DCGAN (the zero Recipe), whose steps
	// match PyTorch's DCGAN example.
	ArchReference = "reference"
)

// DefaultRecipe is the recipe `backprop train gan` trains when no --arch
// is given: the ingredients that, measured over three seeds and up to 10
// MNIST epochs (bench/gan/results/recipe.md), lift the samples' scores
// furthest above the reference DCGAN's. The networks are the reference
// ones (plus the class embedding and projection of a conditional pair).
var DefaultRecipe = Recipe{Conditional: true, EMA: 0.999}

// ArchRecipe is the recipe an --arch names.
func ArchRecipe(arch string) (Recipe, error) {
	switch arch {
	case ArchDefault, "":
		return DefaultRecipe, nil
	case ArchReference:
		return Recipe{}, nil
	}
	return Recipe{}, fmt.Errorf("gan: --arch %q: want %s (the measured best recipe) or %s (the DCGAN that matches PyTorch's)", arch, ArchDefault, ArchReference)
}

// IsReference reports whether r is the reference DCGAN's recipe.
func (r Recipe) IsReference() bool {
	return r.loss() == LossBCE && r.EMA == 0 && r.lrG() == LearningRate && r.lrD() == LearningRate &&
		r.LabelSmoothing == 0 && !r.SpectralNorm && !r.Conditional && r.R1 == 0
}

func (r Recipe) loss() string {
	if r.Loss == "" {
		return LossBCE
	}
	return r.Loss
}

// EMADecay is the moving average's decay at global step t (0-based):
// min(decay, (1 + t)/(10 + t)), the warm-up of TensorFlow's
// ExponentialMovingAverage with num_updates. It reaches 0.999 at step
// 8 990 (in the tenth MNIST epoch of batch 64).
func EMADecay(decay float64, t int64) float64 {
	return min(decay, float64(1+t)/float64(10+t))
}

func (r Recipe) lrG() float64 {
	if r.LRG == 0 {
		return LearningRate
	}
	return r.LRG
}

func (r Recipe) lrD() float64 {
	if r.LRD == 0 {
		return LearningRate
	}
	return r.LRD
}

// realTarget is D's BCE target for real images.
func (r Recipe) realTarget() float32 {
	if r.LabelSmoothing != 0 {
		return float32(r.LabelSmoothing)
	}
	return 1
}

// Check validates the recipe, naming the option at fault as the command
// line spells it.
func (r Recipe) Check() error {
	switch r.loss() {
	case LossBCE, LossNS, LossHinge:
	default:
		return fmt.Errorf("gan: --loss %q: want %s, %s or %s", r.Loss, LossBCE, LossNS, LossHinge)
	}
	switch {
	case r.R1 != 0:
		return ErrR1Unsupported
	case !(r.EMA >= 0 && r.EMA < 1):
		return fmt.Errorf("gan: --ema %v: want a decay in [0, 1) (0: off; 0.999 is usual)", r.EMA)
	case !(r.LRG >= 0 && r.LRG < 1):
		return fmt.Errorf("gan: --lr-g %v: want a step size in (0, 1), or 0 for %g", r.LRG, LearningRate)
	case !(r.LRD >= 0 && r.LRD < 1):
		return fmt.Errorf("gan: --lr-d %v: want a step size in (0, 1), or 0 for %g", r.LRD, LearningRate)
	case !(r.LabelSmoothing >= 0 && r.LabelSmoothing < 1):
		return fmt.Errorf("gan: --label-smoothing %v: want D's target for real images in (0, 1) (0.9 is usual), or 0 for none", r.LabelSmoothing)
	case r.LabelSmoothing != 0 && r.loss() == LossHinge:
		return fmt.Errorf("gan: --label-smoothing %v: label smoothing changes BCE targets, the hinge loss has none", r.LabelSmoothing)
	}
	return nil
}

// String describes the recipe for the checkpoint's metadata and the
// command's first line: "reference" or the options that differ from it.
func (r Recipe) String() string {
	if r.IsReference() {
		return "reference"
	}
	var parts []string
	if r.loss() != LossBCE {
		parts = append(parts, "loss "+r.loss())
	}
	if r.EMA != 0 {
		parts = append(parts, "ema "+strconv.FormatFloat(r.EMA, 'g', -1, 64))
	}
	if r.lrG() != LearningRate {
		parts = append(parts, "lr-g "+strconv.FormatFloat(r.lrG(), 'g', -1, 64))
	}
	if r.lrD() != LearningRate {
		parts = append(parts, "lr-d "+strconv.FormatFloat(r.lrD(), 'g', -1, 64))
	}
	if r.LabelSmoothing != 0 {
		parts = append(parts, "label smoothing "+strconv.FormatFloat(r.LabelSmoothing, 'g', -1, 64))
	}
	if r.SpectralNorm {
		parts = append(parts, "spectral norm")
	}
	if r.Conditional {
		parts = append(parts, "conditional")
	}
	return strings.Join(parts, ", ")
}

// Metadata keys of the recipe in a checkpoint (format 3); a missing key
// means the reference value.
const (
	metaLoss         = "recipe.loss"
	metaEMA          = "recipe.ema"
	metaLRG          = "recipe.lr_g"
	metaLRD          = "recipe.lr_d"
	metaSmoothing    = "recipe.label_smoothing"
	metaSpectralNorm = "recipe.spectral_norm"
	metaConditional  = "recipe.conditional"
)

// metadata writes the recipe into a checkpoint's metadata.
func (r Recipe) metadata(m map[string]string) {
	f := func(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
	m[metaLoss] = r.loss()
	m[metaEMA] = f(r.EMA)
	m[metaLRG] = f(r.lrG())
	m[metaLRD] = f(r.lrD())
	m[metaSmoothing] = f(r.LabelSmoothing)
	m[metaSpectralNorm] = strconv.FormatBool(r.SpectralNorm)
	m[metaConditional] = strconv.FormatBool(r.Conditional)
}

// recipeFromMetadata reads what metadata wrote; absent keys (formats 1
// and 2) leave the reference values.
func recipeFromMetadata(m map[string]string) (Recipe, error) {
	var r Recipe
	r.Loss = m[metaLoss]
	floats := []struct {
		key string
		dst *float64
	}{{metaEMA, &r.EMA}, {metaLRG, &r.LRG}, {metaLRD, &r.LRD}, {metaSmoothing, &r.LabelSmoothing}}
	for _, f := range floats {
		if s, ok := m[f.key]; ok {
			v, err := strconv.ParseFloat(s, 64)
			if err != nil {
				return r, fmt.Errorf("metadata %s = %q: want a number", f.key, s)
			}
			*f.dst = v
		}
	}
	bools := []struct {
		key string
		dst *bool
	}{{metaSpectralNorm, &r.SpectralNorm}, {metaConditional, &r.Conditional}}
	for _, b := range bools {
		if s, ok := m[b.key]; ok {
			v, err := strconv.ParseBool(s)
			if err != nil {
				return r, fmt.Errorf("metadata %s = %q: want true or false", b.key, s)
			}
			*b.dst = v
		}
	}
	if err := r.Check(); err != nil {
		return r, err
	}
	return r, nil
}

// Hinge records mean(max(0, 1 + sign·x)) over every element of x: with
// sign −1 the hinge loss of D on real images, with sign +1 on fake ones.
func Hinge[T tensor.Float](name string, x *autograd.Var[T], sign float64) (*autograd.Var[T], error) {
	if sign != 1 && sign != -1 {
		return nil, fmt.Errorf("gan: Hinge: sign %v, want +1 or −1", sign)
	}
	return autograd.Apply(name, &HingeOp[T]{Sign: sign}, x)
}

// HingeOp is mean(max(0, 1 + Sign·x)); its gradient is Sign/n where
// 1 + Sign·x > 0 and 0 elsewhere (0 at the kink, as ReLU's).
type HingeOp[T tensor.Float] struct{ Sign float64 }

// Name implements autograd.Op.
func (o *HingeOp[T]) Name() string { return "hinge" }

// Forward implements autograd.Op.
func (o *HingeOp[T]) Forward(in []*tensor.Tensor[T]) (*tensor.Tensor[T], error) {
	x := in[0].Data()
	if len(x) == 0 {
		return nil, fmt.Errorf("hinge of an empty tensor")
	}
	s := 0.0
	for _, v := range x {
		s += max(0, 1+o.Sign*float64(v))
	}
	return tensor.Scalar(T(s / float64(len(x)))), nil
}

// Backward implements autograd.Op.
func (o *HingeOp[T]) Backward(in []*tensor.Tensor[T], out, gout *tensor.Tensor[T], need []bool) []*tensor.Tensor[T] {
	if !need[0] {
		return []*tensor.Tensor[T]{nil}
	}
	x := in[0]
	g := tensor.New[T](x.Shape()...)
	c := o.Sign * float64(gout.Data()[0]) / float64(x.Len())
	for i, v := range x.Data() {
		if 1+o.Sign*float64(v) > 0 {
			g.Data()[i] = T(c)
		}
	}
	return []*tensor.Tensor[T]{g}
}
