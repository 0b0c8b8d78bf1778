package ops

import (
	"fmt"
	"math"
	"runtime"
	"strings"
	"testing"

	"github.com/backprop-dev/backprop/autograd"
	"github.com/backprop-dev/backprop/explain"
	"github.com/backprop-dev/backprop/expr"
	"github.com/backprop-dev/backprop/gradcheck"
	"github.com/backprop-dev/backprop/tensor"
)

// bnShapes are random BatchNorm1d and BatchNorm2d input shapes with a batch
// of at least 2 and several channels.
func bnShapes(seed uint64) [][]int {
	r := rng(seed)
	var shapes [][]int
	for range 3 {
		n, c := 2+r.IntN(3), 2+r.IntN(3)
		shapes = append(shapes,
			[]int{n, c},
			[]int{n, c, 1 + r.IntN(4)},
			[]int{n, c, 1 + r.IntN(3), 1 + r.IntN(3)})
	}
	return shapes
}

// positive returns a tensor of the shape with entries in [lo, lo+1).
func positive(seed uint64, lo float64, shape ...int) *tensor.Tensor[float64] {
	r := rng(seed)
	t := tensor.New[float64](shape...)
	for i := range t.Data() {
		t.Data()[i] = lo + r.Float64()
	}
	return t
}

func TestBatchNormTrainingGrad(t *testing.T) {
	r := rng(11)
	for _, s := range bnShapes(12) {
		t.Run(fmt.Sprint(s), func(t *testing.T) {
			f := func(in []*V) (*V, error) {
				return BatchNorm("y", in[0], in[1], in[2], BatchNormOptions[float64]{Training: true, Eps: 1e-5})
			}
			x := gradcheck.Random(r, s...)
			// shift and scale channels so the statistics are not trivial
			for i := range x.Data() {
				x.Data()[i] = 3*x.Data()[i] + 0.5
			}
			run(t, f, r, nil, x, gradcheck.Random(r, s[1]), gradcheck.Random(r, s[1]))
		})
	}
}

func TestBatchNormEvalGrad(t *testing.T) {
	r := rng(13)
	for i, s := range bnShapes(14) {
		t.Run(fmt.Sprint(s), func(t *testing.T) {
			opt := BatchNormOptions[float64]{Eps: 1e-3, RunningMean: gradcheck.Random(r, s[1]), RunningVar: positive(uint64(i), 0.2, s[1])}
			f := func(in []*V) (*V, error) { return BatchNorm("y", in[0], in[1], in[2], opt) }
			run(t, f, r, nil, gradcheck.Random(r, s...), gradcheck.Random(r, s[1]), gradcheck.Random(r, s[1]))
		})
	}
}

// TestBatchNormForwardDefinition compares the forward pass and the exposed
// statistics with a direct evaluation of the definition.
func TestBatchNormForwardDefinition(t *testing.T) {
	r := rng(15)
	const eps = 1e-5
	n, c, h, w := 3, 2, 2, 3
	x := gradcheck.Random(r, n, c, h, w)
	gamma, beta := gradcheck.Random(r, c), gradcheck.Random(r, c)
	y, err := BatchNorm("y", autograd.Leaf("x", x, true), autograd.Leaf("g", gamma, true), autograd.Leaf("b", beta, true),
		BatchNormOptions[float64]{Training: true, Eps: eps})
	if err != nil {
		t.Fatal(err)
	}
	op := y.Op.(*BatchNormOp[float64])
	if op.Count() != n*h*w {
		t.Fatalf("Count = %d, want %d", op.Count(), n*h*w)
	}
	for ch := range c {
		var vals []float64
		for b := range n {
			for i := range h {
				for j := range w {
					vals = append(vals, x.At(b, ch, i, j))
				}
			}
		}
		mu := 0.0
		for _, v := range vals {
			mu += v
		}
		mu /= float64(len(vals))
		ss := 0.0
		for _, v := range vals {
			ss += (v - mu) * (v - mu)
		}
		biased, unbiased := ss/float64(len(vals)), ss/float64(len(vals)-1)
		if math.Abs(op.Mean()[ch]-mu) > 1e-14 || math.Abs(op.Variance()[ch]-biased) > 1e-14 || math.Abs(op.UnbiasedVariance()[ch]-unbiased) > 1e-14 {
			t.Fatalf("channel %d: stats %g %g %g, want %g %g %g", ch, op.Mean()[ch], op.Variance()[ch], op.UnbiasedVariance()[ch], mu, biased, unbiased)
		}
		for b := range n {
			for i := range h {
				for j := range w {
					want := (x.At(b, ch, i, j)-mu)/math.Sqrt(biased+eps)*gamma.At(ch) + beta.At(ch)
					if got := y.Value.At(b, ch, i, j); math.Abs(got-want) > 1e-13 {
						t.Fatalf("y[%d,%d,%d,%d] = %g, want %g", b, ch, i, j, got, want)
					}
				}
			}
		}
	}
}

