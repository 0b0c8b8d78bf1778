package ops

import (
	"fmt"

	"github.com/backprop-dev/backprop/autograd"
	"github.com/backprop-dev/backprop/explain"
	"github.com/backprop-dev/backprop/expr"
	"github.com/backprop-dev/backprop/tensor"
)

// EmbeddingOp looks tokens up in an embedding table, F.embedding(ids, W):
// row r of the output is row ids[r] of the weight W (V×d, one row per token
// of a vocabulary of V). It is the product onehot(ids)·W written as a
// lookup, so the gradient is onehot(ids)ᵀ·g: each output row's upstream
// gradient is added into the row of W it was read from, and a token that
// occurs twice gets the sum of both rows' gradients. The ids are plain
// integers, not a graph input: they get no gradient.
type EmbeddingOp[T tensor.Float] struct {
	// IDs are the tokens looked up, each in [0, V).
	IDs []int
	// IDName names the ids in the op's rules and RuleValues ("id" when
	// empty): the rule reads 1[k = id[i]].
	IDName string

	name string
	v, d int
}

// Embedding records the rows of weight (V×d) picked by ids: an output of
// len(ids)×d whose row r is weight's row ids[r]. The gradient adds each
// output row's upstream gradient into the weight's row it came from.
func Embedding[T tensor.Float](name string, weight *autograd.Var[T], ids []int) (*autograd.Var[T], error) {
	return apply(name, &EmbeddingOp[T]{IDs: append([]int(nil), ids...), name: weight.Name}, weight)
}

// EmbeddingOp explains itself, general element included.
var (
	_ explain.Explainer     = (*EmbeddingOp[float64])(nil)
	_ explain.ForwardRuler  = (*EmbeddingOp[float64])(nil)
	_ explain.BackwardRuler = (*EmbeddingOp[float64])(nil)
)

// Name implements autograd.Op.
func (o *EmbeddingOp[T]) Name() string { return "embedding" }

// Forward implements autograd.Op.
func (o *EmbeddingOp[T]) Forward(in []*tensor.Tensor[T]) (*tensor.Tensor[T], error) {
	if err := wantInputs("embedding", in, 1); err != nil {
		return nil, err
	}
	w := in[0]
	place := opName(o.name, "weight")
	if w.Rank() != 2 {
		return nil, &tensor.ShapeError{Op: "embedding", Tensor: place, Want: "a (V×d) matrix, one row of d values per token of the vocabulary", Got: w.Shape()}
	}
	o.v, o.d = w.Dim(0), w.Dim(1)
	if len(o.IDs) == 0 {
		return nil, fmt.Errorf("embedding: no token ids to look up in %s", place)
	}
	for r, id := range o.IDs {
		if id < 0 || id >= o.v {
			return nil, fmt.Errorf("embedding: id %d (position %d) is not a token of the vocabulary of %d of %s, whose shape is %s: want 0 ≤ id < %d",
				id, r, o.v, place, tensor.FormatShape(w.Shape()), o.v)
		}
	}
	out := tensor.Empty[T](len(o.IDs), o.d)
	wd, od := w.Data(), out.Data()
	for r, id := range o.IDs {
		copy(od[r*o.d:(r+1)*o.d], wd[id*o.d:(id+1)*o.d])
	}
	return out, nil
}

// Backward implements autograd.Op: each output row's gradient is added
// into the weight's row it was read from.
func (o *EmbeddingOp[T]) Backward(in []*tensor.Tensor[T], out, gout *tensor.Tensor[T], need []bool) []*tensor.Tensor[T] {
	d := tensor.New[T](o.v, o.d)
	dd, g := d.Data(), gout.Data()
	for r, id := range o.IDs {
		row, up := dd[id*o.d:(id+1)*o.d], g[r*o.d:(r+1)*o.d]
		for j := range row {
			row[j] += up[j]
		}
	}
	return []*tensor.Tensor[T]{d}
}

// onehot is the N×V matrix whose row r is the one-hot vector of ids[r],
// the matrix the lookup multiplies W by.
func (o *EmbeddingOp[T]) onehot() expr.Expr {
	ids, v := o.IDs, o.v
	return expr.Fn{Name: "onehot(" + o.idName() + ")", TeX: `\operatorname{onehot}(\mathit{` + o.idName() + `})`, Eval: func([]*tensor.Tensor[float64]) (*tensor.Tensor[float64], error) {
		t := tensor.New[float64](len(ids), v)
		for r, id := range ids {
			t.Data()[r*v+id] = 1
		}
		return t, nil
	}}
}

