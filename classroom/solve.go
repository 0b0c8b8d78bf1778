package classroom

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/backprop-dev/backprop/autograd"
	"github.com/backprop-dev/backprop/derive"
	"github.com/backprop-dev/backprop/expr"
	"github.com/backprop-dev/backprop/solve"
	"github.com/backprop-dev/backprop/spec"
	"github.com/backprop-dev/backprop/tensor"
	"github.com/backprop-dev/backprop/trace"
)

// SolveRequest is the body of POST /api/solve: which problem, the values
// the user edited (any input or parameter, by name; the others keep the
// spec's values) and the conventions switched on the page (empty: the
// spec's own).
type SolveRequest struct {
	// Problem is a Problem.ID; empty means the first problem.
	Problem string `json:"problem"`
	// Values maps an input or parameter name to its new value: a number, a
	// flat list in row-major order, or nested lists in the tensor's shape.
	Values map[string]json.RawMessage `json:"values"`
	// Conventions overrides the spec's reshape order, kernel orientation
	// and label reading; empty fields keep the spec's.
	Conventions spec.Conventions `json:"conventions"`
}

// Result is the answer to POST /api/solve: the network as a graph with
// every node's value, gradient and worked formulas, plus the whole worked
// solution (as a handout and as the full trace) and the derived equations
// as Markdown with LaTeX.
type Result struct {
	Problem     string           `json:"problem"`
	Title       string           `json:"title"`
	Conventions spec.Conventions `json:"conventions"`
	// Relevant says which conventions change anything in this network.
	Relevant struct {
		Reshape bool `json:"reshape"`
		Kernel  bool `json:"kernel"`
		Label   bool `json:"label"`
	} `json:"relevant"`
	Header    []string `json:"header"`    // the conventions in force, in words
	Objective string   `json:"objective"` // what J is and whether it is maximized
	Nodes     []Node   `json:"nodes"`
	Edges     []Edge   `json:"edges"`
	// Solution is exactly `backprop solve --format json` for these values.
	Solution json.RawMessage `json:"solution"`
	// Worked is exactly `backprop solve --format markdown`: the handout,
	// a compact model answer (the problem restated, each step's general
	// index formula, a few elements worked in numbers, the gradients as
	// chain-rule factors, the answers asked for). The page shows it by
	// default.
	Worked string `json:"worked"`
	// WorkedFull is exactly `backprop solve --detail full --format
	// markdown`: every element of every step. Both come in one answer so
	// that switching between them on the page needs no round trip.
	WorkedFull string `json:"workedFull"`
	// WorkedError and WorkedFullError say why Worked or WorkedFull is
	// empty (a network the writer cannot render).
	WorkedError     string `json:"workedError,omitempty"`
	WorkedFullError string `json:"workedFullError,omitempty"`
	// Derivation is the gradient equations per sample and batched, as
	// `backprop derive --format markdown` writes them; DerivationError says
	// why there are none.
	Derivation      string `json:"derivation,omitempty"`
	DerivationError string `json:"derivationError,omitempty"`
	// Train is the optimizer steps of a spec with train: (the steps of
	// solve's Solution.Train, the "Optimizer steps" of the worked
	// solution), nil for a spec without.
	Train *Training `json:"train,omitempty"`
	// Steps is the number of time steps of an unrolled recurrent layer
	// (the largest Node.Step), 0 for a network without one.
	Steps int `json:"steps,omitempty"`
	// ReadOnly, when set, says why no number can be changed on the page
	// (an imported ONNX model: ONNXReadOnly); every node's Editable is
	// then false.
	ReadOnly string `json:"readOnly,omitempty"`
}

// Training is a spec's optimizer steps as the page shows them: for each
// step the objective before the update, every element's update with the
// numbers substituted, and every parameter after it.
type Training struct {
	Optimizer string  `json:"optimizer"` // sgd, momentum or adam
	LR        float64 `json:"lr"`
	// Text describes the optimizer and its settings in words:
	// "SGD with momentum μ = 0.9, η = 0.1, 2 steps, as torch.optim".
	Text string `json:"text"`
	// Maximize says the objective is maximized (the steps go along +∂J/∂θ).
	Maximize       bool        `json:"maximize"`
	Steps          []TrainStep `json:"steps"`
	FinalObjective float64     `json:"finalObjective"` // J after the last update
}

// TrainStep is one optimizer step.
type TrainStep struct {
	Step      int     `json:"step"`      // 1-based
	Objective float64 `json:"objective"` // J before this step's update
	// Updates are every element's update, parameters in the spec's order.
	Updates []Update `json:"updates"`
	// Params are the parameters after the update.
	Params []ParamValue `json:"params"`
}

