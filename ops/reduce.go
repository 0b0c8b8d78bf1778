package ops

import (
	"github.com/backprop-dev/backprop/autograd"
	"github.com/backprop-dev/backprop/expr"
	"github.com/backprop-dev/backprop/tensor"
)

// SumOp reduces x to a scalar: Σ x, or the mean when Mean is set.
type SumOp[T tensor.Float] struct {
	Mean  bool
	n     int
	shape []int
}

// Sum records Σ x as a scalar.
func Sum[T tensor.Float](name string, x *autograd.Var[T]) (*autograd.Var[T], error) {
	return apply(name, &SumOp[T]{}, x)
}

// Mean records the mean of x as a scalar.
func Mean[T tensor.Float](name string, x *autograd.Var[T]) (*autograd.Var[T], error) {
	return apply(name, &SumOp[T]{Mean: true}, x)
}

// Name implements autograd.Op.
func (o *SumOp[T]) Name() string {
	if o.Mean {
		return "mean"
	}
	return "sum"
}

// Forward implements autograd.Op (accumulating in float64).
func (o *SumOp[T]) Forward(in []*tensor.Tensor[T]) (*tensor.Tensor[T], error) {
	if err := wantInputs(o.Name(), in, 1); err != nil {
		return nil, err
	}
	o.n = in[0].Len()
	o.shape = in[0].Shape() // shared: shapes are never written in place
	s := 0.0
	for _, v := range in[0].Data() {
		s += float64(v)
	}
	if o.Mean && o.n > 0 {
		s /= float64(o.n)
	}
	return tensor.Scalar(T(s)), nil
}

func (o *SumOp[T]) scale() float64 {
	if o.Mean {
		return 1 / float64(o.n)
	}
	return 1
}

// Backward implements autograd.Op.
func (o *SumOp[T]) Backward(in []*tensor.Tensor[T], out, gout *tensor.Tensor[T], need []bool) []*tensor.Tensor[T] {
	g := tensor.New[T](in[0].Shape()...)
	g.Fill(gout.Data()[0] * T(o.scale()))
	return []*tensor.Tensor[T]{g}
}

// Formula implements explain.Explainer.
func (o *SumOp[T]) Formula(in []expr.Expr) expr.Expr {
	return expr.Call{Fn: o.Name(), Args: []expr.Expr{in[0]}}
}

// ForwardElem implements explain.Explainer.
func (o *SumOp[T]) ForwardElem(k int, in func(i, m int) expr.Expr) expr.Expr {
	terms := make([]expr.Expr, o.n)
	for m := range terms {
		terms[m] = in(0, m)
	}
	if o.Mean {
		return expr.Quot{A: sumOf(terms), B: expr.Num(o.n)}
	}
	return sumOf(terms)
}

// BackwardFormula implements explain.Explainer.
func (o *SumOp[T]) BackwardFormula(i int, in []expr.Expr, out, gout expr.Expr) expr.Expr {
	n := o.n
	ones := expr.Fn{Name: "𝟏", TeX: `\mathbf{1}`, Eval: func([]*tensor.Tensor[float64]) (*tensor.Tensor[float64], error) {
		t := tensor.New[float64](n)
		t.Fill(1)
		return t, nil
	}}
	if o.Mean {
		return expr.Product{expr.Quot{A: gout, B: expr.Num(o.n)}, ones}
	}
	return expr.Product{gout, ones}
}

// BackwardElem implements explain.Explainer.
func (o *SumOp[T]) BackwardElem(i, m int, in func(i, m int) expr.Expr, out, gout func(k int) expr.Expr) expr.Expr {
	if o.Mean {
		return expr.Quot{A: gout(0), B: expr.Num(o.n)}
	}
	return gout(0)
}

// ScaleOp multiplies by a constant: c·x (c = −1 turns σ(a) into σ(−a)).
type ScaleOp[T tensor.Float] struct{ C float64 }

