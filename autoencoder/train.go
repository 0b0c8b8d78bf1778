package autoencoder

import (
	"bytes"
	"image/png"

	"context"
	"errors"
	"fmt"
	"github.com/backprop-dev/backprop/live"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/backprop-dev/backprop/autograd"
	"github.com/backprop-dev/backprop/data"
	"github.com/backprop-dev/backprop/nn"
	"github.com/backprop-dev/backprop/optim"
	"github.com/backprop-dev/backprop/tensor"
	"github.com/backprop-dev/backprop/viz"
)

// Optimizers accepted by Options.Optimizer.
const (
	Adam = "adam" // torch.optim.Adam with PyTorch's betas and eps
	SGD  = "sgd"  // torch.optim.SGD with momentum
)

// Default hyperparameters of `backprop train autoencoder`. DefaultSGDLR
// was chosen on MNIST (bench/autoencoder/README.md): with the loss summed
// over the 784 pixels of an image the gradients are large, and 0.01 with
// momentum 0.9 is the largest rate of 0.003, 0.01, 0.03, 0.1 that trains
// steadily.
const (
	DefaultAdamLR   = 1e-3
	DefaultSGDLR    = 0.01
	DefaultMomentum = 0.9
	DefaultBatch    = 64
	DefaultEpochs   = 3
	DefaultSeed     = 1
	DefaultSamples  = 16
)

// Random streams of the PCG generator: the seed picks the run, the stream
// separates initialization from shuffling, so the batch order does not
// depend on the model's size and vice versa.
const (
	initStream    = 0x696e6974 // "init"
	shuffleStream = 0x73687566 // "shuf"
)

// seededPCG is the PCG generator of a run's seed and stream. Its 128-bit
// state is the first two outputs of a SplitMix64 generator started at
// stream<<32 ^ seed, so that neighbouring seeds (1, 2, 3, …) start from
// unrelated states, as NumPy's SeedSequence and the xoshiro authors
// advise for small seeds. (Used directly, rand.NewPCG(seed, stream) gives
// every seed the same low half of the state at every step; over 400 seeds
// so drawn the mean test error sat 0.28 % above PyTorch's, against 0.04 %
// now: bench/autoencoder/README.md.)
func seededPCG(seed, stream uint64) *rand.PCG {
	x := stream<<32 ^ seed
	return rand.NewPCG(splitMix64(x), splitMix64(x+golden64))
}

// golden64 is 2^64/φ, SplitMix64's increment.
const golden64 = 0x9e3779b97f4a7c15

// splitMix64 is the output of a SplitMix64 generator whose state was x
// before the step: a bijective mix of x + golden64.
func splitMix64(x uint64) uint64 {
	x += golden64
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}

// Options configure a training run. DefaultOptions gives the values of
// `backprop train autoencoder` without flags.
type Options struct {
	Hidden    int     // hidden units
	Optimizer string  // Adam or SGD
	LR        float64 // learning rate; 0 picks DefaultAdamLR or DefaultSGDLR
	Momentum  float64 // SGD momentum (ignored by Adam)
	Batch     int     // mini-batch size
	Epochs    int     // passes over the training images
	Seed      uint64  // seed of initialization and shuffling: equal seeds, equal runs
	Limit     int     // use only the first Limit training images; 0 uses all
	Samples   int     // test images in the reconstruction grids
	// Dataset names the training data in the checkpoint metadata (the
	// --data value); it does not select anything.
	Dataset string
	// OutDir receives recon-epochN.png, loss.png, history.csv and the
	// checkpoint after every epoch; "" writes nothing.
	OutDir string
	// Progress receives the progress bar (stderr in the CLI); nil shows
	// none.
	Progress io.Writer
	// Log receives one line per epoch (stdout in the CLI); nil prints
	// nothing.
	Log io.Writer
	// Live, when set, receives the progress for the browser view
	// (`--serve`): the loss every few steps, the test error and the
	// reconstruction grid after each epoch.
	Live *live.Store
	// Resume, when set, continues the run saved in this checkpoint
	// instead of starting a new one; Checkpoint.ResumeOptions fills in the
	// other options. Epochs is then the total to reach, counting the
	// epochs the checkpoint has done.
	Resume *Checkpoint

	// afterStep, when set (by tests), is called after every step with the
	// number of steps done in all.
	afterStep func(step int)
}

