package ops

import (
	"fmt"

	"github.com/backprop-dev/backprop/autograd"
	"github.com/backprop-dev/backprop/expr"
	"github.com/backprop-dev/backprop/internal/parallel"
	"github.com/backprop-dev/backprop/tensor"
)

// BiasAddOp adds b to x, broadcasting b over every axis of x it does not
// cover. b's dimensions line up with x's starting at Axis, so one op serves
// all three kinds of bias: broadcast over a batch (x (N,F), b (F), Axis 1),
// per channel (x (N,C,H,W), b (C), Axis 1; or (C,H,W) with Axis 0), and
// full-shape "untied" (x (C,H,W), b (C,H,W), Axis 0) like the seed's 4×4 b1.
type BiasAddOp[T tensor.Float] struct {
	Axis int

	outer, bn, inner int   // x viewed as (outer, bn, inner), b as (bn)
	brank            int   // the bias's rank
	xShape           []int // the input's shape

	recyclable
	kind       int // the parallel pass under way: biasRows, …
	xd, od, bd []T // its slices
}

const (
	biasRows     = iota // od = xd + bd per row of bn (inner == 1)
	biasRuns            // od = xd + bd per run of inner values
	biasBackward        // bd = Σ g (xd) over the broadcast axes
)

// Range implements parallel.Ranger: the pass o.kind.
func (o *BiasAddOp[T]) Range(lo, hi int) {
	xd, od, bd := o.xd, o.od, o.bd
	switch o.kind {
	case biasRows:
		for p := lo; p < hi; p++ {
			src, dst := xd[p*o.bn:(p+1)*o.bn], od[p*o.bn:(p+1)*o.bn]
			for j, bv := range bd[:len(src)] {
				dst[j] = src[j] + bv
			}
		}
	case biasRuns:
		for r := lo; r < hi; r++ { // r = p·bn + j: one run of inner values sharing bias j
			bv := bd[r%o.bn]
			src, dst := xd[r*o.inner:(r+1)*o.inner], od[r*o.inner:(r+1)*o.inner]
			for i, v := range src {
				dst[i] = v + bv
			}
		}
	case biasBackward:
		// Each bias entry's sum runs over p in order whatever the split,
		// so the result does not depend on the number of CPUs.
		g, dd, j0, j1 := xd, bd, lo, hi
		if o.inner == 1 { // (N, C): sum the rows, each column in order of p
			for p := 0; p < o.outer; p++ {
				row := g[p*o.bn+j0 : p*o.bn+j1]
				for j, v := range row {
					dd[j0+j] += v
				}
			}
			return
		}
		for p := 0; p < o.outer; p++ {
			for j := j0; j < j1; j++ {
				var s T
				for _, v := range g[(p*o.bn+j)*o.inner : (p*o.bn+j+1)*o.inner] {
					s += v
				}
				dd[j] += s
			}
		}
	}
}

// run runs pass kind over n items (work elements touched).
func (o *BiasAddOp[T]) run(kind, n, work int, xd, od, bd []T) {
	o.kind, o.xd, o.od, o.bd = kind, xd, od, bd
	parallel.ForRanger(n, work, o)
	o.xd, o.od, o.bd = nil, nil, nil
}

// BiasAdd records x + b with b aligned at axis.
func BiasAdd[T tensor.Float](name string, x, b *autograd.Var[T], axis int) (*autograd.Var[T], error) {
	o := newOp[BiasAddOp[T]]()
	o.Axis, o.pooled = axis, true
	return apply(name, o, x, b)
}

// Recycle implements autograd.Recycler.
func (o *BiasAddOp[T]) Recycle() {
	if !o.pooled {
		return
	}
	*o = BiasAddOp[T]{}
	putOp(o)
}

// Name implements autograd.Op.
func (o *BiasAddOp[T]) Name() string { return "bias_add" }

