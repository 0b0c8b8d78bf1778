//go:build amd64 && !amd64.v3

package vec

import (
	"math"
	"math/rand/v2"
	"testing"
)

// oldExpf and oldSigmoidf are ops.expf and ops.sigmoidf verbatim as they
// were before they moved here as Exp and Sigmoid (with explicit float32
// conversions against fused multiply-adds). Without FMA in the build
// (amd64 below v3, this file's constraint) the compiler fuses nothing, so
// the two must agree bit for bit.
func oldExpf(x float32) float32 {
	switch {
	case x != x: // NaN
		return x
	case x > expMax32:
		return float32(math.Inf(1))
	case x < expMin32:
		return 0
	}
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

func oldSigmoidf(x float32) float32 {
	if x >= 0 {
		return 1 / (1 + oldExpf(-x))
	}
	e := oldExpf(x)
	return e / (1 + e)
}

// TestExpSameAsOps checks Exp and Sigmoid against the former ops code on
// the specials, a stride through every float32 and random values.
func TestExpSameAsOps(t *testing.T) {
	xs := specials()
	for b := uint64(0); b < 1<<32; b += 4099 {
		xs = append(xs, math.Float32frombits(uint32(b)))
	}
	r := rand.New(rand.NewPCG(11, 12))
	for range 100000 {
		xs = append(xs, float32(r.Float64()*220-110))
	}
	for _, x := range xs {
		if g, w := Exp(x), oldExpf(x); math.Float32bits(g) != math.Float32bits(w) {
			t.Fatalf("Exp(%v) = %v, former expf %v", x, g, w)
		}
		if g, w := Sigmoid(x), oldSigmoidf(x); math.Float32bits(g) != math.Float32bits(w) {
			t.Fatalf("Sigmoid(%v) = %v, former sigmoidf %v", x, g, w)
		}
	}
}
