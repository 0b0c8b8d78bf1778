// Package spec reads a network written down by a user — input, layers,
// parameters with their values, conventions and objective — from a JSON or
// YAML file, checks it, and builds it as a graph on the engine. It is how
// `backprop solve` and `backprop derive` accept "any network of the same
// family" as the problem set's tiny GAN and auto-encoder.
package spec

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"os"
	"slices"
	"sort"
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
	// Inputs are the network's named inputs when it has several (data,
	// class labels, targets, a dropout mask); Input is then the first
	// data input. A spec gives input or inputs, not both.
	Inputs    []Input   `yaml:"inputs" json:"inputs,omitempty"`
	Layers    []Layer   `yaml:"layers" json:"layers"`
	Objective Objective `yaml:"objective" json:"objective"`
	// Ask is what the problem asks for; empty lists mean every value.
	Ask Ask `yaml:"ask" json:"ask"`
	// Train asks for optimizer steps after the gradients (nil: none).
	Train  *Train            `yaml:"train" json:"train,omitempty"`
	Params map[string]*Param `yaml:"-" json:"-"`
	// ParamOrder lists parameter names in the order the file gives them.
	ParamOrder []string `yaml:"-" json:"-"`

	file     string
	convLine map[string]int // the line of each conventions field
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
	// Weights is how recurrent layers apply their weights: "Wh" (W·h,
	// PyTorch's RNNCell/LSTMCell/GRUCell with weights out×in; default) or
	// "hW" (h·W with weights in×out, as some textbooks). Only specs with a
	// recurrent layer have it.
	Weights string `yaml:"weights" json:"weights,omitempty"`
}

// Input is one of the network's inputs: a tensor of data, or integer class
// labels, a regression target or a given dropout mask.
type Input struct {
	Name  string    `yaml:"name" json:"name"`
	Value yaml.Node `yaml:"value" json:"-"`
	// Kind is data (default), labels (class indices, 0-based as PyTorch),
	// target (what a loss compares with) or mask (a dropout mask of 0s
	// and 1s). Only data inputs are differentiated through; none gets a
	// gradient.
	Kind string `yaml:"kind" json:"kind,omitempty"`
	// Batch says the leading axis holds samples (N rows), so layers work
	// row by row and losses reduce over the batch.
	Batch bool `yaml:"batch" json:"batch,omitempty"`

	tensor *tensor.Tensor[float64]
	line   int
}

