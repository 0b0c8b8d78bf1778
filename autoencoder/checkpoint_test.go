package autoencoder

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/backprop-dev/backprop/nn"
	"github.com/backprop-dev/backprop/optim"
	"github.com/backprop-dev/backprop/safetensors"
	"github.com/backprop-dev/backprop/tensor"
)

// trainedCheckpoint trains a small model on the synthetic bars and returns
// the run's result and its checkpoint path.
func trainedCheckpoint(t *testing.T, mod func(*Options)) (*Result, string) {
	t.Helper()
	train, test := barsTrainTest()
	o := quickOptions(t.TempDir())
	o.Epochs = 2
	if mod != nil {
		mod(&o)
	}
	res, err := Train(context.Background(), train, test, o)
	if err != nil {
		t.Fatal(err)
	}
	return res, res.Checkpoint
}

func TestCheckpointRoundTrip(t *testing.T) {
	for _, optName := range []string{Adam, SGD} {
		t.Run(optName, func(t *testing.T) {
			res, path := trainedCheckpoint(t, func(o *Options) { o.Optimizer = optName })
			ck, err := Load(path)
			if err != nil {
				t.Fatal(err)
			}
			want := Meta{
				Config: Config{Input: 64, Hidden: 16}, ImageH: 8, ImageW: 8, Epoch: 2, Epochs: 2,
				Step: 16, Dataset: "bars", TrainImages: 256, Optimizer: optName, LR: DefaultAdamLR,
				Batch: 32, Seed: DefaultSeed, TestError: res.Epochs[1].TestError,
			}
			if optName == SGD {
				want.LR, want.Momentum = DefaultSGDLR, DefaultMomentum
			}
			if ck.Meta != want {
				t.Errorf("metadata\n got %+v\nwant %+v", ck.Meta, want)
			}
			// The weights are the trained model's, bit for bit.
			got, orig := ck.Model.StateDict(), res.Model.StateDict()
			if len(got) != 4 || len(orig) != 4 {
				t.Fatalf("state dicts of %d and %d entries", len(got), len(orig))
			}
			names := []string{"encoder.weight", "encoder.bias", "decoder.weight", "decoder.bias"}
			shapes := [][]int{{16, 64}, {16}, {64, 16}, {64}}
			for i, e := range got {
				if e.Name != names[i] || !tensor.SameShape(e.Tensor.Shape(), shapes[i]) {
					t.Errorf("entry %d: %s %v, want %s %v", i, e.Name, e.Tensor.Shape(), names[i], shapes[i])
				}
				if !equalData(e.Tensor.Data(), orig[i].Tensor.Data()) {
					t.Errorf("%s differs from the trained model", e.Name)
				}
			}
			// So are its reconstructions and its test error.
			_, test := barsTrainTest()
			e1, err := ck.Model.TestError(test)
			if err != nil {
				t.Fatal(err)
			}
			if e1 != res.Epochs[1].TestError {
				t.Errorf("test error of the loaded model %v, trained %v", e1, res.Epochs[1].TestError)
			}
			// The optimizer state loads into a fresh optimizer and exports
			// unchanged.
			var o optim.Optimizer[float32]
			if optName == SGD {
				o, err = optim.NewSGD(ck.Model.Parameters(), optim.SGDOptions{LR: ck.Meta.LR, Momentum: ck.Meta.Momentum})
			} else {
				o, err = optim.NewAdam(ck.Model.Parameters(), optim.DefaultAdamOptions())
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(ck.OptimizerState) == 0 {
				t.Fatal("no optimizer state in the checkpoint")
			}
			if err := o.LoadState(ck.OptimizerState); err != nil {
				t.Fatal(err)
			}
			if !sameState(o.State(), ck.OptimizerState) {
				t.Error("optimizer state changed in the round trip")
			}
			if optName == Adam {
				for _, e := range ck.OptimizerState {
					if strings.HasSuffix(e.Name, ".step") && (!e.Int || e.Tensor.Data()[0] != 16) {
						t.Errorf("%s = %v (Int %v), want the step count 16", e.Name, e.Tensor.Data(), e.Int)
					}
				}
			}
			// Saving the loaded checkpoint reproduces the file.
			again := filepath.Join(t.TempDir(), "again.safetensors")
			if err := ck.Save(again); err != nil {
				t.Fatal(err)
			}
			a, _ := os.ReadFile(path)
			b, _ := os.ReadFile(again)
			if !bytes.Equal(a, b) {
				t.Error("re-saving a loaded checkpoint changed its bytes")
			}
		})
	}
}

func equalData(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			return false
		}
	}
	return true
}

