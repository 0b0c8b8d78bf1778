package ops

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/backprop-dev/backprop/autograd"
	"github.com/backprop-dev/backprop/expr"
	"github.com/backprop-dev/backprop/internal/parallel"
	"github.com/backprop-dev/backprop/tensor"
)

// PoolOptions are the settings of MaxPool2d and AvgPool2d with PyTorch's
// meaning (ceil_mode=False: windows that would start beyond the padded
// input are not formed).
type PoolOptions struct {
	// KernelH and KernelW are the window size.
	KernelH, KernelW int
	// StrideH and StrideW are the step between windows; zero means the
	// kernel size, PyTorch's default (non-overlapping windows).
	StrideH, StrideW int
	// PadH and PadW are added on each side of the input and may be at most
	// half the kernel size, as in PyTorch. Max pooling pads with −∞ (the
	// padding is never the maximum); average pooling pads with zeros.
	PadH, PadW int
	// ExcludePad (average pooling only) divides each window's sum by the
	// number of input elements in it instead of by the kernel size,
	// PyTorch's count_include_pad=False. The default counts the padding,
	// as PyTorch's default does.
	ExcludePad bool
}

// poolGeom is a pooling layer's geometry, fixed by the first Forward.
type poolGeom struct {
	batched                bool
	n, c, h, w             int
	kh, kw, sh, sw, ph, pw int
	oh, ow                 int
}

func (g *poolGeom) outShape() []int {
	if g.batched {
		return []int{g.n, g.c, g.oh, g.ow}
	}
	return []int{g.c, g.oh, g.ow}
}

// window calls f with the input offset (within the plane) of every input
// element of output (oy, ox)'s window, in row-major order, and with −1
// for padding positions.
func (g *poolGeom) window(oy, ox int, f func(off int)) {
	for a := range g.kh {
		y := oy*g.sh - g.ph + a
		for b := range g.kw {
			x := ox*g.sw - g.pw + b
			if y < 0 || y >= g.h || x < 0 || x >= g.w {
				f(-1)
				continue
			}
			f(y*g.w + x)
		}
	}
}

// bounds is the part of output (oy, ox)'s window inside the input: rows
// [ya, yb) and columns [xa, xb). It is never empty (padding is at most
// half the kernel).
func (g *poolGeom) bounds(oy, ox int) (ya, yb, xa, xb int) {
	y0, x0 := oy*g.sh-g.ph, ox*g.sw-g.pw
	return max(y0, 0), min(y0+g.kh, g.h), max(x0, 0), min(x0+g.kw, g.w)
}

// forEachWindow calls f for every output element: p is its plane
// (sample·C + channel), k its flat position in the output and
// [ya, yb)×[xa, xb) its window's part of the plane. The planes are split
// across cores; f may write anything of its own plane.
func (g *poolGeom) forEachWindow(f func(p, k, ya, yb, xa, xb int)) {
	planes, oarea := g.n*g.c, g.oh*g.ow
	parallel.For(planes, planes*oarea*g.kh*g.kw, func(lo, hi int) {
		for p := lo; p < hi; p++ {
			k := p * oarea
			for oy := range g.oh {
				for ox := range g.ow {
					ya, yb, xa, xb := g.bounds(oy, ox)
					f(p, k, ya, yb, xa, xb)
					k++
				}
			}
		}
	})
}

