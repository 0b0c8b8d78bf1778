// Package spec reads a network written down by a user — input, layers,
// parameters with their values, conventions and objective — from a JSON or
// YAML file, checks it, and builds it as a graph on the engine. It is how
// `backprop solve` and `backprop derive` accept "any network of the same
// family" as the problem set's tiny GAN and auto-encoder.
package spec

import (
	"bytes"

	"fmt"
	"math"
	"os"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/backprop-dev/backprop/tensor"
)

// Limits keep a spec small enough to explain (and keep a fuzzer from asking
// for terabytes).
const (
	MaxDim      = 4096
	MaxElements = 1 << 20
)

// Spec is a network of the worked-problem family.
type Spec struct {
	Title       string      `yaml:"title" json:"title"`
	Conventions Conventions `yaml:"conventions" json:"conventions"`
	Input       Input       `yaml:"input" json:"input"`
	Layers      []Layer     `yaml:"layers" json:"layers"`
	Objective   Objective   `yaml:"objective" json:"objective"`
	// Ask is what the problem asks for; empty lists mean every value.
	Ask    Ask               `yaml:"ask" json:"ask"`
	Params map[string]*Param `yaml:"-" json:"-"`
	// ParamOrder lists parameter names in the order the file gives them.
	ParamOrder []string `yaml:"-" json:"-"`

	file string
}

// Conventions are the readings of the problem that differ between textbooks
// and frameworks. Each has a default, named in every output.
type Conventions struct {
	// Reshape is "row-major" (NumPy, PyTorch; default) or "column-major" (MATLAB).
	Reshape string `yaml:"reshape" json:"reshape"`
	// Kernel is the transposed convolution's kernel orientation: "pytorch"
	// (ConvTranspose2d: every input pixel scatters a copy of the kernel;
	// default) or "flipped" (the kernel slides over the zero-padded input as
	// a correlation, i.e. rotated 180° relative to PyTorch).
	Kernel string `yaml:"kernel" json:"kernel"`
	// Label says which class the logistic unit's σ(a) is: "y0" (σ(a) is
	// p(y=0), as the seed writes; default) or "y1" (σ(a) is p(y=1), so
	// p(y=0) = σ(−a)).
	Label string `yaml:"label" json:"label"`
}

// Input is the network's input tensor.
type Input struct {
	Name  string    `yaml:"name" json:"name"`
	Value yaml.Node `yaml:"value" json:"-"`

	tensor *tensor.Tensor[float64]
}

// Layer is one step of the network.
type Layer struct {
	// Type is one of linear, reshape, flatten, deconv, conv, activation, logistic.
	Type string `yaml:"type" json:"type"`
	// Name is the name of the layer's output (h0, h2, p, x').
	Name string `yaml:"name" json:"name"`
	// Weight and Bias name entries of params.
	Weight string `yaml:"weight" json:"weight,omitempty"`
	Bias   string `yaml:"bias" json:"bias,omitempty"`
	// Transpose (linear): the weight is stored in×out and applied as wᵀx,
	// as in the auto-encoder's w1ᵀx; otherwise out×in applied as w x.
	Transpose bool `yaml:"transpose" json:"transpose,omitempty"`
	// Activation applied after the affine part: relu, leaky_relu, sigmoid,
	// tanh or identity (default).
	Activation string  `yaml:"activation" json:"activation,omitempty"`
	Slope      float64 `yaml:"slope" json:"slope,omitempty"`
	// Preactivation names the value before the activation (default u<n>
	// for a layer named h<n>).
	Preactivation string `yaml:"preactivation" json:"preactivation,omitempty"`
	// Shape (reshape): the target shape, e.g. [2, 2, 2] for channels×H×W.
	Shape []int `yaml:"shape" json:"shape,omitempty"`
	// Stride, Padding and OutputPadding (conv, deconv): one number or [h, w].
	Stride        Pair `yaml:"stride" json:"stride,omitempty"`
	Padding       Pair `yaml:"padding" json:"padding,omitempty"`
	OutputPadding Pair `yaml:"output_padding" json:"output_padding,omitempty"`
	// BiasMode (conv, deconv): "channel" (one per output channel) or
	// "pixel" (one per output element, "untied"); inferred from the bias's
	// shape when empty.
	BiasMode string `yaml:"bias_mode" json:"bias_mode,omitempty"`

	line int
}

