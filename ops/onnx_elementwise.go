package ops

import (
	"fmt"
	"math"
	"slices"

	"github.com/backprop-dev/backprop/autograd"
	"github.com/backprop-dev/backprop/tensor"
)

// BinaryKind names an element-wise arithmetic operation of two tensors.
type BinaryKind string

// The arithmetic of BroadcastOp, with ONNX's operator names in mind (Add,
// Sub, Mul, Div).
const (
	BinAdd BinaryKind = "add"
	BinSub BinaryKind = "sub"
	BinMul BinaryKind = "mul"
	BinDiv BinaryKind = "div"
)

// BroadcastOp is a + b, a − b, a ⊙ b or a / b with NumPy's (and ONNX's
// multidirectional) broadcasting: the shapes are aligned at their last
// axes and an axis of extent 1, or a missing leading axis, repeats to the
// other operand's extent. ONNX models rely on it for biases, scalars and
// per-channel constants; Add and Mul keep requiring equal shapes for the
// worked problems. The gradient of a broadcast operand is the upstream
// gradient summed over the axes it was repeated along.
type BroadcastOp[T tensor.Float] struct {
	Kind BinaryKind

	names  [2]string
	out    []int
	ai, bi []int // for every output element, the element of a and of b it reads
}

// Broadcast records kind(a, b) with broadcasting as node name.
func Broadcast[T tensor.Float](name string, kind BinaryKind, a, b *autograd.Var[T]) (*autograd.Var[T], error) {
	return apply(name, &BroadcastOp[T]{Kind: kind, names: [2]string{a.Name, b.Name}}, a, b)
}

// Name implements autograd.Op.
func (o *BroadcastOp[T]) Name() string { return string(o.Kind) }

// BroadcastShape is the shape NumPy's broadcasting gives operands of
// shapes a and b, or an error naming the first axis (counted from the
// end) where the extents differ and neither is 1.
func BroadcastShape(a, b []int) ([]int, error) {
	n := max(len(a), len(b))
	out := make([]int, n)
	for i := 1; i <= n; i++ {
		da, db := 1, 1
		if i <= len(a) {
			da = a[len(a)-i]
		}
		if i <= len(b) {
			db = b[len(b)-i]
		}
		switch {
		case da == db || db == 1:
			out[n-i] = da
		case da == 1:
			out[n-i] = db
		default:
			return nil, fmt.Errorf("shapes %s and %s do not broadcast: axis %d (from the end) has extents %d and %d, neither 1",
				tensor.FormatShape(a), tensor.FormatShape(b), i, da, db)
		}
	}
	return out, nil
}

// broadcastIndex lists, for every element of shape out in row-major order,
// the row-major position of the element of shape in (aligned at the last
// axis, broadcast where in has extent 1 or no axis) that it reads.
func broadcastIndex(in, out []int) []int {
	n := tensor.NumElements(out)
	idx := make([]int, n)
	// stride of in along each axis of out; 0 where in is broadcast
	strides := make([]int, len(out))
	s := 1
	for i := len(out) - 1; i >= 0; i-- {
		j := i - (len(out) - len(in))
		if j < 0 {
			continue
		}
		if in[j] != 1 {
			strides[i] = s
		}
		s *= in[j]
	}
	pos := make([]int, len(out))
	off := 0
	for k := range n {
		idx[k] = off
		for ax := len(out) - 1; ax >= 0; ax-- {
			pos[ax]++
			off += strides[ax]
			if pos[ax] < out[ax] {
				break
			}
			off -= strides[ax] * pos[ax]
			pos[ax] = 0
		}
	}
	return idx
}