// setup checks the input shape and options and fills g.
func (g *poolGeom) setup(op string, xs []int, opt PoolOptions) error {
	switch len(xs) {
	case 3:
		g.batched, g.n, g.c, g.h, g.w = false, 1, xs[0], xs[1], xs[2]
	case 4:
		g.batched, g.n, g.c, g.h, g.w = true, xs[0], xs[1], xs[2], xs[3]
	default:
		return &tensor.ShapeError{Op: op, Tensor: "input", Want: "(N, C, H, W) or (C, H, W)", Got: xs}
	}
	if g.n < 1 || g.c < 1 || g.h < 1 || g.w < 1 {
		return &tensor.ShapeError{Op: op, Tensor: "input", Want: "at least one sample, channel, row and column", Got: xs}
	}
	g.kh, g.kw, g.ph, g.pw = opt.KernelH, opt.KernelW, opt.PadH, opt.PadW
	g.sh, g.sw = opt.StrideH, opt.StrideW
	if g.sh == 0 {
		g.sh = g.kh
	}
	if g.sw == 0 {
		g.sw = g.kw
	}
	if g.kh < 1 || g.kw < 1 || g.sh < 1 || g.sw < 1 || g.ph < 0 || g.pw < 0 {
		return fmt.Errorf("%s: kernel %d×%d, stride %d×%d and padding %d×%d: want a kernel and stride of at least 1 and no negative padding",
			op, g.kh, g.kw, g.sh, g.sw, g.ph, g.pw)
	}
	if 2*g.ph > g.kh || 2*g.pw > g.kw {
		return fmt.Errorf("%s: padding %d×%d is more than half the kernel %d×%d (PyTorch's limit: a window must not lie in the padding alone)",
			op, g.ph, g.pw, g.kh, g.kw)
	}
	if hp, wp := g.h+2*g.ph, g.w+2*g.pw; g.kh > hp || g.kw > wp {
		return &tensor.ShapeError{Op: op, Tensor: "input", Got: xs,
			Want: fmt.Sprintf("at least %d×%d rows and columns with padding %d×%d on each side, the kernel's size", g.kh, g.kw, g.ph, g.pw)}
	}
	g.oh = (g.h+2*g.ph-g.kh)/g.sh + 1
	g.ow = (g.w+2*g.pw-g.kw)/g.sw + 1
	return nil
}

// planeOf splits a flat position of the input or output into its plane
// (sample·C + channel) and the offset within the plane of size area.
func planeOf(pos, area int) (plane, off int) { return pos / area, pos % area }

// MaxPool2dOp is torch.nn.MaxPool2d: the maximum of each window, per
// channel. The gradient flows to the element that was the maximum (the
// first one in row-major order when several are equal, as in PyTorch).
type MaxPool2dOp[T tensor.Float] struct {
	Options PoolOptions
	// RowName and ColName name, in the op's rules and RuleValues, the row
	// and column of each window's winner ("row" and "col" when empty).
	RowName, ColName string

	g      poolGeom
	argmax []int32 // for every output element, the offset of its maximum within the input plane
}

// MaxPool2d records max pooling of x, (N, C, H, W) or (C, H, W).
func MaxPool2d[T tensor.Float](name string, x *autograd.Var[T], opt PoolOptions) (*autograd.Var[T], error) {
	return apply(name, &MaxPool2dOp[T]{Options: opt}, x)
}

// Name implements autograd.Op.
func (o *MaxPool2dOp[T]) Name() string { return "max_pool2d" }

// Forward implements autograd.Op.
func (o *MaxPool2dOp[T]) Forward(in []*tensor.Tensor[T]) (*tensor.Tensor[T], error) {
	if err := wantInputs("max_pool2d", in, 1); err != nil {
		return nil, err
	}
	g := &o.g
	if err := g.setup("max_pool2d", in[0].Shape(), o.Options); err != nil {
		return nil, err
	}
	y := tensor.Empty[T](g.outShape()...)
	o.argmax = make([]int32, y.Len())
	x, yd, area, w := in[0].Data(), y.Data(), g.h*g.w, g.w
	if g.kh == 2 && g.kw == 2 && g.sh == 2 && g.sw == 2 && g.ph == 0 && g.pw == 0 && !genericPool {
		maxPool2x2(x, yd, o.argmax, g)
		return y, nil
	}
	g.forEachWindow(func(p, k, ya, yb, xa, xb int) {
		xp := x[p*area : (p+1)*area]
		best, at := xp[ya*w+xa], ya*w+xa
		for r := ya; r < yb; r++ {
			for i, v := range xp[r*w+xa : r*w+xb] {
				if v > best || v != v { // NaN wins, as in PyTorch
					best, at = v, r*w+xa+i
				}
			}
		}
		yd[k], o.argmax[k] = best, int32(at)
	})
	return y, nil
}

// genericPool makes MaxPool2d take the general window loop for every
// geometry, so that tests can compare the 2×2 fast path with it.
var genericPool bool

