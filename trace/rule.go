package trace

import (
	"strings"

	"github.com/backprop-dev/backprop/autograd"
	"github.com/backprop-dev/backprop/explain"
	"github.com/backprop-dev/backprop/expr"
)

// idxOf names v's general element; a vector that a reshape or flatten
// maps to or from is indexed by its reading position k.
func (b *builder[T]) idxOf(v *autograd.Var[T], param bool) []string {
	idx := explain.IndexNames(v.Value.Shape(), param)
	if len(idx) != 1 {
		return idx
	}
	reshaped := !v.IsLeaf() && (v.Op.Name() == "reshape" || v.Op.Name() == "flatten")
	for _, c := range b.g.Consumers(v) {
		reshaped = reshaped || c.Op.Name() == "reshape" || c.Op.Name() == "flatten"
	}
	if reshaped {
		return []string{"k"}
	}
	return idx
}

// indexNames renames index letters that are also names of tensors the
// rule uses (an output named c would read c[n,c,i,j]) and returns the
// fresh-name source for the rest of the rule, which never hands out such a
// name either.
func (b *builder[T]) indexNames(idx []string, names map[string]bool) ([]string, freshNames) {
	f := freshNames{}
	for n := range names {
		f[n] = true
	}
	out := make([]string, len(idx))
	for i, x := range idx {
		if x == "1" || !f[x] {
			out[i] = x
			if x != "1" {
				f[x] = true
			}
			continue
		}
		out[i] = f.fresh(x)
	}
	return out, f
}

// freshNames hands out index names not yet used in one rule.
type freshNames map[string]bool

func newFresh(used []string) freshNames {
	f := freshNames{}
	for _, u := range used {
		f[u] = true
	}
	return f
}

func (f freshNames) fresh(hint string) string {
	n := hint
	for f[n] {
		n += "'"
	}
	f[n] = true
	return n
}

func (b *builder[T]) symRef(v *autograd.Var[T], idx []string) expr.Ref {
	return expr.Ref{Name: b.g.Name(v), Sym: idx}
}

// forwardRule is v's general element: target[idx] = rule, with inlined
// inputs expanded into their own rules; nil when an op has none.
func (b *builder[T]) forwardRule(v *autograd.Var[T]) (lhs, rhs expr.Expr, note string) {
	idx := b.idxOf(v, false)
	if idx == nil && v.Value.Rank() > 0 {
		return nil, nil, ""
	}
	// twice: the second time no index letter is a name the rule uses
	var ok bool
	base := idx
	used := map[string]bool{b.g.Name(v): true}
	for range 2 {
		var f freshNames
		idx, f = b.indexNames(base, used)
		if rhs, note, ok = b.ruleAt(v, idx, f); !ok {
			return nil, nil, ""
		}
		refNames(rhs, used)
	}
	return b.symRef(v, idx), expr.Simplify(rhs), note
}

// refNames adds the tensor names e refers to.
func refNames(e expr.Expr, into map[string]bool) {
	expr.Map(e, func(n expr.Expr) expr.Expr {
		switch r := n.(type) {
		case expr.Ref:
			into[r.Name] = true
		case expr.Grad:
			into[r.Wrt.Name] = true
		}
		return n
	})
}

func (b *builder[T]) ruleAt(v *autograd.Var[T], idx []string, f freshNames) (expr.Expr, string, bool) {
	r, ok := v.Op.(explain.ForwardRuler)
	if !ok {
		return nil, "", false
	}
	good := true
	var notes []string
	rhs, note := r.ForwardRule(idx, func(i int, at []string) expr.Expr {
		u := v.Inputs[i]
		if b.inlined(u) {
			e, n, ok := b.ruleAt(u, at, f)
			if !ok {
				good = false
				return b.symRef(u, at)
			}
			if n != "" {
				notes = append(notes, n)
			}
			return e
		}
		if u.Name == "" && u.Value.Len() == 1 && len(u.Inputs) == 1 && u.Inputs[0].Value.Len() == 1 {
			// a one-element bias reshaped to fit: name the bias itself
			u = u.Inputs[0]
			at = nil
			for range u.Value.Rank() {
				at = append(at, "1")
			}
		}
		if u.Value.Rank() == 0 {
			return b.symRef(u, nil)
		}
		return b.symRef(u, at)
	}, f.fresh)
	if rhs == nil || !good {
		return nil, "", false
	}
	if note != "" {
		notes = append(notes, note)
	}
	all := ""
	for i, n := range notes {
		if i > 0 {
			all += "; "
		}
		all += n
	}
	return rhs, all, true
}

