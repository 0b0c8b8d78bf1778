package ops

import (
	"math"

	"github.com/backprop-dev/backprop/autograd"
	"github.com/backprop-dev/backprop/expr"
	"github.com/backprop-dev/backprop/internal/parallel"
	"github.com/backprop-dev/backprop/internal/vec"
	"github.com/backprop-dev/backprop/tensor"
)

// Activation names an element-wise function.
type Activation string

// The element-wise functions of the engine.
const (
	ActReLU       Activation = "relu"
	ActLeakyReLU  Activation = "leaky_relu"
	ActSigmoid    Activation = "sigmoid"
	ActTanh       Activation = "tanh"
	ActLogSigmoid Activation = "log_sigmoid"
	ActIdentity   Activation = "identity"
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
}

// Unary records fn(x) as node name.
func Unary[T tensor.Float](name string, fn Activation, x *autograd.Var[T]) (*autograd.Var[T], error) {
	return apply(name, &UnaryOp[T]{Fn: fn}, x)
}

// ReLU records max(x, 0).
func ReLU[T tensor.Float](name string, x *autograd.Var[T]) (*autograd.Var[T], error) {
	return Unary(name, ActReLU, x)
}

// LeakyReLU records x for x > 0 and slope·x otherwise.
func LeakyReLU[T tensor.Float](name string, x *autograd.Var[T], slope float64) (*autograd.Var[T], error) {
	return apply(name, &UnaryOp[T]{Fn: ActLeakyReLU, Slope: slope}, x)
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

func (o *UnaryOp[T]) f(x float64) float64 {
	switch o.Fn {
	case ActReLU:
		return math.Max(x, 0)
	case ActLeakyReLU:
		if x > 0 {
			return x
		}
		return o.Slope * x
	case ActSigmoid:
		return SigmoidF(x)
	case ActTanh:
		return math.Tanh(x)
	case ActLogSigmoid:
		return LogSigmoidF(x)
	}
	return x
}

// df is the derivative at input x (output y given for reuse).
func (o *UnaryOp[T]) df(x, y float64) float64 {
	switch o.Fn {
	case ActReLU:
		if x > 0 {
			return 1
		}
		return 0
	case ActLeakyReLU:
		if x > 0 {
			return 1
		}
		return o.Slope
	case ActSigmoid:
		return y * SigmoidF(-x) // σ(x)(1−σ(x)) with 1−σ(x) = σ(−x)
	case ActTanh:
		return 1 - y*y
	case ActLogSigmoid:
		return SigmoidF(-x)
	}
	return 1
}

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
	if x32, ok := any(x).([]float32); ok && o.Fn == ActSigmoid {
		comp := tensor.Empty[T](in[0].Shape()...)
		o32, c32 := any(od).([]float32), any(comp.Data()).([]float32)
		parallel.Chunks(len(x), func(lo, hi int) { vec.SigmoidPair(x32[lo:hi], o32[lo:hi], c32[lo:hi]) })
		o.comp = comp
		return out, nil
	}
	parallel.Chunks(len(x), func(lo, hi int) { o.forward(x[lo:hi], od[lo:hi]) })
	return out, nil
}

// forward writes fn(x) into od. ReLU and LeakyReLU run without a float64
// round trip (float32 LeakyReLU multiplies by the float32 slope, as
// PyTorch's kernel does; float32 ReLU and LeakyReLU run package vec's SIMD
// kernels); float32 sigmoid and tanh use the float32 kernels of
// fastmath.go (Forward runs float32 sigmoid as vec.SigmoidPair instead).
func (o *UnaryOp[T]) forward(x, od []T) {
	switch o.Fn {
	case ActReLU: // the hot path of training
		if x32, ok := any(x).([]float32); ok {
			vec.ReLU(x32, any(od).([]float32))
			return
		}
		for i, v := range x {
			if v > 0 {
				od[i] = v
			} else {
				od[i] = 0
			}
		}
		return
	case ActLeakyReLU:
		if x32, ok := any(x).([]float32); ok {
			vec.LeakyReLU(x32, any(od).([]float32), float32(o.Slope))
			return
		}
		slope := o.Slope
		for i, v := range x {
			if v > 0 {
				od[i] = v
			} else {
				od[i] = T(slope * float64(v))
			}
		}
		return
	case ActSigmoid, ActTanh:
		if x32, ok := any(x).([]float32); ok {
			o32 := any(od).([]float32)
			if o.Fn == ActSigmoid {
				for i, v := range x32 {
					o32[i] = sigmoidf(v)
				}
			} else {
				for i, v := range x32 {
					o32[i] = tanhf(v)
				}
			}
			return
		}
	}
	for i, v := range x {
		od[i] = T(o.f(float64(v)))
	}
}

