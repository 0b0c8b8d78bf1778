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
	// Train holds the optimizer steps the spec asks for (train:), and
	// FinalObjective the objective after the last update.
	Train          []TrainStep
	FinalObjective float64
	digits         int
	detail         string
}

// Solve runs the spec.
func Solve(s *spec.Spec, opt Options) (*Solution, error) {
	for i, v := range []string{opt.Reshape, opt.Kernel, opt.Label} { // in spec.ConventionFields' order
		f := spec.ConventionFields[i]
		if err := s.Conventions.Set(f, v); err != nil {
			return nil, fmt.Errorf("--%s: %w", f, err)
		}
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
	tr, err := trace.Build(m.Nodes, trace.Options{MaxElements: opt.MaxElements, Objective: "J", Groups: m.Group})
	if err != nil {
		return nil, err
	}
	sol.Trace = tr
	if sol.Steps, err = trace.Build(m.Nodes, trace.Options{MaxElements: opt.MaxElements, Objective: "J", NamedSteps: true, Groups: m.Group}); err != nil {
		return nil, err
	}
	sol.Header = header(s, m.Objective.Name, dtype)
	sol.Handout = handout(s, m)
	if s.Train != nil {
		digits := opt.Digits
		if digits == 0 {
			digits = 6
		}
		if sol.Train, sol.FinalObjective, err = train(s, m, digits); err != nil {
			return nil, err
		}
	}
	return sol, nil
}

// handout restates the problem for the compact solution: the input's
// value, every parameter's shape (a scalar's value), and what is asked.
func handout[T tensor.Float](s *spec.Spec, m *spec.Model[T]) trace.Handout {
	h := trace.Handout{AskedForward: s.Ask.Forward, AskedGradients: s.Ask.Gradients, Maximize: m.Maximize}
	var gs []string
	for _, in := range s.Inputs {
		v, _ := s.InputValue(in.Name)
		d := in.Name + " = " + inlineValue(v)
		switch {
		case in.Kind == "labels":
			d = fmt.Sprintf("%s = %s (class labels from 0, as PyTorch; the formulas count classes from 1)", in.Name, inlineValue(v))
		case in.Kind == "mask":
			d += " (dropout mask: 0 drops, 1 keeps)"
		case in.Batch:
			d = fmt.Sprintf("%s %s (one row per sample)", in.Name, tensor.FormatShape(v.Shape()))
		}
		gs = append(gs, d)
	}
	given := strings.Join(gs, "; ")
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
	obj := objectiveText(s, objective)
	conv := append(ConventionText(s), "precision: "+dtype)
	return trace.Header{Title: title, Conventions: conv, Objective: obj}
}

// objectiveText states the objective: what is minimized or maximized, the
// loss's formula with the spec's names, the reduction, the weight decay,
// and which node J is.
func objectiveText(s *spec.Spec, node string) string {
	o := s.Objective
	out := outputName(s)
	target := s.Input.Name
	if o.Target != "" {
		target = o.Target
	}
	loss := o.Name
	if loss == "" {
		loss = "L"
	}
	var what string
	switch o.Type {
	case "log_p":
		what = "maximize J = log p(y=0)"
		if s.Batched() {
			what = "maximize J = Σₙ log p(yₙ=0) over the batch"
		}
	case "bce":
		what = fmt.Sprintf("minimize J = −log p(y=%d) (binary cross-entropy)", o.Label)
	case "sse", "half_sse":
		half := ""
		if o.Type == "half_sse" {
			half = "½·"
		}
		what = fmt.Sprintf("minimize %s = %sΣᵢ (%sᵢ − %sᵢ)²", loss, half, out, target)
		if o.Target == "" && s.Objective.Of == "" {
			what += " (the sum of squared reconstruction errors)"
		}
		if o.Reduction == "mean" && s.Batched() {
			what += ", averaged over the N samples"
		}
	case "mse":
		what = fmt.Sprintf("minimize %s = the mean of (%s − %s)² over its elements (MSELoss)", loss, out, target)
		if o.Reduction == "sum" {
			what = fmt.Sprintf("minimize %s = Σ (%s − %s)²", loss, out, target)
		}
	case "cross_entropy":
		what = fmt.Sprintf("minimize %s = −log softmax(%s)[%s], the cross-entropy of the logits %s against the labels %s", loss, out, o.Labels, out, o.Labels)
		if o.Reduction == "mean" && s.Batched() {
			what += ", averaged over the N rows"
		} else if s.Batched() {
			what += ", summed over the N rows"
		}
	}
	if strings.HasPrefix(what, "minimize "+loss) && o.WeightDecay == nil {
		what = "minimize J = " + strings.TrimPrefix(what, "minimize ")
	}
	if wd := o.WeightDecay; wd != nil {
		what = strings.Replace(what, "minimize ", "minimize J = ", 1)
		var ws []string
		for _, p := range wd.Params {
			ws = append(ws, "‖"+p+"‖²")
		}
		sign := "+"
		if o.Type == "log_p" {
			sign = "−"
		}
		data := loss
		switch o.Type {
		case "log_p":
			data = "log p(y=0)"
			if s.Batched() {
				data = "Σₙ log p(yₙ=0)"
			}
			what = strings.Replace(what, "maximize J = ", "maximize ", 1)
			what = strings.Replace(what, "maximize ", "maximize J = ", 1)
		case "bce":
			data = fmt.Sprintf("−log p(y=%d)", o.Label)
		}
		what += fmt.Sprintf("; J = %s %s (λ/2)·(%s) with λ = %g (weight decay)", data, sign, strings.Join(ws, " + "), wd.Lambda)
	}
	dir := "every gradient is ∂J/∂θ"
	if o.Type == "log_p" {
		dir += ", the direction of steepest ascent"
	}
	return what + "; " + dir + " (J is the node " + node + ")"
}

// outputName names the value the loss is taken of.
func outputName(s *spec.Spec) string {
	if s.Objective.Of != "" {
		return s.Objective.Of
	}
	return s.Layers[len(s.Layers)-1].Name
}

// WriteText writes the worked solution as plain text: the handout, or
// every element with Detail "full".
func (s *Solution) WriteText(w io.Writer) error {
	var err error
	if s.detail == "full" {
		err = s.Trace.WriteText(w, s.Header, s.digits)
	} else {
		err = s.Steps.WriteHandoutText(w, s.Header, s.Handout, s.digits)
	}
	if err != nil {
		return err
	}
	return s.writeTrainText(w)
}

// WriteMarkdown writes the worked solution as Markdown with LaTeX.
func (s *Solution) WriteMarkdown(w io.Writer) error {
	var err error
	if s.detail == "full" {
		err = s.Trace.WriteMarkdown(w, s.Header, s.digits)
	} else {
		err = s.Steps.WriteHandoutMarkdown(w, s.Header, s.Handout, s.digits)
	}
	if err != nil {
		return err
	}
	return s.writeTrainMarkdown(w)
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
	if len(s.Train) > 0 {
		b.WriteString(",\n  \"steps\": [")
		for i, st := range s.Train {
			if i > 0 {
				b.WriteString(",")
			}
			obj, _ := json.Marshal(st.Objective)
			fmt.Fprintf(&b, "\n    {\"step\": %d, \"objective\": %s, \"params\": ", st.Step, obj)
			writeObject(&b, st.Params)
			b.WriteString("}")
		}
		obj, _ := json.Marshal(s.FinalObjective)
		fmt.Fprintf(&b, "\n  ],\n  \"final_objective\": %s", obj)
	}
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
