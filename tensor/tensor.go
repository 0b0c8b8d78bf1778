// Package tensor holds dense, contiguous, row-major n-dimensional arrays of
// float32 or float64. It is the storage every other package computes on; it
// knows shapes and indexing, not differentiation.
package tensor

import (
	"fmt"
	"math"
	"strings"
)

// Float is the set of element types a Tensor can hold. One generic
// implementation serves both so that the worked solutions (float64) and fast
// training (float32) run the very same code.
type Float interface {
	~float32 | ~float64
}

// Tensor is a dense n-dimensional array stored contiguously in row-major
// (C) order: the last index varies fastest, as in NumPy and PyTorch.
type Tensor[T Float] struct {
	shape []int
	data  []T
	owned bool // the tensor was made by New or Empty, its data for it alone (see Release)
	view  bool // the tensor was made by Reshape: its header alone is recycled

	// shapeBuf holds the shape of a tensor New made, up to maxInlineRank
	// dimensions, so that the tensor is one allocation, or none when its
	// header comes from a released tensor (see Release).
	shapeBuf [maxInlineRank]int
}

// maxInlineRank is the rank up to which a tensor made by New holds its
// shape itself.
const maxInlineRank = 4

// ShapeError reports a tensor whose shape is not the one an operation needs.
// It names the operation, the tensor and both shapes so that a user can find
// the mistake in a spec or a program.
type ShapeError struct {
	Op     string // operation or context, e.g. "matmul"
	Tensor string // which operand, e.g. "w0" or "input 2"
	Want   string // the shape expected, in words or as [a b c]
	Got    []int  // the shape received
}

func (e *ShapeError) Error() string {
	return fmt.Sprintf("%s: %s has shape %s, want %s", e.Op, e.Tensor, FormatShape(e.Got), e.Want)
}

// FormatShape renders a shape as [a×b×c], the form every error message uses.
func FormatShape(s []int) string {
	parts := make([]string, len(s))
	for i, d := range s {
		parts[i] = fmt.Sprint(d)
	}
	return "[" + strings.Join(parts, "×") + "]"
}

// NumElements returns the product of the dimensions (1 for a scalar shape).
func NumElements(shape []int) int {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return n
}

// New returns a zero-filled tensor of the given shape. It panics on a
// negative dimension, which is a programming error, never a data error.
// Large tensors reuse storage handed back through Release, if any.
func New[T Float](shape ...int) *Tensor[T] { return alloc[T]("New", true, shape) }

// Empty returns a tensor of the given shape whose elements are
// unspecified: recycled storage (see Release) is handed out as it is,
// without the zeroing New does. It is for outputs that the caller
// overwrites entirely before reading them, where zeroing a multi-megabyte
// buffer every training step would be wasted memory traffic.
func Empty[T Float](shape ...int) *Tensor[T] { return alloc[T]("Empty", false, shape) }

// alloc is New (zero set) or Empty: the header of a released tensor and
// storage from the pool when a released buffer of the length is free
// (cleared only if zero is set), else fresh ones (the allocator zeroes
// them).
func alloc[T Float](fn string, zero bool, shape []int) *Tensor[T] {
	for _, d := range shape {
		if d < 0 {
			// a copy, so that shape does not escape (New(n, m)'s
			// variadic list stays on the caller's stack)
			panic(fmt.Sprintf("tensor.%s: negative dimension in %v", fn, append([]int(nil), shape...)))
		}
	}
	n := NumElements(shape)
	t, data := poolFor[T]().get(n)
	switch {
	case data == nil:
		data = make([]T, n)
	case zero:
		clear(data)
	}
	if t == nil {
		t = new(Tensor[T])
	}
	if r := len(shape); r <= maxInlineRank {
		t.shape = t.shapeBuf[:r:r]
		copy(t.shape, shape)
	} else {
		t.shape = append([]int(nil), shape...)
	}
	t.data, t.owned = data, true
	return t
}

// FromSlice wraps data (not copied) as a tensor of the given shape; it fails
// if the element count does not match.
func FromSlice[T Float](data []T, shape ...int) (*Tensor[T], error) {
	if n := NumElements(shape); n != len(data) {
		return nil, fmt.Errorf("tensor: %d values cannot fill shape %s (%d elements)", len(data), FormatShape(shape), n)
	}
	return &Tensor[T]{shape: append([]int(nil), shape...), data: data}, nil
}

// MustFromSlice is FromSlice for literals known to be right; it panics otherwise.
func MustFromSlice[T Float](data []T, shape ...int) *Tensor[T] {
	t, err := FromSlice(data, shape...)
	if err != nil {
		panic(err)
	}
	return t
}

// Scalar returns a 0-dimensional tensor holding v.
func Scalar[T Float](v T) *Tensor[T] {
	return &Tensor[T]{shape: []int{}, data: []T{v}}
}

// Shape returns the dimensions. The slice must not be modified.
func (t *Tensor[T]) Shape() []int { return t.shape }

// Data returns the elements in row-major order; writes go to the tensor.
func (t *Tensor[T]) Data() []T { return t.data }

// Len returns the number of elements.
func (t *Tensor[T]) Len() int { return len(t.data) }

// Rank returns the number of dimensions.
func (t *Tensor[T]) Rank() int { return len(t.shape) }

