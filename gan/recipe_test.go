package gan

import (
	"errors"
	"math"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"

	"github.com/backprop-dev/backprop/autograd"
	"github.com/backprop-dev/backprop/gradcheck"
	"github.com/backprop-dev/backprop/nn"
	"github.com/backprop-dev/backprop/tensor"
)

// TestHingeByHand checks the hinge loss and its gradient on four logits
// worked out by hand, on both sides of the kink.
func TestHingeByHand(t *testing.T) {
	x := []float64{2, 0.5, -1, -3}
	for _, c := range []struct {
		sign     float64
		loss     float64
		gradient []float64
	}{
		// real: max(0, 1 − x) = 0, 0.5, 2, 4 → 6.5/4; d/dx = −1/4 where 1 − x > 0
		{-1, 1.625, []float64{0, -0.25, -0.25, -0.25}},
		// fake: max(0, 1 + x) = 3, 1.5, 0, 0 → 4.5/4; d/dx = +1/4 where 1 + x > 0
		{+1, 1.125, []float64{0.25, 0.25, 0, 0}},
	} {
		v := autograd.Leaf("x", tensor.MustFromSlice(append([]float64{}, x...), 4, 1), true)
		l, err := Hinge("hinge", v, c.sign)
		if err != nil {
			t.Fatal(err)
		}
		if got := l.Value.Data()[0]; got != c.loss {
			t.Errorf("sign %v: loss %v, want %v", c.sign, got, c.loss)
		}
		if err := autograd.Backward(l); err != nil {
			t.Fatal(err)
		}
		for i, g := range v.Grad.Data() {
			if g != c.gradient[i] {
				t.Errorf("sign %v: gradient %d is %v, want %v", c.sign, i, g, c.gradient[i])
			}
		}
	}
	if _, err := Hinge("hinge", autograd.Leaf("x", tensor.Scalar(1.0), false), 0.5); err == nil {
		t.Error("sign 0.5 accepted")
	}
}

// TestGradcheckRecipeOps runs the recipe's own ops through central
// differences: the hinge loss (away from its kink), spectral
// normalization with fixed u and v, and the projection's row-wise dot.
func TestGradcheckRecipeOps(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	randT := func(shape ...int) *tensor.Tensor[float64] {
		x := tensor.New[float64](shape...)
		for i := range x.Data() {
			x.Data()[i] = rng.NormFloat64()
		}
		return x
	}
	u := []float64{0.5, -0.5, 0.5, 0.5}
	v := []float64{0.6, 0, 0.8, 0, 0, 0}
	cases := []struct {
		name   string
		f      gradcheck.Func
		inputs []*tensor.Tensor[float64]
	}{
		{"hinge real", func(in []*autograd.Var[float64]) (*autograd.Var[float64], error) { return Hinge("h", in[0], -1) },
			[]*tensor.Tensor[float64]{tensor.MustFromSlice([]float64{0.3, -1.7, 2.5, 0.1, -0.4}, 5, 1)}},
		{"hinge fake", func(in []*autograd.Var[float64]) (*autograd.Var[float64], error) { return Hinge("h", in[0], 1) },
			[]*tensor.Tensor[float64]{tensor.MustFromSlice([]float64{0.3, -1.7, 2.5, 0.1, -0.4}, 5, 1)}},
		// a (4, 2, 1, 3) weight, as a convolution's: a 4×6 matrix
		{"spectral norm", func(in []*autograd.Var[float64]) (*autograd.Var[float64], error) {
			return SpectralNormalize("sn", in[0], u, v)
		}, []*tensor.Tensor[float64]{randT(4, 2, 1, 3)}},
		{"row dot", func(in []*autograd.Var[float64]) (*autograd.Var[float64], error) { return RowDot("d", in[0], in[1]) },
			[]*tensor.Tensor[float64]{randT(3, 5), randT(3, 5)}},
	}
	for _, c := range cases {
		if _, err := gradcheck.Check(c.f, c.inputs, gradcheck.Options{}, rng); err != nil {
			t.Errorf("%s: %v", c.name, err)
		}
	}
}

