package tensor

import (
	"math"
	"strings"
	"testing"
)

func TestShapesAndErrors(t *testing.T) {
	if _, err := FromSlice([]float64{1, 2, 3}, 2, 2); err == nil || !strings.Contains(err.Error(), "3 values cannot fill shape [2×2]") {
		t.Fatalf("got %v", err)
	}
	x := MustFromSlice([]float32{1, 2, 3, 4, 5, 6}, 2, 3)
	if x.At(1, 2) != 6 || x.Offset(1, 0) != 3 {
		t.Fatal("row-major indexing")
	}
	y, err := x.Reshape(3, -1)
	if err != nil || y.Dim(1) != 2 {
		t.Fatalf("reshape: %v %v", y, err)
	}
	if _, err := x.Reshape(4, -1); err == nil {
		t.Fatal("reshape of 6 values to 4×? must fail")
	}
	e := &ShapeError{Op: "matmul", Tensor: "w0", Want: "[_×2]", Got: []int{8, 3}}
	if e.Error() != "matmul: w0 has shape [8×3], want [_×2]" {
		t.Fatal(e.Error())
	}
	if idx := Index([]int{2, 3, 4}, 23); idx[0] != 1 || idx[1] != 2 || idx[2] != 3 {
		t.Fatalf("Index = %v", idx)
	}
	if err := CheckFinite("w", MustFromSlice([]float64{1, math.NaN()}, 2)); err == nil || !strings.Contains(err.Error(), "w: element [1] is NaN") {
		t.Fatalf("got %v", err)
	}
	c := Convert[float64](x)
	if c.Data()[5] != 6 || !SameShape(c.Shape(), x.Shape()) {
		t.Fatal("convert")
	}
}
