package data

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strings"

	"github.com/backprop-dev/backprop/internal/atomicfile"
	"github.com/backprop-dev/backprop/tensor"
)

// IDX type codes, the third byte of an IDX file's magic number. Only
// TypeUint8 is supported: it is what MNIST and Fashion-MNIST use.
const (
	TypeUint8   = 0x08 // unsigned byte
	TypeInt8    = 0x09 // signed byte
	TypeInt16   = 0x0B // big-endian int16
	TypeInt32   = 0x0C // big-endian int32
	TypeFloat32 = 0x0D // big-endian float32
	TypeFloat64 = 0x0E // big-endian float64
)

// maxIDXBytes bounds the element count a header may claim (16 GiB). It only
// rejects absurd headers; real data sets are far smaller.
const maxIDXBytes = 1 << 34

// IDX is the content of one IDX file of unsigned bytes: its dimensions, as
// the header gives them, and the elements in row-major order.
type IDX struct {
	Dims []int
	Data []uint8
}

// IDXError reports a malformed IDX file. It names the file and says what was
// expected and what was found, so that a broken download or a wrong path is
// obvious from the message alone.
type IDXError struct {
	File string // the file's path, or the name given to DecodeIDX
	What string // the problem, e.g. "bad magic"
	Want string // what the format (or the caller) requires
	Got  string // what the file holds
}

// Error formats the problem as "data: IDX file F: what: want X, got Y".
func (e *IDXError) Error() string {
	return fmt.Sprintf("data: IDX file %s: %s: want %s, got %s", e.File, e.What, e.Want, e.Got)
}

// typeName names an IDX type code for error messages.
func typeName(code byte) string {
	switch code {
	case TypeUint8:
		return "unsigned byte"
	case TypeInt8:
		return "signed byte"
	case TypeInt16:
		return "int16"
	case TypeInt32:
		return "int32"
	case TypeFloat32:
		return "float32"
	case TypeFloat64:
		return "float64"
	}
	return "unknown type"
}

// ReadIDX reads an IDX file of unsigned bytes, gzip-compressed or not (the
// gzip magic number decides, not the file name).
func ReadIDX(path string) (*IDX, error) {
	return readIDXFile(path, -1)
}

// ReadImages reads an IDX file of images: three dimensions N×H×W of
// unsigned bytes.
func ReadImages(path string) (*IDX, error) {
	return readIDXFile(path, 3)
}

// ReadLabels reads an IDX file of labels: one dimension of unsigned bytes.
func ReadLabels(path string) ([]uint8, error) {
	x, err := readIDXFile(path, 1)
	if err != nil {
		return nil, err
	}
	return x.Data, nil
}

// readIDXFile opens and decodes path, requiring rank dimensions (-1: any).
func readIDXFile(path string, rank int) (*IDX, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("data: %w", err)
	}
	defer f.Close()
	return decodeIDX(f, path, rank)
}

// DecodeIDX reads an IDX stream of unsigned bytes from r; name is used in
// error messages. Gzip-compressed input is detected and decompressed.
func DecodeIDX(r io.Reader, name string) (*IDX, error) {
	return decodeIDX(r, name, -1)
}