// Formula implements explain.Explainer: onehot(id)·W, the lookup written as
// the product it is.
func (o *EmbeddingOp[T]) Formula(in []expr.Expr) expr.Expr {
	return expr.MatProd{o.onehot(), in[0]}
}

// ForwardElem implements explain.Explainer: the weight element copied.
func (o *EmbeddingOp[T]) ForwardElem(k int, in func(i, m int) expr.Expr) expr.Expr {
	r, j := k/o.d, k%o.d
	return in(0, o.IDs[r]*o.d+j)
}

// BackwardFormula implements explain.Explainer: onehot(id)ᵀ·g, which adds
// the rows of g of every position holding the same token.
func (o *EmbeddingOp[T]) BackwardFormula(i int, in []expr.Expr, out, gout expr.Expr) expr.Expr {
	return expr.MatProd{expr.Transpose{X: o.onehot()}, gout}
}

// BackwardElem implements explain.Explainer: the sum of the upstream
// gradients of the output rows that read the weight's row (0 for a token
// the ids do not use).
func (o *EmbeddingOp[T]) BackwardElem(i, m int, in func(i, m int) expr.Expr, out, gout func(k int) expr.Expr) expr.Expr {
	v, j := m/o.d, m%o.d
	var terms []expr.Expr
	for r, id := range o.IDs {
		if id == v {
			terms = append(terms, gout(r*o.d+j))
		}
	}
	return sumOf(terms)
}

func (o *EmbeddingOp[T]) idName() string {
	if o.IDName == "" {
		return "id"
	}
	return o.IDName
}

// RuleValues returns the ids the rules name (IDName, "id"), counted from 1
// as the rules' indices are: shape (N).
func (o *EmbeddingOp[T]) RuleValues() map[string]*tensor.Tensor[float64] {
	ids := make([]float64, len(o.IDs))
	for r, id := range o.IDs {
		ids[r] = float64(id + 1)
	}
	return map[string]*tensor.Tensor[float64]{o.idName(): tensor.MustFromSlice(ids, len(ids))}
}

// idNote says what id[i] is, with the ids as the rules count them.
func (o *EmbeddingOp[T]) idNote(i string) string {
	ids := ""
	for r, id := range o.IDs {
		if r > 0 {
			ids += ", "
		}
		ids += fmt.Sprint(id + 1)
	}
	return fmt.Sprintf("%s[%s] is the token at position %s, counted from 1 (%s = %s)", o.idName(), i, i, o.idName(), ids)
}

// ForwardRule implements y[i,j] = Σ_k 1[k = id[i]]·W[k,j]: the one term
// k = id[i] copies row id[i] of W.
func (o *EmbeddingOp[T]) ForwardRule(out []string, in InputIndex, fresh func(string) string) (expr.Expr, string) {
	if len(out) != 2 {
		return nil, ""
	}
	i, j := out[0], out[1]
	k := fresh("k")
	id := expr.Ref{Name: o.idName(), Sym: []string{i}}
	return expr.Sigma{Over: []string{k}, X: expr.Product{expr.Indicator{C: expr.Cond{X: symIndex(k), Op: "=", Y: id}}, in(0, []string{k, j})}},
		o.idNote(i) + fmt.Sprintf("; the one term k = %s copies row %s of the table", expr.String(id), expr.String(id))
}

// BackwardRule implements ∂J/∂W[i,j] = Σ_k 1[id[k] = i]·∂J/∂y[k,j]: row i
// of the table gets the gradients of every position holding token i.
func (o *EmbeddingOp[T]) BackwardRule(n int, idx []string, in InputIndex, out, gout Index, fresh func(string) string) (expr.Expr, string) {
	if len(idx) != 2 {
		return nil, ""
	}
	i, j := idx[0], idx[1]
	k := fresh("k")
	id := expr.Ref{Name: o.idName(), Sym: []string{k}}
	return expr.Sigma{Over: []string{k}, X: expr.Product{expr.Indicator{C: expr.Cond{X: id, Op: "=", Y: symIndex(i)}}, gout([]string{k, j})}},
		o.idNote(k) + "; a token used twice gets the sum of both positions' gradients, a token not used gets 0"
}
