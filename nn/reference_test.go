package nn

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"testing"

	"github.com/backprop-dev/backprop/autograd"
	"github.com/backprop-dev/backprop/tensor"
)

// refTensor is a tensor as testdata/reference.py writes it.
type refTensor struct {
	Shape []int     `json:"shape"`
	Dtype string    `json:"dtype"`
	Data  []float64 `json:"data"`
}

func (r refTensor) tensor() *tensor.Tensor[float64] {
	return tensor.MustFromSlice(append([]float64(nil), r.Data...), r.Shape...)
}

// namedTensors is a JSON object of tensors with its key order kept, as a
// PyTorch state_dict is ordered.
type namedTensors struct {
	Names   []string
	Tensors []refTensor
}

// UnmarshalJSON reads the object token by token to keep the key order.
func (n *namedTensors) UnmarshalJSON(b []byte) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	if _, err := dec.Token(); err != nil { // {
		return err
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		var t refTensor
		if err := dec.Decode(&t); err != nil {
			return err
		}
		n.Names = append(n.Names, tok.(string))
		n.Tensors = append(n.Tensors, t)
	}
	_, err := dec.Token() // }
	return err
}

// stateDict converts the entries to a state dict, marking int64 entries.
func (n namedTensors) stateDict() []StateEntry[float64] {
	sd := make([]StateEntry[float64], len(n.Names))
	for i, name := range n.Names {
		sd[i] = StateEntry[float64]{Name: name, Tensor: n.Tensors[i].tensor(), Int: n.Tensors[i].Dtype == "int64"}
	}
	return sd
}

type refStep struct {
	Training   bool         `json:"training"`
	X          refTensor    `json:"x"`
	Gout       refTensor    `json:"gout"`
	Y          refTensor    `json:"y"`
	GradX      refTensor    `json:"grad_x"`
	Grads      namedTensors `json:"grads"`
	StateAfter namedTensors `json:"state_after"`
}

type refCase struct {
	Name        string       `json:"name"`
	StateBefore namedTensors `json:"state_before"`
	Steps       []refStep    `json:"steps"`
}

func loadReference(t *testing.T) []refCase {
	t.Helper()
	b, err := os.ReadFile("testdata/reference.json")
	if err != nil {
		t.Fatal(err)
	}
	var ref struct {
		Cases []refCase `json:"cases"`
	}
	if err := json.Unmarshal(b, &ref); err != nil {
		t.Fatal(err)
	}
	return ref.Cases
}

// referenceModel builds, with zero parameters, the model reference.py uses
// for the named case.
func referenceModel(name string) Module[float64] {
	type M = Module[float64]
	switch name {
	case "linear":
		return NewLinear[float64](3, 4, true, nil)
	case "linear_nobias_vector":
		return NewLinear[float64](4, 2, false, nil)
	case "linear_3d":
		return NewLinear[float64](3, 2, true, nil)
	case "conv2d":
		return NewConv2d[float64](2, 3, 3, 2, 1, true, nil)
	case "conv2d_nobias":
		return NewConv2d[float64](3, 2, 2, 1, 0, false, nil)
	case "conv2d_unbatched":
		return NewConv2d[float64](2, 2, 3, 1, 1, true, nil)
	case "conv_transpose2d":
		return NewConvTranspose2d[float64](3, 2, 4, 2, 1, 0, true, nil)
	case "conv_transpose2d_outpad":
		return NewConvTranspose2d[float64](2, 3, 3, 2, 1, 1, true, nil)
	case "conv_transpose2d_nobias":
		return NewConvTranspose2d[float64](2, 2, 3, 1, 0, 0, false, nil)
	case "batchnorm1d":
		return NewBatchNorm1d[float64](4)
	case "batchnorm1d_3d":
		return NewBatchNorm1d[float64](3)
	case "batchnorm2d":
		return NewBatchNorm2d[float64](3)
	case "relu":
		return NewReLU[float64]()
	case "leaky_relu":
		return NewLeakyReLU[float64](0.2)
	case "tanh":
		return NewTanh[float64]()
	case "sigmoid":
		return NewSigmoid[float64]()
	case "flatten":
		return NewFlatten[float64]()
	case "unflatten":
		return NewUnflatten[float64](3, 2, 2)
	case "dropout_eval":
		return NewDropout[float64](0.4, rand.New(rand.NewPCG(1, 2)))
	case "discriminator":
		return NewSequential[float64](
			NewConv2d[float64](1, 4, 3, 2, 1, false, nil),
			NewBatchNorm2d[float64](4),
			NewLeakyReLU[float64](0.2),
			NewFlatten[float64](),
			NewLinear[float64](4*3*3, 1, true, nil),
			NewSigmoid[float64](),
		)
	case "generator":
		return NewSequential[float64](
			NewLinear[float64](5, 8*2*2, true, nil),
			NewBatchNorm1d[float64](32),
			NewReLU[float64](),
			NewUnflatten[float64](8, 2, 2),
			NewConvTranspose2d[float64](8, 4, 4, 2, 1, 0, false, nil),
			NewBatchNorm2d[float64](4),
			NewReLU[float64](),
			NewConvTranspose2d[float64](4, 1, 3, 2, 1, 1, true, nil),
			NewTanh[float64](),
		)
	case "autoencoder":
		return NewNamedSequential(
			Child[float64]{"encoder", NewSequential[float64](
				NewConv2d[float64](1, 2, 3, 2, 1, true, nil),
				NewBatchNorm2d[float64](2),
				NewReLU[float64](),
				NewFlatten[float64](),
				NewLinear[float64](2*2*2, 3, true, nil),
			)},
			Child[float64]{"decoder", NewSequential[float64](
				NewLinear[float64](3, 2*2*2, true, nil),
				NewUnflatten[float64](2, 2, 2),
				NewConvTranspose2d[float64](2, 1, 3, 2, 1, 1, true, nil),
				NewSigmoid[float64](),
			)},
		)
	}
	var m M
	return m
}

