package ops

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/backprop-dev/backprop/autograd"
	"github.com/backprop-dev/backprop/explain"
	"github.com/backprop-dev/backprop/expr"
	"github.com/backprop-dev/backprop/gradcheck"
	"github.com/backprop-dev/backprop/tensor"
)

// convCase is one layer configuration used by several tests.
type convCase struct {
	name       string
	transposed bool
	x, w       []int
	opt        ConvOptions
}

func (c convCase) String() string {
	op := "conv2d"
	if c.transposed {
		op = "deconv"
	}
	return fmt.Sprintf("%s/%s/x%v/w%v/s%dx%d/p%dx%d/op%dx%d/flip=%v", op, c.name, c.x, c.w,
		c.opt.StrideH, c.opt.StrideW, c.opt.PadH, c.opt.PadW, c.opt.OutPadH, c.opt.OutPadW, c.opt.Flip)
}

// apply records the case's layer on x and w.
func (c convCase) apply(x, w *autograd.Var[float64]) (*autograd.Var[float64], error) {
	if c.transposed {
		return ConvTranspose2d("y", x, w, c.opt)
	}
	return Conv2d("y", x, w, c.opt)
}

// convCases covers batch > 1 and unbatched inputs, several channels,
// strides 1 and 2, padding 0 and 1, output padding, non-square kernels and
// per-axis settings; each is used with Flip false and true.
func convCases() []convCase {
	base := []convCase{
		{"s1p0", false, []int{2, 3, 5, 6}, []int{2, 3, 3, 3}, ConvOptions{}},
		{"s2p1-k2x3", false, []int{2, 2, 7, 6}, []int{3, 2, 2, 3}, ConvOptions{StrideH: 2, StrideW: 2, PadH: 1, PadW: 1}},
		{"unbatched-s2p1", false, []int{2, 5, 5}, []int{3, 2, 3, 3}, ConvOptions{StrideH: 2, StrideW: 2, PadH: 1, PadW: 1}},
		{"mixed-axes", false, []int{3, 1, 6, 5}, []int{2, 1, 3, 2}, ConvOptions{StrideH: 2, StrideW: 1, PadH: 0, PadW: 1}},
		{"k4s2p1", false, []int{2, 2, 6, 6}, []int{2, 2, 4, 4}, ConvOptions{StrideH: 2, StrideW: 2, PadH: 1, PadW: 1}},
		{"s1p0", true, []int{2, 3, 3, 4}, []int{3, 2, 3, 3}, ConvOptions{}},
		{"s2p1-op1-k2x3", true, []int{2, 2, 3, 3}, []int{2, 3, 2, 3}, ConvOptions{StrideH: 2, StrideW: 2, PadH: 1, PadW: 1, OutPadH: 1, OutPadW: 1}},
		{"unbatched-k4s2p1", true, []int{2, 3, 2}, []int{2, 2, 4, 4}, ConvOptions{StrideH: 2, StrideW: 2, PadH: 1, PadW: 1}},
		{"mixed-axes", true, []int{3, 2, 3, 3}, []int{2, 2, 3, 2}, ConvOptions{StrideH: 2, StrideW: 1, PadH: 1, PadW: 0, OutPadH: 1}},
		{"s2p0", true, []int{1, 1, 2, 3}, []int{1, 2, 2, 2}, ConvOptions{StrideH: 2, StrideW: 2}},
	}
	var cs []convCase
	for _, c := range base {
		for _, flip := range []bool{false, true} {
			c.opt.Flip = flip
			cs = append(cs, c)
		}
	}
	return cs
}

// effW is the weight element the layer applies at tap (a, b): the stored
// one, or the 180°-rotated one with Flip.
func effW(w *tensor.Tensor[float64], flip bool, p, q, a, b int) float64 {
	if flip {
		a, b = w.Dim(2)-1-a, w.Dim(3)-1-b
	}
	return w.At(p, q, a, b)
}

func or1(s int) int {
	if s == 0 {
		return 1
	}
	return s
}

