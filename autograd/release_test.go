package autograd

import (
	"testing"

	"github.com/backprop-dev/backprop/tensor"
)

// scale is a test op: y = 2x, or with view set a view of x sharing its
// storage (whose gradient, for simplicity, is still 2·gout).
type scale struct{ view bool }

func (scale) Name() string { return "scale" }

func (s scale) Forward(in []*tensor.Tensor[float32]) (*tensor.Tensor[float32], error) {
	if s.view {
		return tensor.FromSlice(in[0].Data(), in[0].Shape()...)
	}
	out := tensor.New[float32](in[0].Shape()...)
	for i, v := range in[0].Data() {
		out.Data()[i] = 2 * v
	}
	return out, nil
}

func (scale) Backward(in []*tensor.Tensor[float32], out, gout *tensor.Tensor[float32], need []bool) []*tensor.Tensor[float32] {
	g := tensor.New[float32](gout.Shape()...)
	for i, v := range gout.Data() {
		g.Data()[i] = 2 * v
	}
	return []*tensor.Tensor[float32]{g}
}

// TestRelease checks that Release empties the non-leaf tensors New made,
// leaves the leaves and anything sharing their storage alone, and that New
// reuses the released storage zeroed.
func TestRelease(t *testing.T) {
	const n = 8192
	x := Leaf("x", tensor.New[float32](n), true)
	for i := range x.Value.Data() {
		x.Value.Data()[i] = 1
	}
	view, err := Apply[float32]("view", scale{view: true}, x)
	if err != nil {
		t.Fatal(err)
	}
	y, err := Apply[float32]("y", scale{}, view)
	if err != nil {
		t.Fatal(err)
	}
	z, err := Apply[float32]("z", scale{}, y)
	if err != nil {
		t.Fatal(err)
	}
	seed := tensor.New[float32](n)
	for i := range seed.Data() {
		seed.Data()[i] = 1
	}
	if err := BackwardFrom(z, seed); err != nil {
		t.Fatal(err)
	}
	yData := y.Value.Data()
	Release(z, y) // y twice (also reachable from z): harmless
	if x.Value.Len() != n || x.Grad.Len() != n || x.Value.Data()[0] != 1 || x.Grad.Data()[0] != 8 {
		t.Fatalf("leaf changed: value %d elements, grad %d", x.Value.Len(), x.Grad.Len())
	}
	if view.Value.Len() != n {
		t.Fatal("a view of a leaf was released")
	}
	if y.Value.Len() != 0 || z.Value.Len() != 0 || z.Grad.Len() != 0 {
		t.Fatal("non-leaf tensors not released")
	}
	reused := false
	for range 4 {
		r := tensor.New[float32](n)
		if &r.Data()[0] == &yData[0] {
			reused = true
		}
		for _, v := range r.Data() {
			if v != 0 {
				t.Fatal("recycled storage not zeroed")
			}
		}
	}
	if !reused {
		t.Error("New did not reuse released storage")
	}
}

// fixed is a test op that allocates nothing: its output and its input's
// gradient are tensors made once (FromSlice, which Release leaves alone).
type fixed struct{ out, grad *tensor.Tensor[float32] }

func (fixed) Name() string { return "fixed" }

func (f fixed) Forward(in []*tensor.Tensor[float32]) (*tensor.Tensor[float32], error) {
	return f.out, nil
}

func (f fixed) Backward(in []*tensor.Tensor[float32], out, gout *tensor.Tensor[float32], need []bool) []*tensor.Tensor[float32] {
	return nil
}

