package ops

import (
	"fmt"
	"math"
	"strings"

	"github.com/backprop-dev/backprop/autograd"
	"github.com/backprop-dev/backprop/expr"
	"github.com/backprop-dev/backprop/tensor"
)

// LayerNormOp normalises each row of x (the values along its last axis)
// and applies an element-wise affine map, F.layer_norm(x, (K,), γ, β, ε):
//
//	y[r,j] = (x[r,j] − μ[r]) / σ[r] · γ[j] + β[j],
//	μ[r] = Σ_k x[r,k]/K,  σ[r] = √(Σ_k (x[r,k] − μ[r])²/K + ε)
//
// with the biased variance, as PyTorch. γ and β (shape (K)) are optional.
// With x̂ = (x − μ)/σ and ĝ = g·γ the gradients are
//
//	∂J/∂x[r,j] = (ĝ[r,j] − Σ_k ĝ[r,k]/K − x̂[r,j]·Σ_k ĝ[r,k]·x̂[r,k]/K)/σ[r],
//	∂J/∂γ[j] = Σ_r g[r,j]·x̂[r,j],  ∂J/∂β[j] = Σ_r g[r,j],
//
// the first being the full derivative through μ and σ, which depend on
// every value of the row. Statistics are taken in float64.
type LayerNormOp[T tensor.Float] struct {
	Eps float64
	// MeanName and StdName name a row's mean and standard deviation in
	// the op's rules and RuleValues ("μ" and "σ" when empty); a graph
	// with two normalisations can tell them apart (μ1, σ1).
	MeanName, StdName string

	wIdx, bIdx int // input positions of γ and β, −1 when absent
	names      [3]string
	rows, k    int
	shape      []int
	mean, std  []float64
	variance   []float64
}

// LayerNorm records layer normalisation of x over its last axis with
// weight γ and bias β (each (K) or nil) and ε = eps.
func LayerNorm[T tensor.Float](name string, x, weight, bias *autograd.Var[T], eps float64) (*autograd.Var[T], error) {
	op := &LayerNormOp[T]{Eps: eps, wIdx: -1, bIdx: -1}
	in := []*autograd.Var[T]{x}
	op.names[0] = x.Name
	if weight != nil {
		op.wIdx = len(in)
		op.names[1] = weight.Name
		in = append(in, weight)
	}
	if bias != nil {
		op.bIdx = len(in)
		op.names[2] = bias.Name
		in = append(in, bias)
	}
	return apply(name, op, in...)
}

// Name implements autograd.Op.
func (o *LayerNormOp[T]) Name() string { return "layer_norm" }

func (o *LayerNormOp[T]) meanName() string {
	if o.MeanName == "" {
		return "μ"
	}
	return o.MeanName
}

func (o *LayerNormOp[T]) stdName() string {
	if o.StdName == "" {
		return "σ"
	}
	return o.StdName
}

// Mean returns each row's mean from the last Forward (the op's slice).
func (o *LayerNormOp[T]) Mean() []float64 { return o.mean }

// Std returns each row's √(variance + ε) from the last Forward.
func (o *LayerNormOp[T]) Std() []float64 { return o.std }

