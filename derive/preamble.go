package derive

import (
	"fmt"
	"io"
	"strings"
	"unicode"

	"github.com/backprop-dev/backprop/expr"
	"github.com/backprop-dev/backprop/spec"
)

// line is one statement in plain text and in LaTeX.
type line struct{ plain, tex string }

// chainStep is the scalar chain rule for one weight element: a sentence
// saying how the weight reaches the objective, then the equation rows.
type chainStep struct {
	intro string
	rows  []line
}

// preamble is what a document states before the equations: sizes,
// objective, conventions, derivative rules and the scalar chain rule.
type preamble struct {
	sizes        string
	objective    []string
	conventions  []string
	derivs       []line
	chainIntro   string // title and indices, for text and JSON
	chainTitle   string
	chainIndices string
	chain        []chainStep
	chainOutro   []string
}

func newPreamble(d *Derivation) *preamble {
	s := d.spec
	p := &preamble{}
	p.conventionLines(s)
	p.sizesLine(d)
	p.derivLines(d, s)
	p.chainRule(d, s)
	return p
}

// shapeOfNode is the shape of a per-sample node as printed, "" if unknown.
func shapeOfNode(d *Derivation, n string) string {
	v := d.nodes[n]
	if v == nil {
		return ""
	}
	c := *d
	c.Batched = false
	return c.ShapeText(v.Value.Shape(), false)
}

func (p *preamble) sizesLine(d *Derivation) {
	s := d.spec
	var parts []string
	add := func(n string) {
		if sh := shapeOfNode(d, n); sh != "" {
			parts = append(parts, d.nameOf(n).plain+" ∈ "+sh)
		}
	}
	add(s.Input.Name)
	for i, l := range s.Layers {
		if l.Type == "linear" && l.Name != "" && i < len(s.Layers)-1 {
			add(l.Name)
		}
	}
	var params []string
	for _, n := range s.ParamOrder {
		if sh := shapeOfNode(d, n); sh != "" {
			params = append(params, n+" ∈ "+sh)
		}
	}
	if d.sizes == nil || len(parts) == 0 {
		return
	}
	p.sizes = "Sizes: " + strings.Join(parts, ", ") + "; " + strings.Join(params, ", ") + "; a batch holds N samples."
	switch s.Objective.Type {
	case "sse":
		p.objective = append(p.objective, "the problem set writes the error as Σ_{i=1..N} (x_i − x'_i)²; here its N, the number of components of x, is d; N here counts the samples of a batch")
	}
}

func (p *preamble) conventionLines(s *spec.Spec) {
	has := map[string]bool{}
	for _, l := range s.Layers {
		has[l.Type] = true
	}
	if has["reshape"] || has["flatten"] {
		if s.Conventions.Reshape == "column-major" {
			p.conventions = append(p.conventions, "reshape and flatten: column-major, the first index varying fastest (MATLAB)")
		} else {
			p.conventions = append(p.conventions, "reshape and flatten: row-major, the last index varying fastest (NumPy, PyTorch)")
		}
	}
	if has["deconv"] {
		if s.Conventions.Kernel == "flipped" {
			p.conventions = append(p.conventions,
				"deconv(x, w; stride s, pad p, flipped): the flipped reading; the kernel slides over the zero-padded input without being rotated (a full cross-correlation): out[c', (i−1)·s + a − p, (j−1)·s + b − p] += x[c,i,j]·w[c,c',k_h+1−a,k_w+1−b] (1-based; PyTorch's ConvTranspose2d with every kernel rotated 180°)")
		} else {
			p.conventions = append(p.conventions,
				"deconv(x, w; stride s, pad p): PyTorch's ConvTranspose2d, the textbook full convolution (MATLAB conv2(x, w, 'full') at s = 1, p = 0: the 180°-rotated kernel slides over the zero-padded input); each input pixel adds a scaled copy of the kernel: out[c', (i−1)·s + a − p, (j−1)·s + b − p] += x[c,i,j]·w[c,c',a,b] (1-based)")
		}
		p.conventions = append(p.conventions, "corr(g, k; stride s, pad p): the cross-correlation that both gradients of a deconv are; each gradient's element formula is given under it")
	}
	if has["logistic"] {
		if s.Conventions.Label == "y1" {
			p.conventions = append(p.conventions, "label y1: σ(a) is p(y=1), so p(y=0) = σ(s) with s = −a")
		} else {
			p.conventions = append(p.conventions, "label y0: σ(a) is p(y=0), as the problem writes")
		}
	}
	switch s.Objective.Type {
	case "log_p":
		p.objective = append(p.objective, "J = log p(y=0) is maximized: each parameter θ moves up its gradient, θ ← θ + η·∂J/∂θ")
	case "sse":
		p.objective = append(p.objective, "L = Σ_i (x'_i − x_i)², the squared error summed over the components i of one sample ((x_i − x'_i)² as the problem writes it is the same square); in the batched form the errors of the N samples are summed as well. L is minimized: θ ← θ − η·∂L/∂θ")
	case "bce":
		p.objective = append(p.objective, "the objective is the binary cross-entropy −log p(y=label), minimized: θ ← θ − η·∂J/∂θ")
	}
}

