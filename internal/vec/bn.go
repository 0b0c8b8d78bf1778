package vec

// The passes of batch normalisation (package ops, BatchNormOp) over float32
// or float64 rows, with float64 arithmetic: the statistics, the
// normalisation, the parameter gradients' sums and the input gradient.
//
// A 2-D input (N, C, H, W) is a row of H·W values per sample and channel,
// with scalar per-channel parameters: Sum, SumSqDev and SumGradDot reduce a
// row; Normalize, NormGrad and ScaleGrad map one. A 1-D input (N, C) is a
// row of C channels per sample, with per-channel parameter slices:
// AccSum, AccSqDev and AccGradDot add a row into per-channel sums (each
// channel keeps its own running sum, added to in the order of the samples);
// NormalizeCh, NormGradCh and ScaleGradCh map a row.
//
// Every function computes the Go expression its comment gives, one IEEE
// float64 operation at a time in that order, with no fused multiply-add, and
// rounds to the element type only at the end. For float32 slices it runs
// the AVX-512 or AVX kernels (VCVTPS2PD to 8 or 4 float64 lanes) when the
// CPU has them, otherwise the Go loops below; float64 slices (and named
// float types) always run the Go loops. All paths give bit-identical
// results for every input, subnormals, ±0 and ±Inf included (the kernels
// keep Go's MXCSR); a NaN result is NaN on every path, but when two NaNs
// meet in one operation the payload that survives may differ, as it may
// between two compilations of the Go loops (the compiler may swap the
// operands of + and ·).
//
// The reductions (Sum, SumSqDev, SumGradDot) add in one fixed order that
// every path follows: eight partial sums, lane j adding the terms of
// elements j, j+8, j+16, … in index order, reduced at the end as
// ((s0+s4)+(s2+s6)) + ((s1+s5)+(s3+s7)). So their results do not depend
// on the CPU, and a caller that sums rows in a fixed order gets results
// that do not depend on how it splits the work either.
//
// All slices of one call must have the same length (the functions panic
// otherwise). Element i of an output depends on element i of the inputs
// only, so an output may be one of the inputs itself (in place) but must
// not overlap an input otherwise.

// Float is the set of element types of the batch-normalisation passes.
type Float interface {
	~float32 | ~float64
}

// Sum returns Σ float64(x[i]) in the fixed order above.
func Sum[F Float](x []F) float64 {
	if len(x) == 0 {
		return 0
	}
	if x32, ok := any(x).([]float32); ok {
		return sum(x32)
	}
	return sumGo(x)
}

// SumSqDev returns Σ d·d with d = float64(x[i]) − mu, in the fixed order
// above: the sum of squared deviations from the mean mu.
func SumSqDev[F Float](x []F, mu float64) float64 {
	if len(x) == 0 {
		return 0
	}
	if x32, ok := any(x).([]float32); ok {
		return sumSqDev(x32, mu)
	}
	return sumSqDevGo(x, mu)
}

// SumGradDot returns sg = Σ g[i] and sgx = Σ (g[i]·(x[i] − mu))·is, both
// in float64 in the fixed order above: the sums of the upstream gradient
// and of its product with the normalised input x̂ = (x − μ)·is.
func SumGradDot[F Float](g, x []F, mu, is float64) (sg, sgx float64) {
	if len(x) != len(g) {
		panic("vec: SumGradDot slices of different lengths")
	}
	if len(g) == 0 {
		return 0, 0
	}
	if g32, ok := any(g).([]float32); ok {
		return sumGradDot(g32, any(x).([]float32), mu, is)
	}
	return sumGradDotGo(g, x, mu, is)
}

// AccSum adds x to the per-channel sums: acc[i] += float64(x[i]).
func AccSum[F Float](acc []float64, x []F) {
	if len(acc) != len(x) {
		panic("vec: AccSum slices of different lengths")
	}
	if len(x) == 0 {
		return
	}
	if x32, ok := any(x).([]float32); ok {
		accSum(acc, x32)
		return
	}
	accSumGo(acc, x)
}

