package models

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/backprop-dev/backprop/examples"
	"github.com/backprop-dev/backprop/internal/testenv"
	"github.com/backprop-dev/backprop/onnx"
	"github.com/backprop-dev/backprop/onnx/backendtest"
	"github.com/backprop-dev/backprop/spec"
)

// OnnxRuntimeEnv names the directory holding node_modules/onnxruntime-node
// (npm install --ignore-scripts --prefix DIR onnxruntime-node); by default
// ~/.cache/backprop/onnxruntime-node, where .ci/run installs it.
const OnnxRuntimeEnv = "BACKPROP_ONNXRUNTIME_DIR"

// onnxRuntime returns the node_modules directory holding onnxruntime-node
// and the node binary, or ends the test: a skip when the package is absent
// (a failure when BACKPROP_REQUIRE names onnxruntime), a failure when the
// package is there but node is not.
func onnxRuntime(t *testing.T) (modules, node string) {
	t.Helper()
	dir := os.Getenv(OnnxRuntimeEnv)
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			testenv.Missing(t, "onnxruntime", "no home directory to look for ~/.cache/backprop/onnxruntime-node: "+err.Error())
		}
		dir = filepath.Join(home, ".cache", "backprop", "onnxruntime-node")
	}
	modules = filepath.Join(dir, "node_modules")
	if _, err := os.Stat(filepath.Join(modules, "onnxruntime-node", "package.json")); err != nil {
		testenv.Missing(t, "onnxruntime", fmt.Sprintf("%s/onnxruntime-node not found (npm install --ignore-scripts --prefix %s onnxruntime-node, or set %s)", modules, dir, OnnxRuntimeEnv))
	}
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("onnxruntime-node is installed in %s but node is not on PATH: %v", modules, err)
	}
	return modules, node
}

type ortTensor struct {
	Dims []int     `json:"dims"`
	Data []float64 `json:"data"`
}

// runORT runs the model file with ONNX Runtime on the inputs and returns
// its outputs by name.
func runORT(t *testing.T, modules, node, model string, inputs []*onnx.Tensor) map[string]ortTensor {
	t.Helper()
	req := struct {
		Model  string               `json:"model"`
		Inputs map[string]ortTensor `json:"inputs"`
	}{Model: model, Inputs: map[string]ortTensor{}}
	for _, in := range inputs {
		req.Inputs[in.Name] = ortTensor{Dims: in.Shape, Data: in.Floats}
	}
	body, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(node, "testdata/ort_run.js")
	cmd.Env = append(os.Environ(), "NODE_PATH="+modules)
	cmd.Stdin = bytes.NewReader(body)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("ONNX Runtime on %s: %v\n%s", model, err, stderr.String())
	}
	var resp struct {
		Version string               `json:"version"`
		Outputs map[string]ortTensor `json:"outputs"`
	}
	if err := json.Unmarshal(out, &resp); err != nil {
		t.Fatalf("ONNX Runtime's answer: %v", err)
	}
	t.Logf("ONNX Runtime %s", resp.Version)
	return resp.Outputs
}

// compare checks got against backprop's want to 1e-5 (relative to values
// above 1).
func compare(t *testing.T, what string, gotDims []int, got []float64, want *onnx.Tensor) {
	t.Helper()
	if fmt.Sprint(gotDims) != fmt.Sprint(want.Shape) {
		t.Fatalf("%s: shape %v, backprop's %v", what, gotDims, want.Shape)
	}
	worst := 0.0
	for i, w := range want.Floats {
		d := math.Abs(got[i]-w) / math.Max(1, math.Abs(w))
		if !(d <= 1e-5) {
			t.Fatalf("%s: element %d is %.9g, backprop's %.9g", what, i, got[i], w)
		}
		worst = math.Max(worst, d)
	}
	t.Logf("%s: %d values agree, largest difference %.2g", what, len(want.Floats), worst)
}

// exports are the models of item 3: the four networks (fresh weights from
// a fixed seed; a checkpoint only changes the numbers) and Problem 1's
// spec, plus every bank spec export supports.
func exports(t *testing.T) map[string]*Export {
	t.Helper()
	out := map[string]*Export{}
	for _, k := range Kinds {
		n, err := New(k, 14)
		if err != nil {
			t.Fatal(err)
		}
		e, err := ExportNet(n, SampleInput(k, 3, 14))
		if err != nil {
			t.Fatalf("%s: %v", k, err)
		}
		out[string(k)] = e
	}
	for _, file := range append([]string{examples.Problem1}, examples.Bank...) {
		b, err := examples.FS.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		s, err := spec.Parse(file, b)
		if err != nil {
			t.Fatal(err)
		}
		e, err := ExportSpec(s)
		if err != nil {
			if file == examples.Problem1 || !strings.Contains(err.Error(), "export: ") {
				t.Fatalf("%s: %v", file, err)
			}
			t.Logf("%s: not exported: %v", file, err)
			continue
		}
		out[file] = e
	}
	return out
}

// TestExportsRunInONNXRuntime: every export runs in ONNX Runtime
// (onnxruntime-node) with outputs equal to backprop's to 1e-5.
func TestExportsRunInONNXRuntime(t *testing.T) {
	modules, node := onnxRuntime(t)
	dir := t.TempDir()
	for name, e := range exports(t) {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(name, "/", "_")+".onnx")
			if err := e.Model.Save(path); err != nil {
				t.Fatal(err)
			}
			got := runORT(t, modules, node, path, e.Inputs)
			for _, want := range e.Outputs {
				g, ok := got[want.Name]
				if !ok {
					t.Fatalf("ONNX Runtime gave no output %q (it gave %d)", want.Name, len(got))
				}
				compare(t, want.Name, g.Dims, g.Data, want)
			}
		})
	}
}

// TestExportsReimport: every export written as a backend-test directory
// passes backprop's own importer (backprop onnx test), and the batch axis
// is open: the generator export runs on another batch size.
//
// With BACKPROP_ONNX_EXPORT_DIR set, the directories are written there and
// kept (scripts/onnx/check_exports.sh runs ONNX's checker over them).
func TestExportsReimport(t *testing.T) {
	dir := os.Getenv("BACKPROP_ONNX_EXPORT_DIR")
	if dir == "" {
		dir = t.TempDir()
	}
	for name, e := range exports(t) {
		d := filepath.Join(dir, strings.ReplaceAll(name, "/", "_"))
		if err := WriteTestData(d, e); err != nil {
			t.Fatal(err)
		}
		for _, r := range backendtest.RunDir(d, backendtest.Options{RTol: 1e-5, ATol: 1e-6}) {
			if r.Status != backendtest.Passed {
				t.Errorf("%s: %s %s", name, r.Status, r.Detail)
			}
		}
	}
	n, _ := New(Generator, 1)
	e, err := ExportNet(n, SampleInput(Generator, 2, 1))
	if err != nil {
		t.Fatal(err)
	}
	x := onnx.FromTensor("input", SampleInput(Generator, 5, 2))
	got, err := backendtest.Run[float32](e.Model, []*onnx.Tensor{x})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got[0].Shape) != "[5 1 28 28]" {
		t.Errorf("generator on 5 samples: output shape %v", got[0].Shape)
	}
}

// TestLoadRefusesWrongKind: asking a checkpoint for a network it does not
// hold names the file and the network.
func TestLoadRefusesWrongKind(t *testing.T) {
	_, err := Load("testdata/none.safetensors", Generator)
	if err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	_, err = New("vae", 1)
	if err == nil || !strings.Contains(err.Error(), `unknown model "vae"`) {
		t.Errorf("unknown kind: %v", err)
	}
}
