package grade

import (
	"strings"
	"testing"

	"github.com/backprop-dev/backprop/solve"
)

// The softmax classifier (a batch of three, mean cross-entropy against
// labels) and the conv net with max pooling: their generated variants grade
// right, and each scripted mistake, made by perturbing the key's correct
// numbers as the student would, is named.

func TestCourseVariantsGradeRight(t *testing.T) {
	for _, problem := range []string{"softmax", "convnet"} {
		k, right := setup(t, problem)
		r := Grade(k, answers(t, right), Options{})
		if !r.OK() || len(r.Mistakes) != 0 || len(r.Problems) != 0 {
			t.Errorf("%s: the key's own numbers: ok %v, %d wrong, problems %v, mistakes %+v", problem, r.OK(), len(r.Wrong), r.Problems, r.Mistakes)
		}
		if r.Checked == 0 || r.Unanswered != 0 {
			t.Errorf("%s: %d checked, %d unanswered", problem, r.Checked, r.Unanswered)
		}
	}
}

// TestMissingMean: the softmax classifier's gradients all three times the
// right ones and L the sum over the batch, as when the 1/N of the mean is
// forgotten.
func TestMissingMean(t *testing.T) {
	k, right := setup(t, "softmax")
	doc := scaleGradients(right, 3)
	fwd := map[string]any{}
	for n, v := range right["forward"] {
		fwd[n] = v
	}
	fwd["L"] = mapNums(right["forward"]["L"], func(x float64) float64 { return 3 * x })
	doc["forward"] = fwd
	r := Grade(k, answers(t, doc), Options{})
	checkCause(t, r, MistakeMissingMean, "every gradient is N = 3 times the right one: the 1/N of the mean was forgotten")
	lWrong := false
	for _, w := range r.Wrong {
		lWrong = lWrong || w.Label == "L"
	}
	if !lWrong {
		t.Errorf("L as the batch's sum is not marked wrong: %+v", r.Wrong)
	}
	// the gradients alone, L right: the same mistake
	r = Grade(k, answers(t, scaleGradients(right, 3)), Options{})
	checkCause(t, r, MistakeMissingMean, "the 1/N of the mean was forgotten")
}

func TestCourseSignFlip(t *testing.T) {
	k, right := setup(t, "softmax")
	r := Grade(k, answers(t, scaleGradients(right, -1)), Options{})
	checkCause(t, r, "sign", "as if ∂L/∂z were onehot(y) − softmax(z)")
	c, cright := setup(t, "convnet")
	r = Grade(c, answers(t, scaleGradients(cright, -1)), Options{})
	checkCause(t, r, "sign", "every gradient has the opposite sign")
}

func TestCourseFactors(t *testing.T) {
	k, right := setup(t, "convnet")
	r := Grade(k, answers(t, scaleGradients(right, 2)), Options{})
	checkCause(t, r, "factor-2", "every gradient is twice the right one")
	r = Grade(k, answers(t, scaleGradients(right, 0.5)), Options{})
	checkCause(t, r, "factor-1/2", "every gradient is half the right one")
	// a batch of three: a factor 2 is no forgotten 1/N
	s, sright := setup(t, "softmax")
	r = Grade(s, answers(t, scaleGradients(sright, 2)), Options{})
	checkCause(t, r, "factor-2", "twice the right one")
	for _, m := range r.Mistakes {
		if m.Kind == MistakeMissingMean {
			t.Errorf("a factor 2 on a batch of 3 named as the forgotten 1/N: %+v", m)
		}
	}
}

// TestCourseTransposedW2: ∂L/∂W2 written as X·δᵀ instead of δᵀ·X, in the
// transpose's shape.
func TestCourseTransposedW2(t *testing.T) {
	k, right := setup(t, "softmax")
	w2 := right["gradients"]["W2"].([]any)
	rows, cols := len(w2), len(w2[0].([]any))
	tr := make([]any, cols)
	for j := range cols {
		row := make([]any, rows)
		for i := range rows {
			row[i] = w2[i].([]any)[j]
		}
		tr[j] = row
	}
	doc := map[string]map[string]any{"forward": right["forward"], "gradients": {}}
	for n, g := range right["gradients"] {
		doc["gradients"][n] = g
	}
	doc["gradients"]["W2"] = tr
	r := Grade(k, answers(t, doc), Options{})
	checkCause(t, r, "transposed", "∂J/∂W2 is transposed")
	for _, w := range r.Wrong {
		if !strings.HasPrefix(w.Label, "∂J/∂W2[") {
			t.Errorf("%s is wrong", w.Label)
		}
	}
}

// TestConvnetColumnMajor: the conv net solved with the pooled maps
// flattened column by column (MATLAB's order) is another reading.
func TestConvnetColumnMajor(t *testing.T) {
	k, _ := setup(t, "convnet")
	doc := solveDoc(t, keySpec(t, k), solve.Options{Reshape: "column-major"})
	r := Grade(k, answers(t, doc), Options{})
	checkCause(t, r, "reading", "reshape order column-major (the key uses row-major)")
}

// TestConvnetForwardSlip: one wrong element of the pooled map m, every
// later number left as the key's: m is wrong, and the first wrong step
// is the pooling's.
func TestConvnetForwardSlip(t *testing.T) {
	k, right := setup(t, "convnet")
	doc := map[string]map[string]any{"forward": {}, "gradients": right["gradients"]}
	for n, v := range right["forward"] {
		doc["forward"][n] = v
	}
	first := true
	doc["forward"]["m"] = mapNums(right["forward"]["m"], func(x float64) float64 {
		if first {
			first = false
			return x + 0.25
		}
		return x
	})
	r := Grade(k, answers(t, doc), Options{})
	if len(r.Wrong) != 1 || r.Wrong[0].Label != "m[1,1,1]" {
		t.Errorf("wrong %+v, want m[1,1,1] alone", r.Wrong)
	}
	if r.First == nil || r.First.Target != "m" {
		t.Errorf("first wrong step %+v, want the pooling's", r.First)
	}
}
