package grade

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/backprop-dev/backprop/solve"
	"github.com/backprop-dev/backprop/spec"
	"github.com/backprop-dev/backprop/tensor"
)

// Every test here starts from the correct numbers of a generated variant's
// key and perturbs them the way a student's mistake would; what the grader
// must say follows from the perturbation, not from the grader's own
// computation.

// mapNums applies f to every number of a nested list.
func mapNums(v any, f func(float64) float64) any {
	switch x := v.(type) {
	case float64:
		return f(x)
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = mapNums(e, f)
		}
		return out
	}
	return v
}

// flat is a nested list's numbers in row-major order.
func flat(v any) []float64 {
	switch x := v.(type) {
	case float64:
		return []float64{x}
	case []any:
		var out []float64
		for _, e := range x {
			out = append(out, flat(e)...)
		}
		return out
	}
	return nil
}

// solveDoc solves s under the conventions given and returns `backprop solve
// --format json` as a document, meta and all.
func solveDoc(t *testing.T, s *spec.Spec, o solve.Options) map[string]any {
	t.Helper()
	sol, err := solve.Solve(s, o)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := sol.WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(b.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	return doc
}

func keySpec(t *testing.T, k *Key) *spec.Spec {
	t.Helper()
	s, err := spec.Parse("key", []byte(k.Spec))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// differing counts the numbers of doc that are not the key's at the
// grader's default tolerance, by a direct comparison.
func differing(k *Key, doc map[string]any) int {
	n := 0
	for _, section := range []string{"forward", "gradients"} {
		keyVals := k.Forward
		if section == "gradients" {
			keyVals = k.Gradients
		}
		m, _ := doc[section].(map[string]any)
		for name, v := range m {
			raw, ok := keyVals[name]
			if !ok {
				continue
			}
			want, _, _ := numbers(raw)
			got := flat(v)
			scale := scaleOf(want)
			for i := range want {
				if math.Abs(got[i]-want[i]) > 1e-3*max(math.Abs(want[i]), scale*1e-3) {
					n++
				}
			}
		}
	}
	return n
}

// TestFollowThroughForwardSlip: a student slips in one element of h0 (as if
// they misread b0 there) and carries the slip through every later number
// correctly. Only that element is wrong; every later number that differs
// from the key is follow-through. The answers are `backprop solve --format
// json` of the slipped network, as it is.
func TestFollowThroughForwardSlip(t *testing.T) {
	k, right := setup(t, "gan")
	h0 := right["forward"]["h0"].([]any)
	j := -1
	for i, v := range h0 {
		if v.(float64) > 0 {
			j = i
			break
		}
	}
	if j < 0 {
		t.Fatal("no live unit in h0")
	}
	slipped := keySpec(t, k).WithValues(func(name string, old *tensor.Tensor[float64]) *tensor.Tensor[float64] {
		if name != "b0" {
			return old
		}
		c := old.Clone()
		c.Data()[j] += 0.3 // h0[j] rises by 0.3 and stays alive
		return c
	})
	doc := solveDoc(t, slipped, solve.Options{})
	before := differing(k, doc)
	if before < 40 {
		t.Fatalf("the slip changes only %d numbers; the test needs one that spreads", before)
	}
	r := Grade(k, answers(t, doc), Options{})
	label := fmt.Sprintf("h0[%d]", j+1)
	if len(r.Wrong) != 1 || r.Wrong[0].Label != label {
		t.Fatalf("wrong %+v, want only %s", r.Wrong, label)
	}
	if len(r.FollowThrough) != before-1 {
		t.Errorf("%d follow-through, want the %d other numbers that differ from the key", len(r.FollowThrough), before-1)
	}
	for _, w := range r.FollowThrough {
		if w.Mark != MarkFollowThrough || w.Consistent == nil {
			t.Errorf("follow-through %+v", w)
		}
	}
	if r.First == nil || r.First.Target != "h0" || r.First.Label != label {
		t.Errorf("first wrong step %+v", r.First)
	}
	if r.Cause != "" || r.OK() {
		t.Errorf("cause %q, ok %v", r.Cause, r.OK())
	}
	// the scores: h0 loses one number; everything else earns credit
	for _, s := range r.Tensors {
		want := 0
		if s.Name == "forward.h0" {
			want = 1
		}
		if s.Wrong != want || s.Credit != s.Answered-want {
			t.Errorf("score %+v", s)
		}
	}
	if !strings.Contains(r.Summary, label) || !strings.Contains(r.Summary, "follow-through") {
		t.Errorf("summary %q", r.Summary)
	}
}

// TestFollowThroughBackwardSlip: a slip in δ2 = ∂J/∂u2 at its first pixel,
// seen in ∂J/∂b1[1,1], and carried on into ∂J/∂w1, ∂J/∂b0 and ∂J/∂w0. The
// carried-on numbers are worked out here by hand from the deconvolution's
// scatter (0-based: out[i+a, j+b] += h1[c,i,j]·w1[c,0,a,b]): only
// the kernel tap (a, b) = (0, 0) and the input pixel (0, 0) of each channel
// touch output pixel (0, 0), so
//
//	∂J/∂w1[c,0,0,0] += Δ·h1[c,0,0]
//	∂J/∂h1[c,0,0]   += Δ·w1[c,0,0,0]  →  ∂J/∂b0[4c] and ∂J/∂w0[4c,:] = ·z, if h0[4c] > 0.
func TestFollowThroughBackwardSlip(t *testing.T) {
	k, right := setup(t, "gan")
	s := keySpec(t, k)
	w1 := s.Params["w1"].Tensor
	if !tensor.SameShape(w1.Shape(), []int{2, 1, 3, 3}) {
		t.Skipf("the test works the seed's sizes out by hand; w1 is %v", w1.Shape())
	}
	z := s.InputTensor().Data()
	h1 := flat(right["forward"]["h1"])
	h0 := flat(right["forward"]["h0"])
	const delta = 0.5
	g := right["gradients"]
	b1 := g["b1"].([]any)[0].([]any)
	b1[0] = b1[0].(float64) + delta
	carried, fromB0 := 0, 0 // all carried numbers; those of ∂J/∂w0, which follow from ∂J/∂b0 = δ0
	for c := range 2 {
		kw := g["w1"].([]any)[c].([]any)[0].([]any)[0].([]any)
		if h1[4*c] != 0 {
			kw[0] = kw[0].(float64) + delta*h1[4*c]
			carried++
		}
		dh := delta * w1.Data()[c*9]
		if h0[4*c] > 0 {
			b0 := g["b0"].([]any)
			b0[4*c] = b0[4*c].(float64) + dh
			row := g["w0"].([]any)[4*c].([]any)
			for i := range row {
				row[i] = row[i].(float64) + dh*z[i]
			}
			carried += 1 + len(row)
			fromB0 += len(row)
		}
	}
	r := Grade(k, answers(t, right), Options{})
	if len(r.Wrong) != 1 || r.Wrong[0].Label != "∂J/∂b1[1,1]" {
		t.Fatalf("wrong %+v, want only ∂J/∂b1[1,1]", r.Wrong)
	}
	if len(r.FollowThrough) != carried {
		t.Errorf("%d follow-through %+v, want %d", len(r.FollowThrough), r.FollowThrough, carried)
	}
	// the same numbers with ∂J/∂b1 right again: what ∂J/∂b1 carried is
	// wrong, but ∂J/∂w0 still follows from the student's ∂J/∂b0
	b1[0] = b1[0].(float64) - delta
	r = Grade(k, answers(t, right), Options{})
	if len(r.Wrong) != carried-fromB0 || len(r.FollowThrough) != fromB0 {
		t.Errorf("without the slip in ∂J/∂b1: %d wrong, %d follow-through; want %d, %d", len(r.Wrong), len(r.FollowThrough), carried-fromB0, fromB0)
	}
	if fromB0 == 0 {
		t.Error("the seed's variant leaves both h0[1] and h0[5] dead: the slip does not reach ∂J/∂w0")
	}
}

// scaleGradients multiplies every gradient of the answers by c.
func scaleGradients(right map[string]map[string]any, c float64) map[string]map[string]any {
	out := map[string]map[string]any{"forward": right["forward"], "gradients": {}}
	for n, v := range right["gradients"] {
		out["gradients"][n] = mapNums(v, func(x float64) float64 { return c * x })
	}
	return out
}

// checkCause asserts that the report names one mistake of the kind as the
// cause of every wrong number and that no number is left as
// follow-through.
func checkCause(t *testing.T, r *Report, kind, text string) {
	t.Helper()
	if r.Cause == "" || !strings.Contains(r.Cause, text) {
		t.Errorf("%s: cause %q, want it to say %q (mistakes %+v)", kind, r.Cause, text, r.Mistakes)
	}
	found := false
	for _, m := range r.Mistakes {
		found = found || m.Kind == kind
	}
	if !found {
		t.Errorf("%s: mistakes %+v", kind, r.Mistakes)
	}
	if len(r.Wrong) == 0 || len(r.FollowThrough) != 0 {
		t.Errorf("%s: %d wrong, %d follow-through", kind, len(r.Wrong), len(r.FollowThrough))
	}
	for _, w := range r.Wrong {
		if w.Mistake != kind {
			t.Errorf("%s: %s is wrong without the mistake named: %+v", kind, w.Label, w)
		}
	}
	var text1 bytes.Buffer
	r.WriteText(&text1, Options{})
	out := text1.String()
	if !strings.Contains(out, "\nCause: ") || strings.Contains(out, "First step off the correct path") {
		t.Errorf("%s: the text report does not give the cause instead of the first wrong step:\n%s", kind, out)
	}
	if !strings.Contains(r.Summary, text) {
		t.Errorf("%s: summary %q", kind, r.Summary)
	}
}

func TestSignFlip(t *testing.T) {
	k, right := setup(t, "gan")
	r := Grade(k, answers(t, scaleGradients(right, -1)), Options{})
	checkCause(t, r, "sign", "every gradient has the opposite sign: these are the gradients of −log p(y=0)")
	// the gradients that are not zero are all wrong, the forward values right
	nonzero := 0
	for _, v := range right["gradients"] {
		for _, x := range flat(v) {
			if x != 0 {
				nonzero++
			}
		}
	}
	if len(r.Wrong) != nonzero {
		t.Errorf("%d wrong, want the %d nonzero gradient numbers", len(r.Wrong), nonzero)
	}

	ae, aright := setup(t, "autoencoder")
	r = Grade(ae, answers(t, scaleGradients(aright, -1)), Options{})
	checkCause(t, r, "sign", "these are the gradients of −L")
}

func TestFactorTwo(t *testing.T) {
	k, right := setup(t, "gan")
	r := Grade(k, answers(t, scaleGradients(right, 2)), Options{})
	checkCause(t, r, "factor-2", "every gradient is twice the right one")
}

// TestHalfSum: the ½·Σ convention halves the reconstruction error L and
// every gradient.
func TestHalfSum(t *testing.T) {
	k, right := setup(t, "autoencoder")
	doc := scaleGradients(right, 0.5)
	fwd := map[string]any{}
	for n, v := range right["forward"] {
		fwd[n] = v
	}
	fwd["L"] = right["forward"]["L"].(float64) / 2
	doc["forward"] = fwd
	r := Grade(k, answers(t, doc), Options{})
	checkCause(t, r, "factor-1/2", "the ½·Σ convention")
	lWrong := false
	for _, w := range r.Wrong {
		lWrong = lWrong || w.Label == "L"
	}
	if !lWrong {
		t.Errorf("the halved L is not among the wrong numbers the mistake explains: %+v", r.Wrong)
	}
}

// TestTransposedW0 gives ∂J/∂w0 transposed, in the transpose's shape and
// written row by row into w0's own shape.
func TestTransposedW0(t *testing.T) {
	k, right := setup(t, "gan")
	w0 := right["gradients"]["w0"].([]any)
	rows, cols := len(w0), len(w0[0].([]any))
	tr := make([]any, cols)
	var trFlat []any
	for j := range cols {
		row := make([]any, rows)
		for i := range rows {
			row[i] = w0[i].([]any)[j]
			trFlat = append(trFlat, row[i])
		}
		tr[j] = row
	}
	sameShape := make([]any, rows)
	for i := range rows {
		sameShape[i] = trFlat[i*cols : (i+1)*cols]
	}
	for name, v := range map[string]any{"transpose's shape": tr, "w0's shape": sameShape} {
		doc := map[string]map[string]any{"forward": right["forward"], "gradients": {}}
		for n, g := range right["gradients"] {
			doc["gradients"][n] = g
		}
		doc["gradients"]["w0"] = v
		r := Grade(k, answers(t, doc), Options{})
		if len(r.Problems) != 0 {
			t.Errorf("%s: problems %v", name, r.Problems)
		}
		checkCause(t, r, "transposed", "∂J/∂w0 is transposed")
		for _, w := range r.Wrong {
			if !strings.HasPrefix(w.Label, "∂J/∂w0[") {
				t.Errorf("%s: %s is wrong", name, w.Label)
			}
		}
		if m := r.Mistakes[0]; len(m.Tensors) != 1 || m.Tensors[0] != "gradients.w0" {
			t.Errorf("%s: mistake %+v", name, m)
		}
	}
}

// TestOtherConventions answers with `backprop solve --format json` under
// each other reading, as it is (meta included).
func TestOtherConventions(t *testing.T) {
	k, _ := setup(t, "gan")
	for _, c := range []struct {
		o    solve.Options
		text string
	}{
		{solve.Options{Reshape: "column-major"}, "reshape order column-major (the key uses row-major)"},
		{solve.Options{Kernel: "flipped"}, "kernel orientation flipped (the key uses pytorch)"},
		{solve.Options{Label: "y1"}, "label y1 (the key uses y0)"},
	} {
		doc := solveDoc(t, keySpec(t, k), c.o)
		r := Grade(k, answers(t, doc), Options{})
		checkCause(t, r, "reading", c.text)
		if len(r.Problems) != 0 {
			t.Errorf("%s: problems %v", c.text, r.Problems)
		}
		if len(r.Notes) == 0 || !strings.Contains(r.Notes[0], "the answers say they were solved with") {
			t.Errorf("%s: notes %v", c.text, r.Notes)
		}
	}
}

// TestSolveOutputAccepted: the key's own numbers as `backprop solve
// --format json` prints them grade as right.
func TestSolveOutputAccepted(t *testing.T) {
	k, _ := setup(t, "gan")
	doc := solveDoc(t, keySpec(t, k), solve.Options{})
	if _, ok := doc["meta"]; !ok {
		t.Fatal("solve's JSON has no meta; the test means to check it is accepted")
	}
	r := Grade(k, answers(t, doc), Options{})
	if !r.OK() || len(r.Problems) != 0 {
		t.Errorf("problems %v, wrong %+v", r.Problems, r.Wrong)
	}
}

// TestTextEndsWithSummary: the text report ends with its summary
// paragraph and a newline, so that whatever follows it starts a line.
func TestTextEndsWithSummary(t *testing.T) {
	k, right := setup(t, "autoencoder")
	r := Grade(k, answers(t, scaleGradients(right, -1)), Options{})
	var b bytes.Buffer
	if err := r.WriteText(&b, Options{}); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	i := strings.LastIndex(out, "\nSummary:\n")
	if !strings.HasSuffix(out, "\n") || i < 0 {
		t.Fatalf("report does not end with a summary and a newline: %q", out[max(0, len(out)-200):])
	}
	for _, l := range strings.Split(strings.TrimSuffix(out[i+len("\nSummary:\n"):], "\n"), "\n") {
		if !strings.HasPrefix(l, "  ") || len([]rune(l)) > 100 {
			t.Errorf("summary line %q: want indented, at most 100 characters", l)
		}
	}
	var js bytes.Buffer
	if err := r.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var back struct {
		Summary  string
		Tasks    []Score
		Tensors  []Score
		Mistakes []Mistake
		Cause    string
	}
	if err := json.Unmarshal(js.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if back.Summary != r.Summary || len(back.Tasks) == 0 || len(back.Tensors) == 0 || len(back.Mistakes) == 0 || back.Cause == "" {
		t.Errorf("JSON report lacks what the text has: %s", js.String())
	}
}

// TestTaskScores: only the numbers the key asks for are scored; an asked
// tensor left out scores zero of its numbers.
func TestTaskScores(t *testing.T) {
	k, right := setup(t, "gan")
	if k.Ask == nil {
		t.Skip("the key lists no ask")
	}
	doc := map[string]map[string]any{"forward": {}, "gradients": {}}
	for _, n := range k.Ask.Forward {
		doc["forward"][n] = right["forward"][n]
	}
	gi := k.Ask.Gradients[0]
	doc["gradients"][gi] = right["gradients"][gi]
	r := Grade(k, answers(t, doc), Options{})
	for _, task := range r.Tasks {
		asked := 0
		names := k.Ask.Forward
		if task.Name == "gradients" {
			names = k.Ask.Gradients
		}
		for _, n := range names {
			raw := k.Forward[n]
			if task.Name == "gradients" {
				raw = k.Gradients[n]
			}
			v, _, _ := numbers(raw)
			asked += len(v)
		}
		if task.Total != asked {
			t.Errorf("%s: total %d, want the %d numbers asked", task.Name, task.Total, asked)
		}
		if task.Name == "forward" && (task.Credit != asked || task.Percent != 100) {
			t.Errorf("forward score %+v", task)
		}
		if task.Name == "gradients" {
			v, _, _ := numbers(k.Gradients[gi])
			if task.Credit != len(v) || task.Answered != len(v) {
				t.Errorf("gradients score %+v, want credit %d", task, len(v))
			}
		}
	}
}
