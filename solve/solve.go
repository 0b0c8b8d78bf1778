// Package solve produces the worked solution of a spec: it builds the
// network on the engine in the chosen precision, runs it forward and
// backward, and renders the result as a step-by-step trace (text or
// Markdown with LaTeX) or as JSON numbers.
package solve

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/backprop-dev/backprop/autograd"
	"github.com/backprop-dev/backprop/expr"
	"github.com/backprop-dev/backprop/spec"
	"github.com/backprop-dev/backprop/tensor"
	"github.com/backprop-dev/backprop/trace"
)

// Options choose precision, conventions and detail.
type Options struct {
	DType       string // "float64" (default) or "float32"
	Reshape     string // overrides the spec's convention when set
	Kernel      string // likewise
	Label       string // likewise
	MaxElements int    // tensors larger than this show no per-element lines (0: 64)
	Digits      int    // significant digits in traces (0: 6)
	// Detail is "handout" (default): the compact model answer, a few
	// elements worked per step and the answers asked for; or "full":
	// every element of every step.
	Detail string
}

// Named is a named tensor of a solution.
type Named struct {
	Name  string
	Value trace.Matrix
}

// Solution is a solved spec.
type Solution struct {
	Spec      *spec.Spec
	DType     string
	Forward   []Named      // the reported values in network order
	Gradients []Named      // the gradient of the objective for each parameter
	Trace     *trace.Trace // every element of every step
	// Steps is the trace with every named value a step of its own
	// (pre-activations included), which the handout renders.
	Steps   *trace.Trace
	Header  trace.Header
	Handout trace.Handout
	digits  int
	detail  string
}

// Solve runs the spec.
func Solve(s *spec.Spec, opt Options) (*Solution, error) {
	c := &s.Conventions
	for _, o := range []struct {
		v   string
		dst *string
		ok  []string
		n   string
	}{{opt.Reshape, &c.Reshape, []string{"row-major", "column-major"}, "--reshape"}, {opt.Kernel, &c.Kernel, []string{"pytorch", "flipped"}, "--kernel"}, {opt.Label, &c.Label, []string{"y0", "y1"}, "--label"}} {
		if o.v == "" {
			continue
		}
		valid := false
		for _, a := range o.ok {
			valid = valid || a == o.v
		}
		if !valid {
			return nil, fmt.Errorf("%s: want one of %v, got %q", o.n, o.ok, o.v)
		}
		*o.dst = o.v
	}
	switch opt.Detail {
	case "", "handout", "full":
	default:
		return nil, fmt.Errorf("--detail: want handout or full, got %q", opt.Detail)
	}
	switch opt.DType {
	case "", "float64":
		return run[float64](s, opt, "float64")
	case "float32":
		return run[float32](s, opt, "float32")
	}
	return nil, fmt.Errorf("--dtype: want float64 or float32, got %q", opt.DType)
}

func run[T tensor.Float](s *spec.Spec, opt Options, dtype string) (*Solution, error) {
	m, err := spec.Build[T](s)
	if err != nil {
		return nil, err
	}
	if err := autograd.Backward(m.Objective); err != nil {
		return nil, err
	}
	sol := &Solution{Spec: s, DType: dtype, digits: opt.Digits, detail: opt.Detail}
	for _, v := range m.Outputs {
		sol.Forward = append(sol.Forward, Named{v.Name, matrix(v.Value)})
	}
	for _, p := range m.Params {
		g := p.Grad
		if g == nil { // a parameter the objective does not depend on
			g = tensor.New[T](p.Value.Shape()...)
		}
		sol.Gradients = append(sol.Gradients, Named{p.Name, matrix(g)})
	}
	tr, err := trace.Build(m.Nodes, trace.Options{MaxElements: opt.MaxElements, Objective: "J"})
	if err != nil {
		return nil, err
	}
	sol.Trace = tr
	if sol.Steps, err = trace.Build(m.Nodes, trace.Options{MaxElements: opt.MaxElements, Objective: "J", NamedSteps: true}); err != nil {
		return nil, err
	}
	sol.Header = header(s, m.Objective.Name, dtype)
	sol.Handout = handout(s, m)
	return sol, nil
}

