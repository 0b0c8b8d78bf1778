package expr

import (
	"fmt"
	"math"
)

// Eval computes the value of a fully numeric expression (numbers combined
// by the node types of this package and the functions the engine uses). It
// lets tests and --check confirm that every substituted formula a trace
// prints really evaluates to the value printed beside it.
func Eval(e Expr) (float64, error) {
	switch x := e.(type) {
	case Num:
		return float64(x), nil
	case Inline:
		return x.Value, nil
	case Sum:
		s := 0.0
		for _, t := range x {
			v, err := Eval(t)
			if err != nil {
				return 0, err
			}
			s += v
		}
		return s, nil
	case Product:
		p := 1.0
		for _, t := range x {
			v, err := Eval(t)
			if err != nil {
				return 0, err
			}
			p *= v
		}
		return p, nil
	case Neg:
		v, err := Eval(x.X)
		return -v, err
	case Diff:
		a, err := Eval(x.A)
		if err != nil {
			return 0, err
		}
		b, err := Eval(x.B)
		return a - b, err
	case Quot:
		a, err := Eval(x.A)
		if err != nil {
			return 0, err
		}
		b, err := Eval(x.B)
		return a / b, err
	case Indicator:
		c, ok := x.C.(Cond)
		if !ok {
			return 0, fmt.Errorf("expr: indicator of a non-comparison")
		}
		a, err := Eval(c.X)
		if err != nil {
			return 0, err
		}
		b, err := Eval(c.Y)
		if err != nil {
			return 0, err
		}
		var t bool
		switch c.Op {
		case ">":
			t = a > b
		case "<":
			t = a < b
		case ">=":
			t = a >= b
		case "<=":
			t = a <= b
		default:
			return 0, fmt.Errorf("expr: unknown comparison %q", c.Op)
		}
		if t {
			return 1, nil
		}
		return 0, nil
	case Call:
		args := make([]float64, len(x.Args))
		for i, a := range x.Args {
			v, err := Eval(a)
			if err != nil {
				return 0, err
			}
			args[i] = v
		}
		return callFn(x.Fn, args)
	}
	return 0, fmt.Errorf("expr: cannot evaluate %T (%s)", e, String(e))
}

// Func is a function formulas may call by name, registered by the package
// that defines it (ops registers its activations), so that expr evaluates
// them without depending on that package.
type Func struct {
	TeX  string // LaTeX operator; empty means \operatorname{name}
	Eval func(args []float64) (float64, error)
}

var funcs = map[string]Func{}

// Register makes the function name evaluable in Call expressions, and
// rendered in LaTeX as tex. It is meant for package initialisation; a
// later registration of the same name replaces the earlier one.
func Register(name, tex string, eval func(args []float64) (float64, error)) {
	funcs[name] = Func{TeX: tex, Eval: eval}
}

func softplus(x float64) float64 {
	if x > 0 {
		return x + math.Log1p(math.Exp(-x))
	}
	return math.Log1p(math.Exp(x))
}

func callFn(fn string, a []float64) (float64, error) {
	if f, ok := funcs[fn]; ok {
		return f.Eval(a)
	}
	switch fn {
	case "softplus":
		return softplus(a[0]), nil
	case "exp":
		return math.Exp(a[0]), nil
	case "log":
		return math.Log(a[0]), nil
	case "logsumexp":
		return logSumExp(a), nil
	case "max":
		m := math.Inf(-1)
		for _, v := range a {
			if v > m || v != v {
				m = v
			}
		}
		return m, nil
	}
	return 0, fmt.Errorf("expr: cannot evaluate function %q", fn)
}

// logSumExp is log Σ exp(aᵢ) with the maximum taken out, so that large
// arguments do not overflow.
func logSumExp(a []float64) float64 {
	m := math.Inf(-1)
	for _, v := range a {
		m = math.Max(m, v)
	}
	if math.IsInf(m, 0) {
		return m
	}
	s := 0.0
	for _, v := range a {
		s += math.Exp(v - m)
	}
	return m + math.Log(s)
}
