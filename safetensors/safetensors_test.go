package safetensors

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/backprop-dev/backprop/tensor"
)

func sampleFile(t *testing.T) *File {
	t.Helper()
	f := NewFile()
	f.Metadata["epoch"] = "3"
	f.Metadata["note"] = "quotes \" and \\ and ünïcode"
	must(t, f.AddF32("layer1.weight", tensor.MustFromSlice([]float32{1, -2, 3.5, float32(math.Inf(1)), 0, float32(math.SmallestNonzeroFloat32)}, 2, 3)))
	must(t, f.AddF32("layer1.bias", tensor.MustFromSlice([]float32{0.25}, 1)))
	must(t, f.AddF64("stats/mean", tensor.MustFromSlice([]float64{math.Pi, -math.E}, 2)))
	must(t, f.AddF32("empty", tensor.New[float32](0, 4)))
	must(t, f.AddF32("scalar", tensor.Scalar[float32](7)))
	must(t, f.AddI64("opt.step", -42))
	must(t, f.AddI64s("counts", []int64{math.MinInt64, 0, math.MaxInt64}))
	must(t, f.AddU64("seed", math.MaxUint64))
	must(t, f.AddU64s("rng.state", []uint64{0x0123456789abcdef, 0xfedcba9876543210}))
	return f
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ckpt.safetensors")
	orig := sampleFile(t)
	must(t, orig.WriteFile(path))
	raw, err := os.ReadFile(path)
	must(t, err)
	hlen := binary.LittleEndian.Uint64(raw)
	if hlen%8 != 0 {
		t.Errorf("header length %d is not a multiple of 8", hlen)
	}
	if !json.Valid(raw[8 : 8+hlen]) {
		t.Errorf("header is not valid JSON: %s", raw[8:8+hlen])
	}

	got, err := Read(path)
	must(t, err)
	if got.Source != path {
		t.Errorf("Source = %q", got.Source)
	}
	if !reflect.DeepEqual(got.Metadata, orig.Metadata) {
		t.Errorf("metadata %v, want %v", got.Metadata, orig.Metadata)
	}
	if !reflect.DeepEqual(got.Names(), orig.Names()) {
		t.Fatalf("names %v, want %v", got.Names(), orig.Names())
	}
	for _, name := range orig.Names() {
		a, _ := orig.Get(name)
		b, _ := got.Get(name)
		if a.DType != b.DType || !reflect.DeepEqual(a.Shape, b.Shape) || !bytes.Equal(a.Data, b.Data) {
			t.Errorf("tensor %q: got %v %v, want %v %v", name, b.DType, b.Shape, a.DType, a.Shape)
		}
	}
	w, err := got.F32("layer1.weight")
	must(t, err)
	if !reflect.DeepEqual(w.Shape(), []int{2, 3}) || w.At(1, 0) != float32(math.Inf(1)) || w.At(1, 2) != float32(math.SmallestNonzeroFloat32) {
		t.Errorf("layer1.weight = %v %v", w.Shape(), w.Data())
	}
	s, err := got.F32("scalar")
	must(t, err)
	if s.Rank() != 0 || s.Data()[0] != 7 {
		t.Errorf("scalar = %v %v", s.Shape(), s.Data())
	}
	m, err := got.F64("stats/mean")
	must(t, err)
	if m.Data()[0] != math.Pi || m.Data()[1] != -math.E {
		t.Errorf("stats/mean = %v", m.Data())
	}
	if v, err := got.I64("opt.step"); err != nil || v != -42 {
		t.Errorf("opt.step = %v, %v", v, err)
	}
	if v, err := got.I64s("counts"); err != nil || !reflect.DeepEqual(v, []int64{math.MinInt64, 0, math.MaxInt64}) {
		t.Errorf("counts = %v, %v", v, err)
	}
	if v, err := got.U64("seed"); err != nil || v != math.MaxUint64 {
		t.Errorf("seed = %v, %v", v, err)
	}
	if v, err := got.U64s("rng.state"); err != nil || !reflect.DeepEqual(v, []uint64{0x0123456789abcdef, 0xfedcba9876543210}) {
		t.Errorf("rng.state = %v, %v", v, err)
	}

	// Writing again gives the very same bytes: the output is deterministic.
	var again bytes.Buffer
	if _, err := got.WriteTo(&again); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again.Bytes(), raw) {
		t.Error("re-encoding a read file changed its bytes")
	}
}

