// Package gradcheck verifies gradients against central finite differences in
// float64. Every differentiable op is run through it in the tests, so that a
// wrong backward cannot hide behind a right-looking forward.
package gradcheck

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/backprop-dev/backprop/autograd"
	"github.com/backprop-dev/backprop/tensor"
)

// Options tune a check. Zero values mean Eps 1e-6, Tol 1e-6.
type Options struct {
	Eps float64 // finite-difference step
	Tol float64 // largest accepted relative error
	// Skip lists inputs whose gradient is not checked (e.g. integer-like
	// targets); they are still used in the forward pass.
	Skip map[int]bool
}

// Result holds the worst relative error found for each input.
type Result struct {
	MaxRelErr []float64
}

// Func builds the graph under test from leaves and returns its output. The
// output need not be scalar: Check reduces it with fixed random weights, so
// every output element's Jacobian row is exercised.
type Func func(in []*autograd.Var[float64]) (*autograd.Var[float64], error)

// RelErr is |a-b| / max(1, |a|, |b|), robust near zero.
func RelErr(a, b float64) float64 {
	return math.Abs(a-b) / math.Max(1, math.Max(math.Abs(a), math.Abs(b)))
}

// Check compares autodiff gradients of f at inputs with central differences
// and returns an error naming the input and element of the first mismatch
// beyond the tolerance.
func Check(f Func, inputs []*tensor.Tensor[float64], opt Options, rng *rand.Rand) (Result, error) {
	if opt.Eps == 0 {
		opt.Eps = 1e-6
	}
	if opt.Tol == 0 {
		opt.Tol = 1e-6
	}
	leaves := func() []*autograd.Var[float64] {
		vs := make([]*autograd.Var[float64], len(inputs))
		for i, t := range inputs {
			vs[i] = autograd.Leaf(fmt.Sprintf("input%d", i), t, !opt.Skip[i])
		}
		return vs
	}
	vs := leaves()
	out, err := f(vs)
	if err != nil {
		return Result{}, err
	}
	weights := tensor.New[float64](out.Value.Shape()...)
	for i := range weights.Data() {
		weights.Data()[i] = rng.NormFloat64()
	}
	if err := autograd.BackwardFrom(out, weights); err != nil {
		return Result{}, err
	}
	objective := func() (float64, error) {
		o, err := f(leaves())
		if err != nil {
			return 0, err
		}
		s := 0.0
		for i, v := range o.Value.Data() {
			s += v * weights.Data()[i]
		}
		return s, nil
	}
	res := Result{MaxRelErr: make([]float64, len(inputs))}
	var firstErr error
	for i, t := range inputs {
		if opt.Skip[i] {
			continue
		}
		grad := vs[i].Grad
		for m := range t.Data() {
			orig := t.Data()[m]
			t.Data()[m] = orig + opt.Eps
			fp, err := objective()
			if err != nil {
				return res, err
			}
			t.Data()[m] = orig - opt.Eps
			fm, err := objective()
			if err != nil {
				return res, err
			}
			t.Data()[m] = orig
			num := (fp - fm) / (2 * opt.Eps)
			ana := 0.0
			if grad != nil {
				ana = grad.Data()[m]
			}
			e := RelErr(ana, num)
			if e > res.MaxRelErr[i] {
				res.MaxRelErr[i] = e
			}
			if e > opt.Tol && firstErr == nil {
				firstErr = fmt.Errorf("gradcheck: input %d %s element %v: autodiff %.10g, finite difference %.10g (rel err %.2g)",
					i, tensor.FormatShape(t.Shape()), tensor.Index(t.Shape(), m), ana, num, e)
			}
		}
	}
	return res, firstErr
}

// Random returns a tensor of the shape with standard normal entries.
func Random(rng *rand.Rand, shape ...int) *tensor.Tensor[float64] {
	t := tensor.New[float64](shape...)
	for i := range t.Data() {
		t.Data()[i] = rng.NormFloat64()
	}
	return t
}

// RandomAwayFromZero is Random with every |value| at least margin, for ops
// with a kink at 0 (ReLU) where a finite difference straddling the kink
// would be meaningless.
func RandomAwayFromZero(rng *rand.Rand, margin float64, shape ...int) *tensor.Tensor[float64] {
	t := Random(rng, shape...)
	for i, v := range t.Data() {
		if math.Abs(v) < margin {
			if v < 0 {
				t.Data()[i] = v - margin
			} else {
				t.Data()[i] = v + margin
			}
		}
	}
	return t
}
