package classroom

// Browser tests of graph specs on the page: a fan-in graph with several
// inputs, a shared weight and a batch drawn within a 1024-pixel window,
// the problem bank's menu, and a spec's optimizer steps. The expected
// numbers come from PyTorch (torch 1.13, float64; the scripts are in the
// comments) and from the published Mazur example, not from the engine.

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/backprop-dev/backprop/examples"
	"github.com/backprop-dev/backprop/live"
	"github.com/backprop-dev/backprop/spec"
)

// faninSpec has every feature of a graph spec the page must draw: two data
// inputs and class labels, batched; a weight W used by two layers; an add
// whose operands come from two branches (fan-in); a concatenation with the
// input x (a skip over three layers).
const faninSpec = `title: "Fan-in, a shared weight, several inputs, a batch"
inputs:
  - {name: x, batch: true, value: [[1.0, -0.5], [0.5, 2.0]]}
  - {name: v, batch: true, value: [[0.2, 0.1], [-0.3, 0.4]]}
  - {name: y, kind: labels, value: [1, 0]}
layers:
  - {type: linear, name: a, weight: W, bias: b, activation: tanh, inputs: [x]}
  - {type: linear, name: c, weight: W, activation: tanh, inputs: [v]}
  - {type: add, name: s, inputs: [a, c]}
  - {type: concat, name: k, inputs: [s, x]}
  - {type: linear, name: z, weight: V, bias: d}
objective: {type: cross_entropy, labels: y}
params:
  W: [[0.3, -0.2], [0.1, 0.4]]
  b: [0.05, -0.1]
  V: [[0.2, -0.3, 0.1, 0.4], [-0.1, 0.2, 0.3, -0.2]]
  d: [0.0, 0.1]
`

// faninTorch is faninSpec in PyTorch (float64):
//
//	a = tanh(F.linear(x, W, b)); c = tanh(F.linear(v, W)); s = a + c
//	k = torch.cat([s, x], 1); z = F.linear(k, V, d)
//	L = F.cross_entropy(z, y); L.backward()
var faninTorch = struct {
	L     float64
	Z     []float64
	GradW []float64
}{
	L:     0.4934933625747121,
	Z:     []float64{0.033609702120962454, 0.4263227881047307, 0.5475222659828526, 0.039459943808241055},
	GradW: []float64{0.05111936624371417, -0.14901662412405517, -0.11661087798870355, 0.18736997267911396},
}

// rect is a node's box on screen.
type rect struct {
	Name                     string
	Left, Top, Right, Bottom float64
}

// nodeRects are the boxes of every node of the graph, in CSS pixels of the
// viewport (after any zoom).
func nodeRects(t *testing.T, ctx context.Context) []rect {
	t.Helper()
	return eval[[]rect](t, ctx, `Array.from(document.querySelectorAll("#graph .node")).map(d => { const r = d.getBoundingClientRect(); return {Name: d.dataset.name, Left: r.left, Top: r.top, Right: r.right, Bottom: r.bottom}; })`)
}

// checkFits asserts that every node lies inside the graph's frame (nothing
// clipped, no horizontal scrolling) and that no two nodes overlap.
func checkFits(t *testing.T, ctx context.Context, what string) {
	t.Helper()
	frame := eval[rect](t, ctx, `(() => { const r = document.getElementById("graphwrap").getBoundingClientRect(); return {Left: r.left, Top: r.top, Right: r.right, Bottom: r.bottom}; })()`)
	if sw, cw := eval[float64](t, ctx, `document.getElementById("graphwrap").scrollWidth`), eval[float64](t, ctx, `document.getElementById("graphwrap").clientWidth`); sw > cw+1 {
		t.Errorf("%s: the graph scrolls sideways: %g px wide in a %g px frame", what, sw, cw)
	}
	rs := nodeRects(t, ctx)
	if len(rs) == 0 {
		t.Fatalf("%s: no nodes drawn", what)
	}
	for i, a := range rs {
		if a.Left < frame.Left-0.5 || a.Right > frame.Right+0.5 {
			t.Errorf("%s: node %s spans x %.0f–%.0f, outside the frame %.0f–%.0f", what, a.Name, a.Left, a.Right, frame.Left, frame.Right)
		}
		for _, b := range rs[i+1:] {
			if a.Left < b.Right-0.5 && b.Left < a.Right-0.5 && a.Top < b.Bottom-0.5 && b.Top < a.Bottom-0.5 {
				t.Errorf("%s: nodes %s and %s overlap", what, a.Name, b.Name)
			}
		}
	}
}

