package classroom

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestCausalMaskAsJSON: the next-token model's causal head answers with
// valid JSON, its masked scores M null above the diagonal (JSON has no
// −∞) and finite on and below it, and M, S and A marked as heat maps.
func TestCausalMaskAsJSON(t *testing.T) {
	ts, _ := newTestServer(t)
	code, b := post(t, ts, `{"problem": "bank-next-token"}`)
	if code != 200 {
		t.Fatalf("status %d: %s", code, b)
	}
	var r struct {
		Nodes []struct {
			Name    string     `json:"name"`
			Value   []*float64 `json:"value"`
			Heatmap string     `json:"heatmap"`
		} `json:"nodes"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("not JSON: %v\n%.300s", err, b)
	}
	kinds := map[string]string{}
	for _, n := range r.Nodes {
		kinds[n.Name] = n.Heatmap
		if n.Name != "M" {
			continue
		}
		if len(n.Value) != 9 {
			t.Fatalf("M has %d numbers, want 3×3", len(n.Value))
		}
		for k, v := range n.Value {
			i, j := k/3, k%3
			if (j > i) != (v == nil) {
				t.Errorf("M[%d,%d] = %v: want null exactly above the diagonal", i+1, j+1, v)
			}
		}
	}
	if kinds["S"] != "scores" || kinds["M"] != "masked" || kinds["A"] != "attention" || kinds["O"] != "" {
		t.Errorf("heat maps %v", kinds)
	}
	if strings.Contains(string(b), `"shared":true`) || strings.Contains(string(b), `"step":`) {
		t.Errorf("a network without time steps has nodes with a step or shared weights")
	}
}
