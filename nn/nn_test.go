package nn

import (
	"errors"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/backprop-dev/backprop/autograd"
	"github.com/backprop-dev/backprop/tensor"
)

func rng(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 99)) }

// dcganD is a small DCGAN-style discriminator used by several tests.
func dcganD[T tensor.Float](r *rand.Rand) *Sequential[T] {
	return NewSequential[T](
		NewConv2d[T](1, 4, 4, 2, 1, false, r),
		NewLeakyReLU[T](0.2),
		NewConv2d[T](4, 8, 4, 2, 1, false, r),
		NewBatchNorm2d[T](8),
		NewLeakyReLU[T](0.2),
		NewFlatten[T](),
		NewLinear[T](8*2*2, 1, true, r),
	)
}

func TestStateDictNames(t *testing.T) {
	m := NewNamedSequential(
		Child[float32]{"encoder", NewLinear[float32](4, 3, true, nil)},
		Child[float32]{"decoder", NewSequential[float32](NewBatchNorm1d[float32](3), NewReLU[float32](), NewLinear[float32](3, 4, false, nil))},
	)
	var names []string
	var ints []bool
	for _, e := range m.StateDict() {
		names = append(names, e.Name)
		ints = append(ints, e.Int)
	}
	want := "encoder.weight encoder.bias decoder.0.weight decoder.0.bias decoder.0.running_mean decoder.0.running_var decoder.0.num_batches_tracked decoder.2.weight"
	if got := strings.Join(names, " "); got != want {
		t.Fatalf("state dict names\n%s\nwant\n%s", got, want)
	}
	for i, n := range names {
		if ints[i] != strings.HasSuffix(n, "num_batches_tracked") {
			t.Errorf("%s: Int = %v", n, ints[i])
		}
	}
	var pnames []string
	for _, p := range m.Parameters() {
		pnames = append(pnames, p.Name)
	}
	if got := strings.Join(pnames, " "); got != "encoder.weight encoder.bias decoder.0.weight decoder.0.bias decoder.2.weight" {
		t.Fatalf("parameter names %s", got)
	}
	var mnames []string
	for _, c := range NamedModules[float32](m) {
		mnames = append(mnames, "'"+c.Name+"'")
	}
	if got := strings.Join(mnames, " "); got != "'' 'encoder' 'decoder' 'decoder.0' 'decoder.1' 'decoder.2'" {
		t.Fatalf("module names %s", got)
	}
	d := NewModuleDict(Child[float32]{"G", NewLinear[float32](2, 2, false, nil)}, Child[float32]{"D", NewLinear[float32](2, 1, false, nil)})
	if sd := d.StateDict(); len(sd) != 2 || sd[0].Name != "G.weight" || sd[1].Name != "D.weight" {
		t.Fatalf("ModuleDict state dict %v", sd)
	}
	if d.Get("D") == nil || d.Get("X") != nil {
		t.Fatal("ModuleDict.Get")
	}
	if _, err := d.Forward(nil); err == nil {
		t.Fatal("ModuleDict.Forward must fail")
	}
}

