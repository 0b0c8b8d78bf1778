package autoencoder

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"testing"

	"github.com/backprop-dev/backprop/data"
	"github.com/backprop-dev/backprop/tensor"
)

// torchAERun is one optimizer's run recorded by
// bench/autoencoder/reference_steps.py from a float64 PyTorch run.
type torchAERun struct {
	LR        float64              `json:"lr"`
	Momentum  float64              `json:"momentum"`
	StepLoss  []float64            `json:"step_loss"`
	TestError []float64            `json:"test_error"`
	State     map[string][]float64 `json:"state"`
}

// torchAEReference is autoencoder/testdata/torch_reference_steps.json.
type torchAEReference struct {
	Data struct {
		Side   int     `json:"side"`
		Train  int     `json:"train"`
		Test   int     `json:"test"`
		TrainC float64 `json:"train_c"`
		TestC  float64 `json:"test_c"`
	} `json:"data"`
	Hidden int                   `json:"hidden"`
	Batch  int                   `json:"batch"`
	Epochs int                   `json:"epochs"`
	Seed   uint64                `json:"seed"`
	Runs   map[string]torchAERun `json:"runs"`
}

// aeRefTol is the tolerance of every comparison with the PyTorch run,
// relative to the value (losses, test errors) or to the tensor's largest
// magnitude (weights): a float32 PyTorch run lies within 1.5e-7 of the
// float64 reference (the file records the figures), and the
// auto-encoder has no step where rounding can flip a decision.
const aeRefTol = 1e-5

// refImages is the script's data set: n images side×side,
// x[i, p] = (hash01(0.53·(side²·i + p) + c) + 1)/2 rounded to float32, with
// hash01(v) = 2·frac(43758.5453·sin v) − 1.
func refImages(n, side int, c float64, split string) *data.Dataset {
	img := tensor.New[float32](n, 1, side, side)
	d := img.Data()
	for i := range n {
		for p := range side * side {
			v := math.Sin(0.53*float64(side*side*i+p)+c) * 43758.5453
			d[i*side*side+p] = float32((2*(v-math.Floor(v)) - 1 + 1) / 2)
		}
	}
	return &data.Dataset{Name: "reference", Split: split, Images: img, Labels: make([]uint8, n)}
}

// TestMatchesPyTorchTraining runs Train, the command's own loop (seeded
// initialization, shuffled batches, loss, backward, optimizer step, test
// error), for two epochs with Adam and with SGD + momentum, and compares
// every step's loss, each epoch's test error and every weight afterwards
// with PyTorch (bench/autoencoder/reference_steps.py), which reproduces
// backprop's initialization and batch order.
func TestMatchesPyTorchTraining(t *testing.T) {
	raw, err := os.ReadFile("testdata/torch_reference_steps.json")
	if err != nil {
		t.Fatal(err)
	}
	var ref torchAEReference
	if err := json.Unmarshal(raw, &ref); err != nil {
		t.Fatalf("testdata/torch_reference_steps.json: %v", err)
	}
	train := refImages(ref.Data.Train, ref.Data.Side, ref.Data.TrainC, data.Train)
	test := refImages(ref.Data.Test, ref.Data.Side, ref.Data.TestC, data.Test)
	if len(ref.Runs) != 2 {
		t.Fatalf("testdata/torch_reference_steps.json: %d runs, want adam and sgd", len(ref.Runs))
	}
	for name, want := range ref.Runs {
		t.Run(name, func(t *testing.T) {
			o := DefaultOptions()
			o.Hidden, o.Batch, o.Epochs, o.Seed, o.Samples = ref.Hidden, ref.Batch, ref.Epochs, ref.Seed, 0
			o.Optimizer, o.LR, o.Momentum = name, want.LR, want.Momentum
			res, err := Train(context.Background(), train, test, o)
			if err != nil {
				t.Fatal(err)
			}
			close := func(what string, got, want float64) {
				t.Helper()
				if math.Abs(got-want) > aeRefTol*math.Abs(want) {
					t.Errorf("%s: %.9g, PyTorch %.9g (relative difference %.2g, tolerance %g)", what, got, want, math.Abs(got-want)/math.Abs(want), aeRefTol)
				}
			}
			if len(res.StepLoss) != len(want.StepLoss) || len(res.Epochs) != len(want.TestError) {
				t.Fatalf("%d steps and %d epochs, PyTorch %d and %d", len(res.StepLoss), len(res.Epochs), len(want.StepLoss), len(want.TestError))
			}
			for s, l := range want.StepLoss {
				close(fmt.Sprintf("step %d loss", s+1), res.StepLoss[s], l)
			}
			for e, te := range want.TestError {
				close(fmt.Sprintf("epoch %d test error", e+1), res.Epochs[e].TestError, te)
			}
			seen := 0
			for _, e := range res.Model.StateDict() {
				w, ok := want.State[e.Name]
				if !ok {
					t.Errorf("PyTorch has no %s", e.Name)
					continue
				}
				seen++
				got := e.Tensor.Data()
				if len(got) != len(w) {
					t.Errorf("%s: %d values, PyTorch %d", e.Name, len(got), len(w))
					continue
				}
				scale := 0.0
				for _, v := range w {
					scale = math.Max(scale, math.Abs(v))
				}
				for i, v := range w {
					if d := math.Abs(float64(got[i]) - v); d > aeRefTol*scale {
						t.Errorf("%s[%d] after %d epochs = %.8g, PyTorch %.8g (off by %.2g of the tensor's largest value %.3g)", e.Name, i, ref.Epochs, got[i], v, d/scale, scale)
						break
					}
				}
			}
			if seen != len(want.State) {
				t.Errorf("compared %d tensors, PyTorch recorded %d", seen, len(want.State))
			}
		})
	}
}
