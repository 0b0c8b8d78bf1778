// Package derive produces the gradient equations of a network by walking
// its graph backwards and asking every op for its symbolic backward rule.
// Nothing is stored as text: the auto-encoder of Problem 2, the GAN of
// Problem 1 and any network written in the spec format all get their
// equations from the same walk, per sample and in batched matrix form, and
// Check evaluates the equations numerically against autodiff and finite
// differences. The equations are evaluated in the very form they are
// printed (bias sums as Δᵀ·1_N, scalars without transposes), so a printed
// equation that is wrong fails the check.
package derive

import (
	"fmt"
	"strings"
	"unicode"

	"github.com/backprop-dev/backprop/autograd"
	"github.com/backprop-dev/backprop/explain"
	"github.com/backprop-dev/backprop/expr"
	"github.com/backprop-dev/backprop/ops"
	"github.com/backprop-dev/backprop/spec"
	"github.com/backprop-dev/backprop/tensor"
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
	// Notes are plain-text remarks printed under the equation where its
	// notation alone would leave a reader guessing: how a bias is
	// broadcast, the element formula of a convolution's gradient.
	Notes []string
}

// Derivation is the forward equations and the gradient equations of a graph.
type Derivation struct {
	Objective string // name used in ∂L/∂…
	Batched   bool   // batched matrix form: rows are samples
	Forward   []Equation
	Backward  []Equation
	nodes     map[string]*autograd.Var[float64]
	byLHS     map[*autograd.Var[float64]]*Equation

	batch    int                                // the batch size of the graph (batched form)
	display  map[string]name                    // how node names that are not plain identifiers print
	sizes    map[int]string                     // symbolic sizes: a dimension of this size prints as its symbol
	spec     *spec.Spec                         // the spec the graph was built from, if any
	given    map[string]*tensor.Tensor[float64] // values outside the graph (class labels) its equations name
	declined string                             // why the batched form that would follow is not derived (see DeclinedError)
	stacked  []string                           // batched names shown as stacks (h2⁽ᴺ⁾)
}

// name is how a node name prints in plain text and in LaTeX.
type name struct{ plain, tex string }

// walker renders the graph's reading (package explain) as equations.
type walker struct {
	d         *Derivation
	g         *explain.Graph[float64]
	objective *autograd.Var[float64]
	notes     []string // notes collected while writing a forward formula
}

// Graph derives the equations of the graph with nodes in creation order and
// the given scalar objective; backward must already have run (it marks which
// nodes carry gradients). batched selects the wording of the batched form.
func Graph(nodes []*autograd.Var[float64], objective *autograd.Var[float64], batched bool) (*Derivation, error) {
	obj := objective.Name
	if obj == "" || strings.HasPrefix(obj, "log_") || obj == "loss" {
		obj = "J"
	}
	g, err := explain.New(nodes)
	if err != nil {
		return nil, fmt.Errorf("derive: %w", err)
	}
	d := &Derivation{Objective: obj, Batched: batched, nodes: map[string]*autograd.Var[float64]{}, byLHS: map[*autograd.Var[float64]]*Equation{}, display: map[string]name{}}
	w := &walker{d: d, g: g, objective: objective}
	for _, v := range nodes {
		d.nodes[g.Name(v)] = v
		if batched && d.batch == 0 && !v.IsLeaf() && v.Value.Rank() > 0 {
			d.batch = v.Value.Dim(0)
		}
	}
	d.nameDisplay()
	for _, v := range g.Computed() {
		if v.Name == "" {
			continue
		}
		w.notes = nil
		eq := Equation{Node: g.Name(v), LHS: expr.Ref{Name: g.Name(v)}, Chain: w.tidy(w.formula(v)), Shape: v.Value.Shape()}
		if v == objective && g.Name(v) != d.Objective { // J = log p = log σ(a)
			eq.LHS, eq.Alias = expr.Ref{Name: d.Objective}, expr.Ref{Name: g.Name(v)}
		}
		eq.Notes = w.notes
		d.Forward = append(d.Forward, eq)
	}
	for _, v := range g.BackwardOrder() {
		w.backward(v, v.IsLeaf())
	}
	return d, nil
}

