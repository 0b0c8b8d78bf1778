// Package ops holds the differentiable operations of the engine. Each op is
// one small unit: its forward, its backward (vector-Jacobian product) and its
// description for the trace (the autograd.Explainer methods). Ops accept
// unbatched tensors ((C,H,W) images, vectors) as well as batched ones, as
// PyTorch does, so a worked problem can be written without a batch axis.
package ops

import (
	"fmt"

	"github.com/backprop-dev/backprop/autograd"
	"github.com/backprop-dev/backprop/expr"
	"github.com/backprop-dev/backprop/tensor"
)

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