// TestBatchNormFloat32 checks that float32 matches float64 to float32
// precision, statistics being accumulated in float64.
func TestBatchNormFloat32(t *testing.T) {
	r := rng(16)
	x64 := gradcheck.Random(r, 4, 3, 5, 5)
	g64, b64 := gradcheck.Random(r, 3), gradcheck.Random(r, 3)
	up64 := gradcheck.Random(r, 4, 3, 5, 5)
	run64 := func() (*V, []*V) {
		in := []*V{autograd.Leaf("x", x64, true), autograd.Leaf("g", g64, true), autograd.Leaf("b", b64, true)}
		y, err := BatchNorm("y", in[0], in[1], in[2], BatchNormOptions[float64]{Training: true, Eps: 1e-5})
		if err != nil {
			t.Fatal(err)
		}
		if err := autograd.BackwardFrom(y, up64); err != nil {
			t.Fatal(err)
		}
		return y, in
	}
	y64, in64 := run64()
	in32 := []*autograd.Var[float32]{
		autograd.Leaf("x", tensor.Convert[float32](x64), true),
		autograd.Leaf("g", tensor.Convert[float32](g64), true),
		autograd.Leaf("b", tensor.Convert[float32](b64), true),
	}
	y32, err := BatchNorm("y", in32[0], in32[1], in32[2], BatchNormOptions[float32]{Training: true, Eps: 1e-5})
	if err != nil {
		t.Fatal(err)
	}
	if err := autograd.BackwardFrom(y32, tensor.Convert[float32](up64)); err != nil {
		t.Fatal(err)
	}
	cmp := func(what string, a *tensor.Tensor[float64], b *tensor.Tensor[float32]) {
		for i, v := range a.Data() {
			if math.Abs(v-float64(b.Data()[i])) > 2e-5*math.Max(1, math.Abs(v)) {
				t.Fatalf("%s[%d]: float64 %g, float32 %g", what, i, v, b.Data()[i])
			}
		}
	}
	cmp("y", y64.Value, y32.Value)
	for i, name := range []string{"dx", "dγ", "dβ"} {
		cmp(name, in64[i].Grad, in32[i].Grad)
	}
}

func TestBatchNormErrors(t *testing.T) {
	leaf := func(shape ...int) *V { return autograd.Leaf("t", tensor.New[float64](shape...), true) }
	cases := []struct {
		x, w, b []int
		opt     BatchNormOptions[float64]
		want    string
	}{
		{[]int{5}, []int{5}, []int{5}, BatchNormOptions[float64]{Training: true}, "input has shape [5]"},
		{[]int{4, 3}, []int{4}, []int{3}, BatchNormOptions[float64]{Training: true}, "weight has shape [4], want [3]"},
		{[]int{4, 3, 2}, []int{3}, []int{2}, BatchNormOptions[float64]{Training: true}, "bias has shape [2], want [3]"},
		{[]int{1, 3}, []int{3}, []int{3}, BatchNormOptions[float64]{Training: true}, "more than one value per channel"},
		{[]int{2, 3}, []int{3}, []int{3}, BatchNormOptions[float64]{}, "needs the running mean"},
		{[]int{2, 3}, []int{3}, []int{3}, BatchNormOptions[float64]{RunningMean: tensor.New[float64](3), RunningVar: tensor.New[float64](2)}, "running variance has shape [2]"},
		{[]int{2, 3}, []int{3}, []int{3}, BatchNormOptions[float64]{Training: true, Eps: -1}, "eps must not be negative"},
	}
	for _, c := range cases {
		_, err := BatchNorm("bn", leaf(c.x...), leaf(c.w...), leaf(c.b...), c.opt)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), "bn: batch_norm: ") {
			t.Errorf("x %v w %v b %v: got %v, want an error containing %q", c.x, c.w, c.b, err, c.want)
		}
	}
	// a single sample is fine in evaluation mode
	opt := BatchNormOptions[float64]{RunningMean: tensor.New[float64](3), RunningVar: positive(1, 1, 3)}
	if _, err := BatchNorm("bn", leaf(1, 3), leaf(3), leaf(3), opt); err != nil {
		t.Fatal(err)
	}
}

