package nn

import (
	"fmt"
	"math/rand/v2"

	"github.com/backprop-dev/backprop/autograd"
	"github.com/backprop-dev/backprop/ops"
	"github.com/backprop-dev/backprop/tensor"
)

// param makes a trainable leaf of the given shape named name.
func param[T tensor.Float](name string, shape ...int) *autograd.Var[T] {
	return autograd.Leaf(name, tensor.New[T](shape...), true)
}

// weightAndBias lists the parameters of a layer with an optional bias, in
// PyTorch's order.
func weightAndBias[T tensor.Float](w, b *autograd.Var[T]) []Parameter[T] {
	if b == nil {
		return []Parameter[T]{{Name: "weight", Var: w}}
	}
	return []Parameter[T]{{Name: "weight", Var: w}, {Name: "bias", Var: b}} // one allocation
}

// paramEntries turns parameters into state-dict entries.
func paramEntries[T tensor.Float](ps []Parameter[T]) []StateEntry[T] {
	out := make([]StateEntry[T], len(ps))
	for i, p := range ps {
		out[i] = StateEntry[T]{Name: p.Name, Tensor: p.Var.Value}
	}
	return out
}

// Linear is the fully connected layer y = x Wᵀ + b, torch.nn.Linear, with
// the weight W (Out, In) and the bias b (Out). The input is (N, In), a
// single sample (In), or (…, In) with any leading axes.
type Linear[T tensor.Float] struct {
	trainMode
	In, Out int              // input and output features
	Weight  *autograd.Var[T] // (Out, In)
	Bias    *autograd.Var[T] // (Out); nil for a layer without bias
}

// NewLinear builds a Linear layer with PyTorch's default initialization
// drawn from rng (see ResetParameters); a nil rng leaves the parameters at
// zero, for a model about to load a state dict.
func NewLinear[T tensor.Float](in, out int, bias bool, rng *rand.Rand) *Linear[T] {
	l := &Linear[T]{In: in, Out: out, Weight: param[T]("weight", out, in)}
	if bias {
		l.Bias = param[T]("bias", out)
	}
	if rng != nil {
		l.resetParameters(rng)
	}
	return l
}

// Parameters implements Module: weight, then bias.
func (l *Linear[T]) Parameters() []Parameter[T] { return weightAndBias(l.Weight, l.Bias) }

// StateDict implements Module.
func (l *Linear[T]) StateDict() []StateEntry[T] { return paramEntries(l.Parameters()) }

// Forward implements Module: ops.MatMul(x, W, false, true) and, with a
// bias, ops.BiasAdd along the last axis.
func (l *Linear[T]) Forward(x *autograd.Var[T]) (*autograd.Var[T], error) {
	xs := x.Value.Shape()
	if len(xs) == 0 || xs[len(xs)-1] != l.In {
		return nil, &tensor.ShapeError{Op: "linear", Tensor: "input", Want: fmt.Sprintf("(N, %d) or (%d): the last axis holds the %d input features", l.In, l.In, l.In), Got: xs}
	}
	in := x
	if len(xs) > 2 { // (…, In) → (M, In) and back
		var err error
		if in, err = ops.Reshape("linear.in", x, false, -1, l.In); err != nil {
			return nil, err
		}
	}
	y, err := ops.MatMul("linear", in, l.Weight, false, true)
	if err != nil {
		return nil, err
	}
	if l.Bias != nil {
		if y, err = ops.BiasAdd("linear.bias", y, l.Bias, y.Value.Rank()-1); err != nil {
			return nil, err
		}
	}
	if len(xs) > 2 {
		shape := append(append([]int(nil), xs[:len(xs)-1]...), l.Out)
		return ops.Reshape("linear.out", y, false, shape...)
	}
	return y, nil
}

// channelBias adds a per-channel bias to a convolution's output, batched
// (N, C, H, W) or not (C, H, W).
func channelBias[T tensor.Float](name string, y, b *autograd.Var[T]) (*autograd.Var[T], error) {
	if b == nil {
		return y, nil
	}
	axis := 1
	if y.Value.Rank() == 3 {
		axis = 0
	}
	return ops.BiasAdd(name, y, b, axis)
}

