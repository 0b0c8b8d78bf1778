package ops

import (
	"fmt"

	"github.com/backprop-dev/backprop/autograd"
	"github.com/backprop-dev/backprop/tensor"
)

// PadOp surrounds a tensor with a constant: Before[i] elements of Value
// before the data along axis i and After[i] after it (numpy.pad with mode
// "constant", ONNX's Pad); a negative entry crops that many elements
// instead. It gives an imported convolution or pooling the asymmetric
// padding or cropping (zeros for a convolution, −Inf for max pooling)
// that the engine's layers, treating both sides alike, do not have. The
// gradient of each kept element is the upstream gradient where it landed.
type PadOp[T tensor.Float] struct {
	Before, After []int
	Value         float64

	inShape []int
	dst     []int // input element k lands at output element dst[k], or -1 when cropped
}

// Pad records x padded with value: before[i] and after[i] elements along
// axis i (len(before) = len(after) = x's rank); negative entries crop.
func Pad[T tensor.Float](name string, x *autograd.Var[T], before, after []int, value float64) (*autograd.Var[T], error) {
	return apply(name, &PadOp[T]{Before: before, After: after, Value: value}, x)
}

// Name implements autograd.Op.
func (o *PadOp[T]) Name() string { return "pad" }

// Forward implements autograd.Op.
func (o *PadOp[T]) Forward(in []*tensor.Tensor[T]) (*tensor.Tensor[T], error) {
	if err := wantInputs("pad", in, 1); err != nil {
		return nil, err
	}
	xs := in[0].Shape()
	if len(o.Before) != len(xs) || len(o.After) != len(xs) {
		return nil, fmt.Errorf("pad: %d and %d padding entries for an input of %d axes %s", len(o.Before), len(o.After), len(xs), tensor.FormatShape(xs))
	}
	out := make([]int, len(xs))
	for i, d := range xs {
		out[i] = o.Before[i] + d + o.After[i]
		if out[i] < 0 {
			return nil, fmt.Errorf("pad: axis %d of extent %d: padding %d before and %d after leaves %d elements", i, d, o.Before[i], o.After[i], out[i])
		}
	}
	o.inShape = append([]int(nil), xs...)
	y := tensor.Empty[T](out...)
	y.Fill(T(o.Value))
	x, yd := in[0].Data(), y.Data()
	o.dst = make([]int, len(x))
	pos := make([]int, len(xs))
	for k := range x {
		off := 0
		for ax := range xs {
			p := pos[ax] + o.Before[ax]
			if p < 0 || p >= out[ax] {
				off = -1
				break
			}
			off = off*out[ax] + p
		}
		o.dst[k] = off
		if off >= 0 {
			yd[off] = x[k]
		}
		for ax := len(xs) - 1; ax >= 0; ax-- {
			pos[ax]++
			if pos[ax] < xs[ax] {
				break
			}
			pos[ax] = 0
		}
	}
	return y, nil
}

// Backward implements autograd.Op: each kept input element gets the
// gradient of the output element it was copied to, a cropped one zero.
func (o *PadOp[T]) Backward(in []*tensor.Tensor[T], out, gout *tensor.Tensor[T], need []bool) []*tensor.Tensor[T] {
	if !need[0] {
		return []*tensor.Tensor[T]{nil}
	}
	d := tensor.New[T](o.inShape...)
	g, dd := gout.Data(), d.Data()
	for k, p := range o.dst {
		if p >= 0 {
			dd[k] = g[p]
		}
	}
	return []*tensor.Tensor[T]{d}
}
