// Package explain owns the walk over an explained graph: the interfaces an
// op implements to describe itself (Explainer for whole-tensor formulas and
// element expressions, ForwardRuler and BackwardRuler for the general
// element with symbolic indices, DerivNoter and PassThrough), and Graph, the
// one reading of a recorded graph that every renderer shares — node names
// (the t<n> fallback), consumers, pass-through gradient aliases, the
// consumers a gradient came through, the parameters a node depends on and
// the order of the forward and backward steps. Package trace renders it as
// a worked solution with numbers, package derive as gradient equations; so
// both name and order a graph's steps the same way.
//
// It sits between autograd (the graph and its gradients, which knows
// nothing of rendering) and ops (which implement the interfaces).
package explain

import (
	"github.com/backprop-dev/backprop/expr"
)

// Explainer is implemented by ops that can describe themselves to a reader:
// the formula of the whole step and, element by element, the expression
// that produced a value or a gradient. The trace engine calls the element
// methods twice, once with references (w0[1,2]) and once with numbers, so a
// student sees both the formula and the substitution.
type Explainer interface {
	// Formula is the forward step in whole-tensor notation, given the
	// inputs' names, e.g. ReLU(u0) or w0 z.
	Formula(in []expr.Expr) expr.Expr
	// ForwardElem is the expression for output element k (row-major
	// position) in terms of input elements, supplied by in(input, position).
	ForwardElem(k int, in func(i, m int) expr.Expr) expr.Expr
	// BackwardFormula is the gradient with respect to input i in
	// whole-tensor notation, given the inputs' names, the output's name and
	// the name of the upstream gradient.
	BackwardFormula(i int, in []expr.Expr, out, gout expr.Expr) expr.Expr
	// BackwardElem is the expression for element m of the gradient with
	// respect to input i, in terms of input elements in(i, m), output
	// elements out(k) and upstream gradient elements gout(k).
	BackwardElem(i, m int, in func(i, m int) expr.Expr, out, gout func(k int) expr.Expr) expr.Expr
}

// Index gives the expression of a tensor element at symbolic indices, so
// that a rule can refer to an output or gradient element (h0[i]) without
// knowing how the renderer names it.
type Index func(idx []string) expr.Expr

// InputIndex gives input i's element at symbolic indices.
type InputIndex func(i int, idx []string) expr.Expr

// ForwardRuler is implemented by ops that can write a general output
// element with symbolic indices, the formula a worked solution states once
// before it works a few elements in numbers (u0[i] = Σ_j w0[i,j]·z[j] +
// b0[i]). fresh(hint) returns an index name not yet used in the rule. A nil
// rule means the op has none for this case; the string is a short remark on
// the rule's range, such as which terms a convolution sum keeps.
type ForwardRuler interface {
	ForwardRule(out []string, in InputIndex, fresh func(string) string) (expr.Expr, string)
}

// BackwardRuler is the same for element idx of the gradient with respect to
// input i, in terms of input, output and upstream-gradient elements.
type BackwardRuler interface {
	BackwardRule(i int, idx []string, in InputIndex, out, gout Index, fresh func(string) string) (expr.Expr, string)
}

// DerivNoter is implemented by element-wise ops that state their local
// derivative and its convention (ReLU′ at 0, the derivative of log σ),
// given the names of the input x and the output y.
type DerivNoter interface {
	DerivativeNote(x, y string) string
}

// PassThrough is implemented by ops whose gradient for an input is the
// upstream gradient unchanged (the x of x + b), so a renderer can reuse the
// consumer's gradient name instead of printing a trivial step.
type PassThrough interface{ PassThrough(i int) bool }

// IndexNamer is implemented by ops that know better names for an
// operand's axes than its rank suggests: a bias added per channel is
// indexed by c, not i. A nil or wrongly sized answer means no preference.
type IndexNamer interface {
	InputIndexNames(i int) []string
}

// IndexNames are the symbolic indices of a general element of a tensor of
// the given shape, as every renderer names them: i; i,j; c,i,j for an image; c,d,a,b for a kernel
// (in/out channel, row, column); an axis of size 1 is the literal 1.
func IndexNames(shape []int, param bool) []string {
	var names []string
	switch len(shape) {
	case 0:
		return nil
	case 1:
		names = []string{"i"}
	case 2:
		names = []string{"i", "j"}
	case 3:
		names = []string{"c", "i", "j"}
	case 4:
		if param {
			names = []string{"c", "d", "a", "b"}
		} else {
			names = []string{"n", "c", "i", "j"}
		}
	default:
		return nil
	}
	out := make([]string, len(shape))
	for a, n := range names {
		if shape[a] == 1 && len(shape) > 1 {
			out[a] = "1"
		} else {
			out[a] = n
		}
	}
	return out
}
