package solve

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/backprop-dev/backprop/autograd"
	"github.com/backprop-dev/backprop/onnx"
	"github.com/backprop-dev/backprop/ops"
	"github.com/backprop-dev/backprop/spec"
	"github.com/backprop-dev/backprop/tensor"
	"github.com/backprop-dev/backprop/trace"
)

// Objectives of a model without a loss (ONNXOptions.Objective).
const (
	ObjectiveSum          = "sum"           // J = the sum of the output's elements
	ObjectiveCrossEntropy = "cross_entropy" // J = the cross-entropy of the output's logits against Labels, averaged over the rows
)

// ONNXOptions choose the input and the objective of an imported model,
// with the precision and detail of Options (its conventions do not apply).
type ONNXOptions struct {
	Options
	// Inputs are the files of the model's inputs, in the model's order: a
	// JSON nested list of numbers, or an ONNX TensorProto (.pb).
	Inputs []string
	// Objective is ObjectiveSum or ObjectiveCrossEntropy; empty takes the
	// model's output as J, which it must then be a scalar (a model that
	// ends in its loss).
	Objective string
	// Labels are the class indices of cross_entropy, from 0 as in
	// PyTorch, one per row of the output.
	Labels []int
	// Output names the model output the objective is taken of; empty
	// takes the first.
	Output string
}

// ONNXGraph is an imported model built for a worked solution: its nodes
// in creation order, after the objective's backward pass.
type ONNXGraph[T tensor.Float] struct {
	Title     string             // the model file
	Graph     *onnx.Graph[T]     // the import
	Nodes     []*autograd.Var[T] // every node the objective depends on, each after its inputs
	Output    *autograd.Var[T]   // the output the objective is taken of
	Objective *autograd.Var[T]   // J; autograd.Backward has run from it
	What      string             // the objective in words
	// Renamed lists the nodes given a readable name in the worked
	// solution, {new, ONNX name}, in node order (rename).
	Renamed [][2]string
}

// ReadInput reads one input of a model from a file: an ONNX TensorProto
// (.pb) or a JSON nested list of numbers (its nesting gives the shape).
func ReadInput(path, name string) (*onnx.Tensor, error) {
	if strings.EqualFold(filepath.Ext(path), ".pb") {
		t, err := onnx.ReadTensorFile(path)
		if err != nil {
			return nil, fmt.Errorf("--input %s: %w", path, err)
		}
		return t, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--input: %w", err)
	}
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, fmt.Errorf("--input %s: not a JSON nested list of numbers: %w", path, err)
	}
	t := &onnx.Tensor{Name: name, Type: onnx.Double}
	if err := flattenJSON(v, 0, &t.Shape, &t.Floats); err != nil {
		return nil, fmt.Errorf("--input %s: %w", path, err)
	}
	return t, nil
}

// flattenJSON appends the numbers of a nested list in row-major order,
// fixing the shape from the first list at each depth and checking that
// every other list at that depth has the same length.
func flattenJSON(v any, depth int, shape *[]int, out *[]float64) error {
	switch x := v.(type) {
	case float64:
		if depth != len(*shape) {
			return fmt.Errorf("a number at depth %d where the shape %v wants a list", depth, *shape)
		}
		*out = append(*out, x)
		return nil
	case []any:
		if depth == len(*shape) {
			if len(*out) > 0 {
				return fmt.Errorf("a list at depth %d where earlier elements are numbers", depth)
			}
			*shape = append(*shape, len(x))
		} else if (*shape)[depth] != len(x) {
			return fmt.Errorf("ragged list: %d elements at depth %d, %d before", len(x), depth, (*shape)[depth])
		}
		if len(x) == 0 {
			return fmt.Errorf("an empty list at depth %d", depth)
		}
		for _, e := range x {
			if err := flattenJSON(e, depth+1, shape, out); err != nil {
				return err
			}
		}
		return nil
	}
	return fmt.Errorf("%v is neither a number nor a list", v)
}

