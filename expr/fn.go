package expr

import (
	"strings"

	"github.com/backprop-dev/backprop/tensor"
)

// Fn is a named whole-tensor function of an op's own (conv, deconv,
// reshape back, sum over the batch) that knows how to evaluate itself, so
// a derived gradient equation can be checked numerically even where its
// notation is a function name rather than algebra.
type Fn struct {
	Name    string // plain-text name, e.g. "deconv"
	TeX     string // LaTeX operator; empty means \operatorname{Name}
	Args    []Expr
	Note    string // settings shown after a semicolon, e.g. "stride 2, pad 1"
	NoteTeX string
	// Eval computes the function of its evaluated arguments; nil makes the
	// expression display-only.
	Eval func(args []*tensor.Tensor[float64]) (*tensor.Tensor[float64], error)
}

// Render implements Expr.
func (f Fn) Render(s Style) string {
	if len(f.Args) == 0 && f.Note == "" {
		if s.LaTeX && f.TeX != "" {
			return f.TeX
		}
		return f.Name
	}
	args := make([]string, len(f.Args))
	for i, a := range f.Args {
		args[i] = a.Render(s)
	}
	list := strings.Join(args, ", ")
	if s.LaTeX {
		op := f.TeX
		if op == "" {
			op = `\operatorname{` + f.Name + `}`
		}
		if f.Note != "" {
			note := f.NoteTeX
			if note == "" {
				note = `\text{` + f.Note + `}`
			}
			list += `;\ ` + note
		}
		return op + `\left(` + list + `\right)`
	}
	if f.Note != "" {
		list += "; " + f.Note
	}
	return f.Name + "(" + list + ")"
}
func (Fn) prec() int { return precAtom }

// EvalAs is an expression shown as X but evaluated as Eval of its Args: for
// a formula whose notation is the textbook's shorthand (Σ ∂L/∂y ⊙ x̂ summed
// over a channel, with x̂ the normalised input) rather than algebra
// EvalTensor knows, so that `derive --check` still verifies it. Args are
// the tensors the shorthand stands on (the upstream gradient, the input);
// Eval computes the value from them independently of the op's Backward.
type EvalAs struct {
	X    Expr
	Args []Expr
	Eval func(args []*tensor.Tensor[float64]) (*tensor.Tensor[float64], error)
}

// Render implements Expr.
func (e EvalAs) Render(s Style) string { return e.X.Render(s) }
func (e EvalAs) prec() int             { return e.X.prec() }

// Map rebuilds e bottom-up, replacing every node n by f(n) after its
// children have been mapped.
func Map(e Expr, f func(Expr) Expr) Expr {
	mapAll := func(es []Expr) []Expr {
		out := make([]Expr, len(es))
		for i, x := range es {
			out[i] = Map(x, f)
		}
		return out
	}
	switch x := e.(type) {
	case Sum:
		return f(Sum(mapAll(x)))
	case Product:
		return f(Product(mapAll(x)))
	case MatProd:
		return f(MatProd(mapAll(x)))
	case Hadamard:
		return f(Hadamard(mapAll(x)))
	case Neg:
		return f(Neg{X: Map(x.X, f)})
	case Diff:
		return f(Diff{A: Map(x.A, f), B: Map(x.B, f)})
	case Quot:
		return f(Quot{A: Map(x.A, f), B: Map(x.B, f)})
	case Call:
		return f(Call{Fn: x.Fn, Args: mapAll(x.Args)})
	case Fn:
		y := x
		y.Args = mapAll(x.Args)
		return f(y)
	case Cond:
		return f(Cond{X: Map(x.X, f), Op: x.Op, Y: Map(x.Y, f)})
	case Indicator:
		return f(Indicator{C: Map(x.C, f)})
	case Transpose:
		return f(Transpose{X: Map(x.X, f)})
	case Inline:
		return f(Inline{X: Map(x.X, f), Value: x.Value})
	case Sigma:
		return f(Sigma{Over: x.Over, Where: x.Where, X: Map(x.X, f)})
	case EvalAs:
		return f(EvalAs{X: Map(x.X, f), Args: mapAll(x.Args), Eval: x.Eval})
	}
	return f(e)
}

// Simplify flattens nested sums and products of the same kind, drops
// factors of 1, and turns the transpose of a transpose back into its
// argument, so that substituted formulas read as a textbook writes them.
func Simplify(e Expr) Expr {
	return Map(e, func(n Expr) Expr {
		switch x := n.(type) {
		case Product:
			return flatten(x, dropOnes)
		case Hadamard:
			return flatten(x, dropOnes)
		case MatProd:
			return flatten(x, dropOnes)
		case Sum:
			return flatten(x, false)
		case Transpose:
			if inner, ok := x.X.(Transpose); ok {
				return inner.X
			}
		case Neg:
			if inner, ok := x.X.(Neg); ok {
				return inner.X
			}
		}
		return n
	})
}

// dropOnes says products leave out factors of 1.
const dropOnes = true

// flatten splices nested lists of the same kind into one (a ⊙ (b ⊙ c) is
// a ⊙ b ⊙ c), drops factors of 1 when asked, and returns the single
// element of a one-element list (Num(1) for an empty product).
func flatten[E interface {
	~[]Expr
	Expr
}](list E, ones bool) Expr {
	var out E
	for _, t := range list {
		if inner, ok := t.(E); ok {
			out = append(out, inner...)
		} else if num, ok := t.(Num); ok && num == 1 && ones {
			continue
		} else {
			out = append(out, t)
		}
	}
	switch len(out) {
	case 0:
		return Num(1)
	case 1:
		return out[0]
	}
	return out
}