// TestReleaseRecyclesNodes checks that Apply hands out the nodes Release
// recycled, and that a forward pass, its backward pass and its release
// allocate nothing in package autograd once the first has run.
func TestReleaseRecyclesNodes(t *testing.T) {
	x := Leaf("x", tensor.MustFromSlice([]float32{1}, 1), false)
	var op Op[float32] = fixed{out: tensor.MustFromSlice([]float32{2}, 1)}
	step := func() (*Var[float32], *Var[float32]) {
		a, err := Apply("a", op, x)
		if err != nil {
			t.Fatal(err)
		}
		b, err := Apply("b", op, a, x)
		if err != nil {
			t.Fatal(err)
		}
		if len(b.Inputs) != 2 || b.Inputs[0] != a || b.Inputs[1] != x {
			t.Fatalf("b's inputs %v", b.Inputs)
		}
		return a, b
	}
	a, b := step()
	Release(b)
	a2, b2 := step()
	if (a2 != a && a2 != b) || (b2 != a && b2 != b) {
		t.Error("Apply did not reuse the released nodes")
	}
	Release(b2)
	if raceEnabled {
		return
	}
	if n := testing.AllocsPerRun(20, func() {
		_, b := step()
		if err := BackwardFrom(b, op.(fixed).out); err != nil {
			t.Fatal(err)
		}
		Release(b)
	}); n != 0 {
		t.Errorf("a step of Apply, BackwardFrom and Release allocates %v objects, want 0", n)
	}
}

// recycled is a test op that implements Recycler and GradWriter: y = 2x,
// counting the calls.
type recycled struct{ recycles, into, backward *int }

func (recycled) Name() string { return "recycled" }

func (recycled) Forward(in []*tensor.Tensor[float32]) (*tensor.Tensor[float32], error) {
	out := tensor.New[float32](in[0].Shape()...)
	for i, v := range in[0].Data() {
		out.Data()[i] = 2 * v
	}
	return out, nil
}

func (r recycled) Backward(in []*tensor.Tensor[float32], out, gout *tensor.Tensor[float32], need []bool) []*tensor.Tensor[float32] {
	*r.backward++
	grads := make([]*tensor.Tensor[float32], len(in))
	r.grads(grads, gout)
	return grads
}

func (r recycled) BackwardInto(grads, in []*tensor.Tensor[float32], out, gout *tensor.Tensor[float32], need []bool) {
	*r.into++
	if len(grads) != len(in) || grads[0] != nil || grads[len(grads)-1] != nil {
		panic("BackwardInto got a list of the wrong length or not cleared")
	}
	r.grads(grads, gout)
}

func (recycled) grads(grads []*tensor.Tensor[float32], gout *tensor.Tensor[float32]) {
	for j := range grads {
		g := tensor.New[float32](gout.Shape()...)
		for i, v := range gout.Data() {
			g.Data()[i] = 2 * v
		}
		grads[j] = g
	}
}

func (r recycled) Recycle() { *r.recycles++ }

// TestRecyclerAndGradWriter checks that Backward hands a GradWriter the
// list to fill instead of calling Backward, that Release calls Recycle on
// the op of every node it recycles, and that gradients are still right.
func TestRecyclerAndGradWriter(t *testing.T) {
	var recycles, into, backward int
	op := recycled{&recycles, &into, &backward}
	x := Leaf("x", tensor.MustFromSlice([]float32{1, 2}, 2), true)
	y, err := Apply[float32]("y", op, x)
	if err != nil {
		t.Fatal(err)
	}
	z, err := Apply[float32]("z", op, y, y) // y used twice: its gradient is the sum
	if err != nil {
		t.Fatal(err)
	}
	if err := BackwardFrom(z, tensor.MustFromSlice([]float32{1, 1}, 2)); err != nil {
		t.Fatal(err)
	}
	if backward != 0 || into != 2 {
		t.Errorf("Backward called %d times, BackwardInto %d, want 0 and 2", backward, into)
	}
	// each operand of z gets 2·gout: dy = 2 + 2 = 4, dx = 2·4 = 8
	if g := x.Grad.Data(); g[0] != 8 || g[1] != 8 {
		t.Errorf("x's gradient %v, want [8 8]", g)
	}
	Release(z)
	if recycles != 2 {
		t.Errorf("Release recycled %d ops, want 2", recycles)
	}
}
