// Package expr holds small symbolic expressions that render both as plain
// text and as LaTeX. The trace engine uses them to show a formula with its
// numbers substituted (0.1·0.4 + 0.3·0.8 + 0.1) and the derivation engine
// uses them for gradient equations with a network's own names.
package expr

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode"
)

// Style chooses how an expression is rendered.
type Style struct {
	LaTeX    bool // LaTeX math instead of plain text
	Digits   int  // significant digits for numbers; 0 means 6
	Collapse bool // show Inline sub-expressions by their value only
	ZeroBase bool // print element indices from 0 instead of 1
}

// Expr is a node of an expression tree.
type Expr interface {
	// Render writes the expression in the given style.
	Render(s Style) string
	// prec is the binding strength used to decide on parentheses.
	prec() int
}

const (
	precSum = iota + 1
	precProd
	precUnary
	precAtom
)

func paren(e Expr, min int, s Style) string {
	r := e.Render(s)
	if e.prec() < min {
		if s.LaTeX {
			return `\left(` + r + `\right)`
		}
		return "(" + r + ")"
	}
	return r
}

// Num is a number.
type Num float64

// Render implements Expr.
func (n Num) Render(s Style) string {
	str := FormatNumber(float64(n), s.Digits)
	if s.LaTeX {
		if i := strings.IndexAny(str, "e"); i >= 0 {
			exp := strings.TrimPrefix(str[i+1:], "+")
			neg := strings.HasPrefix(exp, "-")
			exp = strings.TrimLeft(strings.TrimPrefix(exp, "-"), "0")
			if neg {
				exp = "-" + exp
			}
			return str[:i] + `\times 10^{` + exp + `}`
		}
	}
	return str
}
func (n Num) prec() int {
	if n < 0 {
		return precUnary
	}
	return precAtom
}

// FormatNumber formats v with the given significant digits (0 means 6),
// dropping trailing zeros, so that 0.38000000000000006 reads 0.38.
func FormatNumber(v float64, digits int) string {
	if digits <= 0 {
		digits = 6
	}
	if v == 0 {
		return "0"
	}
	if math.IsInf(v, 0) || math.IsNaN(v) {
		return strconv.FormatFloat(v, 'g', -1, 64)
	}
	return strconv.FormatFloat(v, 'g', digits, 64)
}

// Ref names a tensor, optionally one element of it (Index is 0-based and
// printed 1-based unless Style.ZeroBase).
type Ref struct {
	Name  string
	Index []int
	// Sym, when set, are symbolic indices (i, j, i−k+1) printed as they
	// are, for the rule of a general element; Index is then ignored.
	Sym []string
}

// Render implements Expr.
func (r Ref) Render(s Style) string {
	name := r.Name
	if s.LaTeX {
		name = LaTeXName(r.Name)
	}
	if len(r.Sym) > 0 {
		idx := strings.Join(r.Sym, ",")
		if s.LaTeX {
			idx = strings.ReplaceAll(idx, "−", "-")
		}
		return name + "[" + idx + "]"
	}
	if len(r.Index) == 0 {
		return name
	}
	parts := make([]string, len(r.Index))
	for i, x := range r.Index {
		if !s.ZeroBase {
			x++
		}
		parts[i] = strconv.Itoa(x)
	}
	// brackets on the baseline: a subscripted name (h_{0}) cannot take a
	// second subscript in LaTeX
	return name + "[" + strings.Join(parts, ",") + "]"
}
func (Ref) prec() int { return precAtom }

// LaTeXName turns an identifier like w0, x_hat or x' into LaTeX: a trailing
// number becomes a subscript, known Greek letter names become symbols.
func LaTeXName(name string) string {
	greek := map[string]string{"delta": `\delta`, "sigma": `\sigma`, "theta": `\theta`, "alpha": `\alpha`, "beta": `\beta`, "gamma": `\gamma`, "mu": `\mu`, "lambda": `\lambda`}
	if rest, ok := strings.CutPrefix(name, "log_"); ok && rest != "" { // log_p → \log p
		return `\log ` + LaTeXName(rest)
	}
	primes := ""
	for strings.HasSuffix(name, "'") {
		primes += "'"
		name = strings.TrimSuffix(name, "'")
	}
	base, sub := name, ""
	if i := strings.IndexByte(name, '_'); i > 0 {
		base, sub = name[:i], name[i+1:]
	} else {
		j := len(name)
		for j > 0 && unicode.IsDigit(rune(name[j-1])) {
			j--
		}
		if j > 0 && j < len(name) {
			base, sub = name[:j], name[j:]
		}
	}
	if g, ok := greekRunes[base]; ok {
		base = g
	} else if g, ok := greek[base]; ok {
		base = g
	} else if len(base) > 1 {
		base = `\mathit{` + strings.ReplaceAll(base, "_", `\_`) + `}`
	}
	out := base
	if sub != "" {
		out += "_{" + strings.ReplaceAll(sub, "_", `\_`) + "}"
	}
	return out + primes
}

var greekRunes = map[string]string{"δ": `\delta`, "Δ": `\Delta`, "σ": `\sigma`, "θ": `\theta`, "μ": `\mu`}

