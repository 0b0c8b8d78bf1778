package safetensors

import (
	"bytes"
	"reflect"
	"testing"
)

// FuzzRead feeds arbitrary bytes to the reader: it must never panic, and any
// file it accepts must survive a write/read round trip unchanged (names,
// metadata keys and values, dtypes, shapes and data). The committed corpus
// in testdata/fuzz/FuzzRead holds the PyTorch fixture and the file written
// by the reference writer (testdata/refwriter), whole and truncated.
func FuzzRead(f *testing.F) {
	f.Add(build(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`, make([]byte, 8)))
	f.Add(build(`{"__metadata__":{"k":"v"},"s":{"dtype":"I64","shape":[],"data_offsets":[0,8]}}`, make([]byte, 8)))
	f.Add(build(`{"__metadata__":{"a":"1","b":"\u00e9\"q\"","":""},"s":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}}`, []byte{1, 2}))
	f.Add(build(`{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"b":{"dtype":"U8","shape":[0],"data_offsets":[1,1]}}`, []byte{9}))
	f.Add(build(`{}`, nil))
	f.Add([]byte{255, 255, 255, 255, 255, 255, 255, 255})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, p []byte) {
		file, err := Decode(bytes.NewReader(p), "fuzz")
		if err != nil {
			return
		}
		var buf bytes.Buffer
		if _, err := file.WriteTo(&buf); err != nil {
			t.Fatalf("accepted file does not re-encode: %v", err)
		}
		again, err := Decode(bytes.NewReader(buf.Bytes()), "re-encoded")
		if err != nil {
			t.Fatalf("re-encoded file rejected: %v", err)
		}
		if !reflect.DeepEqual(again.Names(), file.Names()) {
			t.Fatalf("round trip changed names %v → %v", file.Names(), again.Names())
		}
		if len(again.Metadata) != len(file.Metadata) {
			t.Fatalf("round trip changed the metadata %q → %q", file.Metadata, again.Metadata)
		}
		for k, v := range file.Metadata {
			if w, ok := again.Metadata[k]; !ok || w != v {
				t.Fatalf("round trip changed metadata %q: %q → %q (present %v)", k, v, w, ok)
			}
		}
		for _, n := range file.Names() {
			a, _ := file.Get(n)
			b, _ := again.Get(n)
			if a.DType != b.DType || !reflect.DeepEqual(a.Shape, b.Shape) || !bytes.Equal(a.Data, b.Data) {
				t.Fatalf("round trip changed tensor %q", n)
			}
		}
	})
}