// Train asks a worked solution for optimizer steps: each step's update
// of every parameter with the numbers substituted, and the objective
// before and after. The rules are torch.optim's.
type Train struct {
	// Optimizer is sgd, momentum (SGD with momentum, PyTorch's form
	// v ← μv + g, θ ← θ − ηv) or adam.
	Optimizer string  `yaml:"optimizer" json:"optimizer"`
	LR        float64 `yaml:"lr" json:"lr"`
	Momentum  float64 `yaml:"momentum" json:"momentum,omitempty"`
	// Betas and Eps are Adam's (default 0.9, 0.999 and 1e-8).
	Betas []float64 `yaml:"betas" json:"betas,omitempty"`
	Eps   float64   `yaml:"eps" json:"eps,omitempty"`
	// Steps is how many updates (default 1, at most 100).
	Steps int `yaml:"steps" json:"steps"`
	line  int
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
	// Inputs names the layer's operands (inputs, earlier layers' outputs
	// or pre-activations); default: the previous layer's output. add,
	// mul and concat take two or more.
	Inputs []string `yaml:"inputs" json:"inputs,omitempty"`
	// Axis (softmax, log_softmax, concat): the axis, negative from the end
	// (default −1 for softmax, 0 for concat of unbatched inputs).
	Axis *int `yaml:"axis" json:"axis,omitempty"`
	// KernelSize (maxpool, avgpool): the window, one number or [h, w];
	// the stride defaults to it, as in PyTorch.
	KernelSize Pair `yaml:"kernel_size" json:"kernel_size,omitempty"`
	// Eps (batchnorm, layernorm): added to the variance (default 1e-5).
	Eps float64 `yaml:"eps" json:"eps,omitempty"`
	// Recurrent and RecurrentBias (rnn, lstm, gru): the hidden-to-hidden
	// weight and bias (PyTorch's weight_hh and bias_hh; Weight and Bias are
	// weight_ih and bias_ih). H0 and C0 name inputs holding the initial
	// hidden and cell states (default zero).
	Recurrent     string `yaml:"recurrent" json:"recurrent,omitempty"`
	RecurrentBias string `yaml:"recurrent_bias" json:"recurrent_bias,omitempty"`
	H0            string `yaml:"h0" json:"h0,omitempty"`
	C0            string `yaml:"c0" json:"c0,omitempty"`
	// Hidden (rnn, lstm, gru): the state size, checked against the weights.
	Hidden int `yaml:"hidden" json:"hidden,omitempty"`
	// WQ, WK, WV, WO (attention): the query, key, value and output
	// projections (out×in, as nn.Linear), Heads the number of heads and
	// Causal whether a position may attend only to itself and earlier ones.
	WQ     string `yaml:"wq" json:"wq,omitempty"`
	WK     string `yaml:"wk" json:"wk,omitempty"`
	WV     string `yaml:"wv" json:"wv,omitempty"`
	WO     string `yaml:"wo" json:"wo,omitempty"`
	Heads  int    `yaml:"heads" json:"heads,omitempty"`
	Causal bool   `yaml:"causal" json:"causal,omitempty"`
	// TransposeB (matmul): multiply by the second input transposed (Q·Kᵀ).
	TransposeB bool `yaml:"transpose_b" json:"transpose_b,omitempty"`
	// Start and Stop (slice): the range [start, stop) along Axis.
	Start int `yaml:"start" json:"start,omitempty"`
	Stop  int `yaml:"stop" json:"stop,omitempty"`
	// Mask (dropout): the input holding the 0/1 mask; P the drop
	// probability, so kept values are scaled by 1/(1−P) as PyTorch's
	// inverted dropout does (or Scale, given directly).
	Mask  string  `yaml:"mask" json:"mask,omitempty"`
	P     float64 `yaml:"p" json:"p,omitempty"`
	Scale float64 `yaml:"scale" json:"scale,omitempty"`
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
	// "sse" (minimize Σ(x − x')², against the input or Target), "half_sse"
	// (½·Σ(x − x')²), "mse" (the mean of the squares) or "cross_entropy"
	// (softmax cross-entropy of the last layer's logits against Labels).
	Type  string `yaml:"type" json:"type"`
	Label int    `yaml:"label" json:"label,omitempty"`
	// Name names the loss (default L; E, as some texts write).
	Name string `yaml:"name" json:"name,omitempty"`
	// Of names the value the loss is taken of (default: the last layer).
	Of string `yaml:"of" json:"of,omitempty"`
	// Labels names the input of class labels (cross_entropy).
	Labels string `yaml:"labels" json:"labels,omitempty"`
	// Target names the input the output is compared with (sse, half_sse,
	// mse; default: the data input, as an auto-encoder).
	Target string `yaml:"target" json:"target,omitempty"`
	// Reduction over a batch: mean (default for cross_entropy and mse, as
	// PyTorch) or sum (default for sse and half_sse).
	Reduction string `yaml:"reduction" json:"reduction,omitempty"`
	// WeightDecay adds (λ/2)·Σ‖w‖² over the named parameters.
	WeightDecay *WeightDecay `yaml:"weight_decay" json:"weight_decay,omitempty"`
}