// decodeIDX is the reader behind ReadIDX, ReadImages, ReadLabels and
// DecodeIDX; rank is the required number of dimensions, or -1 for any.
func decodeIDX(r io.Reader, name string, rank int) (*IDX, error) {
	br := bufio.NewReaderSize(r, 1<<16)
	var src io.Reader = br
	compressed := false
	if magic, err := br.Peek(2); err == nil && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("data: IDX file %s: bad gzip header: %w", name, err)
		}
		defer zr.Close()
		src = zr
		compressed = true
	}
	readErr := func(what string, err error) error {
		if compressed {
			return fmt.Errorf("data: IDX file %s: gzip stream is corrupt (reading %s): %w", name, what, err)
		}
		return fmt.Errorf("data: IDX file %s: reading %s: %w", name, what, err)
	}
	// readFull reads len(p) bytes of the named part, reporting a short read
	// as truncation with both byte counts.
	readFull := func(what string, p []byte) error {
		n, err := io.ReadFull(src, p)
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return &IDXError{File: name, What: "truncated " + what,
				Want: fmt.Sprintf("%d bytes", len(p)), Got: fmt.Sprintf("%d bytes before end of file", n)}
		}
		if err != nil {
			return readErr(what, err)
		}
		return nil
	}

	var magic [4]byte
	if err := readFull("magic number", magic[:]); err != nil {
		return nil, err
	}
	if magic[0] != 0 || magic[1] != 0 {
		return nil, &IDXError{File: name, What: "bad magic number", Want: "0x0000 followed by type code and rank",
			Got: fmt.Sprintf("0x%02x%02x%02x%02x", magic[0], magic[1], magic[2], magic[3])}
	}
	if magic[2] != TypeUint8 {
		return nil, &IDXError{File: name, What: "unsupported element type code",
			Want: fmt.Sprintf("0x%02x (%s)", TypeUint8, typeName(TypeUint8)),
			Got:  fmt.Sprintf("0x%02x (%s)", magic[2], typeName(magic[2]))}
	}
	nd := int(magic[3])
	if rank >= 0 && nd != rank {
		return nil, &IDXError{File: name, What: "wrong number of dimensions",
			Want: fmt.Sprint(rank), Got: fmt.Sprint(nd)}
	}
	dimBytes := make([]byte, 4*nd)
	if err := readFull(fmt.Sprintf("header (%d dimension sizes)", nd), dimBytes); err != nil {
		return nil, err
	}
	dims := make([]int, nd)
	total := int64(1)
	for i := range dims {
		d := int64(binary.BigEndian.Uint32(dimBytes[4*i:]))
		dims[i] = int(d)
		if d != 0 && total > maxIDXBytes/d {
			return nil, &IDXError{File: name, What: "implausible dimensions",
				Want: fmt.Sprintf("at most %d elements", int64(maxIDXBytes)), Got: tensor.FormatShape(dims[:i+1]) + "…"}
		}
		total *= d
	}

	// Read no more than the header promises (plus one byte to detect
	// garbage), growing the buffer as data arrives so that a lying header
	// cannot make us allocate gigabytes up front.
	var buf bytes.Buffer
	buf.Grow(int(min(total, 1<<26)))
	_, dataErr := buf.ReadFrom(io.LimitReader(src, total))
	// gzip.ErrHeader here means the compressed stream ended and was followed
	// by bytes that are not gzip: trailing garbage when all the data arrived,
	// short data otherwise (both reported below). ErrUnexpectedEOF is a
	// cut-off gzip stream, reported as short data.
	garbageAfterGzip := compressed && errors.Is(dataErr, gzip.ErrHeader)
	if dataErr != nil && !garbageAfterGzip && !errors.Is(dataErr, io.ErrUnexpectedEOF) {
		return nil, readErr("data", dataErr)
	}
	if int64(buf.Len()) < total {
		return nil, &IDXError{File: name, What: "truncated data",
			Want: fmt.Sprintf("%d data bytes for shape %s", total, tensor.FormatShape(dims)),
			Got:  fmt.Sprintf("%d bytes", buf.Len())}
	}
	extra, err := int64(0), error(nil)
	if garbageAfterGzip {
		err = dataErr
	} else {
		extra, err = io.Copy(io.Discard, src)
	}
	switch {
	case err == nil && extra == 0:
		// Exactly the promised bytes.
	case err == nil, errors.Is(err, io.ErrUnexpectedEOF) && extra > 0:
		return nil, &IDXError{File: name, What: "trailing garbage",
			Want: fmt.Sprintf("end of file after %d data bytes for shape %s", total, tensor.FormatShape(dims)),
			Got:  fmt.Sprintf("%d extra bytes", extra)}
	case compressed && errors.Is(err, gzip.ErrHeader):
		return nil, &IDXError{File: name, What: "trailing garbage",
			Want: "end of file after the gzip stream", Got: "further bytes that are not a gzip stream"}
	case compressed && errors.Is(err, io.ErrUnexpectedEOF):
		return nil, &IDXError{File: name, What: "truncated gzip stream",
			Want: "the gzip trailer (checksum and size) after the data", Got: "end of file"}
	default:
		return nil, readErr("end of file", err)
	}
	return &IDX{Dims: dims, Data: buf.Bytes()}, nil
}

