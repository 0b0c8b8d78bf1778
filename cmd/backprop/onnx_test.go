package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/backprop-dev/backprop/onnx"
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