// formula is v's forward formula, anonymous inputs written inline. Biases
// are written with their broadcast made explicit in the batched form
// (X·w1 + 1_N·b1ᵀ), a reshape with its target shape, an objective's sum
// with its index.
func (w *walker) formula(v *autograd.Var[float64]) expr.Expr {
	in := make([]expr.Expr, len(v.Inputs))
	for i, u := range v.Inputs {
		if u.Name == "" && !u.IsLeaf() {
			in[i] = w.formula(u)
		} else {
			in[i] = expr.Ref{Name: w.g.Name(u)}
		}
	}
	switch op := v.Op.(type) {
	case *ops.BiasAddOp[float64]:
		x, b := v.Inputs[0], v.Inputs[1]
		switch {
		case w.d.Batched && x.Value.Rank() == 2 && b.Value.Rank() == 1:
			return expr.Sum{in[0], expr.MatProd{w.ones(), expr.Transpose{X: in[1]}}}
		case w.d.Batched && x.Value.Rank() == 1 && b.Value.Len() == 1:
			return expr.Sum{in[0], expr.Product{in[1], w.ones()}}
		case x.Value.Rank() >= 3:
			w.notes = append(w.notes, w.convBiasNote(x, b, op.Axis))
		}
	case *ops.ReshapeOp[float64]:
		if op.Label == "reshape" && v.Name != "" && v.Value.Rank() > 0 {
			sh := v.Value.Shape()
			note, tex := "to "+w.d.dimsFrom(sh, false, w.d.Batched), `\text{to } `+w.d.dimsFrom(sh, true, w.d.Batched)
			if op.ColMajor {
				note += ", column-major"
				tex += `,\ \text{column-major}`
			}
			return expr.Fn{Name: "reshape", Args: in, Note: note, NoteTeX: tex}
		}
	case *ops.SumOp[float64]:
		if w.d.Batched && !op.Mean && v.Value.Len() == 1 {
			return expr.Fn{Name: "Σ_n", TeX: `\textstyle\sum_{n}`, Args: in}
		}
	case *ops.SquaredErrorOp[float64]:
		return w.sse(v, op.Divisor)
	}
	return w.g.Explainer(v).Formula(in)
}

// sse writes Σ_i (x'_i − x_i)², over samples n as well in the batched form.
func (w *walker) sse(v *autograd.Var[float64], div float64) expr.Expr {
	a, b := w.d.nameOf(w.g.Name(v.Inputs[0])), w.d.nameOf(w.g.Name(v.Inputs[1]))
	var e expr.Expr
	if w.d.Batched {
		e = expr.Raw{
			Plain: fmt.Sprintf("Σ_n Σ_i (%s[n,i] - %s[n,i])²", a.plain, b.plain),
			TeX:   fmt.Sprintf(`\sum_{n}\sum_{i} \left(%s - %s\right)^{2}`, subTeX(a.tex, "n,i"), subTeX(b.tex, "n,i")),
		}
	} else {
		e = expr.Raw{
			Plain: fmt.Sprintf("Σ_i (%s_i - %s_i)²", a.plain, b.plain),
			TeX:   fmt.Sprintf(`\sum_{i} \left(%s - %s\right)^{2}`, subTeX(a.tex, "i"), subTeX(b.tex, "i")),
		}
	}
	if div != 1 {
		return expr.Quot{A: e, B: expr.Num(div)}
	}
	return e
}

// convBiasNote says how a convolution's bias b is broadcast over x's
// channels, pixels and samples.
func (w *walker) convBiasNote(x, b *autograd.Var[float64], axis int) string {
	bn := w.d.nameOf(w.g.Name(b)).plain
	off := 0
	if w.d.Batched {
		off = 1
	}
	every := ""
	if w.d.Batched {
		every = ", in every sample n"
	}
	if b.Value.Rank() == 1 && axis == off {
		return fmt.Sprintf("%s has one value per output channel: %s[c] is added to every pixel of channel c%s", bn, bn, every)
	}
	if axis == off+1 {
		return fmt.Sprintf("%s (%s) has one value per output pixel and is added to the single output channel%s", bn, w.d.dims(b.Value.Shape(), false), every)
	}
	return fmt.Sprintf("%s has one value per output element%s", bn, every)
}