// Backward implements autograd.Op.
func (o *UnaryOp[T]) Backward(in []*tensor.Tensor[T], out, gout *tensor.Tensor[T], need []bool) []*tensor.Tensor[T] {
	g := tensor.Empty[T](in[0].Shape()...)
	x, y, up, gd := in[0].Data(), out.Data(), gout.Data(), g.Data()
	if comp := o.comp; comp != nil {
		o.comp = nil
		if c := comp.Data(); len(c) == len(x) && o.Fn == ActSigmoid {
			// σ'(x)·up = (σ(x)·σ(−x))·up with Forward's σ(−x): the same
			// products as backward's sigmoidf(−x) path, bit for bit.
			parallel.Chunks(len(x), func(lo, hi int) { sigmoidGrad(y[lo:hi], c[lo:hi], up[lo:hi], gd[lo:hi]) })
			tensor.Release(comp)
			return []*tensor.Tensor[T]{g}
		}
		tensor.Release(comp)
	}
	parallel.Chunks(len(x), func(lo, hi int) { o.backward(x[lo:hi], y[lo:hi], up[lo:hi], gd[lo:hi]) })
	return []*tensor.Tensor[T]{g}
}

// sigmoidGrad writes up·(y·c) into gd: the sigmoid's input gradient from
// its output y = σ(x) and c = σ(−x).
func sigmoidGrad[T tensor.Float](y, c, up, gd []T) {
	c, up, gd = c[:len(y)], up[:len(y)], gd[:len(y)]
	for i, v := range y {
		gd[i] = up[i] * (v * c[i])
	}
}

// backward writes gout ⊙ fn'(x) into gd, with the fast paths of forward:
// ReLU and LeakyReLU select or scale (exactly as the generic path; float32
// with package vec's SIMD kernels), tanh takes 1 − y² in float64 (no
// cancellation near saturation), float32 sigmoid takes y·σ(−x) with the
// float32 kernel (Backward uses the σ(−x) Forward kept instead, when it
// has it).
func (o *UnaryOp[T]) backward(x, y, up, gd []T) {
	switch o.Fn {
	case ActReLU:
		if x32, ok := any(x).([]float32); ok {
			vec.ReLUGrad(x32, any(up).([]float32), any(gd).([]float32))
			return
		}
		for i, v := range x {
			if v > 0 {
				gd[i] = up[i]
			} else {
				gd[i] = 0
			}
		}
		return
	case ActLeakyReLU:
		slope := T(o.Slope)
		if x32, ok := any(x).([]float32); ok {
			vec.LeakyReLUGrad(x32, any(up).([]float32), any(gd).([]float32), float32(slope))
			return
		}
		for i, v := range x {
			if v > 0 {
				gd[i] = up[i]
			} else {
				gd[i] = up[i] * slope
			}
		}
		return
	case ActTanh:
		for i, v := range y {
			yv := float64(v)
			gd[i] = up[i] * T(1-yv*yv)
		}
		return
	case ActSigmoid:
		if x32, ok := any(x).([]float32); ok {
			y32, u32, g32 := any(y).([]float32), any(up).([]float32), any(gd).([]float32)
			for i, v := range x32 {
				g32[i] = u32[i] * (y32[i] * sigmoidf(-v))
			}
			return
		}
	}
	for i := range gd {
		gd[i] = up[i] * T(o.df(float64(x[i]), float64(y[i])))
	}
}

func (o *UnaryOp[T]) call(x expr.Expr) expr.Expr {
	switch o.Fn {
	case ActReLU:
		return expr.Call{Fn: "ReLU", Args: []expr.Expr{x}}
	case ActLeakyReLU:
		return expr.Call{Fn: "LeakyReLU", Args: []expr.Expr{x, expr.Num(o.Slope)}}
	case ActSigmoid:
		return expr.Call{Fn: "σ", Args: []expr.Expr{x}}
	case ActTanh:
		return expr.Call{Fn: "tanh", Args: []expr.Expr{x}}
	case ActLogSigmoid:
		return expr.Call{Fn: "logσ", Args: []expr.Expr{x}}
	}
	return x
}

// deriv is the local derivative written with the input x and output y:
// 1[x > 0] for ReLU, y(1 − y) for σ, 1 − y² for tanh, σ(−x) for log σ.
func (o *UnaryOp[T]) deriv(x, y expr.Expr, whole bool) expr.Expr {
	mul := func(a, b expr.Expr) expr.Expr {
		if whole {
			return expr.Hadamard{a, b}
		}
		return expr.Product{a, b}
	}
	switch o.Fn {
	case ActReLU:
		return expr.Indicator{C: expr.Cond{X: x, Op: ">", Y: expr.Num(0)}}
	case ActLeakyReLU:
		return expr.Sum{expr.Indicator{C: expr.Cond{X: x, Op: ">", Y: expr.Num(0)}},
			expr.Product{expr.Num(o.Slope), expr.Indicator{C: expr.Cond{X: x, Op: "<=", Y: expr.Num(0)}}}}
	case ActSigmoid:
		return mul(y, expr.Diff{A: expr.Num(1), B: y})
	case ActTanh:
		return expr.Diff{A: expr.Num(1), B: mul(y, y)}
	case ActLogSigmoid:
		return expr.Call{Fn: "σ", Args: []expr.Expr{expr.Neg{X: x}}}
	}
	return expr.Num(1)
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
