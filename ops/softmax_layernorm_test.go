package ops

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"testing"

	"github.com/backprop-dev/backprop/autograd"
	"github.com/backprop-dev/backprop/tensor"
)

type normCase struct {
	Name       string    `json:"name"`
	Op         string    `json:"op"`
	Dtype      string    `json:"dtype"`
	Axis       int       `json:"axis"`
	Eps        float64   `json:"eps"`
	Mean       bool      `json:"mean"`
	Shape      []int     `json:"shape"`
	X          []float64 `json:"x"`
	Weight     []float64 `json:"weight"`
	Bias       []float64 `json:"bias"`
	Labels     []int     `json:"labels"`
	Gout       []float64 `json:"gout"`
	Y          []float64 `json:"y"`
	GradX      []float64 `json:"grad_x"`
	GradWeight []float64 `json:"grad_weight"`
	GradBias   []float64 `json:"grad_bias"`
}

func leafOf[T tensor.Float](name string, v []float64, shape ...int) *autograd.Var[T] {
	if v == nil {
		return nil
	}
	d := make([]T, len(v))
	for i, x := range v {
		d[i] = T(x)
	}
	return autograd.Leaf(name, tensor.MustFromSlice(d, shape...), true)
}

func float64s[T tensor.Float](t *tensor.Tensor[T]) []float64 {
	out := make([]float64, t.Len())
	for i, v := range t.Data() {
		out[i] = float64(v)
	}
	return out
}

// normRun runs a case in T and returns the output and the gradients of
// x, the weight and the bias (nil where absent).
func normRun[T tensor.Float](c normCase) (y, gx, gw, gb []float64, err error) {
	x := leafOf[T]("x", c.X, c.Shape...)
	k := c.Shape[len(c.Shape)-1]
	w, b := leafOf[T]("w", c.Weight, k), leafOf[T]("b", c.Bias, k)
	var out *autograd.Var[T]
	switch c.Op {
	case "softmax":
		out, err = Softmax("y", x, c.Axis)
	case "log_softmax":
		out, err = LogSoftmax("y", x, c.Axis)
	case "layer_norm":
		out, err = LayerNorm("y", x, w, b, c.Eps)
	case "cross_entropy":
		out, err = CrossEntropyReduce("y", x, c.Labels, c.Mean)
	default:
		err = fmt.Errorf("unknown op %s", c.Op)
	}
	if err != nil {
		return
	}
	if c.Gout != nil {
		g := leafOf[T]("g", c.Gout, out.Value.Shape()...)
		err = autograd.BackwardFrom(out, g.Value)
	} else {
		err = autograd.Backward(out)
	}
	if err != nil {
		return
	}
	y, gx = float64s(out.Value), float64s(x.Grad)
	if w != nil {
		gw = float64s(w.Grad)
	}
	if b != nil {
		gb = float64s(b.Grad)
	}
	return
}

// TestSoftmaxLayerNormPyTorch compares softmax, log-softmax, layer norm and
// cross-entropy with sum reduction (and one sample's (K) logits) with
// PyTorch (testdata/softmax_layernorm.py): outputs and every gradient,
// float64 to 1e-12 and float32 to 1e-5 of each tensor's largest magnitude,
// including logits whose exponentials overflow and rows offset by 1000.
func TestSoftmaxLayerNormPyTorch(t *testing.T) {
	b, err := os.ReadFile("testdata/softmax_layernorm.json")
	if err != nil {
		t.Fatal(err)
	}
	var ref struct {
		Cases []normCase `json:"cases"`
	}
	if err := json.Unmarshal(b, &ref); err != nil {
		t.Fatal(err)
	}
	ops := map[string]int{}
	for _, c := range ref.Cases {
		ops[c.Op]++
		t.Run(c.Name, func(t *testing.T) {
			run, tol := normRun[float64], 1e-12
			if c.Dtype == "float32" {
				run, tol = normRun[float32], 1e-5
			}
			y, gx, gw, gb, err := run(c)
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range []struct {
				what      string
				got, want []float64
			}{{"output", y, c.Y}, {"∂/∂x", gx, c.GradX}, {"∂/∂weight", gw, c.GradWeight}, {"∂/∂bias", gb, c.GradBias}} {
				if len(p.got) != len(p.want) {
					t.Fatalf("%s: %d values, PyTorch %d", p.what, len(p.got), len(p.want))
				}
				scale := 1e-3
				for _, v := range p.want {
					scale = math.Max(scale, math.Abs(v))
				}
				for i, v := range p.got {
					if d := math.Abs(v - p.want[i]); !(d <= tol*scale) {
						t.Fatalf("%s[%d] = %.17g, PyTorch %.17g (difference %.3g, largest magnitude %.3g)", p.what, i, v, p.want[i], d, scale)
					}
				}
			}
		})
	}
	for _, op := range []string{"softmax", "log_softmax", "layer_norm", "cross_entropy"} {
		if ops[op] < 3 {
			t.Errorf("only %d %s cases", ops[op], op)
		}
	}
}
