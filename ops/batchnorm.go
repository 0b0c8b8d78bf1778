package ops

import (
	"fmt"
	"math"

	"github.com/backprop-dev/backprop/autograd"
	"github.com/backprop-dev/backprop/expr"
	"github.com/backprop-dev/backprop/internal/parallel"
	"github.com/backprop-dev/backprop/internal/vec"
	"github.com/backprop-dev/backprop/tensor"
)

// BatchNormOptions are the settings of a batch normalization step, with
// torch.nn.functional.batch_norm's meaning.
type BatchNormOptions[T tensor.Float] struct {
	// Training selects the batch statistics (mean and biased variance over
	// every axis but the channel axis) for the normalization, as a
	// BatchNorm layer does in training mode. Otherwise RunningMean and
	// RunningVar are used.
	Training bool
	// Eps is added to the variance before the square root, keeping the
	// division finite for a constant channel (PyTorch's default is 1e-5).
	Eps float64
	// RunningMean and RunningVar (shape (C)) are the statistics of
	// evaluation mode. They are constants for the graph: no gradient flows
	// to them. They are not read (and may be nil) in training mode, and the
	// op never writes them; updating them is the layer's business.
	RunningMean, RunningVar *tensor.Tensor[T]
}

// BatchNormOp normalizes every channel of x, (N, C) as BatchNorm1d sees it,
// (N, C, L), or (N, C, H, W) as BatchNorm2d does, and applies a per-channel
// affine map:
//
//	y[n,c,…] = (x[n,c,…] − μ_c) / √(σ²_c + ε) · γ_c + β_c
//
// The inputs are x, the weight γ (C) and the bias β (C). In training mode
// μ and σ² are the mean and the biased variance (divided by M, the number of
// values per channel, N·H·W) of the batch itself, so the gradient reaches x
// through them as well; in evaluation mode they are the running statistics
// given in the options. The statistics used are exposed (Mean, Variance,
// UnbiasedVariance, Count) so that a layer can update its running estimates
// after the forward pass, as torch.nn.BatchNorm2d does. Statistics are
// accumulated in float64 for either element type.
type BatchNormOp[T tensor.Float] struct {
	BatchNormOptions[T]
	// MeanName and StdName name a channel's mean and √(variance + ε) in
	// the op's rules and RuleValues ("μ" and "σ" when empty).
	MeanName, StdName string

	outer, c, inner int       // x viewed as (N, C, inner)
	xs              []int     // the input's shape
	m               int       // values per channel: N·inner
	mean, variance  []float64 // statistics used for the normalization
	std             []float64 // √(σ² + ε)
	invStd          []float64 // 1/√(σ² + ε)

	recyclable
	gamma, beta    []float64 // γ and β in float64 (Forward, (N, C))
	sumG, sumGX    []float64 // Σg and Σg·x̂ per channel (Backward)
	scale, mg, mgx []float64 // γ·is, Σg/M, Σg·x̂/M (Backward, (N, C))
	pass           bnPass[T] // the parallel pass under way
}

// bnPass is one parallel pass of a BatchNormOp over ranges of channels
// (a Ranger, so that the pass allocates no closure).
type bnPass[T tensor.Float] struct {
	o                 *BatchNormOp[T]
	kind              int // bnStats, …
	xd, od, g, dd, wd []T
	bd                []T
}

const (
	bnStats      = iota // the batch mean and variance (x (N, C, …))
	bnStats1d           // the same for x (N, C)
	bnForward           // y = ((x − μ)·is)·γ + β
	bnForward1d         // the same for x (N, C)
	bnBackward          // Σg, Σg·x̂ and dx
	bnBackward1d        // the same for x (N, C)
)

// Range implements parallel.Ranger over the channels [c0, c1).
func (p *bnPass[T]) Range(c0, c1 int) {
	o := p.o
	switch p.kind {
	case bnStats:
		o.statsRange(p.xd, c0, c1)
	case bnStats1d:
		o.stats1dRange(p.xd, c0, c1)
	case bnForward:
		o.forwardRange(p.xd, p.od, p.wd, p.bd, c0, c1)
	case bnForward1d:
		o.forward1dRange(p.xd, p.od, c0, c1)
	case bnBackward:
		o.backwardRange(p.xd, p.g, p.dd, p.wd, c0, c1)
	case bnBackward1d:
		o.backward1dRange(p.xd, p.g, p.dd, p.wd, c0, c1)
	}
}

