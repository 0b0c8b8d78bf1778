package onnx

import (
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"slices"

	"google.golang.org/protobuf/proto"

	"github.com/backprop-dev/backprop/onnx/internal/onnxpb"
	"github.com/backprop-dev/backprop/tensor"
)

// DataType is the element type of an ONNX tensor, numbered as in
// onnx.proto's TensorProto.DataType.
type DataType int32

// The element types of ONNX. backprop computes in Float and Double; the
// integer and boolean types carry shapes, axes and masks.
const (
	Undefined  DataType = 0
	Float      DataType = 1
	Uint8      DataType = 2
	Int8       DataType = 3
	Uint16     DataType = 4
	Int16      DataType = 5
	Int32      DataType = 6
	Int64      DataType = 7
	String     DataType = 8
	Bool       DataType = 9
	Float16    DataType = 10
	Double     DataType = 11
	Uint32     DataType = 12
	Uint64     DataType = 13
	Complex64  DataType = 14
	Complex128 DataType = 15
	BFloat16   DataType = 16
)

// String is the type's name in onnx.proto (FLOAT, INT64, …).
func (d DataType) String() string {
	if n, ok := onnxpb.TensorProto_DataType_name[int32(d)]; ok {
		return n
	}
	return fmt.Sprintf("DataType(%d)", int32(d))
}

// IsFloat reports whether backprop computes with elements of type d:
// FLOAT or DOUBLE.
func (d DataType) IsFloat() bool { return d == Float || d == Double }

// isInteger reports the integer and boolean types, which the importer
// holds as int64 values.
func (d DataType) isInteger() bool {
	switch d {
	case Uint8, Int8, Uint16, Int16, Int32, Int64, Bool, Uint32, Uint64:
		return true
	}
	return false
}

// Tensor is a tensor as ONNX stores it: a name, an element type, a shape
// and the values, in row-major order. Floating-point values are held in
// Floats (float64, exact for FLOAT and DOUBLE), integer and boolean values
// in Ints. It is what a .pb file of a backend test holds and what an
// initializer or a Constant holds.
type Tensor struct {
	Name   string
	Type   DataType
	Shape  []int
	Floats []float64 // when Type.IsFloat()
	Ints   []int64   // for integer and boolean types
}

// Len is the number of elements the shape holds.
func (t *Tensor) Len() int { return tensor.NumElements(t.Shape) }

// FromTensor makes a FLOAT (float32) or DOUBLE (float64) Tensor holding a
// copy of x, named name.
func FromTensor[T tensor.Float](name string, x *tensor.Tensor[T]) *Tensor {
	t := &Tensor{Name: name, Type: Double, Shape: slices.Clone(x.Shape()), Floats: make([]float64, x.Len())}
	var z T
	if _, ok := any(z).(float32); ok {
		t.Type = Float
	}
	for i, v := range x.Data() {
		t.Floats[i] = float64(v)
	}
	return t
}

// ToTensor converts a floating-point Tensor to the engine's element type T.
func ToTensor[T tensor.Float](t *Tensor) (*tensor.Tensor[T], error) {
	if !t.Type.IsFloat() {
		return nil, fmt.Errorf("tensor %q has element type %s; backprop computes in FLOAT or DOUBLE", t.Name, t.Type)
	}
	d := make([]T, len(t.Floats))
	for i, v := range t.Floats {
		d[i] = T(v)
	}
	return tensor.FromSlice(d, t.Shape...)
}

