package ops

import (
	"fmt"
	"math"

	"github.com/backprop-dev/backprop/autograd"
	"github.com/backprop-dev/backprop/expr"
	"github.com/backprop-dev/backprop/tensor"
)

// AddOp is the element-wise sum a + b of two tensors of one shape: the
// join of a residual connection (h + x). Each operand's gradient is the
// upstream gradient itself.
type AddOp[T tensor.Float] struct {
	names [2]string // the operands' names, for errors
}

// Add records a + b, element by element; a and b must have the same shape.
func Add[T tensor.Float](name string, a, b *autograd.Var[T]) (*autograd.Var[T], error) {
	return apply(name, &AddOp[T]{names: [2]string{a.Name, b.Name}}, a, b)
}

// Name implements autograd.Op.
func (o *AddOp[T]) Name() string { return "add" }

// sameShape checks that the second operand has the first one's shape,
// naming both in the error.
func sameShape[T tensor.Float](op string, names [2]string, in []*tensor.Tensor[T]) error {
	if err := wantInputs(op, in, 2); err != nil {
		return err
	}
	if !tensor.SameShape(in[0].Shape(), in[1].Shape()) {
		return &tensor.ShapeError{Op: op, Tensor: opName(names[1], "second operand"),
			Want: fmt.Sprintf("%s (the shape of %s)", tensor.FormatShape(in[0].Shape()), opName(names[0], "the first operand")), Got: in[1].Shape()}
	}
	return nil
}

// Forward implements autograd.Op.
func (o *AddOp[T]) Forward(in []*tensor.Tensor[T]) (*tensor.Tensor[T], error) {
	if err := sameShape("add", o.names, in); err != nil {
		return nil, err
	}
	out := tensor.Empty[T](in[0].Shape()...)
	a, b, od := in[0].Data(), in[1].Data(), out.Data()
	for i := range od {
		od[i] = a[i] + b[i]
	}
	return out, nil
}

// Backward implements autograd.Op: both gradients are the upstream
// gradient (autograd copies it where it must).
func (o *AddOp[T]) Backward(in []*tensor.Tensor[T], out, gout *tensor.Tensor[T], need []bool) []*tensor.Tensor[T] {
	grads := make([]*tensor.Tensor[T], 2)
	for i := range grads {
		if need[i] {
			grads[i] = gout
		}
	}
	return grads
}

// PassThrough reports that each operand's gradient is the upstream
// gradient unchanged, so a trace need not print it as a step of its own.
func (o *AddOp[T]) PassThrough(i int) bool { return true }

// Formula implements explain.Explainer.
func (o *AddOp[T]) Formula(in []expr.Expr) expr.Expr { return expr.Sum{in[0], in[1]} }

// ForwardElem implements explain.Explainer.
func (o *AddOp[T]) ForwardElem(k int, in func(i, m int) expr.Expr) expr.Expr {
	return expr.Sum{in(0, k), in(1, k)}
}

// BackwardFormula implements explain.Explainer.
func (o *AddOp[T]) BackwardFormula(i int, in []expr.Expr, out, gout expr.Expr) expr.Expr {
	return gout
}

// BackwardElem implements explain.Explainer.
func (o *AddOp[T]) BackwardElem(i, m int, in func(i, m int) expr.Expr, out, gout func(k int) expr.Expr) expr.Expr {
	return gout(m)
}

// ForwardRule implements the rule a[idx] + b[idx].
func (o *AddOp[T]) ForwardRule(out []string, in InputIndex, fresh func(string) string) (expr.Expr, string) {
	return expr.Sum{in(0, out), in(1, out)}, ""
}

// BackwardRule implements ∂J/∂a[idx] = ∂J/∂b[idx] = gout[idx].
func (o *AddOp[T]) BackwardRule(i int, idx []string, in InputIndex, out, gout Index, fresh func(string) string) (expr.Expr, string) {
	return gout(idx), ""
}

// MulOp is the element-wise product a ⊙ b of two tensors of one shape (a
// gate, or the product of two activations). The gradient of each operand
// is the upstream gradient times the other operand.
type MulOp[T tensor.Float] struct {
	names [2]string
}

