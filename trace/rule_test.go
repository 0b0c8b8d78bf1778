package trace_test

// The handout states each step's general element with symbolic indices
// (u2[1,i,j] = Σ_{c,k,l} h1[c,k,l]·w1[c,1,i−k+1,j−l+1] + b1[i,j]). This test
// does not trust those rules: it evaluates each one for every index value,
// looking up the tensors by name, summing over the Σ indices (a term whose
// index falls outside its tensor is dropped, as the rules' notes say), and
// compares the result with the computed value or gradient element.

import (
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/backprop-dev/backprop/autograd"
	"github.com/backprop-dev/backprop/expr"
	"github.com/backprop-dev/backprop/internal/ruleeval"
	"github.com/backprop-dev/backprop/spec"
	"github.com/backprop-dev/backprop/tensor"
	"github.com/backprop-dev/backprop/trace"
)

func TestRulesEvaluateToTheValues(t *testing.T) {
	rules := 0
	for _, file := range specFiles(t) {
		for _, kernel := range []string{"pytorch", "flipped"} {
			for _, reshape := range []string{"row-major", "column-major"} {
				name := fmt.Sprintf("%s/%s/%s", file, kernel, reshape)
				s, err := spec.ReadFile(file)
				if err != nil {
					t.Fatal(err)
				}
				s.Conventions.Kernel, s.Conventions.Reshape = kernel, reshape
				m, err := spec.Build[float64](s)
				if err != nil {
					t.Fatal(err)
				}
				if err := autograd.Backward(m.Objective); err != nil {
					t.Fatal(err)
				}
				tr, err := trace.Build(m.Nodes, trace.Options{Objective: "J", NamedSteps: true})
				if err != nil {
					t.Fatal(err)
				}
				env := ruleeval.New()
				for i, v := range m.Nodes {
					n := v.Name
					if n == "" { // the trace's name for an unnamed node
						n = fmt.Sprintf("t%d", i+1)
					}
					env.Values[n] = v.Value
					if v.Grad != nil {
						env.Grads[n] = v.Grad
					}
				}
				// the statistics, labels, winners and masks the rules name
				for _, v := range m.Nodes {
					if v.IsLeaf() {
						continue
					}
					if rv, ok := v.Op.(interface {
						RuleValues() map[string]*tensor.Tensor[float64]
					}); ok {
						for n, t := range rv.RuleValues() {
							env.Values[n] = t
						}
					}
				}
				check := func(pass string, st trace.Step) {
					if st.Rule == nil {
						return
					}
					if strings.Contains(expr.String(st.Rule), ")²") {
						return // the SSE rule's square is notation (Raw)
					}
					var lhsSym []string
					switch l := st.RuleLHS.(type) {
					case expr.Ref:
						lhsSym = l.Sym
					case expr.Grad:
						lhsSym = l.Wrt.Sym
					}
					if st.RuleNote != "" && strings.HasPrefix(st.RuleNote, "where ") {
						return // a reading-order map, checked through its inverse step
					}
					rules++
					shape := st.Value.Shape
					for k, want := range st.Value.Data {
						env.Ints = map[string]int{}
						idx := tensor.Index(shape, k)
						for a, sym := range lhsSym {
							if sym == "1" {
								continue
							}
							env.Ints[sym] = idx[a] + 1
						}
						got, err := env.Eval(st.Rule)
						if err != nil {
							t.Fatalf("%s: %s step %s: rule %s = %s: %v", name, pass, expr.String(st.Target), expr.String(st.RuleLHS), expr.String(st.Rule), err)
						}
						if math.Abs(got-want) > 1e-12*math.Max(1, math.Abs(want)) {
							t.Fatalf("%s: %s step %s element %v: the rule %s = %s gives %v, the engine %v", name, pass, expr.String(st.Target), idx, expr.String(st.RuleLHS), expr.String(st.Rule), got, want)
						}
					}
				}
				for _, st := range tr.Forward {
					check("forward", st)
				}
				for _, st := range tr.Backward {
					check("backward", st)
				}
			}
		}
	}
	if rules < 50 {
		t.Fatalf("only %d rules checked", rules)
	}
	t.Logf("%d rules evaluated element by element", rules)
}
