package gan

import (
	"context"
	"errors"
	"fmt"
	"image"
	"math/rand/v2"
	"os"
	"path/filepath"

	"github.com/backprop-dev/backprop/autograd"
	"github.com/backprop-dev/backprop/data"
	"github.com/backprop-dev/backprop/nn"
	"github.com/backprop-dev/backprop/ops"
	"github.com/backprop-dev/backprop/optim"
	"github.com/backprop-dev/backprop/tensor"
	"github.com/backprop-dev/backprop/training"
	"github.com/backprop-dev/backprop/viz"
)

// The training recipe of the DCGAN paper, shared with the PyTorch script.
const (
	// LearningRate is Adam's step size for both models.
	LearningRate = 2e-4
	// Beta1 and Beta2 are Adam's moment decay rates (β1 = 0.5 steadies GAN
	// training).
	Beta1, Beta2 = 0.5, 0.999
	// DefaultBatch is the default mini-batch size.
	DefaultBatch = 64
	// FixedSamples is the number of images in the per-epoch sample grid,
	// generated from one fixed noise batch so that grids of successive
	// epochs are comparable.
	FixedSamples = 64
)

// Streams of the run's seed (training.SeededPCG, derived through
// SplitMix64): every source of randomness is its own stream, so that each
// can be derived or restored independently of the others. Format 1
// checkpoints were written by runs seeded with rand.NewPCG(seed, stream)
// directly, with the legacy stream numbers below; a resumed format-1 run
// keeps that seeding for its shuffles, so it continues bit for bit.
var (
	streamInit   = training.Stream("init") // model initialization
	streamNoise  = training.Stream("nois") // the noise z of every training step (saved in checkpoints)
	streamFixed  = training.Stream("fixd") // the fixed noise of the sample grids
	streamSample = training.Stream("samp") // `backprop sample`
	// each epoch's shuffle: training.EpochStream(e)
)

// legacyShuffleStream is the base of format 1's per-epoch shuffle streams:
// rand.NewPCG(seed, legacyShuffleStream<<32 | epoch).
const legacyShuffleStream = 4

// Config describes one training run.
type Config struct {
	// Data names the data set, as data.Load takes it: "mnist",
	// "fashion-mnist" or a directory of IDX files.
	Data string
	// Seed fixes every random choice of the run (initialization, shuffles,
	// noise).
	Seed uint64
	// Limit, if positive, trains on the first Limit training images only
	// (for quick runs and tests).
	Limit int
	// Batch is the mini-batch size (DefaultBatch if 0). An epoch is
	// ⌊N/Batch⌋ steps: the last incomplete batch is dropped, as BatchNorm
	// needs full batches (PyTorch's drop_last=True).
	Batch int
	// Recipe holds the ingredients beyond the reference DCGAN; the zero
	// value is the reference recipe.
	Recipe Recipe
}

// Stats are the numbers of one training step.
type Stats struct {
	Epoch       int     // 0-based epoch the step belongs to
	StepInEpoch int     // 1-based step within the epoch, after the step
	Step        int64   // global step count, after the step
	DLoss       float64 // D's loss on the real batch plus on the fake batch: BCE against labels 1 (or the smoothed label) and 0, or the hinge loss
	GLoss       float64 // G's loss: the non-saturating BCE of D(G(z)) against label 1, or −mean D(G(z)) for the hinge loss
	DX          float64 // mean D(x) on the real batch, before D's update
	DGZ         float64 // mean D(G(z)) on the fake batch, before D's update
}