// DefaultOptions returns the defaults of the command: 256 hidden units,
// Adam with its default lr (1e-3; LR 0 picks the optimizer's default, so
// switching Optimizer to SGD gives DefaultSGDLR), momentum 0.9 for SGD,
// batches of 64, 3 epochs, seed 1, 16 sample images.
func DefaultOptions() Options {
	return Options{
		Hidden: DefaultHidden, Optimizer: Adam, Momentum: DefaultMomentum,
		Batch: DefaultBatch, Epochs: DefaultEpochs, Seed: DefaultSeed, Samples: DefaultSamples,
	}
}

// Validate reports the first option out of range, naming it by its flag.
func (o *Options) Validate() error {
	switch {
	case o.Hidden <= 0 || o.Hidden > maxUnits:
		return fmt.Errorf("--hidden: %d hidden units, want 1…%d", o.Hidden, maxUnits)
	case o.Optimizer != Adam && o.Optimizer != SGD:
		return fmt.Errorf("--optimizer: want %s or %s, got %q", Adam, SGD, o.Optimizer)
	case !(o.LR >= 0) || math.IsInf(o.LR, 0):
		return fmt.Errorf("--lr: want a learning rate > 0 (or 0 for the optimizer's default), got %g", o.LR)
	case !(o.Momentum >= 0 && o.Momentum < 1):
		return fmt.Errorf("--momentum: want a value in [0, 1), got %g", o.Momentum)
	case o.Batch <= 0:
		return fmt.Errorf("--batch: want a batch size > 0, got %d", o.Batch)
	case o.Epochs <= 0:
		return fmt.Errorf("--epochs: want at least 1 epoch, got %d", o.Epochs)
	case o.Limit < 0:
		return fmt.Errorf("--limit: want a number of training images ≥ 0 (0 = all), got %d", o.Limit)
	case o.Samples < 0:
		return fmt.Errorf("samples: want ≥ 0 images in the grid, got %d", o.Samples)
	}
	return nil
}

// LearningRate is the rate a run uses: LR, or the optimizer's default
// when LR is 0.
func (o *Options) LearningRate() float64 {
	switch {
	case o.LR > 0:
		return o.LR
	case o.Optimizer == SGD:
		return DefaultSGDLR
	}
	return DefaultAdamLR
}

// EpochStats summarises one epoch of training.
type EpochStats struct {
	Epoch       int     // 1-based
	Steps       int     // optimizer steps taken by the end of the epoch
	TrainLoss   float64 // mean of the epoch's step losses
	TestError   float64 // mean per-image SSE on the test set after the epoch
	Seconds     float64 // wall time of the epoch's training steps
	EvalSeconds float64 // wall time of the test-set evaluation
}

// Result is what a training run produced.
type Result struct {
	Model    *Model       // the trained auto-encoder
	StepLoss []float64    // the loss of every step, in order
	Epochs   []EpochStats // one per completed epoch
	// Checkpoint is the path of the last checkpoint written ("" when
	// OutDir is empty).
	Checkpoint string
}

// Subset returns the first n examples of d (all of them when n is 0 or at
// least d.Len()), sharing d's storage: the --limit of a quick run.
func Subset(d *data.Dataset, n int) (*data.Dataset, error) {
	if n <= 0 || n >= d.Len() {
		return d, nil
	}
	h, w := d.ImageShape()
	img, err := tensor.FromSlice(d.Images.Data()[:n*h*w], n, 1, h, w)
	if err != nil {
		return nil, err
	}
	sub := *d
	sub.Images, sub.Labels = img, d.Labels[:n]
	return &sub, nil
}

