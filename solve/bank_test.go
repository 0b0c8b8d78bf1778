package solve_test

// An external check of the problem bank: examples/mazur.yaml is Matt
// Mazur's "A Step by Step Backpropagation Example" (2015), whose numbers are
// published and widely copied. backprop solve --format json must reproduce
// them to every digit printed there.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/backprop-dev/backprop/solve"
	"github.com/backprop-dev/backprop/spec"
)

// at returns the number at the given 0-based indices of a nested JSON array
// (or the number itself without indices).
func at(v any, idx ...int) (float64, error) {
	for _, i := range idx {
		a, ok := v.([]any)
		if !ok || i < 0 || i >= len(a) {
			return 0, fmt.Errorf("no element %d in %v", i, v)
		}
		v = a[i]
	}
	f, ok := v.(float64)
	if !ok {
		return 0, fmt.Errorf("want a number, got %v", v)
	}
	return f, nil
}

// decimals is the number of digits after the point in a published number.
func decimals(s string) int {
	if i := strings.IndexByte(s, '.'); i >= 0 {
		return len(s) - i - 1
	}
	return 0
}

// TestMazurPublishedNumbers solves examples/mazur.yaml and checks the
// numbers the example publishes: the total error and out_o1 of the forward
// pass, and w5 and w1 after one gradient-descent step at η = 0.5. Each must
// round to the published value at the published number of decimals. Mazur
// numbers from 1 (w1…w8, o1, o2), the JSON from 0: w_h = [[w1, w2], [w3,
// w4]], w_o = [[w5, w6], [w7, w8]], out_o = [out_o1, out_o2].
func TestMazurPublishedNumbers(t *testing.T) {
	s, err := spec.ReadFile(filepath.Join("..", "examples", "mazur.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	sol, err := solve.Solve(s, solve.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := sol.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Forward map[string]any `json:"forward"`
		Steps   []struct {
			Step   int            `json:"step"`
			Params map[string]any `json:"params"`
		} `json:"steps"`
	}
	dec := json.NewDecoder(&buf)
	if err := dec.Decode(&doc); err != nil {
		t.Fatalf("solve --format json: %v", err)
	}
	if len(doc.Steps) != 1 || doc.Steps[0].Step != 1 {
		t.Fatalf("want one optimizer step (train: steps 1), got %d", len(doc.Steps))
	}
	// the step reports every parameter after the update
	for _, p := range []string{"w_h", "b1", "w_o", "b2"} {
		if _, ok := doc.Steps[0].Params[p]; !ok {
			t.Errorf("steps[0].params has no %s (has %v)", p, keys(doc.Steps[0].Params))
		}
	}
	step := doc.Steps[0].Params
	for _, c := range []struct {
		name, published string
		v               any
		idx             []int
	}{
		{"E_total (forward E)", "0.298371109", doc.Forward["E"], nil},
		{"out_o1 (forward out_o[0])", "0.75136507", doc.Forward["out_o"], []int{0}},
		{"w5 after the step (w_o[0][0])", "0.35891648", step["w_o"], []int{0, 0}},
		{"w1 after the step (w_h[0][0])", "0.149780716", step["w_h"], []int{0, 0}},
	} {
		got, err := at(c.v, c.idx...)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		var want float64
		fmt.Sscan(c.published, &want)
		d := decimals(c.published)
		if math.Abs(got-want) > 0.5*math.Pow(10, -float64(d)) {
			t.Errorf("%s = %v, which does not round to the published %s", c.name, got, c.published)
		} else {
			t.Logf("%s = %.*f (%v), published %s", c.name, d, got, got, c.published)
		}
	}
}

func keys(m map[string]any) []string {
	return slices.Sorted(maps.Keys(m))
}
