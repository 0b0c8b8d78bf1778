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

// pyTorchCourse holds the loss and two gradients of variant 1 of seed 7 of
// each course problem, computed by PyTorch 1.13 in float64 from the drawn
// spec (x, y, W1, b1, W2, b2 as in key/spec.yaml):
//
//	softmax: z = F.linear(relu(F.linear(x, W1, b1)), W2, b2); L = F.cross_entropy(z, y)
//	convnet: h = relu(F.conv2d(x, w1, b1)); m = F.max_pool2d(h, 2, 1)
//	         z = F.linear(m.flatten(), w2, b2); L = F.cross_entropy(z[None], y)
var pyTorchCourse = map[string]struct {
	L    float64
	grad map[string][]float64
}{
	"softmax": {0.9337111223694671, map[string][]float64{
		"W1": {-0.007163415265663721, -0.042980491593982324, -0.021490245796991162, 0.07907646723589994, 0.04012336999430803, 0.08831439596332555, 0.033437614137557255, 0.03254444968870974, -0.06776839272396204},
		"b2": {0.21179029968990312, -0.35275712284044247, 0.14096682315053938},
	}},
	"convnet": {1.1096049039685734, map[string][]float64{
		"w1": {0.16578878550175022, 0.1548609722951417, 0.11263778358690388, 0.13449341000012086, 0.261205589823104, 0.25648571527889785, 0.20958526572472344, 0.32685769645929424, 0.2705601115149771, -0.03776155228620573, -0.3776155228620573, -0.15104620914482292, -0.2643308660034401, -0.15104620914482292, -0.15104620914482292, -0.3398539705758516, 0.0, -0.2643308660034401},
		"b1": {0.359726363475659, -0.3776155228620573},
	}},
}

// keyNumbers reads a key's forward and gradients as flat lists.
func keyNumbers(t *testing.T, key []byte) (fwd, grad map[string][]float64) {
	t.Helper()
	var k struct {
		Forward   map[string]any `json:"forward"`
		Gradients map[string]any `json:"gradients"`
	}
	if err := json.Unmarshal(key, &k); err != nil {
		t.Fatal(err)
	}
	var flatten func(v any) []float64
	flatten = func(v any) []float64 {
		switch x := v.(type) {
		case float64:
			return []float64{x}
		case []any:
			var out []float64
			for _, e := range x {
				out = append(out, flatten(e)...)
			}
			return out
		}
		return nil
	}
	fwd, grad = map[string][]float64{}, map[string][]float64{}
	for n, v := range k.Forward {
		fwd[n] = flatten(v)
	}
	for n, v := range k.Gradients {
		grad[n] = flatten(v)
	}
	return fwd, grad
}

// TestCourseVariantsMatchPyTorch: the keys of the softmax classifier and
// the conv net hold PyTorch's loss and gradients for the drawn numbers.
func TestCourseVariantsMatchPyTorch(t *testing.T) {
	for problem, want := range pyTorchCourse {
		vs, err := Generate(Options{Seed: 7, Count: 1, Problem: problem, Precision: 1})
		if err != nil {
			t.Fatal(err)
		}
		fwd, grad := keyNumbers(t, vs[0].Key)
		if got := fwd["L"]; len(got) != 1 || math.Abs(got[0]-want.L) > 1e-12 {
			t.Errorf("%s: L = %v, PyTorch %v", problem, got, want.L)
		}
		for name, w := range want.grad {
			g := grad[name]
			if len(g) != len(w) {
				t.Fatalf("%s: ∂L/∂%s has %d numbers, PyTorch %d", problem, name, len(g), len(w))
			}
			for i := range w {
				if math.Abs(g[i]-w[i]) > 1e-12 {
					t.Errorf("%s: ∂L/∂%s[%d] = %v, PyTorch %v", problem, name, i+1, g[i], w[i])
				}
			}
		}
	}
}