// Dim returns dimension i; negative i counts from the end as in Python.
func (t *Tensor[T]) Dim(i int) int {
	if i < 0 {
		i += len(t.shape)
	}
	return t.shape[i]
}

// Offset returns the row-major position of the element at idx.
func (t *Tensor[T]) Offset(idx ...int) int {
	if len(idx) != len(t.shape) {
		panic(fmt.Sprintf("tensor: index %v for shape %s", idx, FormatShape(t.shape)))
	}
	off := 0
	for i, x := range idx {
		if x < 0 || x >= t.shape[i] {
			panic(fmt.Sprintf("tensor: index %v out of range for shape %s", idx, FormatShape(t.shape)))
		}
		off = off*t.shape[i] + x
	}
	return off
}

// Index converts a row-major position back to a multi-index.
func Index(shape []int, off int) []int {
	idx := make([]int, len(shape))
	for i := len(shape) - 1; i >= 0; i-- {
		if shape[i] > 0 {
			idx[i] = off % shape[i]
			off /= shape[i]
		}
	}
	return idx
}

// At returns the element at idx.
func (t *Tensor[T]) At(idx ...int) T { return t.data[t.Offset(idx...)] }

// Set stores v at idx.
func (t *Tensor[T]) Set(v T, idx ...int) { t.data[t.Offset(idx...)] = v }

// Clone returns a deep copy.
func (t *Tensor[T]) Clone() *Tensor[T] {
	return &Tensor[T]{shape: append([]int(nil), t.shape...), data: append([]T(nil), t.data...)}
}

// Reshape returns a tensor sharing t's data with a new shape of the same
// element count. One dimension may be -1 and is then inferred.
func (t *Tensor[T]) Reshape(shape ...int) (*Tensor[T], error) {
	// the shape is worked on in buf, which stays on the stack as long as
	// shape escapes nowhere (the errors format copies)
	var buf [maxInlineRank]int
	shape = append(buf[:0], shape...)
	infer := -1
	known := 1
	for i, d := range shape {
		if d == -1 {
			if infer >= 0 {
				return nil, fmt.Errorf("tensor: reshape to %v has more than one -1", append([]int(nil), shape...))
			}
			infer = i
			continue
		}
		known *= d
	}
	if infer >= 0 {
		if known == 0 || len(t.data)%known != 0 {
			return nil, fmt.Errorf("tensor: cannot reshape %s (%d values) to %v", FormatShape(t.shape), len(t.data), append([]int(nil), shape...))
		}
		shape[infer] = len(t.data) / known
	}
	if NumElements(shape) != len(t.data) {
		return nil, fmt.Errorf("tensor: cannot reshape %s (%d values) to %s (%d values)", FormatShape(t.shape), len(t.data), FormatShape(shape), NumElements(shape))
	}
	v, _ := poolFor[T]().get(-1)
	if v == nil {
		v = new(Tensor[T])
	}
	if r := len(shape); r <= maxInlineRank {
		v.shape = v.shapeBuf[:r:r]
		copy(v.shape, shape)
	} else {
		v.shape = append([]int(nil), shape...)
	}
	v.data, v.view = t.data, true
	return v, nil
}

// SameShape reports whether a and b have identical dimensions.
func SameShape(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// Fill sets every element to v.
func (t *Tensor[T]) Fill(v T) {
	for i := range t.data {
		t.data[i] = v
	}
}

// Zero sets every element to 0.
func (t *Tensor[T]) Zero() { clear(t.data) }

// AddInPlace adds o element-wise into t; shapes must hold the same count.
func (t *Tensor[T]) AddInPlace(o *Tensor[T]) {
	if len(o.data) != len(t.data) {
		panic(fmt.Sprintf("tensor: AddInPlace of %s into %s", FormatShape(o.shape), FormatShape(t.shape)))
	}
	for i, v := range o.data {
		t.data[i] += v
	}
}

// Convert returns a copy of t with elements converted to U.
func Convert[U, T Float](t *Tensor[T]) *Tensor[U] {
	out := &Tensor[U]{shape: append([]int(nil), t.shape...), data: make([]U, len(t.data))}
	for i, v := range t.data {
		out.data[i] = U(v)
	}
	return out
}

// CheckFinite returns an error naming the tensor and the first NaN or Inf.
func CheckFinite[T Float](name string, t *Tensor[T]) error {
	for i, v := range t.data {
		f := float64(v)
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return fmt.Errorf("%s: element %v is %v; every value must be finite", name, Index(t.shape, i), f)
		}
	}
	return nil
}

// Nested returns the elements as nested []any slices in t's shape (a scalar
// for rank 0), the form JSON output uses.
func (t *Tensor[T]) Nested() any {
	if len(t.shape) == 0 {
		return float64(t.data[0])
	}
	var rec func(dim, off int) any
	rec = func(dim, off int) any {
		n := t.shape[dim]
		if dim == len(t.shape)-1 {
			out := make([]float64, n)
			for i := range n {
				out[i] = float64(t.data[off+i])
			}
			return out
		}
		stride := NumElements(t.shape[dim+1:])
		out := make([]any, n)
		for i := range n {
			out[i] = rec(dim+1, off+i*stride)
		}
		return out
	}
	return rec(0, 0)
}

// String renders small tensors for debugging.
func (t *Tensor[T]) String() string {
	return fmt.Sprintf("Tensor%s%v", FormatShape(t.shape), t.Nested())
}
