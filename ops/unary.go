package ops

import (
	"math"

	"github.com/backprop-dev/backprop/autograd"
	"github.com/backprop-dev/backprop/expr"
	"github.com/backprop-dev/backprop/internal/parallel"
	"github.com/backprop-dev/backprop/internal/vec"
	"github.com/backprop-dev/backprop/tensor"
)

// UnaryOp applies an element-wise function. Sigmoid and log-sigmoid are
// computed in forms that do not cancel: 1 − σ(a) is σ(−a), log σ(a) is
// −softplus(−a), so float32 keeps its relative precision near saturation.
type UnaryOp[T tensor.Float] struct {
	Fn    Activation
	Slope float64 // negative slope of LeakyReLU

	// comp is σ(−x) = 1 − σ(x), kept by a float32 sigmoid's Forward
	// (computed with σ(x) from one exponential per element) for Backward,
	// which releases it after use.
	comp *tensor.Tensor[T]

	recyclable
	pass unaryPass[T] // the parallel pass under way
}

// unaryPass is one parallel pass of a UnaryOp over its slices (a Ranger,
// so that the pass allocates no closure).
type unaryPass[T tensor.Float] struct {
	o              *UnaryOp[T]
	kind           int // unaryForward, …
	x, y, up, d, c []T
}

const (
	unaryForward     = iota // d = fn(x)
	unarySigmoidPair        // y = σ(x), c = σ(−x) (float32)
	unaryBackward           // d = up·fn'(x)
	unarySigmoidGrad        // d = up·(y·c)
)

// Range implements parallel.Ranger.
func (p *unaryPass[T]) Range(lo, hi int) {
	switch p.kind {
	case unaryForward:
		p.o.forward(p.x[lo:hi], p.d[lo:hi])
	case unarySigmoidPair:
		vec.SigmoidPair(any(p.x).([]float32)[lo:hi], any(p.y).([]float32)[lo:hi], any(p.c).([]float32)[lo:hi])
	case unaryBackward:
		p.o.backward(p.x[lo:hi], p.y[lo:hi], p.up[lo:hi], p.d[lo:hi])
	case unarySigmoidGrad:
		sigmoidGrad(p.y[lo:hi], p.c[lo:hi], p.up[lo:hi], p.d[lo:hi])
	}
}

// run runs the pass of the given kind over n elements and drops its
// slices.
func (o *UnaryOp[T]) run(kind int, x, y, up, d, c []T) {
	o.pass = unaryPass[T]{o: o, kind: kind, x: x, y: y, up: up, d: d, c: c}
	parallel.ChunksRanger(len(x), &o.pass)
	o.pass = unaryPass[T]{}
}

// newUnary returns a UnaryOp of fn, recycled if one is free.
func newUnary[T tensor.Float](fn Activation, slope float64) *UnaryOp[T] {
	o := newOp[UnaryOp[T]]()
	o.Fn, o.Slope, o.pooled = fn, slope, true
	return o
}

// Recycle implements autograd.Recycler.
func (o *UnaryOp[T]) Recycle() {
	if !o.pooled {
		return
	}
	tensor.Release(o.comp)
	*o = UnaryOp[T]{}
	putOp(o)
}

// Unary records fn(x) as node name.
func Unary[T tensor.Float](name string, fn Activation, x *autograd.Var[T]) (*autograd.Var[T], error) {
	return apply(name, newUnary[T](fn, 0), x)
}

// ReLU records max(x, 0).
func ReLU[T tensor.Float](name string, x *autograd.Var[T]) (*autograd.Var[T], error) {
	return Unary(name, ActReLU, x)
}

// LeakyReLU records x for x > 0 and slope·x otherwise.
func LeakyReLU[T tensor.Float](name string, x *autograd.Var[T], slope float64) (*autograd.Var[T], error) {
	return apply(name, newUnary[T](ActLeakyReLU, slope), x)
}

// Sigmoid records σ(x) = 1/(1+e^−x).
func Sigmoid[T tensor.Float](name string, x *autograd.Var[T]) (*autograd.Var[T], error) {
	return Unary(name, ActSigmoid, x)
}