// Trainer holds the state of a training run: both models, both
// optimizers, the position in the schedule, the noise generator, the fixed
// noise and the loss history. All of it goes into a checkpoint, so that a
// resumed run continues exactly where the saved one stopped.
type Trainer struct {
	Config Config
	G, D   *nn.Sequential[float32]
	OptG   *optim.Adam[float32]
	OptD   *optim.Adam[float32]

	// Epoch is the number of completed epochs; StepInEpoch the number of
	// steps done in the current one; Step the global step count.
	Epoch, StepInEpoch int
	Step               int64

	// Fixed is the (FixedSamples, ZDim) noise of the sample grids
	// ((Classes², ZDim) for a conditional run: one row of the grid per
	// class, FixedLabels).
	Fixed *tensor.Tensor[float32]
	// EMA is the exponential moving average of G's weights when
	// Config.Recipe.EMA is set (nil otherwise): the generator of the sample
	// grids and of the checkpoint's "G." entries.
	EMA *nn.Sequential[float32]
	// History is one entry per step done so far, for the loss curve.
	History History

	// Epochs is the number of epochs the run is to reach (set by Run,
	// saved in checkpoints so that --resume without --epochs continues to
	// it); 0 when unknown.
	Epochs int

	noise  *rand.PCG
	rng    *rand.Rand
	images *tensor.Tensor[float32] // training images scaled to [−1, 1], (N, 1, 28, 28)
	labels []uint8                 // their classes, for a conditional run
	// format is the checkpoint format the run's seeding follows: 1 for a
	// run resumed from a format-1 checkpoint (legacy shuffle streams),
	// Format.Version otherwise.
	format int

	// epoch cache: the batches of epoch cacheEpoch
	cacheEpoch int
	batches    [][]int

	scratch stepScratch
}

// stepScratch is what a training step makes anew every time and can
// reuse instead, so that the steady state of a run allocates nothing: the
// real batch and the noise (overwritten each step), the leaves holding
// them, the BCE targets (constants) and D's parameter list. Nothing of a
// step keeps them past it: its graphs are released before it returns.
type stepScratch struct {
	real, z        *tensor.Tensor[float32]
	x, zLeaf, fake *autograd.Var[float32]
	targets        []*autograd.Var[float32] // constant leaves, by name, count and value
	dParams        []nn.Parameter[float32]
	dParamsOf      *nn.Sequential[float32] // the model dParams are of
}

// maxTargets bounds the constant leaves kept (three serve a run).
const maxTargets = 8

// leaf returns *v, reset as a leaf named name holding value without a
// gradient (made on first use).
func (s *stepScratch) leaf(v **autograd.Var[float32], name string, value *tensor.Tensor[float32]) *autograd.Var[float32] {
	if *v == nil {
		*v = autograd.Leaf(name, value, false)
		return *v
	}
	l := *v
	l.Name, l.Value, l.Grad, l.RequiresGrad = name, value, nil, false
	return l
}

// constant is the package's constant, reused while one of the name,
// count and value is kept.
func (s *stepScratch) constant(name string, n int, v float32) *autograd.Var[float32] {
	for _, c := range s.targets {
		if c.Name == name && c.Value.Len() == n && c.Value.Data()[0] == v {
			return c
		}
	}
	c := constant(name, n, v)
	if len(s.targets) < maxTargets {
		s.targets = append(s.targets, c)
	}
	return c
}

// buffer returns *t if it has the given shape, else a new tensor of it
// stored in *t; its elements are to be overwritten.
func buffer(t **tensor.Tensor[float32], shape ...int) *tensor.Tensor[float32] {
	if *t == nil || !tensor.SameShape((*t).Shape(), shape) {
		*t = tensor.New[float32](shape...)
	}
	return *t
}

// dParameters is t.D.Parameters(), kept from the last call while D is the
// same model.
func (t *Trainer) dParameters() []nn.Parameter[float32] {
	s := &t.scratch
	if s.dParamsOf != t.D {
		s.dParams, s.dParamsOf = t.D.Parameters(), t.D
	}
	return s.dParams
}

// History is the per-step record of a run: one entry per step of each
// of the Stats fields of the same names, kept in checkpoints so that the
// loss curve of a resumed run covers the whole run.
type History struct {
	DLoss, GLoss []float64 // D and G losses
	DX, DGZ      []float64 // mean D(x) and D(G(z))
}

// ErrNonFinite is returned (wrapped) when a loss becomes NaN or infinite:
// training stops without overwriting the last good checkpoint. It is
// training.ErrNonFinite.
var ErrNonFinite = training.ErrNonFinite

// ErrInterrupted is returned (wrapped) by Run when its context was
// cancelled (Ctrl-C): a checkpoint of the current step has been saved. It
// is training.ErrInterrupted.
var ErrInterrupted = training.ErrInterrupted