// Update is one element's update rule with the numbers substituted: its
// lines (for momentum and Adam the moment lines first, then θ), each in
// LaTeX (with an & before the arrow, for an aligned block) and plain text.
type Update struct {
	Param string   `json:"param"`
	Label string   `json:"label"` // the element: W[1,2], or the name of a scalar
	TeX   []string `json:"tex"`
	Text  []string `json:"text"`
	Value float64  `json:"value"` // the element after the update
}

// ParamValue is a parameter's value after a step, row-major.
type ParamValue struct {
	Name  string    `json:"name"`
	TeX   string    `json:"tex"`
	Shape []int     `json:"shape"`
	Value []float64 `json:"value"`
}

// Node is a named node of the network's graph: the input, a parameter, a
// pre-activation, a layer output, p or log p. Unnamed intermediate results
// (the w0·z of w0·z + b0) are folded into the named node that consumes them.
type Node struct {
	Name string `json:"name"`
	TeX  string `json:"tex"`  // the name in LaTeX (w_{0})
	Kind string `json:"kind"` // input, param, value or objective
	// InputKind is an input's kind in the spec: data, labels, target or
	// mask (empty for the other nodes).
	InputKind string `json:"inputKind,omitempty"`
	Shape     []int  `json:"shape"`
	Value     Values `json:"value"` // row-major; −∞ (a causal mask's) is null
	// Grad is ∂J/∂node, row-major; nil when J does not depend on it.
	Grad     []float64 `json:"grad"`
	Editable bool      `json:"editable"` // the data inputs, targets and parameters: what a request may change
	// Col and Lane place the node: Col is its depth in the graph
	// (parameters share their consumer's column), Lane its order within the
	// column.
	Col  int `json:"col"`
	Lane int `json:"lane"`
	// Forward and Backward are the node's steps of the worked solution.
	Forward  *StepText `json:"forward,omitempty"`
	Backward *StepText `json:"backward,omitempty"`
	// Consumers name the nodes whose gradients flow back into this one
	// (the upstream gradients of its backward step).
	Consumers []string `json:"consumers,omitempty"`
	// InlineIn names the step of the full trace (`backprop solve --detail
	// full`) that shows this node's formula inline (u0 inside h0 =
	// ReLU(w0·z + b0)); the handout gives such a node a step of its own,
	// which is the node's Forward.
	InlineIn string `json:"inlineIn,omitempty"`
	// Step is the time step (1, 2, ...) of a value of an unrolled
	// recurrent layer (spec.Model.Group): the page draws the nodes of step
	// t in one column, column t of the unrolled network. 0 for the others.
	Step int `json:"step,omitempty"`
	// Shared marks a parameter that several time steps use (W_hh of an
	// RNN): the page draws it once, above the steps, with an edge to each.
	Shared bool `json:"shared,omitempty"`
	// Heatmap is "scores", "masked" or "attention" for an attention head's
	// scores S = QKᵀ/√d_k, its causally masked scores M and its attention
	// weights A = softmax(S) (per head: S_1, A_2): matrices the node panel
	// draws as a heat map. Empty for the other nodes.
	Heatmap string `json:"heatmap,omitempty"`
	// FileName is the name an imported ONNX model gives the node when
	// the worked solution renamed it to read as a name in a formula
	// (layer0.weight for 0.weight, gemm1 for /0/Gemm_output_0); empty
	// otherwise.
	FileName string `json:"fileName,omitempty"`
}

// Values are a tensor's numbers, row-major. JSON has no infinities: a
// −∞ that a causal mask writes above the diagonal of the scores is
// written as null (the page shows it as −∞).
type Values []float64

// MarshalJSON implements json.Marshaler.
func (v Values) MarshalJSON() ([]byte, error) {
	if v == nil {
		return []byte("null"), nil
	}
	b := make([]byte, 0, 8+20*len(v))
	b = append(b, '[')
	for i, x := range v {
		if i > 0 {
			b = append(b, ',')
		}
		if math.IsInf(x, 0) || math.IsNaN(x) {
			b = append(b, "null"...)
			continue
		}
		n, err := json.Marshal(x)
		if err != nil {
			return nil, err
		}
		b = append(b, n...)
	}
	return append(b, ']'), nil
}

// Edge is a data dependency between two named nodes.
type Edge struct {
	From string `json:"from"`
	To   string `json:"to"`
}

// apiError is an error with the HTTP status it deserves.
type apiError struct {
	Status int
	Msg    string
}

