package data

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/backprop-dev/backprop/tensor"
)

// idxBytes builds a raw IDX stream by hand (independently of EncodeIDX) so
// that tests can corrupt any part of it.
func idxBytes(typeCode byte, dims []uint32, data []byte) []byte {
	var b bytes.Buffer
	b.Write([]byte{0, 0, typeCode, byte(len(dims))})
	for _, d := range dims {
		binary.Write(&b, binary.BigEndian, d)
	}
	b.Write(data)
	return b.Bytes()
}

func gz(t *testing.T, p []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	if _, err := zw.Write(p); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func writeTemp(t *testing.T, name string, p []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, p, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func seq(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i * 7)
	}
	return b
}

func TestIDXRoundTrip(t *testing.T) {
	dims := []int{5, 3, 4}
	data := seq(60)
	for _, name := range []string{"imgs-idx3-ubyte", "imgs-idx3-ubyte.gz"} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), name)
			if err := WriteIDX(path, dims, data); err != nil {
				t.Fatal(err)
			}
			raw, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			isGz := raw[0] == 0x1f && raw[1] == 0x8b
			if isGz != strings.HasSuffix(name, ".gz") {
				t.Fatalf("gzip-compressed = %v for %s", isGz, name)
			}
			if !isGz && !bytes.Equal(raw, idxBytes(TypeUint8, []uint32{5, 3, 4}, data)) {
				t.Fatalf("plain file bytes differ from the IDX layout")
			}
			got, err := ReadImages(path)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got.Dims, dims) || !bytes.Equal(got.Data, data) {
				t.Fatalf("read back dims %v data %v, want %v %v", got.Dims, got.Data, dims, data)
			}
		})
	}
}

// TestGzipDetectedByMagic checks that compression is recognised from the
// content, whatever the file is called.
func TestGzipDetectedByMagic(t *testing.T) {
	raw := idxBytes(TypeUint8, []uint32{3}, []byte{1, 2, 3})
	for name, content := range map[string][]byte{
		"labels.gz":     raw,        // plain content despite the .gz name
		"labels-plain":  gz(t, raw), // gzip content despite the plain name
		"labels-plain2": raw,        // plain and plainly named
		"labels2.gz":    gz(t, raw), // gzip and named so
	} {
		got, err := ReadLabels(writeTemp(t, name, content))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !bytes.Equal(got, []byte{1, 2, 3}) {
			t.Fatalf("%s: labels %v", name, got)
		}
	}
}

func TestWriteImagesQuantises(t *testing.T) {
	nan := float32(0)
	nan = nan / nan
	imgs := tensor.MustFromSlice([]float32{0, 1, 0.5, -3, 7, nan, 0.1, 0.999}, 2, 1, 2, 2)
	path := filepath.Join(t.TempDir(), "samples-idx3-ubyte")
	if err := WriteImages(path, imgs); err != nil {
		t.Fatal(err)
	}
	got, err := ReadImages(path)
	if err != nil {
		t.Fatal(err)
	}
	want := []byte{0, 255, 128, 0, 255, 0, 26, 255}
	if !reflect.DeepEqual(got.Dims, []int{2, 2, 2}) || !bytes.Equal(got.Data, want) {
		t.Fatalf("got dims %v data %v, want [2 2 2] %v", got.Dims, got.Data, want)
	}
	// Loading the export as a data set gives back the same pixels / 255.
	if err := WriteImages(path, tensor.New[float32](2, 3)); err == nil || !strings.Contains(err.Error(), "[2×3]") {
		t.Errorf("rank-2 images: err = %v, want a shape error", err)
	}
	if err := WriteImages(path, nil); err == nil {
		t.Error("nil images: no error")
	}
}

func TestWriteIDXRejectsBadShapes(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		dims []int
		n    int
		want string
	}{
		{[]int{2, 3}, 5, "needs 6 bytes, got 5"},
		{nil, 0, "1 to 255 dimensions"},
		{[]int{-1}, 0, "out of range"},
	} {
		path := filepath.Join(dir, "x")
		err := WriteIDX(path, tc.dims, make([]byte, tc.n))
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), path) {
			t.Errorf("WriteIDX(%v, %d bytes) err = %v, want %q and the path", tc.dims, tc.n, err, tc.want)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("failed writes left %d files", len(entries))
	}
}

