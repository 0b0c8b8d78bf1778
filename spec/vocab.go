package spec

import (
	"fmt"
	"strings"

	"github.com/backprop-dev/backprop/ops"
)

// The typed values of a spec's enumerated fields and the one place that
// validates them: the conventions, the layer types and the activations.
// Every reader of a spec (solve's flags, the classroom's and the grader's
// requests) checks a value with ParseConvention, ParseLayerType or
// ParseActivation instead of spelling out the allowed set again.

// ConventionField names one of the conventions a spec may set.
type ConventionField string

// The conventions of a spec.
const (
	ReshapeField ConventionField = "reshape"
	KernelField  ConventionField = "kernel"
	LabelField   ConventionField = "label"
)

// ConventionFields are the conventions in the order they are listed.
var ConventionFields = []ConventionField{ReshapeField, KernelField, LabelField}

// ReshapeOrder is the reading order of reshape and flatten.
type ReshapeOrder string

// The reshape orders.
const (
	RowMajor    ReshapeOrder = "row-major"    // NumPy, PyTorch; the default
	ColumnMajor ReshapeOrder = "column-major" // MATLAB
)

// KernelReading is the transposed convolution's kernel orientation.
type KernelReading string

// The kernel readings.
const (
	KernelPyTorch KernelReading = "pytorch" // ConvTranspose2d; the default
	KernelFlipped KernelReading = "flipped" // the kernel slides unrotated
)

// LabelReading is which class the logistic unit's σ(a) is.
type LabelReading string

// The label readings.
const (
	LabelY0 LabelReading = "y0" // σ(a) is p(y=0); the default
	LabelY1 LabelReading = "y1" // σ(a) is p(y=1)
)

// convention is one convention's allowed values, the default first, and
// how a message explains each (empty: the value says it).
type convention struct {
	values  []string
	explain map[string]string
}

var conventions = map[ConventionField]convention{
	ReshapeField: {values: []string{string(RowMajor), string(ColumnMajor)}},
	KernelField:  {values: []string{string(KernelPyTorch), string(KernelFlipped)}},
	LabelField: {values: []string{string(LabelY0), string(LabelY1)},
		explain: map[string]string{string(LabelY0): "σ(a) is p(y=0)", string(LabelY1): "σ(a) is p(y=1)"}},
}

// ConventionChoices are the values convention f allows, its default first
// (nil for an unknown convention).
func ConventionChoices(f ConventionField) []string {
	return append([]string(nil), conventions[f].values...)
}

// ConventionError is a value a convention does not allow.
type ConventionError struct {
	Field ConventionField
	Value string
	// Explained writes each allowed value with its meaning, as a spec's
	// own error does: y0 (σ(a) is p(y=0)).
	Explained bool
}

// Error implements error: want row-major or column-major, got "diag".
func (e *ConventionError) Error() string {
	c := conventions[e.Field]
	if c.values == nil {
		return fmt.Sprintf("unknown convention %q (want %s)", string(e.Field), joinOr(fieldNames()))
	}
	vs := make([]string, len(c.values))
	for i, v := range c.values {
		vs[i] = v
		if x := c.explain[v]; x != "" && e.Explained {
			vs[i] += " (" + x + ")"
		}
	}
	return fmt.Sprintf("want %s, got %q", joinOr(vs), e.Value)
}

func fieldNames() []string {
	out := make([]string, len(ConventionFields))
	for i, f := range ConventionFields {
		out[i] = string(f)
	}
	return out
}

// ParseConvention checks value v of convention f; the error is a
// *ConventionError.
func ParseConvention(f ConventionField, v string) error {
	for _, a := range conventions[f].values {
		if v == a {
			return nil
		}
	}
	return &ConventionError{Field: f, Value: v}
}

// Field is the value of convention f.
func (c *Conventions) Field(f ConventionField) *string {
	switch f {
	case ReshapeField:
		return &c.Reshape
	case KernelField:
		return &c.Kernel
	case LabelField:
		return &c.Label
	}
	return nil
}

// Set sets convention f to v after checking it; an empty v keeps the
// current value. It is how a flag or a request overrides a spec's
// convention.
func (c *Conventions) Set(f ConventionField, v string) error {
	if v == "" {
		return nil
	}
	if err := ParseConvention(f, v); err != nil {
		return err
	}
	*c.Field(f) = v
	return nil
}

