package ops

import (
	"fmt"
	"math"

	"github.com/backprop-dev/backprop/autograd"
	"github.com/backprop-dev/backprop/expr"
	"github.com/backprop-dev/backprop/tensor"
)

// SoftmaxOp is softmax along one axis, y_i = exp(x_i)/Σ_j exp(x_j) over
// each line of that axis (a row of class scores), or, with Log, its
// logarithm x_i − log Σ_j exp(x_j): torch.softmax and torch.log_softmax.
// Both take the line's maximum out before exponentiating (logsumexp), in
// float64, so no exponential overflows and float32 agrees with float64.
// The gradients are y_i·(g_i − Σ_j g_j·y_j) for softmax and
// g_i − exp(y_i)·Σ_j g_j for log-softmax.
type SoftmaxOp[T tensor.Float] struct {
	Axis int  // the axis normalised over; negative counts from the end
	Log  bool // log-softmax instead of softmax

	name            string
	axis            int
	outer, n, inner int
	shape           []int
	lse             []float64 // logsumexp of each line, (outer, inner)
	big             []bool    // lines whose exponentials a plain quotient could not hold
}

// Softmax records softmax(x) over axis (−1: the last).
func Softmax[T tensor.Float](name string, x *autograd.Var[T], axis int) (*autograd.Var[T], error) {
	return apply(name, &SoftmaxOp[T]{Axis: axis, name: x.Name}, x)
}

// LogSoftmax records log softmax(x) over axis (−1: the last).
func LogSoftmax[T tensor.Float](name string, x *autograd.Var[T], axis int) (*autograd.Var[T], error) {
	return apply(name, &SoftmaxOp[T]{Axis: axis, Log: true, name: x.Name}, x)
}

// Name implements autograd.Op.
func (o *SoftmaxOp[T]) Name() string {
	if o.Log {
		return "log_softmax"
	}
	return "softmax"
}

// line is the position of element j of line (p, i).
func (o *SoftmaxOp[T]) pos(p, j, i int) int { return (p*o.n+j)*o.inner + i }

// lineOf is the line (p·inner + i) and the place j along it of position k.
func (o *SoftmaxOp[T]) lineOf(k int) (line, p, j, i int) {
	i = k % o.inner
	p = k / (o.n * o.inner)
	j = (k / o.inner) % o.n
	return p*o.inner + i, p, j, i
}

// Forward implements autograd.Op.
func (o *SoftmaxOp[T]) Forward(in []*tensor.Tensor[T]) (*tensor.Tensor[T], error) {
	if err := wantInputs(o.Name(), in, 1); err != nil {
		return nil, err
	}
	x := in[0]
	a, outer, n, inner, err := axisView(o.Name(), opName(o.name, "input"), x.Shape(), o.Axis)
	if err != nil {
		return nil, err
	}
	if n == 0 {
		return nil, &tensor.ShapeError{Op: o.Name(), Tensor: opName(o.name, "input"), Want: fmt.Sprintf("at least one element along axis %d", o.Axis), Got: x.Shape()}
	}
	o.axis, o.outer, o.n, o.inner = a, outer, n, inner
	o.shape = append([]int(nil), x.Shape()...)
	o.lse = make([]float64, outer*inner)
	o.big = make([]bool, outer*inner)
	out := tensor.Empty[T](x.Shape()...)
	xd, od := x.Data(), out.Data()
	for p := range outer {
		for i := range inner {
			m := math.Inf(-1)
			for j := range n {
				m = max(m, float64(xd[o.pos(p, j, i)]))
			}
			s := 0.0
			big := false
			for j := range n {
				v := float64(xd[o.pos(p, j, i)])
				s += math.Exp(v - m)
				big = big || math.Abs(v) > 300 && !math.IsInf(v, -1) // a masked −∞ has exp 0
			}
			lse := m + math.Log(s)
			if math.IsInf(m, 0) {
				lse = m
			}
			o.lse[p*inner+i], o.big[p*inner+i] = lse, big
			for j := range n {
				k := o.pos(p, j, i)
				v := float64(xd[k]) - lse
				if o.Log {
					od[k] = T(v)
				} else {
					od[k] = T(math.Exp(v))
				}
			}
		}
	}
	return out, nil
}

// Backward implements autograd.Op, in float64 per line.
func (o *SoftmaxOp[T]) Backward(in []*tensor.Tensor[T], out, gout *tensor.Tensor[T], need []bool) []*tensor.Tensor[T] {
	d := tensor.Empty[T](in[0].Shape()...)
	y, g, dd := out.Data(), gout.Data(), d.Data()
	for p := range o.outer {
		for i := range o.inner {
			s := 0.0
			for j := range o.n {
				k := o.pos(p, j, i)
				if o.Log {
					s += float64(g[k])
				} else {
					s += float64(g[k]) * float64(y[k])
				}
			}
			for j := range o.n {
				k := o.pos(p, j, i)
				if o.Log {
					dd[k] = T(float64(g[k]) - math.Exp(float64(y[k]))*s)
				} else {
					dd[k] = T(float64(y[k]) * (float64(g[k]) - s))
				}
			}
		}
	}
	return []*tensor.Tensor[T]{d}
}

