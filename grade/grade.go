// Package grade checks a student's numbers against an answer key made by
// `backprop variant`. The student fills an answers file shaped like the
// key's forward values and gradients (any part of it: a null or a missing
// name is simply not graded). Grade reports every wrong number with the
// expected value, and the first step of the worked trace — forward steps in
// order, then backward steps — where the student's numbers leave the
// correct path, with the worked line that computes the first wrong element
// there. When the key carries its spec, Grade also tries the other readings
// of the problem (reshape order, kernel orientation, label) and says when
// the student's numbers fit one of those instead.
package grade

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"strings"

	"github.com/backprop-dev/backprop/solve"
	"github.com/backprop-dev/backprop/spec"
	"github.com/backprop-dev/backprop/tensor"
	"github.com/backprop-dev/backprop/variant"
)

// Key is a key.json as `backprop variant` writes it.
type Key struct {
	Format      int                        `json:"backprop_key"`
	Variant     string                     `json:"variant"`
	Problem     string                     `json:"problem"`
	Seed        uint64                     `json:"seed"`
	Title       string                     `json:"title"`
	Conventions spec.Conventions           `json:"conventions"`
	Forward     map[string]json.RawMessage `json:"forward"`
	Gradients   map[string]json.RawMessage `json:"gradients"`
	Steps       []variant.KeyStep          `json:"steps"`
	Spec        string                     `json:"spec"`
}

// Answers is a student's answers file: values by name, in the key's shapes
// (or flat), null for "not answered". Elements optionally gives single
// elements by their trace label, e.g. "∂J/∂u2[1,2,3]" (or "dJ/du2[1,2,3]"),
// for the intermediate steps that forward and gradients do not hold.
type Answers struct {
	Variant   string                     `json:"variant"`
	Forward   map[string]json.RawMessage `json:"forward"`
	Gradients map[string]json.RawMessage `json:"gradients"`
	Elements  map[string]*float64        `json:"elements"`
}

// Options set the tolerance. An answer is right when
// |got − expected| ≤ Rel·max(|expected|, floor) + Abs, where floor is a
// thousandth of the largest magnitude in the expected tensor, so that a
// value that is zero only up to rounding is judged on its tensor's scale.
type Options struct {
	Rel float64 // relative tolerance (0: 1e-3)
	Abs float64 // absolute tolerance added to it (default 0)
}

// Wrong is one wrong number.
type Wrong struct {
	Name     string  `json:"name"`     // "forward.h2" or "gradients.w0", or "elements"
	Label    string  `json:"label"`    // the element: h2[1,2,3], ∂J/∂w0[1,2]
	Expected float64 `json:"expected"` // from the key
	Got      float64 `json:"got"`
}

// FirstStep is the first step of the trace where the answers go wrong.
type FirstStep struct {
	Pass    string  `json:"pass"` // forward or backward
	Step    int     `json:"step"` // 1-based within the pass, as `backprop solve` numbers it
	Target  string  `json:"target"`
	Formula string  `json:"formula"`
	Label   string  `json:"label"` // its first wrong element
	Got     float64 `json:"got"`
	Line    string  `json:"line"` // the worked line of that element
}

// Report is the result of grading.
type Report struct {
	Variant    string     `json:"variant"`
	Checked    int        `json:"checked"`
	Right      int        `json:"right"`
	Wrong      []Wrong    `json:"wrong"`
	Unanswered int        `json:"unanswered"`
	Problems   []string   `json:"problems"` // unknown names, wrong shapes, non-numbers
	First      *FirstStep `json:"firstWrongStep"`
	Hint       string     `json:"hint,omitempty"` // another reading of the problem the answers fit
}

// OK reports whether there is nothing wrong and at least one number was
// checked.
func (r *Report) OK() bool { return len(r.Wrong) == 0 && len(r.Problems) == 0 && r.Checked > 0 }

// ReadKey reads a key.json.
func ReadKey(path string) (*Key, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var k Key
	if err := json.Unmarshal(data, &k); err != nil {
		return nil, fmt.Errorf("%s: not a key: %v", path, err)
	}
	if k.Format != variant.KeyFormat || len(k.Steps) == 0 {
		return nil, fmt.Errorf("%s: not a key made by backprop variant (format %d, %d steps)", path, k.Format, len(k.Steps))
	}
	return &k, nil
}

// ReadAnswers reads an answers file; unknown top-level fields are errors,
// so a misspelt "gradient" does not silently grade nothing.
func ReadAnswers(path string) (*Answers, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var a Answers
	if err := dec.Decode(&a); err != nil {
		return nil, fmt.Errorf("%s: %v (want {\"forward\": {...}, \"gradients\": {...}})", path, err)
	}
	return &a, nil
}

