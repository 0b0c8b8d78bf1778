// Package safetensors reads and writes the safetensors format, the simple,
// safe (no code execution) tensor container used by Hugging Face and
// PyTorch. The engine stores checkpoints in it so that weights move freely
// between this engine and Python tools.
//
// A file is an 8-byte little-endian header length N, N bytes of JSON
// mapping each tensor name to {"dtype", "shape", "data_offsets": [begin,
// end]} (plus an optional "__metadata__" map of strings), then the raw
// little-endian tensor bytes; offsets are relative to the start of that data
// section, which the tensors must cover exactly, without gaps or overlaps.
package safetensors

import (
	"encoding/binary"
	"fmt"
	"math"
	"sort"

	"github.com/backprop-dev/backprop/tensor"
)

// Element types (the "dtype" field) this package knows. Sizes are in
// bytes per element; the engine itself computes in F32 and F64 and stores
// counters and random-generator state in I64 and U64.
const (
	BOOL   = "BOOL"    // boolean, 1 byte
	U8     = "U8"      // unsigned 8-bit integer
	I8     = "I8"      // signed 8-bit integer
	F8E4M3 = "F8_E4M3" // 8-bit float, 4 exponent and 3 mantissa bits
	F8E5M2 = "F8_E5M2" // 8-bit float, 5 exponent and 2 mantissa bits
	F8E8M0 = "F8_E8M0" // 8-bit exponent-only scale factor
	I16    = "I16"     // signed 16-bit integer
	U16    = "U16"     // unsigned 16-bit integer
	F16    = "F16"     // IEEE half precision
	BF16   = "BF16"    // bfloat16
	I32    = "I32"     // signed 32-bit integer
	U32    = "U32"     // unsigned 32-bit integer
	F32    = "F32"     // IEEE single precision
	F64    = "F64"     // IEEE double precision
	I64    = "I64"     // signed 64-bit integer
	U64    = "U64"     // unsigned 64-bit integer
	C64    = "C64"     // complex of two float32
)

// metaKey is the reserved header key holding the string metadata.
const metaKey = "__metadata__"

// dtypeSizes maps each known dtype to its element size in bytes.
var dtypeSizes = map[string]int{
	BOOL: 1, U8: 1, I8: 1, F8E4M3: 1, F8E5M2: 1, F8E8M0: 1,
	I16: 2, U16: 2, F16: 2, BF16: 2,
	I32: 4, U32: 4, F32: 4,
	F64: 8, I64: 8, U64: 8, C64: 8,
}

// DTypeSize returns the size in bytes of one element of dtype, and false for
// a dtype this package does not know.
func DTypeSize(dtype string) (int, bool) {
	n, ok := dtypeSizes[dtype]
	return n, ok
}

// Tensor is one stored tensor in its raw form: the element type, the shape
// and the little-endian bytes (len(Data) == product(Shape) × DTypeSize).
// Tensors read from a file share one buffer; treat Data as read-only.
type Tensor struct {
	DType string
	Shape []int
	Data  []byte
}

// File is the content of a safetensors file: named tensors plus free-form
// string metadata. The zero value is not usable; call NewFile.
type File struct {
	// Metadata is the "__metadata__" map; nil or empty writes none.
	Metadata map[string]string
	// Source is the path the file was read from (or the name given to
	// Decode), used in error messages; empty for a new file.
	Source  string
	tensors map[string]*Tensor
}

// NewFile returns an empty File ready for Add calls.
func NewFile() *File {
	return &File{Metadata: map[string]string{}, tensors: map[string]*Tensor{}}
}

// where names the file in error messages.
func (f *File) where() string {
	if f.Source == "" {
		return "safetensors"
	}
	return "safetensors " + f.Source
}

