// Package trace turns a recorded graph into a worked solution: every forward
// step with its formula, the numbers substituted element by element and the
// resulting tensor; then every backward step with the upstream gradient, the
// local derivative and the result, down to each parameter's gradient. It is
// the explanation engine: the text comes from the ops' own Explainer methods
// walking the very graph that computed the numbers.
package trace

import (
	"fmt"

	"github.com/backprop-dev/backprop/autograd"
	"github.com/backprop-dev/backprop/explain"
	"github.com/backprop-dev/backprop/expr"
	"github.com/backprop-dev/backprop/tensor"
)

// Options control how much detail a trace carries.
type Options struct {
	// MaxElements is the largest tensor whose elements get a line each;
	// larger tensors show only their formula and value. 0 means 64.
	MaxElements int
	// Objective is the name of the objective in gradients (J in ∂J/∂w0).
	Objective string
	// NamedSteps gives every named value a step of its own, so that a
	// pre-activation the backward pass uses (u0, u2) is introduced in the
	// forward pass; otherwise it is shown inside its only consumer.
	NamedSteps bool
	// Groups gives the time step of a recurrent network's values by name
	// (h_2, c_2, i_2 → 2), so that each step is shown as a group.
	Groups map[string]int
}

// Line is one element of a step: Target = Symbolic = Numeric (= Collapsed) = Value.
type Line struct {
	Target    expr.Expr // e.g. h0[1] or ∂J/∂w0[1,2]
	Symbolic  expr.Expr // in terms of other elements' names
	Numeric   expr.Expr // the same with numbers substituted
	Collapsed bool      // whether Numeric has inlined parts worth collapsing
	Value     float64
}

// Step is one forward or backward step of the solution.
type Step struct {
	Target  expr.Expr // h0, or ∂J/∂h0
	Formula expr.Expr // right-hand side in whole-tensor notation
	Lines   []Line    // per-element lines, empty for large tensors
	Value   Matrix    // the resulting tensor
	Note    string    // extra remark, e.g. "sum over the consumers"

	// Name is the node's own name (h0, u2, w1); for a backward step the
	// name of the tensor whose gradient this is.
	Name string
	// Op names the operation (relu, matmul, deconv, ...): for a backward
	// step, the operation the gradient flows back through (empty when it
	// has several consumers).
	Op string
	// Param is set on the gradient step of a parameter.
	Param bool
	// RuleLHS = Rule is the general element with symbolic indices
	// (u0[i] = Σ_j w0[i,j]·z[j] + b0[i]); nil when the op has none.
	RuleLHS, Rule expr.Expr
	// RuleNote says which terms a rule's sum keeps, or how an index maps.
	RuleNote string
	// Chain is a gradient written as its chain-rule factors,
	// ∂J/∂h0·∂h0/∂u0; nil for forward steps.
	Chain expr.Expr
	// Local states the local derivative's convention where the op has
	// one (ReLU′ at 0, the derivative of log σ).
	Local string
	// Inputs are the names of the forward step's operands, in order.
	Inputs []string
	// DependsOn names the parameters the step's node depends on (for a
	// backward step: whose gradients pass through it).
	DependsOn []string
	// Group is the time step the step belongs to (0: none).
	Group int
}

// Matrix is a tensor's shape and values in float64.
type Matrix struct {
	Shape []int
	Data  []float64
}

// Trace is a whole worked solution.
type Trace struct {
	Forward  []Step
	Backward []Step
}

func matrixOf[T tensor.Float](t *tensor.Tensor[T]) Matrix {
	d := make([]float64, t.Len())
	for i, v := range t.Data() {
		d[i] = float64(v)
	}
	return Matrix{Shape: append([]int(nil), t.Shape()...), Data: d}
}

type builder[T tensor.Float] struct {
	g   *explain.Graph[T]
	opt Options
}

// Build explains the graph whose nodes are given in creation order (each
// after its inputs). Backward must already have run from the objective.
func Build[T tensor.Float](nodes []*autograd.Var[T], opt Options) (*Trace, error) {
	if opt.MaxElements == 0 {
		opt.MaxElements = 64
	}
	if opt.Objective == "" {
		opt.Objective = "J"
	}
	g, err := explain.New(nodes)
	if err != nil {
		return nil, fmt.Errorf("trace: %w", err)
	}
	b := &builder[T]{g: g, opt: opt}
	t := &Trace{}
	for _, v := range g.Computed() {
		if !b.inlined(v) {
			t.Forward = append(t.Forward, b.forwardStep(v))
		}
	}
	for _, v := range g.BackwardOrder() {
		t.Backward = append(t.Backward, b.backwardStep(v))
	}
	return t, nil
}

// inlined reports whether v is shown inside its only consumer's line.
func (b *builder[T]) inlined(v *autograd.Var[T]) bool {
	if b.opt.NamedSteps && v.Name != "" {
		return false
	}
	return v.Inline && !v.IsLeaf() && len(b.g.Consumers(v)) == 1
}