// Forward implements autograd.Op.
func (o *BroadcastOp[T]) Forward(in []*tensor.Tensor[T]) (*tensor.Tensor[T], error) {
	if err := wantInputs(o.Name(), in, 2); err != nil {
		return nil, err
	}
	switch o.Kind {
	case BinAdd, BinSub, BinMul, BinDiv:
	default:
		return nil, fmt.Errorf("broadcast: unknown operation %q (want add, sub, mul or div)", o.Kind)
	}
	out, err := BroadcastShape(in[0].Shape(), in[1].Shape())
	if err != nil {
		return nil, fmt.Errorf("%s of %s and %s: %w", o.Kind, opName(o.names[0], "first operand"), opName(o.names[1], "second operand"), err)
	}
	o.out = out
	o.ai, o.bi = broadcastIndex(in[0].Shape(), out), broadcastIndex(in[1].Shape(), out)
	y := tensor.Empty[T](out...)
	a, b, yd := in[0].Data(), in[1].Data(), y.Data()
	for k := range yd {
		x, z := a[o.ai[k]], b[o.bi[k]]
		switch o.Kind {
		case BinAdd:
			yd[k] = x + z
		case BinSub:
			yd[k] = x - z
		case BinMul:
			yd[k] = x * z
		case BinDiv:
			yd[k] = x / z
		}
	}
	return y, nil
}

// Backward implements autograd.Op: ∂(a±b) is ±g, ∂(a⊙b) is g⊙b and g⊙a,
// ∂(a/b) is g/b and −g·a/b², each summed over the axes its operand was
// broadcast along.
func (o *BroadcastOp[T]) Backward(in []*tensor.Tensor[T], out, gout *tensor.Tensor[T], need []bool) []*tensor.Tensor[T] {
	grads := make([]*tensor.Tensor[T], 2)
	a, b, g := in[0].Data(), in[1].Data(), gout.Data()
	for i := range grads {
		if !need[i] {
			continue
		}
		d := tensor.New[T](in[i].Shape()...)
		dd := d.Data()
		idx := o.ai
		if i == 1 {
			idx = o.bi
		}
		for k, gk := range g {
			x, z := a[o.ai[k]], b[o.bi[k]]
			var v T
			switch {
			case o.Kind == BinAdd || o.Kind == BinSub && i == 0:
				v = gk
			case o.Kind == BinSub:
				v = -gk
			case o.Kind == BinMul && i == 0:
				v = gk * z
			case o.Kind == BinMul:
				v = gk * x
			case i == 0: // div
				v = gk / z
			default:
				v = -gk * x / (z * z)
			}
			dd[idx[k]] += v
		}
		grads[i] = d
	}
	return grads
}

// MathFn names an element-wise function of UnaryMathOp.
type MathFn string

// The functions of UnaryMathOp.
const (
	MathExp MathFn = "exp"
	MathLog MathFn = "log"
)

// UnaryMathOp applies exp or the natural logarithm element by element
// (ONNX's Exp and Log), computed in float64. log of a negative number is
// NaN and log 0 is −Inf, as in NumPy.
type UnaryMathOp[T tensor.Float] struct {
	Fn MathFn
}

// Exp records e^x, element by element.
func Exp[T tensor.Float](name string, x *autograd.Var[T]) (*autograd.Var[T], error) {
	return apply(name, &UnaryMathOp[T]{Fn: MathExp}, x)
}

// Log records ln x, element by element.
func Log[T tensor.Float](name string, x *autograd.Var[T]) (*autograd.Var[T], error) {
	return apply(name, &UnaryMathOp[T]{Fn: MathLog}, x)
}

// Name implements autograd.Op.
func (o *UnaryMathOp[T]) Name() string { return string(o.Fn) }

// Forward implements autograd.Op.
func (o *UnaryMathOp[T]) Forward(in []*tensor.Tensor[T]) (*tensor.Tensor[T], error) {
	if err := wantInputs(o.Name(), in, 1); err != nil {
		return nil, err
	}
	var f func(float64) float64
	switch o.Fn {
	case MathExp:
		f = math.Exp
	case MathLog:
		f = math.Log
	default:
		return nil, fmt.Errorf("unary math: unknown function %q (want exp or log)", o.Fn)
	}
	y := tensor.Empty[T](in[0].Shape()...)
	yd := y.Data()
	for k, v := range in[0].Data() {
		yd[k] = T(f(float64(v)))
	}
	return y, nil
}

// Backward implements autograd.Op: d e^x = e^x (the output), d ln x = 1/x.
func (o *UnaryMathOp[T]) Backward(in []*tensor.Tensor[T], out, gout *tensor.Tensor[T], need []bool) []*tensor.Tensor[T] {
	if !need[0] {
		return []*tensor.Tensor[T]{nil}
	}
	d := tensor.Empty[T](in[0].Shape()...)
	dd, x, y := d.Data(), in[0].Data(), out.Data()
	for k, g := range gout.Data() {
		if o.Fn == MathExp {
			dd[k] = g * y[k]
		} else {
			dd[k] = g / x[k]
		}
	}
	return []*tensor.Tensor[T]{d}
}