// Train trains a fresh auto-encoder on train and measures it on test
// after every epoch, as `backprop train autoencoder` does: PyTorch's
// default initialization and the shuffling drawn from PCG generators
// seeded with opt.Seed (so equal options give bit-for-bit equal models and
// checkpoints), the loss of Model.Loss, and after each epoch the test
// error, a reconstruction grid, the loss curve and an atomic checkpoint in
// opt.OutDir.
//
// A cancelled ctx stops training between steps: Train then saves a
// checkpoint of the step reached (atomically; a failed write keeps the
// previous one) and returns an error wrapping ErrInterrupted and the
// context's error. With opt.Resume, Train continues the saved run from
// that step: the weights, the optimizer state, the shuffling generator's
// state and the loss history come from the checkpoint, so the result is
// bit for bit that of a run never interrupted, and Result holds the whole
// run's losses and epochs (earlier epochs without timings). A non-finite
// loss stops training with an error before anything of that epoch is
// written.
func Train(ctx context.Context, train, test *data.Dataset, opt Options) (*Result, error) {
	if err := opt.Validate(); err != nil {
		return nil, err
	}
	if train == nil || test == nil {
		return nil, errors.New("autoencoder: Train needs a training and a test set")
	}
	train, err := Subset(train, opt.Limit)
	if err != nil {
		return nil, err
	}
	if train.Len() == 0 || test.Len() == 0 {
		return nil, fmt.Errorf("autoencoder: the training set has %d images and the test set %d; both need at least one", train.Len(), test.Len())
	}
	h, w := train.ImageShape()
	if th, tw := test.ImageShape(); th != h || tw != w {
		return nil, fmt.Errorf("autoencoder: training images are %d×%d but test images %d×%d", h, w, th, tw)
	}
	cfg := Config{Input: h * w, Hidden: opt.Hidden}
	ck := opt.Resume
	if ck != nil {
		if err := ck.checkOptions(opt); err != nil {
			return nil, err
		}
		if err := ck.checkData(opt, h, w, train.Len()); err != nil {
			return nil, err
		}
	}
	var model *Model
	if ck == nil {
		model, err = New(cfg, rand.New(seededPCG(opt.Seed, initStream)))
	} else if model, err = New(cfg, nil); err == nil {
		err = nn.LoadStateDict[float32](model, ck.Model.StateDict())
	}
	if err != nil {
		return nil, err
	}
	lr := opt.LearningRate()
	var optimizer optim.Optimizer[float32]
	if opt.Optimizer == SGD {
		optimizer, err = optim.NewSGD(model.Parameters(), optim.SGDOptions{LR: lr, Momentum: opt.Momentum})
	} else {
		ao := optim.DefaultAdamOptions()
		ao.LR = lr
		optimizer, err = optim.NewAdam(model.Parameters(), ao)
	}
	if err != nil {
		return nil, err
	}
	if ck != nil {
		if err := optimizer.LoadState(ck.OptimizerState); err != nil {
			return nil, &CheckpointError{Path: ck.Path, Err: err}
		}
	}
	if opt.OutDir != "" {
		if err := os.MkdirAll(opt.OutDir, 0o755); err != nil {
			return nil, fmt.Errorf("autoencoder: output directory: %w", err)
		}
	}
	// One PCG stream shuffles every epoch in turn; a checkpoint records its
	// state at the start of the epoch in progress.
	pcg := seededPCG(opt.Seed, shuffleStream)
	if ck != nil {
		pcg = rand.NewPCG(ck.Progress.Shuffle[0], ck.Progress.Shuffle[1])
	}
	shuffle := rand.New(pcg)

	// The grid shows the first Samples test images above their
	// reconstructions after every epoch.
	var samples *tensor.Tensor[float32]
	if n := min(opt.Samples, test.Len()); n > 0 && opt.OutDir != "" {
		idx := make([]int, n)
		for i := range idx {
			idx[i] = i
		}
		if samples, _, err = test.Batch(idx); err != nil {
			return nil, err
		}
	}

	spe := stepsPerEpoch(train.Len(), opt.Batch)
	res := &Result{Model: model}
	meta := Meta{
		Config: cfg, ImageH: h, ImageW: w, Epochs: opt.Epochs, Dataset: opt.Dataset,
		TrainImages: train.Len(), Optimizer: opt.Optimizer, LR: lr, Batch: opt.Batch, Seed: opt.Seed,
		TestError: math.NaN(),
	}
	if opt.Optimizer == SGD {
		meta.Momentum = opt.Momentum
	}
	first, skip := 1, 0 // the first epoch to run, and the steps of it already done
	if ck != nil {
		first, skip = ck.Meta.Epoch+1, ck.Meta.StepInEpoch
		res.StepLoss = slices.Clone(ck.Progress.StepLoss)
		for e, te := range ck.Progress.TestError {
			res.Epochs = append(res.Epochs, EpochStats{Epoch: e + 1, Steps: (e + 1) * spe,
				TrainLoss: meanLoss(res.StepLoss[e*spe : (e+1)*spe]), TestError: te})
		}
		meta.Epoch, meta.Step = ck.Meta.Epoch, ck.Meta.Step
		if n := len(res.Epochs); n > 0 {
			meta.TestError = res.Epochs[n-1].TestError
		}
		if first > opt.Epochs {
			return res, nil // nothing left to do
		}
	}
	bar := newBar(opt.Progress, max(0, opt.Epochs*spe-len(res.StepLoss)))
	defer bar.finish()

	if opt.Live != nil {
		opt.Live.Start("autoencoder", opt.Epochs, opt.Epochs*spe)
	}
	for epoch := first; epoch <= opt.Epochs; epoch++ {
		epochRNG := pcgState(pcg)
		batches, err := train.Batches(shuffle, opt.Batch)
		if err != nil {
			return nil, err
		}
		start := time.Now()
		for s := skip; s < len(batches); s++ {
			if err := ctx.Err(); err != nil {
				bar.clear()
				return res, saveInterrupted(err, opt, model, optimizer, meta, epochRNG, epoch, s, res)
			}
			x, _, err := train.Batch(batches[s])
			if err != nil {
				return nil, err
			}
			_, loss, err := model.Loss(x)
			if err != nil {
				return nil, err
			}
			l := float64(loss.Value.Data()[0])
			if math.IsNaN(l) || math.IsInf(l, 0) {
				return res, fmt.Errorf("autoencoder: training diverged at epoch %d, step %d: the loss is %v (try a smaller --lr); the last checkpoint written is kept", epoch, s+1, l)
			}
			if err := autograd.Backward(loss); err != nil {
				return nil, err
			}
			if err := optimizer.Step(); err != nil {
				return nil, err
			}
			optimizer.ZeroGrad()
			// the step's graph is done with: its buffers serve the next step
			autograd.Release(loss)
			res.StepLoss = append(res.StepLoss, l)
			bar.step(epoch, opt.Epochs, s+1, len(batches), l)
			if opt.Live != nil && (s%10 == 0 || s == len(batches)-1) {
				opt.Live.Publish(live.Update{Epoch: epoch, Step: len(res.StepLoss), Losses: map[string]float64{"train loss": l}})
			}
			if opt.afterStep != nil {
				opt.afterStep(len(res.StepLoss))
			}
		}
		ran := len(batches) - skip // steps of this epoch run by this call
		skip = 0
		st := EpochStats{Epoch: epoch, Steps: len(res.StepLoss), TrainLoss: meanLoss(res.StepLoss[len(res.StepLoss)-len(batches):]), Seconds: time.Since(start).Seconds()}
		evalStart := time.Now()
		if st.TestError, err = model.TestError(test); err != nil {
			return nil, err
		}
		st.EvalSeconds = time.Since(evalStart).Seconds()
		res.Epochs = append(res.Epochs, st)
		meta.Epoch, meta.Step, meta.StepInEpoch, meta.TestError = epoch, len(res.StepLoss), 0, st.TestError

		bar.clear()
		if opt.Log != nil {
			fmt.Fprintf(opt.Log, "epoch %d/%d: train loss %.4f, test error %.4f (mean per-image SSE over %d test images), %.1f s (%.0f steps/s), eval %.1f s\n",
				epoch, opt.Epochs, st.TrainLoss, st.TestError, test.Len(), st.Seconds, float64(ran)/st.Seconds, st.EvalSeconds)
		}
		if opt.OutDir != "" {
			// the generator now stands at the start of the next epoch
			if err := writeEpochFiles(opt, model, optimizer, meta, pcgState(pcg), samples, res); err != nil {
				return res, err
			}
			res.Checkpoint = filepath.Join(opt.OutDir, CheckpointFile)
		}
		if opt.Live != nil {
			publishEpoch(opt.Live, model, samples, st)
		}
	}
	if opt.Live != nil {
		opt.Live.Finish(nil)
	}
	return res, nil
}

