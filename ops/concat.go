package ops

import (
	"fmt"

	"github.com/backprop-dev/backprop/autograd"
	"github.com/backprop-dev/backprop/expr"
	"github.com/backprop-dev/backprop/tensor"
)

// ConcatOp joins tensors along one axis, torch.cat: every other axis must
// agree. Each input's gradient is its own slice of the upstream gradient.
type ConcatOp[T tensor.Float] struct {
	Axis int // negative counts from the end

	names        []string
	axis         int
	outer, inner int
	sizes, offs  []int // each input's extent along the axis and where it starts
	total        int
	shape        []int
}

// Concat records the concatenation of xs along axis (negative counts from
// the end).
func Concat[T tensor.Float](name string, axis int, xs ...*autograd.Var[T]) (*autograd.Var[T], error) {
	names := make([]string, len(xs))
	for i, x := range xs {
		names[i] = x.Name
	}
	return apply(name, &ConcatOp[T]{Axis: axis, names: names}, xs...)
}

// Name implements autograd.Op.
func (o *ConcatOp[T]) Name() string { return "concat" }

func (o *ConcatOp[T]) place(i int) string {
	n := ""
	if i < len(o.names) {
		n = o.names[i]
	}
	return opName(n, fmt.Sprintf("input %d", i+1))
}

// Forward implements autograd.Op.
func (o *ConcatOp[T]) Forward(in []*tensor.Tensor[T]) (*tensor.Tensor[T], error) {
	if len(in) == 0 {
		return nil, fmt.Errorf("concat: no inputs")
	}
	first := in[0].Shape()
	a, outer, _, inner, err := axisView("concat", o.place(0), first, o.Axis)
	if err != nil {
		return nil, err
	}
	o.axis, o.outer, o.inner = a, outer, inner
	o.sizes, o.offs, o.total = make([]int, len(in)), make([]int, len(in)), 0
	for i, t := range in {
		s := t.Shape()
		ok := len(s) == len(first)
		for q := 0; ok && q < len(s); q++ {
			ok = q == a || s[q] == first[q]
		}
		if !ok {
			want := append([]int(nil), first...)
			want[a] = -1
			return nil, &tensor.ShapeError{Op: "concat", Tensor: o.place(i),
				Want: fmt.Sprintf("%s with any size along axis %d (the other axes of %s, whose shape is %s)", shapeWithAny(want, a), a, o.place(0), tensor.FormatShape(first)), Got: s}
		}
		o.sizes[i], o.offs[i] = s[a], o.total
		o.total += s[a]
	}
	o.shape = append([]int(nil), first...)
	o.shape[a] = o.total
	out := tensor.Empty[T](o.shape...)
	od := out.Data()
	for i, t := range in {
		n, td := o.sizes[i]*inner, t.Data()
		for p := range outer {
			copy(od[(p*o.total+o.offs[i])*inner:], td[p*n:(p+1)*n])
		}
	}
	return out, nil
}

// shapeWithAny renders shape with a * at axis a.
func shapeWithAny(shape []int, a int) string {
	s := "["
	for q, d := range shape {
		if q > 0 {
			s += "×"
		}
		if q == a {
			s += "*"
		} else {
			s += fmt.Sprint(d)
		}
	}
	return s + "]"
}

// Backward implements autograd.Op: input i gets its slice of gout.
func (o *ConcatOp[T]) Backward(in []*tensor.Tensor[T], out, gout *tensor.Tensor[T], need []bool) []*tensor.Tensor[T] {
	grads := make([]*tensor.Tensor[T], len(in))
	g := gout.Data()
	for i := range in {
		if !need[i] {
			continue
		}
		d := tensor.Empty[T](in[i].Shape()...)
		n := o.sizes[i] * o.inner
		for p := range o.outer {
			copy(d.Data()[p*n:(p+1)*n], g[(p*o.total+o.offs[i])*o.inner:])
		}
		grads[i] = d
	}
	return grads
}

