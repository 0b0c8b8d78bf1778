package derive

import (
	"strings"
	"unicode"

	"github.com/backprop-dev/backprop/expr"
)

// nameDisplay decides how node names that are not plain identifiers print:
// log_p as "log p", and in the batched form a name the graph builder could
// not capitalise because the capital was taken (h2 when H2 is the
// flattened h2) as the stack h2⁽ᴺ⁾; one that already was a capital (H2)
// simply as itself.
func (d *Derivation) nameDisplay() {
	taken := map[string]bool{}
	for n := range d.nodes {
		if !strings.HasSuffix(n, "_N") {
			taken[n] = true
		}
	}
	for n := range d.nodes {
		if rest, ok := strings.CutPrefix(n, "log_"); ok && rest != "" && !strings.HasSuffix(n, "_N") {
			d.display[n] = name{"log " + rest, expr.LaTeXName(n)}
		}
	}
	if !d.Batched {
		return
	}
	for n := range d.nodes {
		base, ok := strings.CutSuffix(n, "_N")
		if !ok || base == "" {
			continue
		}
		r := []rune(base)
		if unicode.IsUpper(r[0]) && !taken[base] {
			d.display[n] = name{base, expr.LaTeXName(base)}
			taken[base] = true
		}
	}
	for n := range d.nodes {
		base, ok := strings.CutSuffix(n, "_N")
		if !ok || base == "" || d.display[n].plain != "" {
			continue
		}
		d.display[n] = name{base + "⁽ᴺ⁾", "{" + expr.LaTeXName(base) + "}^{(N)}"}
		d.stacked = append(d.stacked, n)
	}
}

// nameOf is how node name n prints.
func (d *Derivation) nameOf(n string) name {
	if dn, ok := d.display[n]; ok {
		return dn
	}
	return name{n, expr.LaTeXName(n)}
}

// show rewrites e for printing: display names for nodes that have one,
// log σ(a) for logσ(a). It is applied only when rendering, so that the
// evaluated expressions keep the graph's own names.
func (d *Derivation) show(e expr.Expr) expr.Expr {
	return expr.Map(e, func(n expr.Expr) expr.Expr {
		switch x := n.(type) {
		case expr.Ref:
			if dn, ok := d.display[x.Name]; ok && len(x.Index) == 0 {
				return expr.Raw{Plain: dn.plain, TeX: dn.tex}
			}
		case expr.Grad:
			if dn, ok := d.display[x.Wrt.Name]; ok && len(x.Wrt.Index) == 0 {
				return expr.Raw{Plain: "∂" + x.Of + "/∂" + dn.plain, TeX: `\frac{\partial ` + expr.LaTeXName(x.Of) + `}{\partial ` + dn.tex + `}`}
			}
		case expr.Call:
			if x.Fn == "logσ" {
				var p, t []string
				for _, a := range x.Args {
					p = append(p, a.Render(expr.Style{}))
					t = append(t, a.Render(expr.Style{LaTeX: true}))
				}
				return expr.Raw{Plain: "log σ(" + strings.Join(p, ", ") + ")", TeX: `\log\sigma\left(` + strings.Join(t, ", ") + `\right)`}
			}
		}
		return n
	})
}

// subTeX adds an index to a LaTeX name as a subscript, merging it with a
// subscript the name already has (u_{2} and i give u_{2,i}) and keeping
// primes last.
func subTeX(tex, idx string) string {
	primes := ""
	for strings.HasSuffix(tex, "'") {
		primes += "'"
		tex = strings.TrimSuffix(tex, "'")
	}
	if strings.HasSuffix(tex, "}") {
		if i := strings.LastIndex(tex, "_{"); i >= 0 && !strings.Contains(tex[i:], "^") {
			return tex[:len(tex)-1] + "," + idx + "}" + primes
		}
	}
	return tex + primes + "_{" + idx + "}"
}

// wrap breaks Markdown prose into lines of at most width characters at
// spaces, indenting continuation lines by indent (two spaces keep a list
// item together).
func wrap(s string, width int, indent string) string {
	var b strings.Builder
	n := 0
	for i, word := range strings.Fields(s) {
		l := len([]rune(word))
		switch {
		case i == 0:
		case n+1+l > width:
			b.WriteString("\n" + indent)
			n = len(indent)
		default:
			b.WriteString(" ")
			n++
		}
		b.WriteString(word)
		n += l
	}
	return b.String()
}
