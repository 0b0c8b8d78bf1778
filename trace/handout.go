package trace

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strings"

	"github.com/backprop-dev/backprop/expr"
	"github.com/backprop-dev/backprop/ops"
	"github.com/backprop-dev/backprop/tensor"
)

// Handout says what a compact worked solution shows: the problem restated,
// what is asked, and closing remarks. The trace itself supplies the steps.
type Handout struct {
	// Given restates the problem's data, one line each.
	Given []string
	// AskedForward names the forward values asked for (nil: the outputs
	// of every layer); AskedGradients the parameters whose gradients are
	// asked for (nil: all).
	AskedForward, AskedGradients []string
	// Maximize says the objective is maximized (gradient ascent).
	Maximize bool
	// Elements is how many representative elements a step works in full
	// (0: 2).
	Elements int
}

// view is one step as a handout shows it.
type view struct {
	head  []expr.Expr // Target = ... = ... chain
	rule  []expr.Expr // RuleLHS = Rule
	notes []string
	lines []Line
	more  int    // elements not worked
	value Matrix // nil Data: not shown
	same  string // the value equals this earlier tensor
	tail  string // appended to the head line: ", since every u0 > 0"
	group int    // the time step of a recurrent network (0: none)
	quiet bool   // say nothing of same: the head or rule says it
	final bool   // the value is shown in the answers only
}

// ruleNote is the note that came with the rule, if any.
func (v view) ruleNote() string {
	if v.rule == nil || len(v.notes) == 0 {
		return ""
	}
	return v.notes[len(v.notes)-1]
}

// hiddenGrad reports whether the handout leaves out a backward step.
func (h Handout) hiddenGrad(s Step) bool {
	if h.AskedGradients == nil {
		return false
	}
	if s.Param {
		return !slices.Contains(h.AskedGradients, s.Name)
	}
	for _, p := range s.DependsOn {
		if slices.Contains(h.AskedGradients, p) {
			return false
		}
	}
	return true
}

// squeeze drops leading axes of size 1, so a one-channel image reads as
// the H×W matrix the problem writes.
func squeeze(m Matrix) Matrix {
	s := m.Shape
	for len(s) > 1 && s[0] == 1 {
		s = s[1:]
	}
	return Matrix{Shape: s, Data: m.Data}
}

func allPositive(d []float64) bool {
	for _, v := range d {
		if v <= 0 {
			return false
		}
	}
	return len(d) > 0
}

