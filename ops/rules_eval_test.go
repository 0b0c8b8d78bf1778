package ops

// The symbolic rules (ForwardRule, BackwardRule) are checked here op by op
// with the evaluator trace/rule_test.go uses for whole networks
// (internal/ruleeval): each rule is evaluated for every index value,
// looking tensors up by name (inputs x1, x2, …, the output y, gradients
// ∂J/∂…, and the op's RuleValues: statistics, labels counted from 1,
// max-pool winners), and compared with the value or gradient the op
// computed.

import (
	"fmt"
	"math"
	"testing"

	"github.com/backprop-dev/backprop/explain"
	"github.com/backprop-dev/backprop/expr"
	"github.com/backprop-dev/backprop/internal/ruleeval"
	"github.com/backprop-dev/backprop/tensor"
)

type freshSet map[string]bool

func (f freshSet) fresh(hint string) string {
	n := hint
	for f[n] {
		n += "'"
	}
	f[n] = true
	return n
}

type ruleValuer interface {
	RuleValues() map[string]*tensor.Tensor[float64]
}

// checkRules evaluates out's op's rules, where it has them, for every
// element (the inputs' indices named both as the trace names
// intermediate tensors and as it names parameters). It returns how many
// rules it checked; want lists the rules that must exist ("forward",
// "∂/∂x1", …).
func checkRules(t *testing.T, out *V, want ...string) int {
	t.Helper()
	env := ruleeval.New()
	env.Values["y"] = out.Value
	if out.Grad != nil {
		env.Grads["y"] = out.Grad
	}
	for i, in := range out.Inputs {
		n := fmt.Sprintf("x%d", i+1)
		env.Values[n] = in.Value
		if in.Grad != nil {
			env.Grads[n] = in.Grad
		}
	}
	if rv, ok := out.Op.(ruleValuer); ok {
		for n, v := range rv.RuleValues() {
			env.Values[n] = v
		}
	}
	sym := func(name string, rank int, at []string) expr.Ref {
		if rank == 0 {
			at = nil
		}
		return expr.Ref{Name: name, Sym: at}
	}
	inIdx := func(i int, at []string) expr.Expr {
		return sym(fmt.Sprintf("x%d", i+1), out.Inputs[i].Value.Rank(), at)
	}
	outIdx := func(at []string) expr.Expr { return sym("y", out.Value.Rank(), at) }
	goutIdx := func(at []string) expr.Expr {
		return expr.Grad{Of: "J", Wrt: sym("y", out.Value.Rank(), at)}
	}
	name := out.Op.Name()
	have := map[string]bool{}
	check := func(what string, lhs []string, rule expr.Expr, note string, want *tensor.Tensor[float64]) {
		t.Helper()
		have[what] = true
		for k, w := range want.Data() {
			env.Ints = map[string]int{}
			idx := tensor.Index(want.Shape(), k)
			for a, s := range lhs {
				if s != "1" {
					env.Ints[s] = idx[a] + 1
				}
			}
			got, err := env.Eval(rule)
			if err != nil {
				t.Fatalf("%s %s rule %s: %v", name, what, expr.String(rule), err)
			}
			if math.Abs(got-w) > 1e-12*math.Max(1, math.Abs(w)) {
				t.Fatalf("%s %s rule %s (%s) at %v gives %.17g, the op computed %.17g", name, what, expr.String(rule), note, idx, got, w)
			}
		}
	}
	n := 0
	if r, ok := out.Op.(interface {
		ForwardRule(out []string, in InputIndex, fresh func(string) string) (expr.Expr, string)
	}); ok {
		lhs := explain.IndexNames(out.Value.Shape(), false)
		f := freshSet{}
		for _, s := range lhs {
			f[s] = true
		}
		if rule, note := r.ForwardRule(lhs, inIdx, f.fresh); rule != nil {
			check("forward", lhs, rule, note, out.Value)
			n++
		}
	}
	if r, ok := out.Op.(interface {
		BackwardRule(i int, idx []string, in InputIndex, out, gout Index, fresh func(string) string) (expr.Expr, string)
	}); ok {
		for i, in := range out.Inputs {
			if in.Grad == nil {
				continue
			}
			for _, param := range []bool{false, true} {
				lhs := explain.IndexNames(in.Value.Shape(), param)
				f := freshSet{}
				for _, s := range lhs {
					f[s] = true
				}
				if rule, note := r.BackwardRule(i, lhs, inIdx, outIdx, goutIdx, f.fresh); rule != nil {
					check(fmt.Sprintf("∂/∂x%d", i+1), lhs, rule, note, in.Grad)
					n++
				}
			}
		}
	}
	for _, w := range want {
		if !have[w] {
			t.Errorf("%s has no %s rule", name, w)
		}
	}
	return n
}
