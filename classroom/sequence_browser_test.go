package classroom

// Browser tests of recurrent networks and attention on the page, in a
// 1024×768 window: the bank's RNN unrolled one column per time step with
// its shared weights drawn once above the steps, and an attention head
// whose attention weights and scores open as heat maps. Expected numbers
// are computed here by hand (plain loops over the spec's numbers) and
// compared with the server's answer (the JSON of POST /api/solve).

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"sort"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/backprop-dev/backprop/examples"
	"github.com/backprop-dev/backprop/live"
	"github.com/backprop-dev/backprop/spec"
)

// bankSpec parses a spec of the problem bank.
func bankSpec(t *testing.T, name string) *spec.Spec {
	t.Helper()
	data, err := examples.FS.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	s, err := spec.Parse(name, data)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// rows reads a parameter or input of s as rows of a matrix.
func rows(t *testing.T, s *spec.Spec, name string) [][]float64 {
	t.Helper()
	var data []float64
	var shape []int
	if p := s.Params[name]; p != nil {
		data, shape = p.Tensor.Data(), p.Tensor.Shape()
	} else if v, ok := s.InputValue(name); ok {
		data, shape = v.Data(), v.Shape()
	} else {
		t.Fatalf("no %s in %s", name, s.File())
	}
	cols := shape[len(shape)-1]
	var out [][]float64
	for i := 0; i < len(data); i += cols {
		out = append(out, data[i:i+cols])
	}
	return out
}

// solveJSON posts a solve request for a problem and returns its nodes by
// name.
func solveJSON(t *testing.T, base, problem string) map[string]Node {
	t.Helper()
	body, _ := json.Marshal(SolveRequest{Problem: problem})
	resp, err := http.Post(base+"/api/solve", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r Result
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil || resp.StatusCode != 200 {
		t.Fatalf("solving %s: status %d, %v", problem, resp.StatusCode, err)
	}
	out := map[string]Node{}
	for _, n := range r.Nodes {
		out[n.Name] = n
	}
	return out
}

// pickBank chooses a problem from the bank's menu and waits for its answer.
func pickBank(t *testing.T, ctx context.Context, id string, solves int) {
	t.Helper()
	do(t, ctx, "choosing "+id, chromedp.SetValue(chromedp.CSS(`#bank`), id),
		chromedp.Evaluate[chromedp.Void](`document.getElementById("bank").dispatchEvent(new Event("change"))`))
	waitSolves(t, ctx, solves)
}

// TestBrowserRecurrentColumns draws the bank's RNN over three steps at
// 1024 px: every node of step t stands in one column, the columns left to
// right in time order under their labels t = 1, 2, 3; W_xh, W_hh and b_h
// are drawn once each, above the steps, with an edge into every step; the
// states are the ones computed by hand; clicking h_1 opens its worked
// forward and backward step, the backward one gathering the gradient from
// step 2.
func TestBrowserRecurrentColumns(t *testing.T) {
	ctx := browserSized(t, 1024, 768)
	base, _ := serve(t, live.NewStore())
	do(t, ctx, "loading the page", chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.CSS(`.node[data-name="h2"]`)))
	waitSolves(t, ctx, 1)
	pickBank(t, ctx, "bank-rnn", 2)
	checkFits(t, ctx, "the RNN at 1024 px")

	// one column per time step, in time order
	type col struct {
		Step         int
		Name         string
		Center, Left float64
		Top, Bottom  float64
	}
	nodes := eval[[]col](t, ctx, `Array.from(document.querySelectorAll("#graph .node[data-step]")).map(d => { const r = d.getBoundingClientRect(); return {Step: +d.dataset.step, Name: d.dataset.name, Center: (r.left + r.right) / 2, Left: r.left, Top: r.top, Bottom: r.bottom}; })`)
	byStep := map[int][]col{}
	for _, n := range nodes {
		byStep[n.Step] = append(byStep[n.Step], n)
	}
	if len(byStep) != 3 {
		t.Fatalf("nodes of %d time steps on the page, want 3: %+v", len(byStep), nodes)
	}
	prev := math.Inf(-1)
	stepTop := math.Inf(1)
	for step := 1; step <= 3; step++ {
		var names []string
		for _, n := range byStep[step] {
			names = append(names, n.Name)
			stepTop = math.Min(stepTop, n.Top)
			if math.Abs(n.Center-byStep[step][0].Center) > 1 {
				t.Errorf("step %d: %s is centred at x = %.0f, %s at %.0f: not one column", step, n.Name, n.Center, byStep[step][0].Name, byStep[step][0].Center)
			}
		}
		sort.Strings(names)
		want := []string{fmt.Sprintf("h_%d", step), fmt.Sprintf("u_h_%d", step), fmt.Sprintf("x_%d", step)}
		if strings.Join(names, " ") != strings.Join(want, " ") {
			t.Errorf("step %d's column holds %v, want %v", step, names, want)
		}
		if c := byStep[step][0].Center; c <= prev {
			t.Errorf("step %d's column (x = %.0f) is not right of step %d's (%.0f)", step, c, step-1, prev)
		} else {
			prev = c
		}
	}
	labels := eval[[]string](t, ctx, `Array.from(document.querySelectorAll("#graph .steplabel")).map(e => e.textContent)`)
	if strings.Join(labels, ",") != "t = 1,t = 2,t = 3" {
		t.Errorf("step labels %q", labels)
	}

	// the shared weights: one node each, above the steps, an edge to every step
	edges := edgeSet(t, ctx)
	for _, w := range []string{"W_xh", "W_hh", "b_h"} {
		if n := eval[int](t, ctx, fmt.Sprintf(`document.querySelectorAll('.node[data-name^="%s"]').length`, w)); n != 1 {
			t.Errorf("%s is drawn %d times, want once", w, n)
		}
		if !eval[bool](t, ctx, fmt.Sprintf(`document.querySelector('.node[data-name="%s"]').classList.contains("shared")`, w)) {
			t.Errorf("%s is not marked as shared by the steps", w)
		}
		if b := eval[float64](t, ctx, fmt.Sprintf(`document.querySelector('.node[data-name="%s"]').getBoundingClientRect().bottom`, w)); b > stepTop {
			t.Errorf("%s (bottom %.0f) is not above the steps (top %.0f)", w, b, stepTop)
		}
		for step := 1; step <= 3; step++ {
			if e := fmt.Sprintf("%s→u_h_%d", w, step); !edges[e] {
				t.Errorf("edge %s is not drawn", e)
			}
		}
	}
	for _, e := range []string{"h_1→u_h_2", "h_2→u_h_3", "x→x_1", "x_2→u_h_2", "u_h_3→h_3", "h_3→h", "h→y", "y→E"} {
		if !edges[e] {
			t.Errorf("edge %s is not drawn", e)
		}
	}

	// the states, by hand: h_t = tanh(W_xh x_t + W_hh h_{t−1} + b_h)
	s := bankSpec(t, "rnn.yaml")
	x, wxh, whh, bh := rows(t, s, "x"), rows(t, s, "W_xh"), rows(t, s, "W_hh"), rows(t, s, "b_h")[0]
	h := make([]float64, len(whh))
	for step := 1; step <= 3; step++ {
		next := make([]float64, len(h))
		for i := range next {
			u := bh[i]
			for j := range x[step-1] {
				u += wxh[i][j] * x[step-1][j]
			}
			for j := range h {
				u += whh[i][j] * h[j]
			}
			next[i] = math.Tanh(u)
		}
		h = next
		got := cells(t, ctx, fmt.Sprintf("h_%d", step))
		if len(got) != len(h) {
			t.Fatalf("h_%d: %d numbers on the page, want %d", step, len(got), len(h))
		}
		for _, c := range got {
			var v float64
			fmt.Sscan(c.V, &v)
			if !closeTo(v, h[c.I], 1e-12) {
				t.Errorf("h_%d[%d] = %v, by hand %v", step, c.I+1, v, h[c.I])
			}
		}
	}

	// clicking h_1: its worked steps, the backward one adding step 2's term
	do(t, ctx, "opening h_1", chromedp.Click(chromedp.CSS(`.node[data-name="h_1"] .nh`)), chromedp.WaitVisible(chromedp.CSS(`#panel .bwd .line`)))
	if n := eval[int](t, ctx, `document.querySelectorAll("#panel .fwd .line").length`); n != 2 {
		t.Errorf("h_1's forward step has %d element lines, want 2", n)
	}
	bwd := eval[string](t, ctx, `Array.from(document.querySelectorAll("#panel .bwd .line")).map(d => d.dataset.text).join("\n")`)
	if !strings.Contains(bwd, "u_h_2") || !strings.Contains(bwd, "W_hh") {
		t.Errorf("h_1's backward lines do not gather the gradient from step 2:\n%s", bwd)
	}
	noKaTeXErrors(t, ctx, "#panel")
	checkFits(t, ctx, "the RNN beside h_1's panel")
	screenshot(t, ctx, "classroom-rnn-1024.png")
}

// TestBrowserAttentionHeatmap opens the bank's attention head at 1024 px
// and clicks its attention weights A: the panel draws a 3×3 heat map whose
// numbers are softmax(QKᵀ/√d_k) computed by hand and the server's solve
// JSON, each row summing to 1 and the darkest cell the largest; the scores
// S open as a heat map too, and A's worked step is there as for any node.
func TestBrowserAttentionHeatmap(t *testing.T) {
	ctx := browserSized(t, 1024, 768)
	base, _ := serve(t, live.NewStore())
	do(t, ctx, "loading the page", chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.CSS(`.node[data-name="h2"]`)))
	waitSolves(t, ctx, 1)
	pickBank(t, ctx, "bank-attention", 2)
	checkFits(t, ctx, "the attention head at 1024 px")

	// by hand: Q = x Wqᵀ, K = x Wkᵀ, S = QKᵀ/√d_k, A = softmax by rows
	s := bankSpec(t, "attention.yaml")
	x, wq, wk := rows(t, s, "x"), rows(t, s, "Wq"), rows(t, s, "Wk")
	proj := func(w [][]float64) [][]float64 {
		out := make([][]float64, len(x))
		for i := range x {
			out[i] = make([]float64, len(w))
			for j := range w {
				for k := range x[i] {
					out[i][j] += x[i][k] * w[j][k]
				}
			}
		}
		return out
	}
	q, k := proj(wq), proj(wk)
	dk := float64(len(wq))
	var S, A []float64
	for i := range q {
		row := make([]float64, len(k))
		z := 0.0
		for j := range k {
			for c := range q[i] {
				row[j] += q[i][c] * k[j][c]
			}
			row[j] /= math.Sqrt(dk)
			S = append(S, row[j])
		}
		for j := range row {
			z += math.Exp(row[j])
		}
		for j := range row {
			A = append(A, math.Exp(row[j])/z)
		}
	}
	server := solveJSON(t, base, "bank-attention")
	if server["A"].Heatmap != "attention" || server["S"].Heatmap != "scores" || server["Q"].Heatmap != "" {
		t.Errorf("heat maps in the solve JSON: A %q, S %q, Q %q", server["A"].Heatmap, server["S"].Heatmap, server["Q"].Heatmap)
	}

	type hc struct {
		I    int
		V    string
		Text string
		BG   string
	}
	heat := func(node string, want, fromServer []float64) []hc {
		t.Helper()
		do(t, ctx, "opening "+node, chromedp.Click(chromedp.CSS(`.node[data-name="`+node+`"] .nh`)), chromedp.WaitVisible(chromedp.CSS(`#panel table.heatmap`)))
		got := eval[[]hc](t, ctx, `Array.from(document.querySelectorAll("#panel table.heatmap td.hc")).map(c => ({I: +c.dataset.i, V: c.dataset.v, Text: c.textContent, BG: getComputedStyle(c).backgroundColor}))`)
		if len(got) != len(want) {
			t.Fatalf("%s: the heat map has %d cells, want %d", node, len(got), len(want))
		}
		for _, c := range got {
			var v float64
			fmt.Sscan(c.V, &v)
			if !closeTo(v, want[c.I], 1e-12) {
				t.Errorf("%s heat map cell %d = %v, by hand %v", node, c.I+1, v, want[c.I])
			}
			if v != fromServer[c.I] {
				t.Errorf("%s heat map cell %d = %v, the solve JSON %v", node, c.I+1, v, fromServer[c.I])
			}
			if c.Text == "" {
				t.Errorf("%s heat map cell %d shows no number", node, c.I+1)
			}
		}
		return got
	}
	cellsA := heat("A", A, server["A"].Value)
	alpha := func(bg string) float64 {
		var r, g, b int
		var a float64
		if n, _ := fmt.Sscanf(bg, "rgba(%d, %d, %d, %g)", &r, &g, &b, &a); n == 4 {
			return a
		}
		return 1
	}
	hi, lo := 0, 0
	for i, c := range cellsA {
		if A[c.I] > A[cellsA[hi].I] {
			hi = i
		}
		if A[c.I] < A[cellsA[lo].I] {
			lo = i
		}
	}
	if alpha(cellsA[hi].BG) <= alpha(cellsA[lo].BG) {
		t.Errorf("the largest weight's cell (%s) is not darker than the smallest's (%s)", cellsA[hi].BG, cellsA[lo].BG)
	}
	for i := 0; i < 3; i++ {
		if sum := A[3*i] + A[3*i+1] + A[3*i+2]; math.Abs(sum-1) > 1e-12 {
			t.Errorf("row %d of A sums to %v", i+1, sum)
		}
	}
	if !eval[bool](t, ctx, `!!document.querySelector("#panel .fwd .line") && !!document.querySelector("#panel .bwd .line")`) {
		t.Errorf("A's panel has no worked forward and backward step")
	}
	bwd := eval[string](t, ctx, `Array.from(document.querySelectorAll("#panel .bwd .eq")).map(d => d.title || "").join("\n") + Array.from(document.querySelectorAll("#panel .bwd annotation")).map(a => a.textContent).join("\n")`)
	if !strings.Contains(bwd, "O") {
		t.Errorf("A's backward step does not take its gradient from O:\n%s", bwd)
	}
	screenshot(t, ctx, "classroom-attention-1024.png")
	heat("S", S, server["S"].Value)
	checkFits(t, ctx, "the attention head beside S's panel")
	noKaTeXErrors(t, ctx, "#panel")
}
