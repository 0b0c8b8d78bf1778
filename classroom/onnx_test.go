package classroom

// Tests of an imported ONNX model on the page (backprop serve --spec
// MODEL.onnx): the numbers the page shows are PyTorch's, committed under
// onnx/testdata/solve by the script that exported the model.

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/backprop-dev/backprop/live"
	"github.com/backprop-dev/backprop/solve"
)

const (
	mlpONNX  = "../onnx/testdata/solve/mlp.onnx"
	mlpInput = "../onnx/testdata/solve/mlp_input.json"
)

// torchMLP is onnx/testdata/solve/mlp_torch.json: PyTorch's logits, J and
// gradients of the MLP for each objective, in float64.
type torchMLP struct {
	Label      int `json:"label"`
	Objectives map[string]struct {
		Logits    [][]float64                `json:"logits"`
		J         float64                    `json:"J"`
		Gradients map[string]json.RawMessage `json:"gradients"`
	} `json:"objectives"`
}

func readTorchMLP(t *testing.T) *torchMLP {
	t.Helper()
	b, err := os.ReadFile("../onnx/testdata/solve/mlp_torch.json")
	if err != nil {
		t.Fatal(err)
	}
	var m torchMLP
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return &m
}

// mlpModel is the MLP with the objective obj (sum or cross_entropy with
// PyTorch's label).
func mlpModel(obj string, label int) ONNXModel {
	o := solve.ONNXOptions{Inputs: []string{mlpInput}, Objective: obj}
	if obj == solve.ObjectiveCrossEntropy {
		o.Labels = []int{label}
	}
	return ONNXModel{Path: mlpONNX, Options: o}
}

// onnxServer serves ONNXProblems(m).
func onnxServer(t *testing.T, m ONNXModel) *httptest.Server {
	t.Helper()
	problems, err := ONNXProblems(m)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := New(Options{Problems: problems, Live: live.NewStore()})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	return ts
}

// within reports whether got and want have the same length and differ by
// at most tol in every element.
func within(got, want []float64, tol float64) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		if math.Abs(got[i]-want[i]) > tol {
			return false
		}
	}
	return true
}

// TestONNXPageMatchesPyTorch serves the MLP exported by PyTorch for both
// objectives: every parameter node's gradient, the logits and J on the
// page equal PyTorch's to 1e-9, the parameters are the initializers under
// their file names, and every computed node has its worked steps.
func TestONNXPageMatchesPyTorch(t *testing.T) {
	torch := readTorchMLP(t)
	for _, obj := range []string{solve.ObjectiveSum, solve.ObjectiveCrossEntropy} {
		t.Run(obj, func(t *testing.T) {
			want := torch.Objectives[obj]
			if len(want.Gradients) != 4 {
				t.Fatalf("mlp_torch.json has %d gradients for %s, want 4", len(want.Gradients), obj)
			}
			ts := onnxServer(t, mlpModel(obj, torch.Label))
			code, b := post(t, ts, `{}`)
			if code != http.StatusOK {
				t.Fatalf("status %d: %s", code, b)
			}
			r := decode(t, b)
			if r.Problem != "main" || r.Title != "mlp.onnx" || r.ReadOnly == "" {
				t.Errorf("problem %q, title %q, read-only %q", r.Problem, r.Title, r.ReadOnly)
			}
			seen := map[string]bool{}
			for _, n := range r.Nodes {
				if n.Editable {
					t.Errorf("%s is editable on the page", n.Name)
				}
				if n.Kind != "param" {
					continue
				}
				file := n.FileName
				if file == "" {
					file = n.Name
				}
				raw, ok := want.Gradients[file]
				if !ok {
					t.Errorf("parameter node %s (%s in the file) is not one of PyTorch's parameters", n.Name, file)
					continue
				}
				var g any
				if err := json.Unmarshal(raw, &g); err != nil {
					t.Fatal(err)
				}
				if w := flat(g); !within(n.Grad, w, 1e-9) {
					t.Errorf("∂J/∂%s: page %v, PyTorch %v", file, n.Grad, w)
				}
				if n.Backward == nil || len(n.Backward.LinesText) == 0 {
					t.Errorf("parameter %s has no worked backward step", n.Name)
				}
				seen[file] = true
			}
			if len(seen) != len(want.Gradients) {
				t.Errorf("parameter nodes %v, PyTorch's %d parameters", seen, len(want.Gradients))
			}
			if l := node(t, r, "logits"); !within(l.Value, flat(anyOf(want.Logits)), 1e-9) {
				t.Errorf("logits: page %v, PyTorch %v", l.Value, want.Logits)
			}
			j := node(t, r, "J")
			if j.Kind != "objective" || len(j.Value) != 1 || math.Abs(j.Value[0]-want.J) > 1e-9 {
				t.Errorf("J: page %v (%s), PyTorch %v", j.Value, j.Kind, want.J)
			}
			for _, n := range r.Nodes {
				if n.Kind == "value" && (n.Forward == nil || n.Backward == nil || len(n.Forward.LinesText) == 0) {
					t.Errorf("%s lacks its worked forward or backward step", n.Name)
				}
			}
			if x := node(t, r, "x"); x.Kind != "input" || x.Col != 0 || !within(x.Value, []float64{0.5, -1, 2}, 0) {
				t.Errorf("x: %s in column %d, %v", x.Kind, x.Col, x.Value)
			}
			for _, e := range []Edge{{"x", "gemm1_ab"}, {"layer0.weight", "gemm1_ab"}, {"gemm1", "relu1"}, {"logits", "J"}} {
				if !hasEdge(r.Edges, e) {
					t.Errorf("no edge %s → %s in %v", e.From, e.To, r.Edges)
				}
			}
			// the worked texts are those of backprop solve --spec mlp.onnx
			for _, d := range []string{"handout", "full"} {
				o := mlpModel(obj, torch.Label).Options
				o.Detail = d
				sol, err := solve.SolveONNX(mlpONNX, o)
				if err != nil {
					t.Fatal(err)
				}
				var sb strings.Builder
				if err := sol.WriteMarkdown(&sb); err != nil {
					t.Fatal(err)
				}
				got := r.Worked
				if d == "full" {
					got = r.WorkedFull
				}
				if got != sb.String() {
					t.Errorf("the page's %s differs from backprop solve's", d)
				}
			}
			if r.Derivation == "" {
				t.Errorf("no derivation: %s", r.DerivationError)
			}
		})
	}
}

