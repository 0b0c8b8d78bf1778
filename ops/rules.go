package ops

// Rules (explain.ForwardRuler and explain.BackwardRuler): the formula of
// a general element, with symbolic indices, that a worked solution states
// once before it works a few elements in numbers
// (u0[i] = Σ_j w0[i,j]·z[j] + b0[i]). An op's ForwardRule writes output
// element out in terms of input elements in(i, idx); BackwardRule writes
// element idx of the gradient with respect to input i in terms of input,
// output and upstream-gradient elements. fresh(hint) returns an index name
// not yet used in the rule (hint itself, or hint with primes). A nil rule
// means the op has none for this case; note is a short remark on the
// rule's range, such as which terms a convolution sum keeps.

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/backprop-dev/backprop/explain"
	"github.com/backprop-dev/backprop/expr"
)

// Index is explain.Index, the expression of a tensor element at symbolic
// indices; the name is kept short for the many rule signatures of ops.
type Index = explain.Index

// InputIndex is explain.InputIndex, input i's element at symbolic indices.
type InputIndex = explain.InputIndex

// term is coef·sym in an affine index expression.
type term struct {
	coef int
	sym  string
}

// affine renders Σ coef·sym + c compactly: i−k+1, 2i+a−3.
func affine(c int, ts ...term) string {
	var b strings.Builder
	// positive terms first: k−i+3 rather than −i+k+3
	sorted := make([]term, 0, len(ts))
	for _, t := range ts {
		if t.coef > 0 {
			sorted = append(sorted, t)
		}
	}
	for _, t := range ts {
		if t.coef < 0 {
			sorted = append(sorted, t)
		}
	}
	for _, t := range sorted {
		if t.coef == 0 {
			continue
		}
		switch {
		case t.coef < 0 && b.Len() == 0:
			b.WriteString("−")
		case t.coef < 0:
			b.WriteString("−")
		case b.Len() > 0:
			b.WriteString("+")
		}
		if a := abs(t.coef); a != 1 {
			b.WriteString(strconv.Itoa(a))
		}
		b.WriteString(t.sym)
	}
	switch {
	case c > 0 && b.Len() > 0:
		b.WriteString("+" + strconv.Itoa(c))
	case c < 0:
		b.WriteString("−" + strconv.Itoa(-c))
	case c > 0 || b.Len() == 0:
		b.WriteString(strconv.Itoa(c))
	}
	return b.String()
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// ForwardRule implements the rule of an element-wise function: f(x[idx]).
func (o *UnaryOp[T]) ForwardRule(out []string, in InputIndex, fresh func(string) string) (expr.Expr, string) {
	return o.call(in(0, out)), ""
}

// BackwardRule implements the element-wise chain rule: gout[idx]·f′.
func (o *UnaryOp[T]) BackwardRule(i int, idx []string, in InputIndex, out, gout Index, fresh func(string) string) (expr.Expr, string) {
	return expr.Product{gout(idx), o.deriv(in(0, idx), out(idx), false)}, ""
}

// ForwardRule implements the rule of a product: Σ_k A[i,k]·B[k,j], with
// vectors as rows (left) or columns (right).
func (o *MatMulOp[T]) ForwardRule(out []string, in InputIndex, fresh func(string) string) (expr.Expr, string) {
	var i, j string
	rest := out
	if !o.aVec {
		i, rest = rest[0], rest[1:]
	}
	if !o.bVec {
		j = rest[0]
	}
	k := fresh(o.contractHint(i, j))
	return expr.Sigma{Over: []string{k}, X: expr.Product{in(0, o.aIdx(i, k)), in(1, o.bIdx(k, j))}}, ""
}

func (o *MatMulOp[T]) contractHint(i, j string) string {
	if i == "i" && j == "" {
		return "j"
	}
	return "k"
}

// aIdx is the storage index of Ā[i,k]; bIdx of B̄[k,j].
func (o *MatMulOp[T]) aIdx(i, k string) []string {
	switch {
	case o.aVec:
		return []string{k}
	case o.tA:
		return []string{k, i}
	}
	return []string{i, k}
}

func (o *MatMulOp[T]) bIdx(k, j string) []string {
	switch {
	case o.bVec:
		return []string{k}
	case o.tB:
		return []string{j, k}
	}
	return []string{k, j}
}

// outIdx is the output index of element [i,j] (either may be absent).
func (o *MatMulOp[T]) outIdx(i, j string) []string {
	var out []string
	if !o.aVec {
		out = append(out, i)
	}
	if !o.bVec {
		out = append(out, j)
	}
	return out
}

// BackwardRule implements ∂/∂Ā[i,k] = Σ_j G[i,j]·B̄[k,j] and
// ∂/∂B̄[k,j] = Σ_i G[i,j]·Ā[i,k].
func (o *MatMulOp[T]) BackwardRule(n int, idx []string, in InputIndex, out, gout Index, fresh func(string) string) (expr.Expr, string) {
	if n == 0 {
		var i, k string
		switch {
		case o.aVec:
			k = idx[0]
		case o.tA:
			k, i = idx[0], idx[1]
		default:
			i, k = idx[0], idx[1]
		}
		if o.bVec {
			return expr.Product{gout(o.outIdx(i, "")), in(1, o.bIdx(k, ""))}, ""
		}
		j := fresh("j")
		return expr.Sigma{Over: []string{j}, X: expr.Product{gout(o.outIdx(i, j)), in(1, o.bIdx(k, j))}}, ""
	}
	var k, j string
	switch {
	case o.bVec:
		k = idx[0]
	case o.tB:
		j, k = idx[0], idx[1]
	default:
		k, j = idx[0], idx[1]
	}
	if o.aVec {
		return expr.Product{gout(o.outIdx("", j)), in(0, o.aIdx("", k))}, ""
	}
	i := fresh("i")
	return expr.Sigma{Over: []string{i}, X: expr.Product{gout(o.outIdx(i, j)), in(0, o.aIdx(i, k))}}, ""
}

// ForwardRule implements x[idx] + b[the bias's axes of idx].
func (o *BiasAddOp[T]) ForwardRule(out []string, in InputIndex, fresh func(string) string) (expr.Expr, string) {
	if o.Axis+o.brank > len(out) {
		return nil, ""
	}
	return expr.Sum{in(0, out), in(1, out[o.Axis:o.Axis+o.brank])}, ""
}

// BackwardRule implements gout[idx] for x and, for the bias, gout summed
// over the axes it is broadcast along (an axis of size 1 is indexed 1).
func (o *BiasAddOp[T]) BackwardRule(n int, idx []string, in InputIndex, out, gout Index, fresh func(string) string) (expr.Expr, string) {
	if n == 0 {
		return gout(idx), ""
	}
	var full, over []string
	hints := indexHints(len(o.xShape))
	axis := func(a int) {
		if o.xShape[a] == 1 {
			full = append(full, "1")
			return
		}
		h := "k"
		if a < len(hints) {
			h = hints[a]
		}
		s := fresh(h)
		full, over = append(full, s), append(over, s)
	}
	for a := 0; a < o.Axis; a++ {
		axis(a)
	}
	full = append(full, idx...)
	for a := o.Axis + o.brank; a < len(o.xShape); a++ {
		axis(a)
	}
	if len(over) == 0 {
		return gout(full), ""
	}
	return expr.Sigma{Over: over, X: gout(full)}, ""
}

// InputIndexNames implements explain.IndexNamer: the bias's indices are
// named after the axes of x it is aligned with, c for a per-channel bias,
// i,j for a per-pixel one.
func (o *BiasAddOp[T]) InputIndexNames(i int) []string {
	if i != 1 || o.brank == 0 {
		return nil
	}
	h := indexHints(len(o.xShape))
	if o.Axis+o.brank > len(h) {
		return nil
	}
	return h[o.Axis : o.Axis+o.brank]
}

// ForwardRule implements c·x[idx].
func (o *ScaleOp[T]) ForwardRule(out []string, in InputIndex, fresh func(string) string) (expr.Expr, string) {
	return o.times(in(0, out)), ""
}

// BackwardRule implements c·gout[idx].
func (o *ScaleOp[T]) BackwardRule(n int, idx []string, in InputIndex, out, gout Index, fresh func(string) string) (expr.Expr, string) {
	return o.times(gout(idx)), ""
}

// ForwardRule implements Σ_i (x[i] − t[i])² (over the divisor, if any) for
// a vector.
func (o *SquaredErrorOp[T]) ForwardRule(out []string, in InputIndex, fresh func(string) string) (expr.Expr, string) {
	if len(o.shape) != 1 {
		return nil, ""
	}
	i := fresh("i")
	d := expr.Diff{A: in(0, []string{i}), B: in(1, []string{i})}
	return o.div(expr.Sigma{Over: []string{i}, X: expr.Raw{Plain: "(" + expr.String(d) + ")²", TeX: `\left(` + d.Render(expr.Style{LaTeX: true}) + `\right)^{2}`}}), ""
}

// BackwardRule implements 2·gout·(x[i] − t[i]).
func (o *SquaredErrorOp[T]) BackwardRule(n int, idx []string, in InputIndex, out, gout Index, fresh func(string) string) (expr.Expr, string) {
	d := expr.Diff{A: in(0, idx), B: in(1, idx)}
	if n == 1 {
		d = expr.Diff{A: in(1, idx), B: in(0, idx)}
	}
	return o.div(expr.Product{expr.Num(2), gout(nil), d}), ""
}

// ForwardRule implements the element map of a reshape or flatten: the
// output element and the input element at the same position in the
// reading order, with that position written out.
func (o *ReshapeOp[T]) ForwardRule(out []string, in InputIndex, fresh func(string) string) (expr.Expr, string) {
	outShape := o.outShape
	if len(o.inShape) == 1 && len(out) >= 1 { // vector → tensor: x[k(out)]
		return in(0, []string{o.position(out, outShape)}), ""
	}
	if len(outShape) == 1 && len(out) == 1 { // tensor → vector: x[idx] where k(idx) = out
		idx := o.names(fresh)
		return in(0, idx), fmt.Sprintf("where %s = %s", out[0], o.position(idx, o.inShape))
	}
	return nil, ""
}

// BackwardRule implements the same map for the gradient.
func (o *ReshapeOp[T]) BackwardRule(n int, idx []string, in InputIndex, out, gout Index, fresh func(string) string) (expr.Expr, string) {
	if len(o.outShape) == 1 && len(idx) >= 1 { // the input was a tensor, the output a vector
		return gout([]string{o.position(idx, o.inShape)}), ""
	}
	if len(o.inShape) == 1 && len(idx) == 1 {
		g := o.names(fresh)
		return gout(g), fmt.Sprintf("where %s = %s", idx[0], o.position(g, o.outShape))
	}
	return nil, ""
}

// names are index names for the multi-axis side: c,i,j for an image, a
// literal 1 for an axis of size 1.
func (o *ReshapeOp[T]) names(fresh func(string) string) []string {
	shape := o.inShape
	if len(o.inShape) == 1 {
		shape = o.outShape
	}
	hints := map[int][]string{2: {"i", "j"}, 3: {"c", "i", "j"}, 4: {"n", "c", "i", "j"}}[len(shape)]
	idx := make([]string, len(shape))
	for a := range shape {
		if shape[a] == 1 {
			idx[a] = "1"
			continue
		}
		h := "k"
		if a < len(hints) {
			h = hints[a]
		}
		idx[a] = fresh(h)
	}
	return idx
}

// position is the 1-based reading position of idx in shape: row-major, or
// with the last two axes read column by column (MATLAB) when ColMajor.
func (o *ReshapeOp[T]) position(idx []string, shape []int) string {
	r := len(shape)
	order := make([]int, r) // axes from slowest to fastest
	for a := range order {
		order[a] = a
	}
	if o.ColMajor && r >= 2 {
		order[r-2], order[r-1] = r-1, r-2
	}
	strides := make([]int, r)
	s := 1
	for q := r - 1; q >= 0; q-- {
		strides[order[q]] = s
		s *= shape[order[q]]
	}
	var ts []term
	c := 1
	for _, a := range order {
		if idx[a] == "1" || shape[a] == 1 {
			continue
		}
		ts = append(ts, term{strides[a], idx[a]})
		c -= strides[a]
	}
	return affineGrouped(ts, c)
}

// affineGrouped renders Σ s·(x−1) + 1 as 4(c−1)+2(i−1)+j, the form a
// reader recognises, equal to affine with the constant folded.
func affineGrouped(ts []term, c int) string {
	if len(ts) == 0 {
		return "1"
	}
	var parts []string
	for q, t := range ts {
		if q == len(ts)-1 && t.coef == 1 {
			parts = append(parts, t.sym)
			continue
		}
		if t.coef == 1 {
			parts = append(parts, "("+t.sym+"−1)")
		} else {
			parts = append(parts, strconv.Itoa(t.coef)+"("+t.sym+"−1)")
		}
	}
	s := strings.Join(parts, "+")
	if last := ts[len(ts)-1]; last.coef != 1 {
		s += "+1"
	}
	return s
}

// convRule reports whether the op has an unbatched rule.
func (s *convShape) ruled() bool { return !s.batched }

// kernelIndex is the stored kernel index for tap position expr e (1-based),
// rotated when the kernel is flipped: e, or K+1−e.
func (s *convShape) kernelIndex(c int, ts []term, k int) string {
	if !s.flip {
		return affine(c, ts...)
	}
	neg := make([]term, len(ts))
	for q, t := range ts {
		neg[q] = term{-t.coef, t.sym}
	}
	return affine(k+1-c, neg...)
}

// ForwardRule implements the scatter of a transposed convolution read
// from the output side: u[d,i,j] = Σ_{c,k,l} x[c,k,l]·w[c,d,a,b] with
// a = i−s(k−1)+p the kernel row that input pixel k adds to row i.
func (o *ConvTranspose2dOp[T]) ForwardRule(out []string, in InputIndex, fresh func(string) string) (expr.Expr, string) {
	s := &o.s
	if !s.ruled() || len(out) != 3 {
		return nil, ""
	}
	d, i, j := out[0], out[1], out[2]
	over := []string{}
	c := "1"
	if s.small > 1 {
		c = fresh("c")
		over = append(over, c)
	}
	k, l := fresh("k"), fresh("l")
	over = append(over, k, l)
	a := s.kernelIndex(s.g.SH+s.g.PH, []term{{1, i}, {-s.g.SH, k}}, s.g.KH)
	b := s.kernelIndex(s.g.SW+s.g.PW, []term{{1, j}, {-s.g.SW, l}}, s.g.KW)
	note := fmt.Sprintf("the sum runs over the input pixels whose kernel copy reaches the output pixel: the terms with kernel indices %s and %s in 1…%d", a, b, s.g.KH)
	if s.g.KH != s.g.KW {
		note = fmt.Sprintf("the sum runs over the input pixels whose kernel copy reaches the output pixel: the terms with %s in 1…%d and %s in 1…%d", a, s.g.KH, b, s.g.KW)
	}
	return expr.Sigma{Over: over, X: expr.Product{in(0, []string{c, k, l}), in(1, []string{c, d, a, b})}}, note
}

// BackwardRule implements ∂/∂w[c,d,a,b] = Σ_{k,l} G[d, s(k−1)+a−p, ...]·x[c,k,l]
// and ∂/∂x[c,k,l] = Σ_{d,a,b} G[d, s(k−1)+a−p, ...]·w[c,d,a,b].
func (o *ConvTranspose2dOp[T]) BackwardRule(n int, idx []string, in InputIndex, out, gout Index, fresh func(string) string) (expr.Expr, string) {
	s := &o.s
	if !s.ruled() {
		return nil, ""
	}
	// output row of input row k and kernel row a (the stored index when flipped: K+1−a)
	row := func(k, a string, stride, pad, kk int) string {
		if s.flip {
			return affine(stride*-1-pad+kk+1, term{stride, k}, term{-1, a})
		}
		return affine(-stride-pad, term{stride, k}, term{1, a})
	}
	if n == 1 {
		c, d, a, b := idx[0], idx[1], idx[2], idx[3]
		k, l := fresh("k"), fresh("l")
		oi, oj := row(k, a, s.g.SH, s.g.PH, s.g.KH), row(l, b, s.g.SW, s.g.PW, s.g.KW)
		return expr.Sigma{Over: []string{k, l}, X: expr.Product{gout([]string{d, oi, oj}), in(0, []string{c, k, l})}},
			fmt.Sprintf("the sum keeps the terms whose output row %s and column %s lie inside the %d×%d output", oi, oj, s.g.H, s.g.W)
	}
	c, k, l := idx[0], idx[1], idx[2]
	var over []string
	d := "1"
	if s.g.C > 1 {
		d = fresh("d")
		over = append(over, d)
	}
	a, b := fresh("a"), fresh("b")
	over = append(over, a, b)
	oi, oj := row(k, a, s.g.SH, s.g.PH, s.g.KH), row(l, b, s.g.SW, s.g.PW, s.g.KW)
	return expr.Sigma{Over: over, X: expr.Product{gout([]string{d, oi, oj}), in(1, []string{c, d, a, b})}},
		fmt.Sprintf("the sum keeps the terms whose output row %s and column %s lie inside the %d×%d output", oi, oj, s.g.H, s.g.W)
}

// ForwardRule implements y[d,i,j] = Σ_{c,a,b} w[d,c,a,b]·x[c, s(i−1)+a−p, ...].
func (o *Conv2dOp[T]) ForwardRule(out []string, in InputIndex, fresh func(string) string) (expr.Expr, string) {
	s := &o.s
	if !s.ruled() || len(out) != 3 {
		return nil, ""
	}
	d, i, j := out[0], out[1], out[2]
	c, a, b := fresh("c"), fresh("a"), fresh("b")
	xi := affine(-s.g.SH-s.g.PH, term{s.g.SH, i}, term{1, a})
	xj := affine(-s.g.SW-s.g.PW, term{s.g.SW, j}, term{1, b})
	wa, wb := s.kernelIndex(0, []term{{1, a}}, s.g.KH), s.kernelIndex(0, []term{{1, b}}, s.g.KW)
	note := ""
	if s.g.PH > 0 || s.g.PW > 0 {
		note = fmt.Sprintf("terms with row %s or column %s outside the %d×%d input are the zero padding", xi, xj, s.g.H, s.g.W)
	}
	return expr.Sigma{Over: []string{c, a, b}, X: expr.Product{in(1, []string{d, c, wa, wb}), in(0, []string{c, xi, xj})}}, note
}

// BackwardRule implements ∂/∂w[d,c,a,b] = Σ_{i,j} G[d,i,j]·x[c, s(i−1)+a−p, ...]
// and ∂/∂x[c,i,j] = Σ_{d,k,l} G[d,k,l]·w[d,c, i−s(k−1)+p, ...].
func (o *Conv2dOp[T]) BackwardRule(n int, idx []string, in InputIndex, out, gout Index, fresh func(string) string) (expr.Expr, string) {
	s := &o.s
	if !s.ruled() {
		return nil, ""
	}
	if n == 1 {
		d, c, a, b := idx[0], idx[1], idx[2], idx[3]
		if s.flip {
			a, b = affine(s.g.KH+1, term{-1, a}), affine(s.g.KW+1, term{-1, b})
		}
		i, j := fresh("i"), fresh("j")
		xi := affine(-s.g.SH-s.g.PH, term{s.g.SH, i}, term{1, a})
		xj := affine(-s.g.SW-s.g.PW, term{s.g.SW, j}, term{1, b})
		return expr.Sigma{Over: []string{i, j}, X: expr.Product{gout([]string{d, i, j}), in(0, []string{c, xi, xj})}}, ""
	}
	c, i, j := idx[0], idx[1], idx[2]
	d, k, l := fresh("d"), fresh("k"), fresh("l")
	a := s.kernelIndex(s.g.SH+s.g.PH, []term{{1, i}, {-s.g.SH, k}}, s.g.KH)
	b := s.kernelIndex(s.g.SW+s.g.PW, []term{{1, j}, {-s.g.SW, l}}, s.g.KW)
	return expr.Sigma{Over: []string{d, k, l}, X: expr.Product{gout([]string{d, k, l}), in(1, []string{d, c, a, b})}},
		fmt.Sprintf("terms with kernel indices %s and %s in 1…%d", a, b, s.g.KH)
}

// DerivativeNote states the local derivative of an element-wise function
// and the convention behind it, once, where a worked solution first uses
// it: x and y are the input's and output's names.
func (o *UnaryOp[T]) DerivativeNote(x, y string) string {
	return o.info().Note(x, y, o.Slope)
}
