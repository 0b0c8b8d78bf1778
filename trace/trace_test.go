package trace_test

import (
	"bytes"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/backprop-dev/backprop/autograd"
	"github.com/backprop-dev/backprop/expr"
	"github.com/backprop-dev/backprop/spec"
	"github.com/backprop-dev/backprop/trace"
)

func specFiles(t *testing.T) []string {
	files, _ := filepath.Glob("../examples/*.yaml")
	more, _ := filepath.Glob("../solve/testdata/specs/*.yaml")
	files = append(files, more...)
	if len(files) < 3 {
		t.Fatalf("found only %v", files)
	}
	return files
}

func build(t *testing.T, file string) *trace.Trace {
	t.Helper()
	s, err := spec.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	m, err := spec.Build[float64](s)
	if err != nil {
		t.Fatal(err)
	}
	if err := autograd.Backward(m.Objective); err != nil {
		t.Fatal(err)
	}
	tr, err := trace.Build(m.Nodes, trace.Options{MaxElements: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

// TestLinesEvaluateToTheirValues checks every line a student reads: the
// numbers substituted into the formula, evaluated, give the value printed,
// and the value printed is the element of the tensor printed below it.
func TestLinesEvaluateToTheirValues(t *testing.T) {
	for _, f := range specFiles(t) {
		tr := build(t, f)
		n := 0
		for _, steps := range [][]trace.Step{tr.Forward, tr.Backward} {
			for _, s := range steps {
				if len(s.Lines) != len(s.Value.Data) {
					t.Fatalf("%s: %s has %d lines for %d values", f, expr.String(s.Target), len(s.Lines), len(s.Value.Data))
				}
				// a true relative tolerance, with a floor scaled to the
				// tensor's largest value for elements that cancel to
				// nearly zero (as solve's reference test)
				scale := 0.0
				for _, v := range s.Value.Data {
					scale = max(scale, abs(v))
				}
				for i, l := range s.Lines {
					got, err := expr.Eval(l.Numeric)
					if err != nil {
						t.Fatalf("%s: %s: %v", f, expr.String(l.Target), err)
					}
					if d := abs(got - l.Value); d > lineRelTol*abs(l.Value) && d > lineFloorTol*scale {
						t.Errorf("%s: %s = %s evaluates to %.17g, the line says %.17g (relative error %.2g)", f, expr.String(l.Target), expr.String(l.Numeric), got, l.Value, d/abs(l.Value))
					}
					if l.Value != s.Value.Data[i] {
						t.Errorf("%s: %s line value %g, tensor has %g", f, expr.String(l.Target), l.Value, s.Value.Data[i])
					}
					n++
				}
			}
		}
		if n == 0 {
			t.Errorf("%s: no lines", f)
		}
	}
}

// Worked lines agree with the engine to a relative 1e-13, or to 1e-15 of
// the largest element of their tensor for values that cancel to nearly
// zero. An explanation written in a form that cancels (1 − σ(a) for the
// derivative of log σ at a = 12.87, a relative error of 3e-11) fails.
const (
	lineRelTol   = 1e-13
	lineFloorTol = 1e-15
)

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}

// TestProblem1Structure pins the order of the worked solution of the seed:
// the forward steps of the problem statement and a backward step for every
// parameter.
func TestProblem1Structure(t *testing.T) {
	tr := build(t, "../examples/problem1.yaml")
	var fw, bw []string
	for _, s := range tr.Forward {
		fw = append(fw, expr.String(s.Target))
	}
	for _, s := range tr.Backward {
		bw = append(bw, expr.String(s.Target))
	}
	if got := strings.Join(fw, " "); got != "h0 h1 h2 H2 a p log_p" {
		t.Errorf("forward steps %q", got)
	}
	want := "∂J/∂a ∂J/∂b2 ∂J/∂w2 ∂J/∂H2 ∂J/∂h2 ∂J/∂u2 ∂J/∂b1 ∂J/∂w1 ∂J/∂h1 ∂J/∂h0 ∂J/∂u0 ∂J/∂b0 ∂J/∂w0"
	if got := strings.Join(bw, " "); got != want {
		t.Errorf("backward steps\n got %q\nwant %q", got, want)
	}
}

var doubleSub = regexp.MustCompile(`_\{[^{}]*\}_\{`)

// TestMarkdownIsBalanced guards the LaTeX a Markdown renderer receives:
// every \left has its \right, braces balance, and no name gets a double
// subscript.
func TestMarkdownIsBalanced(t *testing.T) {
	for _, f := range specFiles(t) {
		tr := build(t, f)
		var b bytes.Buffer
		if err := tr.WriteMarkdown(&b, trace.Header{Title: f}, 6); err != nil {
			t.Fatal(err)
		}
		md := b.String()
		if l, r := strings.Count(md, `\left`), strings.Count(md, `\right`); l != r {
			t.Errorf("%s: %d \\left, %d \\right", f, l, r)
		}
		if o, c := strings.Count(md, "{"), strings.Count(md, "}"); o != c {
			t.Errorf("%s: %d { and %d }", f, o, c)
		}
		if doubleSub.MatchString(md) {
			t.Errorf("%s: a double subscript", f)
		}
		if strings.Count(md, "$$")%2 != 0 {
			t.Errorf("%s: unbalanced $$", f)
		}
	}
}