// TestBatchNormExplainText checks that the element formula a trace prints
// shows the batch statistics as numbers under a square root.
func TestBatchNormExplainText(t *testing.T) {
	x := autograd.Leaf("x", tensor.MustFromSlice([]float64{1, 2, 3, 5}, 2, 2), true)
	g := autograd.Leaf("γ", tensor.MustFromSlice([]float64{1, 0.5}, 2), true)
	b := autograd.Leaf("β", tensor.MustFromSlice([]float64{0, 0.1}, 2), true)
	y, err := BatchNorm("y", x, g, b, BatchNormOptions[float64]{Training: true, Eps: 1e-5})
	if err != nil {
		t.Fatal(err)
	}
	ex := y.Op.(explain.Explainer)
	ref := func(i, m int) expr.Expr {
		return expr.Ref{Name: []string{"x", "γ", "β"}[i], Index: tensor.Index(y.Inputs[i].Value.Shape(), m)}
	}
	got := expr.String(ex.ForwardElem(1, ref))
	if want := "(x[1,2] - 3.5)/√(2.25 + 1e-05)·γ[2] + β[2]"; got != want {
		t.Errorf("ForwardElem = %q, want %q", got, want)
	}
	names := []expr.Expr{expr.Ref{Name: "x"}, expr.Ref{Name: "γ"}, expr.Ref{Name: "β"}}
	if got, want := expr.String(ex.Formula(names)), "(x - μ_B)/√(σ²_B + ε)·γ + β"; got != want {
		t.Errorf("Formula = %q, want %q", got, want)
	}
	if got, want := expr.String(ex.BackwardFormula(0, names, expr.Ref{Name: "y"}, expr.Ref{Name: "g"})), "γ/√(σ²_B + ε)·(g - Σg/2 - x̂ ⊙ Σ(g ⊙ x̂)/2)"; got != want {
		t.Errorf("BackwardFormula = %q, want %q", got, want)
	}
}

// refBatchNorm is batch normalisation of x viewed as (n, c, inner) with
// upstream gradient up, written as scalar loops: the arithmetic of
// BatchNormOp (float64, operation by operation, products rounded
// explicitly) and its order of the sums: per channel, the rows' sums in the
// order of the samples, each row (inner > 1) summed by package vec's fixed
// order (eight lanes i mod 8, then ((s0+s4)+(s2+s6)) + ((s1+s5)+(s3+s7))),
// or value by value (inner = 1).
func refBatchNorm[T tensor.Float](x, w, b, up []T, n, c, inner int, training bool, eps float64, rm, rv []T) (y, dx, dw, db []T) {
	rowSum := func(k int, term func(i int) float64) float64 {
		if inner == 1 {
			return term(0)
		}
		var s [8]float64
		for i := range k {
			s[i%8] += term(i)
		}
		return ((s[0] + s[4]) + (s[2] + s[6])) + ((s[1] + s[5]) + (s[3] + s[7]))
	}
	at := func(d []T, s, ch, i int) float64 { return float64(d[(s*c+ch)*inner+i]) }
	m := float64(n * inner)
	y, dx, dw, db = make([]T, len(x)), make([]T, len(x)), make([]T, c), make([]T, c)
	for ch := range c {
		var mu, v float64
		if training {
			for s := range n {
				mu += rowSum(inner, func(i int) float64 { return at(x, s, ch, i) })
			}
			mu /= m
			for s := range n {
				v += rowSum(inner, func(i int) float64 { d := at(x, s, ch, i) - mu; return float64(d * d) })
			}
			v /= m
		} else {
			mu, v = float64(rm[ch]), float64(rv[ch])
		}
		is := 1 / math.Sqrt(v+eps)
		var sg, sgx float64
		for s := range n {
			sg += rowSum(inner, func(i int) float64 { return at(up, s, ch, i) })
			sgx += rowSum(inner, func(i int) float64 {
				return float64(float64(at(up, s, ch, i)*(at(x, s, ch, i)-mu)) * is)
			})
		}
		dw[ch], db[ch] = T(sgx), T(sg)
		scale, mg, mgx := float64(float64(w[ch])*is), sg/m, sgx/m
		for s := range n {
			for i := range inner {
				k := (s*c+ch)*inner + i
				xh := float64((float64(x[k]) - mu) * is)
				y[k] = T(float64(xh*float64(w[ch])) + float64(b[ch]))
				if training {
					dx[k] = T(scale * (float64(up[k]) - mg - float64(xh*mgx)))
				} else {
					dx[k] = T(scale * float64(up[k]))
				}
			}
		}
	}
	return y, dx, dw, db
}