func sameState(a, b []nn.StateEntry[float32]) bool {
	m := map[string]nn.StateEntry[float32]{}
	for _, e := range b {
		m[e.Name] = e
	}
	if len(a) != len(m) {
		return false
	}
	for _, e := range a {
		f, ok := m[e.Name]
		if !ok || e.Int != f.Int || !tensor.SameShape(e.Tensor.Shape(), f.Tensor.Shape()) || !equalData(e.Tensor.Data(), f.Tensor.Data()) {
			return false
		}
	}
	return true
}

// TestCheckpointIsPyTorchLayout decodes the file by hand, as the Python
// check does: names, dtypes, shapes (nn.Linear's (out, in)) and metadata.
func TestCheckpointIsPyTorchLayout(t *testing.T) {
	_, path := trainedCheckpoint(t, nil)
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	n := binary.LittleEndian.Uint64(raw)
	hdr := string(raw[8 : 8+n])
	for _, want := range []string{
		`"encoder.weight":{"dtype":"F32","shape":[16,64]`,
		`"decoder.weight":{"dtype":"F32","shape":[64,16]`,
		`"optimizer.encoder.weight.step":{"dtype":"I64","shape":[]`,
		`"hidden_size":"16"`, `"input_size":"64"`, `"model":"autoencoder"`, `"epoch":"2"`, `"dataset":"bars"`,
	} {
		if !strings.Contains(hdr, want) {
			t.Errorf("header lacks %s:\n%s", want, hdr)
		}
	}
}

func TestArchitectureMismatch(t *testing.T) {
	_, path := trainedCheckpoint(t, nil) // 64 → 16 → 64

	m, err := New(Config{Input: 64, Hidden: 32}, rand.New(rand.NewPCG(1, 1)))
	if err != nil {
		t.Fatal(err)
	}
	before := nn.CloneStateDict(m.StateDict())
	_, err = m.LoadWeights(path)
	var ce *CheckpointError
	var le *nn.LoadError
	if !errors.As(err, &ce) || !errors.As(err, &le) {
		t.Fatalf("err = %v (%T), want a *CheckpointError wrapping an *nn.LoadError", err, err)
	}
	msg := err.Error()
	for _, want := range []string{path, `"encoder.weight"`, "[16×64]", "[32×64]", `"decoder.weight"`, "[64×16]", "[64×32]", "64 → 32 ReLU"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q:\n%s", want, msg)
		}
	}
	if len(le.Mismatched) != 3 { // encoder.weight, encoder.bias, decoder.weight
		t.Errorf("mismatched %+v, want 3 entries", le.Mismatched)
	}
	if !sameStateDict(m.StateDict(), before) {
		t.Error("a failed load changed the model")
	}

	// Another input size.
	m2, _ := New(Config{Input: 784, Hidden: 16}, nil)
	if _, err := m2.LoadWeights(path); err == nil || !strings.Contains(err.Error(), "[16×784]") {
		t.Errorf("input mismatch: err = %v", err)
	}

	// Metadata that disagrees with the tensors: Load builds the model the
	// metadata describes and reports the shapes.
	f, err := safetensors.Read(path)
	if err != nil {
		t.Fatal(err)
	}
	f.Metadata[MetaHidden] = "32"
	lie := filepath.Join(t.TempDir(), "lie.safetensors")
	if err := f.WriteFile(lie); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(lie); err == nil || !strings.Contains(err.Error(), `size mismatch for "encoder.weight": the checkpoint has shape [16×64], the model expects [32×64]`) {
		t.Errorf("lying metadata: err = %v", err)
	}

	// A matching model loads.
	m3, _ := New(Config{Input: 64, Hidden: 16}, nil)
	meta, err := m3.LoadWeights(path)
	if err != nil || meta.Config.Hidden != 16 {
		t.Errorf("matching model: meta %+v, err %v", meta, err)
	}
}

func sameStateDict(a, b []nn.StateEntry[float32]) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Name != b[i].Name || !equalData(a[i].Tensor.Data(), b[i].Tensor.Data()) {
			return false
		}
	}
	return true
}