func TestLoadStateDictErrors(t *testing.T) {
	m := dcganD[float64](rng(1))
	before := CloneStateDict(m.StateDict())
	good := CloneStateDict(before)
	for _, e := range good {
		for i := range e.Tensor.Data() {
			if !e.Int {
				e.Tensor.Data()[i] += 1
			}
		}
	}
	unchanged := func() {
		t.Helper()
		for i, e := range m.StateDict() {
			for j, v := range e.Tensor.Data() {
				if v != before[i].Tensor.Data()[j] {
					t.Fatalf("a failed load changed %s", e.Name)
				}
			}
		}
	}
	// missing and unexpected keys: a renamed layer
	renamed := CloneStateDict(good)
	renamed[0].Name = "0.kernel"
	err := LoadStateDict[float64](m, renamed)
	var le *LoadError
	if !errors.As(err, &le) || len(le.Missing) != 1 || le.Missing[0] != "0.weight" || len(le.Unexpected) != 1 || le.Unexpected[0] != "0.kernel" {
		t.Fatalf("got %v", err)
	}
	if !strings.Contains(err.Error(), `missing key(s) in state dict: "0.weight"`) || !strings.Contains(err.Error(), `unexpected key(s) in state dict: "0.kernel"`) {
		t.Fatalf("message: %v", err)
	}
	unchanged()
	// a checkpoint of another architecture: wider first layer
	other := dcganD[float64](rng(2))
	other.list[0].Module = NewConv2d[float64](1, 5, 4, 2, 1, false, rng(3))
	err = LoadStateDict[float64](m, other.StateDict())
	want := `nn: cannot load state dict: size mismatch for "0.weight": the checkpoint has shape [5×1×4×4], the model expects [4×1×4×4] (is it a checkpoint of another architecture?)`
	if err == nil || err.Error() != want {
		t.Fatalf("got  %v\nwant %s", err, want)
	}
	unchanged()
	// missing entries only, e.g. a checkpoint without running statistics
	err = LoadStateDict[float64](m, good[:3])
	if err == nil || !strings.Contains(err.Error(), `"3.running_mean"`) || !strings.Contains(err.Error(), `"6.bias"`) {
		t.Fatalf("got %v", err)
	}
	// duplicates and a fractional batch count
	dup := append(CloneStateDict(good), good[0])
	for _, e := range dup {
		if e.Int {
			e.Tensor.Data()[0] = 2.5
		}
	}
	err = LoadStateDict[float64](m, dup)
	if !errors.As(err, &le) || len(le.Duplicate) != 1 || len(le.NotInteger) != 1 || le.NotInteger[0] != "3.num_batches_tracked" {
		t.Fatalf("got %v", err)
	}
	unchanged()
	// and a good one loads, by copy
	if err := LoadStateDict[float64](m, good); err != nil {
		t.Fatal(err)
	}
	for i, e := range m.StateDict() {
		if e.Tensor == good[i].Tensor || e.Tensor.Data()[0] != good[i].Tensor.Data()[0] {
			t.Fatalf("%s not copied", e.Name)
		}
	}
}

func TestDefaultInit(t *testing.T) {
	// bounds: ±1/√fan_in for weights and biases; ConvTranspose2d's fan-in
	// is taken from its weight's dimension 1 (out channels), as PyTorch does
	cases := []struct {
		m     Module[float64]
		fanIn int
	}{
		{NewLinear[float64](50, 40, true, rng(1)), 50},
		{NewConv2d[float64](3, 16, 5, 1, 2, true, rng(2)), 3 * 25},
		{NewConvTranspose2d[float64](16, 3, 4, 2, 1, 0, true, rng(3)), 3 * 16},
	}
	for _, c := range cases {
		bound := 1 / math.Sqrt(float64(c.fanIn))
		for _, p := range c.m.Parameters() {
			if got := FanIn(c.m.Parameters()[0].Var.Value.Shape()); got != c.fanIn {
				t.Fatalf("FanIn = %d, want %d", got, c.fanIn)
			}
			maxAbs, sq := 0.0, 0.0
			for _, v := range p.Var.Value.Data() {
				maxAbs = math.Max(maxAbs, math.Abs(v))
				sq += v * v
			}
			if maxAbs > bound || p.Var.Value.Len() > 20 && maxAbs < 0.8*bound {
				t.Errorf("%s: max |value| %g, bound %g", p.Name, maxAbs, bound)
			}
			// uniform on ±b has variance b²/3
			if n := float64(p.Var.Value.Len()); n > 1000 && math.Abs(sq/n-bound*bound/3) > 0.1*bound*bound/3 {
				t.Errorf("%s: variance %g, want %g", p.Name, sq/n, bound*bound/3)
			}
		}
	}
	// the same seed gives the same model, another seed another one
	a, b, c := dcganD[float32](rng(7)), dcganD[float32](rng(7)), dcganD[float32](rng(8))
	sa, sb, sc := a.StateDict(), b.StateDict(), c.StateDict()
	for i := range sa {
		for j, v := range sa[i].Tensor.Data() {
			if v != sb[i].Tensor.Data()[j] {
				t.Fatalf("%s differs between runs with one seed", sa[i].Name)
			}
		}
	}
	if sa[0].Tensor.Data()[0] == sc[0].Tensor.Data()[0] {
		t.Fatal("different seeds gave the same weight")
	}
	// ResetParameters redraws in place and restores BatchNorm's defaults
	bn := a.At(3).(*BatchNorm[float32])
	bn.Weight.Value.Fill(3)
	bn.RunningVar.Fill(7)
	bn.NumBatchesTracked.Fill(4)
	ResetParameters[float32](a, rng(7))
	for i, e := range a.StateDict() {
		for j, v := range e.Tensor.Data() {
			if v != sb[i].Tensor.Data()[j] {
				t.Fatalf("ResetParameters with the construction seed: %s differs", e.Name)
			}
		}
	}
}