// maxPool2x2 is MaxPool2d's forward pass for the commonest geometry, 2×2
// windows with stride 2 and no padding: the same comparisons in the same
// order as the general loop (so the same results, ties and NaN included),
// without its per-window call and bounds arithmetic.
func maxPool2x2[T tensor.Float](x, y []T, argmax []int32, g *poolGeom) {
	planes, area, oarea, w, ow := g.n*g.c, g.h*g.w, g.oh*g.ow, g.w, g.ow
	parallel.For(planes, planes*oarea*4, func(lo, hi int) {
		for p := lo; p < hi; p++ {
			xp := x[p*area : (p+1)*area]
			yp, ap := y[p*oarea:(p+1)*oarea], argmax[p*oarea:(p+1)*oarea]
			for oy := range g.oh {
				r0 := 2 * oy * w
				top, bot := xp[r0:r0+w], xp[r0+w:r0+2*w]
				yr, ar := yp[oy*ow:(oy+1)*ow], ap[oy*ow:(oy+1)*ow]
				for ox := range yr {
					c := 2 * ox
					best, at := top[c], r0+c
					if v := top[c+1]; v > best || v != v {
						best, at = v, r0+c+1
					}
					if v := bot[c]; v > best || v != v {
						best, at = v, r0+w+c
					}
					if v := bot[c+1]; v > best || v != v {
						best, at = v, r0+w+c+1
					}
					yr[ox], ar[ox] = best, int32(at)
				}
			}
		}
	})
}

// Backward implements autograd.Op.
func (o *MaxPool2dOp[T]) Backward(in []*tensor.Tensor[T], out, gout *tensor.Tensor[T], need []bool) []*tensor.Tensor[T] {
	if !need[0] {
		return []*tensor.Tensor[T]{nil}
	}
	g := &o.g
	dx := tensor.New[T](in[0].Shape()...)
	d, gd := dx.Data(), gout.Data()
	area, oarea := g.h*g.w, g.oh*g.ow
	parallel.For(g.n*g.c, g.n*g.c*oarea, func(lo, hi int) {
		for p := lo; p < hi; p++ {
			for k := p * oarea; k < (p+1)*oarea; k++ {
				d[p*area+int(o.argmax[k])] += gd[k]
			}
		}
	})
	return []*tensor.Tensor[T]{dx}
}

// Formula implements explain.Explainer.
func (o *MaxPool2dOp[T]) Formula(in []expr.Expr) expr.Expr {
	return expr.Call{Fn: "maxpool", Args: []expr.Expr{in[0]}}
}

// ForwardElem implements explain.Explainer: the max over the window.
func (o *MaxPool2dOp[T]) ForwardElem(k int, in func(i, m int) expr.Expr) expr.Expr {
	g := &o.g
	p, off := planeOf(k, g.oh*g.ow)
	var args []expr.Expr
	g.window(off/g.ow, off%g.ow, func(m int) {
		if m >= 0 {
			args = append(args, in(0, p*g.h*g.w+m))
		}
	})
	if len(args) == 1 {
		return args[0]
	}
	return expr.Call{Fn: "max", Args: args}
}

// BackwardFormula implements explain.Explainer: the upstream gradient
// routed to each window's maximum.
func (o *MaxPool2dOp[T]) BackwardFormula(i int, in []expr.Expr, out, gout expr.Expr) expr.Expr {
	g, argmax := o.g, o.argmax
	return expr.Fn{Name: "to_argmax", Args: []expr.Expr{gout}, Eval: func(a []*tensor.Tensor[float64]) (*tensor.Tensor[float64], error) {
		return g.scatter("to_argmax", a[0], func(p, k int, add func(off int, v float64)) { add(int(argmax[k]), a[0].Data()[k]) })
	}}
}

// BackwardElem implements explain.Explainer: the sum of the upstream
// gradients of the windows whose maximum element m is.
func (o *MaxPool2dOp[T]) BackwardElem(i, m int, in func(i, m int) expr.Expr, out, gout func(k int) expr.Expr) expr.Expr {
	g := &o.g
	p, off := planeOf(m, g.h*g.w)
	var terms []expr.Expr
	for k := p * g.oh * g.ow; k < (p+1)*g.oh*g.ow; k++ {
		if int(o.argmax[k]) == off {
			terms = append(terms, gout(k))
		}
	}
	return sumOf(terms)
}

// AvgPool2dOp is torch.nn.AvgPool2d: the mean of each window, per channel.
// Each input element gets, from every window it lies in, that window's
// upstream gradient divided by the window's divisor.
type AvgPool2dOp[T tensor.Float] struct {
	Options PoolOptions
	g       poolGeom
}

// AvgPool2d records average pooling of x, (N, C, H, W) or (C, H, W).
func AvgPool2d[T tensor.Float](name string, x *autograd.Var[T], opt PoolOptions) (*autograd.Var[T], error) {
	return apply(name, &AvgPool2dOp[T]{Options: opt}, x)
}

