// Command convnet trains a small convolutional classifier (two 5×5
// convolutions with max pooling, LeNet-style) on MNIST or Fashion-MNIST
// with backprop as a library, and reports the test accuracy after every
// epoch. It is the program a Go developer would write: layers from nn, the
// loss from ops, Adam from optim, the data from data — the same loop as in
// PyTorch.
//
//	go run ./examples/convnet                       # MNIST, 1 epoch
//	go run ./examples/convnet -data fashion-mnist -epochs 3
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"time"

	"github.com/backprop-dev/backprop/autograd"
	"github.com/backprop-dev/backprop/data"
	"github.com/backprop-dev/backprop/nn"
	"github.com/backprop-dev/backprop/ops"
	"github.com/backprop-dev/backprop/optim"
	"github.com/backprop-dev/backprop/tensor"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "convnet:", err)
		}
		os.Exit(1)
	}
}

// newNet is the classifier: (N, 1, 28, 28) images to (N, 10) logits.
func newNet(rng *rand.Rand) *nn.Sequential[float32] {
	return nn.NewSequential[float32](
		nn.NewConv2d[float32](1, 16, 5, 1, 2, true, rng), // → (N, 16, 28, 28)
		nn.NewReLU[float32](),
		nn.NewMaxPool2d[float32](2, 2, 0),                 // → (N, 16, 14, 14)
		nn.NewConv2d[float32](16, 32, 5, 1, 2, true, rng), // → (N, 32, 14, 14)
		nn.NewReLU[float32](),
		nn.NewMaxPool2d[float32](2, 2, 0), // → (N, 32, 7, 7)
		nn.NewFlatten[float32](),
		nn.NewLinear[float32](32*7*7, 10, true, rng),
	)
}

func run(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("convnet", flag.ContinueOnError)
	dataName := fs.String("data", "mnist", `data set: "mnist", "fashion-mnist" or a directory of MNIST-layout IDX files`)
	epochs := fs.Int("epochs", 1, "passes over the training images")
	batch := fs.Int("batch", 64, "mini-batch size")
	lr := fs.Float64("lr", 1e-3, "Adam's learning rate")
	seed := fs.Uint64("seed", 1, "seed of the initialization and the shuffles")
	limit := fs.Int("limit", 0, "train on the first N training images only (0: all)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *epochs < 1 || *batch < 1 || *lr <= 0 || *limit < 0 {
		return fmt.Errorf("-epochs %d, -batch %d, -lr %g, -limit %d: want positive epochs, batch and rate and a limit ≥ 0", *epochs, *batch, *lr, *limit)
	}
	train, err := data.Load(*dataName, data.Train)
	if err != nil {
		return err
	}
	test, err := data.Load(*dataName, data.Test)
	if err != nil {
		return err
	}
	if *limit > 0 && *limit < train.Len() {
		idx := make([]int, *limit)
		for i := range idx {
			idx[i] = i
		}
		x, y, err := train.Batch(idx)
		if err != nil {
			return err
		}
		train.Images, train.Labels = x, y
	}

	rng := rand.New(rand.NewPCG(*seed, 1))
	net := newNet(rng)
	adam, err := optim.NewAdam(net.Parameters(), optim.AdamOptions{LR: *lr, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "training on %d %s images, testing on %d\n", train.Len(), *dataName, test.Len())
	for epoch := 1; epoch <= *epochs; epoch++ {
		start := time.Now()
		batches, err := train.Batches(rng, *batch)
		if err != nil {
			return err
		}
		net.SetTraining(true)
		sum := 0.0
		for _, idx := range batches {
			x, y, err := train.Batch(idx)
			if err != nil {
				return err
			}
			adam.ZeroGrad()
			logits, err := net.Forward(autograd.Leaf("x", x, false))
			if err != nil {
				return err
			}
			loss, err := ops.CrossEntropy("loss", logits, y)
			if err != nil {
				return err
			}
			if err := autograd.Backward(loss); err != nil {
				return err
			}
			if err := adam.Step(); err != nil {
				return err
			}
			sum += float64(loss.Value.Data()[0])
			autograd.Release(loss)
		}
		acc, err := accuracy(net, test)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "epoch %d/%d: train loss %.4f, test accuracy %.2f%%, %.1f s\n",
			epoch, *epochs, sum/float64(len(batches)), 100*acc, time.Since(start).Seconds())
	}
	return nil
}

// accuracy is the fraction of d's images whose largest logit is the label,
// with the network in evaluation mode, 1000 images at a time.
func accuracy(net *nn.Sequential[float32], d *data.Dataset) (float64, error) {
	net.SetTraining(false)
	right := 0
	for lo := 0; lo < d.Len(); lo += 1000 {
		idx := make([]int, 0, 1000)
		for i := lo; i < min(lo+1000, d.Len()); i++ {
			idx = append(idx, i)
		}
		x, y, err := d.Batch(idx)
		if err != nil {
			return 0, err
		}
		logits, err := net.Forward(autograd.Leaf("x", x, false))
		if err != nil {
			return 0, err
		}
		right += argmaxHits(logits.Value, y)
		autograd.Release(logits)
	}
	return float64(right) / float64(d.Len()), nil
}

// argmaxHits counts the rows of logits whose largest entry is the label.
func argmaxHits(logits *tensor.Tensor[float32], y []uint8) int {
	k := logits.Dim(1)
	hits := 0
	for i, label := range y {
		row := logits.Data()[i*k : (i+1)*k]
		best := 0
		for j, v := range row {
			if v > row[best] {
				best = j
			}
		}
		if best == int(label) {
			hits++
		}
	}
	return hits
}
