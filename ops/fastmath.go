package ops

import (
	"math"

	"github.com/backprop-dev/backprop/internal/vec"
)

// Float32 kernels of the element-wise functions. The float64 paths keep
// using package math; these serve float32 tensors, where a round trip
// through float64 and math.Exp costs more than the work itself.

// expf is e^x in float32 with an error of about one unit in the last
// place; the code lives in package vec (vec.Exp), next to the SIMD
// kernels that reproduce it bit for bit.
func expf(x float32) float32 { return vec.Exp(x) }

// sigmoidf is σ(x) in float32 without overflow for either sign of x, as
// SigmoidF: 1/(1+e^−x) for x ≥ 0, e^x/(1+e^x) below, so that σ of a large
// negative x keeps its relative precision (vec.Sigmoid).
func sigmoidf(x float32) float32 { return vec.Sigmoid(x) }

// tanhSmall32 is the |x| below which tanhf defers to math.Tanh: there the
// form 1 − 2/(e^{2|x|}+1) would cancel.
const tanhSmall32 = 0.55

// tanhf is tanh(x) in float32: sign(x)·(1 − 2/(e^{2|x|}+1)) for
// |x| ≥ 0.55, where the subtraction loses less than one bit, and math.Tanh
// of the float64 value for smaller |x|, where it would cancel.
func tanhf(x float32) float32 {
	a := x
	if a < 0 {
		a = -a
	}
	if !(a >= tanhSmall32) { // small or NaN
		return float32(math.Tanh(float64(x)))
	}
	t := 1 - 2/(expf(2*a)+1)
	if x < 0 {
		return -t
	}
	return t
}
