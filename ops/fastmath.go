package ops

import "math"

// Float32 kernels of the element-wise functions. The float64 paths keep
// using package math; these serve float32 tensors, where a round trip
// through float64 and math.Exp costs more than the work itself.

// Constants of expf's range reduction x = n·ln2 + r, |r| ≤ ln2/2: ln2 split
// into a part with few significant bits (so n·ln2Hi is exact in float32 for
// |n| < 2^9) and the remainder.
const (
	log2e32 = float32(1.4426950408889634)
	ln2Hi32 = float32(0.693145751953125)      // 0x3f317200
	ln2Lo32 = float32(1.4286068203094172e-06) // ln 2 − ln2Hi32
	// expMax32 and expMin32 bound the arguments of expf whose result is
	// finite and non-zero in float32 (subnormals included).
	expMax32 = float32(88.72283)
	expMin32 = float32(-103.97208)
)

// expf is e^x in float32 with an error of about one unit in the last place:
// n = round(x/ln2), r = x − n·ln2 (in two parts), e^r by its Taylor series
// to degree 7 (truncation error below 1e-8 for |r| ≤ ln2/2), scaled by 2^n
// through the exponent bits (in two steps when 2^n is subnormal).
func expf(x float32) float32 {
	switch {
	case x != x: // NaN
		return x
	case x > expMax32:
		return float32(math.Inf(1))
	case x < expMin32:
		return 0
	}
	// Nearest integer (ties up): math.Floor compiles to one instruction,
	// math.Round does not; adding 0.5 to a float32 value is exact in
	// float64, and either rounding of a tie keeps |r| ≤ ln2/2.
	n := float32(math.Floor(float64(x*log2e32) + 0.5))
	r := (x - n*ln2Hi32) - n*ln2Lo32
	p := 1 + r*(1+r*(1.0/2+r*(1.0/6+r*(1.0/24+r*(1.0/120+r*(1.0/720+r*(1.0/5040)))))))
	k := int32(n)
	if k >= -126 {
		if k > 127 { // x just below expMax32 can round n up to 128
			return p * 2 * math.Float32frombits(uint32(k-1+127)<<23)
		}
		return p * math.Float32frombits(uint32(k+127)<<23)
	}
	// 2^k is subnormal: scale by 2^(k+64) first, then by 2^−64
	return p * math.Float32frombits(uint32(k+64+127)<<23) * math.Float32frombits(uint32(-64+127)<<23)
}

// sigmoidf is σ(x) in float32 without overflow for either sign of x, as
// SigmoidF: 1/(1+e^−x) for x ≥ 0, e^x/(1+e^x) below, so that σ of a large
// negative x keeps its relative precision.
func sigmoidf(x float32) float32 {
	if x >= 0 {
		return 1 / (1 + expf(-x))
	}
	e := expf(x)
	return e / (1 + e)
}

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
