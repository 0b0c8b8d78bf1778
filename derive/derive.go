// Package derive produces the gradient equations of a network by walking
// its graph backwards and asking every op for its symbolic backward rule.
// Nothing is stored as text: the auto-encoder of Problem 2, the GAN of
// Problem 1 and any network written in the spec format all get their
// equations from the same walk, per sample and in batched matrix form, and
// Check evaluates the equations numerically against autodiff and finite
// differences.
package derive

import (
	"fmt"
	"strings"
	"unicode"

	"github.com/backprop-dev/backprop/autograd"
	"github.com/backprop-dev/backprop/expr"
)

// Equation is one derived equation: LHS = Alias = Chain = Expanded.
type Equation struct {
	Node     string    // the graph node (or parameter) this is about
	LHS      expr.Expr // h, δ2 or ∂L/∂w2
	Alias    expr.Expr // ∂L/∂u2 when LHS is the shorthand δ2; else nil
	Chain    expr.Expr // in terms of the upstream gradient's name
	Expanded expr.Expr // with upstream non-δ gradients substituted; nil if the same
	Shape    []int     // shape of the value (batch axis first in batched form)
	Param    bool      // a gradient with respect to a parameter
}

// Derivation is the forward equations and the gradient equations of a graph.
type Derivation struct {
	Objective string // name used in ∂L/∂…
	Batched   bool   // batched matrix form: rows are samples
	Forward   []Equation
	Backward  []Equation
	nodes     map[string]*autograd.Var[float64]
	byLHS     map[*autograd.Var[float64]]*Equation
}

type walker struct {
	d         *Derivation
	consumers map[*autograd.Var[float64]][]*autograd.Var[float64]
	alias     map[*autograd.Var[float64]]*autograd.Var[float64] // node whose gradient stands for this one's
	objective *autograd.Var[float64]
	names     map[*autograd.Var[float64]]string
}

// passThrough is implemented by ops whose gradient for an input is the
// upstream gradient unchanged (x in x + b).
type passThrough interface{ PassThrough(i int) bool }

// Graph derives the equations of the graph with nodes in creation order and
// the given scalar objective; backward must already have run (it marks which
// nodes carry gradients). batched selects the wording of the batched form.
func Graph(nodes []*autograd.Var[float64], objective *autograd.Var[float64], batched bool) (*Derivation, error) {
	obj := objective.Name
	if obj == "" || strings.HasPrefix(obj, "log_") || obj == "loss" {
		obj = "J"
	}
	d := &Derivation{Objective: obj, Batched: batched, nodes: map[string]*autograd.Var[float64]{}, byLHS: map[*autograd.Var[float64]]*Equation{}}
	w := &walker{d: d, consumers: map[*autograd.Var[float64]][]*autograd.Var[float64]{}, alias: map[*autograd.Var[float64]]*autograd.Var[float64]{}, objective: objective, names: map[*autograd.Var[float64]]string{}}
	for i, v := range nodes {
		name := v.Name
		if name == "" {
			name = fmt.Sprintf("t%d", i+1)
		}
		w.names[v] = name
		d.nodes[name] = v
		for _, u := range v.Inputs {
			w.consumers[u] = append(w.consumers[u], v)
		}
		if !v.IsLeaf() {
			if _, ok := v.Op.(autograd.Explainer); !ok {
				return nil, fmt.Errorf("derive: op %s of %s has no symbolic rule", v.Op.Name(), name)
			}
		}
	}
	for _, v := range nodes {
		if cs := w.consumers[v]; len(cs) == 1 && v.Name == "" && !v.IsLeaf() {
			if pt, ok := cs[0].Op.(passThrough); ok {
				for i, u := range cs[0].Inputs {
					if u == v && pt.PassThrough(i) {
						w.alias[v] = cs[0]
					}
				}
			}
		}
	}
	for _, v := range nodes {
		if v.IsLeaf() || v.Name == "" {
			continue
		}
		d.Forward = append(d.Forward, Equation{Node: w.names[v], LHS: expr.Ref{Name: w.names[v]}, Chain: w.formula(v), Shape: v.Value.Shape()})
	}
	done := map[*autograd.Var[float64]]bool{}
	for i := len(nodes) - 1; i >= 0; i-- {
		v := nodes[i]
		if v.IsLeaf() {
			continue
		}
		if v != objective && v.Grad != nil && w.alias[v] == nil && len(w.gradConsumers(v)) > 0 {
			w.backward(v, false)
		}
		for _, u := range v.Inputs {
			if u.IsLeaf() && u.Grad != nil && !done[u] && w.consumers[u][0] == v {
				done[u] = true
				w.backward(u, true)
			}
		}
	}
	return d, nil
}

