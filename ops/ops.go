// Package ops holds the differentiable operations of the engine. Each op is
// one small unit: its forward, its backward (vector-Jacobian product) and its
// description for the trace (the explain.Explainer methods). Ops accept
// unbatched tensors ((C,H,W) images, vectors) as well as batched ones, as
// PyTorch does, so a worked problem can be written without a batch axis.
package ops

import (
	"fmt"

	"github.com/backprop-dev/backprop/autograd"
	"github.com/backprop-dev/backprop/explain"
	"github.com/backprop-dev/backprop/expr"
	"github.com/backprop-dev/backprop/tensor"
)

// Every op explains itself (package explain walks the graph with these
// methods); the list fails to compile when an op loses one.
var _ = []explain.Explainer{
	(*AddOp[float64])(nil),
	(*AvgPool2dOp[float64])(nil),
	(*BCEWithLogitsOp[float64])(nil),
	(*BatchNormOp[float64])(nil),
	(*BiasAddOp[float64])(nil),
	(*ConcatOp[float64])(nil),
	(*Conv2dOp[float64])(nil),
	(*ConvTranspose2dOp[float64])(nil),
	(*CrossEntropyOp[float64])(nil),
	(*DropoutMaskOp[float64])(nil),
	(*DropoutOp[float64])(nil),
	(*LayerNormOp[float64])(nil),
	(*MatMulOp[float64])(nil),
	(*MaxPool2dOp[float64])(nil),
	(*MulOp[float64])(nil),
	(*ReshapeOp[float64])(nil),
	(*ScaleOp[float64])(nil),
	(*SoftmaxOp[float64])(nil),
	(*SquaredErrorOp[float64])(nil),
	(*SumOp[float64])(nil),
	(*SumSquaresOp[float64])(nil),
	(*UnaryOp[float64])(nil),
}

// apply is autograd.Apply for the op constructors below.
func apply[T tensor.Float](name string, op autograd.Op[T], in ...*autograd.Var[T]) (*autograd.Var[T], error) {
	return autograd.Apply(name, op, in...)
}

func wantInputs[T tensor.Float](op string, in []*tensor.Tensor[T], n int) error {
	if len(in) != n {
		return fmt.Errorf("%s: got %d inputs, want %d", op, len(in), n)
	}
	return nil
}

// sumOf builds a Sum, or the single term, or 0.
func sumOf(terms []expr.Expr) expr.Expr {
	switch len(terms) {
	case 0:
		return expr.Num(0)
	case 1:
		return terms[0]
	}
	return expr.Sum(terms)
}

// grad renders "∂J/∂x" style names for upstream gradients in formulas.
func shapesOf[T tensor.Float](in []*tensor.Tensor[T]) [][]int {
	s := make([][]int, len(in))
	for i, t := range in {
		s[i] = append([]int(nil), t.Shape()...)
	}
	return s
}
