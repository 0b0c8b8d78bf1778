package derive

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/backprop-dev/backprop/expr"
)

func (e Equation) parts(st expr.Style) []string {
	p := []string{e.LHS.Render(st)}
	if e.Alias != nil {
		p = append(p, e.Alias.Render(st))
	}
	p = append(p, e.Chain.Render(st))
	if e.Expanded != nil {
		p = append(p, e.Expanded.Render(st))
	}
	return p
}

// WriteText writes the equations as plain text.
func (d *Derivation) WriteText(w io.Writer) error {
	var b strings.Builder
	st := expr.Style{}
	form := "per sample (vectors are columns)"
	if d.Batched {
		form = "batched over N samples (matrices have one row per sample)"
	}
	fmt.Fprintf(&b, "Forward, %s:\n", form)
	for _, e := range d.Forward {
		fmt.Fprintf(&b, "  %s    ∈ %s\n", strings.Join(e.parts(st), " = "), d.shapeOf(e, false))
	}
	fmt.Fprintf(&b, "\nBackward, %s:\n", form)
	for _, e := range d.Backward {
		fmt.Fprintf(&b, "  %s    ∈ %s\n", strings.Join(e.parts(st), " = "), d.shapeOf(e, false))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteMarkdown writes the equations as LaTeX blocks that GitHub renders.
func (d *Derivation) WriteMarkdown(w io.Writer) error {
	var b strings.Builder
	st := expr.Style{LaTeX: true}
	write := func(title string, eqs []Equation) {
		fmt.Fprintf(&b, "%s\n\n$$\n\\begin{aligned}\n", title)
		for _, e := range eqs {
			p := e.parts(st)
			fmt.Fprintf(&b, "%s &= %s &&\\in %s\\\\\n", p[0], strings.Join(p[1:], " = "), d.shapeOf(e, true))
		}
		b.WriteString("\\end{aligned}\n$$\n\n")
	}
	if d.Batched {
		write("**Forward**, batched over $N$ samples (one row per sample):", d.Forward)
		write("**Backward**, batched:", d.Backward)
	} else {
		write("**Forward**, per sample (vectors are columns):", d.Forward)
		write("**Backward**, per sample:", d.Backward)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// JSONEquation is the machine-readable form of an equation.
type JSONEquation struct {
	LHS      string `json:"lhs"`
	Alias    string `json:"alias,omitempty"`
	Chain    string `json:"chain"`
	Expanded string `json:"expanded,omitempty"`
	LaTeX    string `json:"latex"`
	Shape    []int  `json:"shape"`
	Param    bool   `json:"parameter,omitempty"`
}

// JSON returns the equations in machine-readable form.
func (d *Derivation) JSON() map[string]any {
	conv := func(eqs []Equation) []JSONEquation {
		var out []JSONEquation
		for _, e := range eqs {
			j := JSONEquation{LHS: expr.String(e.LHS), Chain: expr.String(e.Chain), Shape: e.Shape, Param: e.Param}
			if e.Alias != nil {
				j.Alias = expr.String(e.Alias)
			}
			if e.Expanded != nil {
				j.Expanded = expr.String(e.Expanded)
			}
			p := e.parts(expr.Style{LaTeX: true})
			j.LaTeX = strings.Join(p, " = ")
			out = append(out, j)
		}
		return out
	}
	return map[string]any{"batched": d.Batched, "objective": d.Objective, "forward": conv(d.Forward), "backward": conv(d.Backward)}
}

// WriteJSON writes JSON().
func (d *Derivation) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
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
