package ops

import (
	"fmt"
	"math/rand/v2"

	"github.com/backprop-dev/backprop/autograd"
	"github.com/backprop-dev/backprop/expr"
	"github.com/backprop-dev/backprop/tensor"
)

// DropoutOp is inverted dropout, torch.nn.functional.dropout: in training
// mode every element is zeroed with probability P and the survivors are
// scaled by 1/(1−P), so that the expected value of every element is
// unchanged and evaluation needs no rescaling; in evaluation mode it is the
// identity. The mask is drawn in Forward from Rng, which the caller owns,
// so a run is reproducible from its seed; the same mask (kept in the op)
// multiplies the gradient in Backward. P = 1 zeroes everything, as PyTorch
// does.
type DropoutOp[T tensor.Float] struct {
	P        float64    // probability of zeroing an element, in [0, 1]
	Training bool       // drop and rescale; otherwise pass x through
	Rng      *rand.Rand // source of the mask; needed when training with 0 < P < 1

	// MaskName names the 0/1 keep mask in the op's rules and RuleValues
	// ("m" when empty).
	MaskName string

	mask  []T // per element 0 or 1/(1−P); nil for the identity
	scale float64
	shape []int
}

// Dropout records dropout of x as node name; see DropoutOp.
func Dropout[T tensor.Float](name string, x *autograd.Var[T], p float64, training bool, rng *rand.Rand) (*autograd.Var[T], error) {
	return apply(name, &DropoutOp[T]{P: p, Training: training, Rng: rng}, x)
}

// Name implements autograd.Op.
func (o *DropoutOp[T]) Name() string { return "dropout" }

// Mask returns the factor every element was multiplied by in the last
// Forward (0 for a dropped element, 1/(1−P) for a kept one), or nil when
// the op was the identity. The slice belongs to the op.
func (o *DropoutOp[T]) Mask() []T { return o.mask }

// Forward implements autograd.Op. Element i is kept when the next
// Rng.Float64() is at least P, so kept elements have probability 1−P.
func (o *DropoutOp[T]) Forward(in []*tensor.Tensor[T]) (*tensor.Tensor[T], error) {
	if err := wantInputs("dropout", in, 1); err != nil {
		return nil, err
	}
	if !(o.P >= 0 && o.P <= 1) {
		return nil, fmt.Errorf("dropout: probability must be between 0 and 1, got %g", o.P)
	}
	x := in[0]
	o.mask = nil
	o.shape = append([]int(nil), x.Shape()...)
	if !o.Training || o.P == 0 {
		return x.Clone(), nil
	}
	o.mask = make([]T, x.Len())
	out := tensor.New[T](x.Shape()...)
	if o.P == 1 {
		return out, nil
	}
	if o.Rng == nil {
		return nil, fmt.Errorf("dropout: training with p = %g needs a random source, Rng is nil", o.P)
	}
	o.scale = 1 / (1 - o.P)
	s := T(o.scale)
	od := out.Data()
	for i, v := range x.Data() {
		if o.Rng.Float64() >= o.P {
			o.mask[i] = s
			od[i] = v * s
		}
	}
	return out, nil
}

// Backward implements autograd.Op: the upstream gradient times the same
// mask (the identity in evaluation mode).
func (o *DropoutOp[T]) Backward(in []*tensor.Tensor[T], out, gout *tensor.Tensor[T], need []bool) []*tensor.Tensor[T] {
	if o.mask == nil {
		return []*tensor.Tensor[T]{gout.Clone()}
	}
	g := tensor.New[T](gout.Shape()...)
	gd := g.Data()
	for i, v := range gout.Data() {
		gd[i] = v * o.mask[i]
	}
	return []*tensor.Tensor[T]{g}
}

// times is e scaled by the mask at k: 0, e itself, or e·1/(1−P).
func (o *DropoutOp[T]) times(e expr.Expr, k int) expr.Expr {
	if o.mask == nil {
		return e
	}
	if o.mask[k] == 0 {
		return expr.Num(0)
	}
	return expr.Product{e, expr.Num(float64(o.mask[k]))}
}

// Formula implements explain.Explainer: m ⊙ x / (1 − p) with m the 0/1
// keep mask, or x in evaluation mode.
func (o *DropoutOp[T]) Formula(in []expr.Expr) expr.Expr {
	if o.mask == nil {
		return in[0]
	}
	return expr.Quot{A: expr.Hadamard{expr.Raw{Plain: "mask", TeX: `\mathbf{m}`}, in[0]}, B: expr.Num(1 - o.P)}
}

// ForwardElem implements explain.Explainer: 0 for a dropped element,
// x·1/(1−P) for a kept one.
func (o *DropoutOp[T]) ForwardElem(k int, in func(i, m int) expr.Expr) expr.Expr {
	return o.times(in(0, k), k)
}

// BackwardFormula implements explain.Explainer: the upstream gradient
// through the same mask and scale.
func (o *DropoutOp[T]) BackwardFormula(i int, in []expr.Expr, out, gout expr.Expr) expr.Expr {
	if o.mask == nil {
		return gout
	}
	return expr.Quot{A: expr.Hadamard{expr.Raw{Plain: "mask", TeX: `\mathbf{m}`}, gout}, B: expr.Num(1 - o.P)}
}

// BackwardElem implements explain.Explainer.
func (o *DropoutOp[T]) BackwardElem(i, m int, in func(i, m int) expr.Expr, out, gout func(k int) expr.Expr) expr.Expr {
	return o.times(gout(m), m)
}

func (o *DropoutOp[T]) maskName() string {
	if o.MaskName == "" {
		return "m"
	}
	return o.MaskName
}

// RuleValues returns the keep mask the rules name (MaskName, "m"): 1 for
// a kept element, 0 for a dropped one, shaped as the input. It is empty
// when the op was the identity.
func (o *DropoutOp[T]) RuleValues() map[string]*tensor.Tensor[float64] {
	if o.mask == nil {
		return nil
	}
	m := tensor.New[float64](o.shape...)
	for k, v := range o.mask {
		if v != 0 {
			m.Data()[k] = 1
		}
	}
	return map[string]*tensor.Tensor[float64]{o.maskName(): m}
}

// ruled is the rule of an element e at idx: m[idx]·e/(1 − p) in training,
// e itself in evaluation, 0 when everything is dropped.
func (o *DropoutOp[T]) ruled(e expr.Expr, idx []string) (expr.Expr, string) {
	switch {
	case o.mask == nil:
		return e, "dropout is the identity in evaluation mode"
	case o.P == 1:
		return expr.Num(0), "p = 1 drops every element"
	}
	m := expr.Ref{Name: o.maskName(), Sym: idx}
	if len(idx) == 0 {
		m.Sym = nil
	}
	return expr.Quot{A: expr.Product{m, e}, B: expr.Num(1 - o.P)},
		fmt.Sprintf("%s is the keep mask drawn in this pass (1 keeps an element, 0 drops it, each dropped with probability p = %g); survivors are divided by 1 − p", o.maskName(), o.P)
}

// ForwardRule implements m[idx]·x[idx]/(1 − p).
func (o *DropoutOp[T]) ForwardRule(out []string, in InputIndex, fresh func(string) string) (expr.Expr, string) {
	return o.ruled(in(0, out), out)
}

// BackwardRule implements m[idx]·∂J/∂y[idx]/(1 − p).
func (o *DropoutOp[T]) BackwardRule(i int, idx []string, in InputIndex, out, gout Index, fresh func(string) string) (expr.Expr, string) {
	return o.ruled(gout(idx), idx)
}
