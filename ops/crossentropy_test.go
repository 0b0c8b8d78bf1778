package ops

import (
	"encoding/json"
	"math"
	"os"
	"strings"
	"testing"

	"github.com/backprop-dev/backprop/autograd"
	"github.com/backprop-dev/backprop/gradcheck"
	"github.com/backprop-dev/backprop/tensor"
)

type crossEntropyCase struct {
	Name   string    `json:"name"`
	Dtype  string    `json:"dtype"`
	Shape  []int     `json:"shape"`
	Logits []float64 `json:"logits"`
	Labels []int     `json:"labels"`
	Loss   float64   `json:"loss"`
	Grad   []float64 `json:"grad"`
}

// crossEntropyRun computes the loss and the logits' gradient in T.
func crossEntropyRun[T tensor.Float](t *testing.T, c crossEntropyCase) (float64, []float64) {
	t.Helper()
	data := make([]T, len(c.Logits))
	for i, v := range c.Logits {
		data[i] = T(v)
	}
	a := autograd.Leaf("a", tensor.MustFromSlice(data, c.Shape...), true)
	loss, err := CrossEntropy("loss", a, c.Labels)
	if err != nil {
		t.Fatal(err)
	}
	if err := autograd.Backward(loss); err != nil {
		t.Fatal(err)
	}
	g := make([]float64, a.Grad.Len())
	for i, v := range a.Grad.Data() {
		g[i] = float64(v)
	}
	return float64(loss.Value.Data()[0]), g
}

// TestCrossEntropyPyTorch compares loss and gradient with
// F.cross_entropy (testdata/cross_entropy.py), including logits whose
// exponentials overflow float64 and float32.
func TestCrossEntropyPyTorch(t *testing.T) {
	b, err := os.ReadFile("testdata/cross_entropy.json")
	if err != nil {
		t.Fatal(err)
	}
	var ref struct {
		Cases []crossEntropyCase `json:"cases"`
	}
	if err := json.Unmarshal(b, &ref); err != nil {
		t.Fatal(err)
	}
	if len(ref.Cases) < 5 {
		t.Fatalf("only %d cases", len(ref.Cases))
	}
	for _, c := range ref.Cases {
		t.Run(c.Name, func(t *testing.T) {
			var loss float64
			var grad []float64
			tol := 1e-12
			if c.Dtype == "float32" {
				loss, grad = crossEntropyRun[float32](t, c)
				tol = 1e-6
			} else {
				loss, grad = crossEntropyRun[float64](t, c)
			}
			if math.Abs(loss-c.Loss) > tol*math.Max(1, math.Abs(c.Loss)) {
				t.Fatalf("loss %.17g, PyTorch %.17g", loss, c.Loss)
			}
			for i, g := range grad {
				if math.Abs(g-c.Grad[i]) > tol {
					t.Fatalf("grad[%d] = %.17g, PyTorch %.17g", i, g, c.Grad[i])
				}
			}
		})
	}
}

// TestCrossEntropyGrad checks the gradient against finite differences on
// its own and behind a matrix product (a linear classifier), over several
// batch sizes and class counts, and the explanation's element formulas.
func TestCrossEntropyGrad(t *testing.T) {
	r := rng(11)
	for _, s := range [][2]int{{1, 3}, {4, 2}, {5, 10}, {8, 7}} {
		n, k := s[0], s[1]
		labels := make([]int, n)
		for i := range labels {
			labels[i] = r.IntN(k)
		}
		run(t, func(in []*V) (*V, error) { return CrossEntropy("l", in[0], labels) }, r, nil, gradcheck.Random(r, n, k))
		run(t, func(in []*V) (*V, error) {
			a, err := MatMul("a", in[0], in[1], false, true)
			if err != nil {
				return nil, err
			}
			return CrossEntropy("l", a, labels)
		}, r, nil, gradcheck.Random(r, n, 5), gradcheck.Random(r, k, 5))
	}
}

// TestCrossEntropyErrors: labels that do not fit the logits are errors
// naming the tensor or row and what was expected.
func TestCrossEntropyErrors(t *testing.T) {
	a := autograd.Leaf("a", tensor.New[float32](2, 3), true)
	for _, c := range []struct {
		labels []int
		want   string
	}{
		{[]int{0, 3}, "label 3 of row 1 is not a class index in [0, 3)"},
		{[]int{-1, 0}, "label -1 of row 0"},
		{[]int{0}, "(1, K)"},
	} {
		_, err := CrossEntropy("l", a, c.labels)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("labels %v: error %v, want it to say %q", c.labels, err, c.want)
		}
	}
	v := autograd.Leaf("v", tensor.New[float32](6), true)
	if _, err := CrossEntropy("l", v, []int{0, 1}); err == nil || !strings.Contains(err.Error(), "logits") {
		t.Errorf("1-D logits: error %v, want one naming the logits", err)
	}
}