// writeST writes a safetensors file of the given float32 tensors.
func writeST(t *testing.T, meta map[string]string, tensors map[string][]int) string {
	t.Helper()
	f := safetensors.NewFile()
	for k, v := range meta {
		f.Metadata[k] = v
	}
	for name, shape := range tensors {
		if err := f.AddF32(name, tensor.New[float32](shape...)); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(t.TempDir(), "other.safetensors")
	if err := f.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestOtherModelsRefused(t *testing.T) {
	gan := map[string][]int{"G.0.weight": {100, 256}, "G.0.bias": {256}, "D.0.weight": {1, 784}, "D.0.bias": {1}}
	for _, tc := range []struct {
		name    string
		meta    map[string]string
		tensors map[string][]int
		want    []string
	}{
		{"gan with metadata", map[string]string{"model": "gan"}, gan, []string{`holds a "gan" model, not an auto-encoder`}},
		{"gan without metadata", nil, gan, []string{`no tensor "encoder.weight"`, `"D.0.weight"`, "not an auto-encoder checkpoint"}},
		{"extra tensor", nil, map[string][]int{"encoder.weight": {8, 64}, "encoder.bias": {8}, "decoder.weight": {64, 8}, "decoder.bias": {64}, "encoder.scale": {8}},
			[]string{`unexpected key(s) in state dict: "encoder.scale"`}},
		{"missing bias", nil, map[string][]int{"encoder.weight": {8, 64}, "encoder.bias": {8}, "decoder.weight": {64, 8}},
			[]string{`missing key(s) in state dict: "decoder.bias"`}},
		{"rank-1 encoder weight", nil, map[string][]int{"encoder.weight": {64}}, []string{`"encoder.weight" has shape [64], want [hidden×input]`}},
		{"bad metadata", map[string]string{"hidden_size": "lots"}, map[string][]int{"encoder.weight": {8, 64}}, []string{`hidden_size = "lots", want a positive integer`}},
		{"huge metadata", map[string]string{"hidden_size": "99999999999", "input_size": "64"}, nil, []string{"hidden size 99999999999, want 1…"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := writeST(t, tc.meta, tc.tensors)
			_, err := Load(path)
			if err == nil {
				t.Fatal("loaded")
			}
			for _, w := range append(tc.want, path) {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
		})
	}

	// A model tensor of another dtype.
	f := safetensors.NewFile()
	f.AddF64("encoder.weight", tensor.New[float64](8, 64))
	path := filepath.Join(t.TempDir(), "f64.safetensors")
	if err := f.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(path); err == nil || !strings.Contains(err.Error(), `"encoder.weight" has dtype F64, want F32`) {
		t.Errorf("F64 weights: err = %v", err)
	}
}

func TestCorruptCheckpoint(t *testing.T) {
	_, path := trainedCheckpoint(t, nil)
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	hlen := int(binary.LittleEndian.Uint64(good))
	dir := t.TempDir()
	cases := map[string][]byte{
		"empty":               {},
		"4 bytes":             good[:4],
		"length only":         good[:8],
		"half the header":     good[:8+hlen/2],
		"header, no data":     good[:8+hlen],
		"half the data":       good[:8+hlen+(len(good)-8-hlen)/2],
		"one byte short":      good[:len(good)-1],
		"one byte too many":   append(append([]byte{}, good...), 0),
		"garbage":             bytes.Repeat([]byte{0xff}, 64),
		"header not json":     append(append(append([]byte{}, good[:8]...), bytes.Repeat([]byte{'x'}, hlen)...), good[8+hlen:]...),
		"not safetensors png": []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"),
	}
	for name, b := range cases {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(dir, strings.ReplaceAll(name, " ", "_"))
			if err := os.WriteFile(p, b, 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := Load(p)
			var ce *CheckpointError
			if !errors.As(err, &ce) {
				t.Fatalf("err = %v (%T), want a *CheckpointError", err, err)
			}
			if !strings.Contains(err.Error(), p) {
				t.Errorf("error does not name the file: %v", err)
			}
			t.Log(err)
		})
	}
	// A missing file and a directory.
	for _, p := range []string{filepath.Join(dir, "missing.safetensors"), dir} {
		if _, err := Load(p); err == nil || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), "cannot read it") {
			t.Errorf("%s: err = %v", p, err)
		}
	}
}

