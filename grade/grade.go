// Package grade checks a student's numbers against an answer key made by
// `backprop variant`, the way a teaching assistant marks a worked problem.
// The student fills an answers file shaped like the key's forward values
// and gradients (any part of it: a null or a missing name is simply not
// graded; the output of `backprop solve --format json` is accepted as it
// is). Every number is marked right, follow-through or wrong:
// follow-through is a number that differs from the key only because it was
// computed, correctly, from an earlier wrong number of the student's own
// (the key's network is re-run from the student's values to tell), and it
// earns method credit. Grade reports the wrong numbers grouped by tensor
// with a score per tensor and per task, the first step of the worked trace
// where the student's numbers leave the correct path (with the worked line
// of its first wrong element), and the common global mistakes that explain
// the wrong numbers: every gradient with the opposite sign, a factor of 2
// or ½, for a mean cross-entropy over a batch of N the forgotten 1/N
// (every gradient N times the right one), a transposed weight gradient,
// in a recurrent network backpropagation through time truncated to one
// step (the gradient from step t+1 forgotten), in attention the forgotten
// 1/√d_k of the scores, or another reading of the problem (reshape order,
// kernel orientation, label). A slip in one time step's state that the
// student carries forward consistently is one wrong number: the later
// steps computed from it earn follow-through. A summary paragraph says the
// same in words a teacher can paste into feedback.
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

	"github.com/backprop-dev/backprop/expr"
	"github.com/backprop-dev/backprop/solve"
	"github.com/backprop-dev/backprop/spec"
	"github.com/backprop-dev/backprop/tensor"
	"github.com/backprop-dev/backprop/variant"
)

// Key is a key.json as `backprop variant` writes it.
type Key struct {
	Format      int              `json:"backprop_key"`
	Variant     string           `json:"variant"`
	Problem     string           `json:"problem"`
	Seed        uint64           `json:"seed"`
	Title       string           `json:"title"`
	Conventions spec.Conventions `json:"conventions"`
	Objective   string           `json:"objective"` // log_p, bce, sse or cross_entropy
	// Ask is what the sheet asks for; nil (an older key) means every value
	// of Forward and Gradients.
	Ask       *KeyAsk                    `json:"ask,omitempty"`
	Forward   map[string]json.RawMessage `json:"forward"`
	Gradients map[string]json.RawMessage `json:"gradients"`
	Steps     []variant.KeyStep          `json:"steps"`
	Spec      string                     `json:"spec"`
}

// KeyAsk names the forward values and parameter gradients a sheet asks
// for: a score counts every asked number and, of the others, only those
// given.
type KeyAsk struct {
	Forward   []string `json:"forward"`
	Gradients []string `json:"gradients"`
}

// asked reports whether the key's sheet asks for answer ("forward.h0").
func (k *Key) asked(answer string) bool {
	if k.Ask == nil {
		return true
	}
	section, name, _ := strings.Cut(answer, ".")
	list := k.Ask.Forward
	if section == "gradients" {
		list = k.Ask.Gradients
	}
	for _, n := range list {
		if n == name {
			return true
		}
	}
	return false
}

// Answers is a student's answers file: values by name, in the key's shapes
// (or flat), null for "not answered". Elements optionally gives single
// elements by their trace label, e.g. "∂J/∂u2[1,2,3]" (or "dJ/du2[1,2,3]"),
// for the intermediate steps that forward and gradients do not hold. Meta
// is what `backprop solve --format json` adds (its conventions), so that
// its output can be graded as it is.
type Answers struct {
	Variant   string                     `json:"variant"`
	Forward   map[string]json.RawMessage `json:"forward"`
	Gradients map[string]json.RawMessage `json:"gradients"`
	Elements  map[string]*float64        `json:"elements"`
	Meta      json.RawMessage            `json:"meta,omitempty"`
}

// Options set the tolerance. An answer is right when
// |got − expected| ≤ Rel·max(|expected|, floor) + Abs, where floor is a
// thousandth of the largest magnitude in the expected tensor, so that a
// value that is zero only up to rounding is judged on its tensor's scale.
type Options struct {
	Rel float64 // relative tolerance (0: 1e-3)
	Abs float64 // absolute tolerance added to it (default 0)
}