// TransposeOp permutes the axes of a tensor (numpy.transpose, ONNX's
// Transpose): output axis i is input axis Perm[i]. Its gradient is the
// upstream gradient permuted back.
type TransposeOp[T tensor.Float] struct {
	Perm []int

	src []int // output element k reads input element src[k]
}

// Transpose records x with its axes permuted by perm; a nil perm reverses
// them.
func Transpose[T tensor.Float](name string, x *autograd.Var[T], perm []int) (*autograd.Var[T], error) {
	return apply(name, &TransposeOp[T]{Perm: perm}, x)
}

// Name implements autograd.Op.
func (o *TransposeOp[T]) Name() string { return "transpose" }

// Forward implements autograd.Op.
func (o *TransposeOp[T]) Forward(in []*tensor.Tensor[T]) (*tensor.Tensor[T], error) {
	if err := wantInputs("transpose", in, 1); err != nil {
		return nil, err
	}
	xs := in[0].Shape()
	perm := o.Perm
	if perm == nil {
		for i := range xs {
			perm = append(perm, len(xs)-1-i)
		}
	}
	seen := make([]bool, len(xs))
	if len(perm) != len(xs) {
		return nil, fmt.Errorf("transpose: permutation %v has %d entries for an input of %d axes %s", perm, len(perm), len(xs), tensor.FormatShape(xs))
	}
	for _, p := range perm {
		if p < 0 || p >= len(xs) || seen[p] {
			return nil, fmt.Errorf("transpose: %v is not a permutation of the input's axes 0..%d", perm, len(xs)-1)
		}
		seen[p] = true
	}
	out := make([]int, len(xs))
	for i, p := range perm {
		out[i] = xs[p]
	}
	// input strides, taken in the output's axis order
	inStride := make([]int, len(xs))
	s := 1
	for i := len(xs) - 1; i >= 0; i-- {
		inStride[i] = s
		s *= xs[i]
	}
	strides := make([]int, len(out))
	for i, p := range perm {
		strides[i] = inStride[p]
	}
	n := tensor.NumElements(out)
	o.src = make([]int, n)
	pos := make([]int, len(out))
	off := 0
	for k := range n {
		o.src[k] = off
		for ax := len(out) - 1; ax >= 0; ax-- {
			pos[ax]++
			off += strides[ax]
			if pos[ax] < out[ax] {
				break
			}
			off -= strides[ax] * pos[ax]
			pos[ax] = 0
		}
	}
	y := tensor.Empty[T](out...)
	x, yd := in[0].Data(), y.Data()
	for k, s := range o.src {
		yd[k] = x[s]
	}
	return y, nil
}

// Backward implements autograd.Op: the gradient goes back to the element
// each output element was read from.
func (o *TransposeOp[T]) Backward(in []*tensor.Tensor[T], out, gout *tensor.Tensor[T], need []bool) []*tensor.Tensor[T] {
	if !need[0] {
		return []*tensor.Tensor[T]{nil}
	}
	d := tensor.Empty[T](in[0].Shape()...)
	dd := d.Data()
	for k, g := range gout.Data() {
		dd[o.src[k]] = g
	}
	return []*tensor.Tensor[T]{d}
}

// BatchMatMulOp is numpy.matmul (ONNX's MatMul) for operands of any rank:
// a 1-D left operand is a row, a 1-D right operand a column (their axis is
// dropped from the result), and the leading (batch) axes of both operands
// broadcast against each other. MatMul covers the vector and matrix cases
// the worked problems use; this op adds the stacks of matrices an
// imported model may hold.
type BatchMatMulOp[T tensor.Float] struct {
	m, k, n        int
	batch          []int // broadcast batch shape
	aOff, bOff     []int // per batch, the offset of its matrix in a and in b
	aVec, bVec     bool
	aShape, bShape []int
}

