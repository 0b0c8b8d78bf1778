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
//
// With Sum set the rows' losses are added instead of averaged (PyTorch's
// reduction="sum"). Logits may also be one sample's vector (K) with a
// single label, as F.cross_entropy accepts.
type CrossEntropyOp[T tensor.Float] struct {
	// Labels holds one class index per row of the logits, in [0, K).
	Labels []int
	// Sum selects the sum over the rows instead of the mean.
	Sum bool
	// LabelName names the labels in the op's rules and RuleValues ("y"
	// when empty): the one-hot indicator reads 1[j = y[i]].
	LabelName string

	n, k   int
	vector bool      // the logits were one sample's (K) vector
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
	return CrossEntropyReduce(name, logits, labels, true)
}

// CrossEntropyReduce records the softmax cross-entropy of logits, (N, K)
// or one sample's (K), against labels (one class index in [0, K) per row),
// averaged over the rows when mean is set and summed otherwise. The
// labels get no gradient.
func CrossEntropyReduce[T tensor.Float, L Label](name string, logits *autograd.Var[T], labels []L, mean bool) (*autograd.Var[T], error) {
	idx := make([]int, len(labels))
	for i, y := range labels {
		idx[i] = int(y)
	}
	return apply(name, &CrossEntropyOp[T]{Labels: idx, Sum: !mean}, logits)
}

// Name implements autograd.Op.
func (o *CrossEntropyOp[T]) Name() string { return "cross_entropy" }

// Forward implements autograd.Op.
func (o *CrossEntropyOp[T]) Forward(in []*tensor.Tensor[T]) (*tensor.Tensor[T], error) {
	if err := wantInputs("cross_entropy", in, 1); err != nil {
		return nil, err
	}
	s := in[0].Shape()
	o.vector = len(s) == 1
	if o.vector {
		if len(o.Labels) != 1 || s[0] == 0 {
			return nil, &tensor.ShapeError{Op: "cross_entropy", Tensor: "logits",
				Want: fmt.Sprintf("(%d, K) with K ≥ 1: one row per label (a (K) vector takes one label)", len(o.Labels)), Got: s}
		}
		s = []int{1, s[0]}
	}
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
	return tensor.Scalar(T(total / o.divisor())), nil
}

// divisor is N for the mean over the rows, 1 for their sum.
func (o *CrossEntropyOp[T]) divisor() float64 {
	if o.Sum {
		return 1
	}
	return float64(o.n)
}