// flatten reads a number, null or nested list; nil entries are unanswered.
func flatten(v any) ([]*float64, []int, error) {
	switch x := v.(type) {
	case nil:
		return []*float64{nil}, nil, nil
	case float64:
		return []*float64{&x}, nil, nil
	case []any:
		if len(x) == 0 {
			return nil, nil, fmt.Errorf("empty list")
		}
		var out []*float64
		var inner []int
		for i, e := range x {
			d, s, err := flatten(e)
			if err != nil {
				return nil, nil, err
			}
			if i == 0 {
				inner = s
			} else if !tensor.SameShape(s, inner) {
				return nil, nil, fmt.Errorf("ragged list")
			}
			out = append(out, d...)
		}
		return out, append([]int{len(x)}, inner...), nil
	default:
		return nil, nil, fmt.Errorf("%v is not a number", v)
	}
}

func numbers(raw json.RawMessage) ([]float64, []int, error) {
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, nil, err
	}
	p, shape, err := flatten(v)
	if err != nil {
		return nil, nil, err
	}
	out := make([]float64, len(p))
	for i, x := range p {
		if x == nil {
			return nil, nil, fmt.Errorf("null in the key")
		}
		out[i] = *x
	}
	return out, shape, nil
}

// Grade checks the answers against the key.
func Grade(k *Key, a *Answers, o Options) *Report {
	if o.Rel == 0 {
		o.Rel = 1e-3
	}
	r := &Report{Variant: k.Variant}
	if a.Variant != "" && k.Variant != "" && a.Variant != k.Variant {
		r.Problems = append(r.Problems, fmt.Sprintf("the answers are for variant %s, the key is for %s", a.Variant, k.Variant))
	}
	// the student's values by "forward.h0" / "gradients.w0"
	student := map[string][]*float64{}
	read := func(section string, keyVals, ans map[string]json.RawMessage) {
		names := make([]string, 0, len(ans))
		for n := range ans {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			kraw, ok := keyVals[n]
			if !ok {
				r.Problems = append(r.Problems, fmt.Sprintf("%s.%s: the key has no value of that name", section, n))
				continue
			}
			want, wshape, err := numbers(kraw)
			if err != nil {
				r.Problems = append(r.Problems, fmt.Sprintf("%s.%s: key: %v", section, n, err))
				continue
			}
			var v any
			if err := json.Unmarshal(ans[n], &v); err != nil {
				r.Problems = append(r.Problems, fmt.Sprintf("%s.%s: %v", section, n, err))
				continue
			}
			got, gshape, err := flatten(v)
			if err != nil {
				r.Problems = append(r.Problems, fmt.Sprintf("%s.%s: %v", section, n, err))
				continue
			}
			if len(got) != len(want) || !(tensor.SameShape(gshape, wshape) || len(gshape) == 1 || len(gshape) == 0) {
				r.Problems = append(r.Problems, fmt.Sprintf("%s.%s: shape %s, want %s", section, n, tensor.FormatShape(gshape), tensor.FormatShape(wshape)))
				continue
			}
			student[section+"."+n] = got
		}
	}
	read("forward", k.Forward, a.Forward)
	read("gradients", k.Gradients, a.Gradients)

	labels := map[string][2]int{} // normalized label → step, element
	for si, st := range k.Steps {
		for ei, e := range st.Elements {
			labels[normLabel(e.Label)] = [2]int{si, ei}
		}
	}
	byElement := map[[2]int]float64{}
	elemNames := make([]string, 0, len(a.Elements))
	for l := range a.Elements {
		elemNames = append(elemNames, l)
	}
	sort.Strings(elemNames)
	for _, l := range elemNames {
		v := a.Elements[l]
		pos, ok := labels[normLabel(l)]
		if !ok {
			r.Problems = append(r.Problems, fmt.Sprintf("elements: no element %q in the key's trace", l))
			continue
		}
		if v != nil {
			byElement[pos] = *v
		}
	}

	graded := map[string]bool{}
	for si, st := range k.Steps {
		vals := student[st.Answer]
		scale := 0.0
		for _, e := range st.Elements {
			scale = max(scale, math.Abs(e.Value))
		}
		if st.Answer != "" {
			graded[st.Answer] = true
		}
		for ei, e := range st.Elements {
			var got *float64
			if vals != nil && ei < len(vals) {
				got = vals[ei]
			}
			if v, ok := byElement[[2]int{si, ei}]; ok {
				got = &v
			}
			if got == nil {
				if st.Answer != "" {
					r.Unanswered++
				}
				continue
			}
			r.Checked++
			if within(*got, e.Value, scale, o) {
				r.Right++
				continue
			}
			name := st.Answer
			if name == "" {
				name = "elements"
			}
			r.Wrong = append(r.Wrong, Wrong{Name: name, Label: e.Label, Expected: e.Value, Got: *got})
			if r.First == nil {
				r.First = &FirstStep{Pass: st.Pass, Step: st.Step, Target: st.Target, Formula: st.Formula, Label: e.Label, Got: *got, Line: e.Line}
			}
		}
	}
	for name := range student {
		if !graded[name] {
			r.Problems = append(r.Problems, fmt.Sprintf("%s: not part of the key's trace", name))
		}
	}
	sort.Strings(r.Problems)
	if len(r.Wrong) > 0 && k.Spec != "" {
		r.Hint = otherReading(k, student, o)
	}
	return r
}

