package ops

import (
	"fmt"

	"github.com/backprop-dev/backprop/autograd"
	"github.com/backprop-dev/backprop/expr"
	"github.com/backprop-dev/backprop/tensor"
)

// StackOp stacks tensors of one shape along a new leading axis,
// torch.stack(xs, 0): the states h_1 … h_T of a recurrent layer become the
// rows of its output sequence. Input t's gradient is row t of the upstream
// gradient.
type StackOp[T tensor.Float] struct {
	n     int // elements per input
	shape []int
}

// Stack records xs stacked as the rows (along a new first axis) of node
// name.
func Stack[T tensor.Float](name string, xs ...*autograd.Var[T]) (*autograd.Var[T], error) {
	return apply(name, &StackOp[T]{}, xs...)
}

// Name implements autograd.Op.
func (o *StackOp[T]) Name() string { return "stack" }

// Forward implements autograd.Op.
func (o *StackOp[T]) Forward(in []*tensor.Tensor[T]) (*tensor.Tensor[T], error) {
	if len(in) == 0 {
		return nil, fmt.Errorf("stack: no inputs")
	}
	first := in[0].Shape()
	for i, t := range in {
		if !tensor.SameShape(t.Shape(), first) {
			return nil, &tensor.ShapeError{Op: "stack", Tensor: fmt.Sprintf("input %d", i+1), Want: tensor.FormatShape(first) + " (the shape of input 1)", Got: t.Shape()}
		}
	}
	o.n = in[0].Len()
	o.shape = append([]int{len(in)}, first...)
	out := tensor.Empty[T](o.shape...)
	for i, t := range in {
		copy(out.Data()[i*o.n:], t.Data())
	}
	return out, nil
}

// Backward implements autograd.Op: input t gets row t of gout.
func (o *StackOp[T]) Backward(in []*tensor.Tensor[T], out, gout *tensor.Tensor[T], need []bool) []*tensor.Tensor[T] {
	grads := make([]*tensor.Tensor[T], len(in))
	for i := range in {
		if need[i] {
			d := tensor.Empty[T](in[i].Shape()...)
			copy(d.Data(), gout.Data()[i*o.n:(i+1)*o.n])
			grads[i] = d
		}
	}
	return grads
}

// Formula implements explain.Explainer: stack(x₁, x₂, …) as rows.
func (o *StackOp[T]) Formula(in []expr.Expr) expr.Expr {
	shape, n := o.shape, o.n
	return expr.Fn{Name: "stack", Args: in, Note: "as rows", Eval: func(a []*tensor.Tensor[float64]) (*tensor.Tensor[float64], error) {
		out := tensor.New[float64](shape...)
		for i, t := range a {
			if t.Len() != n {
				return nil, fmt.Errorf("stack: argument %d has %d elements, want %d", i+1, t.Len(), n)
			}
			copy(out.Data()[i*n:], t.Data())
		}
		return out, nil
	}}
}

// ForwardElem implements explain.Explainer: the element of row t is the
// element of input t.
func (o *StackOp[T]) ForwardElem(k int, in func(i, m int) expr.Expr) expr.Expr {
	return in(k/o.n, k%o.n)
}

// BackwardFormula implements explain.Explainer: row i of the upstream
// gradient.
func (o *StackOp[T]) BackwardFormula(i int, in []expr.Expr, out, gout expr.Expr) expr.Expr {
	n := o.n
	return expr.Fn{Name: "row", Args: []expr.Expr{gout}, Note: fmt.Sprint(i + 1), Eval: func(a []*tensor.Tensor[float64]) (*tensor.Tensor[float64], error) {
		if a[0].Len() < (i+1)*n {
			return nil, fmt.Errorf("row %d: argument has %d elements", i+1, a[0].Len())
		}
		out := tensor.New[float64](n)
		copy(out.Data(), a[0].Data()[i*n:(i+1)*n])
		return out, nil
	}}
}

// BackwardElem implements explain.Explainer.
func (o *StackOp[T]) BackwardElem(i, m int, in func(i, m int) expr.Expr, out, gout func(k int) expr.Expr) expr.Expr {
	return gout(i*o.n + m)
}

// BackwardRule implements ∂J/∂x_t[…] = g[t, …]. (The forward element is
// one input or another by row, so there is no single forward rule.)
func (o *StackOp[T]) BackwardRule(i int, idx []string, in InputIndex, out, gout Index, fresh func(string) string) (expr.Expr, string) {
	if len(idx) != len(o.shape)-1 {
		return nil, ""
	}
	return gout(append([]string{fmt.Sprint(i + 1)}, idx...)), ""
}
