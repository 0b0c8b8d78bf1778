package trace

import (
	"fmt"
	"io"
	"strings"

	"github.com/backprop-dev/backprop/expr"
	"github.com/backprop-dev/backprop/tensor"
)

// Header is what a rendering states once at its top: the problem, the
// conventions in force and the objective.
type Header struct {
	Title       string
	Conventions []string // one line each, e.g. "reshape order: row-major (NumPy, PyTorch)"
	Objective   string   // e.g. "maximize J = log p(y=0)"
}

// WriteText writes the trace as plain text, one line per element, so a
// reader can find the exact line where a hand solution diverges.
func (t *Trace) WriteText(w io.Writer, h Header, digits int) error {
	ew := &errWriter{w: w}
	st := expr.Style{Digits: digits}
	ew.printf("%s\n%s\n", h.Title, strings.Repeat("=", len([]rune(h.Title))))
	ew.printf("Conventions:\n")
	for _, c := range h.Conventions {
		ew.printf("  - %s\n", c)
	}
	ew.printf("Objective: %s\n\n", h.Objective)
	section := func(name string, steps []Step) {
		ew.printf("%s\n%s\n", name, strings.Repeat("-", len(name)))
		group := 0
		for i, s := range steps {
			if s.Group != group && s.Group > 0 {
				ew.printf("\n--- time step t = %d ---\n", s.Group)
			}
			group = s.Group
			ew.printf("\n[%d] %s = %s\n", i+1, s.Target.Render(st), s.Formula.Render(st))
			if s.Note != "" {
				ew.printf("    (%s)\n", s.Note)
			}
			for _, l := range s.Lines {
				ew.printf("    %s\n", lineText(l, st))
			}
			ew.printf("    %s =\n%s", s.Target.Render(st), indent(matrixText(s.Value, digits), "      "))
		}
		ew.printf("\n")
	}
	section("Forward pass", t.Forward)
	section("Backward pass", t.Backward)
	return ew.err
}

// Parts are the forms of one element line, each shown once: the target,
// the formula in names, the numbers substituted, inner values collapsed,
// and the value — the forms `backprop solve --detail full` joins with " = ".
func (l Line) Parts(st expr.Style) []string { return lineParts(l, st) }

func lineParts(l Line, st expr.Style) []string {
	parts := []string{l.Target.Render(st), l.Symbolic.Render(st)}
	num := l.Numeric.Render(st)
	if num != parts[1] {
		parts = append(parts, num)
	}
	if l.Collapsed {
		c := st
		c.Collapse = true
		if cs := l.Numeric.Render(c); cs != num {
			parts = append(parts, cs)
		}
	}
	if v := expr.Num(l.Value).Render(st); parts[len(parts)-1] != v {
		parts = append(parts, v)
	}
	return parts
}

func lineText(l Line, st expr.Style) string { return strings.Join(lineParts(l, st), " = ") }

func indent(s, pre string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i := range lines {
		lines[i] = pre + lines[i]
	}
	return strings.Join(lines, "\n") + "\n"
}

// matrixText prints a tensor as aligned rows; 3-D and higher tensors as a
// block per leading index.
func matrixText(m Matrix, digits int) string {
	if len(m.Shape) == 0 {
		return expr.FormatNumber(m.Data[0], digits) + "\n"
	}
	cells := make([]string, len(m.Data))
	width := 0
	for i, v := range m.Data {
		cells[i] = expr.FormatNumber(v, digits)
		width = max(width, len(cells[i]))
	}
	row := func(off, n int) string {
		parts := make([]string, n)
		for j := range n {
			parts[j] = fmt.Sprintf("%*s", width, cells[off+j])
		}
		return "[" + strings.Join(parts, "  ") + "]"
	}
	r := len(m.Shape)
	if r == 1 {
		return row(0, m.Shape[0]) + fmt.Sprintf("   (%s)\n", tensor.FormatShape(m.Shape))
	}
	rows, cols := m.Shape[r-2], m.Shape[r-1]
	var b strings.Builder
	blocks := tensor.NumElements(m.Shape[:r-2])
	for blk := range blocks {
		if r > 2 {
			idx := tensor.Index(m.Shape[:r-2], blk)
			for i := range idx {
				idx[i]++
			}
			fmt.Fprintf(&b, "[%s,:,:] =\n", strings.Trim(strings.Join(strings.Fields(fmt.Sprint(idx)), ","), "[]"))
		}
		for i := range rows {
			b.WriteString(row((blk*rows+i)*cols, cols))
			b.WriteString("\n")
		}
	}
	fmt.Fprintf(&b, "(%s)\n", tensor.FormatShape(m.Shape))
	return b.String()
}