// batched4 views an unbatched (C,H,W) tensor as (1,C,H,W).
func batched4(x *tensor.Tensor[float64]) *tensor.Tensor[float64] {
	if x.Rank() == 4 {
		return x
	}
	v, err := x.Reshape(append([]int{1}, x.Shape()...)...)
	if err != nil {
		panic(err)
	}
	return v
}

// reference evaluates the layer straight from PyTorch's definitions: a
// gather for conv2d, a scatter ("each input pixel pastes a copy of the
// kernel") for conv_transpose2d. The result is always batched.
func (c convCase) reference(x, w *tensor.Tensor[float64]) *tensor.Tensor[float64] {
	x = batched4(x)
	n, cin, h, wd := x.Dim(0), x.Dim(1), x.Dim(2), x.Dim(3)
	kh, kw := w.Dim(2), w.Dim(3)
	sh, sw, ph, pw := or1(c.opt.StrideH), or1(c.opt.StrideW), c.opt.PadH, c.opt.PadW
	if !c.transposed {
		cout := w.Dim(0)
		oh, ow := (h+2*ph-kh)/sh+1, (wd+2*pw-kw)/sw+1
		y := tensor.New[float64](n, cout, oh, ow)
		for b := range n {
			for o := range cout {
				for i := range oh {
					for j := range ow {
						s := 0.0
						for ch := range cin {
							for a := range kh {
								for q := range kw {
									r, col := i*sh+a-ph, j*sw+q-pw
									if r >= 0 && r < h && col >= 0 && col < wd {
										s += x.At(b, ch, r, col) * effW(w, c.opt.Flip, o, ch, a, q)
									}
								}
							}
						}
						y.Set(s, b, o, i, j)
					}
				}
			}
		}
		return y
	}
	cout := w.Dim(1)
	oh := (h-1)*sh - 2*ph + kh + c.opt.OutPadH
	ow := (wd-1)*sw - 2*pw + kw + c.opt.OutPadW
	y := tensor.New[float64](n, cout, oh, ow)
	for b := range n {
		for ch := range cin {
			for i := range h {
				for j := range wd {
					for o := range cout {
						for a := range kh {
							for q := range kw {
								r, col := i*sh+a-ph, j*sw+q-pw
								if r >= 0 && r < oh && col >= 0 && col < ow {
									y.Set(y.At(b, o, r, col)+x.At(b, ch, i, j)*effW(w, c.opt.Flip, ch, o, a, q), b, o, r, col)
								}
							}
						}
					}
				}
			}
		}
	}
	return y
}

func maxAbsDiff(a, b []float64) float64 {
	d := 0.0
	for i := range a {
		d = math.Max(d, math.Abs(a[i]-b[i]))
	}
	return d
}

// TestConvGradcheck compares both gradients of both layers with central
// differences over every case.
func TestConvGradcheck(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	for _, c := range convCases() {
		t.Run(c.String(), func(t *testing.T) {
			x, w := gradcheck.Random(rng, c.x...), gradcheck.Random(rng, c.w...)
			f := func(in []*autograd.Var[float64]) (*autograd.Var[float64], error) { return c.apply(in[0], in[1]) }
			res, err := gradcheck.Check(f, []*tensor.Tensor[float64]{x, w}, gradcheck.Options{Tol: 1e-6}, rng)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("max rel err: x %.2g, w %.2g", res.MaxRelErr[0], res.MaxRelErr[1])
		})
	}
}

// TestConvMatchesDefinition checks the im2col/GEMM forward against the
// definitions written as plain loops, including output shapes and the
// dropping of the batch axis for unbatched inputs.
func TestConvMatchesDefinition(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for _, c := range convCases() {
		x, w := gradcheck.Random(rng, c.x...), gradcheck.Random(rng, c.w...)
		y, err := c.apply(autograd.Leaf("x", x, false), autograd.Leaf("w", w, false))
		if err != nil {
			t.Fatalf("%v: %v", c, err)
		}
		want := c.reference(x, w)
		wantShape := want.Shape()
		if len(c.x) == 3 {
			wantShape = wantShape[1:]
		}
		if !tensor.SameShape(y.Value.Shape(), wantShape) {
			t.Fatalf("%v: output shape %v, want %v", c, y.Value.Shape(), wantShape)
		}
		if d := maxAbsDiff(y.Value.Data(), want.Data()); d > 1e-12 {
			t.Errorf("%v: forward differs from the definition by %g", c, d)
		}
	}
}