// BuildONNX imports the ONNX model at path with the given inputs, adds
// the objective and runs the backward pass: the graph of a worked
// solution, which trace.Build and derive.Graph read as they read a spec's.
func BuildONNX[T tensor.Float](path string, opt ONNXOptions) (*ONNXGraph[T], error) {
	m, err := onnx.Load(path)
	if err != nil {
		return nil, err
	}
	want := m.Inputs()
	if len(opt.Inputs) != len(want) {
		var names []string
		for _, vi := range want {
			names = append(names, vi.Name)
		}
		return nil, fmt.Errorf("%s takes %d input(s) (%s): give --input FILE for each, in that order (got %d)", path, len(want), strings.Join(names, ", "), len(opt.Inputs))
	}
	var inputs []*onnx.Tensor
	for i, f := range opt.Inputs {
		t, err := ReadInput(f, want[i].Name)
		if err != nil {
			return nil, err
		}
		inputs = append(inputs, t)
	}
	g, err := onnx.Import[T](m, inputs, onnx.Options{})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var out *onnx.Value[T]
	for i := range g.Outputs {
		if opt.Output == "" || g.Outputs[i].Name == opt.Output {
			out = &g.Outputs[i]
			break
		}
	}
	switch {
	case out == nil:
		return nil, fmt.Errorf("%s has no output %q", path, opt.Output)
	case out.Var == nil:
		return nil, fmt.Errorf("%s: output %q is an integer tensor; the objective needs a floating-point one", path, out.Name)
	}
	y := out.Var
	var j *autograd.Var[T]
	var what string
	switch opt.Objective {
	case "":
		if y.Value.Len() != 1 {
			return nil, fmt.Errorf("%s: output %q is %s, not a loss: give --objective sum or --objective cross_entropy --label K", path, out.Name, tensor.FormatShape(y.Value.Shape()))
		}
		j = y
		what = fmt.Sprintf("J = %s, the model's own output", out.Name)
	case ObjectiveSum:
		if j, err = ops.Sum("J", y); err != nil {
			return nil, err
		}
		what = fmt.Sprintf("J = Σ %s, the sum of the output's elements", out.Name)
	case ObjectiveCrossEntropy:
		s := y.Value.Shape()
		rows := 1
		if len(s) == 2 {
			rows = s[0]
		} else if len(s) != 1 {
			return nil, fmt.Errorf("%s: --objective cross_entropy needs logits (N, K) or (K); output %q is %s", path, out.Name, tensor.FormatShape(s))
		}
		if len(opt.Labels) != rows {
			return nil, fmt.Errorf("--label: %d label(s) for the %d row(s) of output %q %s", len(opt.Labels), rows, out.Name, tensor.FormatShape(s))
		}
		k := s[len(s)-1]
		for _, l := range opt.Labels {
			if l < 0 || l >= k {
				return nil, fmt.Errorf("--label %d: want a class index from 0 to %d (the %d logits of %q)", l, k-1, k, out.Name)
			}
		}
		if j, err = ops.CrossEntropy("J", y, opt.Labels); err != nil {
			return nil, err
		}
		what = fmt.Sprintf("J = −log softmax(%s)[y], the cross-entropy of the logits %s against the labels y = %v (from 0, as PyTorch)", out.Name, out.Name, opt.Labels)
		if rows > 1 {
			what += ", averaged over the rows"
		}
	default:
		return nil, fmt.Errorf("--objective: want %s or %s, got %q", ObjectiveSum, ObjectiveCrossEntropy, opt.Objective)
	}
	if j.Op == nil || !j.RequiresGrad {
		return nil, fmt.Errorf("%s: the objective does not depend on any parameter", path)
	}
	if j != y || j.Name == "" {
		j.Name = "J"
	}
	if err := autograd.Backward(j); err != nil {
		return nil, err
	}
	og := &ONNXGraph[T]{Title: filepath.Base(path), Graph: g, Nodes: autograd.Topo(j), Output: y, Objective: j, What: what}
	og.Renamed = rename(og.Nodes)
	return og, nil
}