// meanLoss is the mean of an epoch's step losses, summed in step order so
// that a resumed run computes it exactly as the uninterrupted one.
func meanLoss(loss []float64) float64 {
	sum := 0.0
	for _, l := range loss {
		sum += l
	}
	return sum / float64(len(loss))
}

// progress is the Progress of a run whose shuffling generator stood at
// rng when the epoch in progress began.
func progress(rng [2]uint64, res *Result) *Progress {
	p := &Progress{Shuffle: rng, StepLoss: res.StepLoss}
	for _, e := range res.Epochs {
		p.TestError = append(p.TestError, e.TestError)
	}
	return p
}

// saveInterrupted saves the run stopped by the context error cause before
// step s (0-based) of epoch (1-based), whose shuffle began at rng, and
// returns the error that says so and how it was kept. meta describes the
// last completed epoch.
func saveInterrupted(cause error, opt Options, model *Model, optimizer optim.Optimizer[float32], meta Meta, rng [2]uint64, epoch, s int, res *Result) error {
	where := fmt.Sprintf("in epoch %d after %d of its %d steps, %d steps done in all", epoch, s, stepsPerEpoch(meta.TrainImages, meta.Batch), len(res.StepLoss))
	if opt.OutDir == "" {
		return fmt.Errorf("%w (%w) %s; no output directory, nothing saved", ErrInterrupted, cause, where)
	}
	meta.StepInEpoch, meta.Step = s, len(res.StepLoss)
	if s > 0 {
		meta.TestError = math.NaN() // the weights have moved since the last test
	}
	ck := &Checkpoint{Model: model, Meta: meta, OptimizerState: optimizer.State(), Progress: progress(rng, res)}
	path := filepath.Join(opt.OutDir, CheckpointFile)
	if err := ck.Save(path); err != nil {
		kept := "no checkpoint was saved"
		if _, statErr := os.Stat(path); statErr == nil {
			kept = "the previous checkpoint is kept"
		}
		return fmt.Errorf("%w (%w) %s, and saving the checkpoint failed: %w; %s", ErrInterrupted, cause, where, err, kept)
	}
	res.Checkpoint = path
	return fmt.Errorf("%w (%w) %s; checkpoint saved to %s", ErrInterrupted, cause, where, path)
}