func TestDCGANInit(t *testing.T) {
	m := NewSequential[float64](
		NewConvTranspose2d[float64](64, 32, 4, 2, 1, 0, false, rng(1)),
		NewBatchNorm2d[float64](2000),
		NewLinear[float64](100, 100, true, rng(2)),
	)
	biasBefore := m.At(2).(*Linear[float64]).Bias.Value.Clone()
	DCGANInit[float64](m, rng(5))
	stats := func(t *tensor.Tensor[float64]) (mean, std float64) {
		for _, v := range t.Data() {
			mean += v
		}
		mean /= float64(t.Len())
		for _, v := range t.Data() {
			std += (v - mean) * (v - mean)
		}
		return mean, math.Sqrt(std / float64(t.Len()))
	}
	for _, c := range []struct {
		name      string
		t         *tensor.Tensor[float64]
		mean, std float64
	}{
		{"conv_transpose weight", m.At(0).(*ConvTranspose2d[float64]).Weight.Value, 0, 0.02},
		{"batchnorm weight", m.At(1).(*BatchNorm[float64]).Weight.Value, 1, 0.02},
		{"linear weight", m.At(2).(*Linear[float64]).Weight.Value, 0, 0.02},
	} {
		mean, std := stats(c.t)
		if math.Abs(mean-c.mean) > 0.002 || math.Abs(std-c.std) > 0.002 {
			t.Errorf("%s: mean %g std %g, want %g and %g", c.name, mean, std, c.mean, c.std)
		}
	}
	for _, v := range m.At(1).(*BatchNorm[float64]).Bias.Value.Data() {
		if v != 0 {
			t.Fatal("DCGANInit must zero BatchNorm's bias")
		}
	}
	for i, v := range m.At(2).(*Linear[float64]).Bias.Value.Data() {
		if v != biasBefore.Data()[i] {
			t.Fatal("DCGANInit changed a linear bias")
		}
	}
}

func TestTrainEvalAndDropout(t *testing.T) {
	drop := NewDropout[float64](0.5, rng(4))
	bn := NewBatchNorm1d[float64](3)
	m := NewNamedSequential(Child[float64]{"body", NewSequential[float64](bn, drop)})
	x := autograd.Leaf("x", tensor.MustFromSlice([]float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}, 4, 3), true)
	if !drop.IsTraining() || !bn.IsTraining() {
		t.Fatal("modules must start in training mode")
	}
	y, err := m.Forward(x)
	if err != nil {
		t.Fatal(err)
	}
	zeros := 0
	for _, v := range y.Value.Data() {
		if v == 0 {
			zeros++
		}
	}
	if zeros == 0 || zeros == 12 {
		t.Fatalf("training-mode dropout zeroed %d of 12", zeros)
	}
	if bn.NumBatchesTracked.Data()[0] != 1 {
		t.Fatal("a training step must count a batch")
	}
	m.SetTraining(false)
	if drop.IsTraining() || bn.IsTraining() || m.IsTraining() {
		t.Fatal("SetTraining(false) must reach every module")
	}
	rm := bn.RunningMean.Clone()
	y, err = m.Forward(x)
	if err != nil {
		t.Fatal(err)
	}
	for c := range 3 {
		want := (x.Value.At(0, c) - rm.At(c)) / math.Sqrt(bn.RunningVar.At(c)+1e-5)
		if math.Abs(y.Value.At(0, c)-want) > 1e-12 {
			t.Fatalf("eval output %g, want %g", y.Value.At(0, c), want)
		}
	}
	if bn.NumBatchesTracked.Data()[0] != 1 || bn.RunningMean.At(0) != rm.At(0) {
		t.Fatal("evaluation mode must not update running statistics")
	}
}