// AccSqDev adds the squared deviations of x to the per-channel sums:
// acc[i] += d·d with d = float64(x[i]) − mu[i].
func AccSqDev[F Float](acc []float64, x []F, mu []float64) {
	if len(acc) != len(x) || len(mu) != len(x) {
		panic("vec: AccSqDev slices of different lengths")
	}
	if len(x) == 0 {
		return
	}
	if x32, ok := any(x).([]float32); ok {
		accSqDev(acc, x32, mu)
		return
	}
	accSqDevGo(acc, x, mu)
}

// AccGradDot adds to the per-channel gradient sums: sg[i] += gv and
// sgx[i] += (gv·(float64(x[i]) − mu[i]))·is[i] with gv = float64(g[i]).
func AccGradDot[F Float](sg, sgx []float64, g, x []F, mu, is []float64) {
	n := len(g)
	if len(sg) != n || len(sgx) != n || len(x) != n || len(mu) != n || len(is) != n {
		panic("vec: AccGradDot slices of different lengths")
	}
	if n == 0 {
		return
	}
	if g32, ok := any(g).([]float32); ok {
		accGradDot(sg, sgx, g32, any(x).([]float32), mu, is)
		return
	}
	accGradDotGo(sg, sgx, g, x, mu, is)
}

// Normalize writes y[i] = F(((float64(x[i]) − mu)·is)·gamma + beta): the
// normalisation (x − μ)/√(σ²+ε) with is = 1/√(σ²+ε), then the affine map.
func Normalize[F Float](x, y []F, mu, is, gamma, beta float64) {
	if len(y) != len(x) {
		panic("vec: Normalize slices of different lengths")
	}
	if len(x) == 0 {
		return
	}
	if x32, ok := any(x).([]float32); ok {
		normalize(x32, any(y).([]float32), mu, is, gamma, beta)
		return
	}
	normalizeGo(x, y, mu, is, gamma, beta)
}

// NormalizeCh is Normalize with per-channel parameters:
// y[i] = F(((float64(x[i]) − mu[i])·is[i])·gamma[i] + beta[i]).
func NormalizeCh[F Float](x, y []F, mu, is, gamma, beta []float64) {
	n := len(x)
	if len(y) != n || len(mu) != n || len(is) != n || len(gamma) != n || len(beta) != n {
		panic("vec: NormalizeCh slices of different lengths")
	}
	if n == 0 {
		return
	}
	if x32, ok := any(x).([]float32); ok {
		normalizeCh(x32, any(y).([]float32), mu, is, gamma, beta)
		return
	}
	normalizeChGo(x, y, mu, is, gamma, beta)
}

// NormGrad writes the training-mode input gradient
// dx[i] = F(scale·((float64(g[i]) − mg) − xh·mgx)) with
// xh = (float64(x[i]) − mu)·is, where scale = γ·is, mg = Σg/M and
// mgx = Σg·x̂/M.
func NormGrad[F Float](x, g, dx []F, mu, is, scale, mg, mgx float64) {
	if len(g) != len(x) || len(dx) != len(x) {
		panic("vec: NormGrad slices of different lengths")
	}
	if len(x) == 0 {
		return
	}
	if x32, ok := any(x).([]float32); ok {
		normGrad(x32, any(g).([]float32), any(dx).([]float32), mu, is, scale, mg, mgx)
		return
	}
	normGradGo(x, g, dx, mu, is, scale, mg, mgx)
}

// NormGradCh is NormGrad with per-channel parameters:
// dx[i] = F(scale[i]·((float64(g[i]) − mg[i]) − xh·mgx[i])) with
// xh = (float64(x[i]) − mu[i])·is[i].
func NormGradCh[F Float](x, g, dx []F, mu, is, scale, mg, mgx []float64) {
	n := len(x)
	if len(g) != n || len(dx) != n || len(mu) != n || len(is) != n || len(scale) != n || len(mg) != n || len(mgx) != n {
		panic("vec: NormGradCh slices of different lengths")
	}
	if n == 0 {
		return
	}
	if x32, ok := any(x).([]float32); ok {
		normGradCh(x32, any(g).([]float32), any(dx).([]float32), mu, is, scale, mg, mgx)
		return
	}
	normGradChGo(x, g, dx, mu, is, scale, mg, mgx)
}