// ones is the column of N ones, 1_N, of the batched form.
func (w *walker) ones() expr.Expr {
	n := w.d.batch
	return expr.Fn{Name: "1_N", TeX: `\mathbf{1}_{N}`, Eval: func([]*tensor.Tensor[float64]) (*tensor.Tensor[float64], error) {
		t := tensor.New[float64](n)
		t.Fill(1)
		return t, nil
	}}
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
	v = w.g.GradNode(v)
	if dn := w.deltaName(v); dn != "" {
		return expr.Ref{Name: dn}
	}
	return expr.Grad{Of: w.d.Objective, Wrt: expr.Ref{Name: w.g.Name(v)}}
}

func (w *walker) backward(v *autograd.Var[float64], param bool) {
	var chain []expr.Expr
	var notes []string
	for _, c := range w.g.GradConsumers(v) {
		ex := w.g.Explainer(c)
		in := make([]expr.Expr, len(c.Inputs))
		for i, u := range c.Inputs {
			in[i] = expr.Ref{Name: w.g.Name(u)}
		}
		for i, u := range c.Inputs {
			if u != v {
				continue
			}
			g := ex.BackwardFormula(i, in, expr.Ref{Name: w.g.Name(c)}, w.gradRef(c))
			if b, ok := c.Op.(*ops.BiasAddOp[float64]); ok && i == 1 {
				var n string
				g, n = w.biasGrad(c, v, b, g)
				if n != "" {
					notes = append(notes, n)
				}
			}
			if t, ok := c.Op.(*ops.ConvTranspose2dOp[float64]); ok {
				notes = append(notes, w.deconvNote(c, i, t))
			}
			chain = append(chain, g)
		}
	}
	var ch expr.Expr = expr.Sum(chain)
	if len(chain) == 1 {
		ch = chain[0]
	}
	eq := Equation{Node: w.g.Name(v), LHS: w.gradRef(v), Chain: w.tidy(expr.Simplify(w.substituteObjective(ch))), Shape: v.Grad.Shape(), Param: param, Notes: notes}
	if w.deltaName(v) != "" {
		eq.Alias = expr.Grad{Of: w.d.Objective, Wrt: expr.Ref{Name: w.g.Name(v)}}
	}
	if exp := w.tidy(expr.Simplify(w.expand(eq.Chain))); expr.String(exp) != expr.String(eq.Chain) {
		eq.Expanded = exp
	}
	w.d.Backward = append(w.d.Backward, eq)
	w.d.byLHS[v] = &w.d.Backward[len(w.d.Backward)-1]
}

// biasGrad writes the gradient of the bias b of the bias addition c with
// its broadcast undone explicitly: Δᵀ·1_N for a row bias, 1_Nᵀ·∂J/∂A for a
// scalar one, a reshape where a per-pixel bias lacks the channel axis of
// the upstream gradient; def is the op's own form, kept otherwise.
func (w *walker) biasGrad(c, b *autograd.Var[float64], op *ops.BiasAddOp[float64], def expr.Expr) (expr.Expr, string) {
	g := w.gradRef(c)
	gs, bs := c.Value.Shape(), b.Value.Shape()
	gn, bn := w.d.show(g).Render(expr.Style{}), w.d.nameOf(w.g.Name(b)).plain
	if w.d.Batched {
		switch {
		case len(gs) == 2 && len(bs) == 1:
			return expr.MatProd{expr.Transpose{X: g}, w.ones()}, ""
		case len(gs) == 1 && b.Value.Len() == 1:
			return expr.MatProd{expr.Transpose{X: w.ones()}, g}, ""
		}
	} else if tensor.SameShape(gs, bs) {
		return def, ""
	}
	f, ok := def.(expr.Fn)
	if !ok { // per sample, same elements in another shape: b1 (4×4) from δ2 (1×4×4)
		shape := append([]int(nil), bs...)
		return expr.Fn{Name: "reshape", Args: []expr.Expr{g}, Note: "to " + w.d.dims(bs, false), NoteTeX: `\text{to } ` + w.d.dims(bs, true),
				Eval: func(a []*tensor.Tensor[float64]) (*tensor.Tensor[float64], error) { return a[0].Reshape(shape...) }},
			fmt.Sprintf("%s is added to the single output channel, so its gradient is that channel of %s", bn, gn)
	}
	switch f.Name {
	case "Σ_batch":
		f.Name, f.TeX = "Σ_n", `\textstyle\sum_{n}`
		if len(gs) > 2 {
			return f, fmt.Sprintf("the sum over the samples n of %s[n,1,:,:]: %s is added to the single output channel of every sample", gn, bn)
		}
	case "Σ_pixels":
		f.Name, f.TeX = "Σ_h,w", `\textstyle\sum_{h,w}`
		return f, fmt.Sprintf("%s[c] is the sum of %s over the pixels (h, w) of channel c", w.d.nameOf(w.g.Name(b)).plain+"'s gradient", gn)
	case "Σ_batch,pixels":
		f.Name, f.TeX = "Σ_n,h,w", `\textstyle\sum_{n,h,w}`
		return f, fmt.Sprintf("element c is the sum of %s over the samples n and the pixels (h, w) of channel c", gn)
	}
	return f, ""
}