// handout restates the problem for the compact solution: the input's
// value, every parameter's shape (a scalar's value), and what is asked.
func handout[T tensor.Float](s *spec.Spec, m *spec.Model[T]) trace.Handout {
	h := trace.Handout{AskedForward: s.Ask.Forward, AskedGradients: s.Ask.Gradients, Maximize: m.Maximize}
	in := m.Input.Value
	given := s.Input.Name + " = " + inlineValue(in)
	var ps []string
	for _, p := range m.Params {
		if p.Value.Rank() == 0 {
			ps = append(ps, fmt.Sprintf("%s = %s", p.Name, expr.FormatNumber(float64(p.Value.Data()[0]), 0)))
			continue
		}
		d := p.Name + " " + tensor.FormatShape(p.Value.Shape())
		if sh := p.Value.Shape(); len(sh) == 4 && sh[0] > 1 && sh[1] == 1 && isDeconvWeight(s, p.Name) {
			d += fmt.Sprintf(" (%s[c,1,:,:] is the %d×%d kernel of input channel c)", p.Name, sh[2], sh[3])
		}
		ps = append(ps, d)
	}
	h.Given = []string{"Given: " + given + "; " + strings.Join(ps, ", ")}
	var asked []string
	if s.Ask.Forward != nil {
		asked = append(asked, strings.Join(s.Ask.Forward, ", "))
	}
	if s.Ask.Gradients != nil {
		var gs []string
		for _, g := range s.Ask.Gradients {
			gs = append(gs, "∂J/∂"+g)
		}
		asked = append(asked, strings.Join(gs, ", "))
	}
	if len(asked) > 0 {
		h.Given = append(h.Given, "Asked: "+strings.Join(asked, "; "))
	}
	return h
}

// isDeconvWeight reports whether name is the weight of a deconv layer.
func isDeconvWeight(s *spec.Spec, name string) bool {
	for _, l := range s.Layers {
		if l.Type == "deconv" && l.Weight == name {
			return true
		}
	}
	return false
}

// inlineValue writes a small tensor on one line: a vector as a column
// [0.4 0.8]ᵀ, anything larger by its shape.
func inlineValue[T tensor.Float](t *tensor.Tensor[T]) string {
	switch {
	case t.Rank() == 0:
		return expr.FormatNumber(float64(t.Data()[0]), 0)
	case t.Rank() == 1 && t.Len() <= 8:
		parts := make([]string, t.Len())
		for i, v := range t.Data() {
			parts[i] = expr.FormatNumber(float64(v), 0)
		}
		return "[" + strings.Join(parts, "  ") + "]ᵀ"
	}
	return "(" + tensor.FormatShape(t.Shape()) + ")"
}

func matrix[T tensor.Float](t *tensor.Tensor[T]) trace.Matrix {
	d := make([]float64, t.Len())
	for i, v := range t.Data() {
		d[i] = float64(v)
	}
	return trace.Matrix{Shape: append([]int(nil), t.Shape()...), Data: d}
}

// DeconvIndexFormula is the scatter that defines a transposed convolution
// under the pytorch kernel reading, with 1-based indices: input pixel
// (i, j) of channel c adds w[c,c',a,b] times itself to output pixel
// ((i−1)·s + a − p, (j−1)·s + b − p) of channel c'. Tests evaluate it.
const DeconvIndexFormula = "out[c', (i−1)·s + a − p, (j−1)·s + b − p] += x[c,i,j]·w[c,c',a,b]"

// FlippedIndexFormula is the same scatter under the flipped reading: the
// kernel of size k_h×k_w enters rotated by 180°.
const FlippedIndexFormula = "out[c', (i−1)·s + a − p, (j−1)·s + b − p] += x[c,i,j]·w[c,c',k_h+1−a,k_w+1−b]"