// Name implements autograd.Op.
func (o *AvgPool2dOp[T]) Name() string { return "avg_pool2d" }

// divisor is what the sum of the window whose input part is
// [ya, yb)×[xa, xb) is divided by.
func (o *AvgPool2dOp[T]) divisor(ya, yb, xa, xb int) int {
	if !o.Options.ExcludePad {
		return o.g.kh * o.g.kw
	}
	return (yb - ya) * (xb - xa)
}

// Forward implements autograd.Op.
func (o *AvgPool2dOp[T]) Forward(in []*tensor.Tensor[T]) (*tensor.Tensor[T], error) {
	if err := wantInputs("avg_pool2d", in, 1); err != nil {
		return nil, err
	}
	g := &o.g
	if err := g.setup("avg_pool2d", in[0].Shape(), o.Options); err != nil {
		return nil, err
	}
	y := tensor.Empty[T](g.outShape()...)
	x, yd, area, w := in[0].Data(), y.Data(), g.h*g.w, g.w
	g.forEachWindow(func(p, k, ya, yb, xa, xb int) {
		xp := x[p*area : (p+1)*area]
		s := 0.0
		for r := ya; r < yb; r++ {
			for _, v := range xp[r*w+xa : r*w+xb] {
				s += float64(v)
			}
		}
		yd[k] = T(s / float64(o.divisor(ya, yb, xa, xb)))
	})
	return y, nil
}

// Backward implements autograd.Op.
func (o *AvgPool2dOp[T]) Backward(in []*tensor.Tensor[T], out, gout *tensor.Tensor[T], need []bool) []*tensor.Tensor[T] {
	if !need[0] {
		return []*tensor.Tensor[T]{nil}
	}
	g := &o.g
	dx := tensor.New[T](in[0].Shape()...)
	d, gd, area, w := dx.Data(), gout.Data(), g.h*g.w, g.w
	g.forEachWindow(func(p, k, ya, yb, xa, xb int) {
		dp := d[p*area : (p+1)*area]
		v := gd[k] / T(o.divisor(ya, yb, xa, xb))
		for r := ya; r < yb; r++ {
			row := dp[r*w+xa : r*w+xb]
			for i := range row {
				row[i] += v
			}
		}
	})
	return []*tensor.Tensor[T]{dx}
}

// Formula implements explain.Explainer.
func (o *AvgPool2dOp[T]) Formula(in []expr.Expr) expr.Expr {
	return expr.Call{Fn: "avgpool", Args: []expr.Expr{in[0]}}
}

// ForwardElem implements explain.Explainer: the window's sum over its
// divisor (padding adds nothing to the sum).
func (o *AvgPool2dOp[T]) ForwardElem(k int, in func(i, m int) expr.Expr) expr.Expr {
	g := &o.g
	p, off := planeOf(k, g.oh*g.ow)
	oy, ox := off/g.ow, off%g.ow
	var terms []expr.Expr
	g.window(oy, ox, func(m int) {
		if m >= 0 {
			terms = append(terms, in(0, p*g.h*g.w+m))
		}
	})
	return expr.Quot{A: sumOf(terms), B: expr.Num(o.divisor(g.bounds(oy, ox)))}
}

// BackwardFormula implements explain.Explainer: each window's upstream
// gradient spread evenly over the window.
func (o *AvgPool2dOp[T]) BackwardFormula(i int, in []expr.Expr, out, gout expr.Expr) expr.Expr {
	g := o.g
	return expr.Fn{Name: "spread", Args: []expr.Expr{gout}, Eval: func(a []*tensor.Tensor[float64]) (*tensor.Tensor[float64], error) {
		return g.scatter("spread", a[0], func(p, k int, add func(off int, v float64)) {
			oy, ox := (k%(g.oh*g.ow))/g.ow, k%g.ow
			ya, yb, xa, xb := g.bounds(oy, ox)
			v := a[0].Data()[k] / float64(o.divisor(ya, yb, xa, xb))
			g.window(oy, ox, func(off int) {
				if off >= 0 {
					add(off, v)
				}
			})
		})
	}}
}

// inShape is the shape of the pooled input.
func (g *poolGeom) inShape() []int {
	if g.batched {
		return []int{g.n, g.c, g.h, g.w}
	}
	return []int{g.c, g.h, g.w}
}