// NewBatchNormOp returns a BatchNormOp with the given options, drawn from
// the ops that released graphs recycled when there is one (for a layer
// that applies it with autograd.Apply).
func NewBatchNormOp[T tensor.Float](opt BatchNormOptions[T]) *BatchNormOp[T] {
	o := newOp[BatchNormOp[T]]()
	o.BatchNormOptions, o.pooled = opt, true
	return o
}

// Recycle implements autograd.Recycler. The op keeps its scratch slices.
func (o *BatchNormOp[T]) Recycle() {
	if !o.pooled {
		return
	}
	*o = BatchNormOp[T]{
		xs: o.xs[:0], mean: o.mean[:0], variance: o.variance[:0], std: o.std[:0], invStd: o.invStd[:0],
		gamma: o.gamma[:0], beta: o.beta[:0], sumG: o.sumG[:0], sumGX: o.sumGX[:0],
		scale: o.scale[:0], mg: o.mg[:0], mgx: o.mgx[:0],
	}
	putOp(o)
}

// BatchNorm records the batch normalization of x with weight γ and bias β
// as node name; see BatchNormOp. The op (y.Op.(*BatchNormOp[T])) reports
// the statistics it used.
func BatchNorm[T tensor.Float](name string, x, weight, bias *autograd.Var[T], opt BatchNormOptions[T]) (*autograd.Var[T], error) {
	return apply(name, NewBatchNormOp(opt), x, weight, bias)
}

// Name implements autograd.Op.
func (o *BatchNormOp[T]) Name() string { return "batch_norm" }

// Mean returns the per-channel mean used by the last Forward: the batch
// mean in training mode, the running mean in evaluation mode. The slice
// belongs to the op.
func (o *BatchNormOp[T]) Mean() []float64 { return o.mean }

// Variance returns the per-channel variance used by the last Forward: the
// biased batch variance (divided by Count) in training mode, the running
// variance in evaluation mode. The slice belongs to the op.
func (o *BatchNormOp[T]) Variance() []float64 { return o.variance }

// UnbiasedVariance returns the batch variance with Bessel's correction
// (divided by Count−1), which PyTorch folds into running_var. It is only
// meaningful in training mode, where Count is at least 2.
func (o *BatchNormOp[T]) UnbiasedVariance() []float64 {
	u := make([]float64, len(o.variance))
	for c, v := range o.variance {
		u[c] = v * float64(o.m) / float64(o.m-1)
	}
	return u
}

// Count returns M, the number of values per channel the statistics were
// taken over (N·H·W), or would have been in evaluation mode.
func (o *BatchNormOp[T]) Count() int { return o.m }