// within applies the tolerance of Options.
func within(got, want, scale float64, o Options) bool {
	return math.Abs(got-want) <= o.Rel*max(math.Abs(want), scale*1e-3)+o.Abs
}

// normLabel lets students write d for ∂.
func normLabel(l string) string {
	return strings.ReplaceAll(strings.ReplaceAll(l, " ", ""), "∂", "d")
}

// otherReading solves the key's spec under every other combination of
// conventions and names one under which all of the student's values are
// right.
func otherReading(k *Key, student map[string][]*float64, o Options) string {
	base, err := spec.Parse("key", []byte(k.Spec))
	if err != nil {
		return ""
	}
	for _, reshape := range []string{"row-major", "column-major"} {
		for _, kernel := range []string{"pytorch", "flipped"} {
			for _, label := range []string{"y0", "y1"} {
				c := spec.Conventions{Reshape: reshape, Kernel: kernel, Label: label}
				if c == k.Conventions {
					continue
				}
				s := base.WithValues(func(_ string, t *tensor.Tensor[float64]) *tensor.Tensor[float64] { return t })
				sol, err := solve.Solve(s, solve.Options{Reshape: reshape, Kernel: kernel, Label: label})
				if err != nil {
					continue
				}
				if fits(sol, student, o) {
					var diff []string
					if reshape != k.Conventions.Reshape {
						diff = append(diff, fmt.Sprintf("reshape order %s (the key uses %s)", reshape, k.Conventions.Reshape))
					}
					if kernel != k.Conventions.Kernel {
						diff = append(diff, fmt.Sprintf("kernel orientation %s (the key uses %s)", kernel, k.Conventions.Kernel))
					}
					if label != k.Conventions.Label {
						diff = append(diff, fmt.Sprintf("label %s (the key uses %s)", label, k.Conventions.Label))
					}
					return "your numbers are right for another reading of the problem: " + strings.Join(diff, ", ") +
						fmt.Sprintf("; see `backprop solve --spec spec.yaml --reshape %s --kernel %s --label %s`", reshape, kernel, label)
				}
			}
		}
	}
	return ""
}

func fits(sol *solve.Solution, student map[string][]*float64, o Options) bool {
	vals := map[string][]float64{}
	for _, f := range sol.Forward {
		vals["forward."+f.Name] = f.Value.Data
	}
	for _, g := range sol.Gradients {
		vals["gradients."+g.Name] = g.Value.Data
	}
	checked := false
	for name, got := range student {
		want, ok := vals[name]
		if !ok || len(want) != len(got) {
			return false
		}
		scale := 0.0
		for _, w := range want {
			scale = max(scale, math.Abs(w))
		}
		for i, g := range got {
			if g == nil {
				continue
			}
			checked = true
			if !within(*g, want[i], scale, o) {
				return false
			}
		}
	}
	return checked
}

// WriteText writes the report for a person.
func (r *Report) WriteText(w io.Writer, o Options) error {
	var b strings.Builder
	rel := o.Rel
	if rel == 0 {
		rel = 1e-3
	}
	fmt.Fprintf(&b, "Grading %s: %d numbers checked, %d right, %d wrong, %d not answered (relative tolerance %g", r.Variant, r.Checked, r.Right, len(r.Wrong), r.Unanswered, rel)
	if o.Abs > 0 {
		fmt.Fprintf(&b, ", absolute %g", o.Abs)
	}
	b.WriteString(")\n")
	for _, p := range r.Problems {
		fmt.Fprintf(&b, "problem: %s\n", p)
	}
	if r.Checked == 0 && len(r.Problems) == 0 {
		b.WriteString("nothing to grade: every number of the answers is null or missing\n")
	}
	if len(r.Wrong) > 0 {
		b.WriteString("\nWrong numbers (element: expected, got):\n")
		width := 0
		for _, x := range r.Wrong {
			width = max(width, len([]rune(x.Label)))
		}
		for _, x := range r.Wrong {
			pad := strings.Repeat(" ", width-len([]rune(x.Label)))
			fmt.Fprintf(&b, "  %s%s  expected %-14s got %s\n", x.Label, pad, fmtNum(x.Expected), fmtNum(x.Got))
		}
	}
	if f := r.First; f != nil {
		fmt.Fprintf(&b, "\nFirst step off the correct path: %s step %d, %s = %s\n", f.Pass, f.Step, f.Target, f.Formula)
		fmt.Fprintf(&b, "  first wrong element %s: you have %s; the worked line is\n", f.Label, fmtNum(f.Got))
		if f.Line != "" {
			fmt.Fprintf(&b, "    %s\n", f.Line)
		}
	}
	if r.Hint != "" {
		fmt.Fprintf(&b, "\nHint: %s\n", r.Hint)
	}
	if r.OK() {
		b.WriteString("All checked numbers are right.\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteJSON writes the report as JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	out := *r
	if out.Wrong == nil {
		out.Wrong = []Wrong{}
	}
	if out.Problems == nil {
		out.Problems = []string{}
	}
	return enc.Encode(struct {
		*Report
		OK bool `json:"ok"`
	}{&out, r.OK()})
}

func fmtNum(v float64) string { return fmt.Sprintf("%.6g", v) }
