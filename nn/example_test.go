package nn_test

import (
	"fmt"
	"math/rand/v2"

	"github.com/backprop-dev/backprop/autograd"
	"github.com/backprop-dev/backprop/nn"
	"github.com/backprop-dev/backprop/ops"
	"github.com/backprop-dev/backprop/optim"
	"github.com/backprop-dev/backprop/tensor"
)

// bars makes n 8×8 one-channel images, each holding one bright bar at a
// random position: horizontal (class 0) or vertical (class 1).
func bars(rng *rand.Rand, n int) (*tensor.Tensor[float32], []int) {
	x := tensor.New[float32](n, 1, 8, 8)
	labels := make([]int, n)
	for i := range n {
		labels[i] = rng.IntN(2)
		at := rng.IntN(8)
		for j := range 8 {
			r, c := at, j
			if labels[i] == 1 {
				r, c = j, at
			}
			x.Set(1, i, 0, r, c)
		}
	}
	return x, labels
}

// A small convolutional classifier, trained with Adam on the softmax
// cross-entropy: the loop every PyTorch user knows (zero_grad, forward,
// loss, backward, step), with the parameters named as in a PyTorch
// state_dict.
func Example() {
	rng := rand.New(rand.NewPCG(1, 2))
	net := nn.NewSequential[float32](
		nn.NewConv2d[float32](1, 4, 3, 1, 1, true, rng), // (N, 1, 8, 8) → (N, 4, 8, 8)
		nn.NewReLU[float32](),
		nn.NewMaxPool2d[float32](2, 2, 0),               // → (N, 4, 4, 4)
		nn.NewConv2d[float32](4, 8, 3, 1, 1, true, rng), // → (N, 8, 4, 4)
		nn.NewReLU[float32](),
		nn.NewFlatten[float32](),                   // → (N, 128)
		nn.NewLinear[float32](8*4*4, 2, true, rng), // → (N, 2) logits
	)
	adam, err := optim.NewAdam(net.Parameters(), optim.AdamOptions{LR: 1e-2, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8})
	if err != nil {
		panic(err)
	}
	for range 100 {
		x, labels := bars(rng, 32)
		adam.ZeroGrad()
		logits, err := net.Forward(autograd.Leaf("x", x, false))
		if err != nil {
			panic(err)
		}
		loss, err := ops.CrossEntropy("loss", logits, labels)
		if err != nil {
			panic(err)
		}
		if err := autograd.Backward(loss); err != nil {
			panic(err)
		}
		if err := adam.Step(); err != nil {
			panic(err)
		}
		autograd.Release(loss) // hand the step's intermediate tensors back for reuse
	}

	net.SetTraining(false)
	x, labels := bars(rng, 200)
	logits, err := net.Forward(autograd.Leaf("x", x, false))
	if err != nil {
		panic(err)
	}
	right := 0
	for i, y := range labels {
		if (logits.Value.At(i, 1) > logits.Value.At(i, 0)) == (y == 1) {
			right++
		}
	}
	for _, p := range net.Parameters() {
		fmt.Println(p.Name, p.Var.Value.Shape())
	}
	fmt.Printf("test accuracy: %d of %d\n", right, len(labels))
	// Output:
	// 0.weight [4 1 3 3]
	// 0.bias [4]
	// 3.weight [8 4 3 3]
	// 3.bias [8]
	// 6.weight [2 128]
	// 6.bias [2]
	// test accuracy: 200 of 200
}