// deconvNote is the element formula of a transposed convolution's
// gradient, 1-based, under the spec's kernel reading.
func (w *walker) deconvNote(c *autograd.Var[float64], i int, op *ops.ConvTranspose2dOp[float64]) string {
	x, wt := c.Inputs[0], c.Inputs[1]
	xn, wn := w.d.nameOf(w.g.Name(x)).plain, w.d.nameOf(w.g.Name(wt)).plain
	g := w.d.show(w.gradRef(c)).Render(expr.Style{})
	o := op.Options
	kh, kw := wt.Value.Dim(2), wt.Value.Dim(3)
	ra, rb := "a", "b"
	if o.Flip {
		ra, rb = "k_h+1−a", "k_w+1−b"
	}
	n, sum := "", "Σ_i Σ_j"
	if w.d.Batched {
		n, sum = "n,", "Σ_n Σ_i Σ_j"
	}
	sh, sw, ph, pw := "s", "s", "p", "p"
	vals := fmt.Sprintf("s = %d, p = %d", o.StrideH, o.PadH)
	if o.StrideH != o.StrideW || o.PadH != o.PadW {
		sh, sw, ph, pw = "s_h", "s_w", "p_h", "p_w"
		vals = fmt.Sprintf("s_h = %d, s_w = %d, p_h = %d, p_w = %d", o.StrideH, o.StrideW, o.PadH, o.PadW)
	}
	pos := func(a, b string) string {
		return fmt.Sprintf("%s[%sc', (i−1)·%s + %s − %s, (j−1)·%s + %s − %s]", g, n, sh, a, ph, sw, b, pw)
	}
	kern := "; " + vals
	if o.Flip {
		kern += fmt.Sprintf(", k_h = %d, k_w = %d", kh, kw)
	}
	if i == 0 {
		return fmt.Sprintf("element: ∂%s/∂%s[%sc,i,j] = Σ_c' Σ_a Σ_b %s[c,c',%s,%s]·%s, terms of %s outside its range being 0%s",
			w.d.Objective, xn, n, wn, ra, rb, pos("a", "b"), g, kern)
	}
	return fmt.Sprintf("element: ∂%s/∂%s[c,c',a,b] = %s %s[%sc,i,j]·%s, terms of %s outside its range being 0%s",
		w.d.Objective, wn, sum, xn, n, pos(ra, rb), g, kern)
}

