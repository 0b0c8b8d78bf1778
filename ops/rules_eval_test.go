package ops

// The symbolic rules (ForwardRule, BackwardRule) are checked here the way
// trace/rule_test.go checks them in whole networks: each rule is evaluated
// for every index value, looking tensors up by name (inputs x1, x2, …, the
// output y, gradients ∂J/∂…, and the op's RuleValues), summing over the Σ
// indices (a term whose index falls outside its tensor is dropped), and
// compared with the value or gradient the op computed. Beyond what the
// trace's evaluator reads today, the rules of this package use: the calls
// exp, log and max; the comparison "=" in an indicator; an index symbol
// used as a value (expr.Raw holding an index expression, 1[j = y[i]]);
// and the op's RuleValues (statistics, labels counted from 1, max-pool
// winners).

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"math"
	"strconv"
	"strings"
	"testing"

	"github.com/backprop-dev/backprop/expr"
	"github.com/backprop-dev/backprop/tensor"
)

type ruleEnv struct {
	values map[string]*tensor.Tensor[float64]
	grads  map[string]*tensor.Tensor[float64]
	ints   map[string]int
}

var errOutOfRange = fmt.Errorf("index out of range")

// index evaluates an affine index expression such as i−k+1 or 4(c−1)+j.
func (e *ruleEnv) index(s string) (int, error) {
	s = strings.NewReplacer("−", "-", "'", "_p").Replace(s)
	var b strings.Builder
	for i, r := range s {
		if i > 0 && s[i-1] >= '0' && s[i-1] <= '9' && (r == '(' || r >= 'a' && r <= 'z') {
			b.WriteRune('*')
		}
		b.WriteRune(r)
	}
	x, err := parser.ParseExpr(b.String())
	if err != nil {
		return 0, err
	}
	var ev func(ast.Expr) (int, error)
	ev = func(x ast.Expr) (int, error) {
		switch x := x.(type) {
		case *ast.BasicLit:
			return strconv.Atoi(x.Value)
		case *ast.Ident:
			v, ok := e.ints[strings.ReplaceAll(x.Name, "_p", "'")]
			if !ok {
				return 0, fmt.Errorf("unbound index %s", x.Name)
			}
			return v, nil
		case *ast.ParenExpr:
			return ev(x.X)
		case *ast.UnaryExpr:
			v, err := ev(x.X)
			return -v, err
		case *ast.BinaryExpr:
			a, err := ev(x.X)
			if err != nil {
				return 0, err
			}
			c, err := ev(x.Y)
			if err != nil {
				return 0, err
			}
			switch x.Op {
			case token.ADD:
				return a + c, nil
			case token.SUB:
				return a - c, nil
			case token.MUL:
				return a * c, nil
			}
		}
		return 0, fmt.Errorf("cannot evaluate %T in %q", x, s)
	}
	return ev(x)
}

func (e *ruleEnv) elem(t *tensor.Tensor[float64], name string, sym []string) (float64, error) {
	if t == nil {
		return 0, fmt.Errorf("no tensor %s", name)
	}
	if len(sym) == 0 {
		if t.Len() != 1 {
			return 0, fmt.Errorf("%s has %d elements, the rule gives no index", name, t.Len())
		}
		return t.Data()[0], nil
	}
	if len(sym) != t.Rank() {
		return 0, fmt.Errorf("%s has rank %d, the rule gives %d indices", name, t.Rank(), len(sym))
	}
	pos := 0
	for a, s := range sym {
		v, err := e.index(s)
		if err != nil {
			return 0, err
		}
		if v < 1 || v > t.Dim(a) {
			return 0, errOutOfRange
		}
		pos = pos*t.Dim(a) + v - 1
	}
	return t.Data()[pos], nil
}

// rangeOf finds the size of index s: the axis where it appears alone.
func (e *ruleEnv) rangeOf(x expr.Expr, s string) int {
	n := 0
	expr.Map(x, func(y expr.Expr) expr.Expr {
		var name string
		var sym []string
		var tt map[string]*tensor.Tensor[float64]
		switch r := y.(type) {
		case expr.Ref:
			name, sym, tt = r.Name, r.Sym, e.values
		case expr.Grad:
			name, sym, tt = r.Wrt.Name, r.Wrt.Sym, e.grads
		default:
			return y
		}
		for a, q := range sym {
			if q == s && tt[name] != nil && n == 0 {
				n = tt[name].Dim(a)
			}
		}
		return y
	})
	return n
}

