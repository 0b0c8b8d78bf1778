package backendtest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/backprop-dev/backprop/internal/testenv"
	"github.com/backprop-dev/backprop/onnx"
)

// suiteRoot is where Debian's libonnx-testdata installs ONNX's backend-test
// data (ONNX 1.12.0).
const suiteRoot = "/usr/share/libonnx-testdata/data"

// minPassed is how many cases of each suite passed when the importer was
// last extended; fewer is a regression.
var minPassed = map[string]int{"node": 138, "pytorch-converted": 39, "pytorch-operator": 15}

// TestONNXSuites runs ONNX's own backend tests (libonnx-testdata) through
// the importer: no case may fail, a case of a model whose operators are all
// supported may only be refused for a named attribute, input, output or
// element type, and the pass counts must not drop.
func TestONNXSuites(t *testing.T) {
	if _, err := os.Stat(filepath.Join(suiteRoot, "node")); err != nil {
		testenv.Missing(t, "onnx-testdata", "ONNX's backend-test data not found in "+suiteRoot+" (apt-get install libonnx-testdata)")
	}
	for suite, want := range minPassed {
		t.Run(suite, func(t *testing.T) {
			dirs, err := FindDirs([]string{filepath.Join(suiteRoot, suite)})
			if err != nil {
				t.Fatal(err)
			}
			var sum Summary
			for _, d := range dirs {
				m, err := onnx.Load(filepath.Join(d, "model.onnx"))
				if err != nil {
					t.Errorf("%s: %v", d, err)
					continue
				}
				supported := true
				for _, op := range m.Operators() {
					supported = supported && onnx.OperatorSince(op) > 0
				}
				for _, r := range RunDir(d, Options{}) {
					sum.Add(r)
					switch {
					case r.Status == Failed:
						t.Errorf("%s: %s", r.Name(), r.Detail)
					case r.Status == Unsupported && supported && !strings.Contains(r.Detail, "): ") && !strings.HasPrefix(r.Detail, "model: ") && !strings.HasPrefix(r.Detail, "tensor: "):
						t.Errorf("%s: refused without naming an attribute: %s", r.Name(), r.Detail)
					}
				}
			}
			t.Logf("%s: %s", suite, sum)
			if sum.Passed < want {
				t.Errorf("%s: %d passed, want at least %d", suite, sum.Passed, want)
			}
		})
	}
}

// TestCompare follows numpy.testing.assert_allclose: rtol relative to the
// expected value plus atol, NaN equal to NaN, infinities only to themselves.
func TestCompare(t *testing.T) {
	want := &onnx.Tensor{Type: onnx.Float, Shape: []int{4}, Floats: []float64{1000, 0, nan(), inf()}}
	ok := &onnx.Tensor{Type: onnx.Float, Shape: []int{4}, Floats: []float64{1000.9, 5e-8, nan(), inf()}}
	if err := Compare(ok, want, DefaultRTol, DefaultATol); err != nil {
		t.Errorf("within tolerance: %v", err)
	}
	bad := &onnx.Tensor{Type: onnx.Float, Shape: []int{4}, Floats: []float64{1001.1, 0, nan(), 1e308}}
	err := Compare(bad, want, DefaultRTol, DefaultATol)
	if err == nil || !strings.Contains(err.Error(), "2 of 4 elements differ") || !strings.Contains(err.Error(), "element [0] is 1001.1, want 1000") {
		t.Errorf("beyond tolerance: %v", err)
	}
	if err := Compare(&onnx.Tensor{Type: onnx.Float, Shape: []int{2, 2}, Floats: make([]float64, 4)}, want, 1, 1); err == nil || !strings.Contains(err.Error(), "shape") {
		t.Errorf("shape mismatch: %v", err)
	}
}

func nan() float64 { var z float64; return z / z }
func inf() float64 { var z float64; return 1 / z }

// TestPyTorchExports runs models the project never produced: small
// networks exported by PyTorch's torch.onnx.export (scripts/onnx/export_torch.py,
// torch 1.13, opset 13) with PyTorch's outputs, committed under
// onnx/testdata/pytorch. Every one must pass.
func TestPyTorchExports(t *testing.T) {
	dirs, err := FindDirs([]string{"../testdata/pytorch"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"autoencoder", "dcgan_discriminator", "dcgan_generator", "lenet"}
	var got []string
	for _, d := range dirs {
		got = append(got, filepath.Base(d))
		for _, r := range RunDir(d, Options{}) {
			if r.Status != Passed {
				t.Errorf("%s: %s %s", r.Name(), r.Status, r.Detail)
			}
		}
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("test directories %v, want %v", got, want)
	}
}
