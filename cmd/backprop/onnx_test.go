package main

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/backprop-dev/backprop/data"
	"github.com/backprop-dev/backprop/internal/testenv"
	"github.com/backprop-dev/backprop/onnx"
	"github.com/backprop-dev/backprop/onnx/models"
)

// TestExportThenONNXTest: backprop export --spec writes a model and a
// backend-test directory that backprop onnx test passes; a wrong expected
// output is a FAIL line, the summary and exit status 1; usage mistakes
// exit 2.
func TestExportThenONNXTest(t *testing.T) {
	dir := t.TempDir()
	model, data := filepath.Join(dir, "p1.onnx"), filepath.Join(dir, "p1")
	status, stdout, stderr := runCLI(t, "export", "--onnx", model, "--spec", "../../examples/problem1.yaml", "--test-data", data)
	if status != statusOK || !strings.Contains(stdout, "ConvTranspose") {
		t.Fatalf("export: status %d\n%s%s", status, stdout, stderr)
	}
	if _, err := onnx.Load(model); err != nil {
		t.Fatal(err)
	}
	status, stdout, _ = runCLI(t, "onnx", "test", data)
	if status != statusOK || !strings.HasSuffix(stdout, "1 passed, 0 failed, 0 unsupported\n") || !strings.HasPrefix(stdout, "PASS ") {
		t.Fatalf("onnx test: status %d\n%s", status, stdout)
	}
	// a wrong expected output fails
	out := filepath.Join(data, "test_data_set_0", "output_0.pb")
	want, err := onnx.ReadTensorFile(out)
	if err != nil {
		t.Fatal(err)
	}
	want.Floats[0] += 0.01
	if err := onnx.WriteTensorFile(out, want); err != nil {
		t.Fatal(err)
	}
	status, stdout, _ = runCLI(t, "onnx", "test", data)
	if status != statusFailure || !strings.HasPrefix(stdout, "FAIL ") || !strings.HasSuffix(stdout, "0 passed, 1 failed, 0 unsupported\n") {
		t.Fatalf("onnx test of a wrong output: status %d\n%s", status, stdout)
	}
	for _, args := range [][]string{
		{"export", "--onnx", model},
		{"export", "--spec", "x.yaml"},
		{"export", "--onnx", model, "--checkpoint", "c", "--model", "vae"},
		{"onnx", "test"},
		{"onnx", "test", "--rtol", "-1", data},
	} {
		if status, _, stderr := runCLI(t, args...); status != statusUsage {
			t.Errorf("%q: status %d, want %d\n%s", args, status, statusUsage, stderr)
		}
	}
	if status, _, stderr := runCLI(t, "onnx", "test", filepath.Join(dir, "none")); status != statusFailure || !strings.Contains(stderr, "none") {
		t.Errorf("missing directory: status %d\n%s", status, stderr)
	}
	os.RemoveAll(data)
}

// TestExportPyTorch: export --pytorch writes the weights of a training
// checkpoint and model.py; flags of the ONNX export, a missing checkpoint
// and --loss-batch of a network that is not the auto-encoder are usage
// errors. With MNIST present, the run of scripts/pytorch/ddp_demo.sh gives
// the loss committed in scripts/pytorch/testdata/autoencoder_loss.json,
// the number PyTorch's DistributedDataParallel run compares its first step
// with.
func TestExportPyTorch(t *testing.T) {
	dir := t.TempDir()
	for _, args := range [][]string{
		{"export", "--pytorch", dir},
		{"export", "--pytorch", dir, "--checkpoint", "c", "--onnx", "x.onnx"},
		{"export", "--pytorch", dir, "--checkpoint", "c", "--model", "vae"},
		{"export", "--onnx", "x.onnx", "--checkpoint", "c", "--loss-batch", "4"},
	} {
		if status, _, stderr := runCLI(t, args...); status != statusUsage {
			t.Errorf("%q: status %d, want %d\n%s", args, status, statusUsage, stderr)
		}
	}
	if _, err := data.MNISTDir(); err != nil {
		testenv.Missing(t, "mnist", err.Error())
	}
	run := filepath.Join(dir, "ae")
	if status, _, stderr := runCLI(t, "train", "autoencoder", "--data", "mnist", "--limit", "2048", "--epochs", "1", "--seed", "1", "-q", "--out", run); status != statusOK {
		t.Fatalf("train: status %d\n%s", status, stderr)
	}
	ck := filepath.Join(run, "checkpoint.safetensors")
	out := filepath.Join(dir, "torch-ae")
	status, stdout, stderr := runCLI(t, "export", "--pytorch", out, "--checkpoint", ck, "--loss-batch", "64")
	if status != statusOK || !strings.Contains(stdout, "autoencoder.safetensors") {
		t.Fatalf("export --pytorch: status %d\n%s%s", status, stdout, stderr)
	}
	if _, err := os.Stat(filepath.Join(out, "model.py")); err != nil {
		t.Error(err)
	}
	read := func(path string) models.BatchLoss {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var v models.BatchLoss
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	got, want := read(filepath.Join(out, "backprop_loss.json")), read("../../scripts/pytorch/testdata/autoencoder_loss.json")
	if math.Abs(got.Loss-want.Loss) > 1e-6*want.Loss || got.Step != want.Step || got.Count != want.Count || got.LR != want.LR {
		t.Errorf("loss record %+v\ncommitted %+v", got, want)
	}
	if status, _, stderr := runCLI(t, "export", "--pytorch", out, "--checkpoint", filepath.Join(run, "none.safetensors")); status != statusFailure {
		t.Errorf("missing checkpoint: status %d\n%s", status, stderr)
	}
}

// TestSolveDeriveONNX: solve and derive take a .onnx --spec with --input,
// --objective and --label (the class index); the flags' mistakes are
// usage errors.
func TestSolveDeriveONNX(t *testing.T) {
	model, input := "../../onnx/testdata/solve/mlp.onnx", "../../onnx/testdata/solve/mlp_input.json"
	status, stdout, stderr := runCLI(t, "solve", "--spec", model, "--input", input, "--objective", "cross_entropy", "--label", "2", "--format", "json")
	if status != statusOK || !strings.Contains(stdout, `"0.weight"`) || !strings.Contains(stdout, `"J": 0.3692694998`) {
		t.Fatalf("solve: status %d\n%s%s", status, stdout, stderr)
	}
	status, stdout, stderr = runCLI(t, "derive", "--spec", model, "--input", input, "--objective", "sum")
	if status != statusOK || !strings.Contains(stdout, "relu1 = ReLU(gemm1)") {
		t.Fatalf("derive: status %d\n%s%s", status, stdout, stderr)
	}
	for _, args := range [][]string{
		{"solve", "--spec", model, "--objective", "sum"},
		{"solve", "--spec", model, "--input", input, "--objective", "cross_entropy"},
		{"solve", "--spec", model, "--input", input, "--objective", "sum", "--label", "1"},
		{"solve", "--spec", model, "--input", input, "--objective", "mse"},
		{"solve", "--spec", model, "--input", input, "--objective", "cross_entropy", "--label", "two"},
		{"solve", "--input", input},
		{"derive", "--spec", model, "--input", input, "--objective", "sum", "--check"},
		{"derive", "gan", "--objective", "sum"},
	} {
		if status, _, stderr := runCLI(t, args...); status != statusUsage {
			t.Errorf("%q: status %d, want %d\n%s", args, status, statusUsage, stderr)
		}
	}
}
