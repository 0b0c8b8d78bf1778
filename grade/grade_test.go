package grade

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/backprop-dev/backprop/solve"
	"github.com/backprop-dev/backprop/spec"
	"github.com/backprop-dev/backprop/variant"
)

// setup makes one variant on disk and returns its key and its correct
// numbers as an answers document.
func setup(t *testing.T, problem string) (*Key, map[string]map[string]any) {
	t.Helper()
	o := variant.Options{Seed: 11, Count: 1, Problem: problem, Precision: 1}
	vs, err := variant.Generate(o)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if _, err := variant.Write(dir, o, vs); err != nil {
		t.Fatal(err)
	}
	k, err := ReadKey(filepath.Join(dir, vs[0].Name, "key", "key.json"))
	if err != nil {
		t.Fatal(err)
	}
	right := map[string]map[string]any{"forward": {}, "gradients": {}}
	for name, raw := range k.Forward {
		var v any
		json.Unmarshal(raw, &v)
		right["forward"][name] = v
	}
	for name, raw := range k.Gradients {
		var v any
		json.Unmarshal(raw, &v)
		right["gradients"][name] = v
	}
	return k, right
}

// answers writes doc to a file and reads it back as a student's would be.
func answers(t *testing.T, doc any) *Answers {
	t.Helper()
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "answers.json")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	a, err := ReadAnswers(path)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestAllRight(t *testing.T) {
	for _, p := range []string{"gan", "autoencoder"} {
		k, right := setup(t, p)
		r := Grade(k, answers(t, right), Options{})
		if !r.OK() || r.Checked == 0 || r.Unanswered != 0 || r.First != nil {
			t.Errorf("%s: %+v", p, r)
		}
	}
}

// TestFirstWrongStep breaks h2[1,2,3] and a gradient; the report names both
// and the h2 step as the first off the path, with its worked line.
func TestFirstWrongStep(t *testing.T) {
	k, right := setup(t, "gan")
	h2 := right["forward"]["h2"].([]any)[0].([]any)[1].([]any)
	h2[2] = h2[2].(float64) + 0.25
	w0 := right["gradients"]["w0"].([]any)[0].([]any)
	w0[1] = w0[1].(float64) * 2
	r := Grade(k, answers(t, right), Options{})
	if r.OK() || len(r.Wrong) != 2 {
		t.Fatalf("wrong: %+v", r.Wrong)
	}
	if r.Wrong[0].Label != "h2[1,2,3]" || r.Wrong[1].Label != "∂J/∂w0[1,2]" {
		t.Errorf("wrong labels %s, %s", r.Wrong[0].Label, r.Wrong[1].Label)
	}
	f := r.First
	if f == nil || f.Pass != "forward" || f.Step != 3 || f.Target != "h2" || f.Label != "h2[1,2,3]" || !strings.HasPrefix(f.Line, "h2[1,2,3] = ReLU(") {
		t.Errorf("first wrong step %+v", f)
	}
	var text bytes.Buffer
	r.WriteText(&text, Options{})
	for _, want := range []string{"h2[1,2,3]", "∂J/∂w0[1,2]", "First step off the correct path: forward step 3, h2 = ReLU(deconv(h1, w1; stride 1, pad 0) + b1)", "the worked line is"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, text.String())
		}
	}
}

func TestPartialAnswersAndBackwardFirst(t *testing.T) {
	k, right := setup(t, "gan")
	// only gradients, one wrong: the first wrong step is a backward one
	w1 := right["gradients"]["w1"].([]any)[1].([]any)[0].([]any)[2].([]any)
	w1[0] = -1.0
	doc := map[string]any{"gradients": map[string]any{"w1": right["gradients"]["w1"], "b2": right["gradients"]["b2"], "w0": nil}}
	r := Grade(k, answers(t, doc), Options{})
	if r.First == nil || r.First.Pass != "backward" || r.First.Target != "∂J/∂w1" || r.First.Label != "∂J/∂w1[2,1,3,1]" {
		t.Errorf("first wrong step %+v", r.First)
	}
	// not answered: the numbers the sheet asks for, less the 18 of w1 (b2
	// is given but not asked)
	asked := 0
	for _, st := range k.Steps {
		if st.Answer != "" && k.asked(st.Answer) {
			asked += len(st.Elements)
		}
	}
	if r.Checked != 19 || r.Right != 18 || r.Unanswered != asked-18 {
		t.Errorf("checked %d, right %d, unanswered %d, want 19, 18, %d", r.Checked, r.Right, r.Unanswered, asked-18)
	}
}

