package ops

import (
	"fmt"
	"strings"

	"github.com/backprop-dev/backprop/autograd"
	"github.com/backprop-dev/backprop/expr"
	"github.com/backprop-dev/backprop/internal/conv"
	"github.com/backprop-dev/backprop/tensor"
)

// ConvOptions are the settings shared by Conv2d and ConvTranspose2d, with
// PyTorch's meaning. Heights come before widths, as in PyTorch's (h, w)
// tuples.
type ConvOptions struct {
	// StrideH and StrideW are the step of the kernel over the input
	// (Conv2d) or of the pasted kernel copies over the output
	// (ConvTranspose2d). Zero means 1.
	StrideH, StrideW int
	// PadH and PadW are the zero padding added on each side of the input
	// (Conv2d) or, for ConvTranspose2d, the rows and columns cropped from
	// each side of the full output, so that a transposed convolution with
	// the same options undoes a convolution's change of size.
	PadH, PadW int
	// OutPadH and OutPadW (ConvTranspose2d only) add rows and columns at the
	// bottom and right of the output. A strided convolution maps several
	// input sizes to the same output size; the output padding picks the
	// larger ones. It must be smaller than the stride, as in PyTorch.
	OutPadH, OutPadW int
	// Flip rotates every kernel by 180° in its spatial dimensions before it
	// is applied: w[.., kh−1−a, kw−1−b] takes the place of w[.., a, b]. For
	// ConvTranspose2d this is the "flipped kernel / full convolution"
	// convention of many textbooks; for Conv2d it turns PyTorch's
	// cross-correlation into a convolution in the strict mathematical
	// sense. Gradients are always with respect to the weight as stored.
	Flip bool
}

// convShape is what a convolution op learns from its operands' shapes, for
// its backward pass and its explanation. Both layers are described through
// the one cross-correlation they are built on: the "image" side is the
// correlation's input (x for Conv2d, the output for ConvTranspose2d) and
// the "small" side its output (the output for Conv2d, x for
// ConvTranspose2d). In both layers the weight is laid out as
// (small channels, image channels, kh, kw).
type convShape struct {
	batched bool      // the input had a batch axis
	n       int       // batch size (1 when unbatched)
	small   int       // channels of the small side
	g       conv.Geom // the correlation: image channels/size, kernel, stride, padding, small size
	oph     int       // output padding (ConvTranspose2d)
	opw     int
	flip    bool
	shape   [4]int // storage of sideShape's result
}

// convStride returns the effective stride (0 means 1) or an error for a
// negative one.
func convStride(op, name string, s int) (int, error) {
	switch {
	case s == 0:
		return 1, nil
	case s < 0:
		return 0, fmt.Errorf("%s: %s must be positive (0 means the default 1), got %d", op, name, s)
	}
	return s, nil
}