// Forward implements autograd.Op.
func (o *LayerNormOp[T]) Forward(in []*tensor.Tensor[T]) (*tensor.Tensor[T], error) {
	want := 1
	if o.wIdx >= 0 {
		want++
	}
	if o.bIdx >= 0 {
		want++
	}
	if err := wantInputs("layer_norm", in, want); err != nil {
		return nil, err
	}
	x := in[0]
	xs := x.Shape()
	if len(xs) == 0 || xs[len(xs)-1] == 0 {
		return nil, &tensor.ShapeError{Op: "layer_norm", Tensor: opName(o.names[0], "input"), Want: "at least one axis with at least one element: (K) or (N, K)", Got: xs}
	}
	if o.Eps < 0 || math.IsNaN(o.Eps) || math.IsInf(o.Eps, 0) {
		return nil, fmt.Errorf("layer_norm: eps must be a finite number ≥ 0, got %g", o.Eps)
	}
	k := xs[len(xs)-1]
	for _, p := range []struct {
		i     int
		place string
		name  string
	}{{o.wIdx, "weight", o.names[1]}, {o.bIdx, "bias", o.names[2]}} {
		if p.i >= 0 && !tensor.SameShape(in[p.i].Shape(), []int{k}) {
			return nil, &tensor.ShapeError{Op: "layer_norm", Tensor: opName(p.name, p.place),
				Want: fmt.Sprintf("[%d] (one value per element of the last axis of %s, whose shape is %s)", k, opName(o.names[0], "the input"), tensor.FormatShape(xs)), Got: in[p.i].Shape()}
		}
	}
	o.k, o.rows = k, x.Len()/k
	o.shape = append([]int(nil), xs...)
	o.mean, o.std, o.variance = make([]float64, o.rows), make([]float64, o.rows), make([]float64, o.rows)
	out := tensor.Empty[T](xs...)
	xd, od := x.Data(), out.Data()
	for r := range o.rows {
		row := xd[r*k : (r+1)*k]
		mu := 0.0
		for _, v := range row {
			mu += float64(v)
		}
		mu /= float64(k)
		v2 := 0.0
		for _, v := range row {
			d := float64(v) - mu
			v2 += d * d
		}
		std := math.Sqrt(v2/float64(k) + o.Eps)
		o.mean[r], o.std[r], o.variance[r] = mu, std, v2/float64(k)
		for j, v := range row {
			y := (float64(v) - mu) / std
			if o.wIdx >= 0 {
				y *= float64(in[o.wIdx].Data()[j])
			}
			if o.bIdx >= 0 {
				y += float64(in[o.bIdx].Data()[j])
			}
			od[r*k+j] = T(y)
		}
	}
	return out, nil
}

// Backward implements autograd.Op, in float64 per row.
func (o *LayerNormOp[T]) Backward(in []*tensor.Tensor[T], out, gout *tensor.Tensor[T], need []bool) []*tensor.Tensor[T] {
	grads := make([]*tensor.Tensor[T], len(in))
	xd, g, k := in[0].Data(), gout.Data(), o.k
	var dw, db []float64
	if o.wIdx >= 0 && need[o.wIdx] {
		dw = make([]float64, k)
	}
	if o.bIdx >= 0 && need[o.bIdx] {
		db = make([]float64, k)
	}
	var dx *tensor.Tensor[T]
	if need[0] {
		dx = tensor.Empty[T](in[0].Shape()...)
	}
	gh, xh := make([]float64, k), make([]float64, k)
	for r := range o.rows {
		mu, std := o.mean[r], o.std[r]
		sg, sgx := 0.0, 0.0
		for j := range k {
			gv := float64(g[r*k+j])
			xh[j] = (float64(xd[r*k+j]) - mu) / std
			gh[j] = gv
			if o.wIdx >= 0 {
				gh[j] *= float64(in[o.wIdx].Data()[j])
			}
			sg += gh[j]
			sgx += gh[j] * xh[j]
			if dw != nil {
				dw[j] += gv * xh[j]
			}
			if db != nil {
				db[j] += gv
			}
		}
		if dx != nil {
			for j := range k {
				dx.Data()[r*k+j] = T((gh[j] - sg/float64(k) - xh[j]*(sgx/float64(k))) / std)
			}
		}
	}
	grads[0] = dx
	for _, p := range []struct {
		i int
		d []float64
	}{{o.wIdx, dw}, {o.bIdx, db}} {
		if p.d != nil {
			t := tensor.Empty[T](k)
			for j, v := range p.d {
				t.Data()[j] = T(v)
			}
			grads[p.i] = t
		}
	}
	return grads
}

// RuleValues returns the statistics the rules name, by those names: the
// mean and the standard deviation √(variance + ε) of every row, shaped as
// x without its last axis.
func (o *LayerNormOp[T]) RuleValues() map[string]*tensor.Tensor[float64] {
	rs := o.shape[:len(o.shape)-1]
	return map[string]*tensor.Tensor[float64]{
		o.meanName(): tensor.MustFromSlice(append([]float64(nil), o.mean...), rs...),
		o.stdName():  tensor.MustFromSlice(append([]float64(nil), o.std...), rs...),
	}
}