func TestIDXCorruption(t *testing.T) {
	good := idxBytes(TypeUint8, []uint32{2, 2, 3}, seq(12))
	gzGood := gz(t, good)
	for _, tc := range []struct {
		name    string
		content []byte
		read    func(string) error
		what    string // IDXError.What, or "" for a non-IDXError
		substr  []string
	}{
		{"bad magic", append([]byte{0x12, 0x34}, good[2:]...), images, "bad magic number", []string{"0x1234080"}},
		{"unsupported type float32", idxBytes(TypeFloat32, []uint32{1}, make([]byte, 4)), labels, "unsupported element type code", []string{"0x0d (float32)", "0x08 (unsigned byte)"}},
		{"labels file read as images", idxBytes(TypeUint8, []uint32{12}, seq(12)), images, "wrong number of dimensions", []string{"want 3, got 1"}},
		{"images file read as labels", good, labels, "wrong number of dimensions", []string{"want 1, got 3"}},
		{"empty file", nil, images, "truncated magic number", []string{"want 4 bytes, got 0 bytes"}},
		{"truncated header", good[:9], images, "truncated header (3 dimension sizes)", []string{"want 12 bytes, got 5 bytes"}},
		{"truncated data", good[:len(good)-5], images, "truncated data", []string{"12 data bytes for shape [2×2×3]", "got 7 bytes"}},
		{"trailing garbage", append(append([]byte{}, good...), 1, 2, 3), images, "trailing garbage", []string{"3 extra bytes"}},
		{"gz truncated data", gz(t, good[:len(good)-1]), images, "truncated data", []string{"got 11 bytes"}},
		{"gz trailing garbage inside stream", gz(t, append(append([]byte{}, good...), 9)), images, "trailing garbage", []string{"1 extra bytes"}},
		{"gz garbage after stream", append(append([]byte{}, gzGood...), "junk!!!!!!!!"...), images, "trailing garbage", []string{"not a gzip stream"}},
		{"gz stream cut short", gzGood[:len(gzGood)-4], images, "", []string{"gzip"}},
		{"gz checksum mismatch", badCRC(gzGood), images, "", []string{"gzip stream is corrupt", "checksum"}},
		{"gz cut inside data", gzGood[:20], images, "", []string{}},
		{"implausible dims", idxBytes(TypeUint8, []uint32{1 << 31, 1 << 31, 1 << 31}, nil), images, "implausible dimensions", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := writeTemp(t, "file-idx-ubyte", tc.content)
			err := tc.read(path)
			if err == nil {
				t.Fatal("no error")
			}
			msg := err.Error()
			t.Log(msg)
			if !strings.Contains(msg, path) {
				t.Errorf("error %q does not name the file", msg)
			}
			var ie *IDXError
			if tc.what != "" {
				if !errors.As(err, &ie) || ie.What != tc.what {
					t.Fatalf("error %q: want IDXError %q", msg, tc.what)
				}
				if ie.Want == "" || ie.Got == "" {
					t.Errorf("error %q lacks expected or received value", msg)
				}
			}
			for _, s := range tc.substr {
				if !strings.Contains(msg, s) {
					t.Errorf("error %q does not contain %q", msg, s)
				}
			}
		})
	}
}

func images(p string) error { _, err := ReadImages(p); return err }
func labels(p string) error { _, err := ReadLabels(p); return err }

func TestReadIDXMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nope")
	_, err := ReadIDX(path)
	if !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), path) {
		t.Fatalf("err = %v, want not-exist naming %s", err, path)
	}
}

func TestDecodeIDXAnyRank(t *testing.T) {
	raw := idxBytes(TypeUint8, []uint32{2, 1, 1, 2}, []byte{1, 2, 3, 4})
	x, err := DecodeIDX(bytes.NewReader(raw), "mem")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(x.Dims, []int{2, 1, 1, 2}) {
		t.Fatalf("dims %v", x.Dims)
	}
	_, err = DecodeIDX(bytes.NewReader(raw[:6]), "mem")
	if err == nil || !strings.Contains(err.Error(), "IDX file mem") {
		t.Fatalf("err = %v", err)
	}
}

// badCRC returns a copy of a gzip stream with its CRC-32 trailer corrupted.
func badCRC(z []byte) []byte {
	c := append([]byte{}, z...)
	c[len(c)-8] ^= 0xff
	return c
}

// FuzzDecodeIDX checks that no input, however malformed, makes the reader
// panic, and that whatever it accepts is self-consistent.
func FuzzDecodeIDX(f *testing.F) {
	f.Add(idxBytes(TypeUint8, []uint32{2, 2}, []byte{1, 2, 3, 4}))
	f.Add(idxBytes(TypeUint8, []uint32{0}, nil))
	f.Add([]byte{0x1f, 0x8b, 8, 0})
	f.Add([]byte{0, 0, 8, 3, 0, 0, 0, 1})
	f.Fuzz(func(t *testing.T, p []byte) {
		x, err := DecodeIDX(bytes.NewReader(p), "fuzz")
		if err != nil {
			return
		}
		n := 1
		for _, d := range x.Dims {
			n *= d
		}
		if n != len(x.Data) {
			t.Fatalf("dims %v but %d bytes", x.Dims, len(x.Data))
		}
	})
}