// setup validates the operands and options of a convolution layer and
// fills in s. transposed selects ConvTranspose2d's rules and layouts.
func (s *convShape) setup(transposed bool, xs, ws []int, opt ConvOptions) error {
	op := "conv2d"
	wantW := "(Cout, Cin, kh, kw)"
	if transposed {
		op = "conv_transpose2d"
		wantW = "(Cin, Cout, kh, kw)"
	}
	var err error
	if s.g.SH, err = convStride(op, "StrideH", opt.StrideH); err != nil {
		return err
	}
	if s.g.SW, err = convStride(op, "StrideW", opt.StrideW); err != nil {
		return err
	}
	if opt.PadH < 0 || opt.PadW < 0 {
		return fmt.Errorf("%s: padding must not be negative, got PadH=%d, PadW=%d", op, opt.PadH, opt.PadW)
	}
	s.g.PH, s.g.PW = opt.PadH, opt.PadW
	if !transposed && (opt.OutPadH != 0 || opt.OutPadW != 0) {
		return fmt.Errorf("%s: output padding (OutPadH=%d, OutPadW=%d) applies only to conv_transpose2d", op, opt.OutPadH, opt.OutPadW)
	}
	if opt.OutPadH < 0 || opt.OutPadW < 0 {
		return fmt.Errorf("%s: output padding must not be negative, got OutPadH=%d, OutPadW=%d", op, opt.OutPadH, opt.OutPadW)
	}
	if opt.OutPadH >= s.g.SH || opt.OutPadW >= s.g.SW {
		return fmt.Errorf("%s: output padding must be smaller than the stride, got OutPadH=%d, OutPadW=%d with stride %d×%d",
			op, opt.OutPadH, opt.OutPadW, s.g.SH, s.g.SW)
	}
	s.oph, s.opw, s.flip = opt.OutPadH, opt.OutPadW, opt.Flip

	var cin, h, wd int
	switch len(xs) {
	case 3:
		s.batched, s.n, cin, h, wd = false, 1, xs[0], xs[1], xs[2]
	case 4:
		s.batched, s.n, cin, h, wd = true, xs[0], xs[1], xs[2], xs[3]
	default:
		return &tensor.ShapeError{Op: op, Tensor: "input", Want: "(N, Cin, H, W) or (Cin, H, W)", Got: xs}
	}
	if cin < 1 || h < 1 || wd < 1 {
		return &tensor.ShapeError{Op: op, Tensor: "input", Want: "at least one channel, row and column", Got: xs}
	}
	if len(ws) != 4 {
		return &tensor.ShapeError{Op: op, Tensor: "weight", Want: wantW, Got: ws}
	}
	if ws[0] < 1 || ws[1] < 1 || ws[2] < 1 || ws[3] < 1 {
		return &tensor.ShapeError{Op: op, Tensor: "weight", Want: wantW + " with every dimension at least 1", Got: ws}
	}
	kh, kw := ws[2], ws[3]
	s.g.KH, s.g.KW = kh, kw
	if !transposed {
		if ws[1] != cin {
			return &tensor.ShapeError{Op: op, Tensor: "weight", Got: ws,
				Want: fmt.Sprintf("(Cout, %d, kh, kw) to match the input's %d channels", cin, cin)}
		}
		if hp, wp := h+2*s.g.PH, wd+2*s.g.PW; kh > hp || kw > wp {
			return &tensor.ShapeError{Op: op, Tensor: "weight", Got: ws,
				Want: fmt.Sprintf("a kernel of at most %d×%d, the size of the input's %d×%d plus padding %d×%d on each side", hp, wp, h, wd, s.g.PH, s.g.PW)}
		}
		s.small = ws[0]
		s.g.C, s.g.H, s.g.W = cin, h, wd
		s.g.OH = conv.OutSize(h, kh, s.g.SH, s.g.PH)
		s.g.OW = conv.OutSize(wd, kw, s.g.SW, s.g.PW)
		return nil
	}
	if ws[0] != cin {
		return &tensor.ShapeError{Op: op, Tensor: "weight", Got: ws,
			Want: fmt.Sprintf("(%d, Cout, kh, kw) to match the input's %d channels", cin, cin)}
	}
	oh := (h-1)*s.g.SH - 2*s.g.PH + kh + s.oph
	ow := (wd-1)*s.g.SW - 2*s.g.PW + kw + s.opw
	if oh < 1 || ow < 1 {
		return fmt.Errorf("%s: output size %d×%d is not positive: (H−1)·stride − 2·pad + k + outpad gives (%d−1)·%d − 2·%d + %d + %d = %d rows and (%d−1)·%d − 2·%d + %d + %d = %d columns",
			op, oh, ow, h, s.g.SH, s.g.PH, kh, s.oph, oh, wd, s.g.SW, s.g.PW, kw, s.opw, ow)
	}
	s.small = cin
	s.g.C, s.g.H, s.g.W = ws[1], oh, ow
	s.g.OH, s.g.OW = h, wd
	return nil
}

// sideShape is a tensor shape of one side, with or without the batch axis
// as the input had it.
// The slice is s's own, valid until the next call.
func (s *convShape) sideShape(channels, h, w int) []int {
	if s.batched {
		s.shape = [4]int{s.n, channels, h, w}
		return s.shape[:4:4]
	}
	s.shape = [4]int{channels, h, w}
	return s.shape[:3:3]
}