// ScaleGrad writes the evaluation-mode input gradient
// dx[i] = F(scale·float64(g[i])).
func ScaleGrad[F Float](g, dx []F, scale float64) {
	if len(dx) != len(g) {
		panic("vec: ScaleGrad slices of different lengths")
	}
	if len(g) == 0 {
		return
	}
	if g32, ok := any(g).([]float32); ok {
		scaleGrad(g32, any(dx).([]float32), scale)
		return
	}
	scaleGradGo(g, dx, scale)
}

// ScaleGradCh is ScaleGrad with per-channel scales:
// dx[i] = F(scale[i]·float64(g[i])).
func ScaleGradCh[F Float](g, dx []F, scale []float64) {
	if len(dx) != len(g) || len(scale) != len(g) {
		panic("vec: ScaleGradCh slices of different lengths")
	}
	if len(g) == 0 {
		return
	}
	if g32, ok := any(g).([]float32); ok {
		scaleGradCh(g32, any(dx).([]float32), scale)
		return
	}
	scaleGradChGo(g, dx, scale)
}

// The Go loops. The explicit float64 conversions of products pin their
// rounding, so that no compiler fuses a multiply and an add (Go may fuse on
// arm64, or on amd64 with GOAMD64=v3) and the results stay those of the
// kernels. The reductions keep the eight partial sums in variables, so the
// additions of different lanes overlap.

// reduce8 adds the eight partial sums in the fixed order.
func reduce8(s *[8]float64) float64 {
	return ((s[0] + s[4]) + (s[2] + s[6])) + ((s[1] + s[5]) + (s[3] + s[7]))
}

// sumGo is Sum's Go loop.
func sumGo[F Float](x []F) float64 {
	var s0, s1, s2, s3, s4, s5, s6, s7 float64
	i := 0
	for ; i+8 <= len(x); i += 8 {
		v := x[i : i+8 : i+8]
		s0 += float64(v[0])
		s1 += float64(v[1])
		s2 += float64(v[2])
		s3 += float64(v[3])
		s4 += float64(v[4])
		s5 += float64(v[5])
		s6 += float64(v[6])
		s7 += float64(v[7])
	}
	s := [8]float64{s0, s1, s2, s3, s4, s5, s6, s7}
	for j, v := range x[i:] {
		s[j] += float64(v)
	}
	return reduce8(&s)
}

// sumSqDevGo is SumSqDev's Go loop.
func sumSqDevGo[F Float](x []F, mu float64) float64 {
	var s0, s1, s2, s3, s4, s5, s6, s7 float64
	i := 0
	for ; i+8 <= len(x); i += 8 {
		v := x[i : i+8 : i+8]
		d0, d1, d2, d3 := float64(v[0])-mu, float64(v[1])-mu, float64(v[2])-mu, float64(v[3])-mu
		d4, d5, d6, d7 := float64(v[4])-mu, float64(v[5])-mu, float64(v[6])-mu, float64(v[7])-mu
		s0 += float64(d0 * d0)
		s1 += float64(d1 * d1)
		s2 += float64(d2 * d2)
		s3 += float64(d3 * d3)
		s4 += float64(d4 * d4)
		s5 += float64(d5 * d5)
		s6 += float64(d6 * d6)
		s7 += float64(d7 * d7)
	}
	s := [8]float64{s0, s1, s2, s3, s4, s5, s6, s7}
	for j, v := range x[i:] {
		d := float64(v) - mu
		s[j] += float64(d * d)
	}
	return reduce8(&s)
}

