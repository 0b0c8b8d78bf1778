package training

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/backprop-dev/backprop/internal/atomicfile"
	"github.com/backprop-dev/backprop/safetensors"
	"github.com/backprop-dev/backprop/tensor"
)

// CheckpointFile is the name of the latest checkpoint in a run's output
// directory, for every trainer.
const CheckpointFile = "checkpoint.safetensors"

// MetaFormat is the metadata key of a checkpoint's format: "<kind>/v<N>",
// such as "backprop-dcgan28/v2". A reader accepts the versions it knows and
// refuses the others, naming the version that wrote the file.
const MetaFormat = "format"

// Format is a checkpoint format: what kind of file it is and the version
// of its layout and meaning. A version changes whenever a file of the old
// one would load into something else than what wrote it (new tensors, new
// seeding of the random streams it continues).
type Format struct {
	Kind    string // "backprop-autoencoder", "backprop-dcgan28", …
	Version int    // 1, 2, …
}

// String renders the metadata value: "backprop-dcgan28/v2".
func (f Format) String() string { return fmt.Sprintf("%s/v%d", f.Kind, f.Version) }

// ParseFormat reads a MetaFormat value; ok is false when s is not of the
// form "<kind>/v<N>".
func ParseFormat(s string) (f Format, ok bool) {
	kind, v, found := strings.Cut(s, "/v")
	n, err := strconv.Atoi(v)
	if !found || err != nil || n < 1 || kind == "" {
		return Format{}, false
	}
	return Format{Kind: kind, Version: n}, true
}

// FormatError is a checkpoint whose format this version of backprop does
// not read: of another kind, or of a version older or newer than the
// versions it knows.
type FormatError struct {
	Got    string // the file's MetaFormat value ("" when it has none)
	Want   Format // the newest format of the expected kind
	Oldest int    // the oldest version still read
}

// Error names the format found and the versions read, and says what to do.
func (e *FormatError) Error() string {
	f, ok := ParseFormat(e.Got)
	switch {
	case e.Got == "":
		return fmt.Sprintf("it has no %q metadata: it was not written by backprop as a %s checkpoint", MetaFormat, e.Want.Kind)
	case !ok || f.Kind != e.Want.Kind:
		return fmt.Sprintf("its format is %q, not %s: it is a checkpoint of another model or tool", e.Got, e.Want.Kind)
	case f.Version > e.Want.Version:
		return fmt.Sprintf("it was written by a newer backprop (format %s); this version reads %s", e.Got, e.versions())
	}
	return fmt.Sprintf("it was written by an older backprop (format %s), which this version no longer reads (it reads %s)", e.Got, e.versions())
}

// versions lists the versions read: "backprop-dcgan28/v1 to v2".
func (e *FormatError) versions() string {
	if e.Oldest >= e.Want.Version {
		return e.Want.String()
	}
	return fmt.Sprintf("%s/v%d to v%d", e.Want.Kind, e.Oldest, e.Want.Version)
}

// CheckFormat returns the version of a checkpoint whose metadata md should
// hold a format of want's kind, between oldest and want.Version; any other
// value is a *FormatError. A file without a format gets version 0, which
// the caller treats as it sees fit (files written before formats were
// versioned).
func CheckFormat(md map[string]string, want Format, oldest int) (int, error) {
	s, ok := md[MetaFormat]
	if !ok {
		return 0, nil
	}
	f, ok := ParseFormat(s)
	if !ok || f.Kind != want.Kind || f.Version < oldest || f.Version > want.Version {
		return 0, &FormatError{Got: s, Want: want, Oldest: oldest}
	}
	return f.Version, nil
}

// SaveCheckpoint writes f to path under format, atomically: it goes to a
// temporary file in the same directory, is synced and renamed over path,
// so a crash, a kill or a full disk at any moment leaves the previous
// checkpoint at path intact. wrap, if not nil, wraps the writer (tests use
// it to make a write fail part-way).
func SaveCheckpoint(path string, format Format, f *safetensors.File, wrap func(io.Writer) io.Writer) error {
	if f.Metadata == nil {
		f.Metadata = map[string]string{}
	}
	f.Metadata[MetaFormat] = format.String()
	f.Source = path
	err := atomicfile.WriteFile(path, func(w io.Writer) error {
		if wrap != nil {
			w = wrap(w)
		}
		_, err := f.WriteTo(w)
		return err
	})
	return FileError(path, err)
}

// SaveError is a checkpoint or picture that could not be written; whatever
// was at Path before is intact.
type SaveError struct {
	Path string
	Err  error
}

// Error names the file and the problem, without temporary file names.
func (e *SaveError) Error() string { return fmt.Sprintf("cannot write %s: %v", e.Path, e.Err) }