// Forward implements autograd.Op.
func (o *BiasAddOp[T]) Forward(in []*tensor.Tensor[T]) (*tensor.Tensor[T], error) {
	if err := wantInputs("bias_add", in, 2); err != nil {
		return nil, err
	}
	x, b := in[0], in[1]
	xs, bs := x.Shape(), b.Shape()
	if o.Axis < 0 || o.Axis+len(bs) > len(xs) || !tensor.SameShape(xs[o.Axis:o.Axis+len(bs)], bs) {
		want := "a shape matching the input's trailing axes"
		if o.Axis >= 0 && o.Axis <= len(xs) {
			end := min(len(xs), o.Axis+max(len(bs), 1))
			want = tensor.FormatShape(xs[o.Axis:end]) + fmt.Sprintf(" (axes %d.. of the input, whose shape is %s)", o.Axis, tensor.FormatShape(xs))
		}
		return nil, &tensor.ShapeError{Op: "bias_add", Tensor: "bias", Want: want, Got: bs}
	}
	o.outer = tensor.NumElements(xs[:o.Axis])
	o.bn = b.Len()
	o.brank, o.xShape = len(bs), xs // shapes are never written in place: share it
	o.inner = tensor.NumElements(xs[o.Axis+len(bs):])
	out := tensor.Empty[T](xs...)
	xd, od, bd := x.Data(), out.Data(), b.Data()
	if o.inner == 1 { // (N, C) rows, a Linear layer's output: add b to each row
		o.run(biasRows, o.outer, len(od), xd, od, bd)
		return out, nil
	}
	o.run(biasRuns, o.outer*o.bn, len(od), xd, od, bd)
	return out, nil
}

// Backward implements autograd.Op: dx = g (the upstream gradient itself,
// which autograd shares or copies as the input's other uses require), db =
// g summed over the broadcast axes.
func (o *BiasAddOp[T]) Backward(in []*tensor.Tensor[T], out, gout *tensor.Tensor[T], need []bool) []*tensor.Tensor[T] {
	grads := make([]*tensor.Tensor[T], 2)
	o.BackwardInto(grads, in, out, gout, need)
	return grads
}

// BackwardInto implements autograd.GradWriter.
func (o *BiasAddOp[T]) BackwardInto(grads, in []*tensor.Tensor[T], out, gout *tensor.Tensor[T], need []bool) {
	if need[0] {
		grads[0] = gout
	}
	if need[1] {
		db := tensor.New[T](in[1].Shape()...)
		o.run(biasBackward, o.bn, gout.Len(), gout.Data(), nil, db.Data())
		grads[1] = db
	}
}

func (o *BiasAddOp[T]) biasIndex(k int) int { return (k / o.inner) % o.bn }

// Formula implements explain.Explainer.
func (o *BiasAddOp[T]) Formula(in []expr.Expr) expr.Expr { return expr.Sum{in[0], in[1]} }

// ForwardElem implements explain.Explainer.
func (o *BiasAddOp[T]) ForwardElem(k int, in func(i, m int) expr.Expr) expr.Expr {
	return expr.Sum{in(0, k), in(1, o.biasIndex(k))}
}

// BackwardFormula implements explain.Explainer.
func (o *BiasAddOp[T]) BackwardFormula(i int, in []expr.Expr, out, gout expr.Expr) expr.Expr {
	if i == 0 || (o.outer == 1 && o.inner == 1) {
		return gout
	}
	name, tex := "Σ_batch", `\textstyle\sum_{n}`
	switch {
	case o.bn == 1:
		name, tex = "Σ", `\textstyle\sum`
	case o.outer == 1:
		name, tex = "Σ_pixels", `\textstyle\sum_{h,w}`
	case o.inner > 1:
		name, tex = "Σ_batch,pixels", `\textstyle\sum_{n,h,w}`
	}
	outer, bn, inner := o.outer, o.bn, o.inner
	return expr.Fn{Name: name, TeX: tex, Args: []expr.Expr{gout}, Eval: func(a []*tensor.Tensor[float64]) (*tensor.Tensor[float64], error) {
		g := a[0]
		if g.Len() != outer*bn*inner {
			return nil, fmt.Errorf("%s: gradient has %d elements, want %d", name, g.Len(), outer*bn*inner)
		}
		out := tensor.New[float64](bn)
		for p := 0; p < outer; p++ {
			for j := 0; j < bn; j++ {
				for q := 0; q < inner; q++ {
					out.Data()[j] += g.Data()[(p*bn+j)*inner+q]
				}
			}
		}
		return out, nil
	}}
}

// BackwardElem implements explain.Explainer.
func (o *BiasAddOp[T]) BackwardElem(i, m int, in func(i, m int) expr.Expr, out, gout func(k int) expr.Expr) expr.Expr {
	if i == 0 {
		return gout(m)
	}
	var terms []expr.Expr
	for p := 0; p < o.outer; p++ {
		for q := 0; q < o.inner; q++ {
			terms = append(terms, gout((p*o.bn+m)*o.inner+q))
		}
	}
	return sumOf(terms)
}

// PassThrough reports that the gradient for x is the upstream gradient
// itself, so a trace need not print it as a step of its own.
func (o *BiasAddOp[T]) PassThrough(i int) bool { return i == 0 }