// smallShape is the shape of the correlation's output side.
func (s *convShape) smallShape() []int { return s.sideShape(s.small, s.g.OH, s.g.OW) }

// imageShape is the shape of the correlation's input side.
func (s *convShape) imageShape() []int { return s.sideShape(s.g.C, s.g.H, s.g.W) }

// weightShape is (small channels, image channels, kh, kw).
func (s *convShape) weightShape() []int { return []int{s.small, s.g.C, s.g.KH, s.g.KW} }

// convKernelWeight returns the weight the kernels should apply: w itself, or
// its 180° rotation for Flip.
func convKernelWeight[T tensor.Float](s *convShape, w []T) []T {
	if !s.flip {
		return w
	}
	r := make([]T, len(w))
	conv.Rot180(s.g.KH, s.g.KW, w, r)
	return r
}

// imageOff, smallOff and weightOff are flat row-major positions on the
// image side, the small side and in the weight.
func (s *convShape) imageOff(n, c, h, w int) int { return ((n*s.g.C+c)*s.g.H+h)*s.g.W + w }
func (s *convShape) smallOff(n, q, i, j int) int { return ((n*s.small+q)*s.g.OH+i)*s.g.OW + j }
func (s *convShape) weightOff(q, c, a, b int) int {
	return ((q*s.g.C+c)*s.g.KH+a)*s.g.KW + b
}

// tap maps a stored kernel index to the tap it acts as (reversed by Flip).
func (s *convShape) tap(stored, k int) int {
	if s.flip {
		return k - 1 - stored
	}
	return stored
}

// convDown returns the small-side index i with i·stride + a − pad = pos, if
// there is one inside [0, size).
func convDown(pos, a, stride, pad, size int) (int, bool) {
	num := pos + pad - a
	if num < 0 || num%stride != 0 || num/stride >= size {
		return 0, false
	}
	return num / stride, true
}

// convUp returns the image-side index i·stride + a − pad, if inside [0, size).
func convUp(i, a, stride, pad, size int) (int, bool) {
	p := i*stride + a - pad
	return p, p >= 0 && p < size
}

// smallTerms calls f(image position, weight position) for every product
// that makes up small-side element k, ordered by image channel, then by
// stored kernel position.
func (s *convShape) smallTerms(k int, f func(img, w int)) {
	idx := tensor.Index(s.smallShape(), k)
	if !s.batched {
		idx = append([]int{0}, idx...)
	}
	n, q, i, j := idx[0], idx[1], idx[2], idx[3]
	for c := 0; c < s.g.C; c++ {
		for sa := 0; sa < s.g.KH; sa++ {
			h, ok := convUp(i, s.tap(sa, s.g.KH), s.g.SH, s.g.PH, s.g.H)
			if !ok {
				continue
			}
			for sb := 0; sb < s.g.KW; sb++ {
				w, ok := convUp(j, s.tap(sb, s.g.KW), s.g.SW, s.g.PW, s.g.W)
				if !ok {
					continue
				}
				f(s.imageOff(n, c, h, w), s.weightOff(q, c, sa, sb))
			}
		}
	}
}

// imageTerms calls f(small position, weight position) for every product
// that reaches image-side element m, ordered by small-side channel, then by
// stored kernel position.
func (s *convShape) imageTerms(m int, f func(small, w int)) {
	idx := tensor.Index(s.imageShape(), m)
	if !s.batched {
		idx = append([]int{0}, idx...)
	}
	n, c, h, w := idx[0], idx[1], idx[2], idx[3]
	for q := 0; q < s.small; q++ {
		for sa := 0; sa < s.g.KH; sa++ {
			i, ok := convDown(h, s.tap(sa, s.g.KH), s.g.SH, s.g.PH, s.g.OH)
			if !ok {
				continue
			}
			for sb := 0; sb < s.g.KW; sb++ {
				j, ok := convDown(w, s.tap(sb, s.g.KW), s.g.SW, s.g.PW, s.g.OW)
				if !ok {
					continue
				}
				f(s.smallOff(n, q, i, j), s.weightOff(q, c, sa, sb))
			}
		}
	}
}