// TestSpectralNormMatchesPyTorch compares one training-mode forward of
// SpectralNorm around a 4×3 Linear with torch.nn.utils.spectral_norm
// (PyTorch 1.13, float64) from the same weight, u and v: the power
// iteration's new u and v, the normalized weight, and the gradient of
// Σ W_sn ⊙ R with respect to weight_orig. The values come from
// torch.nn.utils.spectral_norm(nn.Linear(3, 4, bias=False)) with
// weight_u and weight_v set, one call in train mode, (W_sn·R).sum().backward().
func TestSpectralNormMatchesPyTorch(t *testing.T) {
	w := []float32{1.0, -2.0, 0.5, 0.3, 0.7, -1.1, 2.0, 0.1, 0.4, -0.6, 1.5, 0.9}
	r := []float32{0.1, 0.2, -0.3, 0.4, -0.5, 0.6, -0.7, 0.8, 0.9, 1.0, -1.1, 1.2}
	wantU := []float64{0.678568707338618, -0.392979790510886, 0.619562732787434, -0.0354035847307105}
	wantV := []float64{0.560648234934981, -0.293672884965942, 0.774228514910211}
	wantW := []float64{0.442033128212228, -0.884066256424455, 0.221016564106114, 0.132609938463668, 0.309423189748559, -0.48623644103345,
		0.884066256424455, 0.0442033128212228, 0.176813251284891, -0.265219876927337, 0.663049692318341, 0.397829815391005}
	wantGrad := []float64{0.302146106741531, -0.046706266411049, 0.22359677695009, 0.0274307288927824, -0.142768576186438, 0.0589297269572817,
		-0.0739102039952348, 0.230262557651374, 0.723062033812262, 0.428575243312038, -0.479187072752398, 0.511855055659173}

	lin := nn.NewLinear[float32](3, 4, false, nil)
	copy(lin.Weight.Value.Data(), w)
	sn := NewSpectralNorm(lin, nil)
	copy(sn.U.Data(), []float32{0.5, -0.5, 0.5, 0.5})
	copy(sn.V.Data(), []float32{0.6, 0, 0.8})
	// x = I: the output rows are the columns of W_snᵀ, so y = W_snᵀ
	eye := tensor.MustFromSlice([]float32{1, 0, 0, 0, 1, 0, 0, 0, 1}, 3, 3)
	y, err := sn.Forward(autograd.Leaf("x", eye, false))
	if err != nil {
		t.Fatal(err)
	}
	const tol = 2e-6 // float32 against PyTorch's float64
	check := func(what string, got []float32, want []float64) {
		t.Helper()
		for i := range want {
			if math.Abs(float64(got[i])-want[i]) > tol {
				t.Errorf("%s[%d] = %v, PyTorch %v", what, i, got[i], want[i])
			}
		}
	}
	check("weight_u", sn.U.Data(), wantU)
	check("weight_v", sn.V.Data(), wantV)
	wsnT := y.Value.Data() // (3, 4): y[j][i] = W_sn[i][j]
	got := make([]float32, 12)
	for i := range 4 {
		for j := range 3 {
			got[i*3+j] = wsnT[j*4+i]
		}
	}
	check("W_sn", got, wantW)
	// Σ W_sn ⊙ R = Σ y ⊙ Rᵀ
	rT := make([]float32, 12)
	for i := range 4 {
		for j := range 3 {
			rT[j*4+i] = r[i*3+j]
		}
	}
	if err := autograd.BackwardFrom(y, tensor.MustFromSlice(rT, 3, 4)); err != nil {
		t.Fatal(err)
	}
	check("∂/∂weight_orig", lin.Weight.Grad.Data(), wantGrad)
	if lin.Weight.Value.Data()[0] != 1 {
		t.Error("the layer's weight was not restored after the forward pass")
	}
	names := []string{}
	for _, e := range sn.StateDict() {
		names = append(names, e.Name)
	}
	if got := strings.Join(names, " "); got != "weight_orig weight_u weight_v" {
		t.Errorf("state dict %q, want PyTorch's names weight_orig weight_u weight_v", got)
	}
	// power iteration converges to the largest singular value, 2.953629382062097 (numpy.linalg.svd)
	for range 50 {
		if err := PowerIteration(lin.Weight.Value, sn.U.Data(), sn.V.Data()); err != nil {
			t.Fatal(err)
		}
	}
	u64, v64 := make([]float64, 4), make([]float64, 3)
	for i, x := range sn.U.Data() {
		u64[i] = float64(x)
	}
	for i, x := range sn.V.Data() {
		v64[i] = float64(x)
	}
	op := &SpectralNormOp[float32]{U: u64, V: v64}
	if _, err := op.Forward([]*tensor.Tensor[float32]{lin.Weight.Value}); err != nil {
		t.Fatal(err)
	}
	if math.Abs(op.Sigma()-2.953629382062097) > 1e-5 {
		t.Errorf("σ after 50 iterations %v, want 2.953629382062097", op.Sigma())
	}
}

