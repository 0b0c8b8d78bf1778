package ops

// Helpers shared by the ops that work along one axis (softmax, layer
// norm, concatenation) and by the symbolic rules of ops over whole
// tensors.

import (
	"fmt"

	"github.com/backprop-dev/backprop/expr"
	"github.com/backprop-dev/backprop/tensor"
)

// axisView splits shape around axis (negative counts from the end) into
// (outer, n, inner): the tensor read as outer blocks of n slices of inner
// contiguous values, so that element (o, j, i) sits at (o·n + j)·inner + i.
// It returns the axis made non-negative.
func axisView(op, name string, shape []int, axis int) (a, outer, n, inner int, err error) {
	r := len(shape)
	a = axis
	if a < 0 {
		a += r
	}
	if r == 0 || a < 0 || a >= r {
		return 0, 0, 0, 0, fmt.Errorf("%s: axis %d does not exist in %s, whose shape is %s (rank %d)", op, axis, name, tensor.FormatShape(shape), r)
	}
	return a, tensor.NumElements(shape[:a]), shape[a], tensor.NumElements(shape[a+1:]), nil
}

// opName is the name a constructor was given for an operand, or a
// description of its place when the Var has none.
func opName(name, place string) string {
	if name == "" {
		return place
	}
	return place + " " + name
}

// withAxis replaces index a of idx by s.
func withAxis(idx []string, a int, s string) []string {
	out := append([]string(nil), idx...)
	out[a] = s
	return out
}

// indexHints are index names for a general element of a tensor of the
// given rank, as the trace names them: i; i,j; c,i,j; n,c,i,j.
func indexHints(rank int) []string {
	switch rank {
	case 1:
		return []string{"i"}
	case 2:
		return []string{"i", "j"}
	case 3:
		return []string{"c", "i", "j"}
	case 4:
		return []string{"n", "c", "i", "j"}
	}
	h := make([]string, rank)
	for a := range h {
		h[a] = fmt.Sprintf("i%d", a+1)
	}
	return h
}

// freshIndices are fresh index names for every axis of shape, with the
// literal 1 for an axis of size 1; over lists the names to sum over.
func freshIndices(shape []int, fresh func(string) string) (idx, over []string) {
	hints := indexHints(len(shape))
	idx = make([]string, len(shape))
	for a, d := range shape {
		if d == 1 {
			idx[a] = "1"
			continue
		}
		idx[a] = fresh(hints[a])
		over = append(over, idx[a])
	}
	return idx, over
}

// sigmaOver is Σ over the given indices, or x itself when there are none.
func sigmaOver(over []string, x expr.Expr) expr.Expr {
	if len(over) == 0 {
		return x
	}
	return expr.Sigma{Over: over, X: x}
}

// symIndex is an index symbol used as a value, as in the one-hot
// indicator 1[j = y[i]]: it renders as the index itself.
func symIndex(s string) expr.Expr {
	return expr.Raw{Plain: s, TeX: s}
}

// ones is the all-ones column vector 𝟏 of n elements, which broadcasts a
// vector over rows as 𝟏·vᵀ.
func ones(n int) expr.Expr {
	return expr.Fn{Name: "𝟏", TeX: `\mathbf{1}`, Eval: func([]*tensor.Tensor[float64]) (*tensor.Tensor[float64], error) {
		t := tensor.New[float64](n)
		t.Fill(1)
		return t, nil
	}}
}

// rowsOf broadcasts vector v over n rows (𝟏·vᵀ), or is v itself for one
// row.
func rowsOf(n int, v expr.Expr) expr.Expr {
	if n == 1 {
		return v
	}
	return expr.MatProd{ones(n), expr.Transpose{X: v}}
}

// alongAxis is a whole-tensor function applied to the lines along one
// axis of its argument and broadcast back to the argument's shape (a
// softmax row's normaliser, a row's mean), for formulas that EvalTensor
// can check.
func alongAxis(name, tex, note string, arg expr.Expr, outer, n, inner int, f func(line []float64, out []float64)) expr.Expr {
	return expr.Fn{Name: name, TeX: tex, Args: []expr.Expr{arg}, Note: note, Eval: func(a []*tensor.Tensor[float64]) (*tensor.Tensor[float64], error) {
		x := a[0]
		if x.Len() != outer*n*inner {
			return nil, fmt.Errorf("%s: argument has %d elements, want %d", name, x.Len(), outer*n*inner)
		}
		out := tensor.New[float64](x.Shape()...)
		line, res := make([]float64, n), make([]float64, n)
		for o := range outer {
			for i := range inner {
				for j := range n {
					line[j] = x.Data()[(o*n+j)*inner+i]
				}
				f(line, res)
				for j := range n {
					out.Data()[(o*n+j)*inner+i] = res[j]
				}
			}
		}
		return out, nil
	}}
}

// lineSum sets every element of out to the sum of line.
func lineSum(line, out []float64) {
	s := 0.0
	for _, v := range line {
		s += v
	}
	for j := range out {
		out[j] = s
	}
}
