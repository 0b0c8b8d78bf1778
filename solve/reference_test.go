package solve_test

// The reference test checks backprop against numbers computed independently
// by PyTorch autograd in float64 (testdata/reference.py, run once by hand;
// its output testdata/reference.json is committed): every forward value and
// gradient, and for a spec with train: every optimizer step's objective and
// parameters (torch.optim) and the final objective, as backprop solve
// --format json writes them. See testdata/README.md.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/backprop-dev/backprop/solve"
	"github.com/backprop-dev/backprop/spec"
)

// Tolerances against the reference. An element agrees when its relative
// error |got − want| / |want| is at most refRelTol, or when its absolute
// error is at most refFloorTol times the largest magnitude in the reference
// tensor it belongs to. The floor is for values that are zero or nearly so
// because of cancellation; their rounding error is relative to the
// tensor's scale, not to their own value. A fixed absolute floor would not
// work: the gradients of Problem 1 are about 1e-6, so a floor of 1e-15
// would accept relative errors up to 1e-9 there.
const (
	refRelTol   = 1e-12
	refFloorTol = 1e-15
)

// refFile is testdata/reference.json.
type refFile struct {
	Generator    string    `json:"generator"`
	TorchVersion string    `json:"torch_version"`
	DType        string    `json:"dtype"`
	Cases        []refCase `json:"cases"`
}

type refCase struct {
	Spec      string          `json:"spec"` // relative to the module root
	Kernel    string          `json:"kernel"`
	Reshape   string          `json:"reshape"`
	Label     string          `json:"label"`
	Forward   json.RawMessage `json:"forward"`
	Gradients json.RawMessage `json:"gradients"`
	// Steps and FinalObjective are there when the spec has train:, as in
	// backprop solve --format json.
	Steps          []refStep `json:"steps"`
	FinalObjective *float64  `json:"final_objective"`
}

// refStep is one optimizer step: the objective before the update and every
// parameter after it.
type refStep struct {
	Step      int             `json:"step"`
	Objective float64         `json:"objective"`
	Params    json.RawMessage `json:"params"`
}

// solutionJSON is what backprop solve --format json writes.
type solutionJSON struct {
	Forward        json.RawMessage `json:"forward"`
	Gradients      json.RawMessage `json:"gradients"`
	Steps          []refStep       `json:"steps"`
	FinalObjective *float64        `json:"final_objective"`
}

func (c refCase) String() string {
	return fmt.Sprintf("%s/%s/%s/%s", strings.TrimSuffix(filepath.Base(c.Spec), ".yaml"), c.Kernel, c.Reshape, c.Label)
}

// refTensor is a named tensor of the reference, in file order.
type refTensor struct {
	Name  string
	Shape []int
	Data  []float64
}

func loadReference(t *testing.T) *refFile {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "reference.json"))
	if err != nil {
		t.Fatal(err)
	}
	var f refFile
	if err := json.Unmarshal(data, &f); err != nil {
		t.Fatalf("testdata/reference.json: %v", err)
	}
	if f.DType != "float64" || len(f.Cases) == 0 {
		t.Fatalf("testdata/reference.json: dtype %q with %d cases, want float64 cases", f.DType, len(f.Cases))
	}
	return &f
}

// decodeTensors reads a JSON object of nested arrays (or numbers), keeping
// the keys' order.
func decodeTensors(raw json.RawMessage) ([]refTensor, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, fmt.Errorf("want an object, got %v (%v)", tok, err)
	}
	var out []refTensor
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		name, _ := tok.(string)
		var v any
		if err := dec.Decode(&v); err != nil {
			return nil, fmt.Errorf("%s: %v", name, err)
		}
		rt := refTensor{Name: name}
		if err := flattenNested(v, 0, &rt); err != nil {
			return nil, fmt.Errorf("%s: %v", name, err)
		}
		out = append(out, rt)
	}
	if _, err := dec.Token(); err != nil {
		return nil, err
	}
	return out, nil
}

// flattenNested appends the numbers of v in row-major order to rt.Data and
// records its shape, rejecting ragged arrays.
func flattenNested(v any, depth int, rt *refTensor) error {
	switch x := v.(type) {
	case json.Number:
		if depth != len(rt.Shape) && len(rt.Data) > 0 {
			return fmt.Errorf("ragged array at depth %d", depth)
		}
		if len(rt.Data) == 0 {
			rt.Shape = rt.Shape[:depth]
		}
		f, err := x.Float64()
		if err != nil {
			return err
		}
		rt.Data = append(rt.Data, f)
	case []any:
		switch {
		case len(rt.Data) == 0 && len(rt.Shape) == depth:
			rt.Shape = append(rt.Shape, len(x))
		case depth >= len(rt.Shape) || rt.Shape[depth] != len(x):
			return fmt.Errorf("ragged array at depth %d", depth)
		}
		for _, e := range x {
			if err := flattenNested(e, depth+1, rt); err != nil {
				return err
			}
		}
	default:
		return fmt.Errorf("want a number or a list, got %T", v)
	}
	return nil
}

