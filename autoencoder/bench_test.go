package autoencoder

import (
	"math/rand/v2"
	"testing"

	"github.com/backprop-dev/backprop/autograd"
	"github.com/backprop-dev/backprop/optim"
	"github.com/backprop-dev/backprop/tensor"
)

// BenchmarkStep times one training step of the default model (784 → 256 →
// 784, batch 64, Adam) on random images: forward, backward and update.
func BenchmarkStep(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	m, err := New(Config{Input: 784, Hidden: 256}, rng)
	if err != nil {
		b.Fatal(err)
	}
	opt, err := optim.NewAdam(m.Parameters(), optim.DefaultAdamOptions())
	if err != nil {
		b.Fatal(err)
	}
	x := tensor.New[float32](64, 1, 28, 28)
	for i := range x.Data() {
		x.Data()[i] = rng.Float32()
	}
	b.ResetTimer()
	for range b.N {
		_, loss, err := m.Loss(x)
		if err != nil {
			b.Fatal(err)
		}
		if err := autograd.Backward(loss); err != nil {
			b.Fatal(err)
		}
		if err := opt.Step(); err != nil {
			b.Fatal(err)
		}
		opt.ZeroGrad()
	}
}