func TestWriteConvenience(t *testing.T) {
	path := filepath.Join(t.TempDir(), "w.safetensors")
	ts := map[string]*tensor.Tensor[float32]{
		"b": tensor.MustFromSlice([]float32{1, 2}, 2),
		"a": tensor.MustFromSlice([]float32{3, 4, 5, 6}, 2, 2),
	}
	must(t, Write(path, ts, map[string]string{"k": "v"}))
	f, err := Read(path)
	must(t, err)
	a, err := f.F32("a")
	must(t, err)
	if !reflect.DeepEqual(a.Data(), []float32{3, 4, 5, 6}) || f.Metadata["k"] != "v" || f.Len() != 2 {
		t.Fatalf("read back %v %v", a.Data(), f.Metadata)
	}
	// No metadata at all: no __metadata__ key is written.
	must(t, Write(path, ts, nil))
	raw, _ := os.ReadFile(path)
	if bytes.Contains(raw, []byte("__metadata__")) {
		t.Error("empty metadata was written")
	}
	f, err = Read(path)
	must(t, err)
	if len(f.Metadata) != 0 {
		t.Errorf("metadata = %v", f.Metadata)
	}
	// A nil tensor is an error and leaves the good file alone.
	before, _ := os.ReadFile(path)
	err = Write(path, map[string]*tensor.Tensor[float32]{"x": nil}, nil)
	if err == nil || !strings.Contains(err.Error(), `"x"`) {
		t.Errorf("nil tensor: err = %v", err)
	}
	after, _ := os.ReadFile(path)
	if !bytes.Equal(before, after) {
		t.Error("failed Write changed the file")
	}
}

func TestAddErrors(t *testing.T) {
	f := NewFile()
	must(t, f.AddI64("x", 1))
	for _, tc := range []struct {
		name string
		t    *Tensor
		want string
	}{
		{"x", &Tensor{DType: I64, Shape: []int{}, Data: make([]byte, 8)}, "added twice"},
		{"", &Tensor{DType: I64, Shape: []int{}, Data: make([]byte, 8)}, "empty tensor name"},
		{"__metadata__", &Tensor{DType: I64, Shape: []int{}, Data: make([]byte, 8)}, "reserved"},
		{"y", &Tensor{DType: "F128", Shape: []int{1}, Data: make([]byte, 16)}, `unknown dtype "F128"`},
		{"y", &Tensor{DType: F32, Shape: []int{2, 2}, Data: make([]byte, 12)}, "needs 4×4 bytes, data has 12"},
		{"y", &Tensor{DType: F32, Shape: []int{-1}, Data: nil}, "want ≥ 0"},
		{"y", nil, "nil tensor"},
	} {
		err := f.Add(tc.name, tc.t)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Add(%q) err = %v, want %q", tc.name, err, tc.want)
		}
	}
	var zero File // the zero File can also be filled
	must(t, zero.AddU64("s", 1))
}

func TestGetterErrors(t *testing.T) {
	f := sampleFile(t)
	f.Source = "ckpt.safetensors"
	for _, tc := range []struct {
		get  func() error
		want string
	}{
		{func() error { _, err := f.F32("missing"); return err }, `no tensor "missing"`},
		{func() error { _, err := f.F32("stats/mean"); return err }, `tensor "stats/mean" has dtype F64, want F32`},
		{func() error { _, err := f.F64("layer1.bias"); return err }, "has dtype F32, want F64"},
		{func() error { _, err := f.I64("counts"); return err }, "want a scalar"},
		{func() error { _, err := f.U64("opt.step"); return err }, "has dtype I64, want U64"},
		{func() error { _, err := f.I64s("seed"); return err }, "has dtype U64, want I64"},
	} {
		err := tc.get()
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "ckpt.safetensors") {
			t.Errorf("err = %v, want %q and the file name", err, tc.want)
		}
	}
}

// build assembles a safetensors file from a raw header string and data.
func build(header string, data []byte) []byte {
	var b bytes.Buffer
	binary.Write(&b, binary.LittleEndian, uint64(len(header)))
	b.WriteString(header)
	b.Write(data)
	return b.Bytes()
}