// worst is the largest disagreement seen: the element with the largest
// relative error, the element with the largest absolute error, and the
// elements that pass only by the floor (with the largest relative error
// among them), which are not counted in rel.
type worst struct {
	rel, abs       float64
	relAt, absAt   string
	relGot, relRef float64
	fails          int
	floorOnly      int
	floorRel       float64
	floorAt        string
}

func (w *worst) String() string {
	s := fmt.Sprintf("relative %.3g at %s (%v vs %v), absolute %.3g at %s",
		w.rel, w.relAt, w.relGot, w.relRef, w.abs, w.absAt)
	if w.floorOnly > 0 {
		s += fmt.Sprintf("; %d elements agree only within the floor, worst relative %.3g at %s", w.floorOnly, w.floorRel, w.floorAt)
	}
	return s
}

func (w *worst) merge(name string, o *worst) {
	if o.rel > w.rel {
		w.rel, w.relAt, w.relGot, w.relRef = o.rel, name+" "+o.relAt, o.relGot, o.relRef
	}
	if o.abs > w.abs {
		w.abs, w.absAt = o.abs, name+" "+o.absAt
	}
	if o.floorRel > w.floorRel {
		w.floorRel, w.floorAt = o.floorRel, name+" "+o.floorAt
	}
	w.floorOnly += o.floorOnly
	w.fails += o.fails
}

// compareTensors checks got against want (same names in the same order,
// same shapes) and records the worst error in w. Each element must be
// within relTol relative error, or within floorTol·max|want| absolute
// error, where the maximum is over the element's tensor. Relative errors
// are measured only where the reference is not zero.
func compareTensors(t *testing.T, what string, got, want []refTensor, relTol, floorTol float64, w *worst) {
	t.Helper()
	var gn, wn []string
	for _, g := range got {
		gn = append(gn, g.Name)
	}
	for _, r := range want {
		wn = append(wn, r.Name)
	}
	if fmt.Sprint(gn) != fmt.Sprint(wn) {
		t.Errorf("%s: backprop reports %v, the reference %v", what, gn, wn)
		return
	}
	for i, r := range want {
		g := got[i]
		if fmt.Sprint(g.Shape) != fmt.Sprint(r.Shape) || len(g.Data) != len(r.Data) {
			t.Errorf("%s %s: shape %v, the reference's is %v", what, r.Name, g.Shape, r.Shape)
			continue
		}
		scale := 0.0
		for _, ref := range r.Data {
			scale = math.Max(scale, math.Abs(ref))
		}
		absTol := floorTol * scale
		for k, ref := range r.Data {
			v := g.Data[k]
			at := fmt.Sprintf("%s %s%s", what, r.Name, index(r.Shape, k))
			d := math.Abs(v - ref)
			rel := d / math.Max(math.Abs(ref), 1e-300)
			if ref == 0 {
				rel = 0
				if d > 0 {
					rel = math.Inf(1)
				}
			}
			switch {
			case rel <= relTol:
				if ref != 0 && rel > w.rel {
					w.rel, w.relAt, w.relGot, w.relRef = rel, at, v, ref
				}
			case d <= absTol:
				w.floorOnly++
				if rel > w.floorRel {
					w.floorRel, w.floorAt = rel, at
				}
			default: // NaN lands here too
				w.fails++
				if w.fails <= 20 {
					t.Errorf("%s: backprop %v, PyTorch %v (relative error %.3g, absolute %.3g)", at, v, ref, rel, d)
				}
				if !(rel <= w.rel) {
					w.rel, w.relAt, w.relGot, w.relRef = rel, at, v, ref
				}
			}
			if d > w.abs || math.IsNaN(d) {
				w.abs, w.absAt = d, at
			}
		}
	}
}

// index renders flat position k of shape as [i,j,…], 0-based; "" for a scalar.
func index(shape []int, k int) string {
	if len(shape) == 0 {
		return ""
	}
	idx := make([]string, len(shape))
	for a := len(shape) - 1; a >= 0; a-- {
		idx[a] = fmt.Sprint(k % shape[a])
		k /= shape[a]
	}
	return "[" + strings.Join(idx, ",") + "]"
}

func solveCase(t *testing.T, c refCase, dtype string) *solve.Solution {
	t.Helper()
	path := filepath.Join("..", filepath.FromSlash(c.Spec))
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("the reference has cases for %s, which is missing: %v", c.Spec, err)
	}
	s, err := spec.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sol, err := solve.Solve(s, solve.Options{DType: dtype, Kernel: c.Kernel, Reshape: c.Reshape, Label: c.Label})
	if err != nil {
		t.Fatalf("%s: %v", c, err)
	}
	return sol
}