// rot180 returns w with every kernel rotated by 180°, index by index.
func rot180(w *tensor.Tensor[float64]) *tensor.Tensor[float64] {
	r := tensor.New[float64](w.Shape()...)
	p, q, kh, kw := w.Dim(0), w.Dim(1), w.Dim(2), w.Dim(3)
	for i := range p {
		for j := range q {
			for a := range kh {
				for b := range kw {
					r.Set(w.At(i, j, a, b), i, j, kh-1-a, kw-1-b)
				}
			}
		}
	}
	return r
}

// TestConvFlipIsRotatedKernel checks that Flip is PyTorch's layer applied
// to the 180°-rotated kernel, and that the weight gradient is taken with
// respect to the stored weight (the rotation of the plain layer's gradient).
func TestConvFlipIsRotatedKernel(t *testing.T) {
	rng := rand.New(rand.NewPCG(8, 9))
	for _, c := range convCases() {
		if !c.opt.Flip {
			continue
		}
		plain := c
		plain.opt.Flip = false
		x, w := gradcheck.Random(rng, c.x...), gradcheck.Random(rng, c.w...)
		xf, wf := autograd.Leaf("x", x, true), autograd.Leaf("w", w, true)
		xp, wp := autograd.Leaf("x", x.Clone(), true), autograd.Leaf("w", rot180(w), true)
		yf, err := c.apply(xf, wf)
		if err != nil {
			t.Fatal(err)
		}
		yp, err := plain.apply(xp, wp)
		if err != nil {
			t.Fatal(err)
		}
		if d := maxAbsDiff(yf.Value.Data(), yp.Value.Data()); d > 1e-12 {
			t.Errorf("%v: flipped output differs from the plain layer on the rotated kernel by %g", c, d)
		}
		seed := gradcheck.Random(rng, yf.Value.Shape()...)
		if err := autograd.BackwardFrom(yf, seed); err != nil {
			t.Fatal(err)
		}
		if err := autograd.BackwardFrom(yp, seed); err != nil {
			t.Fatal(err)
		}
		if d := maxAbsDiff(xf.Grad.Data(), xp.Grad.Data()); d > 1e-12 {
			t.Errorf("%v: input gradients differ by %g", c, d)
		}
		if d := maxAbsDiff(wf.Grad.Data(), rot180(wp.Grad).Data()); d > 1e-12 {
			t.Errorf("%v: weight gradient is not the rotated plain one (diff %g)", c, d)
		}
	}
}

// TestConvBackwardPartial checks that asking for one gradient gives the
// same values as asking for both, and leaves the other one nil.
func TestConvBackwardPartial(t *testing.T) {
	rng := rand.New(rand.NewPCG(14, 15))
	for _, c := range convCases() {
		x, w := gradcheck.Random(rng, c.x...), gradcheck.Random(rng, c.w...)
		y, err := c.apply(autograd.Leaf("x", x, false), autograd.Leaf("w", w, false))
		if err != nil {
			t.Fatal(err)
		}
		in := []*tensor.Tensor[float64]{x, w}
		gout := gradcheck.Random(rng, y.Value.Shape()...)
		both := y.Op.Backward(in, y.Value, gout, []bool{true, true})
		for i := range 2 {
			need := []bool{i == 0, i == 1}
			one := y.Op.Backward(in, y.Value, gout, need)
			if one[1-i] != nil {
				t.Errorf("%v: gradient %d computed though not needed", c, 1-i)
			}
			if !tensor.SameShape(one[i].Shape(), in[i].Shape()) {
				t.Fatalf("%v: gradient %d has shape %v, want %v", c, i, one[i].Shape(), in[i].Shape())
			}
			if d := maxAbsDiff(one[i].Data(), both[i].Data()); d != 0 {
				t.Errorf("%v: gradient %d alone differs from both at once by %g", c, i, d)
			}
		}
	}
}

