package trace_test

// The handout states each step's general element with symbolic indices
// (u2[1,i,j] = Σ_{c,k,l} h1[c,k,l]·w1[c,1,i−k+1,j−l+1] + b1[i,j]). This test
// does not trust those rules: it evaluates each one for every index value,
// looking up the tensors by name, summing over the Σ indices (a term whose
// index falls outside its tensor is dropped, as the rules' notes say), and
// compares the result with the computed value or gradient element.

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"math"
	"strconv"
	"strings"
	"testing"

	"github.com/backprop-dev/backprop/autograd"
	"github.com/backprop-dev/backprop/expr"
	"github.com/backprop-dev/backprop/spec"
	"github.com/backprop-dev/backprop/tensor"
	"github.com/backprop-dev/backprop/trace"
)

type evalEnv struct {
	t      *testing.T
	values map[string]*tensor.Tensor[float64]
	grads  map[string]*tensor.Tensor[float64]
	ints   map[string]int
}

var outOfRange = fmt.Errorf("index out of range")

// index evaluates an affine index expression such as i−k+1 or 4(c−1)+j.
func (e *evalEnv) index(s string) (int, error) {
	s = strings.NewReplacer("−", "-", "'", "_p").Replace(s)
	// 4(c-1) → 4*(c-1)
	var b strings.Builder
	for i, r := range s {
		if r == '(' && i > 0 && s[i-1] >= '0' && s[i-1] <= '9' {
			b.WriteRune('*')
		}
		if r >= 'a' && r <= 'z' && i > 0 && s[i-1] >= '0' && s[i-1] <= '9' {
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

func (e *evalEnv) elem(t *tensor.Tensor[float64], name string, sym []string) (float64, error) {
	if t == nil {
		return 0, fmt.Errorf("no tensor %s", name)
	}
	if len(sym) == 0 {
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
			return 0, outOfRange
		}
		pos = pos*t.Dim(a) + v - 1
	}
	return t.Data()[pos], nil
}

// rangeOf finds the size of index s: the axis where it appears alone.
func (e *evalEnv) rangeOf(x expr.Expr, s string) int {
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

func (e *evalEnv) eval(x expr.Expr) (float64, error) {
	switch x := x.(type) {
	case expr.Num:
		return float64(x), nil
	case expr.Ref:
		return e.elem(e.values[x.Name], x.Name, x.Sym)
	case expr.Grad:
		return e.elem(e.grads[x.Wrt.Name], "∂"+x.Wrt.Name, x.Wrt.Sym)
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
		a, err := e.eval(x.A)
		if err != nil {
			return 0, err
		}
		b, err := e.eval(x.B)
		return a - b, err
	case expr.Quot:
		a, err := e.eval(x.A)
		if err != nil {
			return 0, err
		}
		b, err := e.eval(x.B)
		return a / b, err
	case expr.Indicator:
		c := x.C.(expr.Cond)
		a, err := e.eval(c.X)
		if err != nil {
			return 0, err
		}
		b, err := e.eval(c.Y)
		if err != nil {
			return 0, err
		}
		ok := map[string]bool{">": a > b, "<=": a <= b, "<": a < b, ">=": a >= b, "=": a == b, "==": a == b}[c.Op]
		if ok {
			return 1, nil
		}
		return 0, nil
	case expr.Call:
		args := make([]float64, len(x.Args))
		for i, arg := range x.Args {
			v, err := e.eval(arg)
			if err == outOfRange && x.Fn == "max" {
				v = math.Inf(-1) // a window cell in the padding
			} else if err != nil {
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
		case "GELU": // x·Φ(x), the exact GELU
			return a * 0.5 * math.Erfc(-a/math.Sqrt2), nil
		case "Φ": // the standard normal CDF
			return 0.5 * math.Erfc(-a/math.Sqrt2), nil
		case "φ": // the standard normal density
			return math.Exp(-a*a/2) / math.Sqrt(2*math.Pi), nil
		case "exp":
			return math.Exp(a), nil
		case "log":
			return math.Log(a), nil
		case "sqrt", "√":
			return math.Sqrt(a), nil
		case "LeakyReLU":
			if a > 0 {
				return a, nil
			}
			return args[1] * a, nil
		case "max":
			m := math.Inf(-1)
			for _, v := range args {
				m = math.Max(m, v)
			}
			return m, nil
		case "logsumexp":
			m := math.Inf(-1)
			for _, v := range args {
				m = math.Max(m, v)
			}
			s := 0.0
			for _, v := range args {
				s += math.Exp(v - m)
			}
			return m + math.Log(s), nil
		}
	case expr.Raw:
		if v, ok := e.ints[x.Plain]; ok { // an index used as a number (1[j = y[i]])
			return float64(v), nil
		}
		if v, err := e.index(x.Plain); err == nil { // an index expression (1[j = k+6]) or the literal 1
			return float64(v), nil
		}
		return 0, fmt.Errorf("raw %q", x.Plain)
	case expr.Sigma:
		return e.sigma(x, 0)
	}
	return 0, fmt.Errorf("cannot evaluate %T (%s)", x, expr.String(x))
}

// where evaluates a Σ's condition: comma-separated chains a ≤ b ≤ c (or <).
func (e *evalEnv) where(c string) (bool, error) {
	for _, part := range strings.Split(c, ",") {
		part = strings.ReplaceAll(part, "≤", "<=")
		var terms []string
		var ops []string
		rest := part
		for {
			i := strings.IndexAny(rest, "<=")
			if i < 0 {
				terms = append(terms, rest)
				break
			}
			terms = append(terms, rest[:i])
			if strings.HasPrefix(rest[i:], "<=") {
				ops = append(ops, "<=")
				rest = rest[i+2:]
			} else if strings.HasPrefix(rest[i:], "<") {
				ops = append(ops, "<")
				rest = rest[i+1:]
			} else {
				return false, fmt.Errorf("condition %q", c)
			}
		}
		vals := make([]int, len(terms))
		for i, t := range terms {
			v, err := e.index(strings.TrimSpace(t))
			if err != nil {
				return false, fmt.Errorf("condition %q: %v", c, err)
			}
			vals[i] = v
		}
		for i, op := range ops {
			if (op == "<=" && vals[i] > vals[i+1]) || (op == "<" && vals[i] >= vals[i+1]) {
				return false, nil
			}
		}
	}
	return true, nil
}

func (e *evalEnv) sigma(x expr.Sigma, k int) (float64, error) {
	if k == len(x.Over) {
		if x.Where != "" {
			ok, err := e.where(x.Where)
			if err != nil {
				return 0, err
			}
			if !ok {
				return 0, nil
			}
		}
		v, err := e.eval(x.X)
		if err == outOfRange {
			return 0, nil // a term outside the tensors: not in the sum
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
				env := &evalEnv{t: t, values: map[string]*tensor.Tensor[float64]{}, grads: map[string]*tensor.Tensor[float64]{}}
				for i, v := range m.Nodes {
					n := v.Name
					if n == "" { // the trace's name for an unnamed node
						n = fmt.Sprintf("t%d", i+1)
					}
					env.values[n] = v.Value
					if v.Grad != nil {
						env.grads[n] = v.Grad
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
							env.values[n] = t
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
						env.ints = map[string]int{}
						idx := tensor.Index(shape, k)
						for a, sym := range lhsSym {
							if sym == "1" {
								continue
							}
							env.ints[sym] = idx[a] + 1
						}
						got, err := env.eval(st.Rule)
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