// checkTensor verifies that t's dtype is known, its shape non-negative and
// its byte length equal to product(shape) × element size.
func checkTensor(t *Tensor) error {
	if t == nil {
		return fmt.Errorf("nil tensor")
	}
	size, ok := dtypeSizes[t.DType]
	if !ok {
		return fmt.Errorf("unknown dtype %q (known: %s)", t.DType, knownDTypes())
	}
	n, err := elementCount(t.Shape)
	if err != nil {
		return err
	}
	if n > math.MaxInt64/uint64(size) || n*uint64(size) != uint64(len(t.Data)) {
		return fmt.Errorf("shape %s of %s needs %d×%d bytes, data has %d", tensor.FormatShape(t.Shape), t.DType, n, size, len(t.Data))
	}
	return nil
}

// elementCount multiplies the dimensions, rejecting negative ones and
// products that overflow.
func elementCount(shape []int) (uint64, error) {
	n := uint64(1)
	for i, d := range shape {
		if d < 0 {
			return 0, fmt.Errorf("shape %v: dimension %d is %d, want ≥ 0", shape, i, d)
		}
		if d != 0 && n > math.MaxInt64/uint64(d) {
			return 0, fmt.Errorf("shape %v: element count overflows", shape)
		}
		n *= uint64(d)
	}
	return n, nil
}

// knownDTypes lists the known dtypes for error messages.
func knownDTypes() string {
	names := make([]string, 0, len(dtypeSizes))
	for k := range dtypeSizes {
		names = append(names, k)
	}
	sort.Strings(names)
	return fmt.Sprint(names)
}

// Add stores t under name. The name must be new, non-empty and not
// "__metadata__"; t must be self-consistent (see Tensor). t is stored as
// given, not copied.
func (f *File) Add(name string, t *Tensor) error {
	switch {
	case name == "":
		return fmt.Errorf("%s: empty tensor name", f.where())
	case name == metaKey:
		return fmt.Errorf("%s: tensor name %q is reserved for metadata", f.where(), name)
	}
	if _, dup := f.tensors[name]; dup {
		return fmt.Errorf("%s: tensor %q added twice", f.where(), name)
	}
	if err := checkTensor(t); err != nil {
		return fmt.Errorf("%s: tensor %q: %w", f.where(), name, err)
	}
	if f.tensors == nil {
		f.tensors = map[string]*Tensor{}
	}
	f.tensors[name] = t
	return nil
}

// AddF32 stores a float32 tensor (dtype F32), copying its values.
func (f *File) AddF32(name string, t *tensor.Tensor[float32]) error {
	if t == nil {
		return fmt.Errorf("%s: tensor %q: nil tensor", f.where(), name)
	}
	src := t.Data()
	b := make([]byte, 4*len(src))
	for i, v := range src {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
	}
	return f.Add(name, &Tensor{DType: F32, Shape: append([]int{}, t.Shape()...), Data: b})
}

// AddF64 stores a float64 tensor (dtype F64), copying its values.
func (f *File) AddF64(name string, t *tensor.Tensor[float64]) error {
	if t == nil {
		return fmt.Errorf("%s: tensor %q: nil tensor", f.where(), name)
	}
	src := t.Data()
	b := make([]byte, 8*len(src))
	for i, v := range src {
		binary.LittleEndian.PutUint64(b[8*i:], math.Float64bits(v))
	}
	return f.Add(name, &Tensor{DType: F64, Shape: append([]int{}, t.Shape()...), Data: b})
}

// AddI64 stores one int64 as a scalar (shape []) of dtype I64, for counters
// such as an optimiser's step count.
func (f *File) AddI64(name string, v int64) error {
	return f.add64(name, I64, nil, []uint64{uint64(v)})
}

// AddI64s stores int64 values as a vector (shape [len(v)]) of dtype I64.
func (f *File) AddI64s(name string, v []int64) error {
	u := make([]uint64, len(v))
	for i, x := range v {
		u[i] = uint64(x)
	}
	return f.add64(name, I64, []int{len(v)}, u)
}

// AddU64 stores one uint64 as a scalar (shape []) of dtype U64.
func (f *File) AddU64(name string, v uint64) error {
	return f.add64(name, U64, nil, []uint64{v})
}