// source is the input and its position that output position k copies.
func (o *ConcatOp[T]) source(k int) (int, int) {
	p, rest := k/(o.total*o.inner), k%(o.total*o.inner)
	j, q := rest/o.inner, rest%o.inner
	for i := len(o.offs) - 1; i >= 0; i-- {
		if j >= o.offs[i] {
			return i, (p*o.sizes[i]+j-o.offs[i])*o.inner + q
		}
	}
	return 0, k
}

// target is the output position input i's position m is copied to.
func (o *ConcatOp[T]) target(i, m int) int {
	n := o.sizes[i] * o.inner
	p, rest := m/n, m%n
	return p*o.total*o.inner + o.offs[i]*o.inner + rest
}

func (o *ConcatOp[T]) axisNote() string {
	if len(o.shape) == 1 {
		return ""
	}
	return fmt.Sprintf("axis %d", o.axis)
}

// Formula implements explain.Explainer: concat(x₁, x₂, …).
func (o *ConcatOp[T]) Formula(in []expr.Expr) expr.Expr {
	return expr.Fn{Name: "concat", Args: in, Note: o.axisNote(), Eval: func(a []*tensor.Tensor[float64]) (*tensor.Tensor[float64], error) {
		out := tensor.New[float64](o.shape...)
		for k := range out.Data() {
			i, m := o.source(k)
			if a[i].Len() != o.sizes[i]*o.outer*o.inner {
				return nil, fmt.Errorf("concat: argument %d has %d elements, want %d", i+1, a[i].Len(), o.sizes[i]*o.outer*o.inner)
			}
			out.Data()[k] = a[i].Data()[m]
		}
		return out, nil
	}}
}

// ForwardElem implements explain.Explainer: the input element copied.
func (o *ConcatOp[T]) ForwardElem(k int, in func(i, m int) expr.Expr) expr.Expr {
	return in(o.source(k))
}

// BackwardFormula implements explain.Explainer: input i's slice of g,
// positions offs+1 … offs+size along the axis.
func (o *ConcatOp[T]) BackwardFormula(i int, in []expr.Expr, out, gout expr.Expr) expr.Expr {
	note := fmt.Sprintf("%d…%d", o.offs[i]+1, o.offs[i]+o.sizes[i])
	if len(o.shape) > 1 {
		note = o.axisNote() + ", " + note
	}
	return expr.Fn{Name: "slice", Args: []expr.Expr{gout}, Note: note, Eval: func(a []*tensor.Tensor[float64]) (*tensor.Tensor[float64], error) {
		if a[0].Len() != tensor.NumElements(o.shape) {
			return nil, fmt.Errorf("slice: argument has %d elements, want %d", a[0].Len(), tensor.NumElements(o.shape))
		}
		n := o.sizes[i] * o.outer * o.inner
		shape := append([]int(nil), o.shape...)
		shape[o.axis] = o.sizes[i] // input i's own shape, for the products it enters
		out := tensor.New[float64](shape...)
		for m := range n {
			out.Data()[m] = a[0].Data()[o.target(i, m)]
		}
		return out, nil
	}}
}

// BackwardElem implements explain.Explainer: the upstream gradient of
// the output element the input element was copied to.
func (o *ConcatOp[T]) BackwardElem(i, m int, in func(i, m int) expr.Expr, out, gout func(k int) expr.Expr) expr.Expr {
	return gout(o.target(i, m))
}

// BackwardRule implements ∂J/∂xᵢ[…,k,…] = g[…,k + offᵢ,…]: each input's
// gradient is its slice of the upstream gradient. (The forward element is
// piecewise, one input or another by position, so there is no single
// forward rule.)
func (o *ConcatOp[T]) BackwardRule(i int, idx []string, in InputIndex, out, gout Index, fresh func(string) string) (expr.Expr, string) {
	if len(idx) != len(o.shape) {
		return nil, ""
	}
	at := idx[o.axis]
	if at == "1" {
		at = "1"
		if o.offs[i] > 0 {
			at = fmt.Sprint(o.offs[i] + 1)
		}
	} else {
		at = affine(o.offs[i], term{1, at})
	}
	return gout(withAxis(idx, o.axis, at)), ""
}