// anyOf turns nested float lists into the nested []any that flat reads.
func anyOf(rows [][]float64) any {
	var out []any
	for _, r := range rows {
		var row []any
		for _, x := range r {
			row = append(row, x)
		}
		out = append(out, row)
	}
	return out
}

func hasEdge(edges []Edge, e Edge) bool {
	for _, f := range edges {
		if f == e {
			return true
		}
	}
	return false
}

// TestONNXPageRefusesEdits: values and conventions of an imported model
// are refused with a message naming the file, the other tabs still take
// edits, and /api/problems names the model.
func TestONNXPageRefusesEdits(t *testing.T) {
	ts := onnxServer(t, mlpModel(solve.ObjectiveSum, 0))
	for _, body := range []string{`{"values": {"x": [1, 2, 3]}}`, `{"problem": "main", "values": {"layer0.bias": [0, 0, 0, 0]}}`} {
		code, b := post(t, ts, body)
		if code != http.StatusUnprocessableEntity || !strings.Contains(string(b), "mlp.onnx") || !strings.Contains(string(b), "cannot be changed") {
			t.Errorf("%s: status %d, %s", body, code, b)
		}
	}
	if code, b := post(t, ts, `{"conventions": {"reshape": "column-major"}}`); code != http.StatusUnprocessableEntity || !strings.Contains(string(b), "ONNX") {
		t.Errorf("a convention: status %d, %s", code, b)
	}
	if code, b := post(t, ts, `{"problem": "autoencoder", "values": {"x": [1, 0, 0, 1]}}`); code != http.StatusOK {
		t.Errorf("an edit of Problem 2 beside the ONNX tab: status %d, %s", code, b)
	}
	resp, err := http.Get(ts.URL + "/api/problems")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var list []ProblemInfo
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
		t.Fatal(err)
	}
	if len(list) < 2 || list[0].ID != "main" || list[0].Title != "mlp.onnx" || !strings.Contains(list[0].Label, "mlp.onnx") {
		t.Errorf("problems start with %+v", list[0])
	}
}