// LoadImages loads the training split named by cfg.Data, keeps the first
// cfg.Limit images if Limit is positive, checks that they are 1×28×28 and
// scales them to [−1, 1], the range of the generator's Tanh.
func LoadImages(cfg Config) (*tensor.Tensor[float32], error) {
	images, _, err := LoadLabeled(cfg)
	return images, err
}

// LoadLabeled is LoadImages that also returns the images' classes, which
// a conditional run trains on.
func LoadLabeled(cfg Config) (*tensor.Tensor[float32], []uint8, error) {
	ds, err := data.Load(cfg.Data, data.Train)
	if err != nil {
		return nil, nil, err
	}
	s := ds.Images.Shape()
	if s[1] != 1 || s[2] != ImageSize || s[3] != ImageSize {
		return nil, nil, fmt.Errorf("gan: %s: images are %d×%d, the reference models need %d×%d", ds.ImagesFile, s[2], s[3], ImageSize, ImageSize)
	}
	n := s[0]
	if cfg.Limit > 0 && cfg.Limit < n {
		n = cfg.Limit
	}
	// Rescale in place: the [0, 1] copy is not needed afterwards, and a
	// second 188 MB array (MNIST) would be the run's peak memory.
	px := ds.Images.Data()[:n*ImageSize*ImageSize]
	for i, v := range px {
		px[i] = 2*v - 1
	}
	images, err := tensor.FromSlice(px, n, 1, ImageSize, ImageSize)
	return images, ds.Labels[:n], err
}

// checkConfig fills in defaults and validates cfg against the image count.
func checkConfig(cfg *Config, n int) error {
	if cfg.Batch == 0 {
		cfg.Batch = DefaultBatch
	}
	if err := cfg.Recipe.Check(); err != nil {
		return err
	}
	switch {
	case cfg.Batch < 2:
		return fmt.Errorf("gan: batch size %d: want at least 2 (BatchNorm needs two samples)", cfg.Batch)
	case cfg.Limit < 0:
		return fmt.Errorf("gan: limit %d: want 0 (all images) or a positive count", cfg.Limit)
	case n < cfg.Batch:
		return fmt.Errorf("gan: %d training images are fewer than one batch of %d", n, cfg.Batch)
	}
	return nil
}

// NewTrainer starts a fresh run on images (from LoadImages) with models
// initialized from cfg.Seed. A conditional recipe needs the labels too:
// NewLabeledTrainer.
func NewTrainer(cfg Config, images *tensor.Tensor[float32]) (*Trainer, error) {
	return NewLabeledTrainer(cfg, images, nil)
}