// Mul records a ⊙ b, element by element; a and b must have the same shape.
func Mul[T tensor.Float](name string, a, b *autograd.Var[T]) (*autograd.Var[T], error) {
	return apply(name, &MulOp[T]{names: [2]string{a.Name, b.Name}}, a, b)
}

// Name implements autograd.Op.
func (o *MulOp[T]) Name() string { return "mul" }

// Forward implements autograd.Op.
func (o *MulOp[T]) Forward(in []*tensor.Tensor[T]) (*tensor.Tensor[T], error) {
	if err := sameShape("mul", o.names, in); err != nil {
		return nil, err
	}
	out := tensor.Empty[T](in[0].Shape()...)
	a, b, od := in[0].Data(), in[1].Data(), out.Data()
	for i := range od {
		od[i] = a[i] * b[i]
	}
	return out, nil
}

// Backward implements autograd.Op: da = g ⊙ b, db = g ⊙ a.
func (o *MulOp[T]) Backward(in []*tensor.Tensor[T], out, gout *tensor.Tensor[T], need []bool) []*tensor.Tensor[T] {
	grads := make([]*tensor.Tensor[T], 2)
	g := gout.Data()
	for i := range grads {
		if !need[i] {
			continue
		}
		d := tensor.Empty[T](in[i].Shape()...)
		other := in[1-i].Data()
		for k := range d.Data() {
			d.Data()[k] = g[k] * other[k]
		}
		grads[i] = d
	}
	return grads
}

// Formula implements explain.Explainer.
func (o *MulOp[T]) Formula(in []expr.Expr) expr.Expr { return expr.Hadamard{in[0], in[1]} }

// ForwardElem implements explain.Explainer.
func (o *MulOp[T]) ForwardElem(k int, in func(i, m int) expr.Expr) expr.Expr {
	return expr.Product{in(0, k), in(1, k)}
}

// BackwardFormula implements explain.Explainer: g ⊙ b for a, g ⊙ a for b.
func (o *MulOp[T]) BackwardFormula(i int, in []expr.Expr, out, gout expr.Expr) expr.Expr {
	return expr.Hadamard{gout, in[1-i]}
}

// BackwardElem implements explain.Explainer.
func (o *MulOp[T]) BackwardElem(i, m int, in func(i, m int) expr.Expr, out, gout func(k int) expr.Expr) expr.Expr {
	return expr.Product{gout(m), in(1-i, m)}
}

// ForwardRule implements the rule a[idx]·b[idx].
func (o *MulOp[T]) ForwardRule(out []string, in InputIndex, fresh func(string) string) (expr.Expr, string) {
	return expr.Product{in(0, out), in(1, out)}, ""
}

// BackwardRule implements ∂J/∂a[idx] = gout[idx]·b[idx] (and a for b).
func (o *MulOp[T]) BackwardRule(i int, idx []string, in InputIndex, out, gout Index, fresh func(string) string) (expr.Expr, string) {
	return expr.Product{gout(idx), in(1-i, idx)}, ""
}

// DropoutMaskOp is dropout with a mask the problem states: x ⊙ m · s with
// m a given tensor of zeros and ones (1 keeps an element) and s the scale
// of the survivors, 1/(1 − p) for inverted dropout or 1. Nothing is
// random, so a worked problem can print its mask and its reader can
// redo every number. The mask is data: it gets no gradient.
type DropoutMaskOp[T tensor.Float] struct {
	Scale float64
	names [2]string
}

// DropoutMask records x ⊙ mask · scale, with mask a 0/1 tensor of x's
// shape that gets no gradient.
func DropoutMask[T tensor.Float](name string, x, mask *autograd.Var[T], scale float64) (*autograd.Var[T], error) {
	return apply(name, &DropoutMaskOp[T]{Scale: scale, names: [2]string{x.Name, mask.Name}}, x, mask)
}

// Name implements autograd.Op.
func (o *DropoutMaskOp[T]) Name() string { return "dropout_mask" }