func TestModelShapeErrors(t *testing.T) {
	m, _ := New(Config{Input: 64, Hidden: 4}, rand.New(rand.NewPCG(1, 1)))
	if _, err := m.Reconstruct(tensor.New[float32](2, 1, 28, 28)); err == nil || !strings.Contains(err.Error(), "64 values per image") {
		t.Errorf("wrong image size: err = %v", err)
	}
	if _, _, err := m.Loss(tensor.New[float32](0, 64)); err == nil {
		t.Error("empty batch accepted")
	}
	if _, err := m.Flatten(tensor.New[float32](64)); err == nil {
		t.Error("a single vector accepted as a batch")
	}
	if _, err := New(Config{Input: 0, Hidden: 4}, nil); err == nil {
		t.Error("input size 0 accepted")
	}
	_, test := realMNISTOrNil()
	if test != nil {
		if _, err := m.TestError(test); err == nil || !strings.Contains(err.Error(), "28×28") {
			t.Errorf("MNIST into a 64-input model: err = %v", err)
		}
	}
	r, err := m.Reconstruct(tensor.New[float32](3, 1, 8, 8))
	if err != nil || !tensor.SameShape(r.Shape(), []int{3, 1, 8, 8}) {
		t.Errorf("reconstruction shape %v, err %v", r.Shape(), err)
	}
	for _, v := range r.Data() {
		if !(v > 0 && v < 1) {
			t.Fatalf("reconstruction value %v outside (0, 1)", v)
		}
	}
}

// realMNISTOrNil returns MNIST if a previous test loaded it.
func realMNISTOrNil() (train, test *dataset) {
	if mnistErr != nil {
		return nil, nil
	}
	return mnistTrain, mnistTest
}

// TestLossMatchesDefinition checks Model.Loss against the seed's formula
// computed by hand in float64: Σ (x' − x)² over a batch, divided by N.
func TestLossMatchesDefinition(t *testing.T) {
	m, _ := New(Config{Input: 64, Hidden: 8}, rand.New(rand.NewPCG(3, 3)))
	train, _ := barsTrainTest()
	x, _, _ := train.Batch([]int{0, 1, 2, 3, 4})
	rec, loss, err := m.Loss(x)
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for i, v := range x.Data() {
		d := float64(rec.Value.Data()[i]) - float64(v)
		sum += d * d
	}
	if got, want := float64(loss.Value.Data()[0]), sum/5; math.Abs(got-want) > 1e-5*want {
		t.Errorf("loss %v, want Σ(x'−x)²/N = %v", got, want)
	}
}

// TestCheckpointFormats checks the format version: Save records
// backprop-autoencoder/v2, a checkpoint of an earlier version (no
// "format") still loads and resumes, one of a newer version is refused
// naming it, and one holding NaN is refused naming the tensor.
func TestCheckpointFormats(t *testing.T) {
	_, path := trainedCheckpoint(t, nil)
	f, err := safetensors.Read(path)
	if err != nil {
		t.Fatal(err)
	}
	if f.Metadata["format"] != "backprop-autoencoder/v2" {
		t.Fatalf("format %q", f.Metadata["format"])
	}
	write := func(edit func(f *safetensors.File)) string {
		f, err := safetensors.Read(path)
		if err != nil {
			t.Fatal(err)
		}
		edit(f)
		p := filepath.Join(t.TempDir(), CheckpointFile)
		if err := f.WriteFile(p); err != nil {
			t.Fatal(err)
		}
		return p
	}
	v1 := write(func(f *safetensors.File) { delete(f.Metadata, "format") })
	ck, err := Load(v1)
	if err != nil || ck.Progress == nil {
		t.Fatalf("format 1: %v", err)
	}
	if _, err := ck.ResumeOptions(quickOptions(t.TempDir()), nil); err != nil {
		t.Fatalf("format 1 does not resume: %v", err)
	}
	newer := write(func(f *safetensors.File) { f.Metadata["format"] = "backprop-autoencoder/v3" })
	if _, err := Load(newer); err == nil || !strings.Contains(err.Error(), "newer backprop (format backprop-autoencoder/v3)") || !strings.Contains(err.Error(), newer) {
		t.Errorf("newer format: %v", err)
	}
	nan := write(func(f *safetensors.File) {
		raw, _ := f.Get("decoder.bias")
		binary.LittleEndian.PutUint32(raw.Data[8:], math.Float32bits(float32(math.NaN())))
	})
	for _, load := range []func(string) error{
		func(p string) error { _, err := Load(p); return err },
		func(p string) error { _, err := ck.Model.LoadWeights(p); return err },
	} {
		if err := load(nan); err == nil || !strings.Contains(err.Error(), `tensor "decoder.bias" holds NaN at [2]`) || !strings.Contains(err.Error(), nan) {
			t.Errorf("NaN checkpoint: %v", err)
		}
	}
}