// NewLabeledTrainer is NewTrainer with the images' classes (from
// LoadLabeled), which a conditional recipe trains on; an unconditional
// one ignores them.
func NewLabeledTrainer(cfg Config, images *tensor.Tensor[float32], labels []uint8) (*Trainer, error) {
	if err := checkConfig(&cfg, images.Dim(0)); err != nil {
		return nil, err
	}
	initRng := training.NewRand(cfg.Seed, streamInit)
	g, d := NewModels(cfg.Recipe, initRng)
	t, err := newTrainer(cfg, images, labels, g, d)
	if err != nil {
		return nil, err
	}
	fixedRng := training.NewRand(cfg.Seed, streamFixed)
	t.Fixed = Noise(fixedRng, fixedCount(cfg.Recipe))
	if cfg.Recipe.EMA != 0 {
		if t.EMA, err = cloneGenerator(cfg.Recipe, g); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// fixedCount is the number of images in the per-epoch sample grid:
// FixedSamples, or Classes² (Classes of each class) for a conditional
// recipe.
func fixedCount(r Recipe) int {
	if r.Conditional {
		return Classes * Classes
	}
	return FixedSamples
}

// FixedLabels are the classes of a conditional run's fixed noise: row r
// of the Classes-column grid is class r.
func FixedLabels(n int) []int {
	ls := make([]int, n)
	for i := range ls {
		ls[i] = i / Classes % Classes
	}
	return ls
}

// cloneGenerator returns a copy of g (built for recipe r): the start of
// its moving average.
func cloneGenerator(r Recipe, g *nn.Sequential[float32]) (*nn.Sequential[float32], error) {
	e, _ := NewModels(r, nil)
	if err := nn.LoadStateDict(e, g.StateDict()); err != nil {
		return nil, fmt.Errorf("gan: EMA copy of the generator: %w", err)
	}
	return e, nil
}

// UpdateEMA moves every parameter of ema towards g's,
// θ_ema ← decay·θ_ema + (1 − decay)·θ, and copies g's buffers (BatchNorm's
// running statistics) into ema. The two models must have the same layout.
func UpdateEMA(ema, g *nn.Sequential[float32], decay float64) error {
	es, gs := ema.StateDict(), g.StateDict()
	if len(es) != len(gs) {
		return fmt.Errorf("gan: EMA: %d state entries for the generator's %d", len(es), len(gs))
	}
	for i, e := range es {
		src, dst := gs[i].Tensor.Data(), e.Tensor.Data()
		if gs[i].Name != e.Name || len(src) != len(dst) {
			return fmt.Errorf("gan: EMA: entry %q (%d values) against the generator's %q (%d)", e.Name, len(dst), gs[i].Name, len(src))
		}
		if e.Buffer {
			copy(dst, src)
			continue
		}
		for j, v := range src {
			dst[j] = float32(decay*float64(dst[j]) + (1-decay)*float64(v))
		}
	}
	return nil
}

// newTrainer assembles a trainer around the given models with fresh
// optimizers and noise generator.
func newTrainer(cfg Config, images *tensor.Tensor[float32], labels []uint8, g, d *nn.Sequential[float32]) (*Trainer, error) {
	if cfg.Recipe.Conditional {
		if len(labels) != images.Dim(0) {
			return nil, fmt.Errorf("gan: a conditional run needs one label per training image: %d labels for %d images", len(labels), images.Dim(0))
		}
		for i, y := range labels {
			if int(y) >= Classes {
				return nil, fmt.Errorf("gan: training label %d of image %d: a conditional model has classes 0…%d", y, i, Classes-1)
			}
		}
	}
	opt := optim.AdamOptions{LR: cfg.Recipe.lrG(), Beta1: Beta1, Beta2: Beta2, Eps: 1e-8}
	optG, err := optim.NewAdam(g.Parameters(), opt)
	if err != nil {
		return nil, err
	}
	opt.LR = cfg.Recipe.lrD()
	optD, err := optim.NewAdam(d.Parameters(), opt)
	if err != nil {
		return nil, err
	}
	noise := training.SeededPCG(cfg.Seed, streamNoise)
	return &Trainer{Config: cfg, G: g, D: d, OptG: optG, OptD: optD,
		noise: noise, rng: rand.New(noise), images: images, labels: labels, cacheEpoch: -1, format: Format.Version}, nil
}

// Noise draws an (n, ZDim) batch of standard normal noise from rng.
func Noise(rng *rand.Rand, n int) *tensor.Tensor[float32] {
	z := tensor.New[float32](n, ZDim)
	fillNoise(rng, z.Data())
	return z
}

// fillNoise overwrites z with standard normal draws from rng, in order.
func fillNoise(rng *rand.Rand, z []float32) {
	for i := range z {
		z[i] = float32(rng.NormFloat64())
	}
}

// StepsPerEpoch is the number of steps in one epoch, ⌊N/Batch⌋.
func (t *Trainer) StepsPerEpoch() int { return t.images.Dim(0) / t.Config.Batch }

// epochBatches returns the batches of epoch e (0-based): a shuffle drawn
// from its own stream of the seed (training.EpochStream), so that any
// epoch's order can be recomputed on resume without replaying the ones
// before it.
func (t *Trainer) epochBatches(e int) ([][]int, error) {
	if t.cacheEpoch == e {
		return t.batches, nil
	}
	rng := training.NewRand(t.Config.Seed, training.EpochStream(e))
	if t.format == 1 {
		rng = rand.New(rand.NewPCG(t.Config.Seed, legacyShuffleStream<<32|uint64(e)))
	}
	bs, err := data.Batches(t.images.Dim(0), rng, t.Config.Batch)
	if err != nil {
		return nil, err
	}
	t.cacheEpoch, t.batches = e, bs[:t.StepsPerEpoch()]
	return t.batches, nil
}

// gather copies the images at idx into the trainer's (len(idx), 1, 28,
// 28) batch, which the next call overwrites.
func (t *Trainer) gather(idx []int) *tensor.Tensor[float32] {
	per := ImageSize * ImageSize
	out := buffer(&t.scratch.real, len(idx), 1, ImageSize, ImageSize)
	src, dst := t.images.Data(), out.Data()
	for i, j := range idx {
		copy(dst[i*per:(i+1)*per], src[j*per:(j+1)*per])
	}
	return out
}

// constant returns an (n, 1) leaf filled with v: the BCE targets.
func constant(name string, n int, v float32) *autograd.Var[float32] {
	c := tensor.New[float32](n, 1)
	c.Fill(v)
	return autograd.Leaf(name, c, false)
}

// meanSigmoid is the mean of σ over the logits, D's average belief that
// its inputs are real.
func meanSigmoid(logits *tensor.Tensor[float32]) float64 {
	s := 0.0
	for _, a := range logits.Data() {
		s += ops.SigmoidF(float64(a))
	}
	return s / float64(logits.Len())
}

// TrainStep runs one step of the schedule, the next batch of the current
// epoch, as in PyTorch's DCGAN example:
//
//  1. D: BCE(D(x), 1) and BCE(D(G(z)) with G(z) detached, 0), both
//     back-propagated, then one Adam step of D;
//  2. G: BCE(D(G(z)), 1) on the same fake batch through the updated D
//     (the non-saturating loss), then one Adam step of G.
//
// A non-finite loss returns an error wrapping ErrNonFinite; the models
// are then unusable and must not be saved.
func (t *Trainer) TrainStep() (Stats, error) {
	batches, err := t.epochBatches(t.Epoch)
	if err != nil {
		return Stats{}, err
	}
	idx := batches[t.StepInEpoch]
	real := t.gather(idx)
	var y []int
	if t.Config.Recipe.Conditional {
		y = make([]int, len(idx))
		for i, j := range idx {
			y[i] = int(t.labels[j])
		}
	}
	z := buffer(&t.scratch.z, real.Dim(0), ZDim)
	fillNoise(t.rng, z.Data())
	return t.step(real, z, y)
}

// dLoss is D's loss on a batch of logits: real (target realTarget) or
// fake (target 0), by the recipe's loss.
func (t *Trainer) dLoss(name string, logits *autograd.Var[float32], real bool) (*autograd.Var[float32], error) {
	n := logits.Value.Dim(0)
	if t.Config.Recipe.loss() == LossHinge {
		sign := 1.0
		if real {
			sign = -1
		}
		return Hinge(name, logits, sign)
	}
	var target *autograd.Var[float32]
	if real {
		target = t.scratch.constant("ones", n, t.Config.Recipe.realTarget())
	} else {
		target = t.scratch.constant("zeros", n, 0)
	}
	return ops.BCEWithLogits(name, logits, target)
}

// gLoss is G's loss on D's logits of the fake batch: the non-saturating
// BCE against 1, or −mean for the hinge loss.
func (t *Trainer) gLoss(logits *autograd.Var[float32]) (*autograd.Var[float32], error) {
	if t.Config.Recipe.loss() == LossHinge {
		m, err := ops.Mean("g_mean", logits)
		if err != nil {
			return nil, err
		}
		return ops.Scale("g_loss", m, -1)
	}
	return ops.BCEWithLogits("g_loss", logits, t.scratch.constant("ones", logits.Value.Dim(0), 1))
}

// step is TrainStep on the given real batch (in [−1, 1]) and noise, with
// the batch's labels y for a conditional run (nil otherwise); the fake
// batch is generated for the same labels.
func (t *Trainer) step(real, z *tensor.Tensor[float32], y []int) (Stats, error) {
	st := Stats{Epoch: t.Epoch}
	if t.Config.Recipe.Conditional {
		if err := SetLabels(t.G, y); err != nil {
			return st, err
		}
		if err := SetLabels(t.D, y); err != nil {
			return st, err
		}
	}

	// discriminator
	t.OptD.ZeroGrad()
	s := &t.scratch
	outReal, err := t.D.Forward(s.leaf(&s.x, "x", real))
	if err != nil {
		return st, err
	}
	lossReal, err := t.dLoss("d_loss_real", outReal, true)
	if err != nil {
		return st, err
	}
	if err := autograd.Backward(lossReal); err != nil {
		return st, err
	}
	st.DX = meanSigmoid(outReal.Value)
	// Each graph's activations and gradients go back to the tensor pool as
	// soon as it is done with (parameters and their gradients are leaves
	// and stay), so the next forward pass reuses them instead of asking
	// the allocator for fresh, zeroed buffers.
	lossRealV := lossReal.Value.Data()[0]
	autograd.Release(lossReal)
	fake, err := t.G.Forward(s.leaf(&s.zLeaf, "z", z))
	if err != nil {
		return st, err
	}
	outFake, err := t.D.Forward(s.leaf(&s.fake, "fake", fake.Value)) // detached
	if err != nil {
		return st, err
	}
	lossFake, err := t.dLoss("d_loss_fake", outFake, false)
	if err != nil {
		return st, err
	}
	if err := autograd.Backward(lossFake); err != nil {
		return st, err
	}
	st.DLoss = float64(lossRealV) + float64(lossFake.Value.Data()[0])
	st.DGZ = meanSigmoid(outFake.Value)
	autograd.Release(lossFake) // keeps fake: the detached leaf shares its storage
	if !training.Finite(st.DLoss) {
		return st, fmt.Errorf("%w: discriminator loss %v at epoch %d, step %d", ErrNonFinite, st.DLoss, t.Epoch+1, t.StepInEpoch+1)
	}
	if err := t.OptD.Step(); err != nil {
		return st, err
	}

	// generator: D's parameters are frozen for this pass (PyTorch's
	// requires_grad_(False)), so the backward pass through D computes only
	// the gradients flowing to G, not weight gradients that the next
	// D step would zero unread.
	t.OptG.ZeroGrad()
	dParams := t.dParameters()
	for _, p := range dParams {
		p.Var.RequiresGrad = false
	}
	var lossG *autograd.Var[float32]
	outGen, err := t.D.Forward(fake)
	if err == nil {
		if lossG, err = t.gLoss(outGen); err == nil {
			err = autograd.Backward(lossG)
		}
	}
	for _, p := range dParams {
		p.Var.RequiresGrad = true
	}
	if err != nil {
		return st, err
	}
	st.GLoss = float64(lossG.Value.Data()[0])
	autograd.Release(lossG)
	if !training.Finite(st.GLoss) {
		return st, fmt.Errorf("%w: generator loss %v at epoch %d, step %d", ErrNonFinite, st.GLoss, t.Epoch+1, t.StepInEpoch+1)
	}
	if err := t.OptG.Step(); err != nil {
		return st, err
	}
	if t.EMA != nil {
		if err := UpdateEMA(t.EMA, t.G, EMADecay(t.Config.Recipe.EMA, t.Step)); err != nil {
			return st, err
		}
	}

	t.StepInEpoch++
	t.Step++
	st.StepInEpoch, st.Step = t.StepInEpoch, t.Step
	t.History.DLoss = append(t.History.DLoss, st.DLoss)
	t.History.GLoss = append(t.History.GLoss, st.GLoss)
	t.History.DX = append(t.History.DX, st.DX)
	t.History.DGZ = append(t.History.DGZ, st.DGZ)
	if t.StepInEpoch == t.StepsPerEpoch() {
		t.Epoch++
		t.StepInEpoch = 0
	}
	return st, nil
}

// Metrics are what a step reports to training.Hooks: the D and G
// losses, D(x) and D(G(z)), named as the progress bar shows them.
func (st Stats) Metrics() []training.Metric {
	return []training.Metric{{Name: "D", Value: st.DLoss}, {Name: "G", Value: st.GLoss}, {Name: "D(x)", Value: st.DX}, {Name: "D(G(z))", Value: st.DGZ}}
}

// Run trains until Epoch reaches epochs, writing into dir after every
// epoch: samples-epochN.png (the fixed noise through G), loss.png,
// history.csv, checkpoint-epochN.safetensors and checkpoint.safetensors
// (the latest). The loop is training.Loop's: hooks follow it, with the
// Metrics of every step, the epoch's mean D and G losses and its sample
// grid.
//
// When ctx is cancelled Run saves checkpoint.safetensors at the current
// step and returns a *training.InterruptedError wrapping ErrInterrupted.
// When a loss becomes non-finite it returns an error wrapping ErrNonFinite
// and writes nothing, so the latest checkpoint is the last good one.
func (t *Trainer) Run(ctx context.Context, epochs int, dir string, hooks training.Hooks) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("gan: output directory: %w", err)
	}
	t.Epochs = epochs
	if t.Epoch >= epochs {
		return nil
	}
	loop := training.Loop{
		Plan:  training.Plan{Epochs: epochs, StepsPerEpoch: t.StepsPerEpoch(), Epoch: t.Epoch, StepInEpoch: t.StepInEpoch},
		Hooks: hooks,
	}
	loop.Step = func(int, int) ([]training.Metric, error) {
		st, err := t.TrainStep()
		if err != nil {
			if errors.Is(err, ErrNonFinite) {
				return nil, fmt.Errorf("%w; stopped, the latest checkpoint in %s is the last good one", err, dir)
			}
			return nil, err
		}
		return st.Metrics(), nil
	}
	loop.EndEpoch = func(int) (training.EpochEnd, error) { return t.EndEpoch(dir) }
	loop.Interrupt = func(int, int) (string, error) {
		path := filepath.Join(dir, CheckpointFile)
		return path, t.Save(path)
	}
	return loop.Run(ctx)
}