// weightTerms calls f(small position, image position) for every product
// that weight element m multiplies, ordered by batch index, then by
// small-side position.
func (s *convShape) weightTerms(m int, f func(small, img int)) {
	idx := tensor.Index(s.weightShape(), m)
	q, c := idx[0], idx[1]
	a, b := s.tap(idx[2], s.g.KH), s.tap(idx[3], s.g.KW)
	for n := 0; n < s.n; n++ {
		for i := 0; i < s.g.OH; i++ {
			h, ok := convUp(i, a, s.g.SH, s.g.PH, s.g.H)
			if !ok {
				continue
			}
			for j := 0; j < s.g.OW; j++ {
				w, ok := convUp(j, b, s.g.SW, s.g.PW, s.g.W)
				if !ok {
					continue
				}
				f(s.smallOff(n, q, i, j), s.imageOff(n, c, h, w))
			}
		}
	}
}

// convNote is one "label value" setting shown in a formula.
type convNote struct{ label, plain, tex string }

// notes lists the settings of a formula: stride and padding always (so a
// reader never has to guess the defaults), output padding and the flip
// only when they are used. outPadH/W are passed in because the gradient of
// a convolution is a transposed convolution with its own output padding.
func (s *convShape) notes(outPadH, outPadW int) []convNote {
	pair := func(a, b int) (string, string) {
		if a == b {
			return fmt.Sprint(a), fmt.Sprint(a)
		}
		return fmt.Sprintf("%d×%d", a, b), fmt.Sprintf(`%d \times %d`, a, b)
	}
	var ns []convNote
	p, t := pair(s.g.SH, s.g.SW)
	ns = append(ns, convNote{"stride", p, t})
	p, t = pair(s.g.PH, s.g.PW)
	ns = append(ns, convNote{"pad", p, t})
	if outPadH != 0 || outPadW != 0 {
		p, t = pair(outPadH, outPadW)
		ns = append(ns, convNote{"output pad", p, t})
	}
	if s.flip {
		ns = append(ns, convNote{"flipped kernel", "", ""})
	}
	return ns
}

// convCall is fn(a, b; stride s, pad p, ...), rendered as
// \operatorname{fn}\left(a, b;\ \text{stride } s, ...\right) in LaTeX, with an
// evaluation so that derived equations can be checked numerically.
func convCall(fn string, a, b expr.Expr, notes []convNote, eval func(a, b *tensor.Tensor[float64]) (*tensor.Tensor[float64], error)) expr.Expr {
	var np, nt []string
	for _, n := range notes {
		if n.plain == "" {
			np = append(np, n.label)
			nt = append(nt, `\text{`+n.label+`}`)
			continue
		}
		np = append(np, n.label+" "+n.plain)
		nt = append(nt, `\text{`+n.label+` } `+n.tex)
	}
	return expr.Fn{Name: fn, Args: []expr.Expr{a, b}, Note: strings.Join(np, ", "), NoteTeX: strings.Join(nt, `,\ `),
		Eval: func(args []*tensor.Tensor[float64]) (*tensor.Tensor[float64], error) { return eval(args[0], args[1]) }}
}

// convEval runs a convolution op of this package in float64 on evaluated
// arguments: the forward of op on (x, w), or, when wshape is set, the
// gradient with respect to a weight of that shape given x and the upstream
// gradient g.
func convEval(op autograd.Op[float64], x, w, g *tensor.Tensor[float64], wshape []int) (*tensor.Tensor[float64], error) {
	if wshape == nil {
		return op.Forward([]*tensor.Tensor[float64]{x, w})
	}
	w = tensor.New[float64](wshape...)
	out, err := op.Forward([]*tensor.Tensor[float64]{x, w})
	if err != nil {
		return nil, err
	}
	if !tensor.SameShape(out.Shape(), g.Shape()) {
		if g, err = g.Reshape(out.Shape()...); err != nil {
			return nil, err
		}
	}
	return op.Backward([]*tensor.Tensor[float64]{x, w}, out, g, []bool{false, true})[1], nil
}

