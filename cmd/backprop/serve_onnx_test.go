package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/backprop-dev/backprop/solve"
)

// TestServeONNXProblems: `serve --spec MODEL.onnx` puts the imported
// model in the first tab with its input, objective and labels as solve
// takes them; the ONNX flags without a .onnx --spec, or a .onnx --spec
// without what it needs, are usage errors before the server starts.
func TestServeONNXProblems(t *testing.T) {
	dir := filepath.Join("..", "..", "onnx", "testdata", "solve")
	model, input := filepath.Join(dir, "mlp.onnx"), filepath.Join(dir, "mlp_input.json")
	problems, err := serveProblems(model, onnxSpecFlags{inputs: []string{input}, objective: "cross_entropy", label: "2"})
	if err != nil {
		t.Fatal(err)
	}
	m := problems[0].ONNX
	if problems[0].ID != "main" || problems[0].Spec != nil || m == nil {
		t.Fatalf("first tab %+v", problems[0])
	}
	if m.Path != model || len(m.Options.Inputs) != 1 || m.Options.Inputs[0] != input || m.Options.Objective != solve.ObjectiveCrossEntropy || len(m.Options.Labels) != 1 || m.Options.Labels[0] != 2 {
		t.Errorf("the model's options: %+v", m)
	}
	if len(problems) < 2 || problems[1].ID != "autoencoder" {
		t.Errorf("the other tabs are missing: %d problems", len(problems))
	}

	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"serve", "--spec", model}, "needs --input FILE"},
		{[]string{"serve", "--spec", model, "--input", input, "--objective", "cross_entropy"}, "needs --label K"},
		{[]string{"serve", "--spec", model, "--input", input, "--objective", "max"}, "--objective: want sum or cross_entropy"},
		{[]string{"serve", "--input", input}, "apply to a .onnx --spec"},
		{[]string{"serve", "--label", "1"}, "apply to a .onnx --spec"},
	} {
		status, _, stderr := runCLI(t, c.args...)
		if status != 2 || !strings.Contains(stderr, c.want) {
			t.Errorf("%q: status %d, %q; want status 2 and %q", c.args, status, stderr, c.want)
		}
	}
	// a model that does not solve for its input is refused naming the file
	status, _, stderr := runCLI(t, "serve", "--addr", "127.0.0.1:0", "--spec", model, "--input", input)
	if status == 0 || !strings.Contains(stderr, "mlp.onnx") || !strings.Contains(stderr, "not a loss") {
		t.Errorf("serve of the MLP without an objective: status %d, %q", status, stderr)
	}
}
