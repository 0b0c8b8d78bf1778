package ops_test

import (
	"encoding/json"
	"math"
	"os"
	"testing"

	"github.com/backprop-dev/backprop/autograd"
	"github.com/backprop-dev/backprop/ops"
	"github.com/backprop-dev/backprop/tensor"
)

// TestONNXOpsAgainstPyTorch runs the ops that serve imported ONNX graphs
// (broadcasting arithmetic, exp, log, transpose, batched matmul, pad and
// crop) on PyTorch's inputs (testdata/onnx_ops.py, torch 1.13) and compares
// the output and the gradient of sum(out ⊙ g) for every input, in float64
// to 1e-12.
func TestONNXOpsAgainstPyTorch(t *testing.T) {
	type arr struct {
		Shape []int     `json:"shape"`
		Data  []float64 `json:"data"`
	}
	var ref struct {
		Cases []struct {
			Op   string `json:"op"`
			Args struct {
				Perm   []int   `json:"perm"`
				Before []int   `json:"before"`
				After  []int   `json:"after"`
				Value  float64 `json:"value"`
			} `json:"args"`
			Inputs []arr `json:"inputs"`
			Out    arr   `json:"out"`
			Gout   arr   `json:"gout"`
			Grads  []arr `json:"grads"`
		} `json:"cases"`
	}
	b, err := os.ReadFile("testdata/onnx_ops.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &ref); err != nil {
		t.Fatal(err)
	}
	if len(ref.Cases) < 30 {
		t.Fatalf("%d cases in testdata/onnx_ops.json", len(ref.Cases))
	}
	check := func(t *testing.T, what string, got *tensor.Tensor[float64], want arr) {
		t.Helper()
		if !tensor.SameShape(got.Shape(), want.Shape) {
			t.Fatalf("%s: shape %v, want %v", what, got.Shape(), want.Shape)
		}
		for i, w := range want.Data {
			if g := got.Data()[i]; math.Abs(g-w) > 1e-12*(1+math.Abs(w)) {
				t.Fatalf("%s: element %d is %.17g, want %.17g", what, i, g, w)
			}
		}
	}
	for i, c := range ref.Cases {
		t.Run(c.Op, func(t *testing.T) {
			var in []*autograd.Var[float64]
			for _, a := range c.Inputs {
				in = append(in, autograd.Leaf("x", tensor.MustFromSlice(a.Data, a.Shape...), true))
			}
			var y *autograd.Var[float64]
			var err error
			switch c.Op {
			case "add", "sub", "mul", "div":
				y, err = ops.Broadcast("y", ops.BinaryKind(c.Op), in[0], in[1])
			case "exp":
				y, err = ops.Exp("y", in[0])
			case "log":
				y, err = ops.Log("y", in[0])
			case "transpose":
				y, err = ops.Transpose("y", in[0], c.Args.Perm)
			case "batch_matmul":
				y, err = ops.BatchMatMul("y", in[0], in[1])
			case "pad":
				y, err = ops.Pad("y", in[0], c.Args.Before, c.Args.After, c.Args.Value)
			default:
				t.Fatalf("case %d: unknown op %q", i, c.Op)
			}
			if err != nil {
				t.Fatalf("case %d: %v", i, err)
			}
			check(t, "output", y.Value, c.Out)
			if err := autograd.BackwardFrom(y, tensor.MustFromSlice(c.Gout.Data, c.Gout.Shape...)); err != nil {
				t.Fatal(err)
			}
			for k, g := range c.Grads {
				check(t, "gradient of input "+string(rune('0'+k)), in[k].Grad, g)
			}
		})
	}
}

// TestBroadcastShapeError names both shapes and the axis that differs.
func TestBroadcastShapeError(t *testing.T) {
	a := autograd.Leaf("a", tensor.New[float64](2, 3), false)
	b := autograd.Leaf("b", tensor.New[float64](4), false)
	_, err := ops.Broadcast("y", ops.BinAdd, a, b)
	if err == nil || err.Error() != "y: add of first operand a and second operand b: shapes [2×3] and [4] do not broadcast: axis 1 (from the end) has extents 3 and 4, neither 1" {
		t.Fatalf("error %v", err)
	}
}