// scatter is the gradient of a pooling's input from gout, an upstream
// gradient of the output's shape: route(p, k, add) adds, for output
// element k of plane p, values to offsets of that input plane.
func (g poolGeom) scatter(name string, gout *tensor.Tensor[float64], route func(p, k int, add func(off int, v float64))) (*tensor.Tensor[float64], error) {
	if gout.Len() != tensor.NumElements(g.outShape()) {
		return nil, fmt.Errorf("%s: the upstream gradient has %d elements, want %s", name, gout.Len(), tensor.FormatShape(g.outShape()))
	}
	dx := tensor.New[float64](g.inShape()...)
	area, oarea := g.h*g.w, g.oh*g.ow
	for k := range gout.Len() {
		p := k / oarea
		route(p, k, func(off int, v float64) { dx.Data()[p*area+off] += v })
	}
	return dx, nil
}

// BackwardElem implements explain.Explainer: the sum, over the windows
// that hold element m, of their upstream gradient over their divisor.
func (o *AvgPool2dOp[T]) BackwardElem(i, m int, in func(i, m int) expr.Expr, out, gout func(k int) expr.Expr) expr.Expr {
	g := &o.g
	p, off := planeOf(m, g.h*g.w)
	var terms []expr.Expr
	for oy := range g.oh {
		for ox := range g.ow {
			hit := false
			g.window(oy, ox, func(w int) { hit = hit || w == off })
			if hit {
				terms = append(terms, expr.Quot{A: gout(p*g.oh*g.ow + oy*g.ow + ox), B: expr.Num(o.divisor(g.bounds(oy, ox)))})
			}
		}
	}
	return sumOf(terms)
}

// ruleMaxTerms is the largest window whose terms a rule writes out.
const ruleMaxTerms = 16

// prefix splits a rule's indices into the sample and channel part and
// the row and column.
func (g *poolGeom) prefix(idx []string) (pre []string, i, j string, ok bool) {
	if len(idx) != len(g.outShape()) {
		return nil, "", "", false
	}
	r := len(idx)
	return idx[:r-2], idx[r-2], idx[r-1], true
}

// windowTerms are the input elements of the window of output (i, j),
// written out: x[…, s(i−1)+a, s(j−1)+b] for every tap (a, b). It is nil
// with padding (some terms would lie outside the input) or for windows of
// more than ruleMaxTerms taps.
func (g *poolGeom) windowTerms(pre []string, i, j string, in InputIndex) []expr.Expr {
	if g.ph > 0 || g.pw > 0 || g.kh*g.kw > ruleMaxTerms {
		return nil
	}
	var terms []expr.Expr
	for a := 1; a <= g.kh; a++ {
		for b := 1; b <= g.kw; b++ {
			at := append(append([]string(nil), pre...), affine(a-g.sh, term{g.sh, i}), affine(b-g.sw, term{g.sw, j}))
			terms = append(terms, in(0, at))
		}
	}
	return terms
}

func (o *MaxPool2dOp[T]) rowName() string {
	if o.RowName == "" {
		return "row"
	}
	return o.RowName
}

func (o *MaxPool2dOp[T]) colName() string {
	if o.ColName == "" {
		return "col"
	}
	return o.ColName
}

// RuleValues returns the winners the rules name: for every output
// element, the row (RowName) and column (ColName), counted from 1, of the
// input element that was its window's maximum.
func (o *MaxPool2dOp[T]) RuleValues() map[string]*tensor.Tensor[float64] {
	g := &o.g
	row, col := tensor.New[float64](g.outShape()...), tensor.New[float64](g.outShape()...)
	for k, at := range o.argmax {
		row.Data()[k] = float64(int(at)/g.w + 1)
		col.Data()[k] = float64(int(at)%g.w + 1)
	}
	return map[string]*tensor.Tensor[float64]{o.rowName(): row, o.colName(): col}
}

// ForwardRule implements y[…,i,j] = max(x[…, s(i−1)+a, s(j−1)+b] over the
// window's taps), written out for windows of at most 16 taps without
// padding.
func (o *MaxPool2dOp[T]) ForwardRule(out []string, in InputIndex, fresh func(string) string) (expr.Expr, string) {
	pre, i, j, ok := o.g.prefix(out)
	if !ok {
		return nil, ""
	}
	terms := o.g.windowTerms(pre, i, j, in)
	switch len(terms) {
	case 0:
		return nil, ""
	case 1:
		return terms[0], ""
	}
	return expr.Call{Fn: "max", Args: terms}, o.winners()
}

