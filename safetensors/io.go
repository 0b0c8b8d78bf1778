package safetensors

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/backprop-dev/backprop/internal/atomicfile"
	"github.com/backprop-dev/backprop/tensor"
)

// MaxHeaderSize is the largest JSON header accepted (100 MB, the limit the
// reference implementation uses); it stops a corrupt length field from
// making the reader allocate gigabytes.
const MaxHeaderSize = 100_000_000

// Write stores float32 tensors and optional metadata in a safetensors file
// at path, atomically: an interrupted or failed write leaves any previous
// file intact.
func Write(path string, tensors map[string]*tensor.Tensor[float32], meta map[string]string) error {
	f := NewFile()
	f.Source = path
	for k, v := range meta {
		f.Metadata[k] = v
	}
	names := make([]string, 0, len(tensors))
	for k := range tensors {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		if err := f.AddF32(k, tensors[k]); err != nil {
			return err
		}
	}
	return f.WriteFile(path)
}

// WriteFile stores f at path atomically (see package atomicfile).
func (f *File) WriteFile(path string) error {
	return atomicfile.WriteFile(path, func(w io.Writer) error {
		_, err := f.WriteTo(w)
		return err
	})
}

// header builds the JSON header, padded with spaces to a multiple of 8
// bytes so that the data section starts aligned. Tensors are laid out in
// name order, which makes the output deterministic.
func (f *File) header() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	first := true
	if len(f.Metadata) > 0 {
		m, err := json.Marshal(f.Metadata) // sorted keys
		if err != nil {
			return nil, fmt.Errorf("%s: metadata: %w", f.where(), err)
		}
		b.WriteString(`"__metadata__":`)
		b.Write(m)
		first = false
	}
	var off uint64
	for _, name := range f.Names() {
		t := f.tensors[name]
		if err := checkTensor(t); err != nil { // Data may have changed since Add
			return nil, fmt.Errorf("%s: tensor %q: %w", f.where(), name, err)
		}
		if !first {
			b.WriteByte(',')
		}
		first = false
		key, err := json.Marshal(name)
		if err != nil {
			return nil, err
		}
		shape := t.Shape
		if shape == nil {
			shape = []int{}
		}
		sh, err := json.Marshal(shape)
		if err != nil {
			return nil, err
		}
		end := off + uint64(len(t.Data))
		fmt.Fprintf(&b, `%s:{"dtype":%q,"shape":%s,"data_offsets":[%d,%d]}`, key, t.DType, sh, off, end)
		off = end
	}
	b.WriteByte('}')
	for b.Len()%8 != 0 {
		b.WriteByte(' ')
	}
	return b.Bytes(), nil
}

