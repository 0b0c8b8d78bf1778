// Package optim holds the optimizers that update a model's parameters from
// their gradients: SGD (with momentum, dampening, Nesterov momentum and L2
// weight decay) and Adam (with L2 weight decay and AMSGrad), each following
// torch.optim's update rules step for step, so a run here can be compared
// with, or continued from, a PyTorch run.
//
// An optimizer's state (momentum buffers, Adam's moments and step counts)
// can be exported as named tensors and imported into a fresh optimizer;
// training resumed that way continues bit for bit as if it had never
// stopped. After the first step, Step allocates nothing.
package optim

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/backprop-dev/backprop/autograd"
	"github.com/backprop-dev/backprop/nn"
	"github.com/backprop-dev/backprop/tensor"
)

// Optimizer updates a fixed list of parameters from their gradients.
type Optimizer[T tensor.Float] interface {
	// Step applies one update to every parameter that has a gradient
	// (Var.Grad non-nil); parameters without one are skipped, as PyTorch
	// skips those whose .grad is None.
	Step() error
	// ZeroGrad drops every gradient, ready for the next backward pass,
	// which then hands its gradient to the parameter without adding it to
	// zeros (PyTorch's zero_grad(set_to_none=True)). A parameter that gets
	// no gradient before the next Step is skipped by it, as in PyTorch.
	ZeroGrad()
	// State exports the optimizer's per-parameter state as named tensors,
	// "<parameter>.<field>", copied so that later steps do not change it.
	State() []nn.StateEntry[T]
	// LoadState replaces the optimizer's state with one exported by State
	// (from an optimizer over parameters of the same names and shapes),
	// copying the values. On an error nothing changes.
	LoadState(state []nn.StateEntry[T]) error
}

// checkParams validates a parameter list: named, distinct, each a Var with
// a value.
func checkParams[T tensor.Float](params []nn.Parameter[T]) ([]nn.Parameter[T], error) {
	seen := map[string]bool{}
	vars := map[*autograd.Var[T]]string{}
	for i, p := range params {
		switch {
		case p.Name == "":
			return nil, fmt.Errorf("optim: parameter %d has no name", i)
		case p.Var == nil || p.Var.Value == nil:
			return nil, fmt.Errorf("optim: parameter %q has no value", p.Name)
		case seen[p.Name]:
			return nil, fmt.Errorf("optim: two parameters are named %q", p.Name)
		}
		if other, dup := vars[p.Var]; dup {
			return nil, fmt.Errorf("optim: parameters %q and %q are the same variable", other, p.Name)
		}
		seen[p.Name] = true
		vars[p.Var] = p.Name
	}
	return slices.Clone(params), nil
}

// gradOf returns the gradient of p, nil when it has none, or an error when
// it does not match the parameter's size.
func gradOf[T tensor.Float](p nn.Parameter[T]) ([]T, error) {
	g := p.Var.Grad
	if g == nil {
		return nil, nil
	}
	if g.Len() != p.Var.Value.Len() {
		return nil, fmt.Errorf("optim: the gradient of %q has shape %s, the parameter %s",
			p.Name, tensor.FormatShape(g.Shape()), tensor.FormatShape(p.Var.Value.Shape()))
	}
	return g.Data(), nil
}

// zeroGrads drops the gradients of params, returning their storage to the
// tensor pool: the next backward pass adopts its freshly computed gradient
// instead of clearing a buffer and adding into it.
func zeroGrads[T tensor.Float](params []nn.Parameter[T]) {
	for _, p := range params {
		if p.Var.Grad != nil {
			tensor.Release(p.Var.Grad)
			p.Var.Grad = nil
		}
	}
}

// StateError lists what is wrong with an imported optimizer state.
type StateError struct {
	Problems []string // one sentence per problem found
}

// Error implements error.
func (e *StateError) Error() string {
	return "optim: cannot load optimizer state: " + strings.Join(e.Problems, "; ")
}

// stateField describes one per-parameter state tensor of an optimizer.
type stateField struct {
	name   string
	scalar bool // a step count: shape [], non-negative integer
}

// parsedState is an imported state checked against the parameters: for
// every parameter index, the tensor of every field (nil when absent).
type parsedState[T tensor.Float] [][]*tensor.Tensor[T]

// parseState matches entries "<param>.<field>" to params and fields,
// checking names, shapes, integrality and completeness: a parameter has
// either all fields or none (never stepped).
func parseState[T tensor.Float](params []nn.Parameter[T], fields []stateField, entries []nn.StateEntry[T], why string) (parsedState[T], error) {
	e := &StateError{}
	index := make(map[string]int, len(params))
	for i, p := range params {
		index[p.Name] = i
	}
	out := make(parsedState[T], len(params))
	for i := range out {
		out[i] = make([]*tensor.Tensor[T], len(fields))
	}
	for _, s := range entries {
		dot := strings.LastIndexByte(s.Name, '.')
		if dot < 0 {
			e.Problems = append(e.Problems, fmt.Sprintf("entry %q is not named <parameter>.<field>", s.Name))
			continue
		}
		pname, fname := s.Name[:dot], s.Name[dot+1:]
		pi, ok := index[pname]
		if !ok {
			e.Problems = append(e.Problems, fmt.Sprintf("entry %q belongs to no parameter of this optimizer (unknown parameter %q)", s.Name, pname))
			continue
		}
		fi := slices.IndexFunc(fields, func(f stateField) bool { return f.name == fname })
		if fi < 0 {
			e.Problems = append(e.Problems, fmt.Sprintf("unexpected entry %q: this optimizer keeps %s", s.Name, why))
			continue
		}
		if out[pi][fi] != nil {
			e.Problems = append(e.Problems, fmt.Sprintf("entry %q is given more than once", s.Name))
			continue
		}
		if s.Tensor == nil {
			e.Problems = append(e.Problems, fmt.Sprintf("entry %q has no tensor", s.Name))
			continue
		}
		want := params[pi].Var.Value.Shape()
		if fields[fi].scalar {
			want = []int{}
		}
		if !tensor.SameShape(s.Tensor.Shape(), want) {
			e.Problems = append(e.Problems, fmt.Sprintf("entry %q has shape %s, want %s", s.Name, tensor.FormatShape(s.Tensor.Shape()), tensor.FormatShape(want)))
			continue
		}
		if fields[fi].scalar {
			if v := s.Tensor.Data()[0]; v < 0 || v != T(int64(v)) {
				e.Problems = append(e.Problems, fmt.Sprintf("entry %q is %v, want a step count (an integer ≥ 0)", s.Name, v))
				continue
			}
		}
		out[pi][fi] = s.Tensor
	}
	for pi, fs := range out {
		var have, lack []string
		for fi, t := range fs {
			if t != nil {
				have = append(have, fields[fi].name)
			} else {
				lack = append(lack, fields[fi].name)
			}
		}
		if len(have) > 0 && len(lack) > 0 {
			e.Problems = append(e.Problems, fmt.Sprintf("parameter %q has %s but lacks %s", params[pi].Name, strings.Join(have, ", "), strings.Join(lack, ", ")))
		}
	}
	if len(e.Problems) > 0 {
		return nil, e
	}
	return out, nil
}

// errRange reports a hyperparameter outside its range.
func errRange(name string, v float64, want string) error {
	return fmt.Errorf("optim: invalid %s %g: it must be %s", name, v, want)
}

// errNoParams is returned for an empty parameter list, which is almost
// always a mistake (a model whose Parameters were not collected).
var errNoParams = errors.New("optim: no parameters to optimize")