// Tanh records tanh(x).
func Tanh[T tensor.Float](name string, x *autograd.Var[T]) (*autograd.Var[T], error) {
	return Unary(name, ActTanh, x)
}

// LogSigmoid records log σ(x) without forming σ(x) first.
func LogSigmoid[T tensor.Float](name string, x *autograd.Var[T]) (*autograd.Var[T], error) {
	return Unary(name, ActLogSigmoid, x)
}

// SigmoidF is σ(x) evaluated without overflow for either sign of x.
func SigmoidF(x float64) float64 {
	if x >= 0 {
		return 1 / (1 + math.Exp(-x))
	}
	e := math.Exp(x)
	return e / (1 + e)
}

// Softplus is log(1 + e^x) without overflow or cancellation.
func Softplus(x float64) float64 {
	if x > 0 {
		return x + math.Log1p(math.Exp(-x))
	}
	return math.Log1p(math.Exp(x))
}

// LogSigmoidF is log σ(x) = −softplus(−x).
func LogSigmoidF(x float64) float64 { return -Softplus(-x) }

// info is the descriptor of o's function (Activations).
func (o *UnaryOp[T]) info() ActivationInfo {
	if info, ok := Activations[o.Fn]; ok {
		return info
	}
	return Activations[ActIdentity]
}

func (o *UnaryOp[T]) f(x float64) float64 { return o.info().F(x, o.Slope) }

// df is the derivative at input x (output y given for reuse).
func (o *UnaryOp[T]) df(x, y float64) float64 { return o.info().DF(x, y, o.Slope) }

// Name implements autograd.Op.
func (o *UnaryOp[T]) Name() string { return string(o.Fn) }

// Forward implements autograd.Op.
func (o *UnaryOp[T]) Forward(in []*tensor.Tensor[T]) (*tensor.Tensor[T], error) {
	if err := wantInputs(o.Name(), in, 1); err != nil {
		return nil, err
	}
	out := tensor.Empty[T](in[0].Shape()...)
	x, od := in[0].Data(), out.Data()
	if o.comp != nil { // a Forward without Backward: drop what it kept
		tensor.Release(o.comp)
		o.comp = nil
	}
	if _, ok := any(x).([]float32); ok && o.Fn == ActSigmoid {
		comp := tensor.Empty[T](in[0].Shape()...)
		o.run(unarySigmoidPair, x, od, nil, nil, comp.Data())
		o.comp = comp
		return out, nil
	}
	o.run(unaryForward, x, nil, nil, od, nil)
	return out, nil
}

// forward writes fn(x) into od: float32 through the descriptor's
// Forward32 kernel where it has one (package vec's SIMD ReLU and
// LeakyReLU, which multiplies by the float32 slope as PyTorch's kernel
// does; the float32 sigmoid and tanh of fastmath.go), a gate (ReLU,
// LeakyReLU) without a float64 round trip, anything else through F.
func (o *UnaryOp[T]) forward(x, od []T) {
	info := o.info()
	if x32, ok := any(x).([]float32); ok && info.Forward32 != nil {
		info.Forward32(x32, any(od).([]float32), float32(o.Slope))
		return
	}
	if info.Gate {
		slope := o.Slope
		for i, v := range x {
			switch {
			case v > 0:
				od[i] = v
			case slope == 0:
				od[i] = 0
			default:
				od[i] = T(slope * float64(v))
			}
		}
		return
	}
	for i, v := range x {
		od[i] = T(info.F(float64(v), o.Slope))
	}
}

// Backward implements autograd.Op.
func (o *UnaryOp[T]) Backward(in []*tensor.Tensor[T], out, gout *tensor.Tensor[T], need []bool) []*tensor.Tensor[T] {
	grads := make([]*tensor.Tensor[T], 1)
	o.BackwardInto(grads, in, out, gout, need)
	return grads
}