// evalExpr evaluates an element formula built from numbers, sums and
// products, the only nodes the convolution explainers produce.
func evalExpr(t *testing.T, e expr.Expr) float64 {
	t.Helper()
	switch v := e.(type) {
	case expr.Num:
		return float64(v)
	case expr.Sum:
		s := 0.0
		for _, term := range v {
			s += evalExpr(t, term)
		}
		return s
	case expr.Product:
		p := 1.0
		for _, f := range v {
			p *= evalExpr(t, f)
		}
		return p
	}
	t.Fatalf("unexpected expression node %T in %s", e, expr.String(e))
	return 0
}

// TestConvExplainerElements evaluates ForwardElem for every output element
// and BackwardElem for every element of both gradients, with the numbers
// substituted, and compares them with the computed values.
func TestConvExplainerElements(t *testing.T) {
	rng := rand.New(rand.NewPCG(12, 13))
	cases := []convCase{
		{"s2p1", false, []int{2, 2, 5, 6}, []int{3, 2, 3, 2}, ConvOptions{StrideH: 2, StrideW: 2, PadH: 1, PadW: 1}},
		{"s2p1-op1", true, []int{2, 2, 3, 2}, []int{2, 3, 3, 2}, ConvOptions{StrideH: 2, StrideW: 2, PadH: 1, PadW: 1, OutPadH: 1, OutPadW: 1}},
		{"unbatched-s2p1", false, []int{2, 4, 5}, []int{2, 2, 3, 3}, ConvOptions{StrideH: 2, StrideW: 2, PadH: 1, PadW: 1}},
		{"unbatched-s2p1", true, []int{2, 3, 3}, []int{2, 2, 3, 3}, ConvOptions{StrideH: 2, StrideW: 2, PadH: 1, PadW: 1}},
	}
	for _, c := range cases {
		for _, flip := range []bool{false, true} {
			c.opt.Flip = flip
			x, w := gradcheck.Random(rng, c.x...), gradcheck.Random(rng, c.w...)
			xv, wv := autograd.Leaf("x", x, true), autograd.Leaf("w", w, true)
			y, err := c.apply(xv, wv)
			if err != nil {
				t.Fatal(err)
			}
			seed := gradcheck.Random(rng, y.Value.Shape()...)
			if err := autograd.BackwardFrom(y, seed); err != nil {
				t.Fatal(err)
			}
			ex, ok := y.Op.(explain.Explainer)
			if !ok {
				t.Fatalf("%T does not implement explain.Explainer", y.Op)
			}
			inputs := []*tensor.Tensor[float64]{x, w}
			in := func(i, m int) expr.Expr { return expr.Num(inputs[i].Data()[m]) }
			out := func(k int) expr.Expr { return expr.Num(y.Value.Data()[k]) }
			gout := func(k int) expr.Expr { return expr.Num(seed.Data()[k]) }
			for k, want := range y.Value.Data() {
				if got := evalExpr(t, ex.ForwardElem(k, in)); math.Abs(got-want) > 1e-12 {
					t.Fatalf("%v: ForwardElem(%d) = %v, output is %v", c, k, got, want)
				}
			}
			for i, g := range []*tensor.Tensor[float64]{xv.Grad, wv.Grad} {
				for m, want := range g.Data() {
					if got := evalExpr(t, ex.BackwardElem(i, m, in, out, gout)); math.Abs(got-want) > 1e-12 {
						t.Fatalf("%v: BackwardElem(%d, %d) = %v, gradient is %v", c, i, m, got, want)
					}
				}
			}
		}
	}
}

