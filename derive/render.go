package derive

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/backprop-dev/backprop/expr"
)

// parts renders the forms of e (LHS, alias, chain, expanded) for printing.
func (d *Derivation) parts(e Equation, st expr.Style) []string {
	p := []string{d.show(e.LHS).Render(st)}
	if e.Alias != nil {
		p = append(p, d.show(e.Alias).Render(st))
	}
	p = append(p, d.show(e.Chain).Render(st))
	if e.Expanded != nil {
		p = append(p, d.show(e.Expanded).Render(st))
	}
	return p
}

// formName is the heading of the form: per sample or batched.
func (d *Derivation) formName() string {
	if d.Batched {
		return "batched over N samples (matrices have one row per sample)"
	}
	return "per sample (vectors are columns)"
}

// WriteText writes the equations as plain text, one per line, with their
// notes indented under them.
func (d *Derivation) WriteText(w io.Writer) error {
	var b strings.Builder
	st := expr.Style{}
	write := func(eqs []Equation) {
		for _, e := range eqs {
			fmt.Fprintf(&b, "  %s    ∈ %s\n", strings.Join(d.parts(e, st), " = "), d.shapeOf(e, false))
			for _, n := range e.Notes {
				fmt.Fprintf(&b, "      (%s)\n", n)
			}
		}
	}
	fmt.Fprintf(&b, "Forward, %s:\n", d.formName())
	for _, n := range d.stackNotes() {
		fmt.Fprintf(&b, "  (%s)\n", n)
	}
	write(d.Forward)
	fmt.Fprintf(&b, "\nBackward, %s:\n", d.formName())
	write(d.Backward)
	_, err := io.WriteString(w, b.String())
	return err
}

// stackNotes explains the names of the batched form that mark a stack.
func (d *Derivation) stackNotes() []string {
	var out []string
	for _, n := range d.stacked {
		base := strings.TrimSuffix(n, "_N")
		up := strings.ToUpper(base[:1]) + base[1:]
		out = append(out, fmt.Sprintf("%s is %s of the N samples stacked along a first axis (the capital %s is another value)", d.nameOf(n).plain, base, up))
	}
	return out
}

// WriteMarkdown writes the equations as LaTeX blocks that GitHub renders:
// one aligned row per form of an equation (LHS = alias, = chain,
// = expanded), so that no row runs off the page, and the notes as a list
// under the block.
func (d *Derivation) WriteMarkdown(w io.Writer) error {
	var b strings.Builder
	st := expr.Style{LaTeX: true}
	write := func(title string, eqs []Equation, forward bool) {
		fmt.Fprintf(&b, "%s\n\n", title)
		for _, n := range d.stackNotes() {
			if forward {
				fmt.Fprintf(&b, "%s.\n\n", wrap(n, mdWidth, ""))
			}
		}
		b.WriteString("$$\n\\begin{aligned}\n")
		var notes []string
		for _, e := range eqs {
			p := d.parts(e, st)
			fmt.Fprintf(&b, "%s &= %s &&\\in %s\\\\\n", p[0], p[1], d.shapeOf(e, true))
			for _, q := range p[2:] {
				fmt.Fprintf(&b, "&= %s\\\\\n", q)
			}
			for _, n := range e.Notes {
				notes = append(notes, wrap(fmt.Sprintf("- %s: %s", d.show(e.LHS).Render(expr.Style{}), n), mdWidth, "  "))
			}
		}
		b.WriteString("\\end{aligned}\n$$\n\n")
		if len(notes) > 0 {
			b.WriteString(strings.Join(notes, "\n") + "\n\n")
		}
	}
	if d.Batched {
		write("**Forward**, batched over $N$ samples (one row per sample):", d.Forward, true)
		write("**Backward**, batched:", d.Backward, false)
	} else {
		write("**Forward**, per sample (vectors are columns):", d.Forward, true)
		write("**Backward**, per sample:", d.Backward, false)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// JSONEquation is the machine-readable form of an equation.
type JSONEquation struct {
	LHS      string   `json:"lhs"`
	Alias    string   `json:"alias,omitempty"`
	Chain    string   `json:"chain"`
	Expanded string   `json:"expanded,omitempty"`
	LaTeX    string   `json:"latex"`
	Shape    []int    `json:"shape"`
	Space    string   `json:"space"` // the shape as printed: ℝ^(N×k)
	Param    bool     `json:"parameter,omitempty"`
	Notes    []string `json:"notes,omitempty"`
}

// JSON returns the equations in machine-readable form.
func (d *Derivation) JSON() map[string]any {
	conv := func(eqs []Equation) []JSONEquation {
		var out []JSONEquation
		for _, e := range eqs {
			st := expr.Style{}
			j := JSONEquation{LHS: d.show(e.LHS).Render(st), Chain: d.show(e.Chain).Render(st), Shape: e.Shape, Space: d.shapeOf(e, false), Param: e.Param, Notes: e.Notes}
			if e.Alias != nil {
				j.Alias = d.show(e.Alias).Render(st)
			}
			if e.Expanded != nil {
				j.Expanded = d.show(e.Expanded).Render(st)
			}
			j.LaTeX = strings.Join(d.parts(e, expr.Style{LaTeX: true}), " = ")
			out = append(out, j)
		}
		return out
	}
	m := map[string]any{"batched": d.Batched, "objective": d.Objective, "forward": conv(d.Forward), "backward": conv(d.Backward)}
	if n := d.stackNotes(); len(n) > 0 {
		m["notes"] = n
	}
	if d.declined != "" {
		m["declined"] = d.declined
	}
	return m
}

// WriteJSON writes JSON().
func (d *Derivation) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(d.JSON())
}

// shapeOf is ShapeText with the batch axis shown only for values that have
// one (a parameter's gradient has its parameter's shape).
func (d *Derivation) shapeOf(e Equation, latex bool) string {
	if e.Param && d.Batched {
		c := *d
		c.Batched = false
		return c.ShapeText(e.Shape, latex)
	}
	return d.ShapeText(e.Shape, latex)
}