// Scale records c·x.
func Scale[T tensor.Float](name string, x *autograd.Var[T], c float64) (*autograd.Var[T], error) {
	return apply(name, &ScaleOp[T]{C: c}, x)
}

// Name implements autograd.Op.
func (o *ScaleOp[T]) Name() string { return "scale" }

// Forward implements autograd.Op.
func (o *ScaleOp[T]) Forward(in []*tensor.Tensor[T]) (*tensor.Tensor[T], error) {
	if err := wantInputs("scale", in, 1); err != nil {
		return nil, err
	}
	out := in[0].Clone()
	for i := range out.Data() {
		out.Data()[i] *= T(o.C)
	}
	return out, nil
}

// Backward implements autograd.Op.
func (o *ScaleOp[T]) Backward(in []*tensor.Tensor[T], out, gout *tensor.Tensor[T], need []bool) []*tensor.Tensor[T] {
	g := gout.Clone()
	for i := range g.Data() {
		g.Data()[i] *= T(o.C)
	}
	return []*tensor.Tensor[T]{g}
}

func (o *ScaleOp[T]) times(x expr.Expr) expr.Expr {
	if o.C == -1 {
		return expr.Neg{X: x}
	}
	return expr.Product{expr.Num(o.C), x}
}

// Formula implements explain.Explainer.
func (o *ScaleOp[T]) Formula(in []expr.Expr) expr.Expr { return o.times(in[0]) }

// ForwardElem implements explain.Explainer.
func (o *ScaleOp[T]) ForwardElem(k int, in func(i, m int) expr.Expr) expr.Expr {
	return o.times(in(0, k))
}

// BackwardFormula implements explain.Explainer.
func (o *ScaleOp[T]) BackwardFormula(i int, in []expr.Expr, out, gout expr.Expr) expr.Expr {
	return o.times(gout)
}

// BackwardElem implements explain.Explainer.
func (o *ScaleOp[T]) BackwardElem(i, m int, in func(i, m int) expr.Expr, out, gout func(k int) expr.Expr) expr.Expr {
	return o.times(gout(m))
}

// BCEWithLogitsOp is binary cross-entropy on logits, averaged over the
// elements: mean(softplus(a) − t·a), which equals
// −mean(t·log σ(a) + (1−t)·log(1−σ(a))) without ever forming σ(a), so it
// neither overflows nor cancels. Its gradient is (σ(a) − t)/n.
type BCEWithLogitsOp[T tensor.Float] struct {
	n     int
	shape []int

	recyclable
}

// BCEWithLogits records the mean binary cross-entropy of logits against
// targets in [0, 1] (the targets get no gradient).
func BCEWithLogits[T tensor.Float](name string, logits, targets *autograd.Var[T]) (*autograd.Var[T], error) {
	o := newOp[BCEWithLogitsOp[T]]()
	o.pooled = true
	return apply(name, o, logits, targets)
}

// Recycle implements autograd.Recycler.
func (o *BCEWithLogitsOp[T]) Recycle() {
	if !o.pooled {
		return
	}
	*o = BCEWithLogitsOp[T]{}
	putOp(o)
}

// scalar returns a 0-dimensional tensor holding v, made by tensor.New so
// that releasing the graph recycles it.
func scalar[T tensor.Float](v T) *tensor.Tensor[T] {
	s := tensor.New[T]()
	s.Data()[0] = v
	return s
}

// Name implements autograd.Op.
func (o *BCEWithLogitsOp[T]) Name() string { return "bce_with_logits" }