// Forward implements autograd.Op.
func (o *BatchNormOp[T]) Forward(in []*tensor.Tensor[T]) (*tensor.Tensor[T], error) {
	if err := wantInputs("batch_norm", in, 3); err != nil {
		return nil, err
	}
	x, w, b := in[0], in[1], in[2]
	xs := x.Shape()
	if len(xs) < 2 {
		return nil, &tensor.ShapeError{Op: "batch_norm", Tensor: "input", Want: "(N, C), (N, C, L) or (N, C, H, W)", Got: xs}
	}
	c := xs[1]
	for _, p := range []struct {
		name string
		t    *tensor.Tensor[T]
	}{{"weight", w}, {"bias", b}} {
		if !tensor.SameShape(p.t.Shape(), []int{c}) {
			return nil, &tensor.ShapeError{Op: "batch_norm", Tensor: p.name, Want: fmt.Sprintf("[%d] (one value per channel of the input, whose shape is %s)", c, tensor.FormatShape(xs)), Got: p.t.Shape()}
		}
	}
	if o.Eps < 0 || math.IsNaN(o.Eps) {
		return nil, fmt.Errorf("batch_norm: eps must not be negative, got %g", o.Eps)
	}
	o.outer, o.c, o.inner = xs[0], c, tensor.NumElements(xs[2:])
	o.xs = append(o.xs[:0], xs...)
	o.m = o.outer * o.inner
	o.mean = floats(o.mean, c)
	o.variance = floats(o.variance, c)
	xd := x.Data()
	if o.Training {
		if o.m < 2 {
			return nil, fmt.Errorf("batch_norm: training mode needs more than one value per channel to take a variance, input has shape %s", tensor.FormatShape(xs))
		}
		// two passes per channel: the mean, then the mean squared deviation
		if o.inner == 1 { // (N, C), BatchNorm1d: channels are contiguous in a row
			o.channels(bnPass[T]{kind: bnStats1d, xd: xd})
		} else {
			o.channels(bnPass[T]{kind: bnStats, xd: xd})
		}
	} else {
		for _, p := range []struct {
			name string
			t    *tensor.Tensor[T]
		}{{"running mean", o.RunningMean}, {"running variance", o.RunningVar}} {
			if p.t == nil {
				return nil, fmt.Errorf("batch_norm: evaluation mode needs the %s, which is nil", p.name)
			}
			if !tensor.SameShape(p.t.Shape(), []int{c}) {
				return nil, &tensor.ShapeError{Op: "batch_norm", Tensor: p.name, Want: fmt.Sprintf("[%d] (one value per channel)", c), Got: p.t.Shape()}
			}
		}
		for ch := range c {
			o.mean[ch] = float64(o.RunningMean.Data()[ch])
			o.variance[ch] = float64(o.RunningVar.Data()[ch])
		}
	}
	o.std = floats(o.std, c)
	o.invStd = floats(o.invStd, c)
	for ch, v := range o.variance {
		o.std[ch] = math.Sqrt(v + o.Eps)
		o.invStd[ch] = 1 / o.std[ch]
	}
	out := tensor.Empty[T](xs...)
	od, wd, bd := out.Data(), w.Data(), b.Data()
	// Channels are independent: each worker normalises a range of them,
	// y = ((x − μ)·is)·γ + β in float64 (vec.Normalize, vec.NormalizeCh).
	if o.inner == 1 {
		o.gamma, o.beta = floats(o.gamma, c), floats(o.beta, c)
		for ch := range c {
			o.gamma[ch], o.beta[ch] = float64(wd[ch]), float64(bd[ch])
		}
		o.channels(bnPass[T]{kind: bnForward1d, xd: xd, od: od})
		return out, nil
	}
	o.channels(bnPass[T]{kind: bnForward, xd: xd, od: od, wd: wd, bd: bd})
	return out, nil
}

// forward1dRange normalises the channels [c0, c1) of x (N, C).
func (o *BatchNormOp[T]) forward1dRange(xd, od []T, c0, c1 int) {
	c := o.c
	mu, is, ga, be := o.mean[c0:c1], o.invStd[c0:c1], o.gamma[c0:c1], o.beta[c0:c1]
	for n := 0; n < o.outer; n++ {
		lo, hi := n*c+c0, n*c+c1
		vec.NormalizeCh(xd[lo:hi], od[lo:hi], mu, is, ga, be)
	}
}

// forwardRange normalises the channels [c0, c1) of x (N, C, …).
func (o *BatchNormOp[T]) forwardRange(xd, od, wd, bd []T, c0, c1 int) {
	for n := 0; n < o.outer; n++ {
		for ch := c0; ch < c1; ch++ {
			vec.Normalize(o.row(xd, n, ch), o.row(od, n, ch), o.mean[ch], o.invStd[ch], float64(wd[ch]), float64(bd[ch]))
		}
	}
}

// channels runs the pass p over ranges of channels [c0, c1) split across
// the CPUs (see parallel.ForRanger). Every per-channel sum runs over the
// same values in the same order whatever the split (and package vec's
// sums add in one fixed order on every CPU), so results depend neither on
// the number of CPUs nor on their instruction set.
func (o *BatchNormOp[T]) channels(p bnPass[T]) {
	p.o = o
	o.pass = p
	parallel.ForRanger(o.c, o.m*o.c, &o.pass)
	o.pass = bnPass[T]{}
}

// row is the slice of d holding sample n, channel ch.
func (o *BatchNormOp[T]) row(d []T, n, ch int) []T {
	off := (n*o.c + ch) * o.inner
	return d[off : off+o.inner]
}