// TestConvTransposeSeedProblem is the worked example: two 2×2 channels
// deconvolved by a (2,1,3,3) kernel with stride 1 and no padding give a
// 4×4 map whose elements a student can check by hand.
func TestConvTransposeSeedProblem(t *testing.T) {
	h1 := tensor.MustFromSlice([]float64{
		0.38, 1.40, 0.96, 1.06,
		0.70, 1.54, 1.62, 1.06,
	}, 2, 2, 2)
	w1 := tensor.MustFromSlice([]float64{
		0.1, 0.4, 0.5, 0.1, 0.7, 0.1, 0.2, 0.4, 0.3,
		0.2, 0.1, 0.6, 0.3, 0.9, 0.2, 0.5, 0.2, 0.3,
	}, 2, 1, 3, 3)
	y, err := ConvTranspose2d("z2", autograd.Leaf("h1", h1, false), autograd.Leaf("w1", w1, true), ConvOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !tensor.SameShape(y.Value.Shape(), []int{1, 4, 4}) {
		t.Fatalf("output shape %v, want [1 4 4]", y.Value.Shape())
	}
	// Corner: only x[·,0,0] reaches out[0,0], through kernel tap (0,0).
	if got, want := y.Value.At(0, 0, 0), 0.38*0.1+0.70*0.2; math.Abs(got-want) > 1e-12 {
		t.Errorf("out[0,0] = %v, want 0.38·0.1 + 0.70·0.2 = %v", got, want)
	}
	// Interior: out[1,1] collects all four pixels of each channel, pixel
	// (i,j) through tap (1−i, 1−j).
	want := 0.38*0.7 + 1.40*0.1 + 0.96*0.4 + 1.06*0.1 + // channel 1: taps (1,1) (1,0) (0,1) (0,0)
		0.70*0.9 + 1.54*0.3 + 1.62*0.1 + 1.06*0.2 // channel 2
	if got := y.Value.At(0, 1, 1); math.Abs(got-want) > 1e-12 || math.Abs(want-2.362) > 1e-12 {
		t.Errorf("out[1,1] = %v, want %v (2.362)", got, want)
	}

	ex := y.Op.(explain.Explainer)
	names := []string{"h1", "w1"}
	shapes := [][]int{h1.Shape(), w1.Shape()}
	ref := func(i, m int) expr.Expr { return expr.Ref{Name: names[i], Index: tensor.Index(shapes[i], m)} }
	num := func(i, m int) expr.Expr {
		return expr.Num([]*tensor.Tensor[float64]{h1, w1}[i].Data()[m])
	}
	checks := []struct{ got, want string }{
		{expr.String(ex.ForwardElem(0, ref)), "h1[1,1,1]·w1[1,1,1,1] + h1[2,1,1]·w1[2,1,1,1]"},
		{expr.String(ex.ForwardElem(0, num)), "0.38·0.1 + 0.7·0.2"},
		{expr.String(ex.ForwardElem(5, num)), "1.06·0.1 + 0.96·0.4 + 1.4·0.1 + 0.38·0.7 + 1.06·0.2 + 1.62·0.1 + 1.54·0.3 + 0.7·0.9"},
		{expr.String(ex.Formula([]expr.Expr{expr.Ref{Name: "h1"}, expr.Ref{Name: "w1"}})), "deconv(h1, w1; stride 1, pad 0)"},
		{ex.Formula([]expr.Expr{expr.Ref{Name: "h1"}, expr.Ref{Name: "w1"}}).Render(expr.Style{LaTeX: true}),
			`\operatorname{deconv}\left(h_{1}, w_{1};\ \text{stride } 1,\ \text{pad } 0\right)`},
		{expr.String(ex.BackwardFormula(0, []expr.Expr{expr.Ref{Name: "h1"}, expr.Ref{Name: "w1"}}, expr.Ref{Name: "z2"}, expr.Ref{Name: "δz2"})),
			"corr(δz2, w1; stride 1, pad 0)"},
		{expr.String(ex.BackwardFormula(1, []expr.Expr{expr.Ref{Name: "h1"}, expr.Ref{Name: "w1"}}, expr.Ref{Name: "z2"}, expr.Ref{Name: "δz2"})),
			"corr(δz2, h1; stride 1, pad 0)"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("got  %s\nwant %s", c.got, c.want)
		}
	}
}

// TestConvFormulas checks the whole-tensor formulas' notes: non-square
// settings, output padding, the flip, and the output padding a strided
// convolution's input gradient needs.
func TestConvFormulas(t *testing.T) {
	x, w := expr.Ref{Name: "x"}, expr.Ref{Name: "w"}
	g := expr.Ref{Name: "g"}
	c := &Conv2dOp[float64]{Options: ConvOptions{StrideH: 2, StrideW: 2, PadH: 1, PadW: 1, Flip: true}}
	if _, err := c.Forward([]*tensor.Tensor[float64]{tensor.New[float64](1, 2, 6, 5), tensor.New[float64](3, 2, 3, 3)}); err != nil {
		t.Fatal(err)
	}
	d := &ConvTranspose2dOp[float64]{Options: ConvOptions{StrideH: 2, StrideW: 1, PadH: 1, OutPadH: 1}}
	if _, err := d.Forward([]*tensor.Tensor[float64]{tensor.New[float64](1, 2, 3, 3), tensor.New[float64](2, 3, 3, 2)}); err != nil {
		t.Fatal(err)
	}
	checks := []struct{ got, want string }{
		{expr.String(c.Formula([]expr.Expr{x, w})), "conv(x, w; stride 2, pad 1, flipped kernel)"},
		// (6 + 2 − 3) mod 2 = 1 row and (5 + 2 − 3) mod 2 = 0 columns are lost by the stride
		{expr.String(c.BackwardFormula(0, []expr.Expr{x, w}, nil, g)), "deconv(g, w; stride 2, pad 1, output pad 1×0, flipped kernel)"},
		{expr.String(c.BackwardFormula(1, []expr.Expr{x, w}, nil, g)), "rot180(corr(x, g; stride 2, pad 1))"},
		{expr.String(d.Formula([]expr.Expr{x, w})), "deconv(x, w; stride 2×1, pad 1×0, output pad 1×0)"},
		{d.Formula([]expr.Expr{x, w}).Render(expr.Style{LaTeX: true}),
			`\operatorname{deconv}\left(x, w;\ \text{stride } 2 \times 1,\ \text{pad } 1 \times 0,\ \text{output pad } 1 \times 0\right)`},
		{expr.String(d.BackwardFormula(0, []expr.Expr{x, w}, nil, g)), "corr(g, w; stride 2×1, pad 1×0)"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("got  %s\nwant %s", c.got, c.want)
		}
	}
}

// TestConvErrors checks that shape and option mistakes name the operand and
// give both the expected and the received shape.
func TestConvErrors(t *testing.T) {
	type errCase struct {
		transposed bool
		x, w       []int
		opt        ConvOptions
		want       string
		shapeErr   bool
	}
	cases := []errCase{
		{false, []int{2, 3}, []int{1, 1, 1, 1}, ConvOptions{},
			"h: conv2d: input has shape [2×3], want (N, Cin, H, W) or (Cin, H, W)", true},
		{false, []int{1, 3, 5, 5}, []int{2, 3, 3}, ConvOptions{},
			"h: conv2d: weight has shape [2×3×3], want (Cout, Cin, kh, kw)", true},
		{false, []int{1, 3, 5, 5}, []int{4, 2, 3, 3}, ConvOptions{},
			"h: conv2d: weight has shape [4×2×3×3], want (Cout, 3, kh, kw) to match the input's 3 channels", true},
		{false, []int{1, 2, 2}, []int{1, 1, 5, 5}, ConvOptions{PadH: 1, PadW: 1},
			"h: conv2d: weight has shape [1×1×5×5], want a kernel of at most 4×4, the size of the input's 2×2 plus padding 1×1 on each side", true},
		{false, []int{1, 1, 4, 4}, []int{1, 1, 3, 3}, ConvOptions{StrideH: 2, OutPadH: 1},
			"h: conv2d: output padding (OutPadH=1, OutPadW=0) applies only to conv_transpose2d", false},
		{false, []int{1, 1, 4, 4}, []int{1, 1, 3, 3}, ConvOptions{StrideW: -1},
			"h: conv2d: StrideW must be positive (0 means the default 1), got -1", false},
		{false, []int{1, 1, 4, 4}, []int{1, 1, 3, 3}, ConvOptions{PadH: -1},
			"h: conv2d: padding must not be negative, got PadH=-1, PadW=0", false},
		{true, []int{3, 4, 4, 4, 4}, []int{3, 1, 3, 3}, ConvOptions{},
			"h: conv_transpose2d: input has shape [3×4×4×4×4], want (N, Cin, H, W) or (Cin, H, W)", true},
		{true, []int{2, 3, 4, 4}, []int{3, 2, 3}, ConvOptions{},
			"h: conv_transpose2d: weight has shape [3×2×3], want (Cin, Cout, kh, kw)", true},
		{true, []int{2, 3, 4, 4}, []int{2, 5, 3, 3}, ConvOptions{},
			"h: conv_transpose2d: weight has shape [2×5×3×3], want (3, Cout, kh, kw) to match the input's 3 channels", true},
		{true, []int{1, 2, 3, 3}, []int{2, 1, 4, 4}, ConvOptions{StrideH: 2, StrideW: 2, OutPadH: 2},
			"h: conv_transpose2d: output padding must be smaller than the stride, got OutPadH=2, OutPadW=0 with stride 2×2", false},
		{true, []int{1, 2, 3, 3}, []int{2, 1, 4, 4}, ConvOptions{OutPadW: 1},
			"h: conv_transpose2d: output padding must be smaller than the stride, got OutPadH=0, OutPadW=1 with stride 1×1", false},
		{true, []int{1, 1, 1, 2}, []int{1, 1, 1, 3}, ConvOptions{PadH: 1, PadW: 1},
			"h: conv_transpose2d: output size -1×2 is not positive: (H−1)·stride − 2·pad + k + outpad gives (1−1)·1 − 2·1 + 1 + 0 = -1 rows and (2−1)·1 − 2·1 + 3 + 0 = 2 columns", false},
		{true, []int{1, 0, 3, 3}, []int{0, 1, 2, 2}, ConvOptions{},
			"h: conv_transpose2d: input has shape [1×0×3×3], want at least one channel, row and column", true},
		{false, []int{1, 1, 3, 3}, []int{1, 1, 0, 2}, ConvOptions{},
			"h: conv2d: weight has shape [1×1×0×2], want (Cout, Cin, kh, kw) with every dimension at least 1", true},
	}
	for _, c := range cases {
		x := autograd.Leaf("x", tensor.New[float64](c.x...), false)
		w := autograd.Leaf("w", tensor.New[float64](c.w...), false)
		var err error
		if c.transposed {
			_, err = ConvTranspose2d("h", x, w, c.opt)
		} else {
			_, err = Conv2d("h", x, w, c.opt)
		}
		if err == nil {
			t.Errorf("x %v, w %v, %+v: no error, want %q", c.x, c.w, c.opt, c.want)
			continue
		}
		if err.Error() != c.want {
			t.Errorf("error\n got  %s\n want %s", err, c.want)
		}
		var se *tensor.ShapeError
		if errors.As(err, &se) != c.shapeErr {
			t.Errorf("%s: is a tensor.ShapeError: %v, want %v", err, !c.shapeErr, c.shapeErr)
		}
	}
}

// TestConvFloat32 runs the cases in float32 and compares the output and
// both gradients with float64.
func TestConvFloat32(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 22))
	for _, c := range convCases() {
		x, w := gradcheck.Random(rng, c.x...), gradcheck.Random(rng, c.w...)
		x64, w64 := autograd.Leaf("x", x, true), autograd.Leaf("w", w, true)
		y64, err := c.apply(x64, w64)
		if err != nil {
			t.Fatal(err)
		}
		x32 := autograd.Leaf("x", tensor.Convert[float32](x), true)
		w32 := autograd.Leaf("w", tensor.Convert[float32](w), true)
		var y32 *autograd.Var[float32]
		if c.transposed {
			y32, err = ConvTranspose2d("y", x32, w32, c.opt)
		} else {
			y32, err = Conv2d("y", x32, w32, c.opt)
		}
		if err != nil {
			t.Fatal(err)
		}
		seed := gradcheck.Random(rng, y64.Value.Shape()...)
		if err := autograd.BackwardFrom(y64, seed); err != nil {
			t.Fatal(err)
		}
		if err := autograd.BackwardFrom(y32, tensor.Convert[float32](seed)); err != nil {
			t.Fatal(err)
		}
		for _, p := range []struct {
			what string
			a32  *tensor.Tensor[float32]
			a64  *tensor.Tensor[float64]
		}{{"output", y32.Value, y64.Value}, {"input gradient", x32.Grad, x64.Grad}, {"weight gradient", w32.Grad, w64.Grad}} {
			scale := 0.0
			for _, v := range p.a64.Data() {
				scale = math.Max(scale, math.Abs(v))
			}
			if d := maxAbsDiff(tensor.Convert[float64](p.a32).Data(), p.a64.Data()); d > 1e-5*scale {
				t.Errorf("%v: float32 %s differs from float64 by %g (scale %g)", c, p.what, d, scale)
			}
		}
	}
}