func (e *apiError) Error() string { return e.Msg }

func badRequest(format string, a ...any) *apiError {
	return &apiError{http.StatusBadRequest, fmt.Sprintf(format, a...)}
}

func unprocessable(format string, a ...any) *apiError {
	return &apiError{http.StatusUnprocessableEntity, fmt.Sprintf(format, a...)}
}

// errTooLarge is a number beyond float64's range: not JSON a page sends.
var errTooLarge = errors.New("too large for a number (at most ±1.8e308)")

// jsonKind names the kind of a decoded JSON value in the page's words.
func jsonKind(v any) string {
	switch v.(type) {
	case map[string]any:
		return "an object"
	case string:
		return "a string"
	case bool:
		return "true or false"
	case []any:
		return "a list"
	case nil:
		return "null"
	}
	return "a value"
}

// elemError is what is wrong with one element of an edited value: at
// path, the 1-based positions in the nested lists (empty for the value as
// a whole).
type elemError struct {
	path []int
	list bool // the error is about the list at path, not one number
	msg  string
	err  error // errTooLarge for a number beyond float64's range
}

func (e *elemError) Error() string { return e.msg }
func (e *elemError) Unwrap() error { return e.err }

// flatten reads a JSON number or (nested) list of numbers, decoded with
// UseNumber (json.Number) or as float64, in row-major order. Its error is
// an *elemError naming the element at fault.
func flatten(v any, depth int) (data []float64, shape []int, err error) {
	data, shape, e := numbers(v, make([]int, 0, depth))
	if e != nil {
		return nil, nil, e
	}
	return data, shape, nil
}

// numbers is flatten for the element at path.
func numbers(v any, path []int) (data []float64, shape []int, err *elemError) {
	at := func(msg string, err error) *elemError {
		return &elemError{path: slices.Clone(path), msg: msg, err: err}
	}
	switch x := v.(type) {
	case json.Number:
		f, err := strconv.ParseFloat(string(x), 64)
		if err != nil || math.IsInf(f, 0) {
			return nil, nil, at("want a finite number, got "+clip(string(x)), errTooLarge)
		}
		return []float64{f}, nil, nil
	case float64:
		return []float64{x}, nil, nil
	case []any:
		if len(path) >= 8 {
			return nil, nil, at("more than 8 dimensions", nil)
		}
		if len(x) == 0 {
			return nil, nil, at("want a number or a list of numbers, got an empty list", nil)
		}
		var inner []int
		for i, e := range x {
			d, s, err := numbers(e, append(path, i+1))
			if err != nil {
				return nil, nil, err
			}
			if i == 0 {
				inner = s
			} else if !tensor.SameShape(inner, s) {
				return nil, nil, &elemError{path: slices.Clone(path), list: true,
					msg: fmt.Sprintf("ragged list: item %d is %s but item 1 is %s", i+1, shapeWords(s), shapeWords(inner))}
			}
			data = append(data, d...)
		}
		return data, append([]int{len(x)}, inner...), nil
	case nil:
		return nil, nil, at("want a number, got null", nil)
	default:
		return nil, nil, at("want a number, got "+jsonKind(v), nil)
	}
}

// shapeWords describes the shape of an item of a list: "a number" or
// "a list of shape [2]".
func shapeWords(s []int) string {
	if len(s) == 0 {
		return "a number"
	}
	return "a list of shape " + tensor.FormatShape(s)
}

// clip shortens a number's text for an error message.
func clip(s string) string {
	if len(s) > 32 {
		return s[:29] + "…"
	}
	return s
}

// elementName names the element of the tensor old at a list path: name
// alone for the whole value, name[i,j] (1-based, as the page and the
// worked solution write it) otherwise; a number's position in a flat list
// given for a matrix or an image is named by the element it fills (not so
// a list's, when list is set).
func elementName(name string, path []int, list bool, old *tensor.Tensor[float64]) string {
	if len(path) == 0 {
		return name
	}
	shape := old.Shape()
	if len(path) == 1 && !list && len(shape) > 1 && path[0] <= old.Len() {
		idx := make([]int, len(shape))
		k := path[0] - 1
		for d := len(shape) - 1; d >= 0; d-- {
			idx[d] = k%shape[d] + 1
			k /= shape[d]
		}
		path = idx
	}
	parts := make([]string, len(path))
	for i, p := range path {
		parts[i] = strconv.Itoa(p)
	}
	return name + "[" + strings.Join(parts, ",") + "]"
}

