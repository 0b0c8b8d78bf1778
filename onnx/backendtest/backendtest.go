// Package backendtest runs ONNX backend-test directories through the
// importer: the layout of ONNX's own test data (onnx/backend/test/data)
// and of the directories backprop export --test-data writes,
//
//	DIR/model.onnx
//	DIR/test_data_set_0/input_0.pb, input_1.pb, …, output_0.pb, …
//	DIR/test_data_set_1/…
//
// Every data set's inputs are fed to the imported model and its outputs
// compared with the stored ones as ONNX's backend tests compare them
// (numpy.testing.assert_allclose: |got − want| ≤ atol + rtol·|want|, NaN
// equal to NaN; integer and boolean outputs exactly). A model the importer
// refuses as unsupported is counted apart from a failure.
package backendtest

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/backprop-dev/backprop/onnx"
	"github.com/backprop-dev/backprop/tensor"
)

// ONNX's backend-test tolerances.
const (
	DefaultRTol = 1e-3
	DefaultATol = 1e-7
)

// Options set the comparison tolerances; zero values mean ONNX's.
type Options struct {
	RTol, ATol float64
	// Float32 computes in float32 instead of float64.
	Float32 bool
}

// Status is the outcome of one case.
type Status int

// The outcomes of a case.
const (
	Passed Status = iota
	Failed
	Unsupported
)

// String is the status as the report prints it.
func (s Status) String() string {
	return [...]string{"PASS", "FAIL", "UNSUPPORTED"}[s]
}

// Result is the outcome of one data set of one test directory.
type Result struct {
	Dir    string // the test directory
	Case   string // the data set's directory name, e.g. test_data_set_0; empty when the model did not load
	Status Status
	Detail string // why it failed or what is unsupported
}

// Name is the case as the report names it: directory/data set.
func (r Result) Name() string {
	if r.Case == "" {
		return r.Dir
	}
	return filepath.Join(r.Dir, r.Case)
}

// Summary counts results by status.
type Summary struct{ Passed, Failed, Unsupported int }

// Add counts r.
func (s *Summary) Add(r Result) {
	switch r.Status {
	case Passed:
		s.Passed++
	case Failed:
		s.Failed++
	default:
		s.Unsupported++
	}
}

// String is the report's summary line.
func (s Summary) String() string {
	return fmt.Sprintf("%d passed, %d failed, %d unsupported", s.Passed, s.Failed, s.Unsupported)
}

// FindDirs expands each path into test directories: a directory holding
// model.onnx is one; otherwise each of its subdirectories holding a
// model.onnx is, in name order (a suite such as ONNX's data/node).
func FindDirs(paths []string) ([]string, error) {
	var out []string
	for _, p := range paths {
		if _, err := os.Stat(filepath.Join(p, "model.onnx")); err == nil {
			out = append(out, p)
			continue
		}
		ents, err := os.ReadDir(p)
		if err != nil {
			return nil, err
		}
		n := len(out)
		for _, e := range ents {
			if !e.IsDir() {
				continue
			}
			d := filepath.Join(p, e.Name())
			if _, err := os.Stat(filepath.Join(d, "model.onnx")); err == nil {
				out = append(out, d)
			}
		}
		if len(out) == n {
			return nil, fmt.Errorf("%s: neither a test directory (no model.onnx) nor a directory of them", p)
		}
	}
	return out, nil
}

// RunDir runs every data set of test directory dir.
func RunDir(dir string, opt Options) []Result {
	m, err := onnx.Load(filepath.Join(dir, "model.onnx"))
	if err != nil {
		return []Result{classify(Result{Dir: dir}, err)}
	}
	sets, err := filepath.Glob(filepath.Join(dir, "test_data_set_*"))
	if err != nil || len(sets) == 0 {
		return []Result{{Dir: dir, Status: Failed, Detail: "no test_data_set_* directory"}}
	}
	sort.Strings(sets)
	var out []Result
	for _, s := range sets {
		r := Result{Dir: dir, Case: filepath.Base(s)}
		if err := runSet(m, s, opt); err != nil {
			r = classify(r, err)
		}
		out = append(out, r)
	}
	return out
}

func classify(r Result, err error) Result {
	r.Detail = err.Error()
	r.Status = Failed
	if onnx.IsUnsupported(err) {
		r.Status = Unsupported
	}
	return r
}