// solutionDoc is sol as backprop solve --format json writes it, read back.
func solutionDoc(t *testing.T, sol *solve.Solution) *solutionJSON {
	t.Helper()
	var buf bytes.Buffer
	if err := sol.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	var doc solutionJSON
	if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatalf("solve --format json: %v\n%s", err, buf.Bytes())
	}
	return &doc
}

// compareCase compares the JSON document of a solution with a reference
// case: forward values, gradients, each optimizer step's objective and
// parameters, and the final objective.
func compareCase(t *testing.T, doc *solutionJSON, c refCase, relTol, floorTol float64, w *worst) {
	t.Helper()
	pairs := []struct {
		what      string
		got, want json.RawMessage
	}{{"forward", doc.Forward, c.Forward}, {"gradient", doc.Gradients, c.Gradients}}
	if len(doc.Steps) != len(c.Steps) {
		t.Errorf("backprop reports %d optimizer steps, the reference %d", len(doc.Steps), len(c.Steps))
	} else {
		for k, st := range c.Steps {
			what := fmt.Sprintf("step %d", st.Step)
			if doc.Steps[k].Step != st.Step {
				t.Errorf("%s: backprop numbers it step %d", what, doc.Steps[k].Step)
			}
			compareTensors(t, what, []refTensor{{Name: "objective", Data: []float64{doc.Steps[k].Objective}}},
				[]refTensor{{Name: "objective", Data: []float64{st.Objective}}}, relTol, floorTol, w)
			pairs = append(pairs, struct {
				what      string
				got, want json.RawMessage
			}{what + " params", doc.Steps[k].Params, st.Params})
		}
	}
	switch {
	case (doc.FinalObjective == nil) != (c.FinalObjective == nil):
		t.Errorf("final_objective: backprop %v, the reference %v", doc.FinalObjective, c.FinalObjective)
	case c.FinalObjective != nil:
		compareTensors(t, "final", []refTensor{{Name: "objective", Data: []float64{*doc.FinalObjective}}},
			[]refTensor{{Name: "objective", Data: []float64{*c.FinalObjective}}}, relTol, floorTol, w)
	}
	for _, p := range pairs {
		got, err := decodeTensors(p.got)
		if err != nil {
			t.Errorf("backprop's %s: %v", p.what, err)
			continue
		}
		want, err := decodeTensors(p.want)
		if err != nil {
			t.Fatalf("reference %s: %v", p.what, err)
		}
		compareTensors(t, p.what, got, want, relTol, floorTol, w)
	}
}

// TestReference compares every forward value, gradient and optimizer step
// of backprop solve --format json in float64 with PyTorch's.
func TestReference(t *testing.T) {
	f := loadReference(t)
	t.Logf("reference: %d cases from %s, torch %s", len(f.Cases), f.Generator, f.TorchVersion)
	var all worst
	for _, c := range f.Cases {
		t.Run(c.String(), func(t *testing.T) {
			sol := solveCase(t, c, "float64")
			var w worst
			compareCase(t, solutionDoc(t, sol), c, refRelTol, refFloorTol, &w)
			t.Logf("worst error: %s", &w)
			if w.fails > 0 {
				t.Errorf("%d elements disagree with PyTorch; if %s changed on purpose, regenerate the reference: %s", w.fails, c.Spec, regenerate)
			}
			all.merge(c.String(), &w)
		})
	}
	t.Logf("worst error over all cases: %s", &all)
}

// bank is the problem bank, examples/<name>.yaml, each checked against
// PyTorch.
var bank = []string{"mazur", "softmax-classifier", "convnet-pool", "batchnorm", "residual", "dropout",
	"weight-decay", "momentum", "adam", "layernorm", "gated-concat",
	"rnn", "lstm", "gru", "attention", "transformer-block", "next-token"}

// minCourseSpecs is how many random course problems (testdata/specs/course-*.yaml,
// drawn by the reference script) the reference must hold at least.
const minCourseSpecs = 8

