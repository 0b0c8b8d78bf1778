package ops

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/backprop-dev/backprop/autograd"
	"github.com/backprop-dev/backprop/gradcheck"
	"github.com/backprop-dev/backprop/tensor"
)

func TestDropoutGrad(t *testing.T) {
	r := rng(21)
	for _, p := range []float64{0, 0.3, 0.5, 0.8, 1} {
		for _, s := range [][]int{{4, 6}, {3, 2, 4, 4}} {
			for _, training := range []bool{true, false} {
				// a fresh source with the same seed per evaluation, so every
				// call of f (gradcheck evaluates it many times) draws one mask
				f := func(in []*V) (*V, error) {
					return Dropout("y", in[0], p, training, rand.New(rand.NewPCG(5, 6)))
				}
				run(t, f, r, nil, gradcheck.Random(r, s...))
			}
		}
	}
}

func TestDropoutSemantics(t *testing.T) {
	const p = 0.3
	x := gradcheck.Random(rng(22), 50, 40, 10)
	xv := autograd.Leaf("x", x, true)
	y, err := Dropout("y", xv, p, true, rng(23))
	if err != nil {
		t.Fatal(err)
	}
	op := y.Op.(*DropoutOp[float64])
	kept := 0
	for i, m := range op.Mask() {
		switch m {
		case 0:
			if y.Value.Data()[i] != 0 {
				t.Fatalf("dropped element %d is %g", i, y.Value.Data()[i])
			}
		case 1 / (1 - p):
			kept++
			if y.Value.Data()[i] != x.Data()[i]*(1/(1-p)) {
				t.Fatalf("kept element %d is %g, want %g/(1−p)", i, y.Value.Data()[i], x.Data()[i])
			}
		default:
			t.Fatalf("mask value %g", m)
		}
	}
	// 20000 Bernoulli(0.7) draws: the rate is within 5 standard deviations
	rate, sd := float64(kept)/float64(x.Len()), math.Sqrt(p*(1-p)/float64(x.Len()))
	if math.Abs(rate-(1-p)) > 5*sd {
		t.Fatalf("kept %.4f of the elements, want %.4f ± %.4f", rate, 1-p, 5*sd)
	}
	// the same seed gives the same mask; another seed another one
	y2, _ := Dropout("y", xv, p, true, rng(23))
	y3, _ := Dropout("y", xv, p, true, rng(24))
	same, differ := true, false
	for i := range y.Value.Data() {
		same = same && y.Value.Data()[i] == y2.Value.Data()[i]
		differ = differ || y.Value.Data()[i] != y3.Value.Data()[i]
	}
	if !same || !differ {
		t.Fatalf("same seed reproduces: %v, other seed differs: %v", same, differ)
	}
	// evaluation mode is the identity and needs no random source
	e, err := Dropout("y", xv, p, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range e.Value.Data() {
		if v != x.Data()[i] {
			t.Fatal("evaluation-mode dropout changed its input")
		}
	}
	// float32 uses the same rule
	y32, err := Dropout("y", autograd.Leaf("x", tensor.Convert[float32](x), true), p, true, rng(23))
	if err != nil {
		t.Fatal(err)
	}
	for i, m := range y32.Op.(*DropoutOp[float32]).Mask() {
		if (m == 0) != (op.Mask()[i] == 0) {
			t.Fatalf("float32 mask differs from float64 mask at %d", i)
		}
	}
}

func TestDropoutErrors(t *testing.T) {
	x := autograd.Leaf("x", tensor.New[float64](3), true)
	for _, c := range []struct {
		p    float64
		rng  *rand.Rand
		want string
	}{
		{-0.1, rng(1), "between 0 and 1"},
		{1.5, rng(1), "between 0 and 1"},
		{math.NaN(), rng(1), "between 0 and 1"},
		{0.5, nil, "Rng is nil"},
	} {
		if _, err := Dropout("d", x, c.p, true, c.rng); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("p=%g: got %v, want %q", c.p, err, c.want)
		}
	}
}