// Pair is a stride or padding: one number for both axes or [h, w].
type Pair struct {
	H, W int
	Set  bool
}

// UnmarshalYAML accepts 2 or [2, 3].
func (p *Pair) UnmarshalYAML(n *yaml.Node) error {
	var one int
	if err := n.Decode(&one); err == nil {
		*p = Pair{one, one, true}
		return nil
	}
	var two []int
	if err := n.Decode(&two); err != nil || len(two) != 2 {
		return fmt.Errorf("line %d: want a number or [h, w], got %s", n.Line, nodeText(n))
	}
	*p = Pair{two[0], two[1], true}
	return nil
}

// Objective is what the gradients are of.
type Objective struct {
	// Type: "log_p" (maximize log p(y=0), the seed's objective; default
	// when the last layer is logistic), "bce" (minimize −log p(y=label)),
	// or "sse" (minimize Σ(x − x')², the auto-encoder's reconstruction
	// error against the input).
	Type  string `yaml:"type" json:"type"`
	Label int    `yaml:"label" json:"label,omitempty"`
}

// Ask names the values a problem asks for, so that a worked solution ends
// with those answers and does not work out gradients nobody asked for. A
// nil list means all: every reported forward value, every parameter's
// gradient.
type Ask struct {
	// Forward names forward values (layer outputs, pre-activations such as
	// u2 or a, p, log_p) in the order the answers list them.
	Forward []string `yaml:"forward" json:"forward,omitempty"`
	// Gradients names parameters whose gradient is asked for.
	Gradients []string `yaml:"gradients" json:"gradients,omitempty"`

	line int
}

// Param is a named parameter tensor with the file position it came from.
type Param struct {
	Name   string
	Tensor *tensor.Tensor[float64]
	Line   int
}

// Error is a problem with a spec, placed in the file.
type Error struct {
	File  string
	Line  int
	Field string
	Msg   string
}

func (e *Error) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		if e.Line > 0 {
			fmt.Fprintf(&b, ":%d", e.Line)
		}
		b.WriteString(": ")
	}
	if e.Field != "" {
		b.WriteString(e.Field + ": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

func (s *Spec) errf(line int, field, format string, a ...any) error {
	return &Error{File: s.file, Line: line, Field: field, Msg: fmt.Sprintf(format, a...)}
}

// ReadFile parses and checks the spec at path (JSON or YAML).
func ReadFile(path string) (*Spec, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, data)
}

type rawSpec struct {
	Title       string      `yaml:"title"`
	Conventions Conventions `yaml:"conventions"`
	Input       Input       `yaml:"input"`
	Layers      []yaml.Node `yaml:"layers"`
	Objective   Objective   `yaml:"objective"`
	Ask         yaml.Node   `yaml:"ask"`
	Params      yaml.Node   `yaml:"params"`
}

// Parse parses and checks a spec; file names it in errors. JSON is read as
// the YAML subset it is.
func Parse(file string, data []byte) (*Spec, error) {
	s := &Spec{file: file, Params: map[string]*Param{}}
	var raw rawSpec
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&raw); err != nil {
		return nil, s.errf(0, "", "not a valid spec: %s", strings.TrimPrefix(err.Error(), "yaml: "))
	}
	s.Title, s.Conventions, s.Input, s.Objective = raw.Title, raw.Conventions, raw.Input, raw.Objective
	for i := range raw.Layers {
		var l Layer
		n := &raw.Layers[i]
		d := yaml.NewDecoder(bytes.NewReader(mustMarshal(n)))
		d.KnownFields(true)
		if err := d.Decode(&l); err != nil {
			return nil, s.errf(n.Line, fmt.Sprintf("layers[%d]", i), "%s", strings.TrimPrefix(err.Error(), "yaml: "))
		}
		l.line = n.Line
		s.Layers = append(s.Layers, l)
	}
	if err := s.parseParams(&raw.Params); err != nil {
		return nil, err
	}
	if raw.Ask.Kind != 0 {
		d := yaml.NewDecoder(bytes.NewReader(mustMarshal(&raw.Ask)))
		d.KnownFields(true)
		if err := d.Decode(&s.Ask); err != nil {
			return nil, s.errf(raw.Ask.Line, "ask", "want {forward: [names], gradients: [parameter names]}: %s", strings.TrimPrefix(err.Error(), "yaml: "))
		}
		s.Ask.line = raw.Ask.Line
	}
	if err := s.check(); err != nil {
		return nil, err
	}
	return s, nil
}