// The marks of one number.
const (
	MarkRight         = "right"
	MarkFollowThrough = "follow-through" // wrong only because of the student's own earlier wrong number
	MarkWrong         = "wrong"
)

// Wrong is one number that is not right: wrong, or follow-through.
type Wrong struct {
	Name     string  `json:"name"`     // "forward.h2" or "gradients.w0", or "elements"
	Label    string  `json:"label"`    // the element: h2[1,2,3], ∂J/∂w0[1,2]
	Expected float64 `json:"expected"` // from the key
	Got      float64 `json:"got"`
	Mark     string  `json:"mark"` // MarkWrong or MarkFollowThrough
	// Mistake is the kind of the global mistake that accounts for it.
	Mistake string `json:"mistake,omitempty"`
	// Consistent is the value the student's own earlier numbers give
	// (the key's network re-run from them), when it differs from the key's.
	Consistent *float64 `json:"consistent,omitempty"`
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

// Score counts the marks of one tensor, or of one task (all forward
// values, all gradients, the intermediate elements given one by one).
// Credit is right plus follow-through: the numbers that earn marks.
type Score struct {
	Name          string  `json:"name"`  // forward.h0, gradients.w0, elements.∂J/∂u2; or the task: forward, gradients, elements
	Label         string  `json:"label"` // h0, ∂J/∂w0; or "forward values", "gradients", "intermediate elements"
	Asked         bool    `json:"asked"` // the sheet asks for it (a tensor); for a task, always
	Total         int     `json:"total"` // numbers asked; for what is not asked, the numbers given
	Answered      int     `json:"answered"`
	Right         int     `json:"right"`
	FollowThrough int     `json:"followThrough"`
	Wrong         int     `json:"wrong"`
	Credit        int     `json:"credit"`
	Percent       float64 `json:"percent"` // 100·Credit/Total
}

// Mistake is a global mistake recognised in the answers.
type Mistake struct {
	// Kind is sign (every gradient of the opposite sign), factor-2,
	// factor-1/2, missing-1/N (MistakeMissingMean: the 1/N of a mean
	// cross-entropy forgotten), transposed (a weight gradient with its last
	// two axes swapped), truncated-bptt (MistakeTruncatedBPTT: the gradient
	// from step t+1 left out), missing-scale (MistakeMissingScale:
	// attention's 1/√d_k left out) or reading (another reading of the
	// problem).
	Kind    string   `json:"kind"`
	Tensors []string `json:"tensors"` // the answers it explains, e.g. gradients.w0
	// Explains is how many numbers that are not the key's it accounts for.
	Explains int    `json:"explains"`
	Text     string `json:"text"` // what it is, in words for the student
}

// Report is the result of grading.
type Report struct {
	Variant       string     `json:"variant"`
	Checked       int        `json:"checked"`
	Right         int        `json:"right"`
	Wrong         []Wrong    `json:"wrong"`         // the wrong numbers, in trace order
	FollowThrough []Wrong    `json:"followThrough"` // the follow-through numbers, in trace order
	Unanswered    int        `json:"unanswered"`
	Problems      []string   `json:"problems"` // unknown names, wrong shapes, non-numbers
	Notes         []string   `json:"notes"`    // what was not graded and why, and other remarks
	Tasks         []Score    `json:"tasks"`    // forward values, gradients, intermediate elements
	Tensors       []Score    `json:"tensors"`  // each answered tensor, in trace order
	First         *FirstStep `json:"firstWrongStep"`
	Mistakes      []Mistake  `json:"mistakes"`
	// Cause names the global mistake(s) that explain every wrong number,
	// when they do; it then stands in place of the first wrong step.
	Cause   string `json:"cause,omitempty"`
	Hint    string `json:"hint,omitempty"` // another reading of the problem the answers fit
	Summary string `json:"summary"`        // a paragraph for the student's feedback
}

// OK reports whether every checked number is right (none wrong, none
// follow-through), the answers fit the key and at least one number was
// checked.
func (r *Report) OK() bool {
	return len(r.Wrong) == 0 && len(r.FollowThrough) == 0 && len(r.Problems) == 0 && r.Checked > 0
}

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
	fromSolve := len(a.Meta) > 0
	if fromSolve {
		var meta struct {
			Conventions *spec.Conventions `json:"conventions"`
		}
		if json.Unmarshal(a.Meta, &meta) == nil && meta.Conventions != nil && *meta.Conventions != k.Conventions {
			c := *meta.Conventions
			r.Notes = append(r.Notes, fmt.Sprintf("the answers say they were solved with reshape %s, kernel %s, label %s; the key uses reshape %s, kernel %s, label %s",
				c.Reshape, c.Kernel, c.Label, k.Conventions.Reshape, k.Conventions.Kernel, k.Conventions.Label))
		}
	}
	// the student's values by "forward.h0" / "gradients.w0"
	student := map[string][]*float64{}
	swapped := map[string][]int{} // answers given in their tensor's shape with the last two axes swapped
	read := func(section string, keyVals, ans map[string]json.RawMessage) {
		names := make([]string, 0, len(ans))
		for n := range ans {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			kraw, ok := keyVals[n]
			if !ok {
				if fromSolve {
					r.Notes = append(r.Notes, fmt.Sprintf("%s.%s: not graded, the key does not ask for it", section, n))
				} else {
					r.Problems = append(r.Problems, fmt.Sprintf("%s.%s: the key has no value of that name", section, n))
				}
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
			if len(got) == len(want) && swapLast(wshape) != nil && tensor.SameShape(gshape, swapLast(wshape)) && !tensor.SameShape(gshape, wshape) {
				swapped[section+"."+n] = gshape
			} else if len(got) != len(want) || !(tensor.SameShape(gshape, wshape) || len(gshape) == 1 || len(gshape) == 0) {
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

	// every step's numbers as the student gave them, nil where not given
	given := map[string][]*float64{}
	g := &graded{k: k, o: o, got: make([][]*float64, len(k.Steps)), swapped: swapped, given: given}
	used := map[string]bool{}
	for si, st := range k.Steps {
		vals := student[st.Answer]
		if st.Answer != "" {
			used[st.Answer] = true
		}
		row := make([]*float64, len(st.Elements))
		any := false
		for ei := range st.Elements {
			if vals != nil && ei < len(vals) {
				row[ei] = vals[ei]
			}
			if v, ok := byElement[[2]int{si, ei}]; ok {
				row[ei] = &v
			}
			any = any || row[ei] != nil
		}
		g.got[si] = row
		if any {
			given[stepKey(st.Pass, st.Target)] = row
		}
	}
	for name := range student {
		if !used[name] {
			r.Problems = append(r.Problems, fmt.Sprintf("%s: not part of the key's trace", name))
		}
	}
	sort.Strings(r.Problems)

	// the values that follow from the student's own numbers
	if s := k.parseSpec(); s != nil {
		if ft, err := rerun(s, given, true); err == nil {
			g.follow = ft
		} else {
			r.Notes = append(r.Notes, "follow-through not checked: "+err.Error())
		}
		if base, err := rerun(s, given, false); err == nil {
			g.base = base
		}
	}
	g.judge(r)
	g.tally(r)
	if len(r.Wrong)+len(r.FollowThrough) > 0 {
		g.mistakes(r)
		g.natural(r)
		if k.Spec != "" {
			if diff, cmd := otherReading(k, student, o); diff != "" {
				r.Hint = "your numbers are right for another reading of the problem: " + diff + "; see `" + cmd + "`"
				g.reading(r, "your numbers are right for another reading of the problem: "+diff, student)
			}
		}
		g.blame()
		g.tally(r)
		g.cause(r)
	}
	r.Summary = summary(r)
	return r
}

// parseSpec is the key's network with the key's conventions, or nil when
// the key carries no spec.
func (k *Key) parseSpec() *spec.Spec {
	if k.Spec == "" {
		return nil
	}
	s, err := spec.Parse("key.json spec", []byte(k.Spec))
	if err != nil {
		return nil
	}
	if c := k.Conventions; c.Reshape != "" || c.Kernel != "" || c.Label != "" {
		if c.Reshape != "" {
			s.Conventions.Reshape = c.Reshape
		}
		if c.Kernel != "" {
			s.Conventions.Kernel = c.Kernel
		}
		if c.Label != "" {
			s.Conventions.Label = c.Label
		}
	}
	return s
}

// swapLast is shape with its last two axes swapped, nil below rank 2.
func swapLast(shape []int) []int {
	n := len(shape)
	if n < 2 {
		return nil
	}
	out := append([]int(nil), shape...)
	out[n-2], out[n-1] = out[n-1], out[n-2]
	return out
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
// It returns the differences in words and the command that solves that
// reading, or two empty strings.
func otherReading(k *Key, student map[string][]*float64, o Options) (string, string) {
	base, err := spec.Parse("key", []byte(k.Spec))
	if err != nil {
		return "", ""
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
					return strings.Join(diff, ", "), fmt.Sprintf("backprop solve --spec spec.yaml --reshape %s --kernel %s --label %s", reshape, kernel, label)
				}
			}
		}
	}
	return "", ""
}

func fits(sol *solve.Solution, student map[string][]*float64, o Options) bool {
	vals := map[string][]float64{}
	for _, st := range sol.Trace.Forward { // values the key asks for that are no layer output, as a
		vals["forward."+expr.String(st.Target)] = st.Value.Data
	}
	for _, f := range sol.Forward {
		vals["forward."+f.Name] = f.Value.Data
	}
	for _, g := range sol.Gradients {
		vals["gradients."+g.Name] = g.Value.Data
	}
	checked := false
	for name, got := range student {
		want, ok := vals[name]
		if !ok {
			continue // not a value of this reading (the logit is named otherwise under label y1)
		}
		if len(want) != len(got) {
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

// WriteText writes the report for a person: the counts, the score per
// task and tensor, the wrong numbers by tensor, the follow-through numbers,
// the cause (a recognised global mistake) or else the first wrong step, and
// last the summary paragraph, every line ending in a newline.
func (r *Report) WriteText(w io.Writer, o Options) error {
	var b strings.Builder
	rel := o.Rel
	if rel == 0 {
		rel = 1e-3
	}
	fmt.Fprintf(&b, "Grading %s: %d numbers checked: %d right, %d follow-through, %d wrong; %d not answered (relative tolerance %g", r.Variant, r.Checked, r.Right, len(r.FollowThrough), len(r.Wrong), r.Unanswered, rel)
	if o.Abs > 0 {
		fmt.Fprintf(&b, ", absolute %g", o.Abs)
	}
	b.WriteString(")\n")
	for _, p := range r.Problems {
		fmt.Fprintf(&b, "problem: %s\n", p)
	}
	for _, n := range r.Notes {
		fmt.Fprintf(&b, "note: %s\n", n)
	}
	if r.Checked == 0 && len(r.Problems) == 0 {
		b.WriteString("nothing to grade: every number of the answers is null or missing\n")
	}
	if len(r.Tasks) > 0 && r.Checked > 0 {
		b.WriteString("\nScore (right + follow-through, of the numbers asked):\n")
		width := 0
		for _, t := range r.Tensors {
			width = max(width, len([]rune(t.Label))+2)
		}
		for _, t := range r.Tasks {
			width = max(width, len([]rune(t.Label)))
		}
		line := func(indent, label string, s Score) {
			pad := strings.Repeat(" ", width-len([]rune(label)))
			fmt.Fprintf(&b, "  %s%s%s  %3d/%-3d %5s %%", indent, label, pad[:len(pad)-len(indent)], s.Credit, s.Total, fmtPct(s.Percent))
			var extra []string
			if s.Wrong > 0 {
				extra = append(extra, fmt.Sprintf("%d wrong", s.Wrong))
			}
			if s.FollowThrough > 0 {
				extra = append(extra, fmt.Sprintf("%d follow-through", s.FollowThrough))
			}
			if n := s.Total - s.Answered; s.Asked && n > 0 {
				extra = append(extra, fmt.Sprintf("%d not answered", n))
			}
			if !s.Asked && taskOf(s.Name) != "elements" {
				extra = append(extra, "not asked, not scored")
			}
			if len(extra) > 0 {
				fmt.Fprintf(&b, "   %s", strings.Join(extra, ", "))
			}
			b.WriteString("\n")
		}
		for _, t := range r.Tasks {
			line("", t.Label, t)
			for _, s := range r.Tensors {
				if taskOf(s.Name) == t.Name {
					line("  ", s.Label, s)
				}
			}
		}
	}
	if len(r.Wrong) > 0 {
		b.WriteString("\nWrong numbers, by tensor (element: expected, got):\n")
		width := 0
		for _, x := range r.Wrong {
			width = max(width, len([]rune(x.Label)))
		}
		for _, grp := range byTensor(r.Wrong) {
			fmt.Fprintf(&b, "  %s:\n", tensorOf(grp[0].Label))
			for _, x := range grp {
				pad := strings.Repeat(" ", width-len([]rune(x.Label)))
				fmt.Fprintf(&b, "    %s%s  expected %-13s got %s", x.Label, pad, fmtNum(x.Expected), fmtNum(x.Got))
				if x.Consistent != nil {
					fmt.Fprintf(&b, " (your earlier numbers give %s)", fmtNum(*x.Consistent))
				}
				b.WriteString("\n")
			}
		}
	}
	if len(r.FollowThrough) > 0 {
		b.WriteString("\nFollow-through (wrong only because of your earlier numbers, right for them: method credit):\n")
		for _, grp := range byTensor(r.FollowThrough) {
			var ls []string
			for i, x := range grp {
				if i == 4 && len(grp) > 5 {
					ls = append(ls, "…")
					break
				}
				ls = append(ls, x.Label)
			}
			fmt.Fprintf(&b, "  %s: %d (%s)\n", tensorOf(grp[0].Label), len(grp), strings.Join(ls, ", "))
		}
	}
	if r.Cause != "" {
		fmt.Fprintf(&b, "\nCause: %s.\n", r.Cause)
	} else if f := r.First; f != nil {
		fmt.Fprintf(&b, "\nFirst step off the correct path: %s step %d, %s = %s\n", f.Pass, f.Step, f.Target, f.Formula)
		fmt.Fprintf(&b, "  first wrong element %s: you have %s; the worked line is\n", f.Label, fmtNum(f.Got))
		if f.Line != "" {
			fmt.Fprintf(&b, "    %s\n", strings.TrimSpace(f.Line))
		}
	}
	var other []string
	for _, m := range r.Mistakes {
		if r.Cause == "" || !strings.Contains(r.Cause, m.Text) {
			if m.Kind != "reading" {
				other = append(other, m.Text)
			}
		}
	}
	if len(other) > 0 {
		b.WriteString("\nMistakes recognised:\n")
		for _, t := range other {
			fmt.Fprintf(&b, "  - %s\n", t)
		}
	}
	if r.Hint != "" && r.Cause == "" {
		fmt.Fprintf(&b, "\nHint: %s\n", r.Hint)
	}
	if r.OK() {
		b.WriteString("All checked numbers are right.\n")
	}
	if r.Summary != "" {
		fmt.Fprintf(&b, "\nSummary:\n%s\n", wrap(r.Summary, 100, "  "))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// taskOf is the task of a score's name: forward of forward.h0.
func taskOf(name string) string {
	t, _, _ := strings.Cut(name, ".")
	return t
}

// wrap breaks text into lines of at most width runes, each indented.
func wrap(text string, width int, indent string) string {
	var lines []string
	cur := indent
	for _, word := range strings.Fields(text) {
		if len([]rune(cur)) > len(indent) && len([]rune(cur))+1+len([]rune(word)) > width {
			lines = append(lines, cur)
			cur = indent
		}
		if len([]rune(cur)) > len(indent) {
			cur += " "
		}
		cur += word
	}
	return strings.Join(append(lines, cur), "\n")
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
	if out.FollowThrough == nil {
		out.FollowThrough = []Wrong{}
	}
	if out.Problems == nil {
		out.Problems = []string{}
	}
	if out.Notes == nil {
		out.Notes = []string{}
	}
	if out.Mistakes == nil {
		out.Mistakes = []Mistake{}
	}
	return enc.Encode(struct {
		*Report
		OK bool `json:"ok"`
	}{&out, r.OK()})
}

func fmtNum(v float64) string { return fmt.Sprintf("%.6g", v) }