// Forward implements autograd.Op.
func (o *BCEWithLogitsOp[T]) Forward(in []*tensor.Tensor[T]) (*tensor.Tensor[T], error) {
	if err := wantInputs("bce_with_logits", in, 2); err != nil {
		return nil, err
	}
	if !tensor.SameShape(in[0].Shape(), in[1].Shape()) {
		return nil, &tensor.ShapeError{Op: "bce_with_logits", Tensor: "targets", Want: tensor.FormatShape(in[0].Shape()) + " (the logits' shape)", Got: in[1].Shape()}
	}
	o.n = in[0].Len()
	o.shape = in[0].Shape() // shared: shapes are never written in place
	s := 0.0
	t := in[1].Data()
	for i, a := range in[0].Data() {
		s += Softplus(float64(a)) - float64(t[i])*float64(a)
	}
	return scalar(T(s / float64(o.n))), nil
}

// Backward implements autograd.Op. The target gradient −a/n is given too,
// for completeness.
func (o *BCEWithLogitsOp[T]) Backward(in []*tensor.Tensor[T], out, gout *tensor.Tensor[T], need []bool) []*tensor.Tensor[T] {
	grads := make([]*tensor.Tensor[T], 2)
	o.BackwardInto(grads, in, out, gout, need)
	return grads
}

// BackwardInto implements autograd.GradWriter.
func (o *BCEWithLogitsOp[T]) BackwardInto(grads, in []*tensor.Tensor[T], out, gout *tensor.Tensor[T], need []bool) {
	g := float64(gout.Data()[0]) / float64(o.n)
	a, t := in[0].Data(), in[1].Data()
	if need[0] {
		d := tensor.New[T](in[0].Shape()...)
		for i := range a {
			d.Data()[i] = T(g * (SigmoidF(float64(a[i])) - float64(t[i])))
		}
		grads[0] = d
	}
	if need[1] {
		d := tensor.New[T](in[1].Shape()...)
		for i := range a {
			d.Data()[i] = T(-g * float64(a[i]))
		}
		grads[1] = d
	}
}

// Formula implements explain.Explainer.
func (o *BCEWithLogitsOp[T]) Formula(in []expr.Expr) expr.Expr {
	return expr.Call{Fn: "mean", Args: []expr.Expr{expr.Diff{A: expr.Call{Fn: "softplus", Args: []expr.Expr{in[0]}}, B: expr.Hadamard{in[1], in[0]}}}}
}

// ForwardElem implements explain.Explainer.
func (o *BCEWithLogitsOp[T]) ForwardElem(k int, in func(i, m int) expr.Expr) expr.Expr {
	terms := make([]expr.Expr, o.n)
	for m := range terms {
		terms[m] = expr.Diff{A: expr.Call{Fn: "softplus", Args: []expr.Expr{in(0, m)}}, B: expr.Product{in(1, m), in(0, m)}}
	}
	if o.n == 1 {
		return terms[0]
	}
	return expr.Quot{A: sumOf(terms), B: expr.Num(o.n)}
}

// BackwardFormula implements explain.Explainer.
func (o *BCEWithLogitsOp[T]) BackwardFormula(i int, in []expr.Expr, out, gout expr.Expr) expr.Expr {
	if i == 1 {
		return expr.Product{expr.Neg{X: gout}, expr.Quot{A: in[0], B: expr.Num(o.n)}}
	}
	return expr.Product{gout, expr.Quot{A: expr.Diff{A: expr.Call{Fn: "σ", Args: []expr.Expr{in[0]}}, B: in[1]}, B: expr.Num(o.n)}}
}

// BackwardElem implements explain.Explainer.
func (o *BCEWithLogitsOp[T]) BackwardElem(i, m int, in func(i, m int) expr.Expr, out, gout func(k int) expr.Expr) expr.Expr {
	if i == 1 {
		return expr.Product{expr.Neg{X: gout(0)}, expr.Quot{A: in(0, m), B: expr.Num(o.n)}}
	}
	return expr.Product{gout(0), expr.Quot{A: expr.Diff{A: expr.Call{Fn: "σ", Args: []expr.Expr{in(0, m)}}, B: in(1, m)}, B: expr.Num(o.n)}}
}

