package benchmark

import (
	"os"
	"runtime"
	"runtime/pprof"
	"testing"

	"github.com/backprop-dev/backprop/autoencoder"
	"github.com/backprop-dev/backprop/autograd"
	"github.com/backprop-dev/backprop/gan"
	"github.com/backprop-dev/backprop/optim"
	"github.com/backprop-dev/backprop/tensor"
)

// tinyGANStep is gan-step on a small batch: gan.Trainer.TrainStep of the
// reference DCGAN at batch 4 on 64 batches of noise images (no epoch ends
// within the steps a test runs), its loss history preallocated.
func tinyGANStep(t testing.TB) func() {
	rng := newRand()
	const batch, steps = 4, 64
	imgs := tensor.New[float32](steps*batch, 1, gan.ImageSize, gan.ImageSize)
	fill(rng, imgs.Data(), -1, 1)
	tr, err := gan.NewTrainer(gan.Config{Seed: 1, Batch: batch}, imgs)
	if err != nil {
		t.Fatal(err)
	}
	h := &tr.History
	h.DLoss, h.GLoss, h.DX, h.DGZ = make([]float64, 0, steps), make([]float64, 0, steps), make([]float64, 0, steps), make([]float64, 0, steps)
	return func() {
		if _, err := tr.TrainStep(); err != nil {
			t.Fatal(err)
		}
	}
}

// tinyAEStep is ae-step on a small auto-encoder (784 → 16 → 784) at
// batch 4.
func tinyAEStep(t testing.TB) func() {
	rng := newRand()
	m, err := autoencoder.New(autoencoder.Config{Input: autoencoder.DefaultInput, Hidden: 16}, rng)
	if err != nil {
		t.Fatal(err)
	}
	opt, err := optim.NewAdam(m.Parameters(), optim.DefaultAdamOptions())
	if err != nil {
		t.Fatal(err)
	}
	x := tensor.New[float32](4, 1, 28, 28)
	fill(rng, x.Data(), 0, 1)
	return func() {
		_, loss, err := m.Loss(x)
		if err != nil {
			t.Fatal(err)
		}
		if err := autograd.Backward(loss); err != nil {
			t.Fatal(err)
		}
		if err := opt.Step(); err != nil {
			t.Fatal(err)
		}
		opt.ZeroGrad()
		autograd.Release(loss)
	}
}

// TestSteadyStateAllocs checks that a training step of the DCGAN and of
// the auto-encoder allocates (almost) nothing on the heap once the first
// steps have filled the pools (issue 17: allocation-free steady state).
// Measured when the test was written: 0 objects per gan-step and 1 per
// ae-step (autoencoder.Model.Loss's leaf for the batch, and the view of it
// that Flatten makes, whose header is not recycled as the leaf keeps it);
// the bounds leave one or two for a sync.Pool that a garbage collection
// emptied. A change that brings allocations back into the training step
// fails it.
func TestSteadyStateAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector drops sync.Pool items at random")
	}
	for _, c := range []struct {
		name  string
		step  func(testing.TB) func()
		bound float64
	}{
		{"gan-step", tinyGANStep, 2},
		{"ae-step", tinyAEStep, 3},
	} {
		t.Run(c.name, func(t *testing.T) {
			step := c.step(t)
			for range 3 { // warm-up: pools, optimizer state
				step()
			}
			if path := os.Getenv(profileEnv); path != "" {
				// every allocation of 10 steady-state steps: go tool pprof
				// -sample_index=alloc_objects -diff_base path.NAME.base path.NAME
				writeProfile(t, path+"."+c.name+".base")
				for range 10 {
					step()
				}
				writeProfile(t, path+"."+c.name)
			}
			n := testing.AllocsPerRun(10, step)
			t.Logf("%s: %v allocations per step", c.name, n)
			if n > c.bound {
				t.Errorf("%s allocates %v objects per step in the steady state, want at most %v", c.name, n, c.bound)
			}
		})
	}
}

// profileEnv names the environment variable that asks
// TestSteadyStateAllocs for allocation profiles (a path prefix).
const profileEnv = "BACKPROP_ALLOC_PROFILE"

func init() {
	if os.Getenv(profileEnv) != "" {
		runtime.MemProfileRate = 1
	}
}

// writeProfile writes the allocation profile to path.
func writeProfile(t *testing.T, path string) {
	runtime.GC() // the profile is as of the last completed collection
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
		t.Fatal(err)
	}
}
