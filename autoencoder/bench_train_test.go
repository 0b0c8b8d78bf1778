package autoencoder

import (
	"context"
	"math/rand/v2"
	"testing"

	"github.com/backprop-dev/backprop/data"
	"github.com/backprop-dev/backprop/tensor"
)

// BenchmarkTrainEpoch times Train over one epoch of 40 steps of the
// default model (784 → 256 → 784, batch 64, Adam) on random 28×28
// images, without output files: the training loop's cost per step,
// reported as ns/step.
func BenchmarkTrainEpoch(b *testing.B) {
	const steps = 40
	rng := rand.New(rand.NewPCG(1, 2))
	img := tensor.New[float32](steps*64, 1, 28, 28)
	for i := range img.Data() {
		img.Data()[i] = rng.Float32()
	}
	train := &data.Dataset{Name: "random", Split: data.Train, Images: img, Labels: make([]uint8, steps*64)}
	test := &data.Dataset{Name: "random", Split: data.Test, Images: img, Labels: make([]uint8, steps*64)}
	test, _ = Subset(test, 64)
	o := DefaultOptions()
	o.Epochs, o.Samples = 1, 0
	b.ResetTimer()
	for range b.N {
		if _, err := Train(context.Background(), train, test, o); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*steps), "ns/step")
}