func (p *preamble) derivLines(d *Derivation, s *spec.Spec) {
	seen := map[string]bool{}
	for _, l := range s.Layers {
		a := l.Activation
		if l.Type == "logistic" {
			a = "sigmoid"
		}
		if seen[a] {
			continue
		}
		seen[a] = true
		switch a {
		case "sigmoid":
			p.derivs = append(p.derivs, line{"σ′(u) = σ(u)·(1 − σ(u))", `\sigma'(u) = \sigma(u)\,\bigl(1 - \sigma(u)\bigr)`})
		case "relu":
			p.derivs = append(p.derivs, line{"ReLU′(u) = 1[u > 0]: 1 for u > 0, 0 for u ≤ 0 (ReLU has no derivative at u = 0; 0 is the convention there, as in PyTorch)",
				`\operatorname{ReLU}'(u) = \mathbb{1}[u > 0]\ \text{(0 at } u = 0\text{, the convention PyTorch uses)}`})
		case "tanh":
			p.derivs = append(p.derivs, line{"tanh′(u) = 1 − tanh²(u)", `\tanh'(u) = 1 - \tanh^{2}(u)`})
		case "leaky_relu":
			p.derivs = append(p.derivs, line{fmt.Sprintf("LeakyReLU′(u) = 1 for u > 0, %g for u ≤ 0", l.Slope), fmt.Sprintf(`\operatorname{LeakyReLU}'(u) = 1 \text{ for } u > 0,\ %g \text{ for } u \le 0`, l.Slope)})
		}
	}
	if s.Objective.Type == "log_p" {
		p.derivs = append(p.derivs, line{"d/da log σ(a) = (1/σ(a))·σ(a)(1 − σ(a)) = 1 − σ(a) = σ(−a)",
			`\frac{d}{da}\log\sigma(a) = \frac{1}{\sigma(a)}\,\sigma(a)\bigl(1 - \sigma(a)\bigr) = 1 - \sigma(a) = \sigma(-a)`})
	}
}

// preName is the pre-activation name the spec builder gives a layer.
func preName(l spec.Layer) string {
	if l.Activation == "identity" || l.Activation == "" {
		return l.Name
	}
	if l.Preactivation != "" {
		return l.Preactivation
	}
	i := len(l.Name)
	for i > 0 && unicode.IsDigit(rune(l.Name[i-1])) {
		i--
	}
	if i < len(l.Name) {
		return "u" + l.Name[i:]
	}
	return "u_" + strings.TrimRight(l.Name, "'")
}

// deltaOf is the shorthand δ of a pre-activation name, as deltaName.
func deltaOf(u string) string {
	r := []rune(u)
	if len(r) > 1 && r[0] == 'u' && unicode.IsDigit(r[1]) {
		return "δ" + string(r[1:])
	}
	return "δ_" + u
}

// el is component idx of vector n: x'_i, u2_i.
func el(n, idx string) line {
	return line{n + "_" + idx, subTeX(expr.LaTeXName(n), idx)}
}

// mel is element idx of matrix n: w2[j,i].
func mel(n, idx string) line { return line{n + "[" + idx + "]", expr.LaTeXName(n) + "[" + idx + "]"} }