// publishEpoch sends an epoch's test error and reconstruction grid to the
// browser view.
func publishEpoch(l *live.Store, model *Model, samples *tensor.Tensor[float32], st EpochStats) {
	l.Publish(live.Update{Epoch: st.Epoch, Step: st.Steps, Losses: map[string]float64{"test error": st.TestError},
		Message: fmt.Sprintf("epoch %d: test error %.4f", st.Epoch, st.TestError)})
	if samples == nil {
		return
	}
	rec, err := model.Reconstruct(samples)
	if err != nil {
		return
	}
	img, err := viz.PairGrid(samples, rec, 8, 0, 1)
	if err != nil {
		return
	}
	var buf bytes.Buffer
	if png.Encode(&buf, img) == nil {
		l.PublishGrid(buf.Bytes())
	}
}

// writeEpochFiles writes the reconstruction grid, the loss curve and the
// checkpoint of the epoch in meta, each atomically.
func writeEpochFiles(opt Options, model *Model, optimizer optim.Optimizer[float32], meta Meta, rng [2]uint64, samples *tensor.Tensor[float32], res *Result) error {
	if samples != nil {
		rec, err := model.Reconstruct(samples)
		if err != nil {
			return err
		}
		img, err := viz.PairGrid(samples, rec, 8, 0, 1)
		if err != nil {
			return err
		}
		if err := viz.SavePNG(filepath.Join(opt.OutDir, fmt.Sprintf("recon-epoch%d.png", meta.Epoch)), img); err != nil {
			return err
		}
	}
	if err := saveLossCurve(filepath.Join(opt.OutDir, "loss.png"), meta, res); err != nil {
		return err
	}
	if err := saveHistory(filepath.Join(opt.OutDir, HistoryFile), meta, res); err != nil {
		return err
	}
	ck := &Checkpoint{Model: model, Meta: meta, OptimizerState: optimizer.State(), Progress: progress(rng, res)}
	return ck.Save(filepath.Join(opt.OutDir, CheckpointFile))
}

