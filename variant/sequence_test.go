package variant

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/backprop-dev/backprop/spec"
)

// pyTorchSequence holds the loss and gradients of variant 1 of seed 7 of
// the RNN and the attention head, computed by PyTorch 1.13 in float64 from
// the drawn key/spec.yaml:
//
//	rnn: cell = nn.RNNCell(2, 2) with weight_ih = W_xh, weight_hh = W_hh,
//	     bias_ih = b_h, bias_hh = 0; h = 0; for t in range(3):
//	     h = cell(x[t][None], h); y_t = F.linear(h[0], W_hy, b_y)
//	     E = 0.5*((stack(y) - t)**2).sum(); E.backward()
//	attention: Q, K, V = x@Wq.T, x@Wk.T, x@Wv.T
//	     A = softmax(Q@K.T/sqrt(2), -1); y = (A@V)@Wo.T
//	     L = 0.5*((y - t)**2).sum(); L.backward()
var pyTorchSequence = map[string]struct {
	loss     string
	L        float64
	forward  map[string][]float64
	gradient map[string][]float64
}{
	"rnn": {"E", 0.6467814541348162, nil, map[string][]float64{
		"W_hh": {0.10342553459068932, -0.001327933833104221, 0.3224158730028993, -0.07535443110140749},
		"W_xh": {0.23833930114885615, 0.20469866277664336, 0.4182464365365528, 0.6262190739071483},
		"b_h":  {-0.3702777089436898, -0.7101204189125545},
	}},
	"attention": {"L", 0.5301503712156713,
		map[string][]float64{"A": {0.25137062272694766, 0.3946749682687131, 0.3539544090043392, 0.2512087143653264, 0.38783853648890126, 0.3609527491457725, 0.2738796832641302, 0.37209491766557523, 0.3540253990702945}},
		map[string][]float64{
			"Wq": {-0.1417994658561957, 0.08090638261758952, 0.028868652132369037, -0.01680779174986933},
			"Wk": {-0.159260100671495, -0.14370639925411025, -0.09177345865660154, -0.08289097399115},
		}},
}

// TestSequenceVariantsMatchPyTorch: the keys of the RNN and the attention
// head hold PyTorch's loss, attention weights and gradients.
func TestSequenceVariantsMatchPyTorch(t *testing.T) {
	for problem, want := range pyTorchSequence {
		vs, err := Generate(Options{Seed: 7, Count: 1, Problem: problem, Precision: 1})
		if err != nil {
			t.Fatal(err)
		}
		fwd, grad := keyNumbers(t, vs[0].Key)
		if got := fwd[want.loss]; len(got) != 1 || math.Abs(got[0]-want.L) > 1e-12 {
			t.Errorf("%s: %s = %v, PyTorch %v", problem, want.loss, got, want.L)
		}
		check := func(what string, got map[string][]float64, w map[string][]float64) {
			for name, wv := range w {
				gv := got[name]
				if len(gv) != len(wv) {
					t.Errorf("%s: %s %s has %d numbers, PyTorch %d", problem, what, name, len(gv), len(wv))
					continue
				}
				for i := range wv {
					if math.Abs(gv[i]-wv[i]) > 1e-12 {
						t.Errorf("%s: %s %s[%d] = %v, PyTorch %v", problem, what, name, i+1, gv[i], wv[i])
					}
				}
			}
		}
		check("forward", fwd, want.forward)
		check("gradient", grad, want.gradient)
	}
}

// keySteps reads the steps of a key.
func keySteps(t *testing.T, key []byte) []KeyStep {
	t.Helper()
	var k struct {
		Steps []KeyStep `json:"steps"`
	}
	if err := json.Unmarshal(key, &k); err != nil {
		t.Fatal(err)
	}
	return k.Steps
}