// sumGradDotGo is SumGradDot's Go loop.
func sumGradDotGo[F Float](g, x []F, mu, is float64) (sg, sgx float64) {
	x = x[:len(g)]
	var a0, a1, a2, a3, a4, a5, a6, a7 float64
	var b0, b1, b2, b3, b4, b5, b6, b7 float64
	i := 0
	for ; i+8 <= len(g); i += 8 {
		gs, xs := g[i:i+8:i+8], x[i:i+8:i+8]
		g0, g1, g2, g3 := float64(gs[0]), float64(gs[1]), float64(gs[2]), float64(gs[3])
		g4, g5, g6, g7 := float64(gs[4]), float64(gs[5]), float64(gs[6]), float64(gs[7])
		a0 += g0
		a1 += g1
		a2 += g2
		a3 += g3
		a4 += g4
		a5 += g5
		a6 += g6
		a7 += g7
		b0 += float64(float64(g0*(float64(xs[0])-mu)) * is)
		b1 += float64(float64(g1*(float64(xs[1])-mu)) * is)
		b2 += float64(float64(g2*(float64(xs[2])-mu)) * is)
		b3 += float64(float64(g3*(float64(xs[3])-mu)) * is)
		b4 += float64(float64(g4*(float64(xs[4])-mu)) * is)
		b5 += float64(float64(g5*(float64(xs[5])-mu)) * is)
		b6 += float64(float64(g6*(float64(xs[6])-mu)) * is)
		b7 += float64(float64(g7*(float64(xs[7])-mu)) * is)
	}
	a := [8]float64{a0, a1, a2, a3, a4, a5, a6, a7}
	b := [8]float64{b0, b1, b2, b3, b4, b5, b6, b7}
	for j, v := range g[i:] {
		gv := float64(v)
		a[j] += gv
		b[j] += float64(float64(gv*(float64(x[i+j])-mu)) * is)
	}
	return reduce8(&a), reduce8(&b)
}

// accSumGo is AccSum's Go loop.
func accSumGo[F Float](acc []float64, x []F) {
	acc = acc[:len(x)]
	for i, v := range x {
		acc[i] += float64(v)
	}
}

// accSqDevGo is AccSqDev's Go loop.
func accSqDevGo[F Float](acc []float64, x []F, mu []float64) {
	acc, mu = acc[:len(x)], mu[:len(x)]
	for i, v := range x {
		d := float64(v) - mu[i]
		acc[i] += float64(d * d)
	}
}

// accGradDotGo is AccGradDot's Go loop.
func accGradDotGo[F Float](sg, sgx []float64, g, x []F, mu, is []float64) {
	n := len(g)
	sg, sgx, x, mu, is = sg[:n], sgx[:n], x[:n], mu[:n], is[:n]
	for i, v := range g {
		gv := float64(v)
		sg[i] += gv
		sgx[i] += float64(float64(gv*(float64(x[i])-mu[i])) * is[i])
	}
}

// normalizeGo is Normalize's Go loop.
func normalizeGo[F Float](x, y []F, mu, is, gamma, beta float64) {
	y = y[:len(x)]
	for i, v := range x {
		y[i] = F(float64(float64((float64(v)-mu)*is)*gamma) + beta)
	}
}

// normalizeChGo is NormalizeCh's Go loop.
func normalizeChGo[F Float](x, y []F, mu, is, gamma, beta []float64) {
	n := len(x)
	y, mu, is, gamma, beta = y[:n], mu[:n], is[:n], gamma[:n], beta[:n]
	for i, v := range x {
		y[i] = F(float64(float64((float64(v)-mu[i])*is[i])*gamma[i]) + beta[i])
	}
}

// normGradGo is NormGrad's Go loop.
func normGradGo[F Float](x, g, dx []F, mu, is, scale, mg, mgx float64) {
	g, dx = g[:len(x)], dx[:len(x)]
	for i, v := range x {
		xh := float64((float64(v) - mu) * is)
		dx[i] = F(scale * (float64(g[i]) - mg - float64(xh*mgx)))
	}
}

// normGradChGo is NormGradCh's Go loop.
func normGradChGo[F Float](x, g, dx []F, mu, is, scale, mg, mgx []float64) {
	n := len(x)
	g, dx, mu, is, scale, mg, mgx = g[:n], dx[:n], mu[:n], is[:n], scale[:n], mg[:n], mgx[:n]
	for i, v := range x {
		xh := float64((float64(v) - mu[i]) * is[i])
		dx[i] = F(scale[i] * (float64(g[i]) - mg[i] - float64(xh*mgx[i])))
	}
}

// scaleGradGo is ScaleGrad's Go loop.
func scaleGradGo[F Float](g, dx []F, scale float64) {
	dx = dx[:len(g)]
	for i, v := range g {
		dx[i] = F(scale * float64(v))
	}
}

// scaleGradChGo is ScaleGradCh's Go loop.
func scaleGradChGo[F Float](g, dx []F, scale []float64) {
	dx, scale = dx[:len(g)], scale[:len(g)]
	for i, v := range g {
		dx[i] = F(scale[i] * float64(v))
	}
}