func TestForwardErrors(t *testing.T) {
	m := NewNamedSequential(
		Child[float64]{"encoder", NewSequential[float64](NewLinear[float64](4, 3, true, nil), NewLinear[float64](5, 2, true, nil))},
	)
	_, err := m.Forward(autograd.Leaf("x", tensor.New[float64](2, 4), false))
	want := "nn: module encoder.1: linear: input has shape [2×3], want (N, 5) or (5): the last axis holds the 5 input features"
	if err == nil || err.Error() != want {
		t.Fatalf("got  %v\nwant %s", err, want)
	}
	var se *tensor.ShapeError
	if !errors.As(err, &se) {
		t.Fatal("the shape error must stay reachable with errors.As")
	}
	for _, c := range []struct {
		m    Module[float64]
		x    []int
		want string
	}{
		{NewBatchNorm2d[float64](3), []int{2, 3}, "batch_norm2d: input has shape [2×3], want (N, 3, H, W)"},
		{NewBatchNorm1d[float64](3), []int{2, 4}, "batch_norm1d: input has shape [2×4], want (N, 3) or (N, 3, L)"},
		{NewUnflatten[float64](2, 2, 2), []int{2, 7}, "unflatten: input has shape [2×7], want (N, 8, …)"},
		{NewConv2d[float64](3, 2, 3, 1, 0, true, nil), []int{1, 2, 5, 5}, "conv2d: weight has shape"},
	} {
		if _, err := c.m.Forward(autograd.Leaf("x", tensor.New[float64](c.x...), false)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("got %v, want %q", err, c.want)
		}
	}
}

// TestFloat32MatchesFloat64 runs one DCGAN-style model in both precisions
// with the same weights.
func TestFloat32MatchesFloat64(t *testing.T) {
	m64, m32 := dcganD[float64](rng(11)), dcganD[float32](nil)
	var sd []StateEntry[float32]
	for _, e := range m64.StateDict() {
		e32 := StateEntry[float32]{Name: e.Name, Tensor: tensor.Convert[float32](e.Tensor), Int: e.Int}
		sd = append(sd, e32)
	}
	if err := LoadStateDict[float32](m32, sd); err != nil {
		t.Fatal(err)
	}
	r := rng(12)
	x := tensor.New[float64](3, 1, 8, 8)
	for i := range x.Data() {
		x.Data()[i] = r.NormFloat64()
	}
	y64, err := m64.Forward(autograd.Leaf("x", x, false))
	if err != nil {
		t.Fatal(err)
	}
	y32, err := m32.Forward(autograd.Leaf("x", tensor.Convert[float32](x), false))
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range y64.Value.Data() {
		if math.Abs(v-float64(y32.Value.Data()[i])) > 1e-4 {
			t.Fatalf("output %d: float64 %g, float32 %g", i, v, y32.Value.Data()[i])
		}
	}
}

// TestPoolLayers: the pooling layers have no parameters, count in a
// Sequential's numbering as in PyTorch, and pass their options through.
func TestPoolLayers(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	net := NewSequential[float64](
		NewConv2d[float64](2, 3, 3, 1, 1, true, rng),
		NewMaxPool2d[float64](2, 0, 0),
		NewAvgPool2d[float64](3, 2, 1),
		NewFlatten[float64](),
	)
	var names []string
	for _, e := range net.StateDict() {
		names = append(names, e.Name)
	}
	if got := strings.Join(names, " "); got != "0.weight 0.bias" {
		t.Errorf("state dict %q, want the conv's entries only", got)
	}
	x := autograd.Leaf("x", tensor.New[float64](4, 2, 9, 8), false)
	y, err := net.Forward(x)
	if err != nil {
		t.Fatal(err)
	}
	// conv keeps 9×8; max 2 (stride 2) → 4×4; avg 3, stride 2, pad 1 → 2×2
	if want := []int{4, 3 * 2 * 2}; !tensor.SameShape(y.Value.Shape(), want) {
		t.Errorf("output shape %v, want %v", y.Value.Shape(), want)
	}
	if _, err := NewMaxPool2d[float64](2, 0, 2).Forward(x); err == nil || !strings.Contains(err.Error(), "more than half the kernel") {
		t.Errorf("padding 2 with kernel 2: error %v", err)
	}
}