// rot180 wraps a weight-gradient formula in the rotation that maps the
// gradient of the applied (flipped) kernel back to the stored one.
func (s *convShape) rot180(e expr.Expr) expr.Expr {
	if !s.flip {
		return e
	}
	return expr.Fn{Name: "rot180", Args: []expr.Expr{e}, Eval: func(a []*tensor.Tensor[float64]) (*tensor.Tensor[float64], error) {
		w := a[0].Clone()
		if w.Rank() != 4 {
			return nil, fmt.Errorf("rot180: want a 4-d kernel, got %s", tensor.FormatShape(w.Shape()))
		}
		kh, kw := w.Dim(2), w.Dim(3)
		for q := 0; q < w.Dim(0)*w.Dim(1); q++ {
			conv.Rot180(kh, kw, a[0].Data()[q*kh*kw:(q+1)*kh*kw], w.Data()[q*kh*kw:(q+1)*kh*kw])
		}
		return w, nil
	}}
}

// convProduct is the term a·b of an element formula.
func convProduct(a, b expr.Expr) expr.Expr { return expr.Product{a, b} }

// Conv2dOp is the 2-D convolution layer of PyTorch
// (torch.nn.functional.conv2d without bias, which is a separate op): a
// cross-correlation of the input x (N, Cin, H, W) or (Cin, H, W) with the
// weight (Cout, Cin, kh, kw),
//
//	y[n,o,i,j] = Σ_c Σ_a Σ_b x[n,c, i·sh+a−ph, j·sw+b−pw] · w[o,c,a,b],
//
// positions outside the input reading as zero padding. The output is
// (N, Cout, H', W') with H' = ⌊(H + 2·ph − kh)/sh⌋ + 1, unbatched if the
// input was. It runs as im2col and a matrix product per image; its input
// gradient is the transposed convolution of the upstream gradient with the
// same weight.
type Conv2dOp[T tensor.Float] struct {
	Options ConvOptions

	s     convShape
	saved *conv.Saved[T] // the unfolded input, kept from Forward for Backward's weight gradient
	keep  conv.Saved[T]  // saved's storage

	recyclable
}

// Conv2d records the convolution of x with the weight w as node name; see
// Conv2dOp.
func Conv2d[T tensor.Float](name string, x, w *autograd.Var[T], opt ConvOptions) (*autograd.Var[T], error) {
	o := newOp[Conv2dOp[T]]()
	o.Options, o.pooled = opt, true
	return apply(name, o, x, w)
}

// Recycle implements autograd.Recycler.
func (o *Conv2dOp[T]) Recycle() {
	if !o.pooled {
		return
	}
	o.saved.Release()
	*o = Conv2dOp[T]{}
	putOp(o)
}

// Name implements autograd.Op.
func (o *Conv2dOp[T]) Name() string { return "conv2d" }

// Forward implements autograd.Op.
func (o *Conv2dOp[T]) Forward(in []*tensor.Tensor[T]) (*tensor.Tensor[T], error) {
	if err := wantInputs("conv2d", in, 2); err != nil {
		return nil, err
	}
	if err := o.s.setup(false, in[0].Shape(), in[1].Shape(), o.Options); err != nil {
		return nil, err
	}
	s := &o.s
	out := tensor.Empty[T](s.smallShape()...) // conv.Forward overwrites it
	w := convKernelWeight(s, in[1].Data())
	o.saved.Release()
	o.saved = conv.ForwardSaveTo(&o.keep, s.g, s.n, s.small, in[0].Data(), w, out.Data())
	return out, nil
}