// Sum is a sum of terms; a negative number term renders as subtraction.
type Sum []Expr

// Render implements Expr.
func (e Sum) Render(s Style) string {
	if len(e) == 0 {
		return "0"
	}
	var b strings.Builder
	for i, t := range e {
		if i > 0 {
			if n, ok := t.(Num); ok && n < 0 {
				b.WriteString(" - ")
				b.WriteString(Num(-n).Render(s))
				continue
			}
			if ng, ok := t.(Neg); ok {
				b.WriteString(" - ")
				b.WriteString(paren(ng.X, precProd, s))
				continue
			}
			r := paren(t, precSum, s)
			if strings.HasPrefix(r, "-") { // a + (−0.4·0.2) reads a − 0.4·0.2
				b.WriteString(" - ")
				b.WriteString(r[1:])
			} else {
				b.WriteString(" + ")
				b.WriteString(r)
			}
			continue
		}
		b.WriteString(paren(t, precSum, s))
	}
	return b.String()
}
func (e Sum) prec() int {
	if len(e) == 1 {
		return e[0].prec()
	}
	return precSum
}

// Product is a product of factors written with a centred dot.
type Product []Expr

// Render implements Expr.
func (e Product) Render(s Style) string {
	sep := "·"
	if s.LaTeX {
		sep = ` \cdot `
	}
	parts := make([]string, len(e))
	for i, f := range e {
		min := precAtom // 0.2·(−0.3): a later factor is bracketed unless atomic
		if i == 0 {
			min = precProd
		}
		parts[i] = paren(f, min, s)
	}
	return strings.Join(parts, sep)
}
func (e Product) prec() int {
	if len(e) == 1 {
		return e[0].prec()
	}
	return precProd
}

// Neg is unary minus.
type Neg struct{ X Expr }

// Render implements Expr.
func (e Neg) Render(s Style) string { return "-" + paren(e.X, precUnary+1, s) }
func (Neg) prec() int               { return precUnary }

// Diff is a - b.
type Diff struct{ A, B Expr }

// Render implements Expr.
func (e Diff) Render(s Style) string {
	b := paren(e.B, precProd, s)
	if strings.HasPrefix(b, "-") { // a − (−0.4), not a - -0.4
		if s.LaTeX {
			b = `\left(` + b + `\right)`
		} else {
			b = "(" + b + ")"
		}
	}
	return paren(e.A, precSum, s) + " - " + b
}
func (Diff) prec() int { return precSum }

// Quot is a / b.
type Quot struct{ A, B Expr }

// Render implements Expr.
func (e Quot) Render(s Style) string {
	if s.LaTeX {
		return `\frac{` + e.A.Render(s) + `}{` + e.B.Render(s) + `}`
	}
	return paren(e.A, precProd, s) + "/" + paren(e.B, precProd+1, s)
}
func (e Quot) prec() int { return precProd }

// Call applies a named function: ReLU(x), σ(x), exp(x), log(x).
type Call struct {
	Fn   string
	Args []Expr
}

var latexFn = map[string]string{
	"exp": `\exp`, "log": `\log`,
	"softplus":  `\operatorname{softplus}`,
	"logsumexp": `\operatorname{logsumexp}`, "softmax": `\operatorname{softmax}`,
}

// Render implements Expr.
func (e Call) Render(s Style) string {
	args := make([]string, len(e.Args))
	for i, a := range e.Args {
		args[i] = a.Render(s)
	}
	fn := e.Fn
	if s.LaTeX {
		if f, ok := funcs[fn]; ok && f.TeX != "" {
			fn = f.TeX
		} else if f, ok := latexFn[fn]; ok {
			fn = f
		} else {
			fn = `\operatorname{` + fn + `}`
		}
		return fn + `\left(` + strings.Join(args, ", ") + `\right)`
	}
	return fn + "(" + strings.Join(args, ", ") + ")"
}
func (Call) prec() int { return precAtom }

// Cond is a comparison used inside an indicator: x > 0.
type Cond struct {
	X  Expr
	Op string // ">", "<", ">=", "<="
	Y  Expr
}

// Render implements Expr.
func (e Cond) Render(s Style) string {
	op := e.Op
	if s.LaTeX {
		op = map[string]string{">=": `\ge`, "<=": `\le`}[e.Op]
		if op == "" {
			op = e.Op
		}
	}
	return e.X.Render(s) + " " + op + " " + e.Y.Render(s)
}
func (Cond) prec() int { return precSum }

// Indicator is 1[cond], one where the condition holds and zero elsewhere.
type Indicator struct{ C Expr }

// Render implements Expr.
func (e Indicator) Render(s Style) string {
	if s.LaTeX {
		return `\mathbb{1}\left[` + e.C.Render(s) + `\right]`
	}
	return "1[" + e.C.Render(s) + "]"
}
func (Indicator) prec() int { return precAtom }

// Inline is a sub-expression that also carries its value; with
// Style.Collapse it prints as that value, so a trace line can read
// ReLU(0.1·0.4 + 0.3·0.8 + 0.1) = ReLU(0.38) = 0.38.
type Inline struct {
	X     Expr
	Value float64
}

