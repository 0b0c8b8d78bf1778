package ops

import (
	"fmt"
	"strings"

	"github.com/backprop-dev/backprop/autograd"
	"github.com/backprop-dev/backprop/expr"
	"github.com/backprop-dev/backprop/tensor"
)

// ReshapeOp gives x a new shape with the same elements. In row-major order
// (NumPy, PyTorch) elements keep their memory order. In column-major order
// (MATLAB) the last two axes of both shapes are read and filled column by
// column while leading axes (batch, channel) stay slowest, so reshaping 8
// values to (2,2,2) fills each 2×2 channel column-first, as MATLAB's
// reshape(h0, 2, 2, 2) fills H×W×C.
type ReshapeOp[T tensor.Float] struct {
	Shape    []int // target shape; one entry may be -1
	ColMajor bool
	Label    string // "reshape" or "flatten", for the trace
	// Lead is the number of leading axes (a batch axis) that the reshape
	// keeps; the column-major reading applies to each sample on its own.
	Lead int

	src []int // out position k takes input position src[k]; nil for identity
	dst []int // inverse of src
	n   int

	inShape  []int
	outShape []int

	recyclable
	shapeBuf [4]int // Shape's storage for the constructors
}

// newReshape returns a ReshapeOp, recycled if one is free, with a copy of
// shape.
func newReshape[T tensor.Float](label string, colMajor bool, lead int, shape []int) *ReshapeOp[T] {
	o := newOp[ReshapeOp[T]]()
	o.Shape = append(o.shapeBuf[:0], shape...)
	o.ColMajor, o.Label, o.Lead, o.pooled = colMajor, label, lead, true
	return o
}

// Recycle implements autograd.Recycler.
func (o *ReshapeOp[T]) Recycle() {
	if !o.pooled {
		return
	}
	*o = ReshapeOp[T]{}
	putOp(o)
}

// Reshape records x reshaped to shape.
func Reshape[T tensor.Float](name string, x *autograd.Var[T], colMajor bool, shape ...int) (*autograd.Var[T], error) {
	return apply(name, newReshape[T]("reshape", colMajor, 0, shape), x)
}

// ReshapeLead records x reshaped to shape keeping its first lead axes (a
// batch axis): each sample is reshaped on its own, which matters for the
// column-major reading.
func ReshapeLead[T tensor.Float](name string, x *autograd.Var[T], colMajor bool, lead int, shape ...int) (*autograd.Var[T], error) {
	return apply(name, newReshape[T]("reshape", colMajor, lead, shape), x)
}

// Flatten records x with axes from startDim on merged into one, as
// torch.flatten(x, startDim): 0 for a single sample, 1 to keep a batch axis.
func Flatten[T tensor.Float](name string, x *autograd.Var[T], startDim int, colMajor bool) (*autograd.Var[T], error) {
	s := x.Value.Shape()
	if startDim < 0 || startDim > len(s) {
		return nil, fmt.Errorf("%s: flatten start axis %d is outside the input's %d axes", name, startDim, len(s))
	}
	o := newReshape[T]("flatten", colMajor, startDim, s[:startDim])
	o.Shape = append(o.Shape, tensor.NumElements(s[startDim:]))
	return apply(name, o, x)
}

// leadPos is the logical position of idx in shape when the first lead
// axes are kept: row-major over them, then colPos within each block.
func leadPos(shape, idx []int, lead int) int {
	if lead <= 0 || lead > len(shape) {
		return colPos(shape, idx)
	}
	block := tensor.NumElements(shape[lead:])
	l := 0
	for i := 0; i < lead; i++ {
		l = l*shape[i] + idx[i]
	}
	return l*block + colPos(shape[lead:], idx[lead:])
}

// colPos is the column-major logical position of idx within shape: leading
// axes row-major and slowest, the last two axes column-first.
func colPos(shape, idx []int) int {
	r := len(shape)
	if r < 2 {
		if r == 1 {
			return idx[0]
		}
		return 0
	}
	lead := 0
	for i := 0; i < r-2; i++ {
		lead = lead*shape[i] + idx[i]
	}
	h, w := shape[r-2], shape[r-1]
	return lead*h*w + idx[r-2] + h*idx[r-1]
}

// Name implements autograd.Op.
func (o *ReshapeOp[T]) Name() string { return o.Label }