// BackwardInto implements autograd.GradWriter.
func (o *UnaryOp[T]) BackwardInto(grads, in []*tensor.Tensor[T], out, gout *tensor.Tensor[T], need []bool) {
	g := tensor.Empty[T](in[0].Shape()...)
	grads[0] = g
	x, y, up, gd := in[0].Data(), out.Data(), gout.Data(), g.Data()
	if comp := o.comp; comp != nil {
		o.comp = nil
		if c := comp.Data(); len(c) == len(x) && o.Fn == ActSigmoid {
			// σ'(x)·up = (σ(x)·σ(−x))·up with Forward's σ(−x): the same
			// products as backward's sigmoidf(−x) path, bit for bit.
			o.run(unarySigmoidGrad, x, y, up, gd, c)
			tensor.Release(comp)
			return
		}
		tensor.Release(comp)
	}
	o.run(unaryBackward, x, y, up, gd, nil)
}

// sigmoidGrad writes up·(y·c) into gd: the sigmoid's input gradient from
// its output y = σ(x) and c = σ(−x).
func sigmoidGrad[T tensor.Float](y, c, up, gd []T) {
	c, up, gd = c[:len(y)], up[:len(y)], gd[:len(y)]
	for i, v := range y {
		gd[i] = up[i] * (v * c[i])
	}
}

// backward writes gout ⊙ fn'(x) into gd: float32 through the
// descriptor's Backward32 kernel where it has one, a gate by selecting
// (or scaling) the upstream gradient, anything else as up·DF, with DF in
// float64 (tanh's 1 − y² does not cancel near saturation). Backward uses
// the σ(−x) a float32 sigmoid's Forward kept instead, when it has it.
func (o *UnaryOp[T]) backward(x, y, up, gd []T) {
	info := o.info()
	if x32, ok := any(x).([]float32); ok && info.Backward32 != nil {
		info.Backward32(x32, any(y).([]float32), any(up).([]float32), any(gd).([]float32), float32(o.Slope))
		return
	}
	if info.Gate {
		slope := T(o.Slope)
		for i, v := range x {
			switch {
			case v > 0:
				gd[i] = up[i]
			case slope == 0:
				gd[i] = 0
			default:
				gd[i] = up[i] * slope
			}
		}
		return
	}
	for i := range gd {
		gd[i] = up[i] * T(info.DF(float64(x[i]), float64(y[i]), o.Slope))
	}
}

// call is fn(x) as a formula: the descriptor's name applied to x (and the
// slope), x itself for the identity.
func (o *UnaryOp[T]) call(x expr.Expr) expr.Expr {
	info := o.info()
	if info.Text == "" {
		return x
	}
	args := []expr.Expr{x}
	if info.Sloped {
		args = append(args, expr.Num(o.Slope))
	}
	return expr.Call{Fn: info.Text, Args: args}
}

// deriv is the local derivative written with the input x and output y:
// 1[x > 0] for ReLU, y(1 − y) for σ, 1 − y² for tanh, σ(−x) for log σ.
func (o *UnaryOp[T]) deriv(x, y expr.Expr, whole bool) expr.Expr {
	return o.info().Deriv(x, y, o.Slope, whole)
}

// Formula implements explain.Explainer.
func (o *UnaryOp[T]) Formula(in []expr.Expr) expr.Expr { return o.call(in[0]) }

// ForwardElem implements explain.Explainer.
func (o *UnaryOp[T]) ForwardElem(k int, in func(i, m int) expr.Expr) expr.Expr {
	return o.call(in(0, k))
}

// BackwardFormula implements explain.Explainer.
func (o *UnaryOp[T]) BackwardFormula(i int, in []expr.Expr, out, gout expr.Expr) expr.Expr {
	return expr.Hadamard{gout, o.deriv(in[0], out, true)}
}

// BackwardElem implements explain.Explainer.
func (o *UnaryOp[T]) BackwardElem(i, m int, in func(i, m int) expr.Expr, out, gout func(k int) expr.Expr) expr.Expr {
	return expr.Product{gout(m), o.deriv(in(0, m), out(m), false)}
}