func TestReadCorrupt(t *testing.T) {
	good := build(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`, make([]byte, 8))
	hugeLen := append([]byte{}, good...)
	binary.LittleEndian.PutUint64(hugeLen, 1<<40)
	pastEnd := append([]byte{}, good...)
	binary.LittleEndian.PutUint64(pastEnd, uint64(len(good)))
	for _, tc := range []struct {
		name    string
		content []byte
		want    []string
	}{
		{"empty file", nil, []string{"too short", "got 0"}},
		{"short length", []byte{1, 2, 3}, []string{"too short"}},
		{"huge header length", hugeLen, []string{"header length 1099511627776 exceeds"}},
		{"header length past end", pastEnd, []string{"exceeds the", "bytes that follow it"}},
		{"header length zero", build("", nil), []string{"header length 0"}},
		{"not json", build(`{"a":nope}`, nil), []string{"not valid JSON"}},
		{"not an object", build(`["a", 1]`, nil), []string{"must start with '{'"}},
		{"unterminated", build(`{"a":{}`, nil), []string{"not valid JSON"}},
		{"text after object", build(`{} xx`, nil), []string{"non-space text after"}},
		{"invalid utf8", build("{\"\xff\":1}", nil), []string{"UTF-8"}},
		{"duplicate key", build(`{"a":{"dtype":"F32","shape":[],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[],"data_offsets":[0,4]}}`, make([]byte, 4)), []string{`"a" twice`}},
		{"unknown dtype", build(`{"w":{"dtype":"F99","shape":[1],"data_offsets":[0,4]}}`, make([]byte, 4)), []string{`tensor "w"`, `unknown dtype "F99"`}},
		{"missing field", build(`{"w":{"dtype":"F32","shape":[1]}}`, make([]byte, 4)), []string{`tensor "w"`, `lacks "data_offsets"`}},
		{"unknown field", build(`{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"x":1}}`, make([]byte, 4)), []string{`tensor "w"`, `unknown field "x"`}},
		{"record not object", build(`{"w":[1,2]}`, nil), []string{`tensor "w"`, "[1,2] is not a JSON object"}},
		{"negative dim", build(`{"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,0]}}`, nil), []string{`tensor "w"`, "shape[0] is -1"}},
		{"fractional dim", build(`{"w":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}}`, make([]byte, 4)), []string{"shape[0] is 1.5"}},
		{"overflowing shape", build(`{"w":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,4]}}`, make([]byte, 4)), []string{"overflows"}},
		{"one offset", build(`{"w":{"dtype":"F32","shape":[1],"data_offsets":[4]}}`, make([]byte, 4)), []string{"data_offsets has 1 values"}},
		{"negative offset", build(`{"w":{"dtype":"F32","shape":[1],"data_offsets":[-4,0]}}`, make([]byte, 4)), []string{"data_offsets[0] is -4"}},
		{"reversed offsets", build(`{"w":{"dtype":"F32","shape":[0],"data_offsets":[4,0]}}`, make([]byte, 4)), []string{"end before they begin"}},
		{"offsets out of bounds", build(`{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`, make([]byte, 4)), []string{`tensor "w"`, "run past the 4-byte data section"}},
		{"size mismatch", build(`{"w":{"dtype":"F64","shape":[2],"data_offsets":[0,8]}}`, make([]byte, 8)), []string{`tensor "w"`, "needs 2×8 bytes", "give 8"}},
		{"overlap", build(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}`, make([]byte, 12)), []string{`tensor "b"`, `overlap tensor "a"`}},
		{"same range twice", build(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, make([]byte, 4)), []string{"overlap"}},
		{"gap", build(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}`, make([]byte, 12)), []string{"[4, 8) belong to no tensor", `"b"`}},
		{"uncovered tail", build(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, make([]byte, 9)), []string{"9 bytes but the tensors cover only 4"}},
		{"bad metadata", build(`{"__metadata__":{"k":1}}`, nil), []string{"__metadata__ must map strings to strings"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "bad.safetensors")
			must(t, os.WriteFile(path, tc.content, 0o644))
			_, err := Read(path)
			if err == nil {
				t.Fatal("no error")
			}
			t.Log(err)
			msg := err.Error()
			if !strings.Contains(msg, path) {
				t.Errorf("error %q does not name the file", msg)
			}
			for _, s := range tc.want {
				if !strings.Contains(msg, s) {
					t.Errorf("error %q does not contain %q", msg, s)
				}
			}
			// The stream decoder must agree that the input is bad.
			if _, err := Decode(bytes.NewReader(tc.content), "stream"); err == nil {
				t.Errorf("Decode accepted what Read rejected")
			}
		})
	}
}

func TestReadAcceptsEdgeCases(t *testing.T) {
	for name, content := range map[string][]byte{
		"empty header":             build(`{}`, nil),
		"padded header":            build(`{}      `, nil),
		"null metadata":            build(`{"__metadata__":null}`, nil),
		"zero-size tensors":        build(`{"a":{"dtype":"F32","shape":[0],"data_offsets":[0,0]},"b":{"dtype":"U8","shape":[3],"data_offsets":[0,3]},"c":{"dtype":"BF16","shape":[0,9],"data_offsets":[3,3]}}`, make([]byte, 3)),
		"tensors out of key order": build(`{"z":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"I64","shape":[],"data_offsets":[4,12]}}`, make([]byte, 12)),
	} {
		if _, err := Decode(bytes.NewReader(content), name); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestReadMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "none.safetensors")
	if _, err := Read(path); err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("err = %v", err)
	}
}

