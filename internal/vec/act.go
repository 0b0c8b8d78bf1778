package vec

import "math"

// Element-wise activations of float32 slices and their gradients, for the
// float32 fast paths of package ops. Each function has a portable Go loop
// (the functions named …Go below, which were ops' own loops) and AVX-512
// and AVX kernels that compute the same thing bit for bit, subnormals, ±0,
// ±Inf and NaN included: unlike the optimizer kernels they run with Go's
// MXCSR (no FTZ/DAZ). Each writes element i of its outputs from element i
// of its inputs only, so an output may be one of the inputs itself (in
// place), but must not overlap an input otherwise. All slices of one call
// must have the same length; the functions panic otherwise.

// ReLU writes max(x, 0) into y: y[i] = x[i] if x[i] > 0, else +0 (so −0
// and NaN give +0).
func ReLU(x, y []float32) {
	if len(y) != len(x) {
		panic("vec: ReLU slices of different lengths")
	}
	if len(x) == 0 {
		return
	}
	relu(x, y)
}

// LeakyReLU writes y[i] = x[i] if x[i] > 0, else x[i]·slope (a float32
// product; NaN x gives NaN).
func LeakyReLU(x, y []float32, slope float32) {
	if len(y) != len(x) {
		panic("vec: LeakyReLU slices of different lengths")
	}
	if len(x) == 0 {
		return
	}
	leakyReLU(x, y, slope)
}

// ReLUGrad writes the ReLU input gradient g[i] = up[i] if x[i] > 0, else
// +0 — a selection, not up·0, so that an infinite or NaN upstream gradient
// of an inactive unit gives 0 rather than NaN.
func ReLUGrad(x, up, g []float32) {
	if len(up) != len(x) || len(g) != len(x) {
		panic("vec: ReLUGrad slices of different lengths")
	}
	if len(x) == 0 {
		return
	}
	reluGrad(x, up, g)
}

// LeakyReLUGrad writes the LeakyReLU input gradient g[i] = up[i]·1 if
// x[i] > 0, else up[i]·slope.
func LeakyReLUGrad(x, up, g []float32, slope float32) {
	if len(up) != len(x) || len(g) != len(x) {
		panic("vec: LeakyReLUGrad slices of different lengths")
	}
	if len(x) == 0 {
		return
	}
	leakyReLUGrad(x, up, g, slope)
}

// SigmoidPair writes s[i] = Sigmoid(x[i]) and c[i] = Sigmoid(−x[i]) = 1 −
// σ(x[i]), bit for bit, with one exponential per element: with
// e = Exp(−|x|), σ(x) = 1/(1+e) and σ(−x) = e/(1+e) for x ≥ 0, the other
// way round for x < 0. (The backward pass of σ needs σ(−x) = 1 − σ(x),
// which it cannot get from σ(x) by subtraction without losing the relative
// precision of small values.)
func SigmoidPair(x, s, c []float32) {
	if len(s) != len(x) || len(c) != len(x) {
		panic("vec: SigmoidPair slices of different lengths")
	}
	if len(x) == 0 {
		return
	}
	sigmoidPair(x, s, c)
}

// The float32 ReLU loops below select with bit masks instead of branches:
// activations change sign at random, and a mispredicted branch per element
// costs more than the arithmetic. They give exactly the results of a
// branching loop (x > 0 selects x; −0, negatives and NaN take the other
// side).

// posMask returns all ones if the float32 with bits b is > 0 (a positive
// number or +Inf, not NaN), else 0: 1 ≤ b ≤ bits(+Inf) as one unsigned
// comparison, which the compiler turns into a conditional move.
func posMask(b uint32) uint32 {
	var m uint32
	if b-1 < 0x7f800000 {
		m = ^uint32(0)
	}
	return m
}

// reluGo writes max(x, 0) into od (+0 for x ≤ 0 or NaN).
func reluGo(x, od []float32) {
	od = od[:len(x)]
	for i, v := range x {
		b := math.Float32bits(v)
		od[i] = math.Float32frombits(b & posMask(b))
	}
}

// leakyReLUGo writes x for x > 0, else slope·x (in float32), into od.
func leakyReLUGo(x, od []float32, slope float32) {
	od = od[:len(x)]
	for i, v := range x {
		b := math.Float32bits(v)
		m := posMask(b)
		od[i] = math.Float32frombits(b&m | math.Float32bits(v*slope)&^m)
	}
}

// reluGradGo writes into gd up for x > 0, else +0 (not up·0, which would
// turn an infinite up into NaN).
func reluGradGo(x, up, gd []float32) {
	up, gd = up[:len(x)], gd[:len(x)]
	for i, v := range x {
		gd[i] = math.Float32frombits(math.Float32bits(up[i]) & posMask(math.Float32bits(v)))
	}
}

// leakyReLUGradGo writes into gd up·1 for x > 0, else up·slope.
func leakyReLUGradGo(x, up, gd []float32, slope float32) {
	up, gd = up[:len(x)], gd[:len(x)]
	one, sb := math.Float32bits(1), math.Float32bits(slope)
	for i, v := range x {
		m := posMask(math.Float32bits(v))
		gd[i] = up[i] * math.Float32frombits(one&m|sb&^m)
	}
}

// sigmoidPairGo is SigmoidPair's portable loop: Sigmoid(x) and Sigmoid(−x)
// from one Exp(−|x|). For x ≥ 0 (−0 included) Sigmoid(x) = 1/(1+Exp(−x))
// and Sigmoid(−x) = e/(1+e) with e = Exp(−x) (for ±0, both are 1/2), and
// −x has the bits of −|x| except for x = −0, where Exp(+0) = Exp(−0) = 1;
// for x < 0 the two swap. NaN takes Sigmoid's own path (σ(NaN) is the
// quieted NaN of its sign, which −|x| would lose).
func sigmoidPairGo(x, s, c []float32) {
	s, c = s[:len(x)], c[:len(x)]
	for i, v := range x {
		if v != v {
			s[i], c[i] = Sigmoid(v), Sigmoid(-v)
			continue
		}
		e := Exp(math.Float32frombits(math.Float32bits(v) | 1<<31)) // Exp(−|v|)
		d := 1 + e
		q1, q2 := 1/d, e/d
		if v >= 0 {
			s[i], c[i] = q1, q2
		} else {
			s[i], c[i] = q2, q1
		}
	}
}

// Kernel names the element-wise kernel family used on this CPU ("avx512",
// "avx2" or "go"), for version and benchmark reports.
func Kernel() string { return kernel() }