// CheckpointFile is the name of the latest checkpoint in a run directory.
const CheckpointFile = training.CheckpointFile

// EpochCheckpointFile is the name of the checkpoint kept after epoch e
// (1-based).
func EpochCheckpointFile(e int) string { return fmt.Sprintf("checkpoint-epoch%d.safetensors", e) }

// EndEpoch writes the files of the epoch just completed (t.Epoch, 1-based)
// into dir: the sample grid, the loss curve, the history, the epoch's
// checkpoint and the latest checkpoint. It returns the epoch's mean D and
// G losses, the grid and the names of the files.
func (t *Trainer) EndEpoch(dir string) (training.EpochEnd, error) {
	grid, err := t.SampleGrid()
	if err != nil {
		return training.EpochEnd{}, err
	}
	samples := fmt.Sprintf("samples-epoch%d.png", t.Epoch)
	path := filepath.Join(dir, samples)
	if err := training.FileError(path, viz.SavePNG(path, grid)); err != nil {
		return training.EpochEnd{}, err
	}
	if err := t.SaveLossCurve(filepath.Join(dir, training.LossPlotFile)); err != nil {
		return training.EpochEnd{}, err
	}
	if err := t.SaveHistory(filepath.Join(dir, HistoryFile)); err != nil {
		return training.EpochEnd{}, err
	}
	if err := t.Save(filepath.Join(dir, EpochCheckpointFile(t.Epoch))); err != nil {
		return training.EpochEnd{}, err
	}
	if err := t.Save(filepath.Join(dir, CheckpointFile)); err != nil {
		return training.EpochEnd{}, err
	}
	spe := t.StepsPerEpoch()
	mean := func(v []float64) float64 {
		sum := 0.0
		for _, x := range v[len(v)-spe:] {
			sum += x
		}
		return sum / float64(spe)
	}
	return training.EpochEnd{
		Metrics: []training.Metric{{Name: "mean D loss", Value: mean(t.History.DLoss)}, {Name: "mean G loss", Value: mean(t.History.GLoss)}},
		Image:   grid,
		Files:   []string{samples, training.LossPlotFile, HistoryFile, EpochCheckpointFile(t.Epoch), CheckpointFile},
	}, nil
}