// statsRange sets the batch mean and biased variance of the channels
// [c0, c1), summing each row of a channel in float64 (vec.Sum,
// vec.SumSqDev: eight partial sums per row in a fixed order), then the
// rows' sums in the order of the samples.
func (o *BatchNormOp[T]) statsRange(xd []T, c0, c1 int) {
	for n := 0; n < o.outer; n++ {
		for ch := c0; ch < c1; ch++ {
			o.mean[ch] += vec.Sum(o.row(xd, n, ch))
		}
	}
	for ch := c0; ch < c1; ch++ {
		o.mean[ch] /= float64(o.m)
	}
	for n := 0; n < o.outer; n++ {
		for ch := c0; ch < c1; ch++ {
			o.variance[ch] += vec.SumSqDev(o.row(xd, n, ch), o.mean[ch])
		}
	}
	for ch := c0; ch < c1; ch++ {
		o.variance[ch] /= float64(o.m)
	}
}

// stats1dRange is statsRange for inner == 1: x is (N, C) and each
// sample's channels are contiguous, so the sums run along rows,
// vectorised across channels (vec.AccSum, vec.AccSqDev): each channel
// adds its values one by one in the order of the samples.
func (o *BatchNormOp[T]) stats1dRange(xd []T, c0, c1 int) {
	c := o.c
	mean, variance := o.mean[c0:c1], o.variance[c0:c1]
	for n := 0; n < o.outer; n++ {
		vec.AccSum(mean, xd[n*c+c0:n*c+c1])
	}
	for ch := range mean {
		mean[ch] /= float64(o.m)
	}
	for n := 0; n < o.outer; n++ {
		vec.AccSqDev(variance, xd[n*c+c0:n*c+c1], mean)
	}
	for ch := range variance {
		variance[ch] /= float64(o.m)
	}
}

// Backward implements autograd.Op. With x̂ = (x − μ)/√(σ²+ε), g the
// upstream gradient and sums over the M values of a channel:
//
//	dβ = Σ g,   dγ = Σ g·x̂,
//	dx = γ/√(σ²+ε) · (g − Σg/M − x̂·Σ(g·x̂)/M)   (training)
//	dx = γ/√(σ²+ε) · g                          (evaluation)
//
// The training form is the full derivative through μ and σ², which
// depend on every value of the channel. The sums and dx run in float64 on
// package vec's kernels: dx = scale·((g − mg) − x̂·mgx) with scale = γ·is,
// mg = Σg/M, mgx = Σg·x̂/M and x̂ = (x − μ)·is.
func (o *BatchNormOp[T]) Backward(in []*tensor.Tensor[T], out, gout *tensor.Tensor[T], need []bool) []*tensor.Tensor[T] {
	grads := make([]*tensor.Tensor[T], 3)
	o.BackwardInto(grads, in, out, gout, need)
	return grads
}

// BackwardInto implements autograd.GradWriter.
func (o *BatchNormOp[T]) BackwardInto(grads, in []*tensor.Tensor[T], out, gout *tensor.Tensor[T], need []bool) {
	xd, wd, g := in[0].Data(), in[1].Data(), gout.Data()
	o.sumG, o.sumGX = floats(o.sumG, o.c), floats(o.sumGX, o.c)
	var dd []T
	if need[0] {
		grads[0] = tensor.Empty[T](in[0].Shape()...)
		dd = grads[0].Data()
	}
	if o.inner == 1 {
		// backward1d: the same arithmetic in the same order per channel,
		// along the contiguous rows, vectorised across channels
		// (vec.AccGradDot, then vec.NormGradCh or vec.ScaleGradCh with
		// per-channel scale, mg and mgx)
		if dd != nil {
			o.scale, o.mg, o.mgx = floats(o.scale, o.c), floats(o.mg, o.c), floats(o.mgx, o.c)
		}
		o.channels(bnPass[T]{kind: bnBackward1d, xd: xd, g: g, dd: dd, wd: wd})
	} else {
		o.channels(bnPass[T]{kind: bnBackward, xd: xd, g: g, dd: dd, wd: wd})
	}
	if need[1] {
		dw := tensor.New[T](o.c)
		for ch, v := range o.sumGX {
			dw.Data()[ch] = T(v)
		}
		grads[1] = dw
	}
	if need[2] {
		db := tensor.New[T](o.c)
		for ch, v := range o.sumG {
			db.Data()[ch] = T(v)
		}
		grads[2] = db
	}
}

