package ops

import (
	"fmt"

	"github.com/backprop-dev/backprop/autograd"
	"github.com/backprop-dev/backprop/expr"
	"github.com/backprop-dev/backprop/internal/blas"
	"github.com/backprop-dev/backprop/tensor"
)

// MatMulOp is the matrix product op(A)·op(B), with torch.matmul's rules for
// vectors: a 1-D A is a row vector (written aᵀ, as in w2ᵀ H2), a 1-D B is a
// column vector (w0 z), and a 1-D result axis is dropped.
type MatMulOp[T tensor.Float] struct {
	TransA, TransB bool // use Aᵀ or Bᵀ (2-D operands only)

	m, n, k     int
	tA, tB      bool // effective transposes after treating vectors as columns
	lda, ldb    int
	aVec, bVec  bool
	shapeA, shB []int

	recyclable
}

// MatMul records op(a)·op(b) as node name.
func MatMul[T tensor.Float](name string, a, b *autograd.Var[T], transA, transB bool) (*autograd.Var[T], error) {
	o := newOp[MatMulOp[T]]()
	o.TransA, o.TransB, o.pooled = transA, transB, true
	return apply(name, o, a, b)
}

// Recycle implements autograd.Recycler.
func (o *MatMulOp[T]) Recycle() {
	if !o.pooled {
		return
	}
	*o = MatMulOp[T]{}
	putOp(o)
}

// Name implements autograd.Op.
func (o *MatMulOp[T]) Name() string { return "matmul" }

// Forward implements autograd.Op.
func (o *MatMulOp[T]) Forward(in []*tensor.Tensor[T]) (*tensor.Tensor[T], error) {
	if err := wantInputs("matmul", in, 2); err != nil {
		return nil, err
	}
	a, b := in[0], in[1]
	o.shapeA, o.shB = a.Shape(), b.Shape()
	var ka, kb int
	switch a.Rank() {
	case 1:
		if o.TransA {
			return nil, fmt.Errorf("matmul: a vector left operand is already a row; TransA must be false")
		}
		o.aVec, o.tA, o.m, ka, o.lda = true, true, 1, a.Dim(0), 1
	case 2:
		o.tA, o.lda = o.TransA, a.Dim(1)
		if o.TransA {
			o.m, ka = a.Dim(1), a.Dim(0)
		} else {
			o.m, ka = a.Dim(0), a.Dim(1)
		}
	default:
		return nil, &tensor.ShapeError{Op: "matmul", Tensor: "left operand", Want: "a vector or a matrix", Got: a.Shape()}
	}
	switch b.Rank() {
	case 1:
		if o.TransB {
			return nil, fmt.Errorf("matmul: a vector right operand is already a column; TransB must be false")
		}
		o.bVec, o.tB, o.n, kb, o.ldb = true, false, 1, b.Dim(0), 1
	case 2:
		o.tB, o.ldb = o.TransB, b.Dim(1)
		if o.TransB {
			o.n, kb = b.Dim(0), b.Dim(1)
		} else {
			o.n, kb = b.Dim(1), b.Dim(0)
		}
	default:
		return nil, &tensor.ShapeError{Op: "matmul", Tensor: "right operand", Want: "a vector or a matrix", Got: b.Shape()}
	}
	if ka != kb {
		return nil, &tensor.ShapeError{Op: "matmul", Tensor: "right operand", Want: fmt.Sprintf("%d rows (the left operand has %d columns)", ka, ka), Got: b.Shape()}
	}
	o.k = ka
	var buf [2]int
	shape := buf[:0]
	if !o.aVec {
		shape = append(shape, o.m)
	}
	if !o.bVec {
		shape = append(shape, o.n)
	}
	out := tensor.Empty[T](shape...) // beta = 0: Gemm overwrites it
	blas.Gemm(o.tA, o.tB, o.m, o.n, o.k, 1, a.Data(), o.lda, b.Data(), o.ldb, 0, out.Data(), o.n)
	return out, nil
}

// Backward implements autograd.Op: with Ā = op(A), B̄ = op(B) and G the
// upstream gradient, dĀ = G B̄ᵀ and dB̄ = Āᵀ G, transposed back to storage.
func (o *MatMulOp[T]) Backward(in []*tensor.Tensor[T], out, gout *tensor.Tensor[T], need []bool) []*tensor.Tensor[T] {
	grads := make([]*tensor.Tensor[T], 2)
	o.BackwardInto(grads, in, out, gout, need)
	return grads
}