// parseValue reads an edited value for a tensor of the given shape. An
// error names the tensor and the element: "values.z[1]: want a finite
// number, got 1e309".
func parseValue(name string, raw json.RawMessage, old *tensor.Tensor[float64]) (*tensor.Tensor[float64], *apiError) {
	var v any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return nil, badRequest("values.%s: not a number or list of numbers", name)
	}
	data, shape, err := numbers(v, nil)
	if err != nil {
		where := "values." + elementName(name, err.path, err.list, old)
		if errors.Is(err, errTooLarge) {
			return nil, badRequest("%s: %s", where, err.msg)
		}
		return nil, unprocessable("%s: %s", where, err.msg)
	}
	n := old.Len()
	ok := tensor.SameShape(shape, old.Shape()) || (len(shape) == 1 && shape[0] == n) || (len(shape) == 0 && n == 1)
	if !ok {
		return nil, unprocessable("values.%s: shape %s, want %s (or a flat list of %d numbers)", name, tensor.FormatShape(shape), tensor.FormatShape(old.Shape()), n)
	}
	return tensor.MustFromSlice(data, old.Shape()...), nil
}

// editableInput reports whether the input named name may be edited on the
// page: data and targets may, class labels and dropout masks are given
// with the problem (Spec.WithValues keeps them).
func editableInput(s *spec.Spec, name string) bool {
	for _, in := range s.Inputs {
		if in.Name == name {
			return in.Kind == "" || in.Kind == "data" || in.Kind == "target"
		}
	}
	return name == s.Input.Name
}

// editableInputs names the inputs a request may change.
func editableInputs(s *spec.Spec) []string {
	var out []string
	for _, in := range s.Inputs {
		if editableInput(s, in.Name) {
			out = append(out, in.Name)
		}
	}
	if len(out) == 0 {
		out = []string{s.Input.Name}
	}
	return out
}

// withEdits applies a request's values and conventions to a copy of s.
func withEdits(s *spec.Spec, req SolveRequest) (*spec.Spec, *apiError) {
	edited := map[string]*tensor.Tensor[float64]{}
	names := make([]string, 0, len(req.Values))
	for name := range req.Values {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		var old *tensor.Tensor[float64]
		if t, ok := s.InputValue(name); ok && editableInput(s, name) {
			old = t
		} else if name == s.Input.Name {
			old = s.InputTensor()
		} else if p := s.Params[name]; p != nil {
			old = p.Tensor
		} else {
			return nil, unprocessable("values.%s: no input or parameter of that name that can be changed (the network has %s and %s)", name, strings.Join(editableInputs(s), ", "), strings.Join(s.ParamOrder, ", "))
		}
		t, err := parseValue(name, req.Values[name], old)
		if err != nil {
			return nil, err
		}
		edited[name] = t
	}
	c := s.WithValues(func(name string, old *tensor.Tensor[float64]) *tensor.Tensor[float64] {
		if t, ok := edited[name]; ok {
			return t
		}
		return old
	})
	for _, o := range []struct {
		v, field string
		dst      *string
		ok       []string
	}{
		{req.Conventions.Reshape, "reshape", &c.Conventions.Reshape, []string{"row-major", "column-major"}},
		{req.Conventions.Kernel, "kernel", &c.Conventions.Kernel, []string{"pytorch", "flipped"}},
		{req.Conventions.Label, "label", &c.Conventions.Label, []string{"y0", "y1"}},
	} {
		if o.v == "" {
			continue
		}
		valid := false
		for _, a := range o.ok {
			valid = valid || a == o.v
		}
		if !valid {
			return nil, unprocessable("conventions.%s: want one of %s, got %q", o.field, strings.Join(o.ok, ", "), o.v)
		}
		*o.dst = o.v
	}
	return c, nil
}

