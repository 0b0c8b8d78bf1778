package nn

import (
	"fmt"
	"math/rand/v2"

	"github.com/backprop-dev/backprop/autograd"
	"github.com/backprop-dev/backprop/ops"
	"github.com/backprop-dev/backprop/tensor"
)

// ReLU is max(x, 0) element-wise, torch.nn.ReLU.
type ReLU[T tensor.Float] struct{ stateless[T] }

// NewReLU returns a ReLU layer.
func NewReLU[T tensor.Float]() *ReLU[T] { return &ReLU[T]{} }

// Forward implements Module.
func (*ReLU[T]) Forward(x *autograd.Var[T]) (*autograd.Var[T], error) { return ops.ReLU("relu", x) }

// LeakyReLU is x for x > 0 and Slope·x otherwise, torch.nn.LeakyReLU
// (whose default slope is 0.01; DCGAN uses 0.2).
type LeakyReLU[T tensor.Float] struct {
	stateless[T]
	Slope float64 // slope for x ≤ 0
}

// NewLeakyReLU returns a LeakyReLU layer with the given negative slope.
func NewLeakyReLU[T tensor.Float](slope float64) *LeakyReLU[T] { return &LeakyReLU[T]{Slope: slope} }

// Forward implements Module.
func (l *LeakyReLU[T]) Forward(x *autograd.Var[T]) (*autograd.Var[T], error) {
	return ops.LeakyReLU("leaky_relu", x, l.Slope)
}

// Tanh is tanh(x) element-wise, torch.nn.Tanh.
type Tanh[T tensor.Float] struct{ stateless[T] }

// NewTanh returns a Tanh layer.
func NewTanh[T tensor.Float]() *Tanh[T] { return &Tanh[T]{} }

// Forward implements Module.
func (*Tanh[T]) Forward(x *autograd.Var[T]) (*autograd.Var[T], error) { return ops.Tanh("tanh", x) }

// Sigmoid is σ(x) = 1/(1 + e^−x) element-wise, torch.nn.Sigmoid.
type Sigmoid[T tensor.Float] struct{ stateless[T] }

// NewSigmoid returns a Sigmoid layer.
func NewSigmoid[T tensor.Float]() *Sigmoid[T] { return &Sigmoid[T]{} }

// Forward implements Module.
func (*Sigmoid[T]) Forward(x *autograd.Var[T]) (*autograd.Var[T], error) {
	return ops.Sigmoid("sigmoid", x)
}

// Dropout is torch.nn.Dropout: in training mode it zeroes each element
// with probability P and scales the rest by 1/(1−P), drawing the mask from
// Rng; in evaluation mode it is the identity.
type Dropout[T tensor.Float] struct {
	stateless[T]
	P   float64    // probability of zeroing an element
	Rng *rand.Rand // source of the masks, owned by the caller
}

// NewDropout returns a Dropout layer drawing its masks from rng, which
// must not be nil for 0 < p < 1 in training mode.
func NewDropout[T tensor.Float](p float64, rng *rand.Rand) *Dropout[T] {
	return &Dropout[T]{P: p, Rng: rng}
}

// Forward implements Module with ops.Dropout.
func (d *Dropout[T]) Forward(x *autograd.Var[T]) (*autograd.Var[T], error) {
	return ops.Dropout("dropout", x, d.P, d.IsTraining(), d.Rng)
}

// Flatten merges every axis from 1 on into one, torch.nn.Flatten(): a batch
// (N, C, H, W) becomes (N, C·H·W).
type Flatten[T tensor.Float] struct{ stateless[T] }

// NewFlatten returns a Flatten layer (start dimension 1).
func NewFlatten[T tensor.Float]() *Flatten[T] { return &Flatten[T]{} }

// Forward implements Module.
func (*Flatten[T]) Forward(x *autograd.Var[T]) (*autograd.Var[T], error) {
	if x.Value.Rank() < 1 {
		return nil, &tensor.ShapeError{Op: "flatten", Tensor: "input", Want: "at least one axis", Got: x.Value.Shape()}
	}
	return ops.Flatten("flatten", x, 1, false)
}

// Unflatten splits axis 1 into Shape, torch.nn.Unflatten(1, shape): a batch
// of feature vectors (N, C·H·W) becomes images (N, C, H, W), as at the
// start of a DCGAN generator.
type Unflatten[T tensor.Float] struct {
	stateless[T]
	Shape []int // the per-sample shape axis 1 is split into
}

// NewUnflatten returns an Unflatten layer splitting axis 1 into shape.
func NewUnflatten[T tensor.Float](shape ...int) *Unflatten[T] {
	return &Unflatten[T]{Shape: append([]int(nil), shape...)}
}

// Forward implements Module.
func (u *Unflatten[T]) Forward(x *autograd.Var[T]) (*autograd.Var[T], error) {
	xs := x.Value.Shape()
	n := tensor.NumElements(u.Shape)
	if len(xs) < 2 || xs[1] != n {
		return nil, &tensor.ShapeError{Op: "unflatten", Tensor: "input", Got: xs,
			Want: fmt.Sprintf("(N, %d, …): axis 1 must hold the %d values of a %s sample", n, n, tensor.FormatShape(u.Shape))}
	}
	var buf [8]int // ops.Reshape copies the shape
	shape := append(append(append(buf[:0], xs[0]), u.Shape...), xs[2:]...)
	return ops.Reshape("unflatten", x, false, shape...)
}