// Backward implements autograd.Op: dx = col2im(Wᵀ·dY) per image (the
// transposed convolution of dY with w) and dW = Σ_n dY_n·im2col(x_n)ᵀ.
func (o *Conv2dOp[T]) Backward(in []*tensor.Tensor[T], out, gout *tensor.Tensor[T], need []bool) []*tensor.Tensor[T] {
	grads := make([]*tensor.Tensor[T], 2)
	o.BackwardInto(grads, in, out, gout, need)
	return grads
}

// BackwardInto implements autograd.GradWriter.
func (o *Conv2dOp[T]) BackwardInto(grads, in []*tensor.Tensor[T], out, gout *tensor.Tensor[T], need []bool) {
	s := &o.s
	var dx, dw, w []T
	if need[0] {
		grads[0] = tensor.Empty[T](in[0].Shape()...) // overwritten
		dx = grads[0].Data()
		w = convKernelWeight(s, in[1].Data())
	}
	if need[1] {
		grads[1] = tensor.New[T](in[1].Shape()...)
		dw = convWeightBuf(s, grads[1].Data())
	}
	conv.BackwardSaved(s.g, s.n, s.small, in[0].Data(), w, gout.Data(), dx, dw, o.saved)
	o.saved = nil
	if need[1] {
		convUnflip(s, dw, grads[1].Data())
	}
}

// convWeightBuf is where the kernels should write the weight gradient: the
// gradient tensor itself, or a scratch buffer for Flip, whose kernels
// compute the gradient of the rotated weight.
func convWeightBuf[T tensor.Float](s *convShape, dw []T) []T {
	if !s.flip {
		return dw
	}
	return make([]T, len(dw))
}

// convUnflip rotates the gradient of the applied (rotated) weight back to
// the stored weight's layout.
func convUnflip[T tensor.Float](s *convShape, buf, dw []T) {
	if s.flip {
		conv.Rot180(s.g.KH, s.g.KW, buf, dw)
	}
}

// Formula implements explain.Explainer: conv(x, w; stride s, pad p).
func (o *Conv2dOp[T]) Formula(in []expr.Expr) expr.Expr {
	opt := o.Options
	return convCall("conv", in[0], in[1], o.s.notes(0, 0), func(x, w *tensor.Tensor[float64]) (*tensor.Tensor[float64], error) {
		return convEval(&Conv2dOp[float64]{Options: opt}, x, w, nil, nil)
	})
}

// ForwardElem implements explain.Explainer: output element k as
// Σ x[n,c,h,w]·w[o,c,a,b] over the kernel taps that land inside the input,
// by input channel, then kernel position.
func (o *Conv2dOp[T]) ForwardElem(k int, in func(i, m int) expr.Expr) expr.Expr {
	var terms []expr.Expr
	o.s.smallTerms(k, func(img, w int) { terms = append(terms, convProduct(in(0, img), in(1, w))) })
	return sumOf(terms)
}

// BackwardFormula implements explain.Explainer. The input gradient is the
// transposed convolution deconv(gout, w) with the same stride and padding
// (and the output padding that restores the input's size); the weight
// gradient is corr(x, gout), the correlation of the input with the upstream
// gradient: ∂J/∂w[o,c,a,b] = Σ_n Σ_i Σ_j gout[n,o,i,j]·x[n,c, i·s+a−p, j·s+b−p].
func (o *Conv2dOp[T]) BackwardFormula(i int, in []expr.Expr, out, gout expr.Expr) expr.Expr {
	s := &o.s
	if i == 0 {
		rh := (s.g.H + 2*s.g.PH - s.g.KH) % s.g.SH
		rw := (s.g.W + 2*s.g.PW - s.g.KW) % s.g.SW
		opt := o.Options
		opt.OutPadH, opt.OutPadW = rh, rw
		return convCall("deconv", gout, in[1], s.notes(rh, rw), func(g, w *tensor.Tensor[float64]) (*tensor.Tensor[float64], error) {
			return convEval(&ConvTranspose2dOp[float64]{Options: opt}, g, w, nil, nil)
		})
	}
	plain := *s
	plain.flip = false
	opt := o.Options
	opt.Flip = false
	wshape := s.weightShape()
	return s.rot180(convCall("corr", in[0], gout, plain.notes(0, 0), func(x, g *tensor.Tensor[float64]) (*tensor.Tensor[float64], error) {
		return convEval(&Conv2dOp[float64]{Options: opt}, x, nil, g, wshape)
	}))
}