// lineName names a line of the axis in formulas: a row for the last axis
// of a matrix or any axis of a vector.
func (o *SoftmaxOp[T]) lineNote() string {
	if o.axis == len(o.shape)-1 {
		if len(o.shape) == 1 {
			return ""
		}
		return "per row"
	}
	return fmt.Sprintf("along axis %d", o.axis)
}

// sumLine is Σ over each line of the axis, broadcast back along it.
func (o *SoftmaxOp[T]) sumLine(e expr.Expr) expr.Expr {
	if len(o.shape) == 1 {
		return expr.Fn{Name: "Σ", TeX: `\sum`, Args: []expr.Expr{e}, Eval: func(a []*tensor.Tensor[float64]) (*tensor.Tensor[float64], error) {
			s := 0.0
			for _, v := range a[0].Data() {
				s += v
			}
			return tensor.Scalar(s), nil
		}}
	}
	name := "Σ_row"
	if o.axis != len(o.shape)-1 {
		name = fmt.Sprintf("Σ_axis%d", o.axis)
	}
	return alongAxis(name, `\textstyle\sum_{\text{row}}`, "", e, o.outer, o.n, o.inner, lineSum)
}

// Formula implements explain.Explainer: softmax(x) or log_softmax(x),
// per row.
func (o *SoftmaxOp[T]) Formula(in []expr.Expr) expr.Expr {
	name, tex := "softmax", `\operatorname{softmax}`
	if o.Log {
		name, tex = "log_softmax", `\log\operatorname{softmax}`
	}
	return alongAxis(name, tex, o.lineNote(), in[0], o.outer, o.n, o.inner, softmaxLine(o.Log))
}

// softmaxLine computes the softmax (or log-softmax) of one line, through
// logsumexp so that large logits do not overflow.
func softmaxLine(log bool) func(line, out []float64) {
	return func(line, out []float64) {
		lse := logSumExp(line)
		for j, v := range line {
			if log {
				out[j] = v - lse
			} else {
				out[j] = math.Exp(v - lse)
			}
		}
	}
}

// lineElems are the input elements of k's line and k's place in it.
func (o *SoftmaxOp[T]) lineElems(k int, in func(i, m int) expr.Expr) ([]expr.Expr, int, int) {
	line, p, j, i := o.lineOf(k)
	xs := make([]expr.Expr, o.n)
	for q := range o.n {
		xs[q] = in(0, o.pos(p, q, i))
	}
	return xs, j, line
}

// ForwardElem implements explain.Explainer: exp(x_k)/Σ_j exp(x_j) over
// k's line (exp(x_k − logsumexp(…)) where the exponentials would
// overflow), or x_k − logsumexp(…) for log-softmax.
func (o *SoftmaxOp[T]) ForwardElem(k int, in func(i, m int) expr.Expr) expr.Expr {
	xs, j, line := o.lineElems(k, in)
	lse := expr.Call{Fn: "logsumexp", Args: xs}
	if o.Log {
		return expr.Diff{A: xs[j], B: lse}
	}
	if o.big[line] {
		return expr.Call{Fn: "exp", Args: []expr.Expr{expr.Diff{A: xs[j], B: lse}}}
	}
	exps := make([]expr.Expr, len(xs))
	for q, x := range xs {
		exps[q] = expr.Call{Fn: "exp", Args: []expr.Expr{x}}
	}
	return expr.Quot{A: exps[j], B: sumOf(exps)}
}

// BackwardFormula implements explain.Explainer. For softmax it is the
// Jacobian-vector product (diag(y) − y yᵀ)·g, the softmax's Jacobian
// ∂y_i/∂x_k = y_i(1[i = k] − y_k) times the upstream gradient, for a
// vector and per line (row) of a tensor; the element lines write the same
// product out as y_i·(g_i − Σ_j g_j·y_j). For log-softmax it is
// g − exp(y) ⊙ Σ_row g.
func (o *SoftmaxOp[T]) BackwardFormula(i int, in []expr.Expr, out, gout expr.Expr) expr.Expr {
	if o.Log {
		return expr.Diff{A: gout, B: expr.Hadamard{expr.Call{Fn: "exp", Args: []expr.Expr{out}}, o.sumLine(gout)}}
	}
	jvp := expr.MatProd{expr.Diff{A: diagOf(out), B: expr.MatProd{out, expr.Transpose{X: out}}}, gout}
	if len(o.shape) == 1 {
		return jvp
	}
	// per line: shown as the vector form with the line named, evaluated
	// line by line
	outer, n, inner := o.outer, o.n, o.inner
	return expr.EvalAs{
		X:    expr.Fn{Name: "", TeX: " ", Args: []expr.Expr{jvp}, Note: o.lineNote()},
		Args: []expr.Expr{out, gout},
		Eval: func(a []*tensor.Tensor[float64]) (*tensor.Tensor[float64], error) {
			y, g := a[0], a[1]
			if y.Len() != outer*n*inner || g.Len() != y.Len() {
				return nil, fmt.Errorf("softmax Jacobian: arguments have %d and %d elements, want %d", y.Len(), g.Len(), outer*n*inner)
			}
			d := tensor.New[float64](y.Shape()...)
			for p := range outer {
				for i := range inner {
					at := func(j int) int { return (p*n+j)*inner + i }
					for r := range n { // row r of (diag(y) − y yᵀ) times g
						s := 0.0
						for c := range n {
							jac := -y.Data()[at(r)] * y.Data()[at(c)]
							if r == c {
								jac += y.Data()[at(r)]
							}
							s += jac * g.Data()[at(c)]
						}
						d.Data()[at(r)] = s
					}
				}
			}
			return d, nil
		},
	}
}