// Render implements Expr.
func (e Inline) Render(s Style) string {
	if s.Collapse {
		return Num(e.Value).Render(s)
	}
	return e.X.Render(s)
}
func (e Inline) prec() int { return e.X.prec() }

// HasInline reports whether e contains an Inline node, i.e. whether a
// collapsed rendering would differ from the full one.
func HasInline(e Expr) bool {
	switch x := e.(type) {
	case Inline:
		return true
	case Sum:
		for _, t := range x {
			if HasInline(t) {
				return true
			}
		}
	case Product:
		for _, t := range x {
			if HasInline(t) {
				return true
			}
		}
	case Call:
		for _, t := range x.Args {
			if HasInline(t) {
				return true
			}
		}
	case Neg:
		return HasInline(x.X)
	case Diff:
		return HasInline(x.A) || HasInline(x.B)
	case Quot:
		return HasInline(x.A) || HasInline(x.B)
	case Indicator:
		return HasInline(x.C)
	case Cond:
		return HasInline(x.X) || HasInline(x.Y)
	}
	return false
}

// Text is free text rendered as is (as \text{} in LaTeX).
type Text string

// Render implements Expr.
func (t Text) Render(s Style) string {
	if s.LaTeX {
		return `\text{` + string(t) + `}`
	}
	return string(t)
}
func (Text) prec() int { return precAtom }

// Raw is pre-rendered text and LaTeX for notation the node types lack.
type Raw struct{ Plain, TeX string }

// Render implements Expr.
func (r Raw) Render(s Style) string {
	if s.LaTeX {
		return r.TeX
	}
	return r.Plain
}
func (Raw) prec() int { return precAtom }

// Grad is the partial derivative ∂Of/∂Wrt, or of one element of Wrt.
type Grad struct {
	Of  string
	Wrt Ref
}

// Render implements Expr.
func (g Grad) Render(s Style) string {
	if s.LaTeX {
		return `\frac{\partial ` + LaTeXName(g.Of) + `}{\partial ` + g.Wrt.Render(s) + `}`
	}
	return "∂" + g.Of + "/∂" + g.Wrt.Render(s)
}
func (Grad) prec() int { return precAtom }

// String renders e as plain text with default settings.
func String(e Expr) string { return e.Render(Style{}) }

// Sprintf is a convenience for building Text.
func Sprintf(format string, a ...any) Text { return Text(fmt.Sprintf(format, a...)) }

// MatProd is a matrix product written by juxtaposition (w0 z); plain text
// uses a centred dot between factors.
type MatProd []Expr

// Render implements Expr.
func (e MatProd) Render(s Style) string {
	sep := "·"
	if s.LaTeX {
		sep = " "
	}
	parts := make([]string, len(e))
	for i, f := range e {
		parts[i] = paren(f, precProd+1, s)
	}
	return strings.Join(parts, sep)
}
func (e MatProd) prec() int { return precProd }

// Hadamard is the element-wise product a ⊙ b.
type Hadamard []Expr

// Render implements Expr.
func (e Hadamard) Render(s Style) string {
	sep := " ⊙ "
	if s.LaTeX {
		sep = ` \odot `
	}
	parts := make([]string, len(e))
	for i, f := range e {
		if p, ok := f.(Product); ok && len(p) > 0 {
			if _, num := p[0].(Num); num { // 2·(x' − x) ⊙ x' needs no parentheses
				parts[i] = f.Render(s)
				continue
			}
		}
		parts[i] = paren(f, precProd+1, s)
	}
	return strings.Join(parts, sep)
}
func (e Hadamard) prec() int { return precProd }

// Transpose is xᵀ.
type Transpose struct{ X Expr }

// Render implements Expr.
func (e Transpose) Render(s Style) string {
	if s.LaTeX {
		return paren(e.X, precAtom, s) + `^{\top}`
	}
	return paren(e.X, precAtom, s) + "ᵀ"
}
func (Transpose) prec() int { return precAtom }

// Sigma is a sum over symbolic indices, Σ_{k,l} X, optionally restricted
// (Where: "1 ≤ i−k+1 ≤ 3"), for the rule of a general element.
type Sigma struct {
	Over  []string
	Where string
	X     Expr
}

// Render implements Expr.
func (e Sigma) Render(s Style) string {
	over := strings.Join(e.Over, ",")
	if s.LaTeX {
		sub := over
		if e.Where != "" {
			sub = `\substack{` + over + `\ ` + texText(e.Where) + `}`
		}
		return `\sum_{` + sub + `} ` + paren(e.X, precProd, s)
	}
	if e.Where != "" {
		over += ": " + e.Where
	}
	if len(over) > 1 {
		over = "{" + over + "}"
	}
	return "Σ_" + over + " " + paren(e.X, precProd, s)
}
func (Sigma) prec() int { return precSum }

// texText writes an index condition such as 1 ≤ i−k+1 ≤ 3 in LaTeX.
func texText(c string) string {
	return strings.NewReplacer("≤", `\le `, "−", "-", "·", `\cdot `, "'", "'").Replace(c)
}
