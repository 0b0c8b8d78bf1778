package ops

import (
	"fmt"
	"math"
	"slices"

	"github.com/backprop-dev/backprop/expr"
	"github.com/backprop-dev/backprop/internal/vec"
)

// Activation names an element-wise function.
type Activation string

// The element-wise functions of the engine.
const (
	ActReLU       Activation = "relu"
	ActLeakyReLU  Activation = "leaky_relu"
	ActSigmoid    Activation = "sigmoid"
	ActTanh       Activation = "tanh"
	ActLogSigmoid Activation = "log_sigmoid"
	ActIdentity   Activation = "identity"
	// ActGELU is the exact GELU, x·Φ(x) = ½x(1 + erf(x/√2)) with Φ the
	// standard normal CDF: PyTorch's F.gelu default (approximate='none'),
	// the activation of a transformer block's MLP.
	ActGELU Activation = "gelu"
)

// ActivationInfo is everything the engine knows about one element-wise
// function, in one place: UnaryOp computes and explains with it, package
// expr evaluates its formulas by it (Register), and a spec's activation
// field is validated against it. A new activation is one entry of
// Activations.
type ActivationInfo struct {
	// Text is the function's name in formulas (σ, ReLU); empty for the
	// identity, which formulas leave out. TeX is its LaTeX operator.
	Text, TeX string
	// Sloped functions take the negative slope as a second argument
	// (LeakyReLU(x, 0.2)).
	Sloped bool
	// F is the function at x and DF its derivative at x, given y = F(x)
	// for reuse; slope is the negative slope where Sloped.
	F  func(x, slope float64) float64
	DF func(x, y, slope float64) float64
	// Deriv is the local derivative as an expression in the input x and the
	// output y (1[x > 0], y(1 − y)); whole asks for element-wise products
	// (⊙) of whole tensors rather than products of elements.
	Deriv func(x, y expr.Expr, slope float64, whole bool) expr.Expr
	// Note states the derivative and its convention in words, given the
	// names of x and y (see UnaryOp.DerivativeNote).
	Note func(x, y string, slope float64) string
	// Gate says the derivative is 1 for x > 0 and the slope elsewhere, so
	// the gradient selects (or scales) the upstream gradient instead of
	// multiplying it by 0 or 1.
	Gate bool
	// Forward32 and Backward32 are float32 kernels (package vec's SIMD or
	// the float32 approximations of fastmath.go); nil computes through F
	// and DF in float64.
	Forward32  func(x, out []float32, slope float32)
	Backward32 func(x, y, up, gd []float32, slope float32)
	// Layer says a spec layer may name the function as its activation
	// (log σ is the logistic objective's, not a layer's).
	Layer bool
}

