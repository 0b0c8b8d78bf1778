package autograd_test

import (
	"fmt"

	"github.com/backprop-dev/backprop/autograd"
	"github.com/backprop-dev/backprop/ops"
	"github.com/backprop-dev/backprop/tensor"
)

// One logistic unit, p = σ(w·x + b), and the gradient of log p with
// respect to its weights: Leaf makes the inputs, the ops of package ops
// record the graph as they compute, Backward fills every Grad.
func Example() {
	x := autograd.Leaf("x", tensor.MustFromSlice([]float64{1, 2, 3}, 3, 1), false)
	w := autograd.Leaf("w", tensor.MustFromSlice([]float64{0.1, -0.2, 0.3}, 1, 3), true)
	b := autograd.Leaf("b", tensor.MustFromSlice([]float64{-0.5}, 1), true)

	a, err := ops.MatMul("wx", w, x, false, false) // (1, 1)
	if err != nil {
		panic(err)
	}
	a, err = ops.BiasAdd("a", a, b, 0)
	if err != nil {
		panic(err)
	}
	logp, err := ops.LogSigmoid("log p", a) // log σ(a), without cancellation
	if err != nil {
		panic(err)
	}
	if err := autograd.Backward(logp); err != nil {
		panic(err)
	}
	fmt.Printf("a = %.4f, log p = %.4f\n", a.Value.Data()[0], logp.Value.Data()[0])
	fmt.Printf("∂log p/∂w = %.4f\n", w.Grad.Data()) // σ(−a)·xᵀ
	fmt.Printf("∂log p/∂b = %.4f\n", b.Grad.Data()) // σ(−a)
	for _, v := range autograd.Topo(logp) {
		fmt.Print(v.Name, " ")
	}
	fmt.Println()
	// Output:
	// a = 0.1000, log p = -0.6444
	// ∂log p/∂w = [0.4750 0.9500 1.4251]
	// ∂log p/∂b = [0.4750]
	// w x wx b a log p
}
