// Package ruleeval evaluates the general-element rules that ops state with
// symbolic indices (u0[i] = Σ_j w0[i,j]·z[j] + b0[i]) for given index
// values, looking tensors up by name, so that tests can check every printed
// rule against the numbers the engine computed. A Σ runs over the extent of
// the axis its index appears on alone; a term whose index falls outside
// its tensor is dropped, as the rules' notes say.
package ruleeval

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"math"
	"strconv"
	"strings"

	"github.com/backprop-dev/backprop/expr"
	"github.com/backprop-dev/backprop/tensor"
)

// Env is what a rule is evaluated against: tensor values and gradients by
// name, and the index symbols bound so far.
type Env struct {
	Values map[string]*tensor.Tensor[float64]
	Grads  map[string]*tensor.Tensor[float64]
	Ints   map[string]int
}

// New returns an empty environment.
func New() *Env {
	return &Env{Values: map[string]*tensor.Tensor[float64]{}, Grads: map[string]*tensor.Tensor[float64]{}, Ints: map[string]int{}}
}

// ErrOutOfRange is returned for an element whose index falls outside its
// tensor: a term a rule's sum drops.
var ErrOutOfRange = fmt.Errorf("index out of range")

// Index evaluates an affine index expression such as i−k+1 or 4(c−1)+j.
func (e *Env) Index(s string) (int, error) {
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
			v, ok := e.Ints[strings.ReplaceAll(x.Name, "_p", "'")]
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

func (e *Env) elem(t *tensor.Tensor[float64], name string, sym []string) (float64, error) {
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
		v, err := e.Index(s)
		if err != nil {
			return 0, err
		}
		if v < 1 || v > t.Dim(a) {
			return 0, ErrOutOfRange
		}
		pos = pos*t.Dim(a) + v - 1
	}
	return t.Data()[pos], nil
}

// rangeOf finds the size of index s: the axis where it appears alone.
func (e *Env) rangeOf(x expr.Expr, s string) int {
	n := 0
	expr.Map(x, func(y expr.Expr) expr.Expr {
		var name string
		var sym []string
		var tt map[string]*tensor.Tensor[float64]
		switch r := y.(type) {
		case expr.Ref:
			name, sym, tt = r.Name, r.Sym, e.Values
		case expr.Grad:
			name, sym, tt = r.Wrt.Name, r.Wrt.Sym, e.Grads
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

// Eval evaluates a rule expression at the bound index symbols.
func (e *Env) Eval(x expr.Expr) (float64, error) {
	switch x := x.(type) {
	case expr.Num:
		return float64(x), nil
	case expr.Ref:
		return e.elem(e.Values[x.Name], x.Name, x.Sym)
	case expr.Grad:
		return e.elem(e.Grads[x.Wrt.Name], "∂"+x.Wrt.Name, x.Wrt.Sym)
	case expr.Sum:
		s := 0.0
		for _, t := range x {
			v, err := e.Eval(t)
			if err != nil {
				return 0, err
			}
			s += v
		}
		return s, nil
	case expr.Product:
		p := 1.0
		for _, t := range x {
			v, err := e.Eval(t)
			if err != nil {
				return 0, err
			}
			p *= v
		}
		return p, nil
	case expr.Neg:
		v, err := e.Eval(x.X)
		return -v, err
	case expr.Diff:
		a, err := e.Eval(x.A)
		if err != nil {
			return 0, err
		}
		b, err := e.Eval(x.B)
		return a - b, err
	case expr.Quot:
		a, err := e.Eval(x.A)
		if err != nil {
			return 0, err
		}
		b, err := e.Eval(x.B)
		return a / b, err
	case expr.Indicator:
		c := x.C.(expr.Cond)
		a, err := e.Eval(c.X)
		if err != nil {
			return 0, err
		}
		b, err := e.Eval(c.Y)
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
			v, err := e.Eval(arg)
			if err == ErrOutOfRange && x.Fn == "max" {
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
		if v, ok := e.Ints[x.Plain]; ok { // an index used as a number (1[j = y[i]])
			return float64(v), nil
		}
		if v, err := e.Index(x.Plain); err == nil { // an index expression (1[j = k+6]) or the literal 1
			return float64(v), nil
		}
		return 0, fmt.Errorf("raw %q", x.Plain)
	case expr.Sigma:
		return e.sigma(x, 0)
	}
	return 0, fmt.Errorf("cannot evaluate %T (%s)", x, expr.String(x))
}

// where evaluates a Σ's condition: comma-separated chains a ≤ b ≤ c (or <).
func (e *Env) where(c string) (bool, error) {
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
			v, err := e.Index(strings.TrimSpace(t))
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

func (e *Env) sigma(x expr.Sigma, k int) (float64, error) {
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
		v, err := e.Eval(x.X)
		if err == ErrOutOfRange {
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
		e.Ints[s] = v
		p, err := e.sigma(x, k+1)
		if err != nil {
			return 0, err
		}
		total += p
	}
	delete(e.Ints, s)
	return total, nil
}