// Names an exporter gives intermediate values: PyTorch's
// "/fc1/Gemm_output_0" (with a suffix the importer may add, "_ab") and
// "onnx::Gemm_5".
var (
	plainName    = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.]*$`)
	exporterName = regexp.MustCompile(`^(?:.*/)?([A-Za-z]+)_output_\d+(.*)$|^onnx::([A-Za-z]+)_\d+(.*)$`)
)

// rename gives the nodes whose ONNX names would not read as names in a
// formula a short one: an intermediate value of an exporter becomes its
// operator and a count (/0/Gemm_output_0 → gemm1, /1/Relu_output_0 →
// relu1), a name that starts with a digit (nn.Sequential's 0.weight) gets
// the prefix "layer" (layer0.weight), anything else t1, t2, … It returns
// the renamings, new name first, in node order.
func rename[T tensor.Float](nodes []*autograd.Var[T]) [][2]string {
	var out [][2]string
	taken := map[string]bool{}
	for _, v := range nodes {
		taken[v.Name] = true
	}
	base := map[string]string{} // an exporter's name without the importer's suffix → new name
	count := map[string]int{}
	fresh := func(stem string) string {
		for {
			count[stem]++
			n := fmt.Sprintf("%s%d", stem, count[stem])
			if !taken[n] {
				taken[n] = true
				return n
			}
		}
	}
	for _, v := range nodes {
		old := v.Name
		if old == "" || plainName.MatchString(old) {
			continue
		}
		var name string
		if m := exporterName.FindStringSubmatch(old); m != nil {
			op, suffix := m[1]+m[3], m[2]+m[4]
			key := strings.TrimSuffix(old, suffix)
			if base[key] == "" {
				base[key] = fresh(strings.ToLower(op))
			}
			name = base[key] + suffix
		} else if c := old[0]; c >= '0' && c <= '9' && plainName.MatchString("layer"+old) {
			name = "layer" + old
		} else {
			name = fresh("t")
		}
		if taken[name] && name != old && !strings.HasPrefix(name, base[strings.TrimSuffix(old, name)]) {
			name = fresh("t")
		}
		taken[name] = true
		v.Name = name
		out = append(out, [2]string{name, old})
	}
	return out
}

// SolveONNX is Solve for an ONNX model: the initializers are the
// parameters, opt.Inputs the input, opt.Objective the objective. The worked
// solution (handout or full, text, Markdown or JSON) is rendered by the
// trace package over the imported graph as for a spec.
func SolveONNX(path string, opt ONNXOptions) (*Solution, error) {
	switch opt.Detail {
	case "", "handout", "full":
	default:
		return nil, fmt.Errorf("--detail: want handout or full, got %q", opt.Detail)
	}
	switch opt.DType {
	case "", "float64":
		return solveONNX[float64](path, opt, "float64")
	case "float32":
		return solveONNX[float32](path, opt, "float32")
	}
	return nil, fmt.Errorf("--dtype: want float64 or float32, got %q", opt.DType)
}

func solveONNX[T tensor.Float](path string, opt ONNXOptions, dtype string) (*Solution, error) {
	g, err := BuildONNX[T](path, opt)
	if err != nil {
		return nil, err
	}
	obj := opt.Objective
	if obj == "" {
		obj = "model"
	}
	// A stand-in spec for what a Solution reports of its spec: the title
	// and the objective's kind (the conventions are the defaults).
	s := &spec.Spec{Title: g.Title, Objective: spec.Objective{Type: obj}}
	sol := &Solution{Spec: s, DType: dtype, digits: opt.Digits, detail: opt.Detail}
	onnxName := map[string]string{} // JSON keeps the file's names
	for _, r := range g.Renamed {
		onnxName[r[0]] = r[1]
	}
	orig := func(n string) string {
		if o, ok := onnxName[n]; ok {
			return o
		}
		return n
	}
	for _, v := range g.Graph.Outputs {
		if v.Var != nil {
			sol.Forward = append(sol.Forward, Named{v.Name, matrix(v.Var.Value)})
		}
	}
	if g.Objective != g.Output {
		sol.Forward = append(sol.Forward, Named{g.Objective.Name, matrix(g.Objective.Value)})
	}
	var params []string
	for _, p := range g.Graph.Params {
		gr := p.Grad
		if gr == nil { // a parameter the objective does not depend on
			gr = tensor.New[T](p.Value.Shape()...)
		}
		sol.Gradients = append(sol.Gradients, Named{orig(p.Name), matrix(gr)})
		params = append(params, p.Name+" "+tensor.FormatShape(p.Value.Shape()))
	}
	topt := trace.Options{MaxElements: opt.MaxElements, Objective: "J"}
	if sol.Trace, err = trace.Build(g.Nodes, topt); err != nil {
		return nil, fmt.Errorf("%s: the worked solution cannot show this model: %w", g.Title, err)
	}
	topt.NamedSteps = true
	if sol.Steps, err = trace.Build(g.Nodes, topt); err != nil {
		return nil, fmt.Errorf("%s: the worked solution cannot show this model: %w", g.Title, err)
	}
	sol.Header = trace.Header{
		Title:       g.Title,
		Conventions: []string{"indices: 1-based, [channel, row, column] for images; vectors are columns; tensors keep the file's names unless renamed below", "precision: " + dtype},
		Objective:   "minimize " + g.What + "; every gradient is ∂J/∂θ (J is the node " + g.Objective.Name + ")",
	}
	var given []string
	for _, in := range g.Graph.Inputs {
		if in.Var != nil {
			given = append(given, in.Name+" = "+inlineValue(in.Var.Value))
		}
	}
	var asked []string
	for _, p := range g.Graph.Params {
		asked = append(asked, p.Name)
	}
	sol.Handout = trace.Handout{
		Given: []string{
			"Given: " + strings.Join(given, "; ") + "; the initializers of " + g.Title + " as parameters: " + strings.Join(params, ", "),
		},
		AskedGradients: asked,
	}
	if len(g.Renamed) > 0 {
		var rs []string
		for _, r := range g.Renamed {
			rs = append(rs, r[0]+" is "+r[1])
		}
		sol.Header.Conventions = append(sol.Header.Conventions[:1:1], "names: "+strings.Join(rs, ", ")+" in the file", sol.Header.Conventions[1])
	}
	return sol, nil
}