// edgeSet is the edges drawn on the page as from→to.
func edgeSet(t *testing.T, ctx context.Context) map[string]bool {
	t.Helper()
	list := eval[[]string](t, ctx, `Array.from(document.querySelectorAll("#graph svg.edges path[data-from]")).map(p => p.dataset.from + "→" + p.dataset.to)`)
	out := map[string]bool{}
	for _, e := range list {
		out[e] = true
	}
	return out
}

func closeTo(got, want, rel float64) bool {
	return math.Abs(got-want) <= rel*math.Max(math.Abs(want), 1e-12)
}

// TestBrowserFanInGraph draws a graph spec with fan-in, several inputs, a
// shared weight and a batch in a 1024×768 window: every node fits the
// frame without overlapping another, the edges are the graph's (W to both
// of its layers, both branches into s, x into the concatenation), the
// numbers and W's summed gradient are PyTorch's, and the labels are shown
// as an input that cannot be edited while the second data input can.
func TestBrowserFanInGraph(t *testing.T) {
	s, err := spec.Parse("fanin.yaml", []byte(faninSpec))
	if err != nil {
		t.Fatal(err)
	}
	ctx := browserSized(t, 1024, 768)
	base := serveProblems(t, live.NewStore(), []Problem{{ID: "fanin", Label: "fan-in", Spec: s}})
	do(t, ctx, "loading the page", chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.CSS(`.node[data-name="z"]`)))
	waitSolves(t, ctx, 1)
	checkFits(t, ctx, "fan-in graph at 1024 px")

	edges := edgeSet(t, ctx)
	for _, e := range []string{"W→u_a", "W→u_c", "x→u_a", "v→u_c", "a→s", "c→s", "s→k", "x→k", "k→z", "V→z", "z→L", "y→L"} {
		if !edges[e] {
			t.Errorf("edge %s is not drawn (drawn: %v)", e, edges)
		}
	}

	for i, c := range cells(t, ctx, "z") {
		var v float64
		fmt.Sscan(c.V, &v)
		if !closeTo(v, faninTorch.Z[c.I], 1e-12) {
			t.Errorf("z[%d] = %s, PyTorch %v", i, c.V, faninTorch.Z[c.I])
		}
	}
	var L float64
	fmt.Sscan(cells(t, ctx, "L")[0].V, &L)
	if !closeTo(L, faninTorch.L, 1e-12) {
		t.Errorf("L = %v, PyTorch %v", L, faninTorch.L)
	}

	// labels are given; x and v are data a student may change
	for name, want := range map[string]bool{"x": true, "v": true, "y": false} {
		if got := eval[bool](t, ctx, fmt.Sprintf(`document.querySelector('.node[data-name="%s"]').classList.contains("editable")`, name)); got != want {
			t.Errorf("%s editable = %v, want %v", name, got, want)
		}
	}
	if tag := eval[string](t, ctx, `document.querySelector('.node[data-name="y"] .tag').textContent`); tag != "labels" {
		t.Errorf("y is tagged %q, want labels", tag)
	}

	// W's gradient is the sum over its two uses
	do(t, ctx, "gradients view", chromedp.Click(chromedp.CSS(`#view-grad`)))
	for _, c := range cells(t, ctx, "W") {
		var v float64
		fmt.Sscan(c.V, &v)
		if !closeTo(v, faninTorch.GradW[c.I], 1e-12) {
			t.Errorf("∂J/∂W[%d] = %s, PyTorch %v", c.I, c.V, faninTorch.GradW[c.I])
		}
	}
	do(t, ctx, "opening W", chromedp.Click(chromedp.CSS(`.node[data-name="W"] .nh`)))
	do(t, ctx, "W's panel", chromedp.WaitVisible(chromedp.CSS(`#panel .bwd`)))
	head := eval[string](t, ctx, `Array.from(document.querySelectorAll("#panel .bwd annotation")).map(a => a.textContent).join("\n")`)
	if !strings.Contains(head, "u_{a}") || !strings.Contains(head, "u_{c}") {
		t.Errorf("W's backward step does not add both uses:\n%s", head)
	}
	// the panel narrows the graph's frame: it is laid out again to fit
	checkFits(t, ctx, "fan-in graph beside W's panel")
	screenshot(t, ctx, "classroom-fanin-1024.png")

	// editing the second data input v changes c and z
	do(t, ctx, "values view", chromedp.Click(chromedp.CSS(`#view-value`)))
	before := cells(t, ctx, "c")
	do(t, ctx, "editing v[1,1]",
		chromedp.Click(chromedp.CSS(`.node[data-name="v"] .cell[data-i="0"]`)),
		chromedp.WaitVisible(chromedp.CSS(`.node[data-name="v"] .cell input`)),
		chromedp.SendKeys(chromedp.CSS(`.node[data-name="v"] .cell input`), "\b\b\b\b\b\b0.9\r"))
	waitSolves(t, ctx, 2)
	if after := cells(t, ctx, "c"); after[0].V == before[0].V {
		t.Errorf("c[1,1] did not change after v[1,1] was edited: %s", after[0].V)
	}
}