// backwardRange is Backward's pass over the channels [c0, c1) of x (N,
// C, …): their sums Σg and Σg·x̂, then dx into dd unless dd is nil.
func (o *BatchNormOp[T]) backwardRange(xd, g, dd, wd []T, c0, c1 int) {
	sumG, sumGX := o.sumG, o.sumGX
	for n := 0; n < o.outer; n++ {
		for ch := c0; ch < c1; ch++ {
			sg, sgx := vec.SumGradDot(o.row(g, n, ch), o.row(xd, n, ch), o.mean[ch], o.invStd[ch])
			sumG[ch] += sg
			sumGX[ch] += sgx
		}
	}
	if dd == nil {
		return
	}
	m := float64(o.m)
	for n := 0; n < o.outer; n++ {
		for ch := c0; ch < c1; ch++ {
			mu, is := o.mean[ch], o.invStd[ch]
			scale := float64(wd[ch]) * is
			gr, dst := o.row(g, n, ch), o.row(dd, n, ch)
			if !o.Training {
				vec.ScaleGrad(gr, dst, scale)
				continue
			}
			vec.NormGrad(o.row(xd, n, ch), gr, dst, mu, is, scale, sumG[ch]/m, sumGX[ch]/m)
		}
	}
}

// backward1dRange is backwardRange for x (N, C).
func (o *BatchNormOp[T]) backward1dRange(xd, g, dd, wd []T, c0, c1 int) {
	c, sumG, sumGX, mean, invStd := o.c, o.sumG, o.sumGX, o.mean, o.invStd
	sg, sgx, mu, is := sumG[c0:c1], sumGX[c0:c1], mean[c0:c1], invStd[c0:c1]
	for n := 0; n < o.outer; n++ {
		lo, hi := n*c+c0, n*c+c1
		vec.AccGradDot(sg, sgx, g[lo:hi], xd[lo:hi], mu, is)
	}
	if dd == nil {
		return
	}
	m := float64(o.m)
	scale, mg, mgx := o.scale, o.mg, o.mgx
	for ch := c0; ch < c1; ch++ {
		scale[ch] = float64(wd[ch]) * invStd[ch]
		mg[ch], mgx[ch] = sumG[ch]/m, sumGX[ch]/m
	}
	sc, mgc, mgxc := scale[c0:c1], mg[c0:c1], mgx[c0:c1]
	for n := 0; n < o.outer; n++ {
		lo, hi := n*c+c0, n*c+c1
		if !o.Training {
			vec.ScaleGradCh(g[lo:hi], dd[lo:hi], sc)
			continue
		}
		vec.NormGradCh(xd[lo:hi], g[lo:hi], dd[lo:hi], mu, is, sc, mgc, mgxc)
	}
}

// channel is the channel of row-major position k of x.
func (o *BatchNormOp[T]) channel(k int) int { return (k / o.inner) % o.c }

// stdExpr is √(σ²_c + ε) with the statistics as numbers, carrying its value
// so that it evaluates and can collapse to a number.
func (o *BatchNormOp[T]) stdExpr(c int) expr.Expr {
	plain, tex := expr.Style{}, expr.Style{LaTeX: true}
	v, e := expr.Num(o.variance[c]), expr.Num(o.Eps)
	return expr.Inline{
		X: expr.Raw{
			Plain: "√(" + v.Render(plain) + " + " + e.Render(plain) + ")",
			TeX:   `\sqrt{` + v.Render(tex) + " + " + e.Render(tex) + "}",
		},
		Value: o.std[c],
	}
}

// xhat is the normalized value (x_k − μ_c)/√(σ²_c + ε) of position k.
func (o *BatchNormOp[T]) xhat(k int, in func(i, m int) expr.Expr) expr.Expr {
	c := o.channel(k)
	return expr.Quot{A: expr.Diff{A: in(0, k), B: expr.Num(o.mean[c])}, B: o.stdExpr(c)}
}