// BackwardElem implements explain.Explainer: for the input, Σ gout·w over
// the outputs whose window covers the element (by output channel, then
// kernel position); for the weight, Σ gout·x over the batch and the output
// positions.
func (o *Conv2dOp[T]) BackwardElem(i, m int, in func(i, m int) expr.Expr, out, gout func(k int) expr.Expr) expr.Expr {
	var terms []expr.Expr
	if i == 0 {
		o.s.imageTerms(m, func(small, w int) { terms = append(terms, convProduct(gout(small), in(1, w))) })
	} else {
		o.s.weightTerms(m, func(small, img int) { terms = append(terms, convProduct(gout(small), in(0, img))) })
	}
	return sumOf(terms)
}

// ConvTranspose2dOp is PyTorch's transposed convolution
// (torch.nn.functional.conv_transpose2d without bias), often called
// deconvolution: every input pixel scatters a copy of the kernel, scaled by
// its value, into the output,
//
//	out[n,o, i·sh+a−ph, j·sw+b−pw] += x[n,c,i,j] · w[c,o,a,b],
//
// with x (N, Cin, H, W) or (Cin, H, W), the weight (Cin, Cout, kh, kw) and
// the output (N, Cout, H', W'), H' = (H−1)·sh − 2·ph + kh + outpad_h:
// padding crops the full result, output padding extends it at the bottom
// and right. It is the adjoint of Conv2d with the same weight and options,
// so its forward pass is Conv2d's input gradient (Wᵀ·x then col2im) and its
// input gradient is Conv2d's forward pass. With Options.Flip the kernel is
// rotated by 180° first (the textbook "full convolution" convention).
type ConvTranspose2dOp[T tensor.Float] struct {
	Options ConvOptions

	s convShape

	recyclable
}

// ConvTranspose2d records the transposed convolution of x with the weight
// w as node name; see ConvTranspose2dOp.
func ConvTranspose2d[T tensor.Float](name string, x, w *autograd.Var[T], opt ConvOptions) (*autograd.Var[T], error) {
	o := newOp[ConvTranspose2dOp[T]]()
	o.Options, o.pooled = opt, true
	return apply(name, o, x, w)
}

// Recycle implements autograd.Recycler.
func (o *ConvTranspose2dOp[T]) Recycle() {
	if !o.pooled {
		return
	}
	*o = ConvTranspose2dOp[T]{}
	putOp(o)
}

// Name implements autograd.Op.
func (o *ConvTranspose2dOp[T]) Name() string { return "conv_transpose2d" }

// Forward implements autograd.Op.
func (o *ConvTranspose2dOp[T]) Forward(in []*tensor.Tensor[T]) (*tensor.Tensor[T], error) {
	if err := wantInputs("conv_transpose2d", in, 2); err != nil {
		return nil, err
	}
	if err := o.s.setup(true, in[0].Shape(), in[1].Shape(), o.Options); err != nil {
		return nil, err
	}
	s := &o.s
	out := tensor.Empty[T](s.imageShape()...) // conv.BackwardInput overwrites it
	w := convKernelWeight(s, in[1].Data())
	conv.BackwardInput(s.g, s.n, s.small, w, in[0].Data(), out.Data(), nil)
	return out, nil
}

// Backward implements autograd.Op: dx is the convolution of dY with w
// (im2col and W·col per image) and dW = Σ_n x_n·im2col(dY_n)ᵀ.
func (o *ConvTranspose2dOp[T]) Backward(in []*tensor.Tensor[T], out, gout *tensor.Tensor[T], need []bool) []*tensor.Tensor[T] {
	grads := make([]*tensor.Tensor[T], 2)
	o.BackwardInto(grads, in, out, gout, need)
	return grads
}