// AddU64s stores uint64 values as a vector (shape [len(v)]) of dtype U64,
// for example the state words of a random generator.
func (f *File) AddU64s(name string, v []uint64) error {
	return f.add64(name, U64, []int{len(v)}, v)
}

// add64 stores 8-byte integer elements under name with the given dtype
// and shape (nil for a scalar).
func (f *File) add64(name, dtype string, shape []int, v []uint64) error {
	b := make([]byte, 8*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint64(b[8*i:], x)
	}
	if shape == nil {
		shape = []int{}
	}
	return f.Add(name, &Tensor{DType: dtype, Shape: shape, Data: b})
}

// Names returns the tensor names in sorted order.
func (f *File) Names() []string {
	names := make([]string, 0, len(f.tensors))
	for k := range f.tensors {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}

// Len returns the number of tensors.
func (f *File) Len() int { return len(f.tensors) }

// Get returns the raw tensor stored under name.
func (f *File) Get(name string) (*Tensor, bool) {
	t, ok := f.tensors[name]
	return t, ok
}

// lookup returns the tensor under name if it has the wanted dtype.
func (f *File) lookup(name, dtype string) (*Tensor, error) {
	t, ok := f.tensors[name]
	if !ok {
		return nil, fmt.Errorf("%s: no tensor %q (file has %d tensors)", f.where(), name, len(f.tensors))
	}
	if t.DType != dtype {
		return nil, fmt.Errorf("%s: tensor %q has dtype %s, want %s", f.where(), name, t.DType, dtype)
	}
	return t, nil
}

// F32 returns the F32 tensor stored under name as a new float32 tensor.
func (f *File) F32(name string) (*tensor.Tensor[float32], error) {
	t, err := f.lookup(name, F32)
	if err != nil {
		return nil, err
	}
	out := make([]float32, len(t.Data)/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(t.Data[4*i:]))
	}
	return tensor.FromSlice(out, t.Shape...)
}

// F64 returns the F64 tensor stored under name as a new float64 tensor.
func (f *File) F64(name string) (*tensor.Tensor[float64], error) {
	t, err := f.lookup(name, F64)
	if err != nil {
		return nil, err
	}
	out := make([]float64, len(t.Data)/8)
	for i := range out {
		out[i] = math.Float64frombits(binary.LittleEndian.Uint64(t.Data[8*i:]))
	}
	return tensor.FromSlice(out, t.Shape...)
}

// words returns the 8-byte elements of an I64 or U64 tensor.
func (f *File) words(name, dtype string) ([]uint64, error) {
	t, err := f.lookup(name, dtype)
	if err != nil {
		return nil, err
	}
	out := make([]uint64, len(t.Data)/8)
	for i := range out {
		out[i] = binary.LittleEndian.Uint64(t.Data[8*i:])
	}
	return out, nil
}

// scalar returns the single element of a one-element I64 or U64 tensor.
func (f *File) scalar(name, dtype string) (uint64, error) {
	w, err := f.words(name, dtype)
	if err != nil {
		return 0, err
	}
	if len(w) != 1 {
		return 0, fmt.Errorf("%s: tensor %q has shape %s (%d elements), want a scalar",
			f.where(), name, tensor.FormatShape(f.tensors[name].Shape), len(w))
	}
	return w[0], nil
}

// I64 returns the scalar (or one-element) I64 tensor stored under name.
func (f *File) I64(name string) (int64, error) {
	v, err := f.scalar(name, I64)
	return int64(v), err
}

// I64s returns the elements of the I64 tensor stored under name, flattened.
func (f *File) I64s(name string) ([]int64, error) {
	w, err := f.words(name, I64)
	if err != nil {
		return nil, err
	}
	out := make([]int64, len(w))
	for i, x := range w {
		out[i] = int64(x)
	}
	return out, nil
}

// U64 returns the scalar (or one-element) U64 tensor stored under name.
func (f *File) U64(name string) (uint64, error) {
	return f.scalar(name, U64)
}

// U64s returns the elements of the U64 tensor stored under name, flattened.
func (f *File) U64s(name string) ([]uint64, error) {
	return f.words(name, U64)
}