// decodeTensor reads a TensorProto, whether its values sit in raw_data
// (little-endian, as ONNX writes them) or in the typed repeated fields.
// External data and segments are refused with the tensor's name.
func decodeTensor(p *onnxpb.TensorProto) (*Tensor, error) {
	t := &Tensor{Name: p.GetName(), Type: DataType(p.GetDataType())}
	for _, d := range p.GetDims() {
		if d < 0 {
			return nil, fmt.Errorf("tensor %q: dimension %d is negative", t.Name, d)
		}
		t.Shape = append(t.Shape, int(d))
	}
	if p.GetDataLocation() == onnxpb.TensorProto_EXTERNAL || len(p.GetExternalData()) > 0 {
		return nil, fmt.Errorf("tensor %q: data stored outside the model file (external data) is not supported", t.Name)
	}
	if p.GetSegment() != nil {
		return nil, fmt.Errorf("tensor %q: segmented tensors are not supported", t.Name)
	}
	n := t.Len()
	raw := p.GetRawData()
	size := map[DataType]int{Float: 4, Double: 8, Uint8: 1, Int8: 1, Uint16: 2, Int16: 2, Int32: 4, Int64: 8, Bool: 1, Uint32: 4, Uint64: 8}[t.Type]
	switch {
	case t.Type == Float16 || t.Type == BFloat16 || t.Type == String || t.Type == Complex64 || t.Type == Complex128 || size == 0:
		return nil, &UnsupportedError{Op: "tensor", Attribute: fmt.Sprintf("%q", t.Name), Detail: fmt.Sprintf("element type %s; backprop reads FLOAT, DOUBLE and the integer and boolean types", t.Type)}
	case raw != nil || p.RawData != nil:
		if len(raw) != n*size {
			return nil, fmt.Errorf("tensor %q: raw_data holds %d bytes, want %d (%d elements of %s, shape %s)", t.Name, len(raw), n*size, n, t.Type, tensor.FormatShape(t.Shape))
		}
		if t.Type.IsFloat() {
			t.Floats = make([]float64, n)
		} else {
			t.Ints = make([]int64, n)
		}
		for i := range n {
			b := raw[i*size:]
			switch t.Type {
			case Float:
				t.Floats[i] = float64(math.Float32frombits(binary.LittleEndian.Uint32(b)))
			case Double:
				t.Floats[i] = math.Float64frombits(binary.LittleEndian.Uint64(b))
			case Uint8, Bool:
				t.Ints[i] = int64(b[0])
			case Int8:
				t.Ints[i] = int64(int8(b[0]))
			case Uint16:
				t.Ints[i] = int64(binary.LittleEndian.Uint16(b))
			case Int16:
				t.Ints[i] = int64(int16(binary.LittleEndian.Uint16(b)))
			case Int32:
				t.Ints[i] = int64(int32(binary.LittleEndian.Uint32(b)))
			case Uint32:
				t.Ints[i] = int64(binary.LittleEndian.Uint32(b))
			case Int64:
				t.Ints[i] = int64(binary.LittleEndian.Uint64(b))
			case Uint64:
				t.Ints[i] = int64(binary.LittleEndian.Uint64(b))
			}
		}
	default:
		var got int
		switch t.Type {
		case Float:
			for _, v := range p.GetFloatData() {
				t.Floats = append(t.Floats, float64(v))
			}
			got = len(t.Floats)
		case Double:
			t.Floats = slices.Clone(p.GetDoubleData())
			got = len(t.Floats)
		case Int64:
			t.Ints = slices.Clone(p.GetInt64Data())
			got = len(t.Ints)
		case Uint32, Uint64:
			for _, v := range p.GetUint64Data() {
				t.Ints = append(t.Ints, int64(v))
			}
			got = len(t.Ints)
		default: // the narrower integer types and bool live in int32_data
			for _, v := range p.GetInt32Data() {
				t.Ints = append(t.Ints, int64(v))
			}
			got = len(t.Ints)
		}
		if got != n {
			return nil, fmt.Errorf("tensor %q: holds %d values, want %d for shape %s", t.Name, got, n, tensor.FormatShape(t.Shape))
		}
	}
	if t.Type.IsFloat() && t.Floats == nil {
		t.Floats = []float64{}
	}
	if t.Type.isInteger() && t.Ints == nil {
		t.Ints = []int64{}
	}
	return t, nil
}

// encodeTensor writes t as a TensorProto with its values in raw_data, the
// form ONNX's own tools write.
func encodeTensor(t *Tensor) (*onnxpb.TensorProto, error) {
	p := &onnxpb.TensorProto{DataType: proto.Int32(int32(t.Type))}
	if t.Name != "" {
		p.Name = proto.String(t.Name)
	}
	for _, d := range t.Shape {
		p.Dims = append(p.Dims, int64(d))
	}
	n := t.Len()
	var raw []byte
	switch t.Type {
	case Float, Double:
		if len(t.Floats) != n {
			return nil, fmt.Errorf("tensor %q: %d values for shape %s", t.Name, len(t.Floats), tensor.FormatShape(t.Shape))
		}
		for _, v := range t.Floats {
			if t.Type == Float {
				raw = binary.LittleEndian.AppendUint32(raw, math.Float32bits(float32(v)))
			} else {
				raw = binary.LittleEndian.AppendUint64(raw, math.Float64bits(v))
			}
		}
	case Int64, Int32, Bool, Uint8, Int8:
		if len(t.Ints) != n {
			return nil, fmt.Errorf("tensor %q: %d values for shape %s", t.Name, len(t.Ints), tensor.FormatShape(t.Shape))
		}
		for _, v := range t.Ints {
			switch t.Type {
			case Int64:
				raw = binary.LittleEndian.AppendUint64(raw, uint64(v))
			case Int32:
				raw = binary.LittleEndian.AppendUint32(raw, uint32(v))
			default:
				raw = append(raw, byte(v))
			}
		}
	default:
		return nil, fmt.Errorf("tensor %q: writing element type %s is not supported", t.Name, t.Type)
	}
	if raw == nil {
		raw = []byte{}
	}
	p.RawData = raw
	return p, nil
}

// ReadTensorFile reads a serialized TensorProto (a backend test's
// input_0.pb or output_0.pb).
func ReadTensorFile(path string) (*Tensor, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParseTensor(b)
}

// ParseTensor decodes a serialized TensorProto.
func ParseTensor(b []byte) (*Tensor, error) {
	var p onnxpb.TensorProto
	if err := proto.Unmarshal(b, &p); err != nil {
		return nil, fmt.Errorf("not an ONNX TensorProto: %w", err)
	}
	return decodeTensor(&p)
}

// MarshalTensor serializes t as a TensorProto, the content of a .pb file.
func MarshalTensor(t *Tensor) ([]byte, error) {
	p, err := encodeTensor(t)
	if err != nil {
		return nil, err
	}
	return proto.Marshal(p)
}

// WriteTensorFile writes t as a serialized TensorProto to path.
func WriteTensorFile(path string, t *Tensor) error {
	b, err := MarshalTensor(t)
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}
