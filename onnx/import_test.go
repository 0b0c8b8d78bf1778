package onnx_test

import (
	"strings"
	"testing"

	"github.com/backprop-dev/backprop/onnx"
)

func floats(name string, shape []int, v ...float64) *onnx.Tensor {
	return &onnx.Tensor{Name: name, Type: onnx.Float, Shape: shape, Floats: v}
}

// roundTrip serializes and parses the model, as a file would.
func roundTrip(t *testing.T, b *onnx.Builder) *onnx.Model {
	t.Helper()
	m, err := b.Model()
	if err != nil {
		t.Fatal(err)
	}
	data, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	m, err = onnx.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestUnsupportedNamesNodeOperatorAttribute: what the engine does not
// implement is refused with the node, the operator and the attribute (or
// input) at fault, never computed some other way.
func TestUnsupportedNamesNodeOperatorAttribute(t *testing.T) {
	x := floats("x", []int{1, 2, 4, 4}, make([]float64, 32)...)
	w := floats("w", []int{2, 1, 3, 3}, make([]float64, 18)...)
	cases := []struct {
		name  string
		build func(b *onnx.Builder)
		want  string
	}{
		{"grouped convolution", func(b *onnx.Builder) {
			b.Initializer(w)
			b.Node("Conv", []string{"x", "w"}, []string{"y"}, onnx.Attr{Name: "group", Value: 2})
		}, `node "y" (Conv): group: not supported: group 2`},
		{"dilated pooling", func(b *onnx.Builder) {
			b.Node("MaxPool", []string{"x"}, []string{"y"}, onnx.Attr{Name: "kernel_shape", Value: []int{2, 2}}, onnx.Attr{Name: "dilations", Value: []int{2, 2}})
		}, `node "y" (MaxPool): dilations: not supported: dilations [2 2]`},
		{"unknown attribute", func(b *onnx.Builder) {
			b.Node("Relu", []string{"x"}, []string{"y"}, onnx.Attr{Name: "slope", Value: 0.5})
		}, `node "y" (Relu): slope: not supported: attribute not implemented for Relu`},
		{"unknown operator", func(b *onnx.Builder) {
			b.Node("Elu", []string{"x"}, []string{"y"})
		}, `node "y" (Elu): not supported: operator not implemented`},
		{"training batch norm", func(b *onnx.Builder) {
			for _, n := range []string{"g", "b", "m", "v"} {
				b.Initializer(floats(n, []int{2}, 1, 1))
			}
			b.Node("BatchNormalization", []string{"x", "g", "b", "m", "v"}, []string{"y"}, onnx.Attr{Name: "training_mode", Value: 1})
		}, `node "y" (BatchNormalization): training_mode: not supported`},
		{"max pool indices", func(b *onnx.Builder) {
			b.Node("MaxPool", []string{"x"}, []string{"y", "i"}, onnx.Attr{Name: "kernel_shape", Value: []int{2, 2}})
		}, `node "y" (MaxPool): output 1 (Indices): not supported`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			x := *x
			b := onnx.NewBuilder("t")
			b.Input("x", onnx.Float, x.Shape)
			c.build(b)
			b.Output("y", onnx.Float, nil)
			m := roundTrip(t, b)
			_, err := onnx.Import[float64](m, []*onnx.Tensor{&x}, onnx.Options{})
			if err == nil || !onnx.IsUnsupported(err) || !strings.HasPrefix(err.Error(), c.want) {
				t.Fatalf("error %v\nwant one starting %q", err, c.want)
			}
		})
	}
}

// TestOpsetTooNew: an operator set newer than the importer knows may have
// changed an operator's meaning, so the model is refused.
func TestOpsetTooNew(t *testing.T) {
	b := onnx.NewBuilder("t")
	b.SetOpset(onnx.MaxOpset + 1)
	b.Input("x", onnx.Float, []int{2})
	b.Node("Relu", []string{"x"}, []string{"y"})
	b.Output("y", onnx.Float, []int{2})
	m := roundTrip(t, b)
	_, err := onnx.Import[float64](m, []*onnx.Tensor{floats("x", []int{2}, 1, 2)}, onnx.Options{})
	if err == nil || !strings.Contains(err.Error(), "opset_import: not supported: operator set 23") {
		t.Fatalf("error %v", err)
	}
}

// TestImportBackward: an imported graph is the engine's own, so Backward
// reaches its initializers. y = sum(relu(x·W + b)) with hand-checked
// numbers.
func TestImportBackward(t *testing.T) {
	b := onnx.NewBuilder("t")
	b.Input("x", onnx.Float, []int{-1, 2})
	b.Initializer(floats("W", []int{2, 2}, 1, -1, 2, 0.5))
	b.Initializer(floats("b", []int{2}, 0.5, -3))
	b.Node("Gemm", []string{"x", "W", "b"}, []string{"h"})
	b.Node("Relu", []string{"h"}, []string{"y"})
	b.Output("y", onnx.Float, []int{-1, 2})
	m := roundTrip(t, b)
	g, err := onnx.Import[float64](m, []*onnx.Tensor{floats("x", []int{1, 2}, 1, 2)}, onnx.Options{})
	if err != nil {
		t.Fatal(err)
	}
	// h = (1·1 + 2·2 + 0.5, 1·(−1) + 2·0.5 − 3) = (5.5, −3)
	y := g.Outputs[0].Var
	if got := y.Value.Data(); got[0] != 5.5 || got[1] != 0 {
		t.Fatalf("y = %v, want [5.5 0]", got)
	}
	if len(g.Params) != 2 || g.Params[0].Name != "W" {
		t.Fatalf("params %v", g.Params)
	}
}

// TestTensorRoundTrip writes and reads tensors of each element type the
// exporter writes.
func TestTensorRoundTrip(t *testing.T) {
	for _, in := range []*onnx.Tensor{
		floats("f", []int{2, 2}, 1.5, -2, 3.25, 1e-30),
		{Name: "d", Type: onnx.Double, Shape: []int{3}, Floats: []float64{0.1, 0.2, 0.3}},
		{Name: "i", Type: onnx.Int64, Shape: []int{2}, Ints: []int64{-1, 1 << 40}},
		{Name: "b", Type: onnx.Bool, Shape: []int{}, Ints: []int64{1}},
	} {
		data, err := onnx.MarshalTensor(in)
		if err != nil {
			t.Fatal(err)
		}
		out, err := onnx.ParseTensor(data)
		if err != nil {
			t.Fatal(err)
		}
		if out.Name != in.Name || out.Type != in.Type || len(out.Shape) != len(in.Shape) || len(out.Floats) != len(in.Floats) || len(out.Ints) != len(in.Ints) {
			t.Fatalf("%+v became %+v", in, out)
		}
		for i := range in.Floats {
			if want := in.Floats[i]; in.Type == onnx.Float && out.Floats[i] != float64(float32(want)) || in.Type == onnx.Double && out.Floats[i] != want {
				t.Errorf("%s[%d] = %g, want %g", in.Name, i, out.Floats[i], want)
			}
		}
		for i := range in.Ints {
			if out.Ints[i] != in.Ints[i] {
				t.Errorf("%s[%d] = %d, want %d", in.Name, i, out.Ints[i], in.Ints[i])
			}
		}
	}
}