// SquaredErrorOp is Σ (x − t)² divided by Divisor (1 for the seed's sum of
// squared errors; the batch size for "per image, averaged over the batch").
type SquaredErrorOp[T tensor.Float] struct {
	Divisor float64
	n       int
	shape   []int

	recyclable
}

// SquaredError records Σ(x − t)²/divisor; divisor 0 means 1.
func SquaredError[T tensor.Float](name string, x, t *autograd.Var[T], divisor float64) (*autograd.Var[T], error) {
	if divisor == 0 {
		divisor = 1
	}
	o := newOp[SquaredErrorOp[T]]()
	o.Divisor, o.pooled = divisor, true
	return apply(name, o, x, t)
}

// Recycle implements autograd.Recycler.
func (o *SquaredErrorOp[T]) Recycle() {
	if !o.pooled {
		return
	}
	*o = SquaredErrorOp[T]{}
	putOp(o)
}

// Name implements autograd.Op.
func (o *SquaredErrorOp[T]) Name() string { return "squared_error" }

// Forward implements autograd.Op.
func (o *SquaredErrorOp[T]) Forward(in []*tensor.Tensor[T]) (*tensor.Tensor[T], error) {
	if err := wantInputs("squared_error", in, 2); err != nil {
		return nil, err
	}
	if !tensor.SameShape(in[0].Shape(), in[1].Shape()) {
		return nil, &tensor.ShapeError{Op: "squared_error", Tensor: "target", Want: tensor.FormatShape(in[0].Shape()) + " (the prediction's shape)", Got: in[1].Shape()}
	}
	o.n = in[0].Len()
	o.shape = in[0].Shape() // shared: shapes are never written in place
	s := 0.0
	t := in[1].Data()
	for i, x := range in[0].Data() {
		d := float64(x) - float64(t[i])
		s += d * d
	}
	return scalar(T(s / o.Divisor)), nil
}

// Backward implements autograd.Op: 2(x − t)/divisor and its negative.
func (o *SquaredErrorOp[T]) Backward(in []*tensor.Tensor[T], out, gout *tensor.Tensor[T], need []bool) []*tensor.Tensor[T] {
	grads := make([]*tensor.Tensor[T], 2)
	o.BackwardInto(grads, in, out, gout, need)
	return grads
}

// BackwardInto implements autograd.GradWriter.
func (o *SquaredErrorOp[T]) BackwardInto(grads, in []*tensor.Tensor[T], out, gout *tensor.Tensor[T], need []bool) {
	c := 2 * gout.Data()[0] / T(o.Divisor)
	x, t := in[0].Data(), in[1].Data()
	for j, sign := range [2]T{1, -1} {
		if !need[j] {
			continue
		}
		d := tensor.New[T](in[j].Shape()...)
		for i := range x {
			d.Data()[i] = sign * c * (x[i] - t[i])
		}
		grads[j] = d
	}
}

func (o *SquaredErrorOp[T]) div(e expr.Expr) expr.Expr {
	if o.Divisor == 1 {
		return e
	}
	return expr.Quot{A: e, B: expr.Num(o.Divisor)}
}

// Formula implements explain.Explainer.
func (o *SquaredErrorOp[T]) Formula(in []expr.Expr) expr.Expr {
	return o.div(expr.Call{Fn: "sum", Args: []expr.Expr{expr.Raw{Plain: "(" + expr.String(in[0]) + " - " + expr.String(in[1]) + ")²",
		TeX: `\left(` + in[0].Render(expr.Style{LaTeX: true}) + " - " + in[1].Render(expr.Style{LaTeX: true}) + `\right)^{2}`}}})
}

// ForwardElem implements explain.Explainer.
func (o *SquaredErrorOp[T]) ForwardElem(k int, in func(i, m int) expr.Expr) expr.Expr {
	terms := make([]expr.Expr, o.n)
	for m := range terms {
		d := expr.Diff{A: in(0, m), B: in(1, m)}
		terms[m] = expr.Product{d, d}
	}
	return o.div(sumOf(terms))
}