// BatchMatMul records numpy.matmul(a, b) as node name.
func BatchMatMul[T tensor.Float](name string, a, b *autograd.Var[T]) (*autograd.Var[T], error) {
	return apply(name, &BatchMatMulOp[T]{}, a, b)
}

// Name implements autograd.Op.
func (o *BatchMatMulOp[T]) Name() string { return "batch_matmul" }

// Forward implements autograd.Op.
func (o *BatchMatMulOp[T]) Forward(in []*tensor.Tensor[T]) (*tensor.Tensor[T], error) {
	if err := wantInputs("batch_matmul", in, 2); err != nil {
		return nil, err
	}
	as, bs := slices.Clone(in[0].Shape()), slices.Clone(in[1].Shape())
	o.aShape, o.bShape = as, bs
	if len(as) == 0 || len(bs) == 0 {
		return nil, fmt.Errorf("batch_matmul: operands of shapes %s and %s: scalars have no matrix product", tensor.FormatShape(as), tensor.FormatShape(bs))
	}
	o.aVec, o.bVec = len(as) == 1, len(bs) == 1
	if o.aVec {
		as = []int{1, as[0]}
	}
	if o.bVec {
		bs = []int{bs[0], 1}
	}
	o.m, o.k = as[len(as)-2], as[len(as)-1]
	if bs[len(bs)-2] != o.k {
		return nil, &tensor.ShapeError{Op: "batch_matmul", Tensor: "right operand",
			Want: fmt.Sprintf("%d rows (the left operand %s has %d columns)", o.k, tensor.FormatShape(in[0].Shape()), o.k), Got: in[1].Shape()}
	}
	o.n = bs[len(bs)-1]
	ab, bb := as[:len(as)-2], bs[:len(bs)-2]
	batch, err := BroadcastShape(ab, bb)
	if err != nil {
		return nil, fmt.Errorf("batch_matmul: batch axes: %w", err)
	}
	o.batch = batch
	ai, bi := broadcastIndex(ab, batch), broadcastIndex(bb, batch)
	o.aOff, o.bOff = make([]int, len(ai)), make([]int, len(bi))
	for i := range ai {
		o.aOff[i], o.bOff[i] = ai[i]*o.m*o.k, bi[i]*o.k*o.n
	}
	shape := slices.Clone(batch)
	if !o.aVec {
		shape = append(shape, o.m)
	}
	if !o.bVec {
		shape = append(shape, o.n)
	}
	y := tensor.New[T](shape...)
	a, b, yd := in[0].Data(), in[1].Data(), y.Data()
	for p := range o.aOff {
		am, bm, ym := a[o.aOff[p]:], b[o.bOff[p]:], yd[p*o.m*o.n:]
		for i := range o.m {
			for l := range o.k {
				x := am[i*o.k+l]
				if x == 0 {
					continue
				}
				row := bm[l*o.n : (l+1)*o.n]
				yr := ym[i*o.n : (i+1)*o.n]
				for j, v := range row {
					yr[j] += x * v
				}
			}
		}
	}
	return y, nil
}

// Backward implements autograd.Op: ∂A = G·Bᵀ and ∂B = Aᵀ·G per batch,
// summed over the batches an operand was broadcast to.
func (o *BatchMatMulOp[T]) Backward(in []*tensor.Tensor[T], out, gout *tensor.Tensor[T], need []bool) []*tensor.Tensor[T] {
	grads := make([]*tensor.Tensor[T], 2)
	a, b, g := in[0].Data(), in[1].Data(), gout.Data()
	var da, db []T
	if need[0] {
		grads[0] = tensor.New[T](o.aShape...)
		da = grads[0].Data()
	}
	if need[1] {
		grads[1] = tensor.New[T](o.bShape...)
		db = grads[1].Data()
	}
	for p := range o.aOff {
		am, bm, gm := a[o.aOff[p]:], b[o.bOff[p]:], g[p*o.m*o.n:]
		for i := range o.m {
			for l := range o.k {
				var s T
				for j := range o.n {
					gij := gm[i*o.n+j]
					s += gij * bm[l*o.n+j]
					if db != nil {
						db[o.bOff[p]+l*o.n+j] += am[i*o.k+l] * gij
					}
				}
				if da != nil {
					da[o.aOff[p]+i*o.k+l] += s
				}
			}
		}
	}
	return grads
}