// torchFixture is testdata/torch_fixture.json: the tensors
// make_torch_fixture.py took from PyTorch, every value written with repr.
type torchFixture struct {
	Metadata map[string]string
	Tensors  map[string]struct {
		DType  string
		Shape  []int
		Values []string
	}
}

func readTorchFixture(t *testing.T) torchFixture {
	t.Helper()
	raw, err := os.ReadFile("testdata/torch_fixture.json")
	must(t, err)
	var want torchFixture
	must(t, json.Unmarshal(raw, &want))
	return want
}

// checkFixture compares the tensors of f, read from path, bit for bit with
// the values recorded in want.
func checkFixture(t *testing.T, path string, f *File, want torchFixture, skipScalars bool) {
	t.Helper()
	n := 0
	for name, w := range want.Tensors {
		if skipScalars && len(w.Shape) == 0 {
			if _, ok := f.Get(name); ok {
				t.Errorf("%s: has the 0-d tensor %q, which its writer cannot write", path, name)
			}
			continue
		}
		n++
		raw, ok := f.Get(name)
		if !ok {
			t.Fatalf("%s: tensor %q missing", path, name)
		}
		if raw.DType != w.DType || !reflect.DeepEqual(raw.Shape, w.Shape) {
			t.Fatalf("%s: %q: %s %v, want %s %v", path, name, raw.DType, raw.Shape, w.DType, w.Shape)
		}
		switch w.DType {
		case F32:
			x, err := f.F32(name)
			must(t, err)
			for i, s := range w.Values {
				v, err := strconv.ParseFloat(s, 64)
				must(t, err)
				if x.Data()[i] != float32(v) {
					t.Errorf("%s: %q[%d] = %v, want %v", path, name, i, x.Data()[i], v)
				}
			}
		case F64:
			x, err := f.F64(name)
			must(t, err)
			for i, s := range w.Values {
				v, err := strconv.ParseFloat(s, 64)
				must(t, err)
				if x.Data()[i] != v {
					t.Errorf("%s: %q[%d] = %v, want %v", path, name, i, x.Data()[i], v)
				}
			}
		case I64:
			x, err := f.I64s(name)
			must(t, err)
			for i, s := range w.Values {
				v, err := strconv.ParseInt(s, 10, 64)
				must(t, err)
				if x[i] != v {
					t.Errorf("%s: %q[%d] = %v, want %v", path, name, i, x[i], v)
				}
			}
		default:
			t.Fatalf("%s: %q: unexpected dtype %s", path, name, w.DType)
		}
	}
	if f.Len() != n {
		t.Errorf("%s: %d tensors, want %d", path, f.Len(), n)
	}
}

// TestTorchFixture reads a file written from PyTorch tensors by
// testdata/make_torch_fixture.py and compares it with the values that script
// recorded in testdata/torch_fixture.json.
func TestTorchFixture(t *testing.T) {
	const path = "testdata/torch_fixture.safetensors"
	f, err := Read(path)
	must(t, err)
	want := readTorchFixture(t)
	if !reflect.DeepEqual(f.Metadata, want.Metadata) {
		t.Errorf("metadata %v, want %v", f.Metadata, want.Metadata)
	}
	if len(want.Tensors) != 6 {
		t.Fatalf("testdata/torch_fixture.json: %d tensors, want 6", len(want.Tensors))
	}
	checkFixture(t, path, f, want, false)
	if step, err := f.I64("step"); err != nil || step != 123456789012 {
		t.Errorf("step = %v, %v", step, err)
	}
}

// TestReferenceWriterFixture reads the same PyTorch tensors as written by an
// implementation of the format that shares no code with this package
// (testdata/refwriter: github.com/nlpodyssey/safetensors, a port of Hugging
// Face's Rust crate, which orders the data by dtype alignment, then name), so
// a misreading of the format cannot hide in both writer and reader. The port
// cannot write 0-d tensors, so the scalar "step" is not in that file.
func TestReferenceWriterFixture(t *testing.T) {
	const path = "testdata/reference_writer.safetensors"
	f, err := Read(path)
	must(t, err)
	want := readTorchFixture(t)
	wantMeta := map[string]string{"format": want.Metadata["format"],
		"made_by": "github.com/nlpodyssey/safetensors (safetensors/testdata/refwriter)"}
	if !reflect.DeepEqual(f.Metadata, wantMeta) {
		t.Errorf("%s: metadata %v, want %v", path, f.Metadata, wantMeta)
	}
	checkFixture(t, path, f, want, true)
	// Written back by this package and read again, nothing changes.
	var buf bytes.Buffer
	_, err = f.WriteTo(&buf)
	must(t, err)
	again, err := Decode(bytes.NewReader(buf.Bytes()), "rewritten "+path)
	must(t, err)
	checkFixture(t, "rewritten "+path, again, want, true)
}