// TestUpdateEMA checks the moving average against its closed form: from
// e₀, k updates towards a constant θ give θ + decayᵏ(e₀ − θ); buffers are
// copied.
func TestUpdateEMA(t *testing.T) {
	build := func() *nn.Sequential[float32] {
		return nn.NewSequential[float32](nn.NewLinear[float32](2, 1, true, nil), nn.NewBatchNorm1d[float32](1))
	}
	g, ema := build(), build()
	copy(g.StateDict()[0].Tensor.Data(), []float32{1, -2}) // 0.weight
	g.StateDict()[1].Tensor.Data()[0] = 4                  // 0.bias
	copy(ema.StateDict()[0].Tensor.Data(), []float32{0, 0})
	ema.StateDict()[1].Tensor.Data()[0] = 0
	for _, e := range g.StateDict() {
		if e.Name == "1.running_mean" {
			e.Tensor.Data()[0] = 0.75
		}
	}
	const decay, k = 0.9, 3
	for range k {
		if err := UpdateEMA(ema, g, decay); err != nil {
			t.Fatal(err)
		}
	}
	f := math.Pow(decay, k) // 0.729
	want := map[string]float64{"0.weight": 1 - f, "0.bias": 4 * (1 - f), "1.running_mean": 0.75}
	for _, e := range ema.StateDict() {
		w, ok := want[e.Name]
		if !ok {
			continue
		}
		if got := float64(e.Tensor.Data()[0]); math.Abs(got-w) > 1e-6 {
			t.Errorf("%s = %v, want %v", e.Name, got, w)
		}
	}
	if got := float64(ema.StateDict()[0].Tensor.Data()[1]); math.Abs(got-(-2)*(1-f)) > 1e-6 {
		t.Errorf("0.weight[1] = %v, want %v", got, -2*(1-f))
	}
	if err := UpdateEMA(ema, NewGenerator(nil), decay); err == nil {
		t.Error("models of different layouts accepted")
	}
	// the warm-up: 1/10 at step 0, 0.5 at step 8, 0.999 from step 8990 on
	for _, c := range []struct {
		step int64
		want float64
	}{{0, 0.1}, {8, 0.5}, {8989, 8990.0 / 8999}, {8990, 0.999}, {100000, 0.999}} {
		if got := EMADecay(0.999, c.step); math.Abs(got-c.want) > 1e-15 {
			t.Errorf("EMADecay(0.999, %d) = %v, want %v", c.step, got, c.want)
		}
	}
}

// TestRecipeCheck checks the recipe's validation, R1's refusal first.
func TestRecipeCheck(t *testing.T) {
	if err := (Recipe{R1: 10}).Check(); !errors.Is(err, ErrR1Unsupported) {
		t.Errorf("--r1 10: %v, want ErrR1Unsupported", err)
	}
	for _, c := range []struct {
		r    Recipe
		want string
	}{
		{Recipe{Loss: "wgan"}, `--loss "wgan"`},
		{Recipe{EMA: 1}, "--ema 1"},
		{Recipe{LRD: -1}, "--lr-d -1"},
		{Recipe{LabelSmoothing: 1.5}, "--label-smoothing 1.5"},
		{Recipe{Loss: LossHinge, LabelSmoothing: 0.9}, "hinge loss has none"},
	} {
		if err := c.r.Check(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want an error naming %s", c.r, err, c.want)
		}
	}
	if !(Recipe{LRG: LearningRate, Loss: LossBCE}).IsReference() || (Recipe{Loss: LossNS}).IsReference() {
		t.Error("IsReference")
	}
}

// TestLabelSmoothingTarget checks D's loss on real images with target 0.9
// against BCE by hand: −(0.9 log σ(2) + 0.1 log σ(−2)).
func TestLabelSmoothingTarget(t *testing.T) {
	tr := &Trainer{Config: Config{Recipe: Recipe{LabelSmoothing: 0.9}}}
	l, err := tr.dLoss("d", autograd.Leaf("logits", tensor.MustFromSlice([]float32{2}, 1, 1), false), true)
	if err != nil {
		t.Fatal(err)
	}
	sig := func(x float64) float64 { return 1 / (1 + math.Exp(-x)) }
	want := -(0.9*math.Log(sig(2)) + 0.1*math.Log(sig(-2)))
	if got := float64(l.Value.Data()[0]); math.Abs(got-want) > 1e-6 {
		t.Errorf("smoothed loss %v, want %v", got, want)
	}
}

