package derive

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/backprop-dev/backprop/autograd"
	"github.com/backprop-dev/backprop/expr"
	"github.com/backprop-dev/backprop/ops"
	"github.com/backprop-dev/backprop/spec"
	"github.com/backprop-dev/backprop/tensor"
)

// DeclinedError says why a form of the equations is not derived for a
// spec: the batched form of a spec whose input is already a batch (its
// per-sample form is the batched one), or of a spec whose class labels
// name one sample. It is a sentence for the reader, not a failure.
type DeclinedError struct{ Reason string }

// Error implements error.
func (e *DeclinedError) Error() string { return e.Reason }

// declineBatched is the reason not to derive s batched over n samples, or
// nil.
func declineBatched(s *spec.Spec, n int) *DeclinedError {
	if n <= 0 {
		return nil
	}
	if s.Batched() {
		return &DeclinedError{Reason: fmt.Sprintf("The input %s is already a batch of %d samples (batch: true), so the equations per sample above are its batched form; no separate form batched over N is derived.", s.Input.Name, s.InputTensor().Dim(0))}
	}
	if why := declineSequence(s); why != nil {
		return why
	}
	for _, in := range s.Inputs {
		if in.Kind == "labels" {
			return &DeclinedError{Reason: fmt.Sprintf("The labels %s name the class of the spec's own sample; a form batched over N samples would need a label for each, so only the per-sample form is derived.", in.Name)}
		}
	}
	return nil
}

// declineSequence is the reason not to derive a batched form of a spec
// whose rows are not samples: the time steps a recurrent layer runs
// through, the tokens an attention layer mixes or an embedding looks up,
// or the matrices a matmul layer multiplies; nil for any other spec.
func declineSequence(s *spec.Spec) *DeclinedError {
	find := func(types ...string) (int, bool) {
		for i, l := range s.Layers {
			for _, t := range types {
				if l.Type == t {
					return i, true
				}
			}
		}
		return 0, false
	}
	if i, ok := find("rnn", "lstm", "gru"); ok {
		l := s.Layers[i]
		return &DeclinedError{Reason: fmt.Sprintf("The rows of %s are the time steps of one sequence, which the %s layer %s reads in order, each step's state feeding the next (backpropagation through time runs back along them); they are not samples, so only the per-sequence form is derived, not one batched over N sequences.", layerInput(s, i), l.Type, l.Name)}
	}
	if i, ok := find("attention"); ok {
		l := s.Layers[i]
		return &DeclinedError{Reason: fmt.Sprintf("The rows of %s are the tokens of one sequence, which the attention layer %s mixes (each token's output depends on the tokens it attends to); they are not independent samples, so only the per-sequence form is derived, not one batched over N sequences.", layerInput(s, i), l.Name)}
	}
	if i, ok := find("embedding"); ok {
		l := s.Layers[i]
		return &DeclinedError{Reason: fmt.Sprintf("The token ids %s are the positions of one sequence, looked up by the embedding layer %s; a form batched over N sequences would need ids for each, so only the per-sequence form is derived.", layerInput(s, i), l.Name)}
	}
	if i, ok := find("matmul"); ok {
		return &DeclinedError{Reason: fmt.Sprintf("The matmul layer %s multiplies whole matrices, whose rows are not samples; so only the form of the spec's own matrices is derived, not one batched over N.", s.Layers[i].Name)}
	}
	return nil
}

// layerInput is the name of the value layer i of s reads first.
func layerInput(s *spec.Spec, i int) string {
	switch l := s.Layers[i]; {
	case len(l.Inputs) > 0:
		return l.Inputs[0]
	case i > 0:
		return s.Layers[i-1].Name
	}
	return s.Input.Name
}

// Spec derives the equations of a spec, per sample or batched over n
// samples (n > 0), at the spec's own values. The batched form of a spec
// that declines it (see DeclinedError) is a *DeclinedError.
func Spec(s *spec.Spec, n int) (*Derivation, *spec.Model[float64], error) {
	if why := declineBatched(s, n); why != nil {
		return nil, nil, why
	}
	var m *spec.Model[float64]
	var err error
	if n > 0 {
		m, err = spec.BuildBatched[float64](s, n)
	} else {
		m, err = spec.Build[float64](s)
	}
	if err != nil {
		return nil, nil, err
	}
	if err := autograd.Backward(m.Objective); err != nil {
		return nil, nil, err
	}
	// the cross-entropy's onehot(·) names the spec's labels input (next,
	// not a default y that may be another value of the graph)
	for _, v := range m.Nodes {
		if ce, ok := v.Op.(*ops.CrossEntropyOp[float64]); ok && ce.LabelName == "" && s.Objective.Labels != "" {
			ce.LabelName = s.Objective.Labels
		}
	}
	d, err := Graph(m.Nodes, m.Objective, n > 0)
	if d != nil {
		d.spec = s
		d.given = map[string]*tensor.Tensor[float64]{}
		for _, in := range s.Inputs {
			if v, ok := s.InputValue(in.Name); ok && in.Kind == "labels" {
				d.given[in.Name] = v
			}
		}
	}
	return d, m, err
}