func partial(of, wrt line) line {
	return line{"∂" + of.plain + "/∂" + wrt.plain, `\frac{\partial ` + of.tex + `}{\partial ` + wrt.tex + `}`}
}

func join(sep, texSep string, ls ...line) line {
	var p, t []string
	for _, l := range ls {
		p = append(p, l.plain)
		t = append(t, l.tex)
	}
	return line{strings.Join(p, sep), strings.Join(t, texSep)}
}

// actDeriv is the derivative of layer output y with respect to its
// pre-activation u at component idx, or ok false for an activation
// without a closed form here; identity reports empty.
func actDeriv(a string, y, u line) (line, bool) {
	switch a {
	case "sigmoid":
		return line{y.plain + "(1 − " + y.plain + ")", y.tex + `\left(1 - ` + y.tex + `\right)`}, true
	case "relu":
		return line{"1[" + u.plain + " > 0]", `\mathbb{1}\left[` + u.tex + ` > 0\right]`}, true
	case "tanh":
		return line{"(1 − " + y.plain + "²)", `\left(1 - ` + y.tex + `^{2}\right)`}, true
	case "identity", "":
		return line{}, true
	}
	return line{}, false
}

// chainRule writes the scalar chain rule for one weight element of the
// last layer and of the one before it, for a stack of linear layers
// trained on a squared error against the input.
func (p *preamble) chainRule(d *Derivation, s *spec.Spec) {
	if s.Objective.Type != "sse" || len(s.Layers) == 0 {
		return
	}
	for _, l := range s.Layers {
		if l.Type != "linear" {
			return
		}
	}
	m := len(s.Layers)
	last := s.Layers[m-1]
	x := s.Input.Name
	obj := line{d.Objective, expr.LaTeXName(d.Objective)}
	inOf := func(k int) string {
		if k == 0 {
			return x
		}
		return s.Layers[k-1].Name
	}
	welem := func(l spec.Layer, in, out string) line {
		if l.Transpose {
			return mel(l.Weight, in+","+out)
		}
		return mel(l.Weight, out+","+in)
	}
	dot := line{" · ", ` \cdot `}
	// last layer: y_i = f(u_i), u_i = Σ_j W[j,i]·h_j + b_i
	y, u, h := el(last.Name, "i"), el(preName(last), "i"), el(inOf(m-1), "j")
	xi := el(x, "i")
	W := welem(last, "j", "i")
	fy, ok := actDeriv(last.Activation, y, u)
	if !ok {
		return
	}
	dLdy := line{"2(" + y.plain + " − " + xi.plain + ")", `2\left(` + y.tex + ` - ` + xi.tex + `\right)`}
	ident := fy.plain == ""
	factors := []line{partial(obj, y)}
	values := []line{dLdy}
	if !ident {
		factors = append(factors, partial(y, u))
		values = append(values, fy)
	}
	factors = append(factors, partial(u, W))
	values = append(values, h)
	delta := el(deltaOf(preName(last)), "i")
	deltaTimes := join("·", `\,`, delta, h)
	rows := []line{join(" = ", " &= ", partial(obj, W), join(dot.plain, dot.tex, factors...))}
	tail := join(dot.plain, dot.tex, values...)
	if !ident {
		tail = join(" = ", " = ", tail, deltaTimes)
	}
	rows = append(rows, line{"= " + tail.plain, "&= " + tail.tex})
	wsum := "Σ_j " + W.plain + "·" + h.plain
	p.chainTitle = "Chain rule for one weight, per sample"
	p.chain = append(p.chain, chainStep{
		intro: fmt.Sprintf("%s enters %s only through %s = %s + %s:", W.plain, d.Objective, u.plain, wsum, el(last.Bias, "i").plain),
		rows:  rows,
	})
	if !ident {
		p.chainOutro = append(p.chainOutro, fmt.Sprintf("%s = ∂%s/∂%s = %s·%s, and ∂%s/∂%s = %s", delta.plain, d.Objective, u.plain, dLdy.plain, fy.plain, d.Objective, el(last.Bias, "i").plain, delta.plain))
	}
	if m < 2 {
		p.chainIndices = fmt.Sprintf("i indexes %s and %s, j indexes %s", last.Name, preName(last), inOf(m-1))
		p.chainIntro = p.chainTitle + " (" + p.chainIndices + ")"
		return
	}
	// the layer before: h_j = g(v_j), v_j = Σ_l V[l,j]·z_l + c_j
	prev := s.Layers[m-2]
	v, z := el(preName(prev), "j"), el(inOf(m-2), "l")
	V := welem(prev, "l", "j")
	gh, ok := actDeriv(prev.Activation, h, v)
	if !ok {
		return
	}
	Wji := welem(last, "j", "i")
	f2 := []line{partial(obj, y)}
	v2 := []line{dLdy}
	if !ident {
		f2 = append(f2, partial(y, u))
		v2 = append(v2, fy)
	}
	f2 = append(f2, partial(u, h))
	v2 = append(v2, Wji)
	if gh.plain != "" {
		f2 = append(f2, partial(h, v))
		v2 = append(v2, gh)
	}
	f2 = append(f2, partial(v, V))
	v2 = append(v2, z)
	sumI := line{"Σ_i ", `\sum_{i} `}
	delta1 := el(deltaOf(preName(prev)), "j")
	r2 := []line{join(" = ", " &= ", partial(obj, V), join("", "", sumI, join(dot.plain, dot.tex, f2...)))}
	if len(f2) > 3 { // two rows in LaTeX, so that five fractions do not run off the page
		head := join(" = ", " &= ", partial(obj, V), join("", "", sumI, join(dot.plain, dot.tex, f2[:3]...)))
		r2[0].tex = head.tex + `\\` + "\n" + `&\qquad\cdot ` + join(dot.plain, dot.tex, f2[3:]...).tex
	}
	t2 := join("", "", sumI, join(dot.plain, dot.tex, v2...))
	r2 = append(r2, line{"= " + t2.plain, "&= " + t2.tex})
	if gh.plain != "" {
		d1 := join("·", `\,`, delta1, z)
		r2 = append(r2, line{"= " + d1.plain, "&= " + d1.tex})
	}
	p.chain = append(p.chain, chainStep{
		intro: fmt.Sprintf("%s enters %s through %s = Σ_l %s·%s + %s, then %s, which feeds every %s, so the chain sums over i:",
			V.plain, d.Objective, v.plain, V.plain, z.plain, el(prev.Bias, "j").plain, h.plain, u.plain),
		rows: r2,
	})
	p.chainIndices = fmt.Sprintf("i indexes %s and %s, j indexes %s and %s, l indexes %s", last.Name, preName(last), prev.Name, preName(prev), inOf(m-2))
	p.chainIntro = p.chainTitle + " (" + p.chainIndices + ")"
	if gh.plain != "" {
		p.chainOutro = append(p.chainOutro, fmt.Sprintf("%s = ∂%s/∂%s = (Σ_i %s·%s)·%s, and ∂%s/∂%s = %s", delta1.plain, d.Objective, v.plain, Wji.plain, el(deltaOf(preName(last)), "i").plain, gh.plain, d.Objective, el(prev.Bias, "j").plain, delta1.plain))
	}
	p.chainOutro = append(p.chainOutro, "collected over all indices, these are the vector equations below")
}

