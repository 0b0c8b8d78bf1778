package models

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/backprop-dev/backprop/autoencoder"
	"github.com/backprop-dev/backprop/data"
	"github.com/backprop-dev/backprop/gan"
	"github.com/backprop-dev/backprop/safetensors"
)

// torchEntry is one state_dict entry of a class of model.py, as
// scripts/pytorch/state_dict_keys.py lists it.
type torchEntry struct {
	Name  string `json:"name"`
	DType string `json:"dtype"`
	Shape []int  `json:"shape"`
}

// torchStateDicts reads testdata/pytorch_state_dicts.json: the state_dict
// of every class of model.py, written by PyTorch itself.
func torchStateDicts(t *testing.T) map[string][]torchEntry {
	t.Helper()
	b, err := os.ReadFile("testdata/pytorch_state_dicts.json")
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		Classes map[string][]torchEntry `json:"classes"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	return v.Classes
}

// TestWeightsMatchModelPy: the weights file of every network has exactly
// the state_dict of its class in model.py, as PyTorch lists it: the same
// names in the same order, dtypes (num_batches_tracked an I64 scalar) and
// shapes, so load_state_dict(strict=True) accepts it; and the values are
// the network's own.
func TestWeightsMatchModelPy(t *testing.T) {
	want := torchStateDicts(t)
	if len(want) != len(Kinds) {
		t.Fatalf("model.py lists %d classes, want one per network (%d)", len(want), len(Kinds))
	}
	for _, k := range Kinds {
		n, err := New(k, 6)
		if err != nil {
			t.Fatal(err)
		}
		f, err := Weights(n)
		if err != nil {
			t.Fatalf("%s: %v", k, err)
		}
		class := f.Metadata["class"]
		w, ok := want[class]
		if !ok {
			t.Fatalf("%s: class %q is not in model.py", k, class)
		}
		var kwargs map[string]int
		if err := json.Unmarshal([]byte(f.Metadata["kwargs"]), &kwargs); err != nil {
			t.Fatalf("%s: kwargs %q: %v", k, f.Metadata["kwargs"], err)
		}
		if k == Autoencoder && (kwargs["input_size"] != 784 || kwargs["hidden_size"] != 256) {
			t.Errorf("auto-encoder kwargs %v, want model.py's defaults 784 and 256", kwargs)
		}
		// Write and read back: what PyTorch sees is the file.
		path := filepath.Join(t.TempDir(), "w.safetensors")
		if err := f.WriteFile(path); err != nil {
			t.Fatal(err)
		}
		if f, err = safetensors.Read(path); err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, name := range f.Names() {
			got = append(got, name)
		}
		var wantNames []string
		for _, e := range w {
			wantNames = append(wantNames, e.Name)
		}
		slices.Sort(got)
		sorted := slices.Sorted(slices.Values(wantNames))
		if !slices.Equal(got, sorted) {
			t.Errorf("%s: keys\n%v\nwant (PyTorch's %s)\n%v", k, got, class, sorted)
			continue
		}
		var order []string
		for _, e := range n.Module.StateDict() {
			order = append(order, e.Name)
		}
		if !slices.Equal(order, wantNames) {
			t.Errorf("%s: state_dict order %v, PyTorch's %v", k, order, wantNames)
		}
		values := map[string][]float32{}
		for _, e := range n.Module.StateDict() {
			values[e.Name] = e.Tensor.Data()
		}
		for _, e := range w {
			raw, _ := f.Get(e.Name)
			if raw.DType != e.DType || fmt.Sprint(raw.Shape) != fmt.Sprint(e.Shape) {
				t.Errorf("%s: %s is %s %v, PyTorch's %s %v", k, e.Name, raw.DType, raw.Shape, e.DType, e.Shape)
				continue
			}
			if e.DType == "I64" {
				v, err := f.I64(e.Name)
				if err != nil || float32(v) != values[e.Name][0] {
					t.Errorf("%s: %s = %d (%v), want %g", k, e.Name, v, err, values[e.Name][0])
				}
				continue
			}
			x, err := f.F32(e.Name)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(x.Data(), values[e.Name]) {
				t.Errorf("%s: %s: the file's values are not the network's", k, e.Name)
			}
		}
	}
}

// writeImages writes n random 28×28 training and test images with labels
// as an IDX data set directory.
func writeImages(t *testing.T, n int) string {
	t.Helper()
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(3, 4))
	px := make([]byte, n*28*28)
	for i := range px {
		px[i] = byte(rng.IntN(256))
	}
	labels := make([]byte, n)
	for i := range labels {
		labels[i] = byte(i % 10)
	}
	for _, p := range []string{"train", "t10k"} {
		if err := data.WriteIDX(filepath.Join(dir, p+"-images-idx3-ubyte"), []int{n, 28, 28}, px); err != nil {
			t.Fatal(err)
		}
		if err := data.WriteIDX(filepath.Join(dir, p+"-labels-idx1-ubyte"), []int{n}, labels); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestWritePyTorchFromCheckpoints: a DCGAN checkpoint gives a generator
// and a discriminator file (--model picks one), an auto-encoder
// checkpoint one file with its sizes; model.py is written beside them and
// the files hold the checkpoint's weights, not its optimizer state or
// progress.
func TestWritePyTorchFromCheckpoints(t *testing.T) {
	dir := writeImages(t, 8)
	cfg := gan.Config{Data: dir, Seed: 1, Batch: 4}
	images, err := gan.LoadImages(cfg)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := gan.NewTrainer(cfg, images)
	if err != nil {
		t.Fatal(err)
	}
	ganCK := filepath.Join(t.TempDir(), "gan.safetensors")
	if err := tr.Save(ganCK); err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	nets, err := LoadAll(ganCK, "")
	if err != nil {
		t.Fatal(err)
	}
	files, err := WritePyTorch(out, nets)
	if err != nil {
		t.Fatal(err)
	}
	wantFiles := []string{filepath.Join(out, "generator.safetensors"), filepath.Join(out, "discriminator.safetensors"), filepath.Join(out, ModelPyFile)}
	if !slices.Equal(files, wantFiles) {
		t.Errorf("files %v, want %v", files, wantFiles)
	}
	py, err := os.ReadFile(filepath.Join(out, ModelPyFile))
	if err != nil || string(py) != string(ModelPy) || len(py) < 1000 {
		t.Errorf("model.py: %d bytes, %v", len(py), err)
	}
	g, err := safetensors.Read(wantFiles[0])
	if err != nil {
		t.Fatal(err)
	}
	w, _ := g.F32("0.weight")
	if !slices.Equal(w.Data(), tr.G.StateDict()[0].Tensor.Data()) {
		t.Error("generator.safetensors' 0.weight is not the checkpoint's")
	}
	if g.Metadata["class"] != "Generator" || g.Metadata["format"] != WeightsFormat {
		t.Errorf("metadata %v", g.Metadata)
	}
	if d, err := LoadAll(ganCK, Discriminator); err != nil || len(d) != 1 || d[0].Kind != Discriminator {
		t.Errorf("--model discriminator: %v %v", d, err)
	}

	// An auto-encoder checkpoint of another size.
	m, err := autoencoder.New(autoencoder.Config{Input: 784, Hidden: 16}, rand.New(rand.NewPCG(1, 2)))
	if err != nil {
		t.Fatal(err)
	}
	aeCK := filepath.Join(t.TempDir(), "ae.safetensors")
	ck := &autoencoder.Checkpoint{Model: m, Meta: autoencoder.Meta{Config: m.Config, Dataset: dir, Optimizer: "adam", LR: 1e-3, Batch: 4, Step: 7, TestError: math.NaN()}}
	if err := ck.Save(aeCK); err != nil {
		t.Fatal(err)
	}
	nets, err = LoadAll(aeCK, "")
	if err != nil {
		t.Fatal(err)
	}
	files, err = WritePyTorch(out, nets)
	if err != nil || len(files) != 2 || filepath.Base(files[0]) != "autoencoder.safetensors" {
		t.Fatalf("auto-encoder: %v %v", files, err)
	}
	a, err := safetensors.Read(files[0])
	if err != nil {
		t.Fatal(err)
	}
	if a.Metadata["kwargs"] != `{"hidden_size":16,"input_size":784}` || a.Len() != 4 {
		t.Errorf("auto-encoder file: kwargs %s, %d tensors %v", a.Metadata["kwargs"], a.Len(), a.Names())
	}
}

// TestAutoencoderBatchLoss: the loss recorded for the PyTorch hand-off is
// the training loss Σ (x' − x)² / N of the first N images, computed here
// independently in float64 from the weights.
func TestAutoencoderBatchLoss(t *testing.T) {
	dir := writeImages(t, 6)
	m, err := autoencoder.New(autoencoder.Config{Input: 784, Hidden: 8}, rand.New(rand.NewPCG(5, 6)))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "ae.safetensors")
	ck := &autoencoder.Checkpoint{Model: m, Meta: autoencoder.Meta{Config: m.Config, Dataset: dir, Optimizer: "sgd", LR: 0.01, Momentum: 0.9, Batch: 3, Step: 2, TestError: math.NaN()}}
	if err := ck.Save(path); err != nil {
		t.Fatal(err)
	}
	b, err := AutoencoderBatchLoss(path, 4)
	if err != nil {
		t.Fatal(err)
	}
	train, err := data.Load(dir, data.Train)
	if err != nil {
		t.Fatal(err)
	}
	// float64 reference: h = relu(W1 x + b1), y = sigmoid(W2 h + b2).
	w1, b1 := m.Encoder.Weight.Value.Data(), m.Encoder.Bias.Value.Data()
	w2, b2 := m.Decoder.Weight.Value.Data(), m.Decoder.Bias.Value.Data()
	var sum float64
	for i := range 4 {
		x := train.Images.Data()[i*784 : (i+1)*784]
		h := make([]float64, 8)
		for j := range h {
			s := float64(b1[j])
			for k := range x {
				s += float64(w1[j*784+k]) * float64(x[k])
			}
			h[j] = math.Max(s, 0)
		}
		for k := range x {
			s := float64(b2[k])
			for j := range h {
				s += float64(w2[k*8+j]) * h[j]
			}
			d := 1/(1+math.Exp(-s)) - float64(x[k])
			sum += d * d
		}
	}
	want := sum / 4
	if math.Abs(b.Loss-want) > 1e-5*want {
		t.Errorf("loss %.9g, float64 reference %.9g", b.Loss, want)
	}
	if b.First != 0 || b.Count != 4 || b.Step != 2 || b.Optimizer != "sgd" || b.Momentum != 0.9 || b.Batch != 3 || !filepath.IsAbs(b.ImagesFile) {
		t.Errorf("record %+v", b)
	}
	if _, err := AutoencoderBatchLoss(path, 7); err == nil {
		t.Error("a batch larger than the training set was accepted")
	}
}