func sameData(a, b []float64) bool {
	if len(a) != len(b) || len(a) == 0 {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// pick chooses the elements worked in full: the first, the one with the
// most terms, one that a mask or ReLU zeroed, and the last, at most n.
func pick(lines []Line, n int) []int {
	if len(lines) <= n {
		out := make([]int, len(lines))
		for i := range out {
			out[i] = i
		}
		return out
	}
	set := []int{0}
	longest, ll := 0, -1
	for i, l := range lines {
		if k := len(expr.String(l.Symbolic)); k > ll {
			longest, ll = i, k
		}
	}
	add := func(i int) {
		if len(set) < n && !slices.Contains(set, i) {
			set = append(set, i)
		}
	}
	add(longest)
	for i, l := range lines {
		if l.Value == 0 {
			add(i)
			break
		}
	}
	add(len(lines) - 1)
	slices.Sort(set)
	return set
}

// elide shortens long sums to their first three terms, an ellipsis and
// the last, so that a worked line fits on a page.
func elide(e expr.Expr) expr.Expr {
	return expr.Map(e, func(n expr.Expr) expr.Expr {
		if s, ok := n.(expr.Sum); ok && len(s) > 6 {
			return expr.Sum{s[0], s[1], s[2], expr.Raw{Plain: "…", TeX: `\dots`}, s[len(s)-1]}
		}
		return n
	})
}

// handoutLine is a worked line: the element in names when it is short,
// the numbers substituted (long sums elided), collapsed inner values and
// the result.
func handoutLine(l Line, st expr.Style) []string {
	parts := []string{l.Target.Render(st)}
	sym := l.Symbolic.Render(st)
	if len([]rune(expr.String(l.Symbolic))) <= 50 {
		parts = append(parts, sym)
	}
	num := elide(l.Numeric).Render(st)
	if num != sym {
		parts = append(parts, num)
	}
	if l.Collapsed {
		c := st
		c.Collapse = true
		if cs := elide(l.Numeric).Render(c); cs != num {
			parts = append(parts, cs)
		}
	}
	if v := expr.Num(l.Value).Render(st); parts[len(parts)-1] != v {
		parts = append(parts, v)
	}
	return parts
}

// build turns the trace into the handout's views.
func (t *Trace) handoutViews(h Handout) (fwd, bwd []view, notes []string, answers []Step) {
	n := h.Elements
	if n == 0 {
		n = 2
	}
	values := map[string]Matrix{}
	for _, s := range t.Forward {
		values[s.Name] = s.Value
	}
	type shown struct {
		name string
		data []float64
		rank int
	}
	var printed []shown
	// sameAs names an earlier tensor with the same numbers shown at least
	// at this rank, or a later one that shows them at a higher rank (a
	// vector that the next step reshapes into a matrix)
	sameAs := func(m Matrix, later []Step) (string, bool) {
		r := len(squeeze(m).Shape)
		for _, p := range printed {
			if sameData(p.data, m.Data) && p.rank >= r {
				return p.name, true
			}
		}
		if r == 1 && len(m.Data) <= 8 {
			return "", false // a short vector fits on one line
		}
		for _, s := range later {
			if sameData(s.Value.Data, m.Data) && len(squeeze(s.Value).Shape) > r {
				return expr.String(s.Target), false
			}
		}
		return "", false
	}
	trivial := map[string]bool{"reshape": true, "flatten": true}
	elementwise := func(op string) bool { _, ok := ops.Activations[ops.Activation(op)]; return ok }
	st := expr.Style{}
	// forward
	dead := map[string][]int{}
	for k, s := range t.Forward {
		v := view{head: []expr.Expr{s.Target, s.Formula}, group: s.Group}
		long := len(s.Lines) > 0 && len([]rune(expr.String(s.Lines[0].Symbolic))) > 90
		if s.RuleLHS != nil && (len(s.Value.Shape) > 0 || long) {
			v.rule = []expr.Expr{s.RuleLHS, s.Rule}
			if s.RuleNote != "" {
				v.notes = append(v.notes, s.RuleNote)
			}
		}
		var earlier bool
		v.same, earlier = sameAs(s.Value, t.Forward[k+1:])
		if !trivial[s.Op] && !(earlier && elementwise(s.Op)) {
			idx := pick(s.Lines, n)
			for _, i := range idx {
				v.lines = append(v.lines, s.Lines[i])
			}
			v.more = len(s.Lines) - len(idx)
		}
		if v.same == "" {
			v.value = squeeze(s.Value)
			printed = append(printed, shown{expr.String(s.Target), s.Value.Data, len(v.value.Shape)})
		}
		v.quiet = v.quiet || (trivial[s.Op] && v.rule != nil)
		if s.Op == "relu" && len(s.Inputs) == 1 {
			for k, x := range values[s.Inputs[0]].Data {
				if x <= 0 {
					dead[s.Inputs[0]] = append(dead[s.Inputs[0]], k)
				}
			}
			if earlier {
				v.head = append(v.head, expr.Ref{Name: s.Inputs[0]})
				v.tail = fmt.Sprintf(", since every %s > 0", s.Inputs[0])
				v.rule, v.notes, v.quiet = nil, nil, true
			}
		}
		if in, ok := values[s.Inputs[0]]; ok && len(in.Data) == 1 && (s.Op == "sigmoid" || s.Op == "log_sigmoid") && len(s.Value.Shape) == 0 {
			x := in.Data[0]
			if s.Op == "sigmoid" && math.Abs(x) > 4 {
				comp := 1 / (1 + math.Exp(math.Abs(x)))
				side := fmt.Sprintf("1 − %s", expr.FormatNumber(comp, 4))
				if x < 0 {
					side = expr.FormatNumber(comp, 4)
				}
				notes = append(notes, fmt.Sprintf("The sigmoid is saturated: %s = %s, so %s = σ(%s) = %s, and the gradients below it are of the order of σ(−|%s|) = %s. Keep enough digits: rounding %s to %s would make every gradient 0.",
					s.Inputs[0], expr.FormatNumber(x, 6), s.Name, s.Inputs[0], side, s.Inputs[0], expr.FormatNumber(comp, 4), s.Name, map[bool]string{true: "1", false: "0"}[x > 0]))
			}
		}
		fwd = append(fwd, v)
	}
	for name, ks := range dead {
		var els []string
		m := values[name]
		for _, k := range ks {
			els = append(els, expr.String(expr.Ref{Name: name, Index: tensor.Index(m.Shape, k)}))
		}
		notes = append(notes, fmt.Sprintf("Dead ReLU units: %s ≤ 0, so those outputs are 0 and the gradient stops there (the mask 1[%s > 0] is 0).", strings.Join(els, ", "), name))
	}
	slices.Sort(notes)
	// backward
	printed = nil
	noted := map[string]bool{}
	for k, s := range t.Backward {
		if h.hiddenGrad(s) {
			continue
		}
		v := view{head: []expr.Expr{s.Target}, group: s.Group}
		if s.Chain != nil && !s.Param {
			v.head = append(v.head, s.Chain)
		}
		v.head = append(v.head, s.Formula)
		if s.Local != "" && !noted[s.Op] {
			noted[s.Op] = true
			v.notes = append(v.notes, s.Local)
		}
		if s.RuleLHS != nil && len(s.Value.Shape) > 0 {
			v.rule = []expr.Expr{s.RuleLHS, s.Rule}
			if s.RuleNote != "" {
				v.notes = append(v.notes, s.RuleNote)
			}
		}
		var later []Step
		for _, l := range t.Backward[k+1:] {
			if !h.hiddenGrad(l) {
				later = append(later, l)
			}
		}
		var earlier bool
		v.same, earlier = sameAs(s.Value, later)
		if earlier && s.Op == "relu" && len(v.head) > 1 && allPositive(values[s.Name].Data) {
			up := expr.Expr(expr.Raw{Plain: v.same, TeX: v.same})
			if p, ok := s.Chain.(expr.Product); ok && len(p) == 2 {
				up = p[0] // the upstream gradient: ∂J/∂h0 for ∂J/∂u0
			}
			v.head = append(v.head, up)
			v.tail = ", since the mask is 1 everywhere"
			v.rule, v.quiet = nil, true
		}
		if s.Param && (h.AskedGradients == nil || slices.Contains(h.AskedGradients, s.Name)) {
			v.final = true
		}
		if !trivial[s.Op] && !(earlier && elementwise(s.Op)) {
			idx := pick(s.Lines, n)
			for _, i := range idx {
				v.lines = append(v.lines, s.Lines[i])
			}
			v.more = len(s.Lines) - len(idx)
		}
		if v.same == "" {
			v.value = squeeze(s.Value)
			printed = append(printed, shown{expr.String(s.Target), s.Value.Data, len(v.value.Shape)})
		}
		v.quiet = v.quiet || (trivial[s.Op] && v.rule != nil && earlier)
		bwd = append(bwd, v)
	}
	// answers
	for _, s := range t.Forward {
		if (h.AskedForward == nil && !trivial[s.Op] && s.Op != "bias_add") || slices.Contains(h.AskedForward, s.Name) {
			answers = append(answers, s)
		}
	}
	if h.AskedForward != nil { // in the order asked
		slices.SortStableFunc(answers, func(a, b Step) int {
			return slices.Index(h.AskedForward, a.Name) - slices.Index(h.AskedForward, b.Name)
		})
	}
	var grads []Step
	for _, s := range t.Backward {
		if s.Param && (h.AskedGradients == nil || slices.Contains(h.AskedGradients, s.Name)) {
			grads = append(grads, s)
		}
	}
	if h.AskedGradients != nil {
		slices.SortStableFunc(grads, func(a, b Step) int {
			return slices.Index(h.AskedGradients, a.Name) - slices.Index(h.AskedGradients, b.Name)
		})
	}
	answers = append(answers, grads...)
	if h.Maximize {
		notes = append(notes, "J is maximized: a gradient-ascent step moves every parameter along its gradient, θ ← θ + η·∂J/∂θ.")
	} else {
		notes = append(notes, "J is minimized: a gradient-descent step moves every parameter against its gradient, θ ← θ − η·∂J/∂θ.")
	}
	_ = st
	return fwd, bwd, notes, answers
}

// WriteHandoutText writes the compact worked solution as plain text: each
// step's formula, its general element, a few elements worked in numbers
// and the resulting tensor, then the answers asked for.
func (t *Trace) WriteHandoutText(w io.Writer, hd Header, h Handout, digits int) error {
	ew := &errWriter{w: w}
	st := expr.Style{Digits: digits}
	fwd, bwd, notes, answers := t.handoutViews(h)
	ew.printf("%s\n%s\n", hd.Title, strings.Repeat("=", len([]rune(hd.Title))))
	for _, g := range h.Given {
		ew.printf("%s\n", wrapText(g, 100, "       "))
	}
	ew.printf("%s\n", wrapText("Objective: "+hd.Objective, 100, "           "))
	ew.printf("Conventions:\n")
	for _, c := range hd.Conventions {
		ew.printf("  - %s\n", wrapText(c, 96, "    "))
	}
	section := func(name string, views []view) {
		ew.printf("\n%s\n%s\n", name, strings.Repeat("-", len(name)))
		group := 0
		// a blank line after a step that printed a tensor, or before the
		// first step: short steps follow each other without one
		blank := true
		for i, v := range views {
			if v.group != group && v.group > 0 {
				ew.printf("\n--- time step t = %d ---\n", v.group)
				blank = true
			}
			group = v.group
			tail := v.tail
			if v.final {
				tail += "   (value in the answers)"
			}
			if blank {
				ew.printf("\n")
			}
			blank = false
			ew.printf("[%d] %s%s\n", i+1, joinExprs(v.head, st), tail)
			if v.rule != nil {
				r := joinExprs(v.rule, st)
				if strings.HasPrefix(v.ruleNote(), "where ") {
					r += ", " + v.ruleNote()
				}
				ew.printf("    %s\n", r)
			}
			for _, n := range v.notes {
				if n == v.ruleNote() && strings.HasPrefix(n, "where ") {
					continue
				}
				ew.printf("    %s\n", wrapText(n, 92, "    "))
			}
			for _, l := range v.lines {
				ew.printf("    %s\n", strings.Join(handoutLine(l, st), " = "))
			}
			target := expr.String(v.head[0])
			switch {
			case v.final:
			case v.same != "":
				if v.same != target && !v.quiet {
					ew.printf("    %s holds the same numbers as %s\n", target, v.same)
				}
			case len(v.value.Shape) == 0 && len(v.lines) > 0:
				// the worked line ends with the value
			default:
				ew.printf("    %s =\n%s", v.head[0].Render(st), indent(handoutMatrixText(v.value, digits), "      "))
				blank = true
			}
		}
	}
	section("Forward pass", fwd)
	section("Backward pass", bwd)
	ew.printf("\nNotes\n-----\n")
	for _, n := range notes {
		ew.printf("- %s\n", wrapText(n, 96, "  "))
	}
	ew.printf("\nAnswers\n-------\n")
	for _, a := range answers {
		m := squeeze(a.Value)
		if len(m.Shape) <= 1 && len(m.Data) <= 8 {
			ew.printf("%s = %s", a.Target.Render(st), handoutMatrixText(m, digits))
			continue
		}
		ew.printf("%s =\n%s", a.Target.Render(st), indent(handoutMatrixText(m, digits), "  "))
	}
	return ew.err
}

func joinExprs(es []expr.Expr, st expr.Style) string {
	parts := make([]string, 0, len(es))
	for _, e := range es {
		r := e.Render(st)
		if len(parts) > 0 && parts[len(parts)-1] == r {
			continue
		}
		parts = append(parts, r)
	}
	return strings.Join(parts, " = ")
}

// wrapText breaks s at spaces so that no line is longer than width,
// indenting continuation lines.
func wrapText(s string, width int, pre string) string {
	words := strings.Fields(s)
	var b strings.Builder
	n := 0
	for i, w := range words {
		l := len([]rune(w))
		if i > 0 && n+1+l > width {
			b.WriteString("\n" + pre)
			n = len([]rune(pre))
		} else if i > 0 {
			b.WriteString(" ")
			n++
		}
		b.WriteString(w)
		n += l
	}
	return b.String()
}

// handoutMatrixText prints a vector of up to 8 elements as a row marked as
// a column (ᵀ), longer vectors 8 to a row, and matrices as in the trace.
func handoutMatrixText(m Matrix, digits int) string {
	if len(m.Shape) == 0 {
		return expr.FormatNumber(m.Data[0], digits) + "\n"
	}
	if len(m.Shape) != 1 {
		return blocksText(m, digits)
	}
	cells := make([]string, len(m.Data))
	width := 0
	for i, v := range m.Data {
		cells[i] = expr.FormatNumber(v, digits)
		width = max(width, len(cells[i]))
	}
	var b strings.Builder
	for off := 0; off < len(cells); off += 8 {
		end := min(off+8, len(cells))
		parts := make([]string, end-off)
		for j := range parts {
			parts[j] = fmt.Sprintf("%*s", width, cells[off+j])
		}
		if off == 0 {
			b.WriteString("[")
		} else {
			b.WriteString(" ")
		}
		b.WriteString(strings.Join(parts, "  "))
		if end == len(cells) {
			b.WriteString("]ᵀ")
		}
		b.WriteString("\n")
	}
	return b.String()
}

// blocksText prints a matrix as aligned rows and a tensor of higher rank
// as its matrices side by side, each headed by its leading indices.
func blocksText(m Matrix, digits int) string {
	r := len(m.Shape)
	rows, cols := m.Shape[r-2], m.Shape[r-1]
	cells := make([]string, len(m.Data))
	width := 0
	for i, v := range m.Data {
		cells[i] = expr.FormatNumber(v, digits)
		width = max(width, len(cells[i]))
	}
	blocks := tensor.NumElements(m.Shape[:r-2])
	perLine := max(1, 100/((width+2)*cols+4))
	var b strings.Builder
	for first := 0; first < blocks; first += perLine {
		last := min(first+perLine, blocks)
		blockWidth := (width+2)*cols + 2
		if r > 2 {
			for blk := first; blk < last; blk++ {
				idx := tensor.Index(m.Shape[:r-2], blk)
				parts := make([]string, len(idx))
				for i, x := range idx {
					parts[i] = fmt.Sprint(x + 1)
				}
				head := "[" + strings.Join(parts, ",") + ",:,:]"
				fmt.Fprintf(&b, "%-*s", blockWidth+2, head)
			}
			b.WriteString("\n")
		}
		for i := range rows {
			for blk := first; blk < last; blk++ {
				parts := make([]string, cols)
				for j := range cols {
					parts[j] = fmt.Sprintf("%*s", width, cells[(blk*rows+i)*cols+j])
				}
				fmt.Fprintf(&b, "[%s]", strings.Join(parts, "  "))
				if blk < last-1 {
					b.WriteString("  ")
				}
			}
			b.WriteString("\n")
		}
	}
	return b.String()
}

// WriteHandoutMarkdown writes the compact worked solution as Markdown with
// LaTeX that GitHub renders: one aligned block per step, matrices as
// matrices, long sums elided.
func (t *Trace) WriteHandoutMarkdown(w io.Writer, hd Header, h Handout, digits int) error {
	ew := &errWriter{w: w}
	st := expr.Style{LaTeX: true, Digits: digits}
	fwd, bwd, notes, answers := t.handoutViews(h)
	ew.printf("# %s\n\n", hd.Title)
	for _, g := range h.Given {
		ew.printf("%s\\\n", g)
	}
	ew.printf("**Objective:** %s\n\n", hd.Objective)
	ew.printf("**Conventions**\n\n")
	for _, c := range hd.Conventions {
		ew.printf("- %s\n", c)
	}
	section := func(name string, views []view) {
		ew.printf("\n## %s\n", name)
		group := 0
		for i, v := range views {
			if v.group != group && v.group > 0 {
				ew.printf("\n### Time step t = %d\n", v.group)
			}
			group = v.group
			ew.printf("\n**%d.** $%s$%s\n\n", i+1, joinExprs(v.head, st), v.tail)
			var rows []string
			if v.rule != nil {
				rows = append(rows, v.rule[0].Render(st)+" &= "+v.rule[1].Render(st))
			}
			for _, l := range v.lines {
				p := handoutLine(l, st)
				plain := handoutLine(l, expr.Style{Digits: digits})
				if len(p) > 2 && len([]rune(strings.Join(plain, " = "))) > 80 {
					// the numbers on a row of their own, so that the line
					// fits a rendered page
					rows = append(rows, p[0]+" &= "+p[1], "&= "+strings.Join(p[2:], " = "))
					continue
				}
				rows = append(rows, p[0]+" &= "+strings.Join(p[1:], " = "))
			}
			if len(rows) > 0 {
				ew.printf("$$\n\\begin{aligned}\n%s\n\\end{aligned}\n$$\n\n", strings.Join(rows, `\\`+"\n"))
			}
			for _, n := range v.notes {
				ew.printf("*%s*\n\n", n)
			}
			target := expr.String(v.head[0])
			switch {
			case v.final:
				ew.printf("$%s$ is in the answers below.\n", v.head[0].Render(st))
			case v.same != "":
				if v.same != target && !v.quiet {
					ew.printf("$%s$ holds the same numbers as $%s$.\n", v.head[0].Render(st), latexOf(v.same, views, st))
				}
			case len(v.value.Shape) == 0 && len(v.lines) > 0:
			default:
				ew.printf("$$\n%s = %s\n$$\n", v.head[0].Render(st), handoutMatrixLaTeX(v.value, digits))
			}
		}
	}
	section("Forward pass", fwd)
	section("Backward pass", bwd)
	ew.printf("\n## Notes\n\n")
	for _, n := range notes {
		ew.printf("- %s\n", n)
	}
	ew.printf("\n## Answers\n\n")
	for _, a := range answers {
		ew.printf("$$\n%s = %s\n$$\n\n", a.Target.Render(st), handoutMatrixLaTeX(squeeze(a.Value), digits))
	}
	return ew.err
}

// latexOf renders the target named plain among views in LaTeX.
func latexOf(plain string, views []view, st expr.Style) string {
	for _, v := range views {
		if expr.String(v.head[0]) == plain {
			return v.head[0].Render(st)
		}
	}
	return plain
}

// handoutMatrixLaTeX writes vectors of more than 4 elements as a
// transposed row, so that they do not run down the page.
func handoutMatrixLaTeX(m Matrix, digits int) string {
	if len(m.Shape) == 1 && m.Shape[0] > 4 {
		row := matrixLaTeX(Matrix{Shape: []int{1, m.Shape[0]}, Data: m.Data}, digits)
		return row + `^{\top}`
	}
	return matrixLaTeX(m, digits)
}

// MatrixBlock writes a tensor as the handout prints values — a short
// vector as one transposed row, matrices as aligned rows, blocks side by
// side — each line behind prefix. Optimizer steps print parameters with it.
func MatrixBlock(m Matrix, digits int, prefix string) string {
	return indent(handoutMatrixText(squeeze(m), digits), prefix)
}