func (e *ruleEnv) eval(x expr.Expr) (float64, error) {
	both := func(a, b expr.Expr) (float64, float64, error) {
		u, err := e.eval(a)
		if err != nil {
			return 0, 0, err
		}
		v, err := e.eval(b)
		return u, v, err
	}
	switch x := x.(type) {
	case expr.Num:
		return float64(x), nil
	case expr.Ref:
		return e.elem(e.values[x.Name], x.Name, x.Sym)
	case expr.Grad:
		return e.elem(e.grads[x.Wrt.Name], "∂"+x.Wrt.Name, x.Wrt.Sym)
	case expr.Raw: // an index used as a value: the j of 1[j = y[i]]
		v, err := e.index(x.Plain)
		return float64(v), err
	case expr.Sum:
		s := 0.0
		for _, t := range x {
			v, err := e.eval(t)
			if err != nil {
				return 0, err
			}
			s += v
		}
		return s, nil
	case expr.Product:
		p := 1.0
		for _, t := range x {
			v, err := e.eval(t)
			if err != nil {
				return 0, err
			}
			p *= v
		}
		return p, nil
	case expr.Neg:
		v, err := e.eval(x.X)
		return -v, err
	case expr.Diff:
		a, b, err := both(x.A, x.B)
		return a - b, err
	case expr.Quot:
		a, b, err := both(x.A, x.B)
		return a / b, err
	case expr.Indicator:
		c := x.C.(expr.Cond)
		a, b, err := both(c.X, c.Y)
		if err != nil {
			return 0, err
		}
		ok, known := map[string]bool{">": a > b, "<=": a <= b, "<": a < b, ">=": a >= b, "=": a == b}[c.Op]
		if !known {
			return 0, fmt.Errorf("unknown comparison %q", c.Op)
		}
		if ok {
			return 1, nil
		}
		return 0, nil
	case expr.Call:
		args := make([]float64, len(x.Args))
		for i, a := range x.Args {
			v, err := e.eval(a)
			if err != nil {
				return 0, err
			}
			args[i] = v
		}
		a := args[0]
		switch x.Fn {
		case "ReLU":
			return math.Max(a, 0), nil
		case "σ":
			return 1 / (1 + math.Exp(-a)), nil
		case "logσ":
			return -math.Log1p(math.Exp(-a)), nil
		case "tanh":
			return math.Tanh(a), nil
		case "exp":
			return math.Exp(a), nil
		case "log":
			return math.Log(a), nil
		case "max":
			m := math.Inf(-1)
			for _, v := range args {
				m = math.Max(m, v)
			}
			return m, nil
		}
		return 0, fmt.Errorf("cannot evaluate function %s", x.Fn)
	case expr.Sigma:
		return e.sigma(x, 0)
	}
	return 0, fmt.Errorf("cannot evaluate %T (%s)", x, expr.String(x))
}

func (e *ruleEnv) sigma(x expr.Sigma, k int) (float64, error) {
	if k == len(x.Over) {
		if ok, err := e.where(x.Where); err != nil || !ok {
			return 0, err
		}
		v, err := e.eval(x.X)
		if err == errOutOfRange {
			return 0, nil
		}
		return v, err
	}
	s := x.Over[k]
	n := e.rangeOf(x.X, s)
	if n == 0 {
		return 0, fmt.Errorf("no range for Σ index %s in %s", s, expr.String(x))
	}
	total := 0.0
	for v := 1; v <= n; v++ {
		e.ints[s] = v
		p, err := e.sigma(x, k+1)
		if err != nil {
			return 0, err
		}
		total += p
	}
	delete(e.ints, s)
	return total, nil
}

// ruleIdx names a general element as the trace does (idxNames): i; i,j;
// c,i,j; n,c,i,j, or c,d,a,b for a parameter; 1 for an axis of size 1.
func ruleIdx(shape []int, param bool) []string {
	var names []string
	switch len(shape) {
	case 0:
		return nil
	case 1:
		names = []string{"i"}
	case 2:
		names = []string{"i", "j"}
	case 3:
		names = []string{"c", "i", "j"}
	case 4:
		names = []string{"n", "c", "i", "j"}
		if param {
			names = []string{"c", "d", "a", "b"}
		}
	default:
		return nil
	}
	out := make([]string, len(shape))
	for a, n := range names {
		if shape[a] == 1 && len(shape) > 1 {
			out[a] = "1"
		} else {
			out[a] = n
		}
	}
	return out
}

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
	env := &ruleEnv{values: map[string]*tensor.Tensor[float64]{"y": out.Value}, grads: map[string]*tensor.Tensor[float64]{}}
	if out.Grad != nil {
		env.grads["y"] = out.Grad
	}
	for i, in := range out.Inputs {
		n := fmt.Sprintf("x%d", i+1)
		env.values[n] = in.Value
		if in.Grad != nil {
			env.grads[n] = in.Grad
		}
	}
	if rv, ok := out.Op.(ruleValuer); ok {
		for n, v := range rv.RuleValues() {
			env.values[n] = v
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
			env.ints = map[string]int{}
			idx := tensor.Index(want.Shape(), k)
			for a, s := range lhs {
				if s != "1" {
					env.ints[s] = idx[a] + 1
				}
			}
			got, err := env.eval(rule)
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
		lhs := ruleIdx(out.Value.Shape(), false)
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
				lhs := ruleIdx(in.Value.Shape(), param)
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

// where evaluates a sum's range condition, comma-separated chains of
// index expressions such as "2k−1 ≤ i ≤ 2k, 2l−1 ≤ j ≤ 2l".
func (e *ruleEnv) where(cond string) (bool, error) {
	if cond == "" {
		return true, nil
	}
	for _, chain := range strings.Split(cond, ", ") {
		parts := strings.Split(chain, "≤")
		if len(parts) < 2 {
			return false, fmt.Errorf("cannot read the condition %q", chain)
		}
		prev, err := e.index(strings.TrimSpace(parts[0]))
		if err != nil {
			return false, err
		}
		for _, p := range parts[1:] {
			v, err := e.index(strings.TrimSpace(p))
			if err != nil {
				return false, err
			}
			if prev > v {
				return false, nil
			}
			prev = v
		}
	}
	return true, nil
}