// Forward implements autograd.Op.
func (o *DropoutMaskOp[T]) Forward(in []*tensor.Tensor[T]) (*tensor.Tensor[T], error) {
	if err := wantInputs("dropout_mask", in, 2); err != nil {
		return nil, err
	}
	if !tensor.SameShape(in[0].Shape(), in[1].Shape()) {
		return nil, &tensor.ShapeError{Op: "dropout_mask", Tensor: opName(o.names[1], "mask"),
			Want: fmt.Sprintf("%s (the shape of %s)", tensor.FormatShape(in[0].Shape()), opName(o.names[0], "the input")), Got: in[1].Shape()}
	}
	if math.IsNaN(o.Scale) || math.IsInf(o.Scale, 0) || o.Scale < 0 {
		return nil, fmt.Errorf("dropout_mask: scale must be a finite number ≥ 0 (1/(1−p) for inverted dropout), got %g", o.Scale)
	}
	m := in[1].Data()
	for k, v := range m {
		if v != 0 && v != 1 {
			return nil, fmt.Errorf("dropout_mask: %s element %d is %g; a mask holds 0 (drop) or 1 (keep)", opName(o.names[1], "mask"), k, float64(v))
		}
	}
	out := tensor.Empty[T](in[0].Shape()...)
	s := T(o.Scale)
	for k, v := range in[0].Data() {
		out.Data()[k] = v * m[k] * s
	}
	return out, nil
}

// Backward implements autograd.Op: dx = g ⊙ m · s; the mask gets none.
func (o *DropoutMaskOp[T]) Backward(in []*tensor.Tensor[T], out, gout *tensor.Tensor[T], need []bool) []*tensor.Tensor[T] {
	grads := make([]*tensor.Tensor[T], 2)
	if !need[0] {
		return grads
	}
	d := tensor.Empty[T](in[0].Shape()...)
	m, s := in[1].Data(), T(o.Scale)
	for k, g := range gout.Data() {
		d.Data()[k] = g * m[k] * s
	}
	grads[0] = d
	return grads
}

func (o *DropoutMaskOp[T]) scaled(e expr.Expr) expr.Expr {
	if o.Scale == 1 {
		return e
	}
	if p, ok := e.(expr.Product); ok {
		return append(expr.Product{expr.Num(o.Scale)}, p...)
	}
	return expr.Product{expr.Num(o.Scale), e}
}

// Formula implements explain.Explainer: s·(x ⊙ m).
func (o *DropoutMaskOp[T]) Formula(in []expr.Expr) expr.Expr {
	h := expr.Hadamard{in[0], in[1]}
	if o.Scale == 1 {
		return h
	}
	return expr.Product{expr.Num(o.Scale), h}
}

// ForwardElem implements explain.Explainer: s·x[k]·m[k].
func (o *DropoutMaskOp[T]) ForwardElem(k int, in func(i, m int) expr.Expr) expr.Expr {
	return o.scaled(expr.Product{in(0, k), in(1, k)})
}

// BackwardFormula implements explain.Explainer: s·(g ⊙ m).
func (o *DropoutMaskOp[T]) BackwardFormula(i int, in []expr.Expr, out, gout expr.Expr) expr.Expr {
	h := expr.Hadamard{gout, in[1]}
	if o.Scale == 1 {
		return h
	}
	return expr.Product{expr.Num(o.Scale), h}
}

// BackwardElem implements explain.Explainer: s·g[m]·mask[m].
func (o *DropoutMaskOp[T]) BackwardElem(i, m int, in func(i, m int) expr.Expr, out, gout func(k int) expr.Expr) expr.Expr {
	return o.scaled(expr.Product{gout(m), in(1, m)})
}

// ForwardRule implements s·x[idx]·m[idx].
func (o *DropoutMaskOp[T]) ForwardRule(out []string, in InputIndex, fresh func(string) string) (expr.Expr, string) {
	return o.scaled(expr.Product{in(0, out), in(1, out)}), o.note()
}

// BackwardRule implements s·gout[idx]·m[idx]; the mask has no rule (it
// gets no gradient).
func (o *DropoutMaskOp[T]) BackwardRule(i int, idx []string, in InputIndex, out, gout Index, fresh func(string) string) (expr.Expr, string) {
	if i != 0 {
		return nil, ""
	}
	return o.scaled(expr.Product{gout(idx), in(1, idx)}), o.note()
}

func (o *DropoutMaskOp[T]) note() string {
	n := "the mask is given: 1 keeps an element, 0 drops it"
	if o.Scale != 1 {
		n += fmt.Sprintf("; kept elements are scaled by %g", o.Scale)
	}
	return n
}