// stdExpr is √(σ²_r + ε) of row r with the numbers, carrying its value.
func (o *LayerNormOp[T]) stdExpr(r int) expr.Expr {
	plain, tex := expr.Style{}, expr.Style{LaTeX: true}
	v, e := expr.Num(o.variance[r]), expr.Num(o.Eps)
	return expr.Inline{
		X:     expr.Raw{Plain: "√(" + v.Render(plain) + " + " + e.Render(plain) + ")", TeX: `\sqrt{` + v.Render(tex) + " + " + e.Render(tex) + "}"},
		Value: o.std[r],
	}
}

// xhat is (x_k − μ_r)/√(σ²_r + ε) for position k, with the numbers.
func (o *LayerNormOp[T]) xhat(k int, in func(i, m int) expr.Expr) expr.Expr {
	r := k / o.k
	return expr.Quot{A: expr.Diff{A: in(0, k), B: expr.Num(o.mean[r])}, B: o.stdExpr(r)}
}

// affine is x̂·γ_j + β_j of a normalised value, leaving out what is absent.
func (o *LayerNormOp[T]) affine(xh, gamma, beta expr.Expr) expr.Expr {
	e := xh
	if o.wIdx >= 0 {
		e = expr.Product{xh, gamma}
	}
	if o.bIdx >= 0 {
		e = expr.Sum{e, beta}
	}
	return e
}

func (o *LayerNormOp[T]) epsNote() string { return fmt.Sprintf("ε = %g", o.Eps) }

// normalize is x̂ = (x − μ)/σ row by row, as a whole-tensor function.
func (o *LayerNormOp[T]) normalize(x expr.Expr) expr.Expr {
	eps := o.Eps
	return alongAxis("normalize", `\operatorname{normalize}`, "per row, "+o.epsNote(), x, o.rows, o.k, 1, func(line, out []float64) {
		mu, sd := meanStd(line, eps)
		for j, v := range line {
			out[j] = (v - mu) / sd
		}
	})
}

// meanStd is a line's mean and √(biased variance + eps).
func meanStd(line []float64, eps float64) (float64, float64) {
	mu := 0.0
	for _, v := range line {
		mu += v
	}
	mu /= float64(len(line))
	v2 := 0.0
	for _, v := range line {
		v2 += (v - mu) * (v - mu)
	}
	return mu, math.Sqrt(v2/float64(len(line)) + eps)
}

// sumRows is Σ over the rows, a (K) vector, or e itself for one row.
func (o *LayerNormOp[T]) sumRows(e expr.Expr) expr.Expr {
	if o.rows == 1 {
		return e
	}
	rows, k := o.rows, o.k
	return expr.Fn{Name: "Σ_rows", TeX: `\textstyle\sum_{\text{rows}}`, Args: []expr.Expr{e}, Eval: func(a []*tensor.Tensor[float64]) (*tensor.Tensor[float64], error) {
		if a[0].Len() != rows*k {
			return nil, fmt.Errorf("Σ_rows: argument has %d elements, want %d", a[0].Len(), rows*k)
		}
		out := tensor.New[float64](k)
		for r := range rows {
			for j := range k {
				out.Data()[j] += a[0].Data()[r*k+j]
			}
		}
		return out, nil
	}}
}

// Formula implements explain.Explainer: normalize(x) ⊙ 𝟏γᵀ + 𝟏βᵀ.
func (o *LayerNormOp[T]) Formula(in []expr.Expr) expr.Expr {
	var gamma, beta expr.Expr
	if o.wIdx >= 0 {
		gamma = rowsOf(o.rows, in[o.wIdx])
	}
	if o.bIdx >= 0 {
		beta = rowsOf(o.rows, in[o.bIdx])
	}
	xh := o.normalize(in[0])
	e := xh
	if gamma != nil {
		e = expr.Hadamard{xh, gamma}
	}
	if beta != nil {
		e = expr.Sum{e, beta}
	}
	return e
}

// ForwardElem implements explain.Explainer:
// (x_k − μ_r)/√(σ²_r + ε)·γ_j + β_j with the statistics as numbers.
func (o *LayerNormOp[T]) ForwardElem(k int, in func(i, m int) expr.Expr) expr.Expr {
	j := k % o.k
	var gamma, beta expr.Expr
	if o.wIdx >= 0 {
		gamma = in(o.wIdx, j)
	}
	if o.bIdx >= 0 {
		beta = in(o.bIdx, j)
	}
	return o.affine(o.xhat(k, in), gamma, beta)
}