// EncodeIDX writes dims and data as an uncompressed IDX stream of unsigned
// bytes, the format MNIST uses, so that any MNIST-reading tool can load it.
func EncodeIDX(w io.Writer, dims []int, data []uint8) error {
	if err := checkIDXShape(dims, data); err != nil {
		return err
	}
	hdr := make([]byte, 4+4*len(dims))
	hdr[2] = TypeUint8
	hdr[3] = byte(len(dims))
	for i, d := range dims {
		binary.BigEndian.PutUint32(hdr[4+4*i:], uint32(d))
	}
	if _, err := w.Write(hdr); err != nil {
		return err
	}
	_, err := w.Write(data)
	return err
}

// checkIDXShape verifies that dims can be written as an IDX header and
// describe exactly len(data) bytes.
func checkIDXShape(dims []int, data []uint8) error {
	if len(dims) == 0 || len(dims) > 255 {
		return fmt.Errorf("data: IDX needs 1 to 255 dimensions, got %d", len(dims))
	}
	n := 1
	for _, d := range dims {
		if d < 0 || int64(d) > math.MaxUint32 {
			return fmt.Errorf("data: IDX dimension %d in %v out of range [0, %d]", d, dims, uint32(math.MaxUint32))
		}
		n *= d
	}
	if n != len(data) {
		return fmt.Errorf("data: IDX shape %s needs %d bytes, got %d", tensor.FormatShape(dims), n, len(data))
	}
	return nil
}

// WriteIDX writes dims and data as an IDX file, atomically: the file at path
// is either left as it was or replaced whole. A path ending in ".gz" is
// gzip-compressed, as the MNIST distribution files are.
func WriteIDX(path string, dims []int, data []uint8) error {
	if err := checkIDXShape(dims, data); err != nil {
		return fmt.Errorf("%w (writing %s)", err, path)
	}
	return atomicfile.WriteFile(path, func(w io.Writer) error {
		if !strings.HasSuffix(path, ".gz") {
			return EncodeIDX(w, dims, data)
		}
		zw := gzip.NewWriter(w)
		if err := EncodeIDX(zw, dims, data); err != nil {
			return err
		}
		return zw.Close()
	})
}

// WriteImages exports images with values in [0, 1] (for example generated
// samples) as an IDX file of N×H×W unsigned bytes: values are clamped to
// [0, 1], scaled to 0…255 and rounded; NaN becomes 0. images must have shape
// [N, 1, H, W] or [N, H, W]. The write is atomic, and gzip-compressed when
// path ends in ".gz".
func WriteImages(path string, images *tensor.Tensor[float32]) error {
	if images == nil {
		return fmt.Errorf("data: WriteImages %s: nil images tensor", path)
	}
	s := images.Shape()
	var dims []int
	switch {
	case len(s) == 4 && s[1] == 1:
		dims = []int{s[0], s[2], s[3]}
	case len(s) == 3:
		dims = []int{s[0], s[1], s[2]}
	default:
		return fmt.Errorf("data: WriteImages %s: images have shape %s, want [N×1×H×W] or [N×H×W]", path, tensor.FormatShape(s))
	}
	src := images.Data()
	out := make([]uint8, len(src))
	for i, v := range src {
		out[i] = toByte(v)
	}
	return WriteIDX(path, dims, out)
}

// toByte maps [0, 1] to 0…255 with rounding and clamping; NaN maps to 0.
func toByte(v float32) uint8 {
	if !(v > 0) { // also catches NaN
		return 0
	}
	if v >= 1 {
		return 255
	}
	return uint8(v*255 + 0.5)
}
