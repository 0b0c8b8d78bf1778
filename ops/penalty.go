package ops

import (
	"fmt"
	"math"

	"github.com/backprop-dev/backprop/autograd"
	"github.com/backprop-dev/backprop/expr"
	"github.com/backprop-dev/backprop/tensor"
)

// SumSquaresOp is c·Σ x², a scalar: the L2 weight-decay term (λ/2)‖w‖²
// of an objective with c = λ/2. Its gradient is 2c·x (λ·w), which is how
// weight decay pulls every weight towards zero.
type SumSquaresOp[T tensor.Float] struct {
	Coef  float64
	shape []int
}

// SumSquares records coef·Σ x² as a scalar (coef = λ/2 for (λ/2)‖w‖²).
func SumSquares[T tensor.Float](name string, x *autograd.Var[T], coef float64) (*autograd.Var[T], error) {
	return apply(name, &SumSquaresOp[T]{Coef: coef}, x)
}

// Name implements autograd.Op.
func (o *SumSquaresOp[T]) Name() string { return "sum_squares" }

// Forward implements autograd.Op (accumulating in float64).
func (o *SumSquaresOp[T]) Forward(in []*tensor.Tensor[T]) (*tensor.Tensor[T], error) {
	if err := wantInputs("sum_squares", in, 1); err != nil {
		return nil, err
	}
	if math.IsNaN(o.Coef) || math.IsInf(o.Coef, 0) {
		return nil, fmt.Errorf("sum_squares: the coefficient must be a finite number, got %g", o.Coef)
	}
	o.shape = append([]int(nil), in[0].Shape()...)
	s := 0.0
	for _, v := range in[0].Data() {
		s += float64(v) * float64(v)
	}
	return tensor.Scalar(T(o.Coef * s)), nil
}

// Backward implements autograd.Op: 2c·g·x.
func (o *SumSquaresOp[T]) Backward(in []*tensor.Tensor[T], out, gout *tensor.Tensor[T], need []bool) []*tensor.Tensor[T] {
	d := tensor.Empty[T](in[0].Shape()...)
	c := 2 * o.Coef * float64(gout.Data()[0])
	for k, v := range in[0].Data() {
		d.Data()[k] = T(c * float64(v))
	}
	return []*tensor.Tensor[T]{d}
}

// twice is 2·c·e with c the coefficient.
func (o *SumSquaresOp[T]) twice(e ...expr.Expr) expr.Expr {
	return append(expr.Product{expr.Num(2), expr.Num(o.Coef)}, e...)
}

// Formula implements explain.Explainer: c·Σ(x ⊙ x).
func (o *SumSquaresOp[T]) Formula(in []expr.Expr) expr.Expr {
	sum := expr.Fn{Name: "Σ", TeX: `\sum`, Args: []expr.Expr{expr.Hadamard{in[0], in[0]}}, Eval: func(a []*tensor.Tensor[float64]) (*tensor.Tensor[float64], error) {
		s := 0.0
		for _, v := range a[0].Data() {
			s += v
		}
		return tensor.Scalar(s), nil
	}}
	return expr.Product{expr.Num(o.Coef), sum}
}

// ForwardElem implements explain.Explainer: c·(x₁·x₁ + x₂·x₂ + …).
func (o *SumSquaresOp[T]) ForwardElem(k int, in func(i, m int) expr.Expr) expr.Expr {
	terms := make([]expr.Expr, tensor.NumElements(o.shape))
	for m := range terms {
		terms[m] = expr.Product{in(0, m), in(0, m)}
	}
	return expr.Product{expr.Num(o.Coef), sumOf(terms)}
}

// BackwardFormula implements explain.Explainer: 2·c·g·x.
func (o *SumSquaresOp[T]) BackwardFormula(i int, in []expr.Expr, out, gout expr.Expr) expr.Expr {
	return o.twice(gout, in[0])
}

// BackwardElem implements explain.Explainer: 2·c·g·x[m].
func (o *SumSquaresOp[T]) BackwardElem(i, m int, in func(i, m int) expr.Expr, out, gout func(k int) expr.Expr) expr.Expr {
	return o.twice(gout(0), in(0, m))
}

// ForwardRule implements c·Σ_idx x[idx]·x[idx].
func (o *SumSquaresOp[T]) ForwardRule(out []string, in InputIndex, fresh func(string) string) (expr.Expr, string) {
	idx, over := freshIndices(o.shape, fresh)
	return expr.Product{expr.Num(o.Coef), sigmaOver(over, expr.Product{in(0, idx), in(0, idx)})}, ""
}

// BackwardRule implements 2·c·gout·x[idx].
func (o *SumSquaresOp[T]) BackwardRule(i int, idx []string, in InputIndex, out, gout Index, fresh func(string) string) (expr.Expr, string) {
	return o.twice(gout(nil), in(0, idx)), ""
}