// Unwrap returns the problem.
func (e *SaveError) Unwrap() error { return e.Err }

// FileError returns nil for a nil err, else err as a *SaveError of path:
// the file named once, in the user's words, without the temporary file's
// name or the package that wrote it ("cannot write runs/gan/loss.png: no
// space left on device"). Errors of a write function (a full disk under
// the encoder) keep their identity for errors.Is.
func FileError(path string, err error) error {
	if err == nil {
		return nil
	}
	var se *SaveError
	if errors.As(err, &se) {
		return err
	}
	return &SaveError{Path: path, Err: unwrapAtomic(err)}
}

// unwrapAtomic reduces an atomicfile error to its cause: the operating
// system's error without the temporary file's name (a *PathError's Err),
// so that the user reads "no space left on device".
func unwrapAtomic(err error) error {
	for strings.HasPrefix(err.Error(), "atomicfile: ") {
		inner := errors.Unwrap(err)
		if inner == nil {
			msg := strings.TrimPrefix(err.Error(), "atomicfile: ")
			return errors.New(msg)
		}
		err = inner
	}
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	var le *os.LinkError
	if errors.As(err, &le) {
		return le.Err
	}
	return err
}

// NonFiniteError is a checkpoint tensor holding NaN or an infinity: the
// weights of a run that diverged, or a corrupt file. Loading it would only
// produce NaN images and losses, so readers refuse it.
type NonFiniteError struct {
	Tensor string  // the tensor's name
	Index  []int   // the first bad element's index
	Shape  []int   // the tensor's shape
	Value  float64 // NaN, +Inf or −Inf
	Count  int     // how many of its elements are not finite
}

// Error names the tensor, the element and the count.
func (e *NonFiniteError) Error() string {
	idx := make([]string, len(e.Index))
	for i, v := range e.Index {
		idx[i] = strconv.Itoa(v)
	}
	return fmt.Sprintf("tensor %q holds %v at [%s] (%d of its %d values are not finite): the run that wrote it diverged, or the file is corrupt",
		e.Tensor, e.Value, strings.Join(idx, ","), e.Count, tensor.NumElements(e.Shape))
}

// CheckFinite reports the first tensor of f (in name order) holding NaN or
// an infinity, among the F32 and F64 ones: weights, optimizer state, loss
// history.
func CheckFinite(f *safetensors.File) error {
	for _, name := range f.Names() {
		t, _ := f.Get(name)
		var size int
		var at func(i int) float64
		switch t.DType {
		case safetensors.F32:
			size = 4
			at = func(i int) float64 { return float64(math.Float32frombits(binary.LittleEndian.Uint32(t.Data[4*i:]))) }
		case safetensors.F64:
			size = 8
			at = func(i int) float64 { return math.Float64frombits(binary.LittleEndian.Uint64(t.Data[8*i:])) }
		default:
			continue
		}
		var bad *NonFiniteError
		for i := range len(t.Data) / size {
			if v := at(i); math.IsNaN(v) || math.IsInf(v, 0) {
				if bad == nil {
					bad = &NonFiniteError{Tensor: name, Index: unravel(i, t.Shape), Shape: t.Shape, Value: v}
				}
				bad.Count++
			}
		}
		if bad != nil {
			return bad
		}
	}
	return nil
}

// unravel turns a flat row-major index into one index per dimension.
func unravel(i int, shape []int) []int {
	idx := make([]int, len(shape))
	for d := len(shape) - 1; d >= 0; d-- {
		if shape[d] > 0 {
			idx[d] = i % shape[d]
			i /= shape[d]
		}
	}
	return idx
}

// ResumeFile is the checkpoint `--resume DIR` continues from: DIR's
// CheckpointFile, or DIR itself when it is a file.
func ResumeFile(dir string) string {
	if st, err := os.Stat(dir); err == nil && !st.IsDir() {
		return dir
	}
	return filepath.Join(dir, CheckpointFile)
}

// MismatchError is a setting given for a resumed run that differs from the
// run saved in the checkpoint. A resumed run keeps the settings it was
// started with, since any change (another batch size, seed, data set…)
// would make it a different run.
type MismatchError struct {
	Flag       string // the command-line flag of the setting: "--hidden"
	Checkpoint string // the checkpoint's value
	Given      string // the value given
	Path       string // the checkpoint file
	Note       string // what the difference means, when the values alone do not say it; may be ""
}

// Error implements error.
func (e *MismatchError) Error() string {
	note := ""
	if e.Note != "" {
		note = " (" + e.Note + ")"
	}
	return fmt.Sprintf("%s %s differs from the checkpoint's %s%s in %s: a resumed run keeps the settings it was started with; leave %s out or give %s",
		e.Flag, e.Given, e.Checkpoint, note, e.Path, e.Flag, e.Checkpoint)
}