// Activations describes every element-wise function of the engine.
var Activations = map[Activation]ActivationInfo{
	ActReLU: {
		Text: "ReLU", TeX: `\operatorname{ReLU}`, Gate: true, Layer: true,
		F: func(x, _ float64) float64 {
			if x > 0 {
				return x
			}
			return 0
		},
		DF: func(x, _, _ float64) float64 { return step(x, 0) },
		Deriv: func(x, _ expr.Expr, _ float64, _ bool) expr.Expr {
			return expr.Indicator{C: expr.Cond{X: x, Op: ">", Y: expr.Num(0)}}
		},
		Note: func(x, _ string, _ float64) string {
			return fmt.Sprintf("ReLU′(%s) = 1[%s > 0]: 1 where %s > 0, else 0 (0 at %s = 0, as PyTorch)", x, x, x, x)
		},
		Forward32:  func(x, out []float32, _ float32) { vec.ReLU(x, out) },
		Backward32: func(x, _, up, gd []float32, _ float32) { vec.ReLUGrad(x, up, gd) },
	},
	ActLeakyReLU: {
		Text: "LeakyReLU", TeX: `\operatorname{LeakyReLU}`, Sloped: true, Gate: true, Layer: true,
		F: func(x, slope float64) float64 {
			if x > 0 {
				return x
			}
			return slope * x
		},
		DF: func(x, _, slope float64) float64 { return step(x, slope) },
		Deriv: func(x, _ expr.Expr, slope float64, _ bool) expr.Expr {
			return expr.Sum{expr.Indicator{C: expr.Cond{X: x, Op: ">", Y: expr.Num(0)}},
				expr.Product{expr.Num(slope), expr.Indicator{C: expr.Cond{X: x, Op: "<=", Y: expr.Num(0)}}}}
		},
		Note: func(x, _ string, slope float64) string {
			return fmt.Sprintf("LeakyReLU′(%s) = 1 where %s > 0, else the slope %g (the slope at %s = 0, as PyTorch)", x, x, slope, x)
		},
		Forward32:  func(x, out []float32, slope float32) { vec.LeakyReLU(x, out, slope) },
		Backward32: func(x, _, up, gd []float32, slope float32) { vec.LeakyReLUGrad(x, up, gd, slope) },
	},
	ActSigmoid: {
		Text: "σ", TeX: `\sigma`, Layer: true,
		F:  func(x, _ float64) float64 { return SigmoidF(x) },
		DF: func(x, y, _ float64) float64 { return y * SigmoidF(-x) }, // σ(x)(1−σ(x)) with 1−σ(x) = σ(−x)
		Deriv: func(_, y expr.Expr, _ float64, whole bool) expr.Expr {
			return times(whole, y, expr.Diff{A: expr.Num(1), B: y})
		},
		Note: func(x, y string, _ float64) string {
			return fmt.Sprintf("σ′(%s) = σ(%s)(1 − σ(%s)) = %s(1 − %s)", x, x, x, y, y)
		},
		Forward32: func(x, out []float32, _ float32) {
			for i, v := range x {
				out[i] = sigmoidf(v)
			}
		},
		Backward32: func(x, y, up, gd []float32, _ float32) {
			for i, v := range x {
				gd[i] = up[i] * (y[i] * sigmoidf(-v))
			}
		},
	},
	ActTanh: {
		Text: "tanh", TeX: `\tanh`, Layer: true,
		F:  func(x, _ float64) float64 { return math.Tanh(x) },
		DF: func(_, y, _ float64) float64 { return 1 - y*y }, // in float64: no cancellation near saturation
		Deriv: func(_, y expr.Expr, _ float64, whole bool) expr.Expr {
			return expr.Diff{A: expr.Num(1), B: times(whole, y, y)}
		},
		Note: func(x, y string, _ float64) string {
			return fmt.Sprintf("tanh′(%s) = 1 − tanh²(%s) = 1 − %s²", x, x, y)
		},
		Forward32: func(x, out []float32, _ float32) {
			for i, v := range x {
				out[i] = tanhf(v)
			}
		},
	},
	ActLogSigmoid: {
		Text: "logσ", TeX: `\log\sigma`,
		F:  func(x, _ float64) float64 { return LogSigmoidF(x) },
		DF: func(x, _, _ float64) float64 { return SigmoidF(-x) },
		Deriv: func(x, _ expr.Expr, _ float64, _ bool) expr.Expr {
			return expr.Call{Fn: "σ", Args: []expr.Expr{expr.Neg{X: x}}}
		},
		Note: func(x, _ string, _ float64) string {
			return fmt.Sprintf("d logσ(%s)/d%s = σ′(%s)/σ(%s) = σ(%s)(1 − σ(%s))/σ(%s) = 1 − σ(%s) = σ(−%s), computed as σ(−%s) so that it does not cancel", x, x, x, x, x, x, x, x, x, x)
		},
	},
	ActGELU: {
		Text: "GELU", TeX: `\operatorname{GELU}`, Layer: true,
		F:  func(x, _ float64) float64 { return x * NormCDF(x) },
		DF: func(x, _, _ float64) float64 { return NormCDF(x) + x*NormPDF(x) },
		Deriv: func(x, _ expr.Expr, _ float64, whole bool) expr.Expr {
			return expr.Sum{expr.Call{Fn: "Φ", Args: []expr.Expr{x}}, times(whole, x, expr.Call{Fn: "φ", Args: []expr.Expr{x}})}
		},
		Note: func(x, _ string, _ float64) string {
			return fmt.Sprintf("GELU(%s) = %s·Φ(%s) and GELU′(%s) = Φ(%s) + %s·φ(%s), with Φ(%s) = ½(1 + erf(%s/√2)) the standard normal CDF and φ(%s) = exp(−%s²/2)/√(2π) its density (the exact GELU, PyTorch's default)", x, x, x, x, x, x, x, x, x, x, x)
		},
	},
	ActIdentity: {
		Layer: true,
		F:     func(x, _ float64) float64 { return x },
		DF:    func(_, _, _ float64) float64 { return 1 },
		Deriv: func(_, _ expr.Expr, _ float64, _ bool) expr.Expr { return expr.Num(1) },
		Note:  func(_, _ string, _ float64) string { return "" },
	},
}