func (b *builder[T]) ref(v *autograd.Var[T], m int) expr.Ref {
	r := expr.Ref{Name: b.g.Name(v)}
	if m >= 0 && v.Value.Rank() > 0 {
		r.Index = tensor.Index(v.Value.Shape(), m)
	}
	return r
}

func (b *builder[T]) gradRef(v *autograd.Var[T], m int) expr.Expr {
	return expr.Grad{Of: b.opt.Objective, Wrt: b.ref(b.g.GradNode(v), m)}
}

// formula is v's forward formula with inlined inputs expanded.
func (b *builder[T]) formula(v *autograd.Var[T]) expr.Expr {
	ex := b.g.Explainer(v)
	in := make([]expr.Expr, len(v.Inputs))
	for i, u := range v.Inputs {
		if b.inlined(u) {
			in[i] = b.formula(u)
		} else {
			in[i] = b.ref(u, -1)
		}
	}
	return ex.Formula(in)
}

// elem is the expression of v's element k, symbolic or numeric.
func (b *builder[T]) elem(v *autograd.Var[T], k int, numeric bool) expr.Expr {
	ex := b.g.Explainer(v)
	return ex.ForwardElem(k, func(i, m int) expr.Expr {
		u := v.Inputs[i]
		if b.inlined(u) {
			return expr.Inline{X: b.elem(u, m, numeric), Value: float64(u.Value.Data()[m])}
		}
		if numeric {
			return expr.Num(float64(u.Value.Data()[m]))
		}
		return b.ref(u, m)
	})
}

func (b *builder[T]) forwardStep(v *autograd.Var[T]) Step {
	s := Step{Target: b.ref(v, -1), Formula: scalarFix(b.formula(v), b.rankOf()), Value: matrixOf(v.Value), Name: b.g.Name(v), Op: v.Op.Name()}
	s.RuleLHS, s.Rule, s.RuleNote = b.forwardRule(v)
	for _, u := range v.Inputs {
		s.Inputs = append(s.Inputs, b.g.Name(u))
	}
	s.DependsOn = b.g.DependsOn(v)
	s.Group = b.opt.Groups[s.Name]
	if v.Value.Len() <= b.opt.MaxElements {
		for k, val := range v.Value.Data() {
			num := b.elem(v, k, true)
			s.Lines = append(s.Lines, Line{Target: b.ref(v, k), Symbolic: b.elem(v, k, false), Numeric: num, Collapsed: expr.HasInline(num), Value: float64(val)})
		}
	}
	return s
}

func (b *builder[T]) backwardStep(v *autograd.Var[T]) Step {
	cs := b.g.GradConsumers(v)
	var formulas []expr.Expr
	for _, c := range cs {
		ex := b.g.Explainer(c)
		in := make([]expr.Expr, len(c.Inputs))
		for i, u := range c.Inputs {
			in[i] = b.ref(u, -1)
		}
		for i, u := range c.Inputs {
			if u == v {
				formulas = append(formulas, ex.BackwardFormula(i, in, b.ref(c, -1), b.gradRef(c, -1)))
			}
		}
	}
	s := Step{Target: b.gradRef(v, -1), Formula: scalarFix(sum(formulas), b.rankOf()), Value: matrixOf(v.Grad), Name: b.g.Name(v), Param: v.IsLeaf()}
	if len(cs) == 1 {
		s.Op = cs[0].Op.Name()
	}
	s.RuleLHS, s.Rule, s.RuleNote = b.backwardRule(v)
	s.Chain, s.Local = b.chain(v)
	s.DependsOn = b.g.DependsOn(v)
	s.Group = b.opt.Groups[s.Name]
	if len(formulas) > 1 {
		s.Note = fmt.Sprintf("%s is used %d times; the contributions add up", b.g.Name(v), len(formulas))
	}
	if v.Grad.Len() > b.opt.MaxElements {
		return s
	}
	for m, val := range v.Grad.Data() {
		var sym, num []expr.Expr
		for _, c := range cs {
			ex := b.g.Explainer(c)
			for i, u := range c.Inputs {
				if u != v {
					continue
				}
				for _, numeric := range []bool{false, true} {
					in := func(j, p int) expr.Expr {
						if numeric {
							return expr.Num(float64(c.Inputs[j].Value.Data()[p]))
						}
						return b.ref(c.Inputs[j], p)
					}
					out := func(k int) expr.Expr {
						if numeric {
							return expr.Num(float64(c.Value.Data()[k]))
						}
						return b.ref(c, k)
					}
					gout := func(k int) expr.Expr {
						if numeric {
							return expr.Num(float64(c.Grad.Data()[k]))
						}
						return b.gradRef(c, k)
					}
					e := ex.BackwardElem(i, m, in, out, gout)
					if numeric {
						num = append(num, e)
					} else {
						sym = append(sym, e)
					}
				}
			}
		}
		s.Lines = append(s.Lines, Line{Target: b.gradRef(v, m), Symbolic: sum(sym), Numeric: sum(num), Value: float64(val)})
	}
	return s
}

func sum(es []expr.Expr) expr.Expr {
	if len(es) == 1 {
		return es[0]
	}
	return expr.Sum(es)
}