// WriteMarkdown writes the trace as a Markdown document whose mathematics is
// LaTeX between $$ fences, which GitHub renders.
func (t *Trace) WriteMarkdown(w io.Writer, h Header, digits int) error {
	ew := &errWriter{w: w}
	st := expr.Style{LaTeX: true, Digits: digits}
	ew.printf("# %s\n\n", h.Title)
	ew.printf("**Conventions**\n\n")
	for _, c := range h.Conventions {
		ew.printf("- %s\n", c)
	}
	ew.printf("\n**Objective:** %s\n\n", h.Objective)
	section := func(name string, steps []Step) {
		ew.printf("## %s\n\n", name)
		for i, s := range steps {
			ew.printf("### Step %d: $%s$\n\n", i+1, s.Target.Render(st))
			ew.printf("$$\n%s = %s\n$$\n\n", s.Target.Render(st), s.Formula.Render(st))
			if s.Note != "" {
				ew.printf("*%s.*\n\n", s.Note)
			}
			if len(s.Lines) > 0 {
				ew.printf("$$\n\\begin{aligned}\n")
				for _, l := range s.Lines {
					ew.printf("%s\\\\\n", lineLaTeX(l, st))
				}
				ew.printf("\\end{aligned}\n$$\n\n")
			}
			ew.printf("$$\n%s = %s\n$$\n\n", s.Target.Render(st), matrixLaTeX(s.Value, digits))
		}
	}
	section("Forward pass", t.Forward)
	section("Backward pass", t.Backward)
	return ew.err
}

func lineLaTeX(l Line, st expr.Style) string {
	p := lineParts(l, st)
	return p[0] + " &= " + strings.Join(p[1:], " = ")
}

// MatrixLaTeX writes a tensor as LaTeX bmatrix blocks: a scalar as a
// number, a vector as a column (as the problem set writes vectors), a
// matrix as itself, and a higher-rank tensor as one matrix per leading
// index. The classroom page renders values with it too.
func MatrixLaTeX(m Matrix, digits int) string {
	if len(m.Shape) == 0 && len(m.Data) == 0 {
		return ""
	}
	return matrixLaTeX(m, digits)
}

func matrixLaTeX(m Matrix, digits int) string {
	st := expr.Style{LaTeX: true, Digits: digits}
	if len(m.Shape) == 0 {
		return expr.Num(m.Data[0]).Render(st)
	}
	r := len(m.Shape)
	rows, cols := 1, m.Shape[r-1]
	if r == 1 { // vectors are columns, as in the problem set
		rows, cols = m.Shape[0], 1
	} else {
		rows = m.Shape[r-2]
	}
	blocks := tensor.NumElements(m.Shape) / max(rows*cols, 1)
	var out []string
	for blk := range blocks {
		var b strings.Builder
		b.WriteString(`\begin{bmatrix}`)
		for i := range rows {
			cells := make([]string, cols)
			for j := range cols {
				cells[j] = expr.Num(m.Data[(blk*rows+i)*cols+j]).Render(st)
			}
			b.WriteString(strings.Join(cells, " & "))
			if i < rows-1 {
				b.WriteString(`\\ `)
			}
		}
		b.WriteString(`\end{bmatrix}`)
		out = append(out, b.String())
	}
	if len(out) == 1 {
		return out[0]
	}
	return `\left[\,` + strings.Join(out, ",\\;") + `\,\right]`
}

type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) printf(format string, a ...any) {
	if e.err == nil {
		_, e.err = fmt.Fprintf(e.w, format, a...)
	}
}