// Conv2d is the 2-D convolution layer torch.nn.Conv2d (cross-correlation,
// as in PyTorch), with the weight (Out, In, KH, KW) and a bias per output
// channel. The input is (N, In, H, W) or a single image (In, H, W).
type Conv2d[T tensor.Float] struct {
	trainMode
	Options ops.ConvOptions  // stride and padding
	Weight  *autograd.Var[T] // (Out, In, KH, KW)
	Bias    *autograd.Var[T] // (Out); nil for a layer without bias
}

// NewConv2d builds Conv2d(in, out, kernel, stride, padding) with a square
// kernel and PyTorch's default initialization drawn from rng (nil leaves
// zeros).
func NewConv2d[T tensor.Float](in, out, kernel, stride, pad int, bias bool, rng *rand.Rand) *Conv2d[T] {
	c := &Conv2d[T]{
		Options: ops.ConvOptions{StrideH: stride, StrideW: stride, PadH: pad, PadW: pad},
		Weight:  param[T]("weight", out, in, kernel, kernel),
	}
	if bias {
		c.Bias = param[T]("bias", out)
	}
	if rng != nil {
		c.resetParameters(rng)
	}
	return c
}

// Parameters implements Module: weight, then bias.
func (c *Conv2d[T]) Parameters() []Parameter[T] { return weightAndBias(c.Weight, c.Bias) }

// StateDict implements Module.
func (c *Conv2d[T]) StateDict() []StateEntry[T] { return paramEntries(c.Parameters()) }

// Forward implements Module: ops.Conv2d, then the bias per channel.
func (c *Conv2d[T]) Forward(x *autograd.Var[T]) (*autograd.Var[T], error) {
	y, err := ops.Conv2d("conv2d", x, c.Weight, c.Options)
	if err != nil {
		return nil, err
	}
	return channelBias("conv2d.bias", y, c.Bias)
}

// ConvTranspose2d is the transposed convolution layer
// torch.nn.ConvTranspose2d, with the weight laid out (In, Out, KH, KW) as in
// PyTorch and a bias per output channel. The input is (N, In, H, W) or
// (In, H, W); the output height is (H−1)·stride − 2·pad + KH + outpad.
type ConvTranspose2d[T tensor.Float] struct {
	trainMode
	Options ops.ConvOptions  // stride, padding and output padding
	Weight  *autograd.Var[T] // (In, Out, KH, KW)
	Bias    *autograd.Var[T] // (Out); nil for a layer without bias
}

// NewConvTranspose2d builds ConvTranspose2d(in, out, kernel, stride,
// padding, output_padding) with a square kernel and PyTorch's default
// initialization drawn from rng (nil leaves zeros).
func NewConvTranspose2d[T tensor.Float](in, out, kernel, stride, pad, outPad int, bias bool, rng *rand.Rand) *ConvTranspose2d[T] {
	c := &ConvTranspose2d[T]{
		Options: ops.ConvOptions{StrideH: stride, StrideW: stride, PadH: pad, PadW: pad, OutPadH: outPad, OutPadW: outPad},
		Weight:  param[T]("weight", in, out, kernel, kernel),
	}
	if bias {
		c.Bias = param[T]("bias", out)
	}
	if rng != nil {
		c.resetParameters(rng)
	}
	return c
}

// Parameters implements Module: weight, then bias.
func (c *ConvTranspose2d[T]) Parameters() []Parameter[T] { return weightAndBias(c.Weight, c.Bias) }

// StateDict implements Module.
func (c *ConvTranspose2d[T]) StateDict() []StateEntry[T] { return paramEntries(c.Parameters()) }

// Forward implements Module: ops.ConvTranspose2d, then the bias per
// channel.
func (c *ConvTranspose2d[T]) Forward(x *autograd.Var[T]) (*autograd.Var[T], error) {
	y, err := ops.ConvTranspose2d("conv_transpose2d", x, c.Weight, c.Options)
	if err != nil {
		return nil, err
	}
	return channelBias("conv_transpose2d.bias", y, c.Bias)
}