// Validate fills the defaults of unset conventions and checks the others;
// the error is the first *ConventionError.
func (c *Conventions) Validate() error {
	for _, f := range ConventionFields {
		p := c.Field(f)
		if *p == "" {
			*p = conventions[f].values[0]
		}
		if err := ParseConvention(f, *p); err != nil {
			return err
		}
	}
	return nil
}

// ColumnMajor reports whether reshape and flatten read column by column.
func (c Conventions) ColumnMajor() bool { return ReshapeOrder(c.Reshape) == ColumnMajor }

// Flipped reports whether the transposed convolution's kernel slides
// unrotated.
func (c Conventions) Flipped() bool { return KernelReading(c.Kernel) == KernelFlipped }

// LabelY1 reports whether the logistic unit's σ(a) is p(y=1).
func (c Conventions) LabelY1() bool { return LabelReading(c.Label) == LabelY1 }

// LayerType is a kind of layer a spec may use.
type LayerType string

// The layer types.
const (
	LayerLinear     LayerType = "linear"
	LayerReshape    LayerType = "reshape"
	LayerFlatten    LayerType = "flatten"
	LayerDeconv     LayerType = "deconv"
	LayerConv       LayerType = "conv"
	LayerActivation LayerType = "activation"
	LayerLogistic   LayerType = "logistic"
	LayerSoftmax    LayerType = "softmax"
	LayerLogSoftmax LayerType = "log_softmax"
	LayerMaxPool    LayerType = "maxpool"
	LayerAvgPool    LayerType = "avgpool"
	LayerBatchNorm  LayerType = "batchnorm"
	LayerLayerNorm  LayerType = "layernorm"
	LayerDropout    LayerType = "dropout"
	LayerAdd        LayerType = "add"
	LayerMul        LayerType = "mul"
	LayerConcat     LayerType = "concat"
	LayerMatMul     LayerType = "matmul"
	LayerSlice      LayerType = "slice"
	LayerEmbedding  LayerType = "embedding"
	LayerRNN        LayerType = "rnn"
	LayerLSTM       LayerType = "lstm"
	LayerGRU        LayerType = "gru"
	LayerAttention  LayerType = "attention"
)

var layerTypes = []LayerType{LayerLinear, LayerReshape, LayerFlatten, LayerDeconv, LayerConv, LayerActivation, LayerLogistic, LayerSoftmax, LayerLogSoftmax, LayerMaxPool, LayerAvgPool, LayerBatchNorm, LayerLayerNorm, LayerDropout, LayerAdd, LayerMul, LayerConcat, LayerMatMul, LayerSlice, LayerEmbedding, LayerRNN, LayerLSTM, LayerGRU, LayerAttention}

// LayerTypes are the layer types a spec may use, as strings for messages
// and completions.
var LayerTypes = func() []string {
	out := make([]string, len(layerTypes))
	for i, t := range layerTypes {
		out[i] = string(t)
	}
	return out
}()

// ParseLayerType checks a layer's type.
func ParseLayerType(v string) (LayerType, error) {
	for _, t := range layerTypes {
		if v == string(t) {
			return t, nil
		}
	}
	return "", fmt.Errorf("want one of %s; got %q", strings.Join(LayerTypes, ", "), v)
}

// ParseActivation checks a layer's activation against the engine's table
// (ops.Activations): a function a layer may name.
func ParseActivation(v string) (ops.Activation, error) {
	if info, ok := ops.Activations[ops.Activation(v)]; ok && info.Layer {
		return ops.Activation(v), nil
	}
	as := ops.LayerActivations()
	names := make([]string, 0, len(as))
	for _, a := range as {
		if a != ops.ActIdentity {
			names = append(names, string(a))
		}
	}
	return "", fmt.Errorf("want %s or identity; got %q", strings.Join(names, ", "), v)
}

// joinOr writes a, b or c.
func joinOr(vs []string) string {
	if len(vs) < 2 {
		return strings.Join(vs, "")
	}
	return strings.Join(vs[:len(vs)-1], ", ") + " or " + vs[len(vs)-1]
}