// HistoryFile is the CSV record of a run that each epoch's files include.
const HistoryFile = "history.csv"

// saveHistory writes the numbers of loss.png as a CSV table: per step
// (1-based) its epoch and training loss, and on the last step of each
// epoch the test error measured after it.
func saveHistory(path string, meta Meta, res *Result) error {
	spe := stepsPerEpoch(meta.TrainImages, meta.Batch)
	steps, epochs := make([]float64, len(res.StepLoss)), make([]float64, len(res.StepLoss))
	for i := range steps {
		steps[i], epochs[i] = float64(i+1), float64(i/spe+1)
	}
	var ex, ey []float64
	for _, e := range res.Epochs {
		ex, ey = append(ex, float64(e.Steps)), append(ey, e.TestError)
	}
	return viz.SaveCSV(path, "step", []viz.Series{
		{Name: "epoch", X: steps, Y: epochs},
		{Name: "train_loss", X: steps, Y: res.StepLoss},
		{Name: "test_error", X: ex, Y: ey},
	})
}

// saveLossCurve plots the training loss of every step and the test error
// after every epoch, both per-image SSE, on a log axis (the loss falls by
// two orders of magnitude in the first epoch).
func saveLossCurve(path string, meta Meta, res *Result) error {
	var ex, ey []float64
	for _, e := range res.Epochs {
		ex, ey = append(ex, float64(e.Steps)), append(ey, e.TestError)
	}
	xs := make([]float64, len(res.StepLoss))
	for i := range xs {
		xs[i] = float64(i + 1)
	}
	title := fmt.Sprintf("auto-encoder %v on %s", meta.Config, meta.Dataset)
	return viz.LossCurveWith(path, title, []viz.Series{
		{Name: "training loss (per step)", X: xs, Y: res.StepLoss},
		{Name: "test error (per epoch)", X: ex, Y: ey},
	}, viz.CurveOptions{XLabel: "step", YLabel: "sum of squared errors per image", LogY: true})
}

// bar is the progress display: one bar over every step of the run,
// described with the epoch, the step in the epoch and the last loss;
// the bar itself adds steps/s and the ETA. The zero bar shows nothing.
type bar struct{ pb *progressbar.ProgressBar }

func newBar(w io.Writer, total int) bar {
	if w == nil {
		return bar{}
	}
	return bar{progressbar.NewOptions(total,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetWidth(24),
		progressbar.OptionShowCount(),
		progressbar.OptionShowIts(),
		progressbar.OptionSetItsString("steps"),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionThrottle(150*time.Millisecond),
		progressbar.OptionSetRenderBlankState(true),
	)}
}

func (b bar) step(epoch, epochs, step, steps int, loss float64) {
	if b.pb == nil {
		return
	}
	b.pb.Describe(fmt.Sprintf("epoch %d/%d step %4d/%d loss %8.4f", epoch, epochs, step, steps, loss))
	b.pb.Add(1)
}

// clear removes the bar from its line so an epoch summary can be printed.
func (b bar) clear() {
	if b.pb != nil {
		b.pb.Clear()
	}
}

// finish removes the bar at the end of the run (or on an error, whose
// message then starts on a clean line).
func (b bar) finish() {
	if b.pb != nil {
		b.pb.Clear()
		b.pb.Exit()
	}
}
