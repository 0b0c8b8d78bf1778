package nn

import (
	"math"
	"math/rand/v2"

	"github.com/backprop-dev/backprop/tensor"
)

// FanIn is the number of inputs feeding one output of a weight, as
// PyTorch's _calculate_fan_in_and_fan_out computes it: shape[1] times the
// kernel size. For Linear (Out, In) it is In, for Conv2d (Out, In, KH, KW)
// In·KH·KW and for ConvTranspose2d, whose weight is (In, Out, KH, KW),
// Out·KH·KW, exactly as PyTorch does.
func FanIn(shape []int) int {
	if len(shape) < 2 {
		if len(shape) == 1 {
			return shape[0]
		}
		return 1
	}
	return shape[1] * tensor.NumElements(shape[2:])
}

// Uniform fills t with values drawn uniformly from [lo, hi), in row-major
// order.
func Uniform[T tensor.Float](t *tensor.Tensor[T], lo, hi float64, rng *rand.Rand) {
	for i := range t.Data() {
		t.Data()[i] = T(lo + (hi-lo)*rng.Float64())
	}
}

// Normal fills t with values drawn from N(mean, std²), in row-major order.
func Normal[T tensor.Float](t *tensor.Tensor[T], mean, std float64, rng *rand.Rand) {
	for i := range t.Data() {
		t.Data()[i] = T(mean + std*rng.NormFloat64())
	}
}

// KaimingUniform fills t as torch.nn.init.kaiming_uniform_(t, a) with the
// defaults mode="fan_in" and nonlinearity="leaky_relu": uniform on
// [−bound, bound] with bound = gain·√(3/fan_in) and gain = √(2/(1+a²)).
// PyTorch's Linear and Conv layers use a = √5, which makes the bound
// 1/√fan_in.
func KaimingUniform[T tensor.Float](t *tensor.Tensor[T], a float64, rng *rand.Rand) {
	gain := math.Sqrt(2 / (1 + a*a))
	bound := gain * math.Sqrt(3/float64(FanIn(t.Shape())))
	Uniform(t, -bound, bound, rng)
}

// initializer is implemented by the layers with parameters.
type initializer interface {
	// resetParameters applies PyTorch's default initialization.
	resetParameters(rng *rand.Rand)
	// dcgan applies the DCGAN paper's initialization.
	dcgan(rng *rand.Rand)
}

// defaultWeightBias is reset_parameters of PyTorch's Linear and _ConvNd:
// kaiming_uniform_(weight, a=√5), then the bias uniform on ±1/√fan_in.
func defaultWeightBias[T tensor.Float](w, b *tensor.Tensor[T], rng *rand.Rand) {
	KaimingUniform(w, math.Sqrt(5), rng)
	if b != nil {
		bound := 1 / math.Sqrt(float64(FanIn(w.Shape())))
		Uniform(b, -bound, bound, rng)
	}
}

// biasTensor is the bias value, or nil for a layer without bias.
func biasTensor[T tensor.Float](l interface{ Parameters() []Parameter[T] }) *tensor.Tensor[T] {
	ps := l.Parameters()
	if len(ps) > 1 {
		return ps[1].Var.Value
	}
	return nil
}

func (l *Linear[T]) resetParameters(rng *rand.Rand) {
	defaultWeightBias(l.Weight.Value, biasTensor[T](l), rng)
}
func (l *Linear[T]) dcgan(rng *rand.Rand) { Normal(l.Weight.Value, 0, 0.02, rng) }

func (c *Conv2d[T]) resetParameters(rng *rand.Rand) {
	defaultWeightBias(c.Weight.Value, biasTensor[T](c), rng)
}
func (c *Conv2d[T]) dcgan(rng *rand.Rand) { Normal(c.Weight.Value, 0, 0.02, rng) }

func (c *ConvTranspose2d[T]) resetParameters(rng *rand.Rand) {
	defaultWeightBias(c.Weight.Value, biasTensor[T](c), rng)
}
func (c *ConvTranspose2d[T]) dcgan(rng *rand.Rand) { Normal(c.Weight.Value, 0, 0.02, rng) }

// resetParameters is PyTorch's BatchNorm reset_parameters: running
// statistics reset, γ = 1, β = 0 (no randomness).
func (b *BatchNorm[T]) resetParameters(*rand.Rand) {
	b.ResetRunningStats()
	b.Weight.Value.Fill(1)
	b.Bias.Value.Zero()
}

func (b *BatchNorm[T]) dcgan(rng *rand.Rand) {
	Normal(b.Weight.Value, 1, 0.02, rng)
	b.Bias.Value.Zero()
}

// ResetParameters re-initializes every Linear, Conv2d, ConvTranspose2d
// and BatchNorm in m as PyTorch's constructors do: weights
// kaiming_uniform_ with a = √5 (uniform on ±1/√fan_in), biases uniform on
// ±1/√fan_in, BatchNorm γ = 1, β = 0 and fresh running statistics. Layers
// are visited in NamedModules order and each tensor is filled row-major,
// weight before bias, so a seed fixes the result. Other modules are left
// alone.
func ResetParameters[T tensor.Float](m Module[T], rng *rand.Rand) {
	for _, c := range NamedModules(m) {
		if l, ok := c.Module.(initializer); ok {
			l.resetParameters(rng)
		}
	}
}

// DCGANInit applies the initialization of the DCGAN paper (Radford et
// al., 2015) and of PyTorch's DCGAN example (weights_init): weights of
// Linear, Conv2d and ConvTranspose2d drawn from N(0, 0.02²); BatchNorm γ
// from N(1, 0.02²) and β = 0. Convolution and linear biases, if any, are
// left as they are, as in the example (DCGAN layers before a BatchNorm
// have none). Layers are visited in NamedModules order.
func DCGANInit[T tensor.Float](m Module[T], rng *rand.Rand) {
	for _, c := range NamedModules(m) {
		if l, ok := c.Module.(initializer); ok {
			l.dcgan(rng)
		}
	}
}
