package eval

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
)

// TestMaxDeviation checks the histogram's largest deviation from uniform
// by hand.
func TestMaxDeviation(t *testing.T) {
	for _, c := range []struct {
		hist  []int
		dev   float64
		class int
	}{
		{[]int{10, 10, 10, 10, 10, 10, 10, 10, 10, 10}, 0, 0},
		// shares 3 % and 20 % against 10 %: 10 points at class 1
		{[]int{3, 20, 10, 10, 10, 10, 10, 10, 10, 7}, 0.10, 1},
		// 3 % against 10 %, the largest gap below uniform
		{[]int{3, 12, 12, 12, 12, 12, 12, 12, 10, 3}, 0.07, 0},
		{[]int{0, 0, 50, 0, 0, 0, 0, 0, 0, 0}, 0.9, 2},
		{[]int{0, 0}, 0, -1},
	} {
		dev, class := MaxDeviation(c.hist)
		if math.Abs(dev-c.dev) > 1e-12 || class != c.class {
			t.Errorf("%v: %v at class %d, want %v at %d", c.hist, dev, class, c.dev, c.class)
		}
	}
}

// TestClassPrecision checks the per-class precision by hand: class 0
// asked 4 times, classified 0 three times; class 1 asked twice, never
// classified 1; class 2 never asked.
func TestClassPrecision(t *testing.T) {
	p := func(y int) []float64 {
		r := []float64{0.1, 0.1, 0.1}
		r[y] = 0.8
		return r
	}
	probs := [][]float64{p(0), p(0), p(2), p(0), p(0), p(2)}
	asked := []uint8{0, 0, 0, 0, 1, 1}
	got, err := ClassPrecision(probs, asked, 3)
	if err != nil {
		t.Fatal(err)
	}
	if got[0] != 0.75 || got[1] != 0 || !math.IsNaN(got[2]) {
		t.Errorf("precision %v, want [0.75 0 NaN]", got)
	}
	if _, err := ClassPrecision(probs, asked[:5], 3); err == nil {
		t.Error("5 labels for 6 samples accepted")
	}
	if _, err := ClassPrecision(probs, []uint8{0, 0, 0, 0, 1, 3}, 3); err == nil {
		t.Error("label 3 of 3 classes accepted")
	}
	sc := Score{Name: "cond", Hist: []int{4, 0, 2}, MaxDev: 1.0 / 3, MaxDevClass: 1}
	for _, v := range got {
		sc.Precision = append(sc.Precision, Float(v))
	}
	var b strings.Builder
	if err := WriteTable(&b, []Score{{Name: "plain", Hist: []int{1, 1, 1}}, sc}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"| 0.0 pp (class 0) | – |", "| 33.3 pp (class 1) | 75.0 0.0 – |", "precision per class"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, b.String())
		}
	}
	js, err := json.Marshal(sc)
	if err != nil || !strings.Contains(string(js), `"class_precision":[0.75,0,null]`) {
		t.Errorf("JSON %s (%v), want class_precision [0.75,0,null]", js, err)
	}
}

// TestLabelsPath checks where sample writes and eval reads the classes.
func TestLabelsPath(t *testing.T) {
	for in, want := range map[string]string{
		"s.idx.gz":    "s-labels.idx.gz",
		"dir/s.idx":   "dir/s-labels.idx",
		"samples.bin": "samples.bin-labels.idx",
	} {
		if got := LabelsPath(in); got != want {
			t.Errorf("LabelsPath(%q) = %q, want %q", in, got, want)
		}
	}
}
