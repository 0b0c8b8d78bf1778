package classroom

import (
	"bytes"
	"fmt"
	"net/http"
	"path/filepath"

	"github.com/backprop-dev/backprop/autograd"
	"github.com/backprop-dev/backprop/derive"
	"github.com/backprop-dev/backprop/solve"
	"github.com/backprop-dev/backprop/spec"
)

// ONNXModel is an imported ONNX model shown as a tab: the file, its input
// files and its objective, as `backprop solve --spec MODEL.onnx` takes
// them. The page draws the imported graph (its named values as nodes, its
// initializers as parameters) with each node's worked forward and backward
// step, and the handout and full worked solution of `backprop solve`.
//
// Its numbers come from the file and the inputs and cannot be edited on
// the page: a request with values is refused with ONNXReadOnly's
// message, since an imported graph has no spec to write edits into.
type ONNXModel struct {
	Path    string
	Options solve.ONNXOptions // Inputs, Objective, Labels, Output; the precision, digits and detail are the page's
}

// ONNXReadOnly says why the numbers of an imported model cannot be
// changed on the page; the page shows it, and POST /api/solve refuses
// edited values with it.
func ONNXReadOnly(file string) string {
	return fmt.Sprintf("The numbers of %s come from the ONNX file and --input and cannot be changed on this page: edit the model or the input file and restart backprop serve.", file)
}

// ONNXProblems are DefaultProblems with the imported model m as the first
// tab (id "main", labelled with the file's name) in place of Problem 1.
func ONNXProblems(m ONNXModel) ([]Problem, error) {
	out, err := DefaultProblems(nil)
	if err != nil {
		return nil, err
	}
	out[0] = Problem{ID: "main", Label: filepath.Base(m.Path) + " (ONNX)", ONNX: &m}
	return out, nil
}

// title is the problem's title: the spec's, or the ONNX file's name.
func (p *Problem) title() string {
	if p.ONNX != nil {
		return filepath.Base(p.ONNX.Path)
	}
	return p.Spec.Title
}

// solveONNX computes everything the page shows for an imported model:
// the graph of solve.BuildONNX with the steps of solve.SolveONNX's worked
// solution, the handout and the full trace of `backprop solve --spec
// MODEL.onnx`, and the equations of `backprop derive`.
func solveONNX(id string, m *ONNXModel, digits int) (*Result, *apiError) {
	opt := m.Options
	opt.Digits, opt.DType, opt.Detail, opt.MaxElements = digits, "float64", "handout", 0
	sol, err := solve.SolveONNX(m.Path, opt)
	if err != nil {
		return nil, unprocessable("%v", err)
	}
	g, err := solve.BuildONNX[float64](m.Path, opt)
	if err != nil {
		return nil, unprocessable("%v", err)
	}
	if aerr := checkFinite(g.Nodes); aerr != nil {
		return nil, aerr
	}
	r := &Result{Problem: id, Title: sol.Header.Title, Header: sol.Header.Conventions, Objective: sol.Header.Objective, ReadOnly: ONNXReadOnly(g.Title)}

	// graphOf places the nodes as it places a spec's: the model's inputs
	// as data inputs, the first in column 0, the initializers as
	// parameters, J as the objective.
	s := &spec.Spec{Title: g.Title}
	md := &spec.Model[float64]{Nodes: g.Nodes, Objective: g.Objective, Name: map[string]*autograd.Var[float64]{}}
	inGraph := map[*autograd.Var[float64]]bool{}
	for _, v := range g.Nodes {
		inGraph[v] = true
	}
	for _, in := range g.Graph.Inputs {
		if in.Var == nil || !inGraph[in.Var] {
			continue
		}
		s.Inputs = append(s.Inputs, spec.Input{Name: in.Var.Name, Kind: "data"})
		if md.Input == nil {
			md.Input = in.Var
		}
	}
	for _, p := range g.Graph.Params {
		if inGraph[p] {
			md.Params = append(md.Params, p)
		}
	}
	r.Nodes, r.Edges = graphOf(s, md)
	fileName := map[string]string{}
	for _, rn := range g.Renamed {
		fileName[rn[0]] = rn[1]
	}
	for i := range r.Nodes {
		r.Nodes[i].Editable = false
		r.Nodes[i].FileName = fileName[r.Nodes[i].Name]
	}
	attachSteps(r.Nodes, g.Nodes, sol.Trace, sol.Steps, digits)

	var js bytes.Buffer
	if err := sol.WriteJSON(&js); err != nil {
		return nil, unprocessable("%v", err)
	}
	r.Solution = js.Bytes()
	var werr error
	if r.Worked, werr = written("the handout", sol.WriteMarkdown); werr != nil {
		r.WorkedError = werr.Error()
	}
	opt.Detail = "full"
	full, err := solve.SolveONNX(m.Path, opt)
	if err != nil {
		return nil, unprocessable("%v", err)
	}
	if r.WorkedFull, werr = written("the full trace", full.WriteMarkdown); werr != nil {
		r.WorkedFullError = werr.Error()
	}
	if d, err := derive.Graph(g.Nodes, g.Objective, false); err != nil {
		r.DerivationError = err.Error()
	} else {
		var b bytes.Buffer
		b.WriteString("## Per sample\n\nThe model's input as given (its own shape).\n\n")
		if err := d.WriteMarkdown(&b); err != nil {
			r.DerivationError = err.Error()
		} else {
			r.Derivation = b.String()
		}
	}
	return r, nil
}

// onnxRequest refuses a request that would change an imported model:
// edited values, or a convention (an imported graph has none to switch).
func onnxRequest(p *Problem, req SolveRequest) *apiError {
	if len(req.Values) > 0 {
		return &apiError{http.StatusUnprocessableEntity, ONNXReadOnly(filepath.Base(p.ONNX.Path))}
	}
	if c := req.Conventions; c.Reshape != "" || c.Kernel != "" || c.Label != "" {
		return unprocessable("conventions: an imported ONNX model has no conventions to switch (its reshape order and kernels are the file's)")
	}
	return nil
}
