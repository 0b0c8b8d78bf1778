package ops

import (
	"math"
	"testing"

	"github.com/backprop-dev/backprop/expr"
)

// TestActivationDescriptors checks every entry of Activations against
// itself: the derivative against central differences of the function, the
// formula (call) and the local derivative's expression evaluated by expr
// against F and DF, and the float32 kernels against F and DF.
func TestActivationDescriptors(t *testing.T) {
	xs := []float64{-2.5, -0.7, -0.1, 0.3, 1.1, 3}
	for a, info := range Activations {
		const slope = 0.2
		op := &UnaryOp[float64]{Fn: a, Slope: slope}
		for _, x := range xs {
			y := info.F(x, slope)
			const h = 1e-6
			fd := (info.F(x+h, slope) - info.F(x-h, slope)) / (2 * h)
			if d := info.DF(x, y, slope); math.Abs(d-fd) > 1e-6 {
				t.Errorf("%s: DF(%g) = %g, central difference %g", a, x, d, fd)
			}
			if v, err := expr.Eval(op.call(expr.Num(x))); err != nil || math.Abs(v-y) > 1e-15 {
				t.Errorf("%s: the formula at %g evaluates to %v (%v), F gives %g", a, x, v, err, y)
			}
			if v, err := expr.Eval(op.deriv(expr.Num(x), expr.Num(y), false)); err != nil || math.Abs(v-info.DF(x, y, slope)) > 1e-15 {
				t.Errorf("%s: the local derivative at %g evaluates to %v (%v), DF gives %g", a, x, v, err, info.DF(x, y, slope))
			}
		}
		x32 := make([]float32, len(xs))
		for i, x := range xs {
			x32[i] = float32(x)
		}
		y32, up, gd := make([]float32, len(xs)), make([]float32, len(xs)), make([]float32, len(xs))
		if info.Forward32 != nil {
			info.Forward32(x32, y32, slope)
			for i, x := range x32 {
				if want := info.F(float64(x), float64(float32(slope))); math.Abs(float64(y32[i])-want) > 1e-6*math.Max(1, math.Abs(want)) {
					t.Errorf("%s: Forward32(%g) = %g, F gives %g", a, x, y32[i], want)
				}
			}
		}
		if info.Backward32 != nil {
			for i, x := range x32 {
				y32[i] = float32(info.F(float64(x), slope))
				up[i] = 1.5
			}
			info.Backward32(x32, y32, up, gd, slope)
			for i, x := range x32 {
				if want := 1.5 * info.DF(float64(x), float64(y32[i]), float64(float32(slope))); math.Abs(float64(gd[i])-want) > 1e-6 {
					t.Errorf("%s: Backward32 at %g = %g, DF gives %g", a, x, gd[i], want)
				}
			}
		}
		if info.Text != "" && info.TeX == "" {
			t.Errorf("%s: a named function without a LaTeX operator", a)
		}
	}
	if len(LayerActivations()) != 6 {
		t.Errorf("layer activations %v, want relu, leaky_relu, sigmoid, tanh, identity, gelu", LayerActivations())
	}
}
