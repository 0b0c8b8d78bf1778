package autoencoder

import (
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/backprop-dev/backprop/data"
	"github.com/backprop-dev/backprop/internal/testenv"
	"github.com/backprop-dev/backprop/tensor"
)

// dataset abbreviates data.Dataset in the tests.
type dataset = data.Dataset

// bars returns a synthetic data set of n 8×8 images, each a horizontal and
// a vertical bar of random position and brightness on a black background:
// structured enough for an auto-encoder to learn quickly, small enough for
// fast tests that need no files.
func bars(n int, seed uint64, split string) *data.Dataset {
	const h, w = 8, 8
	rng := rand.New(rand.NewPCG(seed, 99))
	img := tensor.New[float32](n, 1, h, w)
	d := img.Data()
	labels := make([]uint8, n)
	for i := range n {
		row, col := rng.IntN(h), rng.IntN(w)
		a, b := 0.5+0.5*rng.Float32(), 0.5+0.5*rng.Float32()
		for x := range w {
			d[i*h*w+row*w+x] = a
		}
		for y := range h {
			d[i*h*w+y*w+col] = max(d[i*h*w+y*w+col], b)
		}
		labels[i] = uint8(row)
	}
	return &data.Dataset{Name: "bars", Split: split, Images: img, Labels: labels}
}

// barsTrainTest is the synthetic training and test set most tests use.
func barsTrainTest() (train, test *data.Dataset) {
	return bars(256, 1, data.Train), bars(64, 2, data.Test)
}

// quickOptions are options for a run of a few milliseconds.
func quickOptions(dir string) Options {
	o := DefaultOptions()
	o.Hidden, o.Epochs, o.Batch, o.Samples = 16, 1, 32, 8
	o.Dataset, o.OutDir = "bars", dir
	return o
}

var (
	mnistOnce             sync.Once
	mnistTrain, mnistTest *data.Dataset
	mnistErr              error
)

// realMNIST loads MNIST once for the tests that use it, or skips the test
// when the files are not installed (or with -short); installed files that
// fail to load fail the test.
func realMNIST(t *testing.T) (train, test *data.Dataset) {
	t.Helper()
	if testing.Short() {
		t.Skip("loads MNIST; skipped with -short")
	}
	// Only files that are not installed skip (or fail under
	// BACKPROP_REQUIRE=mnist); any error loading installed files fails.
	if _, err := data.MNISTDir(); err != nil {
		testenv.Missing(t, "mnist", err.Error())
	}
	mnistOnce.Do(func() {
		if mnistTrain, mnistErr = data.Load("mnist", data.Train); mnistErr != nil {
			return
		}
		mnistTest, mnistErr = data.Load("mnist", data.Test)
	})
	if mnistErr != nil {
		t.Fatalf("MNIST is installed but does not load: %v", mnistErr)
	}
	return mnistTrain, mnistTest
}