// TestBrowserBankAndOptimizerSteps picks Mazur's example from the problem
// bank's menu (beside the tabs of Problems 1 and 2) in a 1024×768 window:
// the graph fits, the numbers are the published ones (E_total =
// 0.298371109, out_o1 = 0.75136507) and the optimizer steps show w5 and w1
// after the step (0.35891648, 0.149780716). Then the conv net with pooling
// from the same menu, whose graph (eight layers deep) must wrap or zoom to
// fit, and back to Problem 1's tab.
func TestBrowserBankAndOptimizerSteps(t *testing.T) {
	ctx := browserSized(t, 1024, 768)
	base, _ := serve(t, live.NewStore())
	do(t, ctx, "loading the page", chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.CSS(`.node[data-name="h2"]`)))
	waitSolves(t, ctx, 1)
	checkFits(t, ctx, "Problem 1 at 1024 px")

	// the menu lists the whole bank, beside the two tabs
	opts := eval[[]string](t, ctx, `Array.from(document.querySelectorAll("#bank option")).map(o => o.value).filter(v => v)`)
	var want []string
	for _, name := range examples.Bank {
		want = append(want, "bank-"+strings.TrimSuffix(name, ".yaml"))
	}
	for _, id := range []string{"bank-mazur", "bank-convnet-pool", "bank-rnn", "bank-lstm", "bank-gru", "bank-attention", "bank-transformer-block", "bank-next-token"} {
		found := false
		for _, o := range opts {
			found = found || o == id
		}
		if !found {
			t.Errorf("the bank menu does not list %s: %v", id, opts)
		}
	}
	if strings.Join(opts, " ") != strings.Join(want, " ") {
		t.Errorf("bank menu %v, want %v", opts, want)
	}
	if n := eval[int](t, ctx, `document.querySelectorAll("#tabs .tab").length`); n != 2 {
		t.Errorf("%d tabs, want Problem 1 and Problem 2", n)
	}

	pick := func(id string, solves int) {
		t.Helper()
		do(t, ctx, "choosing "+id, chromedp.SetValue(chromedp.CSS(`#bank`), id),
			chromedp.Evaluate[chromedp.Void](`document.getElementById("bank").dispatchEvent(new Event("change"))`))
		waitSolves(t, ctx, solves)
		if got := eval[string](t, ctx, `location.hash`); got != "#"+id {
			t.Errorf("after choosing %s the page shows %s", id, got)
		}
	}
	pick("bank-mazur", 2)
	checkFits(t, ctx, "Mazur's example at 1024 px")
	num := func(node string, i int) float64 {
		t.Helper()
		for _, c := range cells(t, ctx, node) {
			if c.I == i {
				var v float64
				fmt.Sscan(c.V, &v)
				return v
			}
		}
		t.Fatalf("no element %d of %s on the page", i, node)
		return 0
	}
	// published: E_total = 0.298371109, out_o1 = 0.75136507
	if e := num("E", 0); math.Abs(e-0.298371109) > 1e-9 {
		t.Errorf("E = %v, published 0.298371109", e)
	}
	if o := num("out_o", 0); math.Abs(o-0.75136507) > 1e-8 {
		t.Errorf("out_o1 = %v, published 0.75136507", o)
	}

	// the optimizer steps below the graph
	do(t, ctx, "optimizer steps", chromedp.WaitVisible(chromedp.CSS(`details[data-key="train"] .trainstep[data-step="1"]`)))
	summary := eval[string](t, ctx, `document.querySelector('details[data-key="train"] summary').textContent`)
	if !strings.Contains(summary, "SGD") || !strings.Contains(summary, "η = 0.5") {
		t.Errorf("optimizer steps titled %q", summary)
	}
	if j := eval[string](t, ctx, `document.querySelector('details[data-key="train"] .trainstep[data-step="1"]').dataset.objective`); !strings.HasPrefix(j, "0.29837110") {
		t.Errorf("J before step 1 = %s, published E_total 0.298371109", j)
	}
	after := func(param string) []float64 {
		t.Helper()
		raw := eval[string](t, ctx, fmt.Sprintf(`(document.querySelector('details[data-key="train"] .trainstep[data-step="1"] .eq.after[data-name="%s"]') || {dataset: {values: "null"}}).dataset.values`, param))
		var v []float64
		if err := json.Unmarshal([]byte(raw), &v); err != nil || v == nil {
			t.Fatalf("%s after step 1: %q", param, raw)
		}
		return v
	}
	// published after one step at η = 0.5: w5 = 0.35891648, w1 = 0.149780716
	// (w5 is the output layer's w_o[1,1], w1 the hidden layer's w_h[1,1])
	if w := after("w_o"); math.Abs(w[0]-0.35891648) > 1e-8 {
		t.Errorf("w5 after the step = %v, published 0.35891648", w[0])
	}
	if w := after("w_h"); math.Abs(w[0]-0.149780716) > 1e-9 {
		t.Errorf("w1 after the step = %v, published 0.149780716", w[0])
	}
	upd := eval[string](t, ctx, `Array.from(document.querySelectorAll('details[data-key="train"] .trainparam[data-param="w_o"] annotation')).map(a => a.textContent).join("\n")`)
	if !strings.Contains(upd, `\leftarrow`) || !strings.Contains(upd, "0.358916") {
		t.Errorf("w_o's update is not worked with the numbers substituted:\n%s", upd)
	}
	noKaTeXErrors(t, ctx, `details[data-key="train"]`)
	// a parameter's panel lists its values after the steps
	do(t, ctx, "opening w_o", chromedp.Click(chromedp.CSS(`.node[data-name="w_o"] .nh`)), chromedp.WaitVisible(chromedp.CSS(`#panel .steps`)))
	if txt := eval[string](t, ctx, `Array.from(document.querySelectorAll("#panel .steps annotation")).map(a => a.textContent).join("\n")`); !strings.Contains(txt, "0.3589") {
		t.Errorf("w_o's panel does not show its value after the step:\n%s", txt)
	}
	screenshot(t, ctx, "classroom-bank-mazur-1024.png")

	// the conv net: deeper than one row of 1024 px holds
	pick("bank-convnet-pool", 3)
	checkFits(t, ctx, "the conv net at 1024 px")
	rows := eval[string](t, ctx, `document.getElementById("graph").dataset.rows`)
	zoom := eval[string](t, ctx, `document.getElementById("graph").dataset.zoom`)
	if rows == "1" && zoom == "1" {
		t.Errorf("the conv net's graph is neither wrapped nor zoomed (rows %s, zoom %s)", rows, zoom)
	}
	edges := edgeSet(t, ctx)
	for _, e := range []string{"k→u_h", "u_h→h", "h→m", "m→f", "f→z", "z→L", "y→L"} {
		if !edges[e] {
			t.Errorf("conv net: edge %s is not drawn", e)
		}
	}
	if eval[bool](t, ctx, `!!document.querySelector('details[data-key="train"]')`) {
		t.Errorf("the conv net has no train: but the page shows optimizer steps")
	}
	screenshot(t, ctx, "classroom-bank-convnet-1024.png")

	// back to a tab: the menu lets go of its choice
	do(t, ctx, "Problem 1's tab", chromedp.Click(chromedp.CSS(`.tab[data-id="main"]`)), chromedp.WaitVisible(chromedp.CSS(`.node[data-name="h2"]`)))
	if v := eval[string](t, ctx, `document.getElementById("bank").value`); v != "" {
		t.Errorf("the bank menu still shows %q on Problem 1's tab", v)
	}
}