// ghat is g ⊙ 𝟏γᵀ, the gradient with respect to the normalised value.
func (o *LayerNormOp[T]) ghat(in []expr.Expr, gout expr.Expr) expr.Expr {
	if o.wIdx < 0 {
		return gout
	}
	return expr.Hadamard{gout, rowsOf(o.rows, in[o.wIdx])}
}

// BackwardFormula implements explain.Explainer: for x
// (ĝ − mean_row(ĝ) − x̂ ⊙ mean_row(ĝ ⊙ x̂)) ⊘ std_row(x) with ĝ = g ⊙ 𝟏γᵀ
// and x̂ = normalize(x); Σ_rows(g ⊙ x̂) for γ; Σ_rows g for β.
func (o *LayerNormOp[T]) BackwardFormula(i int, in []expr.Expr, out, gout expr.Expr) expr.Expr {
	xh := o.normalize(in[0])
	switch i {
	case o.wIdx:
		return o.sumRows(expr.Hadamard{gout, xh})
	case o.bIdx:
		return o.sumRows(gout)
	}
	gh := o.ghat(in, gout)
	meanRow := func(e expr.Expr) expr.Expr {
		return alongAxis("mean_row", `\operatorname{mean}_{\text{row}}`, "", e, o.rows, o.k, 1, func(line, out []float64) {
			lineSum(line, out)
			for j := range out {
				out[j] /= float64(len(line))
			}
		})
	}
	eps := o.Eps
	std := alongAxis("std_row", `\operatorname{std}_{\text{row}}`, o.epsNote(), in[0], o.rows, o.k, 1, func(line, out []float64) {
		_, sd := meanStd(line, eps)
		for j := range out {
			out[j] = sd
		}
	})
	return expr.Quot{A: expr.Diff{A: expr.Diff{A: gh, B: meanRow(gh)}, B: expr.Hadamard{xh, meanRow(expr.Hadamard{gh, xh})}}, B: std}
}

// BackwardElem implements explain.Explainer with the statistics as
// numbers: for x (ĝ_m − Σ_q ĝ_q/K − x̂_m·Σ_q ĝ_q·x̂_q/K)/√(σ²_r + ε) over
// the row r of m, ĝ_q = g_q·γ_q; for γ Σ_r g·x̂; for β Σ_r g.
func (o *LayerNormOp[T]) BackwardElem(i, m int, in func(i, m int) expr.Expr, out, gout func(k int) expr.Expr) expr.Expr {
	k := o.k
	if i != 0 {
		terms := make([]expr.Expr, o.rows)
		for r := range o.rows {
			if i == o.wIdx {
				terms[r] = expr.Product{gout(r*k + m), o.xhat(r*k+m, in)}
			} else {
				terms[r] = gout(r*k + m)
			}
		}
		return sumOf(terms)
	}
	r := m / k
	gh := func(q int) expr.Expr {
		if o.wIdx < 0 {
			return gout(r*k + q)
		}
		return expr.Product{gout(r*k + q), in(o.wIdx, q)}
	}
	gs, gx := make([]expr.Expr, k), make([]expr.Expr, k)
	for q := range k {
		gs[q] = gh(q)
		gx[q] = expr.Product{gh(q), o.xhat(r*k+q, in)}
	}
	kk := expr.Num(k)
	return expr.Quot{
		A: expr.Diff{A: expr.Diff{A: gh(m % k), B: expr.Quot{A: sumOf(gs), B: kk}}, B: expr.Product{o.xhat(m, in), expr.Quot{A: sumOf(gx), B: kk}}},
		B: o.stdExpr(r),
	}
}

// rowRefs are the symbolic statistics of the row of idx (all but its
// last index).
func (o *LayerNormOp[T]) rowRefs(row []string) (mu, sd expr.Expr) {
	if len(row) == 0 {
		row = nil
	}
	return expr.Ref{Name: o.meanName(), Sym: row}, expr.Ref{Name: o.stdName(), Sym: row}
}