// HistoryFile is the per-step record EndEpoch writes into the output
// directory, as CSV.
const HistoryFile = training.HistoryFile

// history is the record of history.csv and loss.png: per step D's and G's
// losses, D(x) and D(G(z)); the plot shows the losses.
func (t *Trainer) history() training.History {
	return training.History{StepsPerEpoch: t.StepsPerEpoch(), Steps: []training.Series{
		{Column: "d_loss", Legend: "D loss", Values: t.History.DLoss},
		{Column: "g_loss", Legend: "G loss", Values: t.History.GLoss},
		{Column: "d_x", Values: t.History.DX},
		{Column: "d_g_z", Values: t.History.DGZ},
	}}
}

// SaveHistory writes the record of every step so far as a CSV table: step
// (1-based), epoch, D's and G's losses, D(x) and D(G(z)) — the numbers of
// loss.png, for comparing runs without reading checkpoints.
func (t *Trainer) SaveHistory(path string) error {
	return training.FileError(path, t.history().WriteCSV(path))
}

// SampleGenerator returns the generator to sample from: the moving
// average EMA when the recipe keeps one, G otherwise.
func (t *Trainer) SampleGenerator() *nn.Sequential[float32] {
	if t.EMA != nil {
		return t.EMA
	}
	return t.G
}