func mustMarshal(n *yaml.Node) []byte {
	b, err := yaml.Marshal(n)
	if err != nil {
		return nil
	}
	return b
}

func nodeText(n *yaml.Node) string {
	b := strings.TrimSpace(string(mustMarshal(n)))
	if len(b) > 40 {
		b = b[:40] + "…"
	}
	return b
}

func (s *Spec) parseParams(n *yaml.Node) error {
	if n.Kind == 0 {
		return s.errf(0, "params", "missing: the spec must give the value of every weight and bias")
	}
	if n.Kind != yaml.MappingNode {
		return s.errf(n.Line, "params", "want a mapping from parameter names to values, got %s", nodeText(n))
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		name := k.Value
		if _, dup := s.Params[name]; dup {
			return s.errf(k.Line, "params."+name, "given twice")
		}
		t, err := s.tensorOf(v, "params."+name)
		if err != nil {
			return err
		}
		s.Params[name] = &Param{Name: name, Tensor: t, Line: k.Line}
		s.ParamOrder = append(s.ParamOrder, name)
	}
	return nil
}

// tensorOf reads a number or nested list of numbers as a tensor.
func (s *Spec) tensorOf(n *yaml.Node, field string) (*tensor.Tensor[float64], error) {
	if n.Kind == 0 {
		return nil, s.errf(0, field, "missing")
	}
	var shape []int
	var data []float64
	var walk func(n *yaml.Node, depth int, path string) error
	walk = func(n *yaml.Node, depth int, path string) error {
		if n.Kind == yaml.AliasNode {
			return s.errf(n.Line, field+path, "aliases are not allowed in numeric values")
		}
		if n.Kind == yaml.ScalarNode {
			if depth != len(shape) && len(data) > 0 {
				return s.errf(n.Line, field+path, "ragged array: a number where a list of %d was expected", shape[depth])
			}
			if len(data) == 0 {
				shape = shape[:depth]
			}
			var v float64
			if err := n.Decode(&v); err != nil {
				return s.errf(n.Line, field+path, "want a number, got %q", n.Value)
			}
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return s.errf(n.Line, field+path, "is %v; every value must be finite", v)
			}
			if len(data) >= MaxElements {
				return s.errf(n.Line, field, "more than %d values", MaxElements)
			}
			data = append(data, v)
			return nil
		}
		if n.Kind != yaml.SequenceNode {
			return s.errf(n.Line, field+path, "want a number or a list of numbers, got %s", nodeText(n))
		}
		if depth > 8 {
			return s.errf(n.Line, field, "more than 8 dimensions")
		}
		if len(data) == 0 && len(shape) == depth {
			shape = append(shape, len(n.Content))
		} else if depth >= len(shape) {
			return s.errf(n.Line, field+path, "ragged array: a list where a number was expected")
		} else if shape[depth] != len(n.Content) {
			return s.errf(n.Line, field+path, "ragged array: %d entries, but the first list at this depth has %d", len(n.Content), shape[depth])
		}
		if len(n.Content) == 0 {
			return s.errf(n.Line, field+path, "empty list")
		}
		for i, c := range n.Content {
			if err := walk(c, depth+1, fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
		return nil
	}
	if err := walk(n, 0, ""); err != nil {
		return nil, err
	}
	if tensor.NumElements(shape) != len(data) {
		return nil, s.errf(n.Line, field, "ragged array")
	}
	return tensor.FromSlice(data, shape...)
}

func oneOf(v string, allowed ...string) bool {
	for _, a := range allowed {
		if v == a {
			return true
		}
	}
	return false
}

// check fills defaults and validates everything that does not need shapes.
func (s *Spec) check() error {
	c := &s.Conventions
	if c.Reshape == "" {
		c.Reshape = "row-major"
	}
	if c.Kernel == "" {
		c.Kernel = "pytorch"
	}
	if c.Label == "" {
		c.Label = "y0"
	}
	if !oneOf(c.Reshape, "row-major", "column-major") {
		return s.errf(0, "conventions.reshape", "want row-major or column-major, got %q", c.Reshape)
	}
	if !oneOf(c.Kernel, "pytorch", "flipped") {
		return s.errf(0, "conventions.kernel", "want pytorch or flipped, got %q", c.Kernel)
	}
	if !oneOf(c.Label, "y0", "y1") {
		return s.errf(0, "conventions.label", "want y0 (σ(a) is p(y=0)) or y1 (σ(a) is p(y=1)), got %q", c.Label)
	}
	if s.Input.Name == "" {
		s.Input.Name = "x"
	}
	t, err := s.tensorOf(&s.Input.Value, "input.value")
	if err != nil {
		return err
	}
	s.Input.tensor = t
	if len(s.Layers) == 0 {
		return s.errf(0, "layers", "missing: a network needs at least one layer")
	}
	names := map[string]string{s.Input.Name: "input"}
	for _, p := range s.ParamOrder {
		names[p] = "params"
	}
	for i := range s.Layers {
		l := &s.Layers[i]
		field := fmt.Sprintf("layers[%d]", i)
		if !oneOf(l.Type, "linear", "reshape", "flatten", "deconv", "conv", "activation", "logistic") {
			return s.errf(l.line, field+".type", "want one of linear, reshape, flatten, deconv, conv, activation, logistic; got %q", l.Type)
		}
		if l.Type == "logistic" && i != len(s.Layers)-1 {
			return s.errf(l.line, field, "a logistic layer must be the last layer")
		}
		if l.Name == "" {
			if l.Type == "logistic" {
				l.Name = "p"
			} else {
				return s.errf(l.line, field+".name", "missing: every layer names its output")
			}
		}
		if prev, dup := names[l.Name]; dup {
			return s.errf(l.line, field+".name", "%q is already used (in %s)", l.Name, prev)
		}
		names[l.Name] = field
		if l.Activation == "" {
			l.Activation = "identity"
		}
		if !oneOf(l.Activation, "identity", "relu", "leaky_relu", "sigmoid", "tanh") {
			return s.errf(l.line, field+".activation", "want relu, leaky_relu, sigmoid, tanh or identity; got %q", l.Activation)
		}
		if l.Activation == "leaky_relu" && l.Slope == 0 {
			l.Slope = 0.01
		}
		needWeight := oneOf(l.Type, "linear", "deconv", "conv", "logistic")
		if needWeight {
			if l.Weight == "" {
				return s.errf(l.line, field+".weight", "missing: a %s layer needs a weight", l.Type)
			}
			if s.Params[l.Weight] == nil {
				return s.errf(l.line, field+".weight", "%q is not in params", l.Weight)
			}
			if l.Bias != "" && s.Params[l.Bias] == nil {
				return s.errf(l.line, field+".bias", "%q is not in params", l.Bias)
			}
		} else if l.Weight != "" || l.Bias != "" {
			return s.errf(l.line, field, "a %s layer has no weight or bias", l.Type)
		}
		if l.Type == "activation" && l.Activation == "identity" {
			return s.errf(l.line, field+".activation", "missing: an activation layer names its function")
		}
		if l.Type == "reshape" {
			if len(l.Shape) == 0 {
				return s.errf(l.line, field+".shape", "missing: a reshape needs a target shape")
			}
			for _, d := range l.Shape {
				if d <= 0 || d > MaxDim {
					return s.errf(l.line, field+".shape", "dimensions must be between 1 and %d, got %v", MaxDim, l.Shape)
				}
			}
		}
		if l.Type == "conv" || l.Type == "deconv" {
			if !l.Stride.Set {
				l.Stride = Pair{1, 1, true}
			}
			if l.Stride.H < 1 || l.Stride.W < 1 || l.Stride.H > 64 || l.Stride.W > 64 {
				return s.errf(l.line, field+".stride", "want 1 to 64, got [%d, %d]", l.Stride.H, l.Stride.W)
			}
			if l.Padding.H < 0 || l.Padding.W < 0 || l.Padding.H > MaxDim || l.Padding.W > MaxDim {
				return s.errf(l.line, field+".padding", "want 0 or more, got [%d, %d]", l.Padding.H, l.Padding.W)
			}
			if l.OutputPadding.H < 0 || l.OutputPadding.W < 0 {
				return s.errf(l.line, field+".output_padding", "want 0 or more, got [%d, %d]", l.OutputPadding.H, l.OutputPadding.W)
			}
			if l.Type == "conv" && l.OutputPadding.Set && (l.OutputPadding.H != 0 || l.OutputPadding.W != 0) {
				return s.errf(l.line, field+".output_padding", "only a transposed convolution (deconv) has output padding")
			}
			if !oneOf(l.BiasMode, "", "channel", "pixel") {
				return s.errf(l.line, field+".bias_mode", "want channel or pixel, got %q", l.BiasMode)
			}
		}
	}
	for i, g := range s.Ask.Gradients {
		if s.Params[g] == nil {
			return s.errf(s.Ask.line, fmt.Sprintf("ask.gradients[%d]", i), "%q is not in params (have %s)", g, strings.Join(s.ParamOrder, ", "))
		}
	}
	last := s.Layers[len(s.Layers)-1]
	if s.Objective.Type == "" {
		if last.Type == "logistic" {
			s.Objective.Type = "log_p"
		} else {
			s.Objective.Type = "sse"
		}
	}
	switch s.Objective.Type {
	case "log_p", "bce":
		if last.Type != "logistic" {
			return s.errf(0, "objective.type", "%q needs a logistic last layer, the last layer is %s", s.Objective.Type, last.Type)
		}
		if s.Objective.Label != 0 && s.Objective.Label != 1 {
			return s.errf(0, "objective.label", "want 0 or 1, got %d", s.Objective.Label)
		}
	case "sse":
		if last.Type == "logistic" {
			return s.errf(0, "objective.type", "sse compares the output with the input; a logistic output is a probability, use log_p or bce")
		}
	default:
		return s.errf(0, "objective.type", "want log_p, bce or sse; got %q", s.Objective.Type)
	}
	return nil
}

// File is the path the spec was read from.
func (s *Spec) File() string { return s.file }

// InputTensor is the input's value.
func (s *Spec) InputTensor() *tensor.Tensor[float64] { return s.Input.tensor }

// WithValues returns a copy of s whose input and parameter values are
// replaced by f(name, old) (same shapes expected), for checks on random
// values. The layers, conventions and objective are shared.
func (s *Spec) WithValues(f func(name string, old *tensor.Tensor[float64]) *tensor.Tensor[float64]) *Spec {
	c := *s
	c.Params = map[string]*Param{}
	for _, name := range s.ParamOrder {
		p := *s.Params[name]
		p.Tensor = f(name, p.Tensor)
		c.Params[name] = &p
	}
	c.Input.tensor = f(s.Input.Name, s.Input.tensor)
	return &c
}