// TestSequenceVariantsFairAndDeterministic: for seeds 1 to 30 (two
// variants each, with and without --vary-sizes) every RNN pre-activation
// in the key lies within ±2 and every attention weight is at most 0.95;
// the spec and the sheet are ASCII; the sheet asks what the template
// holds; and a variant is the same bytes whatever the count.
func TestSequenceVariantsFairAndDeterministic(t *testing.T) {
	for _, problem := range []string{"rnn", "attention"} {
		for _, vary := range []bool{false, true} {
			for seed := uint64(1); seed <= 30; seed++ {
				o := Options{Seed: seed, Count: 2, Problem: problem, Precision: 1, VarySizes: vary}
				vs, err := Generate(o)
				if err != nil {
					t.Fatalf("%s seed %d: %v", problem, seed, err)
				}
				for _, v := range vs {
					checked := 0
					for _, st := range keySteps(t, v.Key) {
						if st.Pass != "forward" {
							continue
						}
						for _, e := range st.Elements {
							switch {
							case problem == "rnn" && strings.HasPrefix(st.Target, "u_h_"):
								checked++
								if math.Abs(e.Value) > 2 {
									t.Errorf("%s: %s = %v, a saturated tanh", v.Name, e.Label, e.Value)
								}
							case problem == "attention" && st.Target == "A":
								checked++
								if e.Value > 0.95 {
									t.Errorf("%s: %s = %v, a nearly one-hot softmax row", v.Name, e.Label, e.Value)
								}
							}
						}
					}
					if checked == 0 {
						t.Errorf("%s seed %d: no pre-activation or attention weight in the key", v.Name, seed)
					}
					for _, f := range []struct {
						name string
						data []byte
					}{{"spec", v.Spec}, {"sheet", v.Sheet}} {
						for i, c := range f.data {
							if c > 127 {
								t.Fatalf("%s: %s is not ASCII at byte %d: %q", v.Name, f.name, i, f.data[max(0, i-20):min(len(f.data), i+20)])
							}
						}
					}
					var tmpl struct {
						Forward   map[string]any `json:"forward"`
						Gradients map[string]any `json:"gradients"`
					}
					if err := json.Unmarshal(v.Template, &tmpl); err != nil {
						t.Fatal(err)
					}
					if len(tmpl.Forward) == 0 || len(tmpl.Gradients) != 4+map[string]int{"rnn": 1}[problem] {
						t.Errorf("%s: template %s", v.Name, v.Template)
					}
				}
				one, err := Generate(Options{Seed: seed, Count: 1, Problem: problem, Precision: 1, VarySizes: vary})
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(one[0].Spec, vs[0].Spec) || !bytes.Equal(one[0].Key, vs[0].Key) || !bytes.Equal(one[0].Sheet, vs[0].Sheet) {
					t.Errorf("%s seed %d: variant 1 depends on the count", problem, seed)
				}
			}
		}
	}
	// the seeds are not the other problems': rnn-01 and attention-01 of
	// one seed differ from another seed's
	a, _ := Generate(Options{Seed: 1, Count: 1, Problem: "rnn", Precision: 1})
	b, _ := Generate(Options{Seed: 2, Count: 1, Problem: "rnn", Precision: 1})
	if bytes.Equal(a[0].Spec, b[0].Spec) {
		t.Errorf("seeds 1 and 2 draw the same RNN")
	}
}

// TestFairSequenceRejects: a network built to break each condition is
// refused with the reason, and a tame one passes.
func TestFairSequenceRejects(t *testing.T) {
	rnnSpec := func(wxh string) string {
		return fmt.Sprintf(`inputs:
  - {name: x, value: [[1.0, 1.0], [0.5, -0.5], [0.2, 0.1]]}
  - {name: t, kind: target, value: [[0.1], [0.2], [0.3]]}
layers:
  - {type: rnn, name: h, weight: W_xh, recurrent: W_hh, bias: b_h}
  - {type: linear, name: y, weight: W_hy, bias: b_y}
objective: {type: half_sse, target: t, name: E}
params:
  W_xh: %s
  W_hh: [[0.1, 0.2], [-0.1, 0.3]]
  b_h: [0.0, 0.1]
  W_hy: [[0.5, -0.5]]
  b_y: [0.0]
`, wxh)
	}
	attSpec := func(wq string) string {
		return fmt.Sprintf(`inputs:
  - {name: x, value: [[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]}
  - {name: t, kind: target, value: [[0.1, 0.0], [0.0, 0.1], [0.2, 0.1]]}
layers:
  - {type: attention, name: y, wq: Wq, wk: Wk, wv: Wv, wo: Wo, heads: 1}
objective: {type: half_sse, target: t}
params:
  Wq: %s
  Wk: [[1.0, 0.0], [0.0, 1.0]]
  Wv: [[0.5, 0.1], [0.2, 0.3]]
  Wo: [[0.4, -0.3], [0.1, 0.2]]
`, wq)
	}
	for _, c := range []struct {
		problem, yaml, want string
	}{
		{"rnn", rnnSpec("[[0.5, -0.3], [0.2, 0.4]]"), ""},
		{"rnn", rnnSpec("[[1.5, 1.0], [0.2, 0.4]]"), "tanh saturated: u_h_1[1] = 2.5"},
		{"attention", attSpec("[[0.3, 0.1], [-0.2, 0.4]]"), ""},
		{"attention", attSpec("[[8.0, 0.0], [0.0, 8.0]]"), "softmax nearly one-hot: A[3,3]"},
	} {
		s, err := spec.Parse(c.problem+".yaml", []byte(c.yaml))
		if err != nil {
			t.Fatal(err)
		}
		why, err := fairSequence(s, c.problem)
		if err != nil {
			t.Fatal(err)
		}
		if c.want == "" && why != "" || c.want != "" && !strings.HasPrefix(why, c.want) {
			t.Errorf("%s: %q, want %q", c.problem, why, c.want)
		}
	}
}
