package ops

import (
	"fmt"
	"math"

	"github.com/backprop-dev/backprop/autograd"
	"github.com/backprop-dev/backprop/expr"
	"github.com/backprop-dev/backprop/tensor"
)

// CrossEntropyOp is the softmax cross-entropy of logits (N, K) against one
// class index per row, averaged over the rows: PyTorch's
// F.cross_entropy(logits, labels) with its default mean reduction. It is
// the loss of a K-class classifier: −log softmax(aᵢ)[yᵢ] per row, computed
// as logsumexp(aᵢ) − aᵢ,yᵢ with the row's maximum taken out first, so that
// no exponential overflows and float32 logits give float64-accurate
// losses. The gradient is (softmax(aᵢ) − onehot(yᵢ))/N.
type CrossEntropyOp[T tensor.Float] struct {
	// Labels holds one class index per row of the logits, in [0, K).
	Labels []int
	n, k   int
	lse    []float64 // logsumexp of each row, kept for the backward pass
}

// Label is an integer type class indices come in: int, or the bytes of
// an IDX label file (data.Dataset.Labels) as they are.
type Label interface {
	~int | ~int8 | ~int16 | ~int32 | ~int64 | ~uint8 | ~uint16 | ~uint32
}

// CrossEntropy records the mean softmax cross-entropy of logits (N, K)
// against labels, one class index in [0, K) per row. The labels are plain
// integers, not a graph input: they get no gradient.
func CrossEntropy[T tensor.Float, L Label](name string, logits *autograd.Var[T], labels []L) (*autograd.Var[T], error) {
	idx := make([]int, len(labels))
	for i, y := range labels {
		idx[i] = int(y)
	}
	return apply(name, &CrossEntropyOp[T]{Labels: idx}, logits)
}

// Name implements autograd.Op.
func (o *CrossEntropyOp[T]) Name() string { return "cross_entropy" }

// Forward implements autograd.Op.
func (o *CrossEntropyOp[T]) Forward(in []*tensor.Tensor[T]) (*tensor.Tensor[T], error) {
	if err := wantInputs("cross_entropy", in, 1); err != nil {
		return nil, err
	}
	s := in[0].Shape()
	if len(s) != 2 || s[0] != len(o.Labels) || s[0] == 0 || s[1] == 0 {
		return nil, &tensor.ShapeError{Op: "cross_entropy", Tensor: "logits",
			Want: fmt.Sprintf("(%d, K) with K ≥ 1: one row per label", len(o.Labels)), Got: s}
	}
	o.n, o.k = s[0], s[1]
	for i, y := range o.Labels {
		if y < 0 || y >= o.k {
			return nil, fmt.Errorf("cross_entropy: label %d of row %d is not a class index in [0, %d)", y, i, o.k)
		}
	}
	a := in[0].Data()
	o.lse = make([]float64, o.n)
	total := 0.0
	for i := range o.n {
		row := a[i*o.k : (i+1)*o.k]
		o.lse[i] = logSumExp(row)
		total += o.lse[i] - float64(row[o.Labels[i]])
	}
	return tensor.Scalar(T(total / float64(o.n))), nil
}

// logSumExp is log Σⱼ exp(xⱼ) with the maximum taken out, in float64.
func logSumExp[T tensor.Float](x []T) float64 {
	m := math.Inf(-1)
	for _, v := range x {
		m = max(m, float64(v))
	}
	if math.IsInf(m, 0) {
		return m
	}
	s := 0.0
	for _, v := range x {
		s += math.Exp(float64(v) - m)
	}
	return m + math.Log(s)
}

// Backward implements autograd.Op.
func (o *CrossEntropyOp[T]) Backward(in []*tensor.Tensor[T], out, gout *tensor.Tensor[T], need []bool) []*tensor.Tensor[T] {
	if !need[0] {
		return []*tensor.Tensor[T]{nil}
	}
	g := float64(gout.Data()[0]) / float64(o.n)
	a := in[0].Data()
	d := tensor.Empty[T](o.n, o.k)
	dd := d.Data()
	for i := range o.n {
		for j := range o.k {
			p := math.Exp(float64(a[i*o.k+j]) - o.lse[i])
			if j == o.Labels[i] {
				p--
			}
			dd[i*o.k+j] = T(g * p)
		}
	}
	return []*tensor.Tensor[T]{d}
}

// Formula implements autograd.Explainer: the mean over the rows i of
// logsumexp(aᵢ) − aᵢ,yᵢ.
func (o *CrossEntropyOp[T]) Formula(in []expr.Expr) expr.Expr {
	a := expr.String(in[0])
	tex := in[0].Render(expr.Style{LaTeX: true})
	return expr.Raw{
		Plain: fmt.Sprintf("mean_i(logsumexp(%s_i) − %s_i,y_i)", a, a),
		TeX:   fmt.Sprintf(`\frac{1}{N}\sum_i \left(\log\sum_j e^{%s_{ij}} - %s_{i y_i}\right)`, tex, tex),
	}
}

// ForwardElem implements autograd.Explainer: the loss written out over the
// rows, each as logsumexp of its logits minus the labelled one.
func (o *CrossEntropyOp[T]) ForwardElem(k int, in func(i, m int) expr.Expr) expr.Expr {
	terms := make([]expr.Expr, o.n)
	for i := range o.n {
		terms[i] = expr.Diff{A: o.lseExpr(i, in), B: in(0, i*o.k+o.Labels[i])}
	}
	if o.n == 1 {
		return terms[0]
	}
	return expr.Quot{A: sumOf(terms), B: expr.Num(o.n)}
}

// lseExpr is logsumexp(aᵢ₁, …, aᵢK) for row i.
func (o *CrossEntropyOp[T]) lseExpr(i int, in func(i, m int) expr.Expr) expr.Expr {
	args := make([]expr.Expr, o.k)
	for j := range args {
		args[j] = in(0, i*o.k+j)
	}
	return expr.Call{Fn: "logsumexp", Args: args}
}

// BackwardFormula implements autograd.Explainer: g·(softmax(a) − onehot(y))/N.
func (o *CrossEntropyOp[T]) BackwardFormula(i int, in []expr.Expr, out, gout expr.Expr) expr.Expr {
	return expr.Product{gout, expr.Quot{
		A: expr.Diff{A: expr.Call{Fn: "softmax", Args: []expr.Expr{in[0]}}, B: expr.Call{Fn: "onehot", Args: []expr.Expr{expr.Ref{Name: "y"}}}},
		B: expr.Num(o.n)}}
}

// BackwardElem implements autograd.Explainer: element (i, j) of the
// gradient is g·(exp(aᵢⱼ − logsumexp(aᵢ)) − 1[j = yᵢ])/N.
func (o *CrossEntropyOp[T]) BackwardElem(i, m int, in func(i, m int) expr.Expr, out, gout func(k int) expr.Expr) expr.Expr {
	row, j := m/o.k, m%o.k
	var p expr.Expr = expr.Call{Fn: "exp", Args: []expr.Expr{expr.Diff{A: in(0, m), B: o.lseExpr(row, in)}}}
	if j == o.Labels[row] {
		p = expr.Diff{A: p, B: expr.Num(1)}
	}
	return expr.Product{gout(0), expr.Quot{A: p, B: expr.Num(o.n)}}
}