// readSet reads prefix_0.pb, prefix_1.pb, … of a data set directory.
func readSet(dir, prefix string) ([]*onnx.Tensor, error) {
	files, err := filepath.Glob(filepath.Join(dir, prefix+"_*.pb"))
	if err != nil {
		return nil, err
	}
	index := func(f string) int {
		n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(filepath.Base(f), prefix+"_"), ".pb"))
		return n
	}
	slices.SortFunc(files, func(a, b string) int { return index(a) - index(b) })
	var out []*onnx.Tensor
	for i, f := range files {
		if index(f) != i {
			return nil, fmt.Errorf("%s: %s_%d.pb is missing", dir, prefix, i)
		}
		t, err := onnx.ReadTensorFile(f)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		out = append(out, t)
	}
	return out, nil
}

func runSet(m *onnx.Model, dir string, opt Options) error {
	if err := m.Supported(); err != nil {
		return err
	}
	inputs, err := readSet(dir, "input")
	if err != nil {
		return err
	}
	want, err := readSet(dir, "output")
	if err != nil {
		return err
	}
	var got []*onnx.Tensor
	if opt.Float32 {
		got, err = Run[float32](m, inputs)
	} else {
		got, err = Run[float64](m, inputs)
	}
	if err != nil {
		return err
	}
	if len(got) != len(want) {
		return fmt.Errorf("the model has %d outputs, the data set %d", len(got), len(want))
	}
	rtol, atol := opt.RTol, opt.ATol
	if rtol == 0 && atol == 0 {
		rtol, atol = DefaultRTol, DefaultATol
	}
	var errs []error
	for i := range want {
		if err := Compare(got[i], want[i], rtol, atol); err != nil {
			errs = append(errs, fmt.Errorf("output %d (%q): %w", i, got[i].Name, err))
		}
	}
	return errors.Join(errs...)
}

// Run imports m with the inputs, matched to the model's inputs by
// position, and returns its outputs as tensors (FLOAT or DOUBLE as the
// model declares them).
func Run[T tensor.Float](m *onnx.Model, inputs []*onnx.Tensor) ([]*onnx.Tensor, error) {
	want := m.Inputs()
	if len(inputs) < len(want) {
		// trailing optional inputs may be left out
		inputs = append(slices.Clone(inputs), make([]*onnx.Tensor, len(want)-len(inputs))...)
	}
	g, err := onnx.Import[T](m, inputs, onnx.Options{})
	if err != nil {
		return nil, err
	}
	decl := m.Outputs()
	var out []*onnx.Tensor
	for i, v := range g.Outputs {
		if v.Static != nil {
			t := *v.Static
			t.Name = v.Name
			out = append(out, &t)
			continue
		}
		t := onnx.FromTensor(v.Name, v.Var.Value)
		if decl[i].Type.IsFloat() {
			t.Type = decl[i].Type
		}
		out = append(out, t)
	}
	return out, nil
}

// Compare checks got against want: the same shape, and for floating-point
// data |got − want| ≤ atol + rtol·|want| element by element (NaN matches
// NaN, an infinity only itself); integer and boolean data must be equal.
// The error names the first mismatching element and the largest error.
func Compare(got, want *onnx.Tensor, rtol, atol float64) error {
	if !slices.Equal(got.Shape, want.Shape) {
		return fmt.Errorf("shape %s, want %s", tensor.FormatShape(got.Shape), tensor.FormatShape(want.Shape))
	}
	if want.Type.IsFloat() != got.Type.IsFloat() {
		return fmt.Errorf("element type %s, want %s", got.Type, want.Type)
	}
	if !want.Type.IsFloat() {
		for i := range want.Ints {
			if got.Ints[i] != want.Ints[i] {
				return fmt.Errorf("element %v is %d, want %d", tensor.Index(want.Shape, i), got.Ints[i], want.Ints[i])
			}
		}
		return nil
	}
	bad, first, worst := 0, -1, 0.0
	for i, w := range want.Floats {
		g := got.Floats[i]
		ok := g == w || math.IsNaN(g) && math.IsNaN(w) ||
			!math.IsInf(w, 0) && math.Abs(g-w) <= atol+rtol*math.Abs(w)
		if !ok {
			bad++
			if first < 0 {
				first = i
			}
			if d := math.Abs(g - w); d > worst || math.IsNaN(d) {
				worst = d
			}
		}
	}
	if bad > 0 {
		return fmt.Errorf("%d of %d elements differ beyond rtol %g, atol %g: element %v is %.9g, want %.9g; largest difference %.3g",
			bad, len(want.Floats), rtol, atol, tensor.Index(want.Shape, first), got.Floats[first], want.Floats[first], worst)
	}
	return nil
}