// dcganLayers are the four convolutions of the MNIST DCGAN at batch 64:
// the discriminator's two strided convolutions and the generator's two
// transposed convolutions.
var dcganLayers = []struct {
	name       string
	transposed bool
	x, w       []int
}{
	{"D1_conv_1to64_28to14", false, []int{64, 1, 28, 28}, []int{64, 1, 4, 4}},
	{"D2_conv_64to128_14to7", false, []int{64, 64, 14, 14}, []int{128, 64, 4, 4}},
	{"G1_deconv_128to64_7to14", true, []int{64, 128, 7, 7}, []int{128, 64, 4, 4}},
	{"G2_deconv_64to1_14to28", true, []int{64, 64, 14, 14}, []int{64, 1, 4, 4}},
}

// BenchmarkConvDCGAN times forward and backward (both gradients) of the
// DCGAN layers in float32 and reports the arithmetic rate.
func BenchmarkConvDCGAN(b *testing.B) {
	opt := ConvOptions{StrideH: 2, StrideW: 2, PadH: 1, PadW: 1}
	rng := rand.New(rand.NewPCG(1, 1))
	rnd := func(shape []int) *tensor.Tensor[float32] {
		return tensor.Convert[float32](gradcheck.Random(rng, shape...))
	}
	for _, l := range dcganLayers {
		var op autograd.Op[float32]
		if l.transposed {
			op = &ConvTranspose2dOp[float32]{Options: opt}
		} else {
			op = &Conv2dOp[float32]{Options: opt}
		}
		in := []*tensor.Tensor[float32]{rnd(l.x), rnd(l.w)}
		out, err := op.Forward(in)
		if err != nil {
			b.Fatal(err)
		}
		// multiply-adds: one per (output of the correlation) × (weight element per output channel)
		small := out
		if l.transposed {
			small = in[0]
		}
		flops := 2 * float64(small.Len()) * float64(in[1].Len()/small.Dim(1))
		gout := rnd(out.Shape())
		b.Run(l.name+"/forward", func(b *testing.B) {
			for b.Loop() {
				if _, err := op.Forward(in); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
		b.Run(l.name+"/backward", func(b *testing.B) {
			need := []bool{true, true}
			for b.Loop() {
				op.Backward(in, out, gout, need)
			}
			b.ReportMetric(2*flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}
