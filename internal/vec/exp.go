package vec

import "math"

// Scalar float32 e^x and σ(x) (formerly expf and sigmoidf of package ops,
// which now call these): the reference the sigmoidPair kernels reproduce
// bit for bit, and the functions ops uses one element at a time (tanh).
// Every product that an addition follows is converted to float32
// explicitly, so that no compiler fuses the two into one multiply-add (Go
// may on arm64 or with GOAMD64=v3); on amd64 by default the results are
// those of the former unconverted expressions.

// Constants of Exp's range reduction x = n·ln2 + r, |r| ≤ ln2/2: ln2 split
// into a part with few significant bits (so n·ln2Hi32 is exact in float32
// for |n| < 2^9) and the remainder. gen/main.go repeats these literals.
const (
	log2e32 = float32(1.4426950408889634)
	ln2Hi32 = float32(0.693145751953125)      // 0x3f317200
	ln2Lo32 = float32(1.4286068203094172e-06) // ln 2 − ln2Hi32
	// expMax32 and expMin32 bound the arguments of Exp whose result is
	// finite and non-zero in float32 (subnormals included).
	expMax32 = float32(88.72283)
	expMin32 = float32(-103.97208)
)

// Exp is e^x in float32 with an error of about one unit in the last place:
// n = round(x/ln2), r = x − n·ln2 (in two parts), e^r by its Taylor series
// to degree 7 (truncation error below 1e-8 for |r| ≤ ln2/2), scaled by 2^n
// through the exponent bits (in two steps when 2^n is subnormal). NaN
// gives x itself, x > 88.72283 gives +Inf, x < −103.97208 gives +0.
func Exp(x float32) float32 {
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
	r := (x - float32(n*ln2Hi32)) - float32(n*ln2Lo32)
	// p = 1 + r·(1 + r·(1/2 + r·(1/6 + r·(1/24 + r·(1/120 + r·(1/720 + r·(1/5040)))))))
	p := float32(r * (1.0 / 5040))
	p = float32(r * (1.0/720 + p))
	p = float32(r * (1.0/120 + p))
	p = float32(r * (1.0/24 + p))
	p = float32(r * (1.0/6 + p))
	p = float32(r * (1.0/2 + p))
	p = float32(r * (1 + p))
	p = 1 + p
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

// Sigmoid is σ(x) = 1/(1+e^−x) in float32 without overflow for either sign
// of x: 1/(1+Exp(−x)) for x ≥ 0, e/(1+e) with e = Exp(x) below (and for
// NaN), so that σ of a large negative x keeps its relative precision.
func Sigmoid(x float32) float32 {
	if x >= 0 {
		return 1 / (1 + Exp(-x))
	}
	e := Exp(x)
	return e / (1 + e)
}