// SampleGrid renders the generator (SampleGenerator) applied to the
// fixed noise as an 8×8 grid, or for a conditional run a 10×10 grid with
// one row per class.
func (t *Trainer) SampleGrid() (*image.Gray, error) {
	cols := 8
	var labels []int
	if t.Config.Recipe.Conditional {
		cols, labels = Classes, FixedLabels(t.Fixed.Dim(0))
	}
	imgs, err := GenerateLabeled(t.SampleGenerator(), t.Fixed, labels)
	if err != nil {
		return nil, err
	}
	return viz.ImageGrid(imgs, cols, 0, 1)
}

// SaveLossCurve plots the D and G losses of every step so far (nothing
// before the first step).
func (t *Trainer) SaveLossCurve(path string) error {
	title := fmt.Sprintf("DCGAN on %s: losses per step", t.Config.Data)
	ylabel := "BCE loss"
	if t.Config.Recipe.loss() == LossHinge {
		ylabel = "hinge loss"
	}
	return training.FileError(path, t.history().Plot(path, title, viz.CurveOptions{XLabel: "step", YLabel: ylabel}))
}

// Generate runs the generator in evaluation mode (BatchNorm uses its
// running statistics, and nothing in the model changes) on the noise z
// (n, ZDim), 256 at a time, and returns the images (n, 1, 28, 28) mapped
// from Tanh's [−1, 1] to [0, 1]. The generator is left in the mode it was
// in.
func Generate(g *nn.Sequential[float32], z *tensor.Tensor[float32]) (*tensor.Tensor[float32], error) {
	return GenerateLabeled(g, z, nil)
}

