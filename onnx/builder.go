package onnx

import (
	"fmt"
	"os"

	"google.golang.org/protobuf/proto"

	"github.com/backprop-dev/backprop/onnx/internal/onnxpb"
)

// ExportOpset is the operator set version exported models import: 13,
// the first with Softmax over one axis and the version ONNX Runtime and
// PyTorch's exporter both support fully.
const ExportOpset = 13

// ExportIRVersion is the IR version exported models declare (7 goes with
// opset 13 and is read by every ONNX Runtime since 1.6).
const ExportIRVersion = 7

// Attr is a node attribute for Builder.Node: Value is an int, int64,
// float64, string, []int, []int64 or *Tensor.
type Attr struct {
	Name  string
	Value any
}

// Builder assembles an ONNX model graph: inputs, initializers, nodes and
// outputs, in the order they are added (nodes must come after what they
// read, as ONNX requires).
type Builder struct {
	g     *onnxpb.GraphProto
	opset int64
	err   error
}

// NewBuilder starts a graph named name importing the default operator set
// at ExportOpset.
func NewBuilder(name string) *Builder {
	return &Builder{g: &onnxpb.GraphProto{Name: proto.String(name)}, opset: ExportOpset}
}

// SetOpset changes the operator set version the model imports.
func (b *Builder) SetOpset(v int64) { b.opset = v }

func valueInfoProto(name string, typ DataType, shape []int) *onnxpb.ValueInfoProto {
	dims := make([]*onnxpb.TensorShapeProto_Dimension, len(shape))
	for i, d := range shape {
		if d < 0 {
			dims[i] = &onnxpb.TensorShapeProto_Dimension{Value: &onnxpb.TensorShapeProto_Dimension_DimParam{DimParam: fmt.Sprintf("d%d", i)}}
		} else {
			dims[i] = &onnxpb.TensorShapeProto_Dimension{Value: &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: int64(d)}}
		}
	}
	return &onnxpb.ValueInfoProto{
		Name: proto.String(name),
		Type: &onnxpb.TypeProto{Value: &onnxpb.TypeProto_TensorType{TensorType: &onnxpb.TypeProto_Tensor{
			ElemType: proto.Int32(int32(typ)),
			Shape:    &onnxpb.TensorShapeProto{Dim: dims},
		}}},
	}
}

// Input declares a graph input; a negative dimension is symbolic (a batch
// size left open, named N for the first axis).
func (b *Builder) Input(name string, typ DataType, shape []int) {
	vi := valueInfoProto(name, typ, shape)
	for _, d := range vi.GetType().GetTensorType().GetShape().GetDim() {
		if p, ok := d.GetValue().(*onnxpb.TensorShapeProto_Dimension_DimParam); ok && p.DimParam == "d0" {
			p.DimParam = "N"
		}
	}
	b.g.Input = append(b.g.Input, vi)
}

// Output declares a graph output.
func (b *Builder) Output(name string, typ DataType, shape []int) {
	vi := valueInfoProto(name, typ, shape)
	for _, d := range vi.GetType().GetTensorType().GetShape().GetDim() {
		if p, ok := d.GetValue().(*onnxpb.TensorShapeProto_Dimension_DimParam); ok && p.DimParam == "d0" {
			p.DimParam = "N"
		}
	}
	b.g.Output = append(b.g.Output, vi)
}

// Initializer adds a constant tensor (a parameter) named t.Name.
func (b *Builder) Initializer(t *Tensor) {
	p, err := encodeTensor(t)
	if err != nil && b.err == nil {
		b.err = err
	}
	b.g.Initializer = append(b.g.Initializer, p)
}

// Node adds a node of operator op reading inputs and writing outputs; its
// name is its first output's.
func (b *Builder) Node(op string, inputs, outputs []string, attrs ...Attr) {
	n := &onnxpb.NodeProto{OpType: proto.String(op), Input: inputs, Output: outputs}
	if len(outputs) > 0 {
		n.Name = proto.String(outputs[0])
	}
	for _, a := range attrs {
		p := &onnxpb.AttributeProto{Name: proto.String(a.Name)}
		switch v := a.Value.(type) {
		case int:
			p.Type, p.I = onnxpb.AttributeProto_INT.Enum(), proto.Int64(int64(v))
		case int64:
			p.Type, p.I = onnxpb.AttributeProto_INT.Enum(), proto.Int64(v)
		case float64:
			p.Type, p.F = onnxpb.AttributeProto_FLOAT.Enum(), proto.Float32(float32(v))
		case string:
			p.Type, p.S = onnxpb.AttributeProto_STRING.Enum(), []byte(v)
		case []int:
			p.Type = onnxpb.AttributeProto_INTS.Enum()
			for _, x := range v {
				p.Ints = append(p.Ints, int64(x))
			}
		case []int64:
			p.Type, p.Ints = onnxpb.AttributeProto_INTS.Enum(), v
		case *Tensor:
			t, err := encodeTensor(v)
			if err != nil && b.err == nil {
				b.err = err
			}
			p.Type, p.T = onnxpb.AttributeProto_TENSOR.Enum(), t
		default:
			if b.err == nil {
				b.err = fmt.Errorf("node %q: attribute %s: unsupported value type %T", n.GetName(), a.Name, a.Value)
			}
			continue
		}
		n.Attribute = append(n.Attribute, p)
	}
	b.g.Node = append(b.g.Node, n)
}

// Model returns the assembled model.
func (b *Builder) Model() (*Model, error) {
	if b.err != nil {
		return nil, b.err
	}
	p := &onnxpb.ModelProto{
		IrVersion:       proto.Int64(ExportIRVersion),
		ProducerName:    proto.String("backprop"),
		ProducerVersion: proto.String("1"),
		OpsetImport:     []*onnxpb.OperatorSetIdProto{{Domain: proto.String(""), Version: proto.Int64(b.opset)}},
		Graph:           b.g,
	}
	return &Model{pb: p, Opset: b.opset}, nil
}

// Marshal serializes a model as an .onnx file's bytes.
func (m *Model) Marshal() ([]byte, error) {
	return proto.Marshal(m.pb)
}

// Save writes the model to path.
func (m *Model) Save(path string) error {
	b, err := m.Marshal()
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}