// diagOf is diag(v), the square matrix with the vector v on its diagonal.
func diagOf(v expr.Expr) expr.Expr {
	return expr.Fn{Name: "diag", Args: []expr.Expr{v}, Eval: func(a []*tensor.Tensor[float64]) (*tensor.Tensor[float64], error) {
		x := a[0]
		if x.Rank() > 1 {
			return nil, fmt.Errorf("diag: argument of shape %s, want a vector", tensor.FormatShape(x.Shape()))
		}
		n := x.Len()
		d := tensor.New[float64](n, n)
		for i, v := range x.Data() {
			d.Data()[i*n+i] = v
		}
		return d, nil
	}}
}

// BackwardElem implements explain.Explainer: y_k·(g_k − Σ_j g_j·y_j),
// or g_k − exp(y_k)·Σ_j g_j, over k's line.
func (o *SoftmaxOp[T]) BackwardElem(n, m int, in func(i, m int) expr.Expr, out, gout func(k int) expr.Expr) expr.Expr {
	_, p, _, i := o.lineOf(m)
	terms := make([]expr.Expr, o.n)
	for q := range o.n {
		k := o.pos(p, q, i)
		if o.Log {
			terms[q] = gout(k)
		} else {
			terms[q] = expr.Product{gout(k), out(k)}
		}
	}
	if o.Log {
		return expr.Diff{A: gout(m), B: expr.Product{expr.Call{Fn: "exp", Args: []expr.Expr{out(m)}}, sumOf(terms)}}
	}
	return expr.Product{out(m), expr.Diff{A: gout(m), B: sumOf(terms)}}
}

// ForwardRule implements y[…,i,…] = exp(x[…,i,…])/Σ_k exp(x[…,k,…]) with
// the sum along the axis, or x[…,i,…] − log Σ_k exp(x[…,k,…]).
func (o *SoftmaxOp[T]) ForwardRule(out []string, in InputIndex, fresh func(string) string) (expr.Expr, string) {
	if len(out) != len(o.shape) {
		return nil, ""
	}
	k := fresh("k")
	sum := expr.Sigma{Over: []string{k}, X: expr.Call{Fn: "exp", Args: []expr.Expr{in(0, withAxis(out, o.axis, k))}}}
	note := fmt.Sprintf("the sum runs over %s = 1…%d", k, o.n)
	if o.Log {
		return expr.Diff{A: in(0, out), B: expr.Call{Fn: "log", Args: []expr.Expr{sum}}}, note + "; computed as x − max − log Σ exp(x − max), which overflows nowhere"
	}
	return expr.Quot{A: expr.Call{Fn: "exp", Args: []expr.Expr{in(0, out)}}, B: sum}, note + "; computed with the largest value subtracted from each, which changes nothing"
}

// BackwardRule implements ∂J/∂x[…,i,…] = y[…,i,…]·(g[…,i,…] − Σ_k g[…,k,…]·y[…,k,…])
// for softmax and g[…,i,…] − exp(y[…,i,…])·Σ_k g[…,k,…] for log-softmax.
func (o *SoftmaxOp[T]) BackwardRule(n int, idx []string, in InputIndex, out, gout Index, fresh func(string) string) (expr.Expr, string) {
	if len(idx) != len(o.shape) {
		return nil, ""
	}
	k := fresh("k")
	at := withAxis(idx, o.axis, k)
	a := idx[o.axis]
	if o.Log {
		return expr.Diff{A: gout(idx), B: expr.Product{expr.Call{Fn: "exp", Args: []expr.Expr{out(idx)}}, expr.Sigma{Over: []string{k}, X: gout(at)}}},
			"exp of the log-softmax is the softmax"
	}
	return expr.Product{out(idx), expr.Diff{A: gout(idx), B: expr.Sigma{Over: []string{k}, X: expr.Product{gout(at), out(at)}}}},
		fmt.Sprintf("the same as the whole-tensor form (diag(y) − y yᵀ)·g along the axis of %s: the softmax's Jacobian is ∂y[%s]/∂x[%s] = y[%s]·(1[%s = %s] − y[%s]), and row %s of it times g is this element", a, a, k, a, a, k, k, a)
}