// formula is v's forward formula, anonymous inputs written inline.
func (w *walker) formula(v *autograd.Var[float64]) expr.Expr {
	in := make([]expr.Expr, len(v.Inputs))
	for i, u := range v.Inputs {
		if u.Name == "" && !u.IsLeaf() {
			in[i] = w.formula(u)
		} else {
			in[i] = expr.Ref{Name: w.names[u]}
		}
	}
	return v.Op.(autograd.Explainer).Formula(in)
}

func (w *walker) gradConsumers(v *autograd.Var[float64]) []*autograd.Var[float64] {
	var cs []*autograd.Var[float64]
	for _, c := range w.consumers[v] {
		if c.Grad != nil {
			cs = append(cs, c)
		}
	}
	return cs
}

// deltaName is the shorthand for a pre-activation's gradient: δ2 for u2,
// Δ2 for U2 in the batched form, δ_a for a.
func (w *walker) deltaName(v *autograd.Var[float64]) string {
	if !v.Inline || v.Name == "" {
		return ""
	}
	d := "δ"
	if w.d.Batched {
		d = "Δ"
	}
	n := v.Name
	r := []rune(n)
	if len(r) > 1 && (r[0] == 'u' || r[0] == 'U') && unicode.IsDigit(r[1]) {
		return d + string(r[1:])
	}
	return d + "_" + strings.TrimSuffix(n, "_N")
}

// gradRef is how the gradient of v is written in other equations.
func (w *walker) gradRef(v *autograd.Var[float64]) expr.Expr {
	for w.alias[v] != nil {
		v = w.alias[v]
	}
	if dn := w.deltaName(v); dn != "" {
		return expr.Ref{Name: dn}
	}
	return expr.Grad{Of: w.d.Objective, Wrt: expr.Ref{Name: w.names[v]}}
}

func (w *walker) backward(v *autograd.Var[float64], param bool) {
	var chain []expr.Expr
	for _, c := range w.gradConsumers(v) {
		ex := c.Op.(autograd.Explainer)
		in := make([]expr.Expr, len(c.Inputs))
		for i, u := range c.Inputs {
			in[i] = expr.Ref{Name: w.names[u]}
		}
		for i, u := range c.Inputs {
			if u == v {
				chain = append(chain, ex.BackwardFormula(i, in, expr.Ref{Name: w.names[c]}, w.gradRef(c)))
			}
		}
	}
	var ch expr.Expr = expr.Sum(chain)
	if len(chain) == 1 {
		ch = chain[0]
	}
	eq := Equation{Node: w.names[v], LHS: w.gradRef(v), Chain: expr.Simplify(w.substituteObjective(ch)), Shape: v.Grad.Shape(), Param: param}
	if w.deltaName(v) != "" {
		eq.Alias = expr.Grad{Of: w.d.Objective, Wrt: expr.Ref{Name: w.names[v]}}
	}
	if exp := expr.Simplify(w.expand(eq.Chain)); expr.String(exp) != expr.String(eq.Chain) {
		eq.Expanded = exp
	}
	w.d.Backward = append(w.d.Backward, eq)
	w.d.byLHS[v] = &w.d.Backward[len(w.d.Backward)-1]
}

// substituteObjective writes ∂J/∂J as 1.
func (w *walker) substituteObjective(e expr.Expr) expr.Expr {
	return expr.Map(e, func(n expr.Expr) expr.Expr {
		if g, ok := n.(expr.Grad); ok && g.Wrt.Name == w.names[w.objective] && len(g.Wrt.Index) == 0 {
			return expr.Num(1)
		}
		return n
	})
}

// expand replaces the gradients of intermediate (non-δ) nodes by their own
// equations, so that δ1 = ∂L/∂h ⊙ 1[u1 > 0] reads (w2 δ2) ⊙ 1[u1 > 0].
func (w *walker) expand(e expr.Expr) expr.Expr {
	return expr.Map(e, func(n expr.Expr) expr.Expr {
		g, ok := n.(expr.Grad)
		if !ok || len(g.Wrt.Index) != 0 {
			return n
		}
		v := w.d.nodes[g.Wrt.Name]
		eq := w.d.byLHS[v]
		if v == nil || eq == nil {
			return n
		}
		if eq.Expanded != nil {
			return eq.Expanded
		}
		return eq.Chain
	})
}

// ShapeText writes a shape as ℝ^{a×b}, the batch axis as N.
func (d *Derivation) ShapeText(s []int, latex bool) string {
	parts := make([]string, len(s))
	for i, x := range s {
		parts[i] = fmt.Sprint(x)
		if i == 0 && d.Batched {
			parts[i] = "N"
		}
	}
	if len(s) == 0 {
		if latex {
			return `\mathbb{R}`
		}
		return "ℝ"
	}
	if latex {
		return `\mathbb{R}^{` + strings.Join(parts, `\times `) + `}`
	}
	return "ℝ^(" + strings.Join(parts, "×") + ")"
}