// Forward implements autograd.Op.
func (o *ReshapeOp[T]) Forward(in []*tensor.Tensor[T]) (*tensor.Tensor[T], error) {
	if err := wantInputs(o.Label, in, 1); err != nil {
		return nil, err
	}
	x := in[0]
	view, err := x.Reshape(o.Shape...)
	if err != nil {
		return nil, &tensor.ShapeError{Op: o.Label, Tensor: "input", Want: fmt.Sprintf("%d values to fill %v", tensor.NumElements(o.Shape), o.Shape), Got: x.Shape()}
	}
	o.n = x.Len()
	// shapes are never written in place: sharing them costs no allocation
	o.inShape, o.outShape = x.Shape(), view.Shape()
	o.src, o.dst = nil, nil
	if !o.ColMajor {
		// Row-major order keeps every element where it is: the output is
		// a view of the input, and the gradient a view of the upstream one.
		return view, nil
	}
	out := view.Clone()
	inShape, outShape := x.Shape(), out.Shape()
	byPos := make([]int, o.n) // logical position -> input position
	for m := 0; m < o.n; m++ {
		byPos[leadPos(inShape, tensor.Index(inShape, m), o.Lead)] = m
	}
	o.src = make([]int, o.n)
	o.dst = make([]int, o.n)
	xd, od := x.Data(), out.Data()
	for k := 0; k < o.n; k++ {
		m := byPos[leadPos(outShape, tensor.Index(outShape, k), o.Lead)]
		o.src[k], o.dst[m] = m, k
		od[k] = xd[m]
	}
	return out, nil
}

// Backward implements autograd.Op: the gradient is moved back through the
// same permutation.
func (o *ReshapeOp[T]) Backward(in []*tensor.Tensor[T], out, gout *tensor.Tensor[T], need []bool) []*tensor.Tensor[T] {
	grads := make([]*tensor.Tensor[T], 1)
	o.BackwardInto(grads, in, out, gout, need)
	return grads
}

// BackwardInto implements autograd.GradWriter.
func (o *ReshapeOp[T]) BackwardInto(grads, in []*tensor.Tensor[T], out, gout *tensor.Tensor[T], need []bool) {
	if o.src == nil {
		g, err := gout.Reshape(in[0].Shape()...)
		if err != nil { // cannot happen: Forward checked the element counts
			panic(err)
		}
		grads[0] = g
		return
	}
	g := tensor.Empty[T](in[0].Shape()...)
	gd, up := g.Data(), gout.Data()
	for k, m := range o.src {
		gd[m] = up[k]
	}
	grads[0] = g
}

func (o *ReshapeOp[T]) from(k int) int {
	if o.src == nil {
		return k
	}
	return o.src[k]
}

func (o *ReshapeOp[T]) to(m int) int {
	if o.dst == nil {
		return m
	}
	return o.dst[m]
}

// Formula implements explain.Explainer.
func (o *ReshapeOp[T]) Formula(in []expr.Expr) expr.Expr {
	return expr.Call{Fn: o.Label, Args: []expr.Expr{in[0]}}
}

// ForwardElem implements explain.Explainer.
func (o *ReshapeOp[T]) ForwardElem(k int, in func(i, m int) expr.Expr) expr.Expr {
	return in(0, o.from(k))
}

// BackwardFormula implements explain.Explainer.
func (o *ReshapeOp[T]) BackwardFormula(i int, in []expr.Expr, out, gout expr.Expr) expr.Expr {
	shape := append([]int(nil), o.inShape...)
	dst := o.dst
	note := strings.Trim(strings.ReplaceAll(tensor.FormatShape(shape), "×", "×"), "[]")
	if o.ColMajor {
		note += ", column-major"
	}
	return expr.Fn{Name: "reshape", Args: []expr.Expr{gout}, Note: "to " + note, Eval: func(a []*tensor.Tensor[float64]) (*tensor.Tensor[float64], error) {
		g := a[0]
		if g.Len() != tensor.NumElements(shape) {
			return nil, fmt.Errorf("reshape: gradient has %d elements, want %d", g.Len(), tensor.NumElements(shape))
		}
		out := tensor.New[float64](shape...)
		for m := range out.Data() {
			k := m
			if dst != nil {
				k = dst[m]
			}
			out.Data()[m] = g.Data()[k]
		}
		return out, nil
	}}
}

// BackwardElem implements explain.Explainer.
func (o *ReshapeOp[T]) BackwardElem(i, m int, in func(i, m int) expr.Expr, out, gout func(k int) expr.Expr) expr.Expr {
	return gout(o.to(m))
}