// substituteObjective writes ∂J/∂J as 1.
func (w *walker) substituteObjective(e expr.Expr) expr.Expr {
	return expr.Map(e, func(n expr.Expr) expr.Expr {
		if g, ok := n.(expr.Grad); ok && g.Wrt.Name == w.g.Name(w.objective) && len(g.Wrt.Index) == 0 {
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

// tidy rewrites an equation the way a textbook writes it, keeping it
// evaluable: no transpose of a scalar and a scalar factor written first
// (σ(−a)·H2, not H2·σ(−a)ᵀ), no product with the ones vector 1_N where the
// other factor already has N elements, the batch size of a reshape written
// N, one name (corr) for the cross-correlations of a transposed
// convolution's two gradients, and the kernel reading named as the spec
// names it.
func (w *walker) tidy(e expr.Expr) expr.Expr {
	e = expr.Map(e, func(n expr.Expr) expr.Expr {
		switch x := n.(type) {
		case expr.Transpose:
			if w.scalar(x.X) {
				return x.X
			}
		case expr.MatProd:
			var sc, rest []expr.Expr
			for _, f := range x {
				if w.scalar(f) {
					sc = append(sc, f)
				} else {
					rest = append(rest, f)
				}
			}
			if len(sc) > 0 {
				var r expr.Expr = expr.MatProd(rest)
				if len(rest) == 1 {
					r = rest[0]
				}
				if len(rest) == 0 {
					return expr.Product(sc)
				}
				return expr.Product(append(sc, r))
			}
		case expr.Fn:
			switch x.Name {
			case "𝟏": // the op's own ones, which knows its length
				return expr.Fn{Name: "1_N", TeX: `\mathbf{1}_{N}`, Eval: x.Eval}
			case "reshape":
				if w.d.Batched {
					pre := fmt.Sprintf("to %d×", w.d.batch)
					if rest, ok := strings.CutPrefix(x.Note, pre); ok {
						x.Note = "to N×" + rest
						x.NoteTeX = `\text{to } N\times ` + strings.ReplaceAll(rest, "×", `\times `)
					} else if strings.HasPrefix(x.Note, "to ") && x.NoteTeX == "" {
						x.NoteTeX = `\text{to } ` + strings.ReplaceAll(strings.TrimPrefix(x.Note, "to "), "×", `\times `)
					}
				} else if strings.HasPrefix(x.Note, "to ") && x.NoteTeX == "" {
					x.NoteTeX = `\text{to } ` + strings.ReplaceAll(strings.TrimPrefix(x.Note, "to "), "×", `\times `)
				}
				return x
			case "conv":
				x.Name = "corr"
			}
			x.Note = strings.ReplaceAll(x.Note, "flipped kernel", "flipped")
			x.NoteTeX = strings.ReplaceAll(x.NoteTeX, "flipped kernel", "flipped")
			return x
		}
		return n
	})
	return expr.Map(e, func(n expr.Expr) expr.Expr {
		if h, ok := n.(expr.Hadamard); ok {
			var keep []expr.Expr
			for _, f := range h {
				if fn, ok := f.(expr.Fn); !ok || fn.Name != "1_N" {
					keep = append(keep, f)
				}
			}
			switch {
			case len(keep) == 0 || len(keep) == len(h):
				return n
			case len(keep) == 1:
				return keep[0]
			}
			return expr.Hadamard(keep)
		}
		return n
	})
}

// scalar reports whether e has a single element.
func (w *walker) scalar(e expr.Expr) bool {
	switch x := e.(type) {
	case expr.Num:
		return true
	case expr.Ref:
		v := w.d.nodes[x.Name]
		return v != nil && v.Value.Len() == 1
	case expr.Grad:
		v := w.d.nodes[x.Wrt.Name]
		return v != nil && v.Value.Len() == 1
	case expr.Call:
		return all(x.Args, w.scalar)
	case expr.Neg:
		return w.scalar(x.X)
	case expr.Diff:
		return w.scalar(x.A) && w.scalar(x.B)
	case expr.Quot:
		return w.scalar(x.A) && w.scalar(x.B)
	case expr.Sum:
		return all(x, w.scalar)
	case expr.Product:
		return all(x, w.scalar)
	case expr.Hadamard:
		return all(x, w.scalar)
	case expr.MatProd:
		return all(x, w.scalar)
	case expr.Transpose:
		return w.scalar(x.X)
	}
	return false
}

func all(es []expr.Expr, f func(expr.Expr) bool) bool {
	for _, e := range es {
		if !f(e) {
			return false
		}
	}
	return len(es) > 0
}

// ShapeText writes a shape as ℝ^{a×b}, the batch axis as N and sizes set
// symbolic (see Symbolic) as their symbols.
func (d *Derivation) ShapeText(s []int, latex bool) string {
	if len(s) == 0 {
		if latex {
			return `\mathbb{R}`
		}
		return "ℝ"
	}
	if latex {
		return `\mathbb{R}^{` + d.dimsFrom(s, true, d.Batched) + `}`
	}
	return "ℝ^(" + d.dimsFrom(s, false, d.Batched) + ")"
}

// dims writes a shape as 2×2×2, the first axis as N in the batched form.
func (d *Derivation) dims(s []int, latex bool) string { return d.dimsFrom(s, latex, false) }

func (d *Derivation) dimsFrom(s []int, latex, batchFirst bool) string {
	parts := make([]string, len(s))
	for i, x := range s {
		parts[i] = fmt.Sprint(x)
		if sym, ok := d.sizes[x]; ok {
			parts[i] = sym
		}
		if i == 0 && batchFirst {
			parts[i] = "N"
		}
	}
	if latex {
		return strings.Join(parts, `\times `)
	}
	return strings.Join(parts, "×")
}