// channelPositions lists the row-major positions of channel c.
func (o *BatchNormOp[T]) channelPositions(c int) []int {
	ks := make([]int, 0, o.m)
	for n := 0; n < o.outer; n++ {
		for i := 0; i < o.inner; i++ {
			ks = append(ks, (n*o.c+c)*o.inner+i)
		}
	}
	return ks
}

// statNames are μ and σ² in plain text and LaTeX, "batch" or "running".
func (o *BatchNormOp[T]) statNames() (mu, std expr.Expr) {
	if o.Training {
		return expr.Raw{Plain: "μ_B", TeX: `\mu_B`}, expr.Raw{Plain: "√(σ²_B + ε)", TeX: `\sqrt{\sigma_B^2 + \varepsilon}`}
	}
	return expr.Raw{Plain: "running_mean", TeX: `\mu_{\text{run}}`},
		expr.Raw{Plain: "√(running_var + ε)", TeX: `\sqrt{\sigma_{\text{run}}^2 + \varepsilon}`}
}

// Formula implements explain.Explainer: (x − μ)/√(σ² + ε) ⊙ γ + β per
// channel.
func (o *BatchNormOp[T]) Formula(in []expr.Expr) expr.Expr {
	mu, std := o.statNames()
	return expr.Sum{expr.Product{expr.Quot{A: expr.Diff{A: in[0], B: mu}, B: std}, in[1]}, in[2]}
}

// ForwardElem implements explain.Explainer:
// (x_k − μ_c)/√(σ²_c + ε)·γ_c + β_c with the statistics as numbers.
func (o *BatchNormOp[T]) ForwardElem(k int, in func(i, m int) expr.Expr) expr.Expr {
	c := o.channel(k)
	return expr.Sum{expr.Product{o.xhat(k, in), in(1, c)}, in(2, c)}
}

// BackwardFormula implements explain.Explainer with the closed forms of
// Backward, x̂ standing for the normalized input and sums running over the
// batch and spatial axes of each channel.
func (o *BatchNormOp[T]) BackwardFormula(i int, in []expr.Expr, out, gout expr.Expr) expr.Expr {
	plain, tex := expr.Style{}, expr.Style{LaTeX: true}
	g, gt := gout.Render(plain), gout.Render(tex)
	var shown expr.Expr
	switch i {
	case 1:
		shown = expr.Raw{Plain: "Σ " + g + " ⊙ x̂", TeX: `\sum ` + gt + ` \odot \hat{x}`}
	case 2:
		shown = expr.Raw{Plain: "Σ " + g, TeX: `\sum ` + gt}
	default:
		_, std := o.statNames()
		scale := expr.Quot{A: in[1], B: std}
		if !o.Training {
			shown = expr.Product{scale, gout}
		} else {
			shown = expr.Product{scale, expr.Raw{
				Plain: fmt.Sprintf("(%s - Σ%s/%d - x̂ ⊙ Σ(%s ⊙ x̂)/%d)", g, g, o.m, g, o.m),
				TeX:   fmt.Sprintf(`\left(%s - \frac{1}{%d}\sum %s - \hat{x} \odot \frac{1}{%d}\sum %s \odot \hat{x}\right)`, gt, o.m, gt, o.m, gt),
			}}
		}
	}
	return expr.EvalAs{X: shown, Args: []expr.Expr{in[0], in[1], gout}, Eval: o.evalGrad(i)}
}

