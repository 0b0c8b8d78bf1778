package ops

import (
	"fmt"

	"github.com/backprop-dev/backprop/autograd"
	"github.com/backprop-dev/backprop/explain"
	"github.com/backprop-dev/backprop/expr"
	"github.com/backprop-dev/backprop/tensor"
)

// SliceOp keeps the elements [Start, Stop) along one axis, as x[..., a:b]
// does in PyTorch: an LSTM's four gates cut from its stacked 4H
// pre-activation, an attention head's columns cut from Q. The gradient
// goes back to the elements it came from, with zeros for the elements of
// x the slice left out (they did not reach the objective through it).
type SliceOp[T tensor.Float] struct {
	Axis        int // negative counts from the end
	Start, Stop int // 0-based, Stop excluded

	name            string
	axis            int
	outer, n, inner int // x read as outer blocks of n slices of inner values
	m               int // Stop − Start, the output's extent along the axis
	inShape, shape  []int
}

// Slice records the elements [start, stop) of x along axis (negative counts
// from the end); 0 ≤ start < stop ≤ the axis's size.
func Slice[T tensor.Float](name string, x *autograd.Var[T], axis, start, stop int) (*autograd.Var[T], error) {
	return apply(name, &SliceOp[T]{Axis: axis, Start: start, Stop: stop, name: x.Name}, x)
}

// SliceOp explains itself, general element included.
var (
	_ explain.Explainer     = (*SliceOp[float64])(nil)
	_ explain.ForwardRuler  = (*SliceOp[float64])(nil)
	_ explain.BackwardRuler = (*SliceOp[float64])(nil)
)

// Name implements autograd.Op.
func (o *SliceOp[T]) Name() string { return "slice" }

// Forward implements autograd.Op.
func (o *SliceOp[T]) Forward(in []*tensor.Tensor[T]) (*tensor.Tensor[T], error) {
	if err := wantInputs("slice", in, 1); err != nil {
		return nil, err
	}
	x := in[0]
	place := opName(o.name, "input")
	a, outer, n, inner, err := axisView("slice", place, x.Shape(), o.Axis)
	if err != nil {
		return nil, err
	}
	if o.Start < 0 || o.Stop > n || o.Start >= o.Stop {
		return nil, fmt.Errorf("slice: elements [%d, %d) along axis %d of %s, whose shape is %s: want 0 ≤ start < stop ≤ %d (the axis's size)",
			o.Start, o.Stop, o.Axis, place, tensor.FormatShape(x.Shape()), n)
	}
	o.axis, o.outer, o.n, o.inner, o.m = a, outer, n, inner, o.Stop-o.Start
	o.inShape = append([]int(nil), x.Shape()...)
	o.shape = append([]int(nil), x.Shape()...)
	o.shape[a] = o.m
	out := tensor.Empty[T](o.shape...)
	xd, od := x.Data(), out.Data()
	w := o.m * inner
	for p := range outer {
		copy(od[p*w:(p+1)*w], xd[(p*n+o.Start)*inner:])
	}
	return out, nil
}

// Backward implements autograd.Op: gout goes back to the sliced elements,
// zeros everywhere else.
func (o *SliceOp[T]) Backward(in []*tensor.Tensor[T], out, gout *tensor.Tensor[T], need []bool) []*tensor.Tensor[T] {
	d := tensor.New[T](o.inShape...)
	dd, g := d.Data(), gout.Data()
	w := o.m * o.inner
	for p := range o.outer {
		copy(dd[(p*o.n+o.Start)*o.inner:], g[p*w:(p+1)*w])
	}
	return []*tensor.Tensor[T]{d}
}

// source is the position in x of output position k.
func (o *SliceOp[T]) source(k int) int {
	w := o.m * o.inner
	p, r := k/w, k%w
	return (p*o.n+o.Start)*o.inner + r
}

// target is the output position x's position m went to, or −1 when the
// slice left it out.
func (o *SliceOp[T]) target(m int) int {
	p, j, i := m/(o.n*o.inner), (m/o.inner)%o.n, m%o.inner
	if j < o.Start || j >= o.Stop {
		return -1
	}
	return (p*o.m+j-o.Start)*o.inner + i
}

// rangeNote is the kept range, 1-based as the trace counts: 3…5, or
// "axis 1, 3…5" for a tensor.
func (o *SliceOp[T]) rangeNote() string {
	r := fmt.Sprintf("%d…%d", o.Start+1, o.Stop)
	if len(o.inShape) > 1 {
		r = fmt.Sprintf("axis %d, %s", o.axis, r)
	}
	return r
}