// CheckResult is the agreement of one derived gradient with autodiff and
// with finite differences: the largest element-wise difference divided by
// the largest magnitude of the autodiff gradient.
type CheckResult struct {
	Name         string
	VsAutodiff   float64
	VsFiniteDiff float64
	Param        bool
}

// Evaluate computes every backward equation of d numerically from the
// values in m's graph, in order, and returns the values by node name.
func Evaluate(d *Derivation) (map[string]*tensor.Tensor[float64], error) {
	vals := map[string]*tensor.Tensor[float64]{}
	env := func(e expr.Expr) (*tensor.Tensor[float64], bool) {
		if v, ok := vals[expr.String(e)]; ok {
			return v, true
		}
		if r, ok := e.(expr.Ref); ok {
			if v, ok := d.nodes[r.Name]; ok {
				return v.Value, true
			}
			if v, ok := d.given[r.Name]; ok {
				return v, true
			}
		}
		return nil, false
	}
	out := map[string]*tensor.Tensor[float64]{}
	for _, eq := range d.Backward {
		forms := []expr.Expr{eq.Chain}
		if eq.Expanded != nil {
			forms = append(forms, eq.Expanded)
		}
		var first *tensor.Tensor[float64]
		for _, f := range forms {
			v, err := expr.EvalTensor(f, env)
			if err != nil {
				return nil, fmt.Errorf("evaluating %s = %s: %w", expr.String(eq.LHS), expr.String(f), err)
			}
			if v.Len() != tensor.NumElements(eq.Shape) {
				return nil, fmt.Errorf("%s = %s has %d elements, want %s", expr.String(eq.LHS), expr.String(f), v.Len(), tensor.FormatShape(eq.Shape))
			}
			v, _ = v.Reshape(eq.Shape...)
			if first == nil {
				first = v
			} else if e := relDiff(v, first); e > 1e-9 {
				return nil, fmt.Errorf("%s: the expanded form differs from the chain form by %.3g", expr.String(eq.LHS), e)
			}
		}
		vals[expr.String(eq.LHS)] = first
		if eq.Alias != nil {
			vals[expr.String(eq.Alias)] = first
		}
		out[eq.Node] = first
	}
	return out, nil
}

func relDiff(a, b *tensor.Tensor[float64]) float64 {
	scale, diff := 0.0, 0.0
	for i, v := range b.Data() {
		scale = math.Max(scale, math.Abs(v))
		diff = math.Max(diff, math.Abs(a.Data()[i]-v))
	}
	if scale == 0 {
		return diff
	}
	return diff / scale
}

// Check derives the equations of s with random inputs and weights (drawn
// from rng), evaluates them numerically, and compares every gradient with
// autodiff and every parameter gradient also with central finite
// differences of the objective.
func Check(s *spec.Spec, batch int, rng *rand.Rand) ([]CheckResult, error) {
	rs := s.WithValues(func(name string, old *tensor.Tensor[float64]) *tensor.Tensor[float64] {
		t := tensor.New[float64](old.Shape()...)
		for i := range t.Data() {
			t.Data()[i] = rng.NormFloat64() * 0.5
		}
		return t
	})
	d, _, err := Spec(rs, batch)
	if err != nil {
		return nil, err
	}
	vals, err := Evaluate(d)
	if err != nil {
		return nil, err
	}
	objective := func(sp *spec.Spec) (float64, error) {
		var mm *spec.Model[float64]
		var err error
		if batch > 0 {
			mm, err = spec.BuildBatched[float64](sp, batch)
		} else {
			mm, err = spec.Build[float64](sp)
		}
		if err != nil {
			return 0, err
		}
		return mm.Objective.Value.Data()[0], nil
	}
	var res []CheckResult
	for _, eq := range d.Backward {
		node := d.nodes[eq.Node]
		r := CheckResult{Name: expr.String(d.show(eq.LHS)), VsAutodiff: relDiff(vals[eq.Node], node.Grad), VsFiniteDiff: -1, Param: eq.Param}
		if eq.Param {
			const h = 1e-5 // near the optimum ε^(1/3) of a central difference: less rounding on small gradients
			fd := tensor.New[float64](node.Value.Shape()...)
			p := rs.Params[eq.Node].Tensor
			for i := range p.Data() {
				orig := p.Data()[i]
				p.Data()[i] = orig + h
				fp, err := objective(rs)
				if err != nil {
					return nil, err
				}
				p.Data()[i] = orig - h
				fm, err := objective(rs)
				if err != nil {
					return nil, err
				}
				p.Data()[i] = orig
				fd.Data()[i] = (fp - fm) / (2 * h)
			}
			r.VsFiniteDiff = relDiff(vals[eq.Node], fd)
		}
		res = append(res, r)
	}
	return res, nil
}