// evalGrad computes the gradient with respect to input i from x, γ and the
// upstream gradient by the closed forms BackwardFormula shows, with the
// batch statistics recomputed from x (training) or the running ones.
func (o *BatchNormOp[T]) evalGrad(i int) func(a []*tensor.Tensor[float64]) (*tensor.Tensor[float64], error) {
	outer, c, inner, training, eps := o.outer, o.c, o.inner, o.Training, o.Eps
	mean, variance := append([]float64(nil), o.mean...), append([]float64(nil), o.variance...)
	return func(a []*tensor.Tensor[float64]) (*tensor.Tensor[float64], error) {
		x, gamma, g := a[0], a[1], a[2]
		if x.Len() != outer*c*inner || g.Len() != x.Len() || gamma.Len() != c {
			return nil, fmt.Errorf("batch_norm: x has %d elements, γ %d, the upstream gradient %d; want %d, %d, %d", x.Len(), gamma.Len(), g.Len(), outer*c*inner, c, outer*c*inner)
		}
		at := func(n, ch, k int) int { return (n*c+ch)*inner + k }
		m := float64(outer * inner)
		xhat := make([]float64, x.Len())
		sumG, sumGX, std := make([]float64, c), make([]float64, c), make([]float64, c)
		for ch := range c {
			mu, v := mean[ch], variance[ch]
			if training {
				mu, v = 0, 0
				for n := range outer {
					for k := range inner {
						mu += x.Data()[at(n, ch, k)]
					}
				}
				mu /= m
				for n := range outer {
					for k := range inner {
						d := x.Data()[at(n, ch, k)] - mu
						v += d * d
					}
				}
				v /= m
			}
			std[ch] = math.Sqrt(v + eps)
			for n := range outer {
				for k := range inner {
					p := at(n, ch, k)
					xhat[p] = (x.Data()[p] - mu) / std[ch]
					sumG[ch] += g.Data()[p]
					sumGX[ch] += g.Data()[p] * xhat[p]
				}
			}
		}
		switch i {
		case 1:
			return tensor.FromSlice(sumGX, c)
		case 2:
			return tensor.FromSlice(sumG, c)
		}
		dx := tensor.New[float64](x.Shape()...)
		for n := range outer {
			for ch := range c {
				for k := range inner {
					p := at(n, ch, k)
					d := g.Data()[p]
					if training {
						d -= sumG[ch]/m + xhat[p]*sumGX[ch]/m
					}
					dx.Data()[p] = gamma.Data()[ch] / std[ch] * d
				}
			}
		}
		return dx, nil
	}
}

// BackwardElem implements explain.Explainer: for x in training mode
// γ_c/√(σ²_c+ε)·(g_m − Σ_k g_k/M − x̂_m·Σ_k g_k·x̂_k/M) over the positions k
// of the channel, in evaluation mode γ_c/√(σ²_c+ε)·g_m; for γ Σ_k g_k·x̂_k;
// for β Σ_k g_k.
func (o *BatchNormOp[T]) BackwardElem(i, m int, in func(i, m int) expr.Expr, out, gout func(k int) expr.Expr) expr.Expr {
	c := m
	if i == 0 {
		c = o.channel(m)
	}
	ks := o.channelPositions(c)
	gs := make([]expr.Expr, len(ks))
	gx := make([]expr.Expr, len(ks))
	for j, k := range ks {
		gs[j] = gout(k)
		gx[j] = expr.Product{gout(k), o.xhat(k, in)}
	}
	switch i {
	case 1:
		return sumOf(gx)
	case 2:
		return sumOf(gs)
	}
	scale := expr.Quot{A: in(1, c), B: o.stdExpr(c)}
	if !o.Training {
		return expr.Product{scale, gout(m)}
	}
	mm := expr.Num(o.m)
	return expr.Product{scale, expr.Diff{
		A: expr.Diff{A: gout(m), B: expr.Quot{A: sumOf(gs), B: mm}},
		B: expr.Product{o.xhat(m, in), expr.Quot{A: sumOf(gx), B: mm}},
	}}
}

func (o *BatchNormOp[T]) meanName() string {
	if o.MeanName == "" {
		return "μ"
	}
	return o.MeanName
}

func (o *BatchNormOp[T]) stdName() string {
	if o.StdName == "" {
		return "σ"
	}
	return o.StdName
}

// RuleValues returns the statistics the rules name: each channel's mean
// (MeanName) and √(variance + ε) (StdName), shape (C): the batch's in
// training mode, the running ones in evaluation mode.
func (o *BatchNormOp[T]) RuleValues() map[string]*tensor.Tensor[float64] {
	return map[string]*tensor.Tensor[float64]{
		o.meanName(): tensor.MustFromSlice(append([]float64(nil), o.mean...), o.c),
		o.stdName():  tensor.MustFromSlice(append([]float64(nil), o.std...), o.c),
	}
}