// Formula implements explain.Explainer: slice(x; axis a, s…e), the kept
// positions counted from 1.
func (o *SliceOp[T]) Formula(in []expr.Expr) expr.Expr {
	n := tensor.NumElements(o.inShape)
	return expr.Fn{Name: "slice", Args: in[:1], Note: o.rangeNote(), Eval: func(a []*tensor.Tensor[float64]) (*tensor.Tensor[float64], error) {
		if a[0].Len() != n {
			return nil, fmt.Errorf("slice: argument has %d elements, want %d", a[0].Len(), n)
		}
		out := tensor.New[float64](o.shape...)
		for k := range out.Data() {
			out.Data()[k] = a[0].Data()[o.source(k)]
		}
		return out, nil
	}}
}

// ForwardElem implements explain.Explainer: the input element copied.
func (o *SliceOp[T]) ForwardElem(k int, in func(i, m int) expr.Expr) expr.Expr {
	return in(0, o.source(k))
}

// BackwardFormula implements explain.Explainer: pad(g; axis a, zeros
// outside s…e of n), the upstream gradient put back where the slice came
// from.
func (o *SliceOp[T]) BackwardFormula(i int, in []expr.Expr, out, gout expr.Expr) expr.Expr {
	m := tensor.NumElements(o.shape)
	note := fmt.Sprintf("zeros outside %d…%d of %d", o.Start+1, o.Stop, o.n)
	if len(o.inShape) > 1 {
		note = fmt.Sprintf("axis %d, %s", o.axis, note)
	}
	return expr.Fn{Name: "pad", Args: []expr.Expr{gout}, Note: note, Eval: func(a []*tensor.Tensor[float64]) (*tensor.Tensor[float64], error) {
		if a[0].Len() != m {
			return nil, fmt.Errorf("pad: argument has %d elements, want %d", a[0].Len(), m)
		}
		d := tensor.New[float64](o.inShape...)
		for k := range d.Data() {
			if t := o.target(k); t >= 0 {
				d.Data()[k] = a[0].Data()[t]
			}
		}
		return d, nil
	}}
}

// BackwardElem implements explain.Explainer: the upstream gradient of the
// output element x's element went to, or 0 for an element left out.
func (o *SliceOp[T]) BackwardElem(i, m int, in func(i, m int) expr.Expr, out, gout func(k int) expr.Expr) expr.Expr {
	if t := o.target(m); t >= 0 {
		return gout(t)
	}
	return expr.Num(0)
}

// ForwardRule implements y[…,k,…] = x[…,k+s,…], s the number of elements
// the slice skips at the start.
func (o *SliceOp[T]) ForwardRule(out []string, in InputIndex, fresh func(string) string) (expr.Expr, string) {
	if len(out) != len(o.shape) {
		return nil, ""
	}
	at := out[o.axis]
	if at == "1" { // one element kept
		return in(0, withAxis(out, o.axis, fmt.Sprint(o.Start+1))), ""
	}
	return in(0, withAxis(out, o.axis, affine(o.Start, term{1, at}))), ""
}

// BackwardRule implements ∂J/∂x[…,i,…] = Σ_k ∂J/∂y[…,k,…]·1[i = k+s]:
// the one term k = i − s where x's element i was kept, none (0) where the
// slice left it out.
func (o *SliceOp[T]) BackwardRule(n int, idx []string, in InputIndex, out, gout Index, fresh func(string) string) (expr.Expr, string) {
	if len(idx) != len(o.inShape) {
		return nil, ""
	}
	i := idx[o.axis]
	if i == "1" || (o.Start == 0 && o.Stop == o.n) { // the whole axis kept
		return gout(idx), ""
	}
	left := fmt.Sprintf("the input's elements outside %d ≤ %s ≤ %d, which the slice left out, get 0", o.Start+1, i, o.Stop)
	if o.m == 1 {
		return expr.Product{gout(withAxis(idx, o.axis, "1")), expr.Indicator{C: expr.Cond{X: symIndex(i), Op: "=", Y: expr.Num(o.Start + 1)}}},
			fmt.Sprintf("the slice kept only %s = %d; %s", i, o.Start+1, left)
	}
	k := fresh("k")
	return expr.Sigma{Over: []string{k}, X: expr.Product{gout(withAxis(idx, o.axis, k)), expr.Indicator{C: expr.Cond{X: symIndex(i), Op: "=", Y: symIndex(affine(o.Start, term{1, k}))}}}},
		fmt.Sprintf("the one term is %s = %s, for %d ≤ %s ≤ %d; %s", k, affine(-o.Start, term{1, i}), o.Start+1, i, o.Stop, left)
}