// LayerActivations are the activations a spec layer may name, in a fixed
// order for messages.
func LayerActivations() []Activation {
	var out []Activation
	for _, a := range []Activation{ActReLU, ActLeakyReLU, ActSigmoid, ActTanh, ActLogSigmoid, ActIdentity} {
		if Activations[a].Layer {
			out = append(out, a)
		}
	}
	var more []Activation // entries added after the six above, by name
	for a, info := range Activations {
		if info.Layer && !slices.Contains(out, a) {
			more = append(more, a)
		}
	}
	slices.Sort(more)
	return append(out, more...)
}

// NormCDF is Φ(x) = ½(1 + erf(x/√2)), the standard normal distribution
// function GELU weighs its input by; erfc keeps its relative precision in
// the far negative tail, where 1 + erf would cancel.
func NormCDF(x float64) float64 { return 0.5 * math.Erfc(-x/math.Sqrt2) }

// NormPDF is φ(x) = exp(−x²/2)/√(2π), the standard normal density, Φ′.
func NormPDF(x float64) float64 { return math.Exp(-x*x/2) / math.Sqrt(2*math.Pi) }

// step is 1 for x > 0 and below the given value.
func step(x, below float64) float64 {
	if x > 0 {
		return 1
	}
	return below
}

// times is a·b: element-wise (⊙) between whole tensors, a product between
// elements.
func times(whole bool, a, b expr.Expr) expr.Expr {
	if whole {
		return expr.Hadamard{a, b}
	}
	return expr.Product{a, b}
}

// The formulas' function names evaluate through the table, and Φ and φ
// (GELU's derivative) as the standard normal CDF and density.
func init() {
	for name, f := range map[string]struct {
		tex string
		f   func(float64) float64
	}{"Φ": {`\Phi`, NormCDF}, "φ": {`\varphi`, NormPDF}} {
		fn := f.f
		expr.Register(name, f.tex, func(a []float64) (float64, error) {
			if len(a) != 1 {
				return 0, fmt.Errorf("expr: %d arguments, want 1", len(a))
			}
			return fn(a[0]), nil
		})
	}
	for _, info := range Activations {
		if info.Text == "" {
			continue
		}
		f, sloped := info.F, info.Sloped
		expr.Register(info.Text, info.TeX, func(a []float64) (float64, error) {
			slope := 0.0
			if sloped {
				if len(a) != 2 {
					return 0, fmt.Errorf("expr: %d arguments, want the input and the slope", len(a))
				}
				slope = a[1]
			}
			if len(a) < 1 {
				return 0, fmt.Errorf("expr: no argument")
			}
			return f(a[0], slope), nil
		})
	}
}