// TestCourseVariantsFairAndDeterministic draws many variants of both
// problems, with and without varied sizes: every one parses, passes both
// fairness checks, asks for what its template holds, has an ASCII sheet,
// and is the same whether made alone or among others.
func TestCourseVariantsFairAndDeterministic(t *testing.T) {
	for _, problem := range []string{"softmax", "convnet"} {
		for _, vary := range []bool{false, true} {
			o := Options{Seed: 2024, Count: 6, Problem: problem, Precision: 1, VarySizes: vary}
			vs, err := Generate(o)
			if err != nil {
				t.Fatalf("%s vary=%v: %v", problem, vary, err)
			}
			again, err := Generate(o)
			if err != nil {
				t.Fatal(err)
			}
			o.Count = 1
			alone, err := Generate(o)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(alone[0].Key, vs[0].Key) || !bytes.Equal(alone[0].Sheet, vs[0].Sheet) {
				t.Errorf("%s vary=%v: variant 1 depends on the count", problem, vary)
			}
			distinct := map[string]bool{}
			for i, v := range vs {
				for j, f := range v.Files() {
					if !bytes.Equal(f.Data, again[i].Files()[j].Data) {
						t.Errorf("%s: %s differs between two runs", problem, f.Path)
					}
				}
				distinct[string(v.Spec)] = true
				s, err := spec.Parse(v.Name, v.Spec)
				if err != nil {
					t.Fatalf("%s: %v", v.Name, err)
				}
				if why, err := Fair(s); err != nil || why != "" {
					t.Errorf("%s: not fair: %q %v", v.Name, why, err)
				}
				if why, err := fairCourse(s); err != nil || why != "" {
					t.Errorf("%s: not fair: %q %v", v.Name, why, err)
				}
				for k, c := range string(v.Sheet) {
					if c > 127 {
						t.Errorf("%s: sheet has %q at byte %d; pdflatex wants ASCII", v.Name, c, k)
						break
					}
				}
				var tmpl struct{ Forward, Gradients map[string]any }
				if err := json.Unmarshal(v.Template, &tmpl); err != nil {
					t.Fatal(err)
				}
				for _, n := range s.Ask.Forward {
					if _, ok := tmpl.Forward[n]; !ok {
						t.Errorf("%s: template lacks forward.%s", v.Name, n)
					}
				}
				for _, n := range s.Ask.Gradients {
					if _, ok := tmpl.Gradients[n]; !ok {
						t.Errorf("%s: template lacks gradients.%s", v.Name, n)
					}
				}
				if !strings.Contains(string(v.Key), `"objective": "cross_entropy"`) {
					t.Errorf("%s: key objective is not cross_entropy", v.Name)
				}
			}
			if len(distinct) != len(vs) {
				t.Errorf("%s vary=%v: %d distinct specs of %d", problem, vary, len(distinct), len(vs))
			}
		}
	}
}

// TestFairCourseRejects: the conditions fairCourse adds each reject a
// network made to break them.
func TestFairCourseRejects(t *testing.T) {
	base := `inputs:
  - {name: x, batch: true, value: [[1.0, 0.0], [0.0, 1.0]]}
  - {name: y, kind: labels, value: [%s]}
layers:
  - {type: linear, name: z, weight: W, bias: b}
objective: {type: cross_entropy, labels: y}
params:
  W: %s
  b: [0.0, 0.0]
`
	for _, c := range []struct {
		labels, w, want string
	}{
		{"0, 1", "[[3.0, 0.0], [-3.0, 0.0]]", "softmax saturated: the logits of row 1 spread by 6"},
		{"0, 0", "[[0.1, 0.0], [0.0, 0.2]]", "every sample has the same label"},
		{"0, 1", "[[0.5, 0.0], [0.0, 0.5]]", "the network classifies every sample right"},
		{"1, 0", "[[0.5, 0.0], [0.0, 0.5]]", ""},
	} {
		s, err := spec.Parse("t.yaml", []byte(fmt.Sprintf(base, c.labels, c.w)))
		if err != nil {
			t.Fatal(err)
		}
		why, err := fairCourse(s)
		if err != nil {
			t.Fatal(err)
		}
		if c.want == "" && why != "" || c.want != "" && !strings.HasPrefix(why, c.want) {
			t.Errorf("labels %s, W %s: %q, want %q", c.labels, c.w, why, c.want)
		}
	}
	// a tie in a pooling window: two equal maxima in a 2×2 window
	tie := `inputs:
  - {name: x, value: [[[0.5, 0.5], [0.1, 0.2]]]}
  - {name: y, kind: labels, value: [0]}
layers:
  - {type: conv, name: h1, weight: w1, bias: b1, activation: relu}
  - {type: maxpool, name: m, kernel_size: 2}
  - {type: flatten, name: f}
  - {type: linear, name: z, weight: w2, bias: b2}
objective: {type: cross_entropy, labels: y}
params:
  w1: [[[[1.0]]]]
  b1: [0.0]
  w2: [[1.0], [-1.0]]
  b2: [0.0, 0.0]
`
	s, err := spec.Parse("tie.yaml", []byte(tie))
	if err != nil {
		t.Fatal(err)
	}
	if why, _ := fairCourse(s); !strings.HasPrefix(why, "a tie in pooling window (1, 1) of map 1") {
		t.Errorf("tie: %q", why)
	}
}