// solveSpec computes everything the page shows for a spec.
func solveSpec(id string, s *spec.Spec, digits int) (*Result, *apiError) {
	sol, err := solve.Solve(s, solve.Options{Digits: digits})
	if err != nil {
		return nil, unprocessable("%v", err)
	}
	m, err := spec.Build[float64](s)
	if err != nil {
		return nil, unprocessable("%v", err)
	}
	if err := autograd.Backward(m.Objective); err != nil {
		return nil, unprocessable("%v", err)
	}
	if aerr := checkFinite(m.Nodes); aerr != nil {
		return nil, aerr
	}
	// sol.Trace is the full trace of `backprop solve --detail full`, in
	// which a pre-activation with one consumer is shown inside it (u0 in
	// h0 = ReLU(w0·z + b0)); sol.Steps gives every named value a step of
	// its own, as the handout does, and supplies the forward steps of the
	// nodes the full trace shows inline.
	coarse, fine := sol.Trace, sol.Steps

	r := &Result{Problem: id, Title: sol.Header.Title, Conventions: s.Conventions, Header: sol.Header.Conventions, Objective: sol.Header.Objective}
	for _, l := range s.Layers {
		switch l.Type {
		case "reshape", "flatten":
			r.Relevant.Reshape = true
		case "deconv":
			r.Relevant.Kernel = true
		case "logistic":
			r.Relevant.Label = true
		}
	}
	r.Nodes, r.Edges = graphOf(s, m)
	for _, n := range r.Nodes {
		r.Steps = max(r.Steps, n.Step)
	}
	r.Train = training(s, sol, m.Maximize)

	attachSteps(r.Nodes, m.Nodes, coarse, fine, digits)

	var js bytes.Buffer
	if err := sol.WriteJSON(&js); err != nil {
		return nil, unprocessable("%v", err)
	}
	r.Solution = json.RawMessage(js.Bytes())
	var werr error
	if r.Worked, werr = written("the handout", sol.WriteMarkdown); werr != nil {
		r.WorkedError = werr.Error()
	}
	// the full trace through the same call as `backprop solve --detail
	// full`, so that it stays that text whatever the solution adds to it
	full, err := solve.Solve(s, solve.Options{Digits: digits, Detail: "full"})
	if err != nil {
		return nil, unprocessable("%v", err)
	}
	if r.WorkedFull, werr = written("the full trace", full.WriteMarkdown); werr != nil {
		r.WorkedFullError = werr.Error()
	}
	r.Derivation, err = derivation(s)
	if err != nil {
		r.DerivationError = err.Error()
	}
	return r, nil
}

// checkFinite refuses values or gradients that overflowed, naming the
// node; a causal mask's −∞ is not an overflow.
func checkFinite(nodes []*autograd.Var[float64]) *apiError {
	for _, v := range nodes {
		for _, t := range []*tensor.Tensor[float64]{v.Value, v.Grad} {
			if t == nil {
				continue
			}
			if t == v.Value && !v.IsLeaf() && v.Op.Name() == "causal_mask" {
				continue // −∞ is what a causal mask writes above the diagonal
			}
			if err := tensor.CheckFinite(v.Name, t); err != nil {
				return unprocessable("the numbers overflow: %v; try smaller values", err)
			}
		}
	}
	return nil
}

// attachSteps gives each drawn node its forward and backward step of the
// worked solution: from the full trace coarse, and for the nodes it shows
// inside another step (InlineIn) from fine, where every named value has a
// step of its own. nodes are the engine's graph in creation order.
func attachSteps(out []Node, nodes []*autograd.Var[float64], coarse, fine *trace.Trace, digits int) {
	fwd := map[string]trace.Step{}
	for _, st := range fine.Forward {
		fwd[expr.String(st.Target)] = st
	}
	for _, st := range coarse.Forward {
		fwd[expr.String(st.Target)] = st
	}
	bwd := map[string]trace.Step{}
	for _, st := range coarse.Backward {
		bwd[st.Name] = st
	}
	inlineIn := map[string]string{}
	for _, st := range coarse.Forward {
		inlineIn[expr.String(st.Target)] = ""
	}
	for _, v := range nodes {
		if v.Name == "" || v.IsLeaf() {
			continue
		}
		if _, own := inlineIn[v.Name]; own {
			continue
		}
		// the named node's formula appears in the step of the first
		// consumer that has a step of its own
		for c := consumersOf(nodes, v); len(c) > 0; c = consumersOf(nodes, c[0]) {
			if _, own := inlineIn[c[0].Name]; own && c[0].Name != "" {
				inlineIn[v.Name] = c[0].Name
				break
			}
		}
	}
	for i := range out {
		n := &out[i]
		if st, ok := fwd[n.Name]; ok {
			t := renderStep(st, digits)
			n.Forward = &t
		}
		if st, ok := bwd[n.Name]; ok {
			t := renderStep(st, digits)
			n.Backward = &t
		}
		n.InlineIn = inlineIn[n.Name]
	}
}

// written is what write writes, or an error saying which text could not
// be written and why. A panic in a writer becomes such an error, so that
// one text that cannot be rendered for a network leaves the rest of the
// page working.
func written(what string, write func(io.Writer) error) (text string, err error) {
	defer func() {
		if p := recover(); p != nil {
			text, err = "", fmt.Errorf("%s cannot be written for this network: %v", what, p)
		}
	}()
	var b bytes.Buffer
	if err := write(&b); err != nil {
		return "", fmt.Errorf("%s cannot be written for this network: %v", what, err)
	}
	return b.String(), nil
}

