package solve

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"strings"
	"testing"

	"github.com/backprop-dev/backprop/onnx"
)

const (
	mlpModel = "../onnx/testdata/solve/mlp.onnx"
	mlpInput = "../onnx/testdata/solve/mlp_input.json"
)

// torchMLP reads PyTorch's numbers for the MLP (scripts/pytorch/export_mlp.py).
func torchMLP(t *testing.T) map[string]struct {
	Logits    [][]float64                `json:"logits"`
	J         float64                    `json:"J"`
	Gradients map[string]json.RawMessage `json:"gradients"`
} {
	t.Helper()
	b, err := os.ReadFile("../onnx/testdata/solve/mlp_torch.json")
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		Objectives map[string]struct {
			Logits    [][]float64                `json:"logits"`
			J         float64                    `json:"J"`
			Gradients map[string]json.RawMessage `json:"gradients"`
		} `json:"objectives"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	return v.Objectives
}

// flat flattens a JSON nested list of numbers.
func flat(t *testing.T, raw []byte) []float64 {
	t.Helper()
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	var out []float64
	var walk func(any)
	walk = func(x any) {
		switch x := x.(type) {
		case float64:
			out = append(out, x)
		case []any:
			for _, e := range x {
				walk(e)
			}
		}
	}
	walk(v)
	return out
}

func close9(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Abs(a[i]-b[i]) > 1e-9 {
			return false
		}
	}
	return true
}

// TestSolveONNXMatchesPyTorch: the worked solution of a 2-layer MLP
// exported by torch.onnx.export, with the sum of its logits and with the
// cross-entropy against label 2 as objectives, has PyTorch's logits, J and
// gradients (float64, to 1e-9), in the JSON and in the text's answers.
func TestSolveONNXMatchesPyTorch(t *testing.T) {
	for obj, want := range torchMLP(t) {
		opt := ONNXOptions{Inputs: []string{mlpInput}, Objective: obj}
		if obj == ObjectiveCrossEntropy {
			opt.Labels = []int{2}
		}
		sol, err := SolveONNX(mlpModel, opt)
		if err != nil {
			t.Fatalf("%s: %v", obj, err)
		}
		var js bytes.Buffer
		if err := sol.WriteJSON(&js); err != nil {
			t.Fatal(err)
		}
		var got struct {
			Forward   map[string]json.RawMessage `json:"forward"`
			Gradients map[string]json.RawMessage `json:"gradients"`
		}
		if err := json.Unmarshal(js.Bytes(), &got); err != nil {
			t.Fatalf("%s: %v\n%s", obj, err, js.String())
		}
		if g := flat(t, got.Forward["logits"]); !close9(g, append([]float64(nil), want.Logits[0]...)) {
			t.Errorf("%s: logits %v, PyTorch %v", obj, g, want.Logits)
		}
		if g := flat(t, got.Forward["J"]); !close9(g, []float64{want.J}) {
			t.Errorf("%s: J %v, PyTorch %v", obj, g, want.J)
		}
		if len(got.Gradients) != len(want.Gradients) {
			t.Errorf("%s: %d gradients, PyTorch %d", obj, len(got.Gradients), len(want.Gradients))
		}
		for name, w := range want.Gradients {
			if g, wv := flat(t, got.Gradients[name]), flat(t, w); !close9(g, wv) {
				t.Errorf("%s: ∂J/∂%s = %v, PyTorch %v", obj, name, g, wv)
			}
		}
		for _, detail := range []string{"handout", "full"} {
			sol.detail = detail
			var text, md bytes.Buffer
			if err := sol.WriteText(&text); err != nil {
				t.Fatal(err)
			}
			if err := sol.WriteMarkdown(&md); err != nil {
				t.Fatal(err)
			}
			for _, s := range []string{"mlp.onnx", "relu1 = ReLU(gemm1)", "∂J/∂layer0.weight", "relu1 is /1/Relu_output_0", "precision: float64"} {
				if !strings.Contains(text.String(), s) {
					t.Errorf("%s, %s: the text lacks %q", obj, detail, s)
				}
			}
			if !strings.Contains(md.String(), "layer2.bias") {
				t.Errorf("%s, %s: the Markdown lacks layer2.bias", obj, detail)
			}
		}
	}
}

// TestSolveONNXPyTorchExports: the committed torch.onnx.export models the
// trace can show (the auto-encoder; the DCGAN generator with batch norm in
// inference mode) solve with their forward output equal to PyTorch's; a
// model with an op the trace cannot show (the LeNet's Pad) is an error
// naming it, not a wrong page.
func TestSolveONNXPyTorchExports(t *testing.T) {
	for _, d := range []string{"autoencoder", "dcgan_generator"} {
		dir := "../onnx/testdata/pytorch/" + d
		sol, err := SolveONNX(dir+"/model.onnx", ONNXOptions{Inputs: []string{dir + "/test_data_set_0/input_0.pb"}, Objective: ObjectiveSum, Options: Options{MaxElements: -1}})
		if err != nil {
			t.Fatalf("%s: %v", d, err)
		}
		want, err := onnx.ReadTensorFile(dir + "/test_data_set_0/output_0.pb")
		if err != nil {
			t.Fatal(err)
		}
		got := sol.Forward[0].Value.Data
		if sol.Forward[0].Name != "output" || len(got) != len(want.Floats) {
			t.Fatalf("%s: forward %s with %d values, PyTorch's output %d", d, sol.Forward[0].Name, len(got), len(want.Floats))
		}
		for i := range got {
			if math.Abs(got[i]-want.Floats[i]) > 1e-5 {
				t.Fatalf("%s: output[%d] = %g, PyTorch %g", d, i, got[i], want.Floats[i])
			}
		}
		var text bytes.Buffer
		if err := sol.WriteText(&text); err != nil || !strings.Contains(text.String(), "Backward pass") {
			t.Errorf("%s: text %v", d, err)
		}
	}
	dir := "../onnx/testdata/pytorch/lenet"
	_, err := SolveONNX(dir+"/model.onnx", ONNXOptions{Inputs: []string{dir + "/test_data_set_0/input_0.pb"}, Objective: ObjectiveSum})
	if err == nil || !strings.Contains(err.Error(), "cannot show") || !strings.Contains(err.Error(), "pad") {
		t.Errorf("lenet: %v", err)
	}
}

// TestSolveONNXRefusals: a missing input, an output that is not a loss
// without --objective, labels that do not fit, a ragged JSON input.
func TestSolveONNXRefusals(t *testing.T) {
	ragged := t.TempDir() + "/r.json"
	if err := os.WriteFile(ragged, []byte("[[1, 2, 3], [4, 5]]"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		opt  ONNXOptions
		want string
	}{
		{ONNXOptions{}, "takes 1 input(s) (x)"},
		{ONNXOptions{Inputs: []string{mlpInput}}, "not a loss: give --objective sum or --objective cross_entropy"},
		{ONNXOptions{Inputs: []string{mlpInput}, Objective: ObjectiveCrossEntropy}, "0 label(s) for the 1 row(s)"},
		{ONNXOptions{Inputs: []string{mlpInput}, Objective: ObjectiveCrossEntropy, Labels: []int{3}}, "from 0 to 2"},
		{ONNXOptions{Inputs: []string{mlpInput}, Objective: "mse"}, "--objective"},
		{ONNXOptions{Inputs: []string{ragged}, Objective: ObjectiveSum}, "ragged"},
	} {
		_, err := SolveONNX(mlpModel, c.opt)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want %q", c.opt, err, c.want)
		}
	}
}