func (p *preamble) text(w io.Writer) {
	if p.sizes != "" {
		fmt.Fprintln(w, p.sizes)
	}
	writeLines(w, "Objective: ", p.objective[:min(1, len(p.objective))])
	writeLines(w, "  (", suffix(p.objective[min(1, len(p.objective)):], ")"))
	if len(p.objective) > 0 && len(p.conventions) == 0 {
		fmt.Fprintln(w)
	}
	if len(p.conventions) > 0 {
		fmt.Fprintln(w, "\nConventions:")
		writeLines(w, "  ", p.conventions)
		fmt.Fprintln(w)
	}
	if len(p.derivs) > 0 {
		fmt.Fprintln(w, "Derivatives used:")
		for _, l := range p.derivs {
			fmt.Fprintf(w, "  %s\n", l.plain)
		}
	}
	if len(p.chain) > 0 {
		fmt.Fprintf(w, "\n%s:\n", p.chainIntro)
		for _, c := range p.chain {
			fmt.Fprintf(w, "  %s\n", c.intro)
			for i, r := range c.rows {
				if i == 0 {
					fmt.Fprintf(w, "    %s\n", r.plain)
					continue
				}
				lhs := strings.SplitN(c.rows[0].plain, " = ", 2)[0]
				fmt.Fprintf(w, "    %s%s\n", strings.Repeat(" ", len([]rune(lhs))+1), r.plain)
			}
		}
		writeLines(w, "  with ", p.chainOutro[:min(1, len(p.chainOutro))])
		writeLines(w, "  ", p.chainOutro[min(1, len(p.chainOutro)):])
	}
	fmt.Fprintln(w)
}