// backwardRule is the general element of v's gradient, summed over the
// consumers it reaches the objective through.
func (b *builder[T]) backwardRule(v *autograd.Var[T]) (lhs, rhs expr.Expr, note string) {
	idx := b.idxOf(v, v.IsLeaf())
	// a consumer may know better names for its operand's axes (a bias
	// added per channel is indexed by c)
	if cs := b.g.GradConsumers(v); len(cs) == 1 {
		if n, ok := cs[0].Op.(explain.IndexNamer); ok {
			for i, u := range cs[0].Inputs {
				if u == v {
					if names := n.InputIndexNames(i); len(names) == len(idx) {
						idx = append([]string(nil), names...)
					}
				}
			}
		}
	}
	if idx == nil && v.Value.Rank() > 0 {
		return nil, nil, ""
	}
	base := idx
	used := map[string]bool{b.g.Name(v): true}
	var terms []expr.Expr
	var notes []string
	for pass := range 2 {
		var f freshNames
		idx, f = b.indexNames(base, used)
		terms, notes = terms[:0], notes[:0]
		for _, t := range b.backwardTerms(v, idx, f, &notes) {
			if t == nil {
				return nil, nil, ""
			}
			terms = append(terms, t)
		}
		if pass == 0 {
			for _, t := range terms {
				refNames(t, used)
			}
		}
	}
	if len(terms) == 0 {
		return nil, nil, ""
	}
	all := strings.Join(notes, "; ")
	return expr.Grad{Of: b.opt.Objective, Wrt: b.symRef(v, idx)}, expr.Simplify(sum(terms)), all
}

// backwardTerms are the terms of v's gradient rule, one per use of v by a
// consumer; a nil term means a consumer has no rule.
func (b *builder[T]) backwardTerms(v *autograd.Var[T], idx []string, f freshNames, notes *[]string) []expr.Expr {
	var terms []expr.Expr
	for _, c := range b.g.GradConsumers(v) {
		r, ok := c.Op.(explain.BackwardRuler)
		if !ok {
			return []expr.Expr{nil}
		}
		for i, u := range c.Inputs {
			if u != v {
				continue
			}
			ref := func(w *autograd.Var[T], at []string) expr.Ref {
				if w.Value.Rank() == 0 {
					at = nil
				}
				return b.symRef(w, at)
			}
			e, n := r.BackwardRule(i, idx, func(j int, at []string) expr.Expr { return ref(c.Inputs[j], at) },
				func(at []string) expr.Expr { return ref(c, at) },
				func(at []string) expr.Expr {
					g := b.g.GradNode(c)
					if g.Value.Rank() == 0 {
						at = nil
					}
					return expr.Grad{Of: b.opt.Objective, Wrt: b.symRef(g, at)}
				}, f.fresh)
			terms = append(terms, e)
			if e != nil && n != "" {
				*notes = append(*notes, n)
			}
		}
	}
	return terms
}

// chain is the chain rule of v's gradient written with its factors,
// ∂J/∂v = ∂J/∂c · ∂c/∂v summed over the consumers c, and the local
// derivative's note where the consumer states one.
func (b *builder[T]) chain(v *autograd.Var[T]) (expr.Expr, string) {
	var terms []expr.Expr
	note := ""
	for _, c := range b.g.GradConsumers(v) {
		g := b.g.GradNode(c)
		terms = append(terms, expr.Product{expr.Grad{Of: b.opt.Objective, Wrt: b.ref(g, -1)}, expr.Grad{Of: b.g.Name(g), Wrt: b.ref(v, -1)}})
		if dn, ok := c.Op.(explain.DerivNoter); ok && g == c {
			note = dn.DerivativeNote(b.g.Name(v), b.g.Name(c))
		}
	}
	if len(terms) == 0 {
		return nil, ""
	}
	return sum(terms), note
}

// scalarFix writes products of scalars as products: no ⊙ when every
// factor is a scalar, no transpose of a scalar.
func scalarFix(e expr.Expr, rank func(name string) int) expr.Expr {
	isScalar := func(x expr.Expr) bool {
		switch r := x.(type) {
		case expr.Ref:
			return len(r.Index) == 0 && len(r.Sym) == 0 && rank(r.Name) == 0
		case expr.Grad:
			return len(r.Wrt.Index) == 0 && len(r.Wrt.Sym) == 0 && rank(r.Wrt.Name) == 0
		case expr.Num:
			return true
		case expr.Call:
			for _, a := range r.Args {
				if ar, ok := a.(expr.Ref); ok && rank(ar.Name) != 0 {
					return false
				}
			}
			return len(r.Args) > 0
		}
		return false
	}
	return expr.Map(e, func(n expr.Expr) expr.Expr {
		switch x := n.(type) {
		case expr.Transpose:
			if isScalar(x.X) {
				return x.X
			}
		case expr.Hadamard:
			all := true
			for _, f := range x {
				all = all && isScalar(f)
			}
			if all {
				return expr.Product(x)
			}
		case expr.MatProd:
			for k, f := range x {
				if isScalar(f) {
					// a scalar times a tensor: put the scalar first, as a
					// textbook writes it (∂J/∂a·w2)
					out := expr.Product{f}
					for q, g := range x {
						if q != k {
							out = append(out, g)
						}
					}
					return out
				}
			}
		}
		return n
	})
}

// rankOf maps names to tensor ranks for scalarFix.
func (b *builder[T]) rankOf() func(string) int {
	m := map[string]int{}
	for _, v := range b.g.Nodes() {
		m[b.g.Name(v)] = v.Value.Rank()
	}
	return func(n string) int {
		if r, ok := m[n]; ok {
			return r
		}
		return -1
	}
}