// BackwardFormula implements explain.Explainer.
func (o *SquaredErrorOp[T]) BackwardFormula(i int, in []expr.Expr, out, gout expr.Expr) expr.Expr {
	d := expr.Diff{A: in[0], B: in[1]}
	if i == 1 {
		d = expr.Diff{A: in[1], B: in[0]}
	}
	return o.div(expr.Product{expr.Num(2), gout, d})
}

// BackwardElem implements explain.Explainer.
func (o *SquaredErrorOp[T]) BackwardElem(i, m int, in func(i, m int) expr.Expr, out, gout func(k int) expr.Expr) expr.Expr {
	d := expr.Diff{A: in(0, m), B: in(1, m)}
	if i == 1 {
		d = expr.Diff{A: in(1, m), B: in(0, m)}
	}
	return o.div(expr.Product{expr.Num(2), gout(0), d})
}

// mean is e/n when the op averages.
func (o *SumOp[T]) mean(e expr.Expr) expr.Expr {
	if !o.Mean {
		return e
	}
	return expr.Quot{A: e, B: expr.Num(o.n)}
}

// ForwardRule implements Σ_idx x[idx] (over n for the mean).
func (o *SumOp[T]) ForwardRule(out []string, in InputIndex, fresh func(string) string) (expr.Expr, string) {
	idx, over := freshIndices(o.shape, fresh)
	return o.mean(sigmaOver(over, in(0, idx))), ""
}

// BackwardRule implements ∂J/∂x[idx] = ∂J/∂s (over n for the mean).
func (o *SumOp[T]) BackwardRule(i int, idx []string, in InputIndex, out, gout Index, fresh func(string) string) (expr.Expr, string) {
	return o.mean(gout(nil)), ""
}

// bceDiv is e/n, or e for a single element.
func (o *BCEWithLogitsOp[T]) bceDiv(e expr.Expr) expr.Expr {
	if o.n == 1 {
		return e
	}
	return expr.Quot{A: e, B: expr.Num(o.n)}
}

// ForwardRule implements the binary cross-entropy as a course writes it,
// −Σ_idx (t[idx]·logσ(a[idx]) + (1 − t[idx])·logσ(−a[idx]))/n, which
// equals the softplus form the op computes.
func (o *BCEWithLogitsOp[T]) ForwardRule(out []string, in InputIndex, fresh func(string) string) (expr.Expr, string) {
	idx, over := freshIndices(o.shape, fresh)
	a, t := in(0, idx), in(1, idx)
	term := expr.Sum{
		expr.Product{t, expr.Call{Fn: "logσ", Args: []expr.Expr{a}}},
		expr.Product{expr.Diff{A: expr.Num(1), B: t}, expr.Call{Fn: "logσ", Args: []expr.Expr{expr.Neg{X: a}}}},
	}
	return expr.Neg{X: o.bceDiv(sigmaOver(over, term))}, "logσ(a) = log σ(a) and logσ(−a) = log(1 − σ(a)), computed as −softplus(∓a) so that neither overflows"
}

// BackwardRule implements ∂J/∂a[idx] = ∂J/∂L·(σ(a[idx]) − t[idx])/n and,
// for the targets, −∂J/∂L·a[idx]/n.
func (o *BCEWithLogitsOp[T]) BackwardRule(i int, idx []string, in InputIndex, out, gout Index, fresh func(string) string) (expr.Expr, string) {
	if i == 1 {
		return expr.Neg{X: expr.Product{gout(nil), o.bceDiv(in(0, idx))}}, ""
	}
	return expr.Product{gout(nil), o.bceDiv(expr.Diff{A: expr.Call{Fn: "σ", Args: []expr.Expr{in(0, idx)}}, B: in(1, idx)})}, ""
}