// WriteTo encodes f in the safetensors format to w. It implements
// io.WriterTo.
func (f *File) WriteTo(w io.Writer) (int64, error) {
	hdr, err := f.header()
	if err != nil {
		return 0, err
	}
	var total int64
	var lenBuf [8]byte
	binary.LittleEndian.PutUint64(lenBuf[:], uint64(len(hdr)))
	for _, p := range [][]byte{lenBuf[:], hdr} {
		n, err := w.Write(p)
		total += int64(n)
		if err != nil {
			return total, err
		}
	}
	for _, name := range f.Names() {
		n, err := w.Write(f.tensors[name].Data)
		total += int64(n)
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

// Read loads and validates the safetensors file at path. It checks that the
// header length fits in the file, the header is a JSON object of known
// fields, each dtype is known, each tensor's byte range matches its shape
// and dtype and lies inside the data section, and the ranges neither overlap
// nor leave gaps. Errors name the file and, where one is at fault, the
// tensor.
func Read(path string) (*File, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	defer fh.Close()
	st, err := fh.Stat()
	if err != nil {
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	return decode(fh, st.Size(), path)
}

// Decode reads and validates a safetensors stream from r (see Read); name
// identifies it in error messages.
func Decode(r io.Reader, name string) (*File, error) {
	return decode(r, -1, name)
}

// decode reads a safetensors stream; size is the total byte count when
// known (a file), or -1 (a stream, read to its end).
func decode(r io.Reader, size int64, name string) (*File, error) {
	where := "safetensors " + name
	var lenBuf [8]byte
	if n, err := io.ReadFull(r, lenBuf[:]); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, fmt.Errorf("%s: file too short: want at least 8 bytes for the header length, got %d", where, n)
		}
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	hlen := binary.LittleEndian.Uint64(lenBuf[:])
	if hlen < 2 {
		return nil, fmt.Errorf("%s: header length %d: want at least 2 bytes (\"{}\")", where, hlen)
	}
	if hlen > MaxHeaderSize {
		return nil, fmt.Errorf("%s: header length %d exceeds the %d-byte limit (corrupt or not a safetensors file)", where, hlen, MaxHeaderSize)
	}
	if size >= 0 && hlen > uint64(size-8) {
		return nil, fmt.Errorf("%s: header length %d exceeds the %d bytes that follow it (corrupt or truncated file)", where, hlen, size-8)
	}
	// Read through a growing buffer rather than allocating hlen up front: a
	// stream may be much shorter than its length field claims.
	var hb bytes.Buffer
	if _, err := hb.ReadFrom(io.LimitReader(r, int64(hlen))); err != nil {
		return nil, fmt.Errorf("%s: reading header: %w", where, err)
	}
	if uint64(hb.Len()) < hlen {
		return nil, fmt.Errorf("%s: truncated header: want %d bytes, got %d", where, hlen, hb.Len())
	}
	var data []byte
	if size >= 0 {
		data = make([]byte, size-8-int64(hlen))
		if n, err := io.ReadFull(r, data); err != nil {
			return nil, fmt.Errorf("%s: reading data section: want %d bytes, got %d: %w", where, len(data), n, err)
		}
	} else {
		var err error
		if data, err = io.ReadAll(r); err != nil {
			return nil, fmt.Errorf("%s: reading data section: %w", where, err)
		}
	}
	f, err := parse(hb.Bytes(), data, where)
	if err != nil {
		return nil, err
	}
	f.Source = name
	return f, nil
}

// entry is one tensor's header record. Numbers are kept as json.Number so
// that negative, fractional or huge values get a precise error.
type entry struct {
	DType       *string       `json:"dtype"`
	Shape       []json.Number `json:"shape"`
	DataOffsets []json.Number `json:"data_offsets"`
}

// span is a tensor's byte range in the data section, for the coverage check.
type span struct {
	name       string
	begin, end uint64
}

// parse validates the header against the data section and builds the File.
func parse(hdr, data []byte, where string) (*File, error) {
	if !utf8.Valid(hdr) {
		return nil, fmt.Errorf("%s: header is not valid UTF-8", where)
	}
	if hdr[0] != '{' {
		return nil, fmt.Errorf("%s: header must start with '{', got %q (not a safetensors file?)", where, hdr[0])
	}
	dec := json.NewDecoder(bytes.NewReader(hdr))
	dec.UseNumber()
	raw := map[string]json.RawMessage{}
	var order []string
	if _, err := dec.Token(); err != nil { // the opening '{'
		return nil, fmt.Errorf("%s: header is not valid JSON: %w", where, err)
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("%s: header is not valid JSON: %w", where, err)
		}
		key, ok := tok.(string)
		if !ok { // the decoder only yields strings here; kept as a guard
			return nil, fmt.Errorf("%s: header is not valid JSON: object key %v is not a string", where, tok)
		}
		var val json.RawMessage
		if err := dec.Decode(&val); err != nil {
			return nil, fmt.Errorf("%s: header is not valid JSON at key %q: %w", where, key, err)
		}
		if _, dup := raw[key]; dup {
			return nil, fmt.Errorf("%s: header names %q twice", where, key)
		}
		raw[key] = val
		order = append(order, key)
	}
	if _, err := dec.Token(); err != nil { // the closing '}'
		return nil, fmt.Errorf("%s: header is not valid JSON: %w", where, err)
	}
	rest := hdr[dec.InputOffset():]
	if len(bytes.TrimLeft(rest, " \t\r\n")) != 0 {
		return nil, fmt.Errorf("%s: header has %d bytes of non-space text after the JSON object", where, len(bytes.TrimRight(rest, " \t\r\n")))
	}

	f := NewFile()
	var spans []span
	for _, name := range order {
		val := raw[name]
		if name == metaKey {
			if err := json.Unmarshal(val, &f.Metadata); err != nil {
				return nil, fmt.Errorf("%s: __metadata__ must map strings to strings: %w", where, err)
			}
			if f.Metadata == nil { // "__metadata__": null
				f.Metadata = map[string]string{}
			}
			continue
		}
		t, sp, err := parseEntry(val, data)
		if err != nil {
			return nil, fmt.Errorf("%s: tensor %q: %w", where, name, err)
		}
		sp.name = name
		spans = append(spans, sp)
		f.tensors[name] = t
	}

	// The data section must be covered exactly: sorted by offset, each
	// tensor starts where the previous one ended.
	sort.Slice(spans, func(i, j int) bool {
		if spans[i].begin != spans[j].begin {
			return spans[i].begin < spans[j].begin
		}
		return spans[i].end < spans[j].end
	})
	var pos uint64
	prev := ""
	for _, s := range spans {
		switch {
		case s.begin < pos:
			return nil, fmt.Errorf("%s: tensor %q bytes [%d, %d) overlap tensor %q, which ends at %d", where, s.name, s.begin, s.end, prev, pos)
		case s.begin > pos:
			return nil, fmt.Errorf("%s: data bytes [%d, %d) belong to no tensor (gap before tensor %q)", where, pos, s.begin, s.name)
		}
		pos, prev = s.end, s.name
	}
	if pos != uint64(len(data)) {
		return nil, fmt.Errorf("%s: data section has %d bytes but the tensors cover only %d", where, len(data), pos)
	}
	return f, nil
}

// parseEntry validates one tensor record and slices its bytes out of data.
func parseEntry(val json.RawMessage, data []byte) (*Tensor, span, error) {
	if t := bytes.TrimLeft(val, " \t\r\n"); len(t) == 0 || t[0] != '{' {
		return nil, span{}, fmt.Errorf("header record %s is not a JSON object", abbreviate(val))
	}
	var e entry
	d := json.NewDecoder(bytes.NewReader(val))
	d.DisallowUnknownFields()
	if err := d.Decode(&e); err != nil {
		return nil, span{}, fmt.Errorf("bad header record %s: %w", abbreviate(val), err)
	}
	var missing []string
	if e.DType == nil {
		missing = append(missing, `"dtype"`)
	}
	if e.Shape == nil {
		missing = append(missing, `"shape"`)
	}
	if e.DataOffsets == nil {
		missing = append(missing, `"data_offsets"`)
	}
	if len(missing) > 0 {
		return nil, span{}, fmt.Errorf("header record %s lacks %s", abbreviate(val), strings.Join(missing, " and "))
	}
	size, ok := dtypeSizes[*e.DType]
	if !ok {
		return nil, span{}, fmt.Errorf("unknown dtype %q (known: %s)", *e.DType, knownDTypes())
	}
	shape := make([]int, len(e.Shape))
	for i, s := range e.Shape {
		v, err := strconv.ParseInt(s.String(), 10, 64)
		if err != nil || v < 0 {
			return nil, span{}, fmt.Errorf("shape[%d] is %s, want a non-negative integer", i, s)
		}
		shape[i] = int(v)
	}
	n, err := elementCount(shape)
	if err != nil {
		return nil, span{}, err
	}
	if len(e.DataOffsets) != 2 {
		return nil, span{}, fmt.Errorf("data_offsets has %d values, want 2 ([begin, end])", len(e.DataOffsets))
	}
	var off [2]uint64
	for i, s := range e.DataOffsets {
		v, err := strconv.ParseUint(s.String(), 10, 64)
		if err != nil {
			return nil, span{}, fmt.Errorf("data_offsets[%d] is %s, want a non-negative integer", i, s)
		}
		off[i] = v
	}
	begin, end := off[0], off[1]
	if end < begin {
		return nil, span{}, fmt.Errorf("data_offsets [%d, %d] end before they begin", begin, end)
	}
	if end > uint64(len(data)) {
		return nil, span{}, fmt.Errorf("data_offsets [%d, %d] run past the %d-byte data section", begin, end, len(data))
	}
	if n > uint64(len(data))/uint64(size) || n*uint64(size) != end-begin {
		return nil, span{}, fmt.Errorf("shape %s of %s needs %d×%d bytes, data_offsets [%d, %d] give %d",
			tensor.FormatShape(shape), *e.DType, n, size, begin, end, end-begin)
	}
	t := &Tensor{DType: *e.DType, Shape: shape, Data: data[begin:end:end]}
	return t, span{begin: begin, end: end}, nil
}

// abbreviate shortens a raw JSON value for an error message.
func abbreviate(v json.RawMessage) string {
	const max = 80
	if len(v) <= max {
		return string(v)
	}
	return string(v[:max]) + "…"
}