// BackwardInto implements autograd.GradWriter.
func (o *ConvTranspose2dOp[T]) BackwardInto(grads, in []*tensor.Tensor[T], out, gout *tensor.Tensor[T], need []bool) {
	s := &o.s
	var dx, dw, w []T
	if need[0] {
		grads[0] = tensor.Empty[T](in[0].Shape()...) // overwritten
		dx = grads[0].Data()
		w = convKernelWeight(s, in[1].Data())
	}
	if need[1] {
		grads[1] = tensor.New[T](in[1].Shape()...)
		dw = convWeightBuf(s, grads[1].Data())
	}
	conv.TransposedBackward(s.g, s.n, s.small, in[0].Data(), w, gout.Data(), dx, dw, nil)
	if need[1] {
		convUnflip(s, dw, grads[1].Data())
	}
}

// Formula implements explain.Explainer: deconv(x, w; stride s, pad p).
func (o *ConvTranspose2dOp[T]) Formula(in []expr.Expr) expr.Expr {
	opt := o.Options
	return convCall("deconv", in[0], in[1], o.s.notes(o.s.oph, o.s.opw), func(x, w *tensor.Tensor[float64]) (*tensor.Tensor[float64], error) {
		return convEval(&ConvTranspose2dOp[float64]{Options: opt}, x, w, nil, nil)
	})
}

// ForwardElem implements explain.Explainer: output element k as
// Σ x[n,c,i,j]·w[c,o,a,b] over the input pixels whose kernel copy covers
// it, by input channel, then kernel position.
func (o *ConvTranspose2dOp[T]) ForwardElem(k int, in func(i, m int) expr.Expr) expr.Expr {
	var terms []expr.Expr
	o.s.imageTerms(k, func(small, w int) { terms = append(terms, convProduct(in(0, small), in(1, w))) })
	return sumOf(terms)
}

// BackwardFormula implements explain.Explainer. The input gradient is the
// correlation corr(gout, w) with the same stride and padding (what Conv2d
// computes); the weight
// gradient is corr(gout, x), the correlation of the upstream gradient with
// the input: ∂J/∂w[c,o,a,b] = Σ_n Σ_i Σ_j gout[n,o, i·s+a−p, j·s+b−p]·x[n,c,i,j].
func (o *ConvTranspose2dOp[T]) BackwardFormula(i int, in []expr.Expr, out, gout expr.Expr) expr.Expr {
	s := &o.s
	if i == 0 {
		opt := o.Options
		opt.OutPadH, opt.OutPadW = 0, 0
		// the input gradient is a correlation of the upstream gradient
		// with the kernel (Conv2d's own operation): named corr, as the
		// weight gradient, so one operation has one name
		return convCall("corr", gout, in[1], s.notes(0, 0), func(g, w *tensor.Tensor[float64]) (*tensor.Tensor[float64], error) {
			return convEval(&Conv2dOp[float64]{Options: opt}, g, w, nil, nil)
		})
	}
	plain := *s
	plain.flip = false
	opt := o.Options
	opt.Flip = false
	wshape := s.weightShape()
	return s.rot180(convCall("corr", gout, in[0], plain.notes(0, 0), func(g, x *tensor.Tensor[float64]) (*tensor.Tensor[float64], error) {
		return convEval(&ConvTranspose2dOp[float64]{Options: opt}, x, nil, g, wshape)
	}))
}

// BackwardElem implements explain.Explainer: for the input, Σ gout·w over
// the output pixels its kernel copy reached (by output channel, then kernel
// position); for the weight, Σ gout·x over the batch and the input pixels.
func (o *ConvTranspose2dOp[T]) BackwardElem(i, m int, in func(i, m int) expr.Expr, out, gout func(k int) expr.Expr) expr.Expr {
	var terms []expr.Expr
	if i == 0 {
		o.s.smallTerms(m, func(img, w int) { terms = append(terms, convProduct(gout(img), in(1, w))) })
	} else {
		o.s.weightTerms(m, func(small, img int) { terms = append(terms, convProduct(gout(img), in(0, small))) })
	}
	return sumOf(terms)
}