// div is e/N for the mean, e for the sum.
func (o *CrossEntropyOp[T]) div(e expr.Expr) expr.Expr {
	if o.divisor() == 1 {
		return e
	}
	return expr.Quot{A: e, B: expr.Num(o.n)}
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
	g := float64(gout.Data()[0]) / o.divisor()
	a := in[0].Data()
	d := tensor.Empty[T](in[0].Shape()...)
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

// Formula implements explain.Explainer: the mean over the rows i of
// logsumexp(aᵢ) − aᵢ,yᵢ.
func (o *CrossEntropyOp[T]) Formula(in []expr.Expr) expr.Expr {
	a := expr.String(in[0])
	tex := in[0].Render(expr.Style{LaTeX: true})
	if o.vector {
		return expr.Raw{
			Plain: fmt.Sprintf("logsumexp(%s) − %s_y", a, a),
			TeX:   fmt.Sprintf(`\log\sum_j e^{%s_{j}} - %s_{y}`, tex, tex),
		}
	}
	red, redTeX := "mean_i", `\frac{1}{N}\sum_i`
	if o.Sum {
		red, redTeX = "Σ_i", `\sum_i`
	}
	return expr.Raw{
		Plain: fmt.Sprintf("%s(logsumexp(%s_i) − %s_i,y_i)", red, a, a),
		TeX:   fmt.Sprintf(`%s \left(\log\sum_j e^{%s_{ij}} - %s_{i y_i}\right)`, redTeX, tex, tex),
	}
}

// ForwardElem implements explain.Explainer: the loss written out over the
// rows, each as logsumexp of its logits minus the labelled one.
func (o *CrossEntropyOp[T]) ForwardElem(k int, in func(i, m int) expr.Expr) expr.Expr {
	terms := make([]expr.Expr, o.n)
	for i := range o.n {
		terms[i] = expr.Diff{A: o.lseExpr(i, in), B: in(0, i*o.k+o.Labels[i])}
	}
	if o.n == 1 {
		return terms[0]
	}
	return o.div(sumOf(terms))
}

// lseExpr is logsumexp(aᵢ₁, …, aᵢK) for row i.
func (o *CrossEntropyOp[T]) lseExpr(i int, in func(i, m int) expr.Expr) expr.Expr {
	args := make([]expr.Expr, o.k)
	for j := range args {
		args[j] = in(0, i*o.k+j)
	}
	return expr.Call{Fn: "logsumexp", Args: args}
}

// BackwardFormula implements explain.Explainer: g·(softmax(a) − onehot(y))/N.
// Both functions evaluate (softmax per row; onehot from the labels' values,
// counted from 0, as the given tensor y), so that derive --check verifies
// the formula.
func (o *CrossEntropyOp[T]) BackwardFormula(i int, in []expr.Expr, out, gout expr.Expr) expr.Expr {
	softmax := alongAxis("softmax", "", "", in[0], o.n, o.k, 1, softmaxLine(false))
	return expr.Product{gout, o.div(expr.Diff{A: softmax, B: o.onehot()})}
}

// onehot is onehot(y): a row per label with 1 in the labelled class, of
// the logits' shape.
func (o *CrossEntropyOp[T]) onehot() expr.Expr {
	n, k, vector := o.n, o.k, o.vector
	return expr.Fn{Name: "onehot", Args: []expr.Expr{expr.Ref{Name: o.labelName()}}, Eval: func(a []*tensor.Tensor[float64]) (*tensor.Tensor[float64], error) {
		y := a[0]
		if y.Len() != n {
			return nil, fmt.Errorf("onehot: %d labels for %d rows", y.Len(), n)
		}
		out := tensor.New[float64](n, k)
		if vector {
			out = tensor.New[float64](k)
		}
		for r, v := range y.Data() {
			c := int(v)
			if float64(c) != v || c < 0 || c >= k {
				return nil, fmt.Errorf("onehot: label %v is not a class in [0, %d)", v, k)
			}
			out.Data()[r*k+c] = 1
		}
		return out, nil
	}}
}

// BackwardElem implements explain.Explainer: element (i, j) of the
// gradient is g·(exp(aᵢⱼ − logsumexp(aᵢ)) − 1[j = yᵢ])/N.
func (o *CrossEntropyOp[T]) BackwardElem(i, m int, in func(i, m int) expr.Expr, out, gout func(k int) expr.Expr) expr.Expr {
	row, j := m/o.k, m%o.k
	var p expr.Expr = expr.Call{Fn: "exp", Args: []expr.Expr{expr.Diff{A: in(0, m), B: o.lseExpr(row, in)}}}
	if j == o.Labels[row] {
		p = expr.Diff{A: p, B: expr.Num(1)}
	}
	return expr.Product{gout(0), o.div(p)}
}

func (o *CrossEntropyOp[T]) labelName() string {
	if o.LabelName == "" {
		return "y"
	}
	return o.LabelName
}

// RuleValues returns the labels the rules name (LabelName, "y"), counted
// from 1 as the rules' indices are: shape (N), or a scalar for one
// sample's vector of logits.
func (o *CrossEntropyOp[T]) RuleValues() map[string]*tensor.Tensor[float64] {
	y := make([]float64, len(o.Labels))
	for i, l := range o.Labels {
		y[i] = float64(l + 1)
	}
	t := tensor.MustFromSlice(y, len(y))
	if o.vector {
		t = tensor.Scalar(y[0])
	}
	return map[string]*tensor.Tensor[float64]{o.labelName(): t}
}

// labelRef is y[i], or y for a vector of logits.
func (o *CrossEntropyOp[T]) labelRef(i string) expr.Expr {
	if o.vector {
		return expr.Ref{Name: o.labelName()}
	}
	return expr.Ref{Name: o.labelName(), Sym: []string{i}}
}

// oneHot is 1[j = y[i]].
func (o *CrossEntropyOp[T]) oneHot(i, j string) expr.Expr {
	return expr.Indicator{C: expr.Cond{X: symIndex(j), Op: "=", Y: o.labelRef(i)}}
}

// logitIdx is a[i,j], or a[j] for a vector.
func (o *CrossEntropyOp[T]) logitIdx(i, j string) []string {
	if o.vector {
		return []string{j}
	}
	return []string{i, j}
}

func (o *CrossEntropyOp[T]) ruleNote(i string) string {
	y := expr.String(o.labelRef(i))
	n := fmt.Sprintf("%s is the class of the sample, counted from 1", y)
	if !o.vector {
		n = fmt.Sprintf("%s is the class of row %s, counted from 1", y, i)
		if o.Sum {
			n += "; the rows' losses are summed"
		} else {
			n += fmt.Sprintf("; the loss is the mean over the N = %d rows", o.n)
		}
	}
	return n
}

// ForwardRule implements L = (1/N)·Σ_i (log Σ_j exp(a[i,j]) − Σ_j 1[j = y[i]]·a[i,j]):
// each row's log-sum-exp of its logits minus its labelled logit (summed
// instead of averaged with Sum).
func (o *CrossEntropyOp[T]) ForwardRule(out []string, in InputIndex, fresh func(string) string) (expr.Expr, string) {
	i := "1"
	var over []string
	if !o.vector && o.n > 1 {
		i = fresh("i")
		over = []string{i}
	}
	j := fresh("j")
	lse := expr.Call{Fn: "log", Args: []expr.Expr{expr.Sigma{Over: []string{j}, X: expr.Call{Fn: "exp", Args: []expr.Expr{in(0, o.logitIdx(i, j))}}}}}
	picked := expr.Sigma{Over: []string{j}, X: expr.Product{o.oneHot(i, j), in(0, o.logitIdx(i, j))}}
	return o.div(sigmaOver(over, expr.Diff{A: lse, B: picked})), o.ruleNote(i) + "; log Σ exp is computed with the row's largest logit taken out first"
}

// BackwardRule implements the softmax − one-hot gradient,
// ∂J/∂a[i,j] = ∂J/∂L·(exp(a[i,j])/Σ_k exp(a[i,k]) − 1[j = y[i]])/N.
func (o *CrossEntropyOp[T]) BackwardRule(n int, idx []string, in InputIndex, out, gout Index, fresh func(string) string) (expr.Expr, string) {
	var i, j string
	switch {
	case o.vector && len(idx) == 1:
		j = idx[0]
	case !o.vector && len(idx) == 2:
		i, j = idx[0], idx[1]
	default:
		return nil, ""
	}
	k := fresh("k")
	soft := expr.Quot{A: expr.Call{Fn: "exp", Args: []expr.Expr{in(0, o.logitIdx(i, j))}},
		B: expr.Sigma{Over: []string{k}, X: expr.Call{Fn: "exp", Args: []expr.Expr{in(0, o.logitIdx(i, k))}}}}
	return expr.Product{gout(nil), o.div(expr.Diff{A: soft, B: o.oneHot(i, j)})},
		o.ruleNote(i) + "; the first term is the softmax of the row: the gradient is softmax − one-hot"
}