// BackwardInto implements autograd.GradWriter.
func (o *MatMulOp[T]) BackwardInto(grads, in []*tensor.Tensor[T], out, gout *tensor.Tensor[T], need []bool) {
	a, b := in[0], in[1]
	g := gout.Data()
	if need[0] {
		da := tensor.Empty[T](a.Shape()...)
		if !o.tA { // dA (m×k) = G (m×n) · B̄ᵀ
			blas.Gemm(false, !o.tB, o.m, o.k, o.n, 1, g, o.n, b.Data(), o.ldb, 0, da.Data(), o.lda)
		} else { // dA (k×m) = B̄ (k×n) · Gᵀ
			blas.Gemm(o.tB, true, o.k, o.m, o.n, 1, b.Data(), o.ldb, g, o.n, 0, da.Data(), o.lda)
		}
		grads[0] = da
	}
	if need[1] {
		db := tensor.Empty[T](b.Shape()...)
		if !o.tB { // dB (k×n) = Āᵀ (k×m) · G
			blas.Gemm(!o.tA, false, o.k, o.n, o.m, 1, a.Data(), o.lda, g, o.n, 0, db.Data(), o.ldb)
		} else { // dB (n×k) = Gᵀ (n×m) · Ā
			blas.Gemm(true, o.tA, o.n, o.k, o.m, 1, g, o.n, a.Data(), o.lda, 0, db.Data(), o.ldb)
		}
		grads[1] = db
	}
}

// aOff is the storage position of Ā[i,p]; bOff of B̄[p,j].
func (o *MatMulOp[T]) aOff(i, p int) int {
	if o.tA {
		return p*o.lda + i
	}
	return i*o.lda + p
}

func (o *MatMulOp[T]) bOff(p, j int) int {
	if o.tB {
		return j*o.ldb + p
	}
	return p*o.ldb + j
}

func (o *MatMulOp[T]) bar(e expr.Expr, t bool) expr.Expr {
	if t {
		return expr.Transpose{X: e}
	}
	return e
}

// Formula implements explain.Explainer.
func (o *MatMulOp[T]) Formula(in []expr.Expr) expr.Expr {
	return expr.MatProd{o.bar(in[0], o.tA), o.bar(in[1], o.tB)}
}

// ForwardElem implements explain.Explainer.
func (o *MatMulOp[T]) ForwardElem(k int, in func(i, m int) expr.Expr) expr.Expr {
	i, j := k/o.n, k%o.n
	terms := make([]expr.Expr, o.k)
	for p := range o.k {
		terms[p] = expr.Product{in(0, o.aOff(i, p)), in(1, o.bOff(p, j))}
	}
	return sumOf(terms)
}

// BackwardFormula implements explain.Explainer. A vector times a matrix
// (hᵀ·W, conventions.weights hW) has a vector result, a column g as every
// vector is; the row G of the product is then gᵀ, so that the gradients
// read W·g and h·gᵀ.
func (o *MatMulOp[T]) BackwardFormula(i int, in []expr.Expr, out, gout expr.Expr) expr.Expr {
	if o.aVec && !o.bVec {
		gout = expr.Transpose{X: gout}
	}
	if i == 0 {
		if o.tA {
			return expr.MatProd{o.bar(in[1], o.tB), transposed(gout)}
		}
		return expr.MatProd{gout, o.bar(in[1], !o.tB)}
	}
	if o.tB {
		return expr.MatProd{transposed(gout), o.bar(in[0], o.tA)}
	}
	return expr.MatProd{o.bar(in[0], !o.tA), gout}
}

// transposed is eᵀ, or e itself when e is a transpose already (gᵀᵀ = g).
func transposed(e expr.Expr) expr.Expr {
	if t, ok := e.(expr.Transpose); ok {
		return t.X
	}
	return expr.Transpose{X: e}
}

// BackwardElem implements explain.Explainer.
func (o *MatMulOp[T]) BackwardElem(i, m int, in func(i, m int) expr.Expr, out, gout func(k int) expr.Expr) expr.Expr {
	var terms []expr.Expr
	if i == 0 { // element m of A is Ā[r,p]
		r, p := m/o.lda, m%o.lda
		if o.tA {
			r, p = p, r
		}
		for j := range o.n {
			terms = append(terms, expr.Product{gout(r*o.n + j), in(1, o.bOff(p, j))})
		}
	} else { // element m of B is B̄[p,j]
		p, j := m/o.ldb, m%o.ldb
		if o.tB {
			p, j = j, p
		}
		for r := range o.m {
			terms = append(terms, expr.Product{gout(r*o.n + j), in(0, o.aOff(r, p))})
		}
	}
	return sumOf(terms)
}