// derivation is the Markdown of `backprop derive --format markdown`: the
// gradient equations per sample and batched over N samples.
func derivation(s *spec.Spec) (string, error) {
	var b bytes.Buffer
	for _, n := range []int{0, 3} {
		d, _, err := derive.Spec(s, n)
		if err != nil {
			return "", err
		}
		if n == 0 {
			b.WriteString("## Per sample\n\n")
		} else {
			b.WriteString("## Batched over N samples\n\nThe rows of each matrix are the N samples.\n\n")
		}
		if err := d.WriteMarkdown(&b); err != nil {
			return "", err
		}
	}
	return b.String(), nil
}

func consumersOf(nodes []*autograd.Var[float64], v *autograd.Var[float64]) []*autograd.Var[float64] {
	var out []*autograd.Var[float64]
	for _, c := range nodes {
		for _, u := range c.Inputs {
			if u == v {
				out = append(out, c)
				break
			}
		}
	}
	return out
}

// graphOf folds the model's graph onto its named nodes and places them in
// columns: the data input in column 0, every other node one column right
// of its deepest non-parameter source, parameters in the column of their
// first consumer, other given tensors (targets, masks, labels, a second
// data input) one column left of their first consumer.
//
// Inputs of kind labels or mask are drawn as inputs that cannot be edited;
// the data inputs and targets can.
func graphOf(s *spec.Spec, m *spec.Model[float64]) ([]Node, []Edge) {
	inputKind := map[string]string{}
	for _, in := range s.Inputs {
		k := in.Kind
		if k == "" {
			k = "data"
		}
		inputKind[in.Name] = k
	}
	isParam := map[*autograd.Var[float64]]bool{}
	for _, p := range m.Params {
		isParam[p] = true
	}
	// sources of v among named nodes, looking through unnamed ones
	var sources func(v *autograd.Var[float64], seen map[*autograd.Var[float64]]bool) []*autograd.Var[float64]
	sources = func(v *autograd.Var[float64], seen map[*autograd.Var[float64]]bool) []*autograd.Var[float64] {
		var out []*autograd.Var[float64]
		for _, u := range v.Inputs {
			if seen[u] {
				continue
			}
			seen[u] = true
			if u.Name != "" {
				out = append(out, u)
			} else {
				out = append(out, sources(u, seen)...)
			}
		}
		return out
	}
	var named []*autograd.Var[float64]
	ids := map[*autograd.Var[float64]]string{}
	used := map[string]int{}
	for _, v := range m.Nodes {
		if v.Name == "" {
			continue
		}
		id := v.Name
		if k := used[id]; k > 0 {
			id = fmt.Sprintf("%s#%d", v.Name, k+1)
		}
		used[v.Name]++
		ids[v] = id
		named = append(named, v)
	}
	col := map[*autograd.Var[float64]]int{}
	srcs := map[*autograd.Var[float64]][]*autograd.Var[float64]{}
	var edges []Edge
	for _, v := range named {
		if v.IsLeaf() {
			continue
		}
		s := sources(v, map[*autograd.Var[float64]]bool{})
		srcs[v] = s
		c := 1
		for _, u := range s {
			edges = append(edges, Edge{From: ids[u], To: ids[v]})
			if !isParam[u] {
				c = max(c, col[u]+1)
			}
		}
		col[v] = c
	}
	consumers := map[*autograd.Var[float64]][]*autograd.Var[float64]{}
	for _, v := range named {
		for _, u := range srcs[v] {
			consumers[u] = append(consumers[u], v)
		}
	}
	for _, p := range m.Params {
		if cs := consumers[p]; len(cs) > 0 {
			col[p] = col[cs[0]]
		}
	}
	// a given tensor other than the data input (a target, a mask, a
	// second data input) stands just before its first consumer, not at the
	// far left with the data input
	for _, v := range named {
		if !v.IsLeaf() || isParam[v] || v == m.Input {
			continue
		}
		if cs := consumers[v]; len(cs) > 0 {
			c := col[cs[0]]
			for _, u := range cs[1:] {
				c = min(c, col[u])
			}
			col[v] = max(c-1, 0)
		}
	}
	steps := unrollColumns(named, col, m.Group, isParam, consumers)
	lanes := map[[2]int]int{} // (column, param?) → next lane
	var nodes []Node
	for _, v := range named {
		kind := "value"
		switch {
		case isParam[v]:
			kind = "param"
		case v == m.Input || v.IsLeaf():
			// the data input, and any other given tensor (a target, class
			// labels, a dropout mask)
			kind = "input"
		case v == m.Objective:
			kind = "objective"
		}
		band := 0
		if isParam[v] {
			band = 1
		}
		key := [2]int{col[v], band}
		n := Node{
			Name: ids[v], TeX: expr.LaTeXName(v.Name), Kind: kind,
			Shape: append([]int{}, v.Value.Shape()...), Value: append([]float64{}, v.Value.Data()...),
			Editable: isParam[v] || v == m.Input, Col: col[v], Lane: lanes[key],
		}
		if kind == "input" {
			n.InputKind = inputKind[v.Name]
			n.Editable = v == m.Input || (ids[v] == v.Name && editableInput(s, v.Name) && inputKind[v.Name] != "")
		}
		lanes[key]++
		if v.Grad != nil {
			n.Grad = append([]float64{}, v.Grad.Data()...)
		}
		if steps != nil {
			n.Step = m.Group[v.Name]
			if isParam[v] {
				used := map[int]bool{}
				for _, c := range consumers[v] {
					if t := m.Group[c.Name]; t > 0 {
						used[t] = true
					}
				}
				n.Shared = len(used) > 1
			}
		}
		n.Heatmap = heatmapOf(v)
		for _, c := range consumers[v] {
			if c.Grad != nil {
				n.Consumers = append(n.Consumers, ids[c])
			}
		}
		nodes = append(nodes, n)
	}
	// class labels stay integers outside the engine's graph; they are drawn
	// as a given input beside the logits, feeding the loss
	for _, in := range s.Inputs {
		if in.Kind != "labels" || used[in.Name] > 0 {
			continue
		}
		loss := m.Name[s.Objective.Name]
		if s.Objective.Name == "" {
			loss = m.Name["L"]
		}
		t, _ := s.InputValue(in.Name)
		if loss == nil || t == nil {
			continue
		}
		c := max(col[loss]-1, 0)
		key := [2]int{c, 0}
		nodes = append(nodes, Node{
			Name: in.Name, TeX: expr.LaTeXName(in.Name), Kind: "input", InputKind: "labels",
			Shape: append([]int{}, t.Shape()...), Value: append([]float64{}, t.Data()...),
			Col: c, Lane: lanes[key],
		})
		lanes[key]++
		edges = append(edges, Edge{From: in.Name, To: ids[loss]})
	}
	if steps != nil {
		edges = append(edges, stepInputEdges(named, ids, m.Group)...)
		stepLanes(nodes)
	}
	return nodes, edges
}