// TestReferenceCoverage makes sure the committed reference is current: it
// covers every spec under examples/ and testdata/specs, every problem of
// the bank, at least minCourseSpecs course problems, the optimizer steps of
// every spec with train:, and Problem 1 under both kernel orientations,
// both reshape orders and both labels.
func TestReferenceCoverage(t *testing.T) {
	f := loadReference(t)
	seen := map[string]map[string]bool{}
	for _, c := range f.Cases {
		if seen[c.Spec] == nil {
			seen[c.Spec] = map[string]bool{}
		}
		for _, v := range []string{c.Kernel, c.Reshape, c.Label} {
			seen[c.Spec][v] = true
		}
	}
	specs, err := filepath.Glob(filepath.Join("testdata", "specs", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(specs) == 0 {
		t.Fatal("no specs under testdata/specs")
	}
	for _, p := range specs {
		rel := "solve/" + filepath.ToSlash(p)
		if seen[rel] == nil {
			t.Errorf("%s has no reference values: run %s", rel, regenerate)
		}
	}
	examples, err := filepath.Glob(filepath.Join("..", "examples", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range examples {
		rel, _ := filepath.Rel("..", p)
		if rel = filepath.ToSlash(rel); seen[rel] == nil {
			t.Errorf("%s has no reference values: run %s", rel, regenerate)
		}
	}
	for _, b := range bank {
		if seen["examples/"+b+".yaml"] == nil {
			t.Errorf("the bank problem examples/%s.yaml has no reference values: run %s", b, regenerate)
		}
	}
	course, err := filepath.Glob(filepath.Join("testdata", "specs", "course-*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(course) < minCourseSpecs {
		t.Errorf("%d course problems under testdata/specs, want at least %d", len(course), minCourseSpecs)
	}
	// a spec with train: has its steps in every case, and only such a spec
	for _, c := range f.Cases {
		s, err := spec.ReadFile(filepath.Join("..", filepath.FromSlash(c.Spec)))
		if err != nil {
			t.Errorf("%s: %v", c, err)
			continue
		}
		want := 0
		if s.Train != nil {
			want = s.Train.Steps
		}
		if len(c.Steps) != want || (want > 0) != (c.FinalObjective != nil) {
			t.Errorf("%s: the reference has %d steps (final objective %v), the spec asks for %d", c, len(c.Steps), c.FinalObjective != nil, want)
		}
	}
	p1 := seen["examples/problem1.yaml"]
	for _, v := range []string{"pytorch", "flipped", "row-major", "column-major", "y0", "y1"} {
		if !p1[v] {
			t.Errorf("examples/problem1.yaml has no reference case with %s", v)
		}
	}
}

const regenerate = "/usr/bin/python3 solve/testdata/reference.py (from the module root)"

// TestFloat32MatchesFloat64 solves Problem 1 in float32 under every
// convention and compares each forward value and gradient with float64,
// element by element, to a relative 1e-5. Under the problem's own reading
// p(y=0) is within 3e-6 of 1 and the gradients are about 1e-6, so this holds
// only if float32 computes log p and 1 − p without cancellation.
func TestFloat32MatchesFloat64(t *testing.T) {
	f := loadReference(t)
	n := 0
	for _, c := range f.Cases {
		if c.Spec != "examples/problem1.yaml" {
			continue
		}
		n++
		t.Run(c.String(), func(t *testing.T) {
			s64 := solveCase(t, c, "float64")
			s32 := solveCase(t, c, "float32")
			if s32.DType != "float32" {
				t.Fatalf("dtype %q, want float32", s32.DType)
			}
			var w worst
			compareTensors(t, "forward", asRef(s32.Forward), asRef(s64.Forward), 1e-5, 0, &w)
			compareTensors(t, "gradient", asRef(s32.Gradients), asRef(s64.Gradients), 1e-5, 0, &w)
			t.Logf("worst float32 error: %s", &w)
		})
	}
	if n == 0 {
		t.Fatal("no Problem 1 cases in the reference")
	}
}

// Float32 tolerances against the reference: relative 1e-5, or an absolute
// error of at most f32FloorTol times the largest magnitude of the element's
// tensor, for elements near zero by cancellation (float32's rounding unit
// is 6e-8).
const (
	f32RelTol   = 1e-5
	f32FloorTol = 1e-6
)

// TestReferenceFloat32 solves every case in float32 and compares it with
// PyTorch's float64 numbers, optimizer steps included.
func TestReferenceFloat32(t *testing.T) {
	f := loadReference(t)
	var all worst
	for _, c := range f.Cases {
		t.Run(c.String(), func(t *testing.T) {
			sol := solveCase(t, c, "float32")
			if sol.DType != "float32" {
				t.Fatalf("dtype %q, want float32", sol.DType)
			}
			var w worst
			compareCase(t, solutionDoc(t, sol), c, f32RelTol, f32FloorTol, &w)
			t.Logf("worst float32 error: %s", &w)
			all.merge(c.String(), &w)
		})
	}
	t.Logf("worst float32 error over all cases: %s", &all)
}

func asRef(ns []solve.Named) []refTensor {
	out := make([]refTensor, len(ns))
	for i, n := range ns {
		out[i] = refTensor{Name: n.Name, Shape: n.Value.Shape, Data: n.Value.Data}
	}
	return out
}
