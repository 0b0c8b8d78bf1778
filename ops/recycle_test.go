package ops

import (
	"testing"

	"github.com/backprop-dev/backprop/autograd"
	"github.com/backprop-dev/backprop/tensor"
)

// TestOpsRecycled checks that autograd.Release hands the op values of this
// package's constructors back to them, reset, and never an op a caller
// made itself; results do not change when an op is recycled.
func TestOpsRecycled(t *testing.T) {
	x := autograd.Leaf("x", tensor.MustFromSlice([]float64{-1, 2, -3, 4}, 2, 2), true)
	b := autograd.Leaf("b", tensor.MustFromSlice([]float64{0.5, -0.5}, 2), true)
	step := func() (*autograd.Var[float64], autograd.Op[float64], []float64) {
		h, err := BiasAdd("h", x, b, 1)
		if err != nil {
			t.Fatal(err)
		}
		a, err := LeakyReLU("a", h, 0.1)
		if err != nil {
			t.Fatal(err)
		}
		f, err := Flatten("f", a, 0, false)
		if err != nil {
			t.Fatal(err)
		}
		l, err := SquaredError("l", f, autograd.Leaf("t", tensor.New[float64](4), false), 2)
		if err != nil {
			t.Fatal(err)
		}
		x.Grad, b.Grad = nil, nil
		if err := autograd.Backward(l); err != nil {
			t.Fatal(err)
		}
		got := append([]float64{l.Value.Data()[0]}, x.Grad.Data()...)
		return l, a.Op, append(got, b.Grad.Data()...)
	}
	l, op, want := step()
	autograd.Release(l)
	l, op2, got := step()
	if op2 != op {
		t.Error("LeakyReLU did not reuse the released op")
	}
	if u := op2.(*UnaryOp[float64]); u.Fn != ActLeakyReLU || u.Slope != 0.1 || u.comp != nil {
		t.Errorf("recycled op %+v", u)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("with recycled ops %v, want %v", got, want)
		}
	}
	autograd.Release(l)

	// an op the caller made is not recycled
	mine := &UnaryOp[float64]{Fn: ActReLU}
	y, err := autograd.Apply[float64]("y", mine, x)
	if err != nil {
		t.Fatal(err)
	}
	autograd.Release(y)
	if r := newUnary[float64](ActTanh, 0); r == mine {
		t.Error("a caller's op was handed to a constructor")
	}
	if mine.Fn != ActReLU {
		t.Error("Release reset a caller's op")
	}
}