// TestBatchNormExact checks BatchNormOp against refBatchNorm bit for bit,
// float32 and float64, BatchNorm1d and BatchNorm2d shapes (the DCGAN's
// among them), training and evaluation mode, on one CPU and on two (the
// channels split across goroutines): the kernels of package vec compute
// exactly the scalar arithmetic, and the sums do not depend on the split.
func TestBatchNormExact(t *testing.T) {
	shapes := [][]int{{64, 6272}, {5, 17}, {16, 512, 2}, {16, 64, 14, 14}, {8, 128, 7, 7}, {3, 5, 7, 7}, {4, 6, 3, 5}, {2, 3, 1}}
	for _, procs := range []int{1, 2} {
		old := runtime.GOMAXPROCS(procs)
		for i, s := range shapes {
			for _, training := range []bool{true, false} {
				name := fmt.Sprintf("procs=%d/%v/training=%v", procs, s, training)
				t.Run(name+"/float32", func(t *testing.T) { batchNormExact[float32](t, s, training, uint64(i)) })
				t.Run(name+"/float64", func(t *testing.T) { batchNormExact[float64](t, s, training, uint64(i)) })
			}
		}
		runtime.GOMAXPROCS(old)
	}
}

func batchNormExact[T tensor.Float](t *testing.T, shape []int, training bool, seed uint64) {
	r := rng(seed)
	rand := func(n int, mean, std float64) *tensor.Tensor[T] {
		d := tensor.New[T](n)
		for i := range d.Data() {
			d.Data()[i] = T(mean + std*r.NormFloat64())
		}
		return d
	}
	c, total := shape[1], tensor.NumElements(shape)
	x, up := tensor.MustFromSlice(rand(total, 0.3, 2).Data(), shape...), tensor.MustFromSlice(rand(total, 0, 1).Data(), shape...)
	w, b, rm, rv := rand(c, 1, 0.2), rand(c, 0, 0.1), rand(c, 0, 0.3), rand(c, 0, 0)
	for i := range rv.Data() {
		rv.Data()[i] = T(0.5 + r.Float64())
	}
	in := []*autograd.Var[T]{autograd.Leaf("x", x, true), autograd.Leaf("w", w, true), autograd.Leaf("b", b, true)}
	y, err := BatchNorm("y", in[0], in[1], in[2], BatchNormOptions[T]{Training: training, Eps: 1e-5, RunningMean: rm, RunningVar: rv})
	if err != nil {
		t.Fatal(err)
	}
	if err := autograd.BackwardFrom(y, up); err != nil {
		t.Fatal(err)
	}
	wy, wdx, wdw, wdb := refBatchNorm(x.Data(), w.Data(), b.Data(), up.Data(), shape[0], c, total/shape[0]/c, training, 1e-5, rm.Data(), rv.Data())
	for _, cmp := range []struct {
		name      string
		got, want []T
	}{{"y", y.Value.Data(), wy}, {"dx", in[0].Grad.Data(), wdx}, {"dγ", in[1].Grad.Data(), wdw}, {"dβ", in[2].Grad.Data(), wdb}} {
		for i, v := range cmp.want {
			if g := cmp.got[i]; g != v {
				t.Fatalf("%s[%d] = %v, want %v", cmp.name, i, g, v)
			}
		}
	}
}