// TestONNXPageBadModel: a model the page cannot show is an error of New
// naming the file, not a server with a broken tab.
func TestONNXPageBadModel(t *testing.T) {
	for _, m := range []ONNXModel{
		{Path: mlpONNX, Options: solve.ONNXOptions{Inputs: []string{mlpInput}}},                                               // logits are not a loss
		{Path: mlpONNX, Options: solve.ONNXOptions{Inputs: []string{mlpInput}, Objective: "cross_entropy", Labels: []int{7}}}, // no class 7
		{Path: "../onnx/testdata/solve/missing.onnx", Options: solve.ONNXOptions{Inputs: []string{mlpInput}, Objective: "sum"}},
	} {
		problems, err := ONNXProblems(m)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := New(Options{Problems: problems}); err == nil || !strings.Contains(err.Error(), m.Path) {
			t.Errorf("%+v: New says %v", m.Options, err)
		}
	}
}

// TestBrowserONNXModel opens the page of the imported MLP: the graph is
// drawn with its named values and initializers, relu1's forward and
// backward steps open with their numbers, a parameter's panel names it in
// the file and says why it cannot be edited, and the worked solution
// shows.
func TestBrowserONNXModel(t *testing.T) {
	ctx := browserSized(t, 1280, 900)
	torch := readTorchMLP(t)
	problems, err := ONNXProblems(mlpModel(solve.ObjectiveCrossEntropy, torch.Label))
	if err != nil {
		t.Fatal(err)
	}
	base := serveProblems(t, live.NewStore(), problems)
	do(t, ctx, "loading the page", chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.CSS(`.node[data-name="relu1"]`)))
	waitSolves(t, ctx, 1)
	names := eval[[]string](t, ctx, `Array.from(document.querySelectorAll(".node")).map(n => n.dataset.name)`)
	want := []string{"x", "layer0.weight", "gemm1_ab", "layer0.bias", "gemm1", "relu1", "layer2.weight", "logits_ab", "layer2.bias", "logits", "J"}
	if fmt.Sprint(names) != fmt.Sprint(want) {
		t.Errorf("nodes drawn %v, want %v", names, want)
	}
	if n := eval[int](t, ctx, `document.querySelectorAll("svg.edges path[data-from]").length`); n != 10 {
		t.Errorf("%d edges drawn, want 10", n)
	}
	if n := eval[int](t, ctx, `document.querySelectorAll(".node.editable").length`); n != 0 {
		t.Errorf("%d editable nodes on an imported model's page", n)
	}
	if got := eval[string](t, ctx, `document.getElementById("readonly").hidden ? "" : document.getElementById("readonly").textContent`); !strings.Contains(got, "mlp.onnx") {
		t.Errorf("the page's note on editing reads %q", got)
	}
	if hint := eval[string](t, ctx, `document.querySelector(".hint").textContent`); strings.Contains(hint, "change it") {
		t.Errorf("the hint offers edits: %q", hint)
	}
	checkFits(t, ctx, "the imported MLP")
	noKaTeXErrors(t, ctx, "#graph")
	// the numbers of logits on the page are PyTorch's
	checkShown(t, ctx, "logits", torch.Objectives[solve.ObjectiveCrossEntropy].Logits[0])
	screenshot(t, ctx, "classroom-onnx.png")

	do(t, ctx, "opening relu1", chromedp.Click(chromedp.CSS(`.node[data-name="relu1"] .nh`)), chromedp.WaitVisible(chromedp.CSS(`#panel .fwd .line`)))
	if got := eval[string](t, ctx, `document.querySelector("#panel .fwd .line").dataset.text`); got != "relu1[1,1] = ReLU(gemm1[1,1]) = ReLU(1.44154) = 1.44154" {
		t.Errorf("relu1's first forward line: %q", got)
	}
	if got := eval[string](t, ctx, `document.querySelector("#panel .bwd .line").dataset.text`); !strings.HasPrefix(got, "∂J/∂gemm1[1,1] = ") && !strings.HasPrefix(got, "∂J/∂relu1[1,1] = ") {
		t.Errorf("relu1's first backward line: %q", got)
	}
	noKaTeXErrors(t, ctx, "#panel")

	do(t, ctx, "opening layer0.weight", chromedp.Click(chromedp.CSS(`.node[data-name="layer0.weight"] .nh`)), chromedp.WaitVisible(chromedp.CSS(`#panel .filename`)))
	panel := eval[string](t, ctx, `document.getElementById("panel").textContent`)
	if !strings.Contains(panel, "0.weight in the file") || !strings.Contains(panel, "cannot be changed") {
		t.Errorf("layer0.weight's panel: %q", panel)
	}
	noKaTeXErrors(t, ctx, `details[data-key="worked"]`)
	if !strings.Contains(workedTeX(t, ctx), `\operatorname{ReLU}`) {
		t.Error("the worked solution shows no ReLU step")
	}
}