// ConventionText describes the conventions in force, one line each: only
// those that apply to the spec's layers (reshape order where something is
// reshaped or flattened, the kernel where there is a transposed
// convolution, the label where there is a logistic unit), then indexing.
func ConventionText(s *spec.Spec) []string {
	has := map[string]bool{}
	for _, l := range s.Layers {
		has[l.Type] = true
	}
	c := s.Conventions
	var out []string
	if has["reshape"] || has["flatten"] {
		if c.Reshape == "column-major" {
			out = append(out, "reshape/flatten order: column-major, as MATLAB (each channel's H×W filled column by column; --reshape row-major for NumPy/PyTorch)")
		} else {
			out = append(out, "reshape/flatten order: row-major, as NumPy and PyTorch (--reshape column-major for MATLAB)")
		}
	}
	if has["deconv"] {
		if c.Kernel == "flipped" {
			out = append(out, "deconv kernel: flipped, the kernel slides over the zero-padded input without being rotated (a full cross-correlation), "+FlippedIndexFormula+"; this is PyTorch's ConvTranspose2d with every kernel rotated 180° (--kernel pytorch for the textbook full convolution)")
		} else {
			out = append(out, "deconv kernel: pytorch, as ConvTranspose2d, which is the textbook full convolution (MATLAB conv2(x, w, 'full'): the 180°-rotated kernel slid over the zero-padded input); each input pixel adds a scaled copy of the kernel: "+DeconvIndexFormula+" (--kernel flipped slides the kernel unrotated)")
		}
	}
	if has["logistic"] {
		if c.Label == "y1" {
			out = append(out, "label: σ(a) is p(y=1), so p(y=0) = σ(−a) (--label y0 for the problem set's reading)")
		} else {
			out = append(out, "label: σ(a) is p(y=0), as the problem set writes (--label y1 for the other class)")
		}
	}
	idx := "indices: 1-based; vectors are columns"
	if has["reshape"] || has["deconv"] || has["conv"] {
		idx = "indices: 1-based, [channel, row, column] for images; vectors are columns"
	}
	return append(out, idx)
}

func header(s *spec.Spec, objective string, dtype string) trace.Header {
	title := s.Title
	if title == "" {
		title = "backprop solve " + s.File()
	}
	var obj string
	switch s.Objective.Type {
	case "log_p":
		obj = "maximize J = log p(y=0); every gradient is ∂J/∂θ, the direction of steepest ascent"
	case "bce":
		obj = fmt.Sprintf("minimize J = −log p(y=%d) (binary cross-entropy); every gradient is ∂J/∂θ", s.Objective.Label)
	case "sse":
		obj = "minimize J = L = Σᵢ (xᵢ − x'ᵢ)² (sum of squared reconstruction errors); every gradient is ∂J/∂θ"
	}
	conv := append(ConventionText(s), "precision: "+dtype)
	return trace.Header{Title: title, Conventions: conv, Objective: obj + " (J is the node " + objective + ")"}
}

// WriteText writes the worked solution as plain text: the handout, or
// every element with Detail "full".
func (s *Solution) WriteText(w io.Writer) error {
	if s.detail == "full" {
		return s.Trace.WriteText(w, s.Header, s.digits)
	}
	return s.Steps.WriteHandoutText(w, s.Header, s.Handout, s.digits)
}

// WriteMarkdown writes the worked solution as Markdown with LaTeX.
func (s *Solution) WriteMarkdown(w io.Writer) error {
	if s.detail == "full" {
		return s.Trace.WriteMarkdown(w, s.Header, s.digits)
	}
	return s.Steps.WriteHandoutMarkdown(w, s.Header, s.Handout, s.digits)
}

// WriteJSON writes {"forward": {...}, "gradients": {...}} with nested arrays
// in each tensor's own shape and full float64 precision, keys in network
// order, plus the conventions and dtype used.
func (s *Solution) WriteJSON(w io.Writer) error {
	var b bytes.Buffer
	b.WriteString("{\n  \"forward\": ")
	writeObject(&b, s.Forward)
	b.WriteString(",\n  \"gradients\": ")
	writeObject(&b, s.Gradients)
	meta, _ := json.Marshal(map[string]any{"conventions": s.Spec.Conventions, "objective": s.Spec.Objective.Type, "dtype": s.DType})
	fmt.Fprintf(&b, ",\n  \"meta\": %s\n}\n", meta)
	_, err := w.Write(b.Bytes())
	return err
}

func writeObject(b *bytes.Buffer, items []Named) {
	b.WriteString("{")
	for i, it := range items {
		if i > 0 {
			b.WriteString(",")
		}
		k, _ := json.Marshal(it.Name)
		v, _ := json.Marshal(nested(it.Value))
		fmt.Fprintf(b, "\n    %s: %s", k, v)
	}
	b.WriteString("\n  }")
}

func nested(m trace.Matrix) any {
	t := tensor.MustFromSlice(m.Data, m.Shape...)
	return t.Nested()
}