// winners lists which input element won each window, for a small output.
func (o *MaxPool2dOp[T]) winners() string {
	g := &o.g
	if len(o.argmax) > ruleMaxTerms {
		return "the gradient of each window goes to the element that won it (the first maximum in reading order, as PyTorch)"
	}
	shape := g.outShape()
	var parts []string
	for k, at := range o.argmax {
		idx := tensor.Index(shape, k)
		pos := make([]string, len(idx))
		for a, v := range idx {
			pos[a] = strconv.Itoa(v + 1)
		}
		yi := strings.Join(pos, ",")
		pos[len(pos)-2], pos[len(pos)-1] = strconv.Itoa(int(at)/g.w+1), strconv.Itoa(int(at)%g.w+1)
		parts = append(parts, fmt.Sprintf("[%s] by [%s]", yi, strings.Join(pos, ",")))
	}
	return "the windows are won (first maximum in reading order, as PyTorch) as output ← input: " + strings.ReplaceAll(strings.Join(parts, ", "), "] by [", "] ← [")
}

// BackwardRule implements ∂J/∂x[…,i,j] = Σ_{k,l} 1[row[…,k,l] = i]·1[col[…,k,l] = j]·∂J/∂y[…,k,l]:
// each window's gradient goes to the element that won it.
func (o *MaxPool2dOp[T]) BackwardRule(n int, idx []string, in InputIndex, out, gout Index, fresh func(string) string) (expr.Expr, string) {
	pre, i, j, ok := o.g.prefix(idx)
	if !ok {
		return nil, ""
	}
	k, l := fresh("k"), fresh("l")
	at := append(append([]string(nil), pre...), k, l)
	win := expr.Product{
		expr.Indicator{C: expr.Cond{X: expr.Ref{Name: o.rowName(), Sym: at}, Op: "=", Y: symIndex(i)}},
		expr.Indicator{C: expr.Cond{X: expr.Ref{Name: o.colName(), Sym: at}, Op: "=", Y: symIndex(j)}},
		gout(at),
	}
	note := fmt.Sprintf("(%s, %s) at [%s] is the row and column of the element that won window (%s,%s); ",
		o.rowName(), o.colName(), strings.Join(at, ","), k, l)
	return expr.Sigma{Over: []string{k, l}, X: win}, note + o.winners()
}

// constDivisor is the divisor every window shares, or 0 when it varies
// (padding not counted).
func (o *AvgPool2dOp[T]) constDivisor() int {
	if o.Options.ExcludePad && (o.g.ph > 0 || o.g.pw > 0) {
		return 0
	}
	return o.g.kh * o.g.kw
}

// ForwardRule implements y[…,i,j] = Σ of the window's taps / (KH·KW),
// written out for windows of at most 16 taps without padding.
func (o *AvgPool2dOp[T]) ForwardRule(out []string, in InputIndex, fresh func(string) string) (expr.Expr, string) {
	pre, i, j, ok := o.g.prefix(out)
	if !ok {
		return nil, ""
	}
	terms := o.g.windowTerms(pre, i, j, in)
	if len(terms) == 0 {
		return nil, ""
	}
	return expr.Quot{A: sumOf(terms), B: expr.Num(o.g.kh * o.g.kw)}, ""
}

// BackwardRule implements ∂J/∂x[…,i,j] = Σ over the windows (k,l) that
// hold (i,j) of ∂J/∂y[…,k,l]/(KH·KW): the window's condition is written
// as the sum's range.
func (o *AvgPool2dOp[T]) BackwardRule(n int, idx []string, in InputIndex, out, gout Index, fresh func(string) string) (expr.Expr, string) {
	g := &o.g
	pre, i, j, ok := g.prefix(idx)
	d := o.constDivisor()
	if !ok || d == 0 {
		return nil, ""
	}
	k, l := fresh("k"), fresh("l")
	at := append(append([]string(nil), pre...), k, l)
	where := fmt.Sprintf("%s ≤ %s ≤ %s, %s ≤ %s ≤ %s",
		affine(1-g.sh-g.ph, term{g.sh, k}), i, affine(g.kh-g.sh-g.ph, term{g.sh, k}),
		affine(1-g.sw-g.pw, term{g.sw, l}), j, affine(g.kw-g.sw-g.pw, term{g.sw, l}))
	return expr.Sigma{Over: []string{k, l}, Where: where, X: expr.Quot{A: gout(at), B: expr.Num(d)}},
		"the sum runs over the windows that hold the element"
}