// unrollColumns places an unrolled recurrent layer one column per time
// step: the values of step t (m.Group) in the column of step 1 plus t−1,
// the nodes after the layer right after the last step, the nodes before
// it where they were; parameters move to the column of their first
// consumer and other given tensors (initial states, targets) just before
// theirs, as graphOf places them. It returns nil, changing nothing, for a
// network without time steps.
func unrollColumns(named []*autograd.Var[float64], col map[*autograd.Var[float64]]int, group map[string]int, isParam map[*autograd.Var[float64]]bool, consumers map[*autograd.Var[float64]][]*autograd.Var[float64]) map[*autograd.Var[float64]]int {
	lo, hi, last := -1, -1, 0
	for _, v := range named {
		t := group[v.Name]
		if t == 0 || isParam[v] || v.IsLeaf() {
			continue
		}
		if lo < 0 || col[v] < lo {
			lo = col[v]
		}
		hi = max(hi, col[v])
		last = max(last, t)
	}
	if lo < 0 {
		return nil
	}
	steps := map[*autograd.Var[float64]]int{}
	shift := lo + last - 1 - hi // for the nodes after the layer
	for _, v := range named {
		if isParam[v] {
			continue
		}
		switch t := group[v.Name]; {
		case t > 0:
			steps[v] = t
			col[v] = lo + t - 1
		case col[v] > hi:
			col[v] += shift
		case col[v] >= lo && !v.IsLeaf():
			col[v] = lo + last - 1 // beside the layer: with its last step
		}
	}
	for _, v := range named {
		cs := consumers[v]
		if len(cs) == 0 {
			continue
		}
		switch {
		case isParam[v]:
			col[v] = col[cs[0]]
		case v.IsLeaf() && group[v.Name] == 0 && col[v] > 0:
			c := col[cs[0]]
			for _, u := range cs[1:] {
				c = min(c, col[u])
			}
			col[v] = max(c-1, 0)
		}
	}
	return steps
}