// ruleNote defines the statistics for a row index list row.
func (o *LayerNormOp[T]) ruleNote(row []string, k string) string {
	at := append(append([]string(nil), row...), k)
	x := expr.String(expr.Ref{Name: "x", Sym: at})
	r := ""
	if len(row) > 0 {
		r = "[" + strings.Join(row, ",") + "]"
	}
	mu, sd := o.meanName()+r, o.stdName()+r
	return fmt.Sprintf("%s = Σ_%s %s/%d is the mean of the row and %s = √(Σ_%s (%s − %s)²/%d + ε) its standard deviation, x being the layer's input (biased variance as PyTorch, %s)",
		mu, k, x, o.k, sd, k, x, mu, o.k, o.epsNote())
}

// rowHints are index names for the row axes of a rule's sums.
var rowHints = []string{"n", "m", "p", "q"}

// freshRows are fresh names for the axes of x but the last.
func (o *LayerNormOp[T]) freshRows(fresh func(string) string) (row, over []string) {
	for a, d := range o.shape[:len(o.shape)-1] {
		if d == 1 {
			row = append(row, "1")
			continue
		}
		h := "r"
		if a < len(rowHints) {
			h = rowHints[a]
		}
		s := fresh(h)
		row, over = append(row, s), append(over, s)
	}
	return row, over
}

// ForwardRule implements y[r,j] = (x[r,j] − μ[r])/σ[r]·γ[j] + β[j].
func (o *LayerNormOp[T]) ForwardRule(out []string, in InputIndex, fresh func(string) string) (expr.Expr, string) {
	if len(out) != len(o.shape) {
		return nil, ""
	}
	row, j := out[:len(out)-1], out[len(out)-1]
	mu, sd := o.rowRefs(row)
	xh := expr.Quot{A: expr.Diff{A: in(0, out), B: mu}, B: sd}
	var gamma, beta expr.Expr
	if o.wIdx >= 0 {
		gamma = in(o.wIdx, []string{j})
	}
	if o.bIdx >= 0 {
		beta = in(o.bIdx, []string{j})
	}
	return o.affine(xh, gamma, beta), o.ruleNote(row, fresh("k"))
}

// BackwardRule implements the full derivative for x,
// (ĝ[r,j] − Σ_k ĝ[r,k]/K − x̂[r,j]·Σ_k ĝ[r,k]·x̂[r,k]/K)/σ[r] with
// ĝ[r,k] = g[r,k]·γ[k] and x̂[r,k] = (x[r,k] − μ[r])/σ[r], and
// Σ_r g[r,j]·x̂[r,j] for γ, Σ_r g[r,j] for β.
func (o *LayerNormOp[T]) BackwardRule(i int, idx []string, in InputIndex, out, gout Index, fresh func(string) string) (expr.Expr, string) {
	xhat := func(at []string) expr.Expr {
		mu, sd := o.rowRefs(at[:len(at)-1])
		return expr.Quot{A: expr.Diff{A: in(0, at), B: mu}, B: sd}
	}
	if i != 0 {
		if len(idx) != 1 {
			return nil, ""
		}
		row, over := o.freshRows(fresh)
		at := append(append([]string(nil), row...), idx[0])
		term := gout(at)
		if i == o.wIdx {
			term = expr.Product{gout(at), xhat(at)}
		}
		return sigmaOver(over, term), o.ruleNote(row, fresh("k"))
	}
	if len(idx) != len(o.shape) {
		return nil, ""
	}
	row, j := idx[:len(idx)-1], idx[len(idx)-1]
	k := fresh("k")
	at := append(append([]string(nil), row...), k)
	gh := func(at []string, q string) expr.Expr {
		if o.wIdx < 0 {
			return gout(at)
		}
		return expr.Product{gout(at), in(o.wIdx, []string{q})}
	}
	_, sd := o.rowRefs(row)
	kk := expr.Num(o.k)
	e := expr.Quot{
		A: expr.Diff{
			A: expr.Diff{A: gh(idx, j), B: expr.Quot{A: expr.Sigma{Over: []string{k}, X: gh(at, k)}, B: kk}},
			B: expr.Product{xhat(idx), expr.Quot{A: expr.Sigma{Over: []string{k}, X: expr.Product{gh(at, k), xhat(at)}}, B: kk}},
		},
		B: sd,
	}
	return e, o.ruleNote(row, k)
}