func suffix(ls []string, s string) []string {
	out := make([]string, len(ls))
	for i, l := range ls {
		out[i] = l + s
	}
	return out
}

func (p *preamble) markdown(w io.Writer) {
	if p.sizes != "" {
		fmt.Fprintf(w, "%s\n\n", wrap(p.sizes, mdWidth, ""))
	}
	if len(p.objective) > 0 {
		o := "**Objective**: " + p.objective[0] + "."
		for _, n := range p.objective[1:] {
			o += " Note: " + n + "."
		}
		fmt.Fprintf(w, "%s\n\n", wrap(o, mdWidth, ""))
	}
	if len(p.conventions) > 0 {
		fmt.Fprint(w, "**Conventions**:\n\n")
		for _, c := range p.conventions {
			fmt.Fprintf(w, "- %s\n", wrap(c, mdWidth, "  "))
		}
		fmt.Fprintln(w)
	}
	if len(p.derivs) > 0 {
		fmt.Fprint(w, "**Derivatives used**:\n\n$$\n\\begin{aligned}\n")
		for _, l := range p.derivs {
			fmt.Fprintf(w, "&%s\\\\\n", l.tex)
		}
		fmt.Fprint(w, "\\end{aligned}\n$$\n\n")
	}
	if len(p.chain) > 0 {
		fmt.Fprintf(w, "## %s\n\n%s.\n\n", p.chainTitle, wrap("Indices: "+p.chainIndices, mdWidth, ""))
		for _, c := range p.chain {
			fmt.Fprintf(w, "%s\n\n$$\n\\begin{aligned}\n", wrap(c.intro, mdWidth, ""))
			for _, r := range c.rows {
				fmt.Fprintf(w, "%s\\\\\n", r.tex)
			}
			fmt.Fprint(w, "\\end{aligned}\n$$\n\n")
		}
		o := ""
		for i, c := range p.chainOutro {
			if i == 0 {
				o += "with " + c
			} else {
				o += "; " + c
			}
		}
		fmt.Fprintf(w, "%s.\n\n", wrap(o, mdWidth, ""))
	}
}

// mdWidth is where Markdown prose is wrapped.
const mdWidth = 100

func (p *preamble) json(out map[string]any) {
	if p.sizes != "" {
		out["sizes"] = p.sizes
	}
	if len(p.objective) > 0 {
		out["objective"] = p.objective
	}
	if len(p.conventions) > 0 {
		out["conventions"] = p.conventions
	}
	var ds []map[string]string
	for _, l := range p.derivs {
		ds = append(ds, map[string]string{"text": l.plain, "latex": l.tex})
	}
	if len(ds) > 0 {
		out["derivatives"] = ds
	}
	if len(p.chain) > 0 {
		var cs []map[string]any
		for _, c := range p.chain {
			var rows []map[string]string
			for _, r := range c.rows {
				rows = append(rows, map[string]string{"text": r.plain, "latex": r.tex})
			}
			cs = append(cs, map[string]any{"intro": c.intro, "rows": rows})
		}
		out["chain_rule"] = map[string]any{"title": p.chainIntro, "steps": cs, "then": p.chainOutro}
	}
}

// writeLines writes lines with a prefix, for the text form.
func writeLines(w io.Writer, prefix string, lines []string) {
	for _, l := range lines {
		fmt.Fprintf(w, "%s%s\n", prefix, l)
	}
}