// stepInputEdges are the edges from a sequence input to its rows, x → x_t:
// the row of a time step is a copy of the input's row, not an operation
// of the graph, but it is where x_t comes from.
func stepInputEdges(named []*autograd.Var[float64], ids map[*autograd.Var[float64]]string, group map[string]int) []Edge {
	byName := map[string]*autograd.Var[float64]{}
	for _, v := range named {
		byName[v.Name] = v
	}
	var out []Edge
	for _, v := range named {
		t := group[v.Name]
		if t == 0 || !v.IsLeaf() || v.RequiresGrad {
			continue
		}
		base := strings.TrimSuffix(v.Name, fmt.Sprintf("_%d", t))
		if src := byName[base]; src != nil && src != v && src.IsLeaf() {
			out = append(out, Edge{From: ids[src], To: ids[v]})
		}
	}
	return out
}

// stepLanes orders the nodes of each time step's column: the step's
// computed values in the order of the forward pass, then its given rows
// (x_t) at the bottom, so that the shared weights above the columns reach
// the first value of each step without crossing a node.
func stepLanes(nodes []Node) {
	byCol := map[int][]int{}
	var cols []int
	for i, n := range nodes {
		if n.Step == 0 || n.Kind == "param" {
			continue
		}
		if _, ok := byCol[n.Col]; !ok {
			cols = append(cols, n.Col)
		}
		byCol[n.Col] = append(byCol[n.Col], i)
	}
	for _, c := range cols {
		var list []int
		for i, n := range nodes {
			if n.Col == c && n.Kind != "param" {
				list = append(list, i)
			}
		}
		sort.SliceStable(list, func(a, b int) bool {
			return nodes[list[a]].Kind != "input" && nodes[list[b]].Kind == "input"
		})
		for lane, i := range list {
			nodes[i].Lane = lane
		}
	}
}

// heatmapOf names the heat map of an attention head's matrices: "scores"
// for S (the scaled scores), "masked" for M (the causal mask applied),
// "attention" for A (the row softmax); "" for every other node.
func heatmapOf(v *autograd.Var[float64]) string {
	if v.IsLeaf() || v.Value.Rank() != 2 || v.Value.Dim(0) != v.Value.Dim(1) {
		return ""
	}
	base := strings.TrimRight(v.Name, "'")
	if i := strings.IndexByte(base, '_'); i > 0 {
		if _, err := strconv.Atoi(base[i+1:]); err != nil {
			return ""
		}
		base = base[:i]
	}
	switch {
	case base == "S" && v.Op.Name() == "scale":
		return "scores"
	case base == "M" && v.Op.Name() == "causal_mask":
		return "masked"
	case base == "A" && v.Op.Name() == "softmax":
		return "attention"
	}
	return ""
}

// training is the page's view of sol's optimizer steps, nil when the spec
// asks for none.
func training(s *spec.Spec, sol *solve.Solution, maximize bool) *Training {
	tr := s.Train
	if tr == nil || len(sol.Train) == 0 {
		return nil
	}
	name := "SGD"
	switch tr.Optimizer {
	case "momentum":
		name = fmt.Sprintf("SGD with momentum μ = %g", tr.Momentum)
	case "adam":
		name = fmt.Sprintf("Adam (β1 = %g, β2 = %g, ε = %g)", tr.Betas[0], tr.Betas[1], tr.Eps)
	}
	steps := "steps"
	if tr.Steps == 1 {
		steps = "step"
	}
	out := &Training{
		Optimizer: tr.Optimizer, LR: tr.LR, Maximize: maximize, FinalObjective: sol.FinalObjective,
		Text: fmt.Sprintf("%s, η = %g, %d %s, as torch.optim", name, tr.LR, tr.Steps, steps),
	}
	for _, st := range sol.Train {
		ts := TrainStep{Step: st.Step, Objective: st.Objective}
		for _, l := range st.Lines {
			ref := expr.Ref{Name: l.Param, Index: l.Index}
			ts.Updates = append(ts.Updates, Update{Param: l.Param, Label: expr.String(ref), TeX: l.TeX, Text: l.Text, Value: l.Value})
		}
		for _, p := range st.Params {
			ts.Params = append(ts.Params, ParamValue{Name: p.Name, TeX: expr.LaTeXName(p.Name), Shape: append([]int{}, p.Value.Shape...), Value: append([]float64{}, p.Value.Data...)})
		}
		out.Steps = append(out.Steps, ts)
	}
	return out
}