// labeledImages is n random images in [−1, 1] with labels i mod 10.
func labeledImages(n int) (*tensor.Tensor[float32], []uint8) {
	rng := rand.New(rand.NewPCG(3, 4))
	x := tensor.New[float32](n, 1, ImageSize, ImageSize)
	for i := range x.Data() {
		x.Data()[i] = float32(2*rng.Float64() - 1)
	}
	labels := make([]uint8, n)
	for i := range labels {
		labels[i] = uint8(i % Classes)
	}
	return x, labels
}

// TestRecipeRunResumes trains every ingredient at once (hinge, EMA, two
// learning rates, spectral norm, conditional) for a few steps on random
// images, and checks that the checkpoint records the recipe (format 3),
// gives the EMA generator to sampling, and resumes bit for bit; that a
// conditional generator refuses to sample without classes and draws
// different images for different classes from the same noise.
func TestRecipeRunResumes(t *testing.T) {
	images, labels := labeledImages(64)
	cfg := Config{Data: "synthetic", Seed: 5, Batch: 16, Recipe: Recipe{Loss: LossHinge, EMA: 0.9, LRD: 4e-4, LRG: 1e-4, SpectralNorm: true, Conditional: true}}
	full, err := NewLabeledTrainer(cfg, images, labels)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewTrainer(cfg, images); err == nil {
		t.Error("a conditional run without labels started")
	}
	for range 6 {
		if _, err := full.TrainStep(); err != nil {
			t.Fatal(err)
		}
	}
	part, err := NewLabeledTrainer(cfg, images, labels)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := part.TrainStep(); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(t.TempDir(), "ck.safetensors")
	if err := part.Save(path); err != nil {
		t.Fatal(err)
	}
	ck, err := OpenCheckpoint(path)
	if err != nil {
		t.Fatal(err)
	}
	if ck.Format != 3 || ck.Config.Recipe != cfg.Recipe || !ck.Conditional() {
		t.Fatalf("checkpoint format %d, recipe %+v, want 3 and %+v", ck.Format, ck.Config.Recipe, cfg.Recipe)
	}
	g, err := ck.Generator()
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range g.StateDict() {
		if !sameValues(e.Tensor, part.EMA.StateDict()[i].Tensor) {
			t.Fatalf("the checkpoint's generator is not the EMA: %s differs", e.Name)
		}
	}
	if _, err := ck.Resume(images); err == nil {
		t.Error("a conditional run resumed without labels")
	}
	resumed, err := ck.ResumeLabeled(images, labels)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := resumed.TrainStep(); err != nil {
			t.Fatal(err)
		}
	}
	for _, m := range []struct {
		name string
		a, b *nn.Sequential[float32]
	}{{"G", full.G, resumed.G}, {"D", full.D, resumed.D}, {"EMA", full.EMA, resumed.EMA}} {
		for i, e := range m.a.StateDict() {
			if !sameValues(e.Tensor, m.b.StateDict()[i].Tensor) {
				t.Errorf("%s.%s differs between the resumed and the uninterrupted run", m.name, e.Name)
			}
		}
	}

	z := Noise(rand.New(rand.NewPCG(1, 1)), 2)
	if _, err := Generate(g, z); err == nil {
		t.Error("a conditional generator sampled without classes")
	}
	if _, err := NewSampler(g, 2, 1); err == nil {
		t.Error("NewSampler accepted a conditional generator")
	}
	same := tensor.MustFromSlice(append(append([]float32{}, z.Data()[:ZDim]...), z.Data()[:ZDim]...), 2, ZDim)
	imgs, err := GenerateLabeled(g, same, []int{3, 8})
	if err != nil {
		t.Fatal(err)
	}
	per := ImageSize * ImageSize
	if sameValues(tensor.MustFromSlice(imgs.Data()[:per], per), tensor.MustFromSlice(imgs.Data()[per:], per)) {
		t.Error("classes 3 and 8 gave the same image from the same noise")
	}
	if _, err := GenerateLabeled(NewGenerator(nil), z, []int{1, 2}); err == nil {
		t.Error("an unconditional generator took classes")
	}
}

// sameValues reports whether a and b hold the same shape and values, bit
// for bit.
func sameValues(a, b *tensor.Tensor[float32]) bool {
	if !tensor.SameShape(a.Shape(), b.Shape()) {
		return false
	}
	for i, v := range a.Data() {
		if math.Float32bits(v) != math.Float32bits(b.Data()[i]) {
			return false
		}
	}
	return true
}
