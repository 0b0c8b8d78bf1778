package ops

import (
	"fmt"
	"math"

	"github.com/backprop-dev/backprop/autograd"
	"github.com/backprop-dev/backprop/explain"
	"github.com/backprop-dev/backprop/expr"
	"github.com/backprop-dev/backprop/tensor"
)

// CausalMaskOp masks attention scores so that a position attends only to
// itself and the positions before it: for scores whose last two axes are
// T×T (query position i by key position j), out[..., i, j] = x[..., i, j]
// where j ≤ i and −∞ where j > i, so that a softmax along j gives the
// later positions weight 0. It is x + log tril(𝟏), the additive mask of
// PyTorch's is_causal attention (log 1 = 0 keeps a score, log 0 = −∞
// removes it). The gradient passes where j ≤ i and is 0 where j > i: a
// masked score does not reach the objective.
type CausalMaskOp[T tensor.Float] struct {
	name  string
	t     int // T, the size of the last two axes
	shape []int
}

// CausalMask records x with −∞ above the diagonal of its last two axes
// (T×T scores: query position i, key position j > i masked).
func CausalMask[T tensor.Float](name string, x *autograd.Var[T]) (*autograd.Var[T], error) {
	return apply(name, &CausalMaskOp[T]{name: x.Name}, x)
}

// CausalMaskOp explains itself, general element included.
var (
	_ explain.Explainer     = (*CausalMaskOp[float64])(nil)
	_ explain.ForwardRuler  = (*CausalMaskOp[float64])(nil)
	_ explain.BackwardRuler = (*CausalMaskOp[float64])(nil)
)

// Name implements autograd.Op.
func (o *CausalMaskOp[T]) Name() string { return "causal_mask" }

// Forward implements autograd.Op.
func (o *CausalMaskOp[T]) Forward(in []*tensor.Tensor[T]) (*tensor.Tensor[T], error) {
	if err := wantInputs("causal_mask", in, 1); err != nil {
		return nil, err
	}
	x := in[0]
	s := x.Shape()
	if len(s) < 2 || s[len(s)-1] != s[len(s)-2] {
		return nil, &tensor.ShapeError{Op: "causal_mask", Tensor: opName(o.name, "scores"), Want: "its last two axes equal (T×T: query positions by key positions)", Got: s}
	}
	o.t = s[len(s)-1]
	o.shape = append([]int(nil), s...)
	out := tensor.Empty[T](s...)
	xd, od := x.Data(), out.Data()
	ninf := T(math.Inf(-1))
	for k, v := range xd {
		if o.kept(k) {
			od[k] = v
		} else {
			od[k] = ninf
		}
	}
	return out, nil
}

// kept says position k lies on or below the diagonal (j ≤ i).
func (o *CausalMaskOp[T]) kept(k int) bool {
	i, j := (k/o.t)%o.t, k%o.t
	return j <= i
}

// Backward implements autograd.Op: gout where j ≤ i, 0 above the diagonal.
func (o *CausalMaskOp[T]) Backward(in []*tensor.Tensor[T], out, gout *tensor.Tensor[T], need []bool) []*tensor.Tensor[T] {
	d := tensor.New[T](o.shape...)
	dd, g := d.Data(), gout.Data()
	for k := range dd {
		if o.kept(k) {
			dd[k] = g[k]
		}
	}
	return []*tensor.Tensor[T]{d}
}

// tril is tril(𝟏), the T×T lower-triangular matrix of ones (repeated over
// the leading axes), as PyTorch builds a causal mask:
// torch.tril(torch.ones(T, T)).
func (o *CausalMaskOp[T]) tril() expr.Expr {
	shape := o.shape
	return expr.Fn{Name: "tril(𝟏)", TeX: `\operatorname{tril}(\mathbf{1})`, Eval: func([]*tensor.Tensor[float64]) (*tensor.Tensor[float64], error) {
		m := tensor.New[float64](shape...)
		for k := range m.Data() {
			if o.kept(k) {
				m.Data()[k] = 1
			}
		}
		return m, nil
	}}
}

// Formula implements explain.Explainer: x + log tril(𝟏), 0 added on and
// below the diagonal, −∞ above it.
func (o *CausalMaskOp[T]) Formula(in []expr.Expr) expr.Expr {
	return expr.Sum{in[0], expr.Call{Fn: "log", Args: []expr.Expr{o.tril()}}}
}

// minusInf is −∞ as an element formula: it renders as −∞ and evaluates to
// it.
var minusInf = expr.Inline{X: expr.Raw{Plain: "−∞", TeX: `-\infty`}, Value: math.Inf(-1)}

// ForwardElem implements explain.Explainer: the score itself on or below
// the diagonal, −∞ above it.
func (o *CausalMaskOp[T]) ForwardElem(k int, in func(i, m int) expr.Expr) expr.Expr {
	if o.kept(k) {
		return in(0, k)
	}
	return minusInf
}

// BackwardFormula implements explain.Explainer: g ⊙ tril(𝟏).
func (o *CausalMaskOp[T]) BackwardFormula(i int, in []expr.Expr, out, gout expr.Expr) expr.Expr {
	return expr.Hadamard{gout, o.tril()}
}

// BackwardElem implements explain.Explainer: the upstream gradient on or
// below the diagonal, 0 above it.
func (o *CausalMaskOp[T]) BackwardElem(i, m int, in func(i, m int) expr.Expr, out, gout func(k int) expr.Expr) expr.Expr {
	if o.kept(m) {
		return gout(m)
	}
	return expr.Num(0)
}

// lastTwo are the index names of the last two axes in idx (the literal 1
// of a 1×1 mask included).
func lastTwo(idx []string) (i, j string) { return idx[len(idx)-2], idx[len(idx)-1] }

// below is the indicator 1[j ≤ i].
func below(i, j string) expr.Expr {
	return expr.Indicator{C: expr.Cond{X: symIndex(j), Op: "<=", Y: symIndex(i)}}
}

// ForwardRule implements y[…,i,j] = x[…,i,j] + log 1[j ≤ i].
func (o *CausalMaskOp[T]) ForwardRule(out []string, in InputIndex, fresh func(string) string) (expr.Expr, string) {
	if len(out) != len(o.shape) {
		return nil, ""
	}
	i, j := lastTwo(out)
	return expr.Sum{in(0, out), expr.Call{Fn: "log", Args: []expr.Expr{below(i, j)}}},
		fmt.Sprintf("log 1[%s ≤ %s] is 0 where %s ≤ %s and −∞ where %s > %s: position %s sees positions 1…%s only, so a softmax over %s gives the later ones weight 0", j, i, j, i, j, i, i, i, j)
}

// BackwardRule implements ∂J/∂x[…,i,j] = ∂J/∂y[…,i,j]·1[j ≤ i].
func (o *CausalMaskOp[T]) BackwardRule(n int, idx []string, in InputIndex, out, gout Index, fresh func(string) string) (expr.Expr, string) {
	if len(idx) != len(o.shape) {
		return nil, ""
	}
	i, j := lastTwo(idx)
	return expr.Product{gout(idx), below(i, j)}, fmt.Sprintf("a masked score (%s > %s) does not reach the objective", j, i)
}
