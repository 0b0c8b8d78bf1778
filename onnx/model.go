// Package onnx reads and writes ONNX models for the engine. Import builds
// an ONNX graph out of the engine's ops (package ops), so a model exported
// by PyTorch or Keras runs forward and backward here with the same
// autograd as backprop's own networks; an operator or attribute the engine
// does not implement is an *UnsupportedError naming the node, the operator
// and the attribute, never a silently different answer. Export writes
// graphs built from the engine's layers back out, so that ONNX Runtime or
// any other runtime can serve a model trained here.
//
// .onnx files are read and written through google.golang.org/protobuf
// with the code generated from ONNX's own onnx.proto (package
// onnx/internal/onnxpb).
package onnx

import (
	"fmt"
	"os"

	"google.golang.org/protobuf/proto"

	"github.com/backprop-dev/backprop/onnx/internal/onnxpb"
)

// MaxOpset is the newest version of the default ("ai.onnx") operator set
// a model may import: up to 22 every change to the supported operators is
// either handled by the importer (Softmax's axis in 13, Reshape's
// allowzero in 14, Dropout's ratio input in 12, BatchNormalization's
// training_mode in 14) or a change of element types only, and an
// attribute added later is refused by name. A newer opset may change an
// operator's meaning, so it is refused. The oldest version accepted is per
// operator (Operators).
const MaxOpset = 22

// Model is a parsed ONNX model.
type Model struct {
	pb *onnxpb.ModelProto
	// Opset is the version of the default operator set the model imports.
	Opset int64
}

// ValueInfo describes a graph input or output: its name, element type and
// shape (-1 for a dimension the file leaves symbolic or unknown).
type ValueInfo struct {
	Name  string
	Type  DataType
	Shape []int
}

// Load reads and parses an .onnx file.
func Load(path string) (*Model, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	m, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return m, nil
}

// Parse decodes a serialized ModelProto and checks its operator set
// version.
func Parse(b []byte) (*Model, error) {
	var p onnxpb.ModelProto
	if err := proto.Unmarshal(b, &p); err != nil {
		return nil, fmt.Errorf("not an ONNX model: %w", err)
	}
	if p.GetGraph() == nil {
		return nil, fmt.Errorf("not an ONNX model: no graph")
	}
	m := &Model{pb: &p, Opset: -1}
	for _, o := range p.GetOpsetImport() {
		if d := o.GetDomain(); d == "" || d == "ai.onnx" {
			m.Opset = o.GetVersion()
		}
	}
	return m, nil
}

// Supported checks what Import needs of the model as a whole: a version of
// the default operator set it knows, and graph inputs and outputs that are
// tensors of element types it reads. The error is an *UnsupportedError.
func (m *Model) Supported() error {
	g := m.pb.GetGraph()
	switch {
	case m.Opset < 0 && len(g.GetNode()) > 0:
		var domains []string
		for _, o := range m.pb.GetOpsetImport() {
			domains = append(domains, fmt.Sprintf("%q", o.GetDomain()))
		}
		return &UnsupportedError{Op: "model", Attribute: "opset_import", Detail: fmt.Sprintf("the model imports operator sets %v, not the default domain's", domains)}
	case m.Opset > MaxOpset:
		return &UnsupportedError{Op: "model", Attribute: "opset_import", Detail: fmt.Sprintf("operator set %d; backprop knows the operators' meaning up to opset %d", m.Opset, MaxOpset)}
	}
	check := func(what string, vs []*onnxpb.ValueInfoProto) error {
		for _, v := range vs {
			tp := v.GetType()
			tt := tp.GetTensorType()
			if tt == nil {
				kind := "a value that is not a tensor"
				switch {
				case tp.GetSequenceType() != nil:
					kind = "a sequence"
				case tp.GetOptionalType() != nil:
					kind = "an optional value"
				case tp.GetMapType() != nil:
					kind = "a map"
				case tp.GetSparseTensorType() != nil:
					kind = "a sparse tensor"
				}
				return &UnsupportedError{Op: "model", Attribute: fmt.Sprintf("%s %q", what, v.GetName()), Detail: kind + "; backprop imports tensors"}
			}
			if dt := DataType(tt.GetElemType()); !dt.IsFloat() && !dt.isInteger() {
				return &UnsupportedError{Op: "model", Attribute: fmt.Sprintf("%s %q", what, v.GetName()), Detail: fmt.Sprintf("element type %s; backprop reads FLOAT, DOUBLE, integers and booleans", dt)}
			}
		}
		return nil
	}
	init := m.initializerNames()
	var ins []*onnxpb.ValueInfoProto
	for _, v := range g.GetInput() {
		if !init[v.GetName()] {
			ins = append(ins, v)
		}
	}
	if err := check("input", ins); err != nil {
		return err
	}
	return check("output", g.GetOutput())
}

// Name is the graph's name.
func (m *Model) Name() string { return m.pb.GetGraph().GetName() }

// Producer names the tool that wrote the model and its version.
func (m *Model) Producer() string {
	return m.pb.GetProducerName() + " " + m.pb.GetProducerVersion()
}

// initializerNames is the set of names given values by initializers.
func (m *Model) initializerNames() map[string]bool {
	s := map[string]bool{}
	for _, t := range m.pb.GetGraph().GetInitializer() {
		s[t.GetName()] = true
	}
	return s
}

// Inputs lists the graph inputs the caller supplies: graph inputs that
// are not initializers (older IR versions list initializers as inputs too).
func (m *Model) Inputs() []ValueInfo {
	init := m.initializerNames()
	var out []ValueInfo
	for _, v := range m.pb.GetGraph().GetInput() {
		if !init[v.GetName()] {
			out = append(out, valueInfo(v))
		}
	}
	return out
}

// Outputs lists the graph outputs.
func (m *Model) Outputs() []ValueInfo {
	var out []ValueInfo
	for _, v := range m.pb.GetGraph().GetOutput() {
		out = append(out, valueInfo(v))
	}
	return out
}

// Initializers decodes the graph's initializers: the model's parameters
// and constants, in file order.
func (m *Model) Initializers() ([]*Tensor, error) {
	var out []*Tensor
	for _, p := range m.pb.GetGraph().GetInitializer() {
		t, err := decodeTensor(p)
		if err != nil {
			return nil, fmt.Errorf("initializer: %w", err)
		}
		out = append(out, t)
	}
	return out, nil
}

// Operators lists the operator types the graph's nodes use, each once, in
// order of first use.
func (m *Model) Operators() []string {
	var out []string
	seen := map[string]bool{}
	for _, n := range m.pb.GetGraph().GetNode() {
		if op := n.GetOpType(); !seen[op] {
			seen[op] = true
			out = append(out, op)
		}
	}
	return out
}

func valueInfo(v *onnxpb.ValueInfoProto) ValueInfo {
	vi := ValueInfo{Name: v.GetName()}
	if tt := v.GetType().GetTensorType(); tt != nil {
		vi.Type = DataType(tt.GetElemType())
		for _, d := range tt.GetShape().GetDim() {
			if _, ok := d.GetValue().(*onnxpb.TensorShapeProto_Dimension_DimValue); ok {
				vi.Shape = append(vi.Shape, int(d.GetDimValue()))
			} else {
				vi.Shape = append(vi.Shape, -1)
			}
		}
	}
	return vi
}