// GenerateLabeled is Generate for a conditional generator, with one class
// per noise row in labels (nil for an unconditional generator).
func GenerateLabeled(g *nn.Sequential[float32], z *tensor.Tensor[float32], labels []int) (*tensor.Tensor[float32], error) {
	zs := z.Shape()
	if len(zs) != 2 || zs[1] != ZDim {
		return nil, &tensor.ShapeError{Op: "gan.Generate", Tensor: "noise", Want: fmt.Sprintf("(N, %d)", ZDim), Got: zs}
	}
	if cond := IsConditional(g); cond != (labels != nil) {
		if cond {
			return nil, fmt.Errorf("gan: the generator is class-conditional: give a class for every sample")
		}
		return nil, fmt.Errorf("gan: the generator is not class-conditional: it takes no classes")
	}
	if labels != nil && len(labels) != zs[0] {
		return nil, fmt.Errorf("gan: %d classes for %d noise rows", len(labels), zs[0])
	}
	was := g.IsTraining()
	g.SetTraining(false)
	defer g.SetTraining(was)
	n := zs[0]
	per := ImageSize * ImageSize
	out := tensor.New[float32](n, 1, ImageSize, ImageSize)
	const chunk = 256
	for lo := 0; lo < n; lo += chunk {
		hi := min(lo+chunk, n)
		zc, err := tensor.FromSlice(z.Data()[lo*ZDim:hi*ZDim], hi-lo, ZDim)
		if err != nil {
			return nil, err
		}
		if labels != nil {
			if err := SetLabels(g, labels[lo:hi]); err != nil {
				return nil, err
			}
		}
		y, err := g.Forward(autograd.Leaf("z", zc, false))
		if err != nil {
			return nil, err
		}
		dst := out.Data()[lo*per : hi*per]
		for i, v := range y.Value.Data() {
			dst[i] = (v + 1) / 2
		}
	}
	return out, nil
}