// ruleNote defines μ and σ for channel index c.
func (o *BatchNormOp[T]) ruleNote(c string) string {
	mu, sd := o.meanName()+"["+c+"]", o.stdName()+"["+c+"]"
	if !o.Training {
		return fmt.Sprintf("evaluation mode: %s is the running mean of channel %s and %s = √(running variance + ε), ε = %g; both are constants", mu, c, sd, o.Eps)
	}
	return fmt.Sprintf("training mode: %s is the mean of channel %s over the M = %d values of the batch%s and %s = √(their biased variance + ε), ε = %g; x̂ = (x − %s)/%s is the normalised value",
		mu, c, o.m, map[bool]string{true: " and its positions", false: ""}[o.inner > 1], sd, o.Eps, mu, sd)
}

// others are fresh indices for every axis of x but the channel's, in
// place, with the channel index c: the positions a channel's sums run
// over (a literal 1 for an axis of size 1).
func (o *BatchNormOp[T]) others(c string, fresh func(string) string) (at, over []string) {
	hints := map[int][]string{2: {"n", "c"}, 3: {"n", "c", "l"}, 4: {"n", "c", "p", "q"}}[len(o.xs)]
	if hints == nil {
		hints = indexHints(len(o.xs))
	}
	at = make([]string, len(o.xs))
	for a, d := range o.xs {
		switch {
		case a == 1:
			at[a] = c
		case d == 1:
			at[a] = "1"
		default:
			at[a] = fresh(hints[a])
			over = append(over, at[a])
		}
	}
	return at, over
}

// ForwardRule implements y[n,c,…] = (x[n,c,…] − μ[c])/σ[c]·γ[c] + β[c].
func (o *BatchNormOp[T]) ForwardRule(out []string, in InputIndex, fresh func(string) string) (expr.Expr, string) {
	if len(out) != len(o.xs) {
		return nil, ""
	}
	c := out[1]
	mu, sd := expr.Ref{Name: o.meanName(), Sym: []string{c}}, expr.Ref{Name: o.stdName(), Sym: []string{c}}
	xh := expr.Quot{A: expr.Diff{A: in(0, out), B: mu}, B: sd}
	return expr.Sum{expr.Product{xh, in(1, []string{c})}, in(2, []string{c})}, o.ruleNote(c)
}

// BackwardRule implements, with sums over the M positions (n', …) of
// channel c and x̂ = (x − μ[c])/σ[c]: for x in training mode
// γ[c]/σ[c]·(g[n,c,…] − Σ g[n',c,…]/M − x̂[n,c,…]·Σ g[n',c,…]·x̂[n',c,…]/M)
// (γ[c]/σ[c]·g[n,c,…] in evaluation mode); for γ Σ g·x̂; for β Σ g.
func (o *BatchNormOp[T]) BackwardRule(i int, idx []string, in InputIndex, out, gout Index, fresh func(string) string) (expr.Expr, string) {
	var c string
	switch {
	case i == 0 && len(idx) == len(o.xs):
		c = idx[1]
	case i > 0 && len(idx) == 1:
		c = idx[0]
	default:
		return nil, ""
	}
	mu, sd := expr.Ref{Name: o.meanName(), Sym: []string{c}}, expr.Ref{Name: o.stdName(), Sym: []string{c}}
	xhat := func(at []string) expr.Expr { return expr.Quot{A: expr.Diff{A: in(0, at), B: mu}, B: sd} }
	at, over := o.others(c, fresh)
	switch i {
	case 1:
		return sigmaOver(over, expr.Product{gout(at), xhat(at)}), o.ruleNote(c)
	case 2:
		return sigmaOver(over, gout(at)), o.ruleNote(c)
	}
	scale := expr.Quot{A: in(1, []string{c}), B: sd}
	if !o.Training {
		return expr.Product{scale, gout(idx)}, o.ruleNote(c)
	}
	m := expr.Num(o.m)
	return expr.Product{scale, expr.Diff{
		A: expr.Diff{A: gout(idx), B: expr.Quot{A: sigmaOver(over, gout(at)), B: m}},
		B: expr.Product{xhat(idx), expr.Quot{A: sigmaOver(over, expr.Product{gout(at), xhat(at)}), B: m}},
	}}, o.ruleNote(c)
}