func TestIntermediateElements(t *testing.T) {
	k, right := setup(t, "gan")
	var u2 *variant.KeyStep
	for i := range k.Steps {
		if k.Steps[i].Target == "∂J/∂u2" {
			u2 = &k.Steps[i]
		}
	}
	if u2 == nil {
		t.Fatal("no ∂J/∂u2 step")
	}
	good, bad := u2.Elements[0].Value, u2.Elements[1].Value*3
	doc := map[string]any{"forward": right["forward"], "elements": map[string]any{"dJ/du2[1,1,1]": good, u2.Elements[1].Label: bad}}
	r := Grade(k, answers(t, doc), Options{})
	if r.First == nil || r.First.Target != "∂J/∂u2" || r.First.Label != "∂J/∂u2[1,1,2]" || len(r.Wrong) != 1 {
		t.Errorf("first wrong step %+v, wrong %+v", r.First, r.Wrong)
	}
}

// TestOtherReading answers with the column-major reshape and expects the
// hint to say so.
func TestOtherReading(t *testing.T) {
	k, _ := setup(t, "gan")
	s, err := spec.Parse("spec", []byte(k.Spec))
	if err != nil {
		t.Fatal(err)
	}
	sol, err := solve.Solve(s, solve.Options{Reshape: "column-major"})
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	sol.WriteJSON(&b)
	var doc map[string]any
	json.Unmarshal(b.Bytes(), &doc)
	delete(doc, "meta")
	r := Grade(k, answers(t, doc), Options{})
	if r.OK() || !strings.Contains(r.Hint, "reshape order column-major") {
		t.Errorf("hint %q", r.Hint)
	}
}

func TestTolerance(t *testing.T) {
	k, right := setup(t, "autoencoder")
	x := right["forward"]["x'"].([]any) // a sigmoid: never zero
	x[0] = x[0].(float64) * (1 + 5e-4)
	if r := Grade(k, answers(t, right), Options{}); !r.OK() {
		t.Errorf("a relative error of 5e-4 fails at tol 1e-3: %+v", r.Wrong)
	}
	if r := Grade(k, answers(t, right), Options{Rel: 1e-4}); r.OK() {
		t.Error("a relative error of 5e-4 passes at tol 1e-4")
	}
}

func TestProblems(t *testing.T) {
	k, right := setup(t, "gan")
	cases := map[string]any{
		"unknown name":        map[string]any{"forward": map[string]any{"h9": []any{1.0}}},
		"wrong shape":         map[string]any{"forward": map[string]any{"h0": []any{1.0, 2.0}}},
		"not a number":        map[string]any{"forward": map[string]any{"p": "high"}},
		"bad label":           map[string]any{"elements": map[string]any{"h7[1]": 1.0}},
		"gradient of a value": map[string]any{"forward": right["forward"], "gradients": map[string]any{"h0": []any{1.0}}},
	}
	for name, doc := range cases {
		r := Grade(k, answers(t, doc), Options{})
		if r.OK() || len(r.Problems) == 0 {
			t.Errorf("%s: %+v", name, r)
		}
	}
	if _, err := ReadAnswers(writeTemp(t, `{"gradient": {}}`)); err == nil {
		t.Error("a misspelt section was accepted")
	}
	if _, err := ReadKey(writeTemp(t, `{"forward": {}}`)); err == nil {
		t.Error("a file without steps was accepted as a key")
	}
	empty := Grade(k, answers(t, map[string]any{}), Options{})
	if empty.OK() {
		t.Error("an empty answers file is OK")
	}
}

func writeTemp(t *testing.T, s string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "f.json")
	os.WriteFile(p, []byte(s), 0o644)
	return p
}

func TestJSONReport(t *testing.T) {
	k, right := setup(t, "gan")
	right["forward"]["p"] = 0.5
	r := Grade(k, answers(t, right), Options{})
	var b bytes.Buffer
	if err := r.WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	var out struct {
		OK    bool
		Wrong []Wrong
		First *FirstStep `json:"firstWrongStep"`
	}
	if err := json.Unmarshal(b.Bytes(), &out); err != nil {
		t.Fatal(err)
	}
	if out.OK || len(out.Wrong) != 1 || out.First == nil || out.First.Target != "p" {
		t.Errorf("%s", b.String())
	}
}
