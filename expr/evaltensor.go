package expr

import (
	"fmt"

	"github.com/backprop-dev/backprop/tensor"
)

// Env resolves the names in an expression (tensor references and gradient
// references) to values.
type Env func(e Expr) (*tensor.Tensor[float64], bool)

// EvalTensor evaluates a whole-tensor expression: matrix products,
// transposes, element-wise algebra and functions, and Fn nodes. Vectors are
// columns inside products and transposes; element-wise operands must hold
// the same number of elements, or one of them a single element. It is how
// `derive --check` evaluates derived gradient equations.
func EvalTensor(e Expr, env Env) (*tensor.Tensor[float64], error) {
	switch x := e.(type) {
	case Num:
		return tensor.Scalar(float64(x)), nil
	case Ref, Grad:
		if v, ok := env(e); ok {
			return v, nil
		}
		return nil, fmt.Errorf("no value for %s", String(e))
	case Inline:
		return EvalTensor(x.X, env)
	case Transpose:
		v, err := EvalTensor(x.X, env)
		if err != nil {
			return nil, err
		}
		r, c := asMatrix(v)
		out := tensor.New[float64](c, r)
		for i := range r {
			for j := range c {
				out.Data()[j*r+i] = v.Data()[i*c+j]
			}
		}
		return out, nil
	case MatProd:
		var acc *tensor.Tensor[float64]
		for _, f := range x {
			v, err := EvalTensor(f, env)
			if err != nil {
				return nil, err
			}
			if acc == nil {
				acc = v
				continue
			}
			if acc, err = matmul(acc, v, e); err != nil {
				return nil, err
			}
		}
		return acc, nil
	case Sum:
		return fold(x, env, func(a, b float64) float64 { return a + b })
	case Product:
		return fold(x, env, func(a, b float64) float64 { return a * b })
	case Hadamard:
		return fold(x, env, func(a, b float64) float64 { return a * b })
	case Diff:
		return fold([]Expr{x.A, x.B}, env, func(a, b float64) float64 { return a - b })
	case Quot:
		return fold([]Expr{x.A, x.B}, env, func(a, b float64) float64 { return a / b })
	case Neg:
		return fold([]Expr{Num(0), x.X}, env, func(a, b float64) float64 { return a - b })
	case Indicator:
		c, ok := x.C.(Cond)
		if !ok {
			return nil, fmt.Errorf("indicator of a non-comparison")
		}
		return fold([]Expr{c.X, c.Y}, env, func(a, b float64) float64 {
			v, _ := Eval(Indicator{C: Cond{X: Num(a), Op: c.Op, Y: Num(b)}})
			return v
		})
	case Call:
		args := make([]*tensor.Tensor[float64], len(x.Args))
		for i, a := range x.Args {
			v, err := EvalTensor(a, env)
			if err != nil {
				return nil, err
			}
			args[i] = v
		}
		out := args[0].Clone()
		for i := range out.Data() {
			vals := make([]float64, len(args))
			for j, a := range args {
				vals[j] = a.Data()[min(i, a.Len()-1)]
			}
			v, err := callFn(x.Fn, vals)
			if err != nil {
				return nil, err
			}
			out.Data()[i] = v
		}
		return out, nil
	case Fn:
		if x.Eval == nil {
			return nil, fmt.Errorf("%s cannot be evaluated", x.Name)
		}
		return evalWith(x.Args, env, x.Eval)
	case EvalAs:
		return evalWith(x.Args, env, x.Eval)
	}
	return nil, fmt.Errorf("cannot evaluate %T %s", e, String(e))
}

// asMatrix views a tensor as rows×cols: scalars 1×1, vectors columns.
func asMatrix(t *tensor.Tensor[float64]) (int, int) {
	switch t.Rank() {
	case 0:
		return 1, 1
	case 1:
		return t.Dim(0), 1
	case 2:
		return t.Dim(0), t.Dim(1)
	}
	return t.Len() / t.Dim(-1), t.Dim(-1)
}

func matmul(a, b *tensor.Tensor[float64], e Expr) (*tensor.Tensor[float64], error) {
	ar, ac := asMatrix(a)
	br, bc := asMatrix(b)
	if ar*ac == 1 || br*bc == 1 { // a scalar factor scales
		s, m := a, b
		if ar*ac != 1 {
			s, m = b, a
		}
		out := m.Clone()
		for i := range out.Data() {
			out.Data()[i] *= s.Data()[0]
		}
		return out, nil
	}
	if ac != br {
		return nil, fmt.Errorf("%s: %d×%d times %d×%d does not chain", String(e), ar, ac, br, bc)
	}
	out := tensor.New[float64](ar, bc)
	for i := range ar {
		for p := range ac {
			av := a.Data()[i*ac+p]
			for j := range bc {
				out.Data()[i*bc+j] += av * b.Data()[p*bc+j]
			}
		}
	}
	return out, nil
}

// fold combines operands element-wise, broadcasting single elements; the
// result takes the shape of the first operand with the most elements.
func fold(es []Expr, env Env, op func(a, b float64) float64) (*tensor.Tensor[float64], error) {
	vals := make([]*tensor.Tensor[float64], len(es))
	n, big := 1, 0
	for i, x := range es {
		v, err := EvalTensor(x, env)
		if err != nil {
			return nil, err
		}
		vals[i] = v
		if v.Len() > n {
			n, big = v.Len(), i
		}
	}
	for i, v := range vals {
		if v.Len() != 1 && v.Len() != n {
			return nil, fmt.Errorf("%s has %d elements, %s has %d", String(es[i]), v.Len(), String(es[big]), n)
		}
	}
	out := tensor.New[float64](vals[big].Shape()...)
	for k := range n {
		acc := vals[0].Data()[min(k, vals[0].Len()-1)]
		for _, v := range vals[1:] {
			acc = op(acc, v.Data()[min(k, v.Len()-1)])
		}
		out.Data()[k] = acc
	}
	return out, nil
}

// evalWith evaluates args and hands their values to eval.
func evalWith(args []Expr, env Env, eval func([]*tensor.Tensor[float64]) (*tensor.Tensor[float64], error)) (*tensor.Tensor[float64], error) {
	vals := make([]*tensor.Tensor[float64], len(args))
	for i, a := range args {
		v, err := EvalTensor(a, env)
		if err != nil {
			return nil, err
		}
		vals[i] = v
	}
	return eval(vals)
}