// closeTo compares got with the reference to 1e-10, relative for values
// above 1 in magnitude.
func closeTo(t *testing.T, what string, got *tensor.Tensor[float64], want refTensor) {
	t.Helper()
	if got == nil {
		t.Fatalf("%s: no value, want shape %v", what, want.Shape)
	}
	if !tensor.SameShape(got.Shape(), want.Shape) {
		t.Fatalf("%s: shape %v, PyTorch %v", what, got.Shape(), want.Shape)
	}
	for i, w := range want.Data {
		g := got.Data()[i]
		if math.Abs(g-w) > 1e-10*math.Max(1, math.Abs(w)) {
			t.Fatalf("%s element %v: got %.17g, PyTorch %.17g (diff %.3g)", what, tensor.Index(want.Shape, i), g, w, g-w)
		}
	}
}

// TestReferencePyTorch runs every layer and model of
// testdata/reference.json and compares outputs, input and parameter
// gradients, and the state dict after every step (BatchNorm's running
// statistics and num_batches_tracked) with PyTorch's, to 1e-10. It also
// checks that the state_dict names, their order, shapes and int64 flags
// are PyTorch's, for single layers and for Sequential models with indexed
// and named children.
func TestReferencePyTorch(t *testing.T) {
	cases := loadReference(t)
	if len(cases) < 20 {
		t.Fatalf("only %d reference cases", len(cases))
	}
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			m := referenceModel(c.Name)
			if m == nil {
				t.Fatalf("no Go model for reference case %q", c.Name)
			}
			sd := m.StateDict()
			if len(sd) != len(c.StateBefore.Names) {
				t.Fatalf("state dict has %d entries, PyTorch %d: %v", len(sd), len(c.StateBefore.Names), c.StateBefore.Names)
			}
			for i, e := range sd {
				ref := c.StateBefore.Tensors[i]
				if e.Name != c.StateBefore.Names[i] || !tensor.SameShape(e.Tensor.Shape(), ref.Shape) || e.Int != (ref.Dtype == "int64") {
					t.Fatalf("state dict entry %d is %s %v int=%v, PyTorch %s %v %s", i, e.Name, e.Tensor.Shape(), e.Int, c.StateBefore.Names[i], ref.Shape, ref.Dtype)
				}
			}
			if err := LoadStateDict(m, c.StateBefore.stateDict()); err != nil {
				t.Fatal(err)
			}
			params := m.Parameters()
			for si, st := range c.Steps {
				what := func(s string) string { return fmt.Sprintf("step %d (training=%v) %s", si, st.Training, s) }
				m.SetTraining(st.Training)
				autograd.ZeroGrad(ParameterVars(m)...)
				x := autograd.Leaf("x", st.X.tensor(), true)
				y, err := m.Forward(x)
				if err != nil {
					t.Fatal(err)
				}
				closeTo(t, what("output"), y.Value, st.Y)
				if err := autograd.BackwardFrom(y, st.Gout.tensor()); err != nil {
					t.Fatal(err)
				}
				closeTo(t, what("input gradient"), x.Grad, st.GradX)
				if len(params) != len(st.Grads.Names) {
					t.Fatalf("%d parameters, PyTorch %d", len(params), len(st.Grads.Names))
				}
				for i, p := range params {
					if p.Name != st.Grads.Names[i] {
						t.Fatalf("parameter %d is %q, PyTorch %q", i, p.Name, st.Grads.Names[i])
					}
					closeTo(t, what("gradient of "+p.Name), p.Var.Grad, st.Grads.Tensors[i])
				}
				for i, e := range m.StateDict() {
					closeTo(t, what("state "+e.Name), e.Tensor, st.StateAfter.Tensors[i])
				}
			}
		})
	}
}
