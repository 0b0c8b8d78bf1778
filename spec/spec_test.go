package spec

import (
	"os"
	"strings"
	"testing"

	"github.com/backprop-dev/backprop/autograd"
)

func seed(t testing.TB) string {
	t.Helper()
	b, err := os.ReadFile("../examples/problem1.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestProblem1Builds(t *testing.T) {
	s, err := Parse("problem1.yaml", []byte(seed(t)))
	if err != nil {
		t.Fatal(err)
	}
	m, err := Build[float64](s)
	if err != nil {
		t.Fatal(err)
	}
	if err := autograd.Backward(m.Objective); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, v := range m.Outputs {
		names = append(names, v.Name)
	}
	if got := strings.Join(names, ","); got != "h0,h1,h2,H2,p,log_p" {
		t.Fatalf("outputs %s", got)
	}
	// h0[1] = ReLU(0.1·0.4 + 0.3·0.8 + 0.1) = 0.38, by hand
	if h0 := m.Name["h0"].Value.Data()[0]; h0 < 0.38-1e-15 || h0 > 0.38+1e-15 {
		t.Fatalf("h0[1] = %v", h0)
	}
	for _, p := range m.Params {
		if p.Grad == nil {
			t.Fatalf("no gradient for %s", p.Name)
		}
	}
}

// TestBadSpecs checks that each kind of mistake is reported with the field,
// the shape expected and the shape found.
func TestBadSpecs(t *testing.T) {
	base := seed(t)
	cases := []struct {
		name, old, new string
		want           []string
	}{
		{"malformed", "layers:", "layers: [", []string{"problem1.yaml", "not a valid spec"}},
		{"unknown field", "title:", "titel: x\ntitle:", []string{"titel", "not found"}},
		{"missing input", "  value: [0.4, 0.8]", "", []string{"input.value", "missing"}},
		{"reshape 8 into 3x3", "shape: [2, 2, 2]", "shape: [3, 3]", []string{"layers[1]", "reshape h1", "[8]", "9 values"}},
		{"NaN weight", "b2: 0.3", "b2: .nan", []string{"params.b2", "NaN", "finite"}},
		{"Inf weight", "[0.1, 0.3],", "[.inf, 0.3],", []string{"params.w0", "+Inf"}},
		{"weight does not chain", "[0.1, 0.3],\n", "[0.1, 0.3, 0.5],\n", []string{"params.w0", "ragged"}},
		{"unknown param", "weight: w0,", "weight: w9,", []string{"layers[0].weight", `"w9" is not in params`}},
		{"unknown layer", "type: flatten", "type: flaten", []string{"layers[3].type", "flaten"}},
		{"bad convention", "kernel: pytorch ", "kernel: rotated ", []string{"conventions.kernel", "rotated"}},
		{"wrong z size", "value: [0.4, 0.8]", "value: [0.4, 0.8, 0.1]", []string{"layers[0]", "weight w0", "[8×2]", "[out×3]"}},
		{"deconv channels", "shape: [2, 2, 2]", "shape: [1, 2, 4]", []string{"layers[2]", "weight w1", "1 input channels", "[2×1×3×3]"}},
		{"bias shape", "b2: 0.3", "b2: [0.3, 0.1]", []string{"bias b2", "single number", "[2]"}},
		{"stride", "stride: 1,", "stride: 0,", []string{"layers[2].stride", "got [0, 0]"}},
		{"logistic not last", "objective: {type: log_p}", "objective: {type: sse}", []string{"objective.type", "sse"}},
		{"unused param", "b2: 0.3", "b2: 0.3\n  w9: [1]", []string{"params.w9", "not used"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if !strings.Contains(base, c.old) {
				t.Fatalf("test bug: %q not in the seed spec", c.old)
			}
			text := strings.Replace(base, c.old, c.new, 1)
			s, err := Parse("problem1.yaml", []byte(text))
			if err == nil {
				_, err = Build[float64](s)
			}
			if err == nil {
				t.Fatal("accepted a bad spec")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestConvKernelTooLarge(t *testing.T) {
	text := `
input: {name: x, value: [[[1, 2], [3, 4]]]}
layers:
  - {type: conv, name: y, weight: w, stride: 1}
  - {type: flatten, name: f}
  - {type: logistic, name: p, weight: v}
params:
  w: [[[[1, 1, 1], [1, 1, 1], [1, 1, 1]]]]
  v: [1]
`
	s, err := Parse("k.yaml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	_, err = Build[float64](s)
	if err == nil || !strings.Contains(err.Error(), "params.w: kernel 3×3 is larger than the padded input x of 2×2") {
		t.Fatalf("got %v", err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add(seed(f))
	f.Add(`{"input": {"name": "x", "value": [1, 2]}, "layers": [{"type": "linear", "name": "h", "weight": "w", "activation": "relu", "transpose": true}], "params": {"w": [[1, 2], [3, 4]]}}`)
	f.Add("input: {value: [[[1]]]}\nlayers: [{type: deconv, name: y, weight: w, stride: [2, 1], padding: 1, output_padding: 1}, {type: flatten, name: f}, {type: logistic, weight: v}]\nparams: {w: [[[[1, 2], [3, 4]]]], v: [1, 2]}")
	f.Add("input: {value: [1, 2, 3, 4]}\nlayers: [{type: reshape, name: r, shape: [1, 2, 2]}, {type: conv, name: c, weight: w, padding: 1}, {type: flatten, name: f}, {type: logistic, weight: v, bias: b}]\nparams: {w: [[[[1]]]], v: [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1], b: [0.5]}\nconventions: {reshape: column-major, label: y1}\nobjective: {type: bce, label: 1}")
	f.Fuzz(func(t *testing.T, text string) {
		s, err := Parse("fuzz.yaml", []byte(text))
		if err != nil {
			return
		}
		m, err := Build[float64](s)
		if err != nil {
			return
		}
		if m.Objective == nil {
			t.Fatal("built a model without an objective")
		}
		if err := autograd.Backward(m.Objective); err != nil {
			t.Fatal(err)
		}
	})
}