// WeightDecay is an L2 penalty term of the objective: (λ/2)·Σ w² over the
// parameters named (default: every weight, i.e. every parameter a layer
// uses as its weight).
type WeightDecay struct {
	Lambda float64  `yaml:"lambda" json:"lambda"`
	Params []string `yaml:"params" json:"params,omitempty"`
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
	Conventions yaml.Node   `yaml:"conventions"`
	Input       Input       `yaml:"input"`
	Inputs      []yaml.Node `yaml:"inputs"`
	Train       yaml.Node   `yaml:"train"`
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
	s.Title, s.Input, s.Objective = raw.Title, raw.Input, raw.Objective
	if n := &raw.Conventions; n.Kind != 0 {
		d := yaml.NewDecoder(bytes.NewReader(mustMarshal(n)))
		d.KnownFields(true)
		if err := d.Decode(&s.Conventions); err != nil {
			return nil, s.errf(n.Line, "conventions", "%s", strings.TrimPrefix(err.Error(), "yaml: "))
		}
		s.convLine = map[string]int{}
		for k := 0; k+1 < len(n.Content); k += 2 {
			s.convLine[n.Content[k].Value] = n.Content[k].Line
		}
	}
	for i := range raw.Inputs {
		var in Input
		n := &raw.Inputs[i]
		d := yaml.NewDecoder(bytes.NewReader(mustMarshal(n)))
		d.KnownFields(true)
		if err := d.Decode(&in); err != nil {
			return nil, s.errf(n.Line, fmt.Sprintf("inputs[%d]", i), "%s", strings.TrimPrefix(err.Error(), "yaml: "))
		}
		in.line = n.Line
		// the value node keeps its own line numbers for errors
		for k := 0; k+1 < len(n.Content); k += 2 {
			if n.Content[k].Value == "value" {
				in.Value = *n.Content[k+1]
			}
		}
		s.Inputs = append(s.Inputs, in)
	}
	if raw.Train.Kind != 0 {
		d := yaml.NewDecoder(bytes.NewReader(mustMarshal(&raw.Train)))
		d.KnownFields(true)
		s.Train = &Train{}
		if err := d.Decode(s.Train); err != nil {
			return nil, s.errf(raw.Train.Line, "train", "%s", strings.TrimPrefix(err.Error(), "yaml: "))
		}
		s.Train.line = raw.Train.Line
	}
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
	var bad *ConventionError
	if err := s.Conventions.Validate(); errors.As(err, &bad) {
		bad.Explained = true
		return s.errf(s.convLine[string(bad.Field)], "conventions."+string(bad.Field), "%s", bad)
	}
	if err := s.checkInputs(); err != nil {
		return err
	}
	if len(s.Layers) == 0 {
		return s.errf(0, "layers", "missing: a network needs at least one layer")
	}
	names := map[string]string{}
	for i, in := range s.Inputs {
		names[in.Name] = fmt.Sprintf("inputs[%d]", i)
	}
	for _, p := range s.ParamOrder {
		if prev, dup := names[p]; dup {
			return s.errf(s.Params[p].Line, "params."+p, "%q is already the name of %s", p, prev)
		}
		names[p] = "params"
	}
	// values a layer may take as an input: the inputs and the outputs
	// (and pre-activations) of the layers before it
	avail := map[string]bool{}
	for _, in := range s.Inputs {
		avail[in.Name] = in.Kind == "data"
	}
	for i := range s.Layers {
		l := &s.Layers[i]
		field := fmt.Sprintf("layers[%d]", i)
		if _, err := ParseLayerType(l.Type); err != nil {
			return s.errf(l.line, field+".type", "%s", err)
		}
		if err := s.checkLayerInputs(i, l, avail); err != nil {
			return err
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
		if _, err := ParseActivation(l.Activation); err != nil {
			return s.errf(l.line, field+".activation", "%s", err)
		}
		if l.Activation == "leaky_relu" && l.Slope == 0 {
			l.Slope = 0.01
		}
		needWeight := oneOf(l.Type, "linear", "deconv", "conv", "logistic", "embedding", "rnn", "lstm", "gru")
		if err := s.checkSequenceLayer(i, l); err != nil {
			return err
		}
		switch {
		case l.Type == "attention":
			if l.Weight != "" || l.Bias != "" {
				return s.errf(l.line, field, "an attention layer names its projections wq, wk, wv, wo, not weight or bias")
			}
		case oneOf(l.Type, "batchnorm", "layernorm"):
			// γ and β are optional (affine=False without them)
			for f, n := range map[string]string{".weight": l.Weight, ".bias": l.Bias} {
				if n != "" && s.Params[n] == nil {
					return s.errf(l.line, field+f, "%q is not in params", n)
				}
			}
		case needWeight:
			if l.Weight == "" {
				return s.errf(l.line, field+".weight", "missing: a %s layer needs a weight", l.Type)
			}
			if s.Params[l.Weight] == nil {
				return s.errf(l.line, field+".weight", "%q is not in params", l.Weight)
			}
			if l.Bias != "" && s.Params[l.Bias] == nil {
				return s.errf(l.line, field+".bias", "%q is not in params", l.Bias)
			}
		case l.Weight != "" || l.Bias != "":
			return s.errf(l.line, field, "a %s layer has no weight or bias", l.Type)
		}
		if oneOf(l.Type, "maxpool", "avgpool") {
			if !l.KernelSize.Set {
				return s.errf(l.line, field+".kernel_size", "missing: a pooling layer needs its window size")
			}
			if !l.Stride.Set {
				l.Stride = l.KernelSize
			}
			if l.KernelSize.H < 1 || l.KernelSize.W < 1 || l.Stride.H < 1 || l.Stride.W < 1 {
				return s.errf(l.line, field, "kernel_size and stride must be at least 1")
			}
			if 2*l.Padding.H > l.KernelSize.H || 2*l.Padding.W > l.KernelSize.W || l.Padding.H < 0 || l.Padding.W < 0 {
				return s.errf(l.line, field+".padding", "want 0 to half the window (as PyTorch), got [%d, %d] for a [%d, %d] window", l.Padding.H, l.Padding.W, l.KernelSize.H, l.KernelSize.W)
			}
		}
		if l.Type == "dropout" {
			in, ok := s.input(l.Mask)
			if l.Mask == "" || !ok || in.Kind != "mask" {
				return s.errf(l.line, field+".mask", "want the name of an input of kind mask (the 0/1 dropout mask), got %q", l.Mask)
			}
			if l.Scale == 0 {
				if l.P < 0 || l.P >= 1 {
					return s.errf(l.line, field+".p", "want a drop probability in [0, 1), got %v", l.P)
				}
				l.Scale = 1 / (1 - l.P)
			}
		}
		if oneOf(l.Type, "batchnorm", "layernorm") && l.Eps == 0 {
			l.Eps = 1e-5
		}
		if oneOf(l.Type, "softmax", "log_softmax", "add", "mul", "concat", "maxpool", "avgpool", "dropout", "batchnorm", "layernorm", "matmul", "slice", "embedding", "attention") && l.Activation != "identity" {
			return s.errf(l.line, field+".activation", "a %s layer has no activation; add an activation layer after it", l.Type)
		}
		avail[l.Name] = true
		if oneOf(l.Type, "linear", "conv", "deconv") && l.Activation != "identity" {
			avail[preName(*l)] = true
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
	if err := s.checkObjective(avail); err != nil {
		return err
	}
	if err := s.checkTrain(); err != nil {
		return err
	}
	switch s.Objective.Type {
	case "log_p", "bce":
		if last.Type != "logistic" {
			return s.errf(0, "objective.type", "%q needs a logistic last layer, the last layer is %s", s.Objective.Type, last.Type)
		}
		if s.Objective.Label != 0 && s.Objective.Label != 1 {
			return s.errf(0, "objective.label", "want 0 or 1, got %d", s.Objective.Label)
		}
	case "sse", "half_sse", "mse":
		if last.Type == "logistic" {
			return s.errf(0, "objective.type", "%s compares the output with a target; a logistic output is a probability, use log_p or bce", s.Objective.Type)
		}
	case "cross_entropy":
	default:
		return s.errf(0, "objective.type", "want one of %s; got %q", strings.Join(ObjectiveTypes, ", "), s.Objective.Type)
	}
	return nil
}

// ObjectiveTypes are the objectives a spec may ask for.
var ObjectiveTypes = []string{"log_p", "bce", "sse", "half_sse", "mse", "cross_entropy"}

// input returns the input named n.
func (s *Spec) input(n string) (Input, bool) {
	for _, in := range s.Inputs {
		if in.Name == n {
			return in, true
		}
	}
	return Input{}, false
}

// Batched reports whether an input holds a batch of samples (one row per
// sample), so that layers work row by row.
func (s *Spec) Batched() bool {
	for _, in := range s.Inputs {
		if in.Batch {
			return true
		}
	}
	return s.Input.Batch
}

// checkInputs reads the input values, folding input into inputs.
func (s *Spec) checkInputs() error {
	if len(s.Inputs) > 0 && (s.Input.Name != "" || s.Input.Value.Kind != 0) {
		return s.errf(0, "input", "give input (one) or inputs (several), not both")
	}
	if len(s.Inputs) == 0 {
		if s.Input.Name == "" {
			s.Input.Name = "x"
		}
		s.Inputs = []Input{s.Input}
	}
	seen := map[string]bool{}
	data := -1
	for i := range s.Inputs {
		in := &s.Inputs[i]
		field := fmt.Sprintf("inputs[%d]", i)
		if len(s.Inputs) == 1 && i == 0 {
			field = "input"
		}
		if in.Name == "" {
			if len(s.Inputs) > 1 {
				return s.errf(in.line, field+".name", "missing: every input of several is named")
			}
			in.Name = "x"
		}
		if seen[in.Name] {
			return s.errf(in.line, field+".name", "%q is given twice", in.Name)
		}
		seen[in.Name] = true
		if in.Kind == "" {
			in.Kind = "data"
		}
		if !oneOf(in.Kind, "data", "labels", "target", "mask") {
			return s.errf(in.line, field+".kind", "want data, labels, target or mask; got %q", in.Kind)
		}
		t, err := s.tensorOf(&in.Value, field+".value")
		if err != nil {
			return err
		}
		if in.Kind == "labels" {
			for k, v := range t.Data() {
				if v != math.Trunc(v) || v < 0 {
					return s.errf(in.Value.Line, field+".value", "class labels are whole numbers from 0 (as PyTorch), got %v at position %d", v, k+1)
				}
			}
		}
		if in.Kind == "mask" {
			for k, v := range t.Data() {
				if v != 0 && v != 1 {
					return s.errf(in.Value.Line, field+".value", "a dropout mask holds 0 (dropped) or 1 (kept), got %v at position %d", v, k+1)
				}
			}
		}
		if in.Batch && t.Rank() < 2 {
			return s.errf(in.line, field+".batch", "a batch has one row per sample: want at least 2 axes, got shape %s", tensor.FormatShape(t.Shape()))
		}
		in.tensor = t
		if in.Kind == "data" && data < 0 {
			data = i
		}
	}
	if data < 0 {
		tokens := false
		for _, l := range s.Layers {
			tokens = tokens || l.Type == "embedding"
		}
		if !tokens {
			return s.errf(0, "inputs", "no data input: one input must be of kind data (or of token ids read by an embedding layer)")
		}
		data = 0 // a token model: its ids are the input
	}
	s.Input = s.Inputs[data]
	return nil
}

// checkLayerInputs checks that a layer's inputs name values computed
// before it, in the number its type takes.
func (s *Spec) checkLayerInputs(i int, l *Layer, avail map[string]bool) error {
	field := fmt.Sprintf("layers[%d].inputs", i)
	want := 1
	if oneOf(l.Type, "add", "mul", "matmul") {
		want = 2
	}
	if l.Type == "concat" {
		want = -2 // two or more
	}
	if len(l.Inputs) == 0 {
		if want != 1 {
			return s.errf(l.line, field, "missing: a %s layer names its operands, e.g. inputs: [h1, x]", l.Type)
		}
		return nil
	}
	switch {
	case want > 0 && len(l.Inputs) != want:
		return s.errf(l.line, field, "a %s layer takes %d input(s), got %d (%s)", l.Type, want, len(l.Inputs), strings.Join(l.Inputs, ", "))
	case want < 0 && len(l.Inputs) < -want:
		return s.errf(l.line, field, "a %s layer takes two or more inputs, got %d", l.Type, len(l.Inputs))
	}
	for k, n := range l.Inputs {
		ok, known := avail[n]
		if known && ok {
			continue
		}
		if in, isInput := s.input(n); known && isInput && in.Kind == "labels" && l.Type == "embedding" {
			continue // token ids
		}
		if known { // an input that is not data
			return s.errf(l.line, fmt.Sprintf("%s[%d]", field, k), "%q is not a data input (labels, targets and masks are named by the objective or a dropout layer's mask)", n)
		}
		for j := i; j < len(s.Layers); j++ {
			if s.Layers[j].Name == n {
				return s.errf(l.line, fmt.Sprintf("%s[%d]", field, k), "%q is computed by layers[%d], which comes later: a layer can only use values computed before it (no cycles)", n, j)
			}
		}
		var have []string
		for a, ok := range avail {
			if ok {
				have = append(have, a)
			}
		}
		sort.Strings(have)
		return s.errf(l.line, fmt.Sprintf("%s[%d]", field, k), "unknown name %q (have %s)", n, strings.Join(have, ", "))
	}
	return nil
}

// checkObjective checks the objective's references and fills defaults.
func (s *Spec) checkObjective(avail map[string]bool) error {
	o := &s.Objective
	if o.Of != "" && !avail[o.Of] {
		return s.errf(0, "objective.of", "unknown value %q", o.Of)
	}
	switch o.Type {
	case "cross_entropy":
		in, ok := s.input(o.Labels)
		if !ok || in.Kind != "labels" {
			return s.errf(0, "objective.labels", "want the name of an input of kind labels, got %q", o.Labels)
		}
	case "sse", "half_sse", "mse":
		if o.Target != "" {
			in, ok := s.input(o.Target)
			if !ok || (in.Kind != "target" && in.Kind != "data") {
				return s.errf(0, "objective.target", "want the name of an input of kind target (or data), got %q", o.Target)
			}
		}
	}
	if o.Reduction == "" {
		o.Reduction = "sum"
		if oneOf(o.Type, "cross_entropy", "mse") {
			o.Reduction = "mean"
		}
	}
	if !oneOf(o.Reduction, "mean", "sum") {
		return s.errf(0, "objective.reduction", "want mean or sum, got %q", o.Reduction)
	}
	if wd := o.WeightDecay; wd != nil {
		if wd.Lambda < 0 || math.IsNaN(wd.Lambda) || math.IsInf(wd.Lambda, 0) {
			return s.errf(0, "objective.weight_decay.lambda", "want a finite λ ≥ 0, got %v", wd.Lambda)
		}
		if len(wd.Params) == 0 {
			for _, l := range s.Layers {
				if l.Weight != "" && !slices.Contains(wd.Params, l.Weight) {
					wd.Params = append(wd.Params, l.Weight)
				}
			}
		}
		for k, p := range wd.Params {
			if s.Params[p] == nil {
				return s.errf(0, fmt.Sprintf("objective.weight_decay.params[%d]", k), "%q is not in params", p)
			}
		}
	}
	return nil
}

// checkTrain fills the optimizer's defaults and checks its settings.
func (s *Spec) checkTrain() error {
	t := s.Train
	if t == nil {
		return nil
	}
	if !oneOf(t.Optimizer, "sgd", "momentum", "adam") {
		return s.errf(t.line, "train.optimizer", "want sgd, momentum or adam, got %q", t.Optimizer)
	}
	if !(t.LR > 0) || math.IsInf(t.LR, 0) {
		return s.errf(t.line, "train.lr", "want a learning rate > 0, got %v", t.LR)
	}
	if t.Steps == 0 {
		t.Steps = 1
	}
	if t.Steps < 1 || t.Steps > 100 {
		return s.errf(t.line, "train.steps", "want 1 to 100 steps, got %d", t.Steps)
	}
	if t.Optimizer == "momentum" && (t.Momentum <= 0 || t.Momentum >= 1) {
		if t.Momentum == 0 {
			t.Momentum = 0.9
		} else {
			return s.errf(t.line, "train.momentum", "want a momentum in (0, 1), got %v", t.Momentum)
		}
	}
	if t.Optimizer == "adam" {
		if t.Betas == nil {
			t.Betas = []float64{0.9, 0.999}
		}
		if len(t.Betas) != 2 || t.Betas[0] < 0 || t.Betas[0] >= 1 || t.Betas[1] < 0 || t.Betas[1] >= 1 {
			return s.errf(t.line, "train.betas", "want [β1, β2] in [0, 1), got %v", t.Betas)
		}
		if t.Eps == 0 {
			t.Eps = 1e-8
		}
	}
	return nil
}

// File is the path the spec was read from.
func (s *Spec) File() string { return s.file }

// InputValue is the value of the input named name (labels as whole
// numbers), and whether there is one.
func (s *Spec) InputValue(name string) (*tensor.Tensor[float64], bool) {
	in, ok := s.input(name)
	return in.tensor, ok
}

// InputTensor is the input's value.
func (s *Spec) InputTensor() *tensor.Tensor[float64] { return s.Input.tensor }

// WithValues returns a copy of s whose data inputs, targets and parameter
// values are replaced by f(name, old) (same shapes expected), for checks on
// random values and for optimizer steps. Class labels and dropout masks
// keep their values. The layers, conventions and objective are shared.
func (s *Spec) WithValues(f func(name string, old *tensor.Tensor[float64]) *tensor.Tensor[float64]) *Spec {
	c := *s
	c.Params = map[string]*Param{}
	for _, name := range s.ParamOrder {
		p := *s.Params[name]
		p.Tensor = f(name, p.Tensor)
		c.Params[name] = &p
	}
	c.Inputs = append([]Input(nil), s.Inputs...)
	for i := range c.Inputs {
		in := &c.Inputs[i]
		if in.Kind == "data" || in.Kind == "target" || in.Kind == "" {
			in.tensor = f(in.Name, in.tensor)
		}
		if in.Name == s.Input.Name {
			c.Input = *in
		}
	}
	if len(c.Inputs) == 0 {
		c.Input.tensor = f(s.Input.Name, s.Input.tensor)
	}
	return &c
}
