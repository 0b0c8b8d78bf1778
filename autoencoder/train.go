package autoencoder

import (
	"context"
	"errors"
	"fmt"
	"image"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/backprop-dev/backprop/autograd"
	"github.com/backprop-dev/backprop/data"
	"github.com/backprop-dev/backprop/nn"
	"github.com/backprop-dev/backprop/optim"
	"github.com/backprop-dev/backprop/tensor"
	"github.com/backprop-dev/backprop/training"
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

// Random streams of the run's seed (training.SeededPCG): the stream
// separates initialization from shuffling, so the batch order does not
// depend on the model's size and vice versa.
var (
	initStream    = training.Stream("init")
	shuffleStream = training.Stream("shuf")
)

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
	// Hooks follow the run: the command line attaches its progress bar,
	// its line per epoch and the live browser view here. A step reports
	// "loss"; an epoch "train loss" (the mean of its step losses) and "test
	// error", and the reconstruction grid as its picture.
	Hooks training.Hooks
	// Resume, when set, continues the run saved in this checkpoint
	// instead of starting a new one; Checkpoint.ResumeOptions fills in the
	// other options. Epochs is then the total to reach, counting the
	// epochs the checkpoint has done.
	Resume *Checkpoint
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
// opt.OutDir. The loop is training.Loop's; opt.Hooks follow it.
//
// A cancelled ctx stops training between steps: Train then saves a
// checkpoint of the step reached (atomically; a failed write keeps the
// previous one) and returns a *training.InterruptedError, which wraps
// ErrInterrupted and the context's error. With opt.Resume, Train continues
// the saved run from that step: the weights, the optimizer state, the
// shuffling generator's state and the loss history come from the
// checkpoint, so the result is bit for bit that of a run never
// interrupted, and Result holds the whole run's losses and epochs (earlier
// epochs without timings). A non-finite loss stops training with an error
// wrapping training.ErrNonFinite before anything of that epoch is written.
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
		model, err = New(cfg, rand.New(training.SeededPCG(opt.Seed, initStream)))
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
	pcg := training.SeededPCG(opt.Seed, shuffleStream)
	if ck != nil {
		pcg = rand.NewPCG(ck.Progress.Shuffle[0], ck.Progress.Shuffle[1])
	}
	shuffle := rand.New(pcg)

	// The grid shows the first Samples test images above their
	// reconstructions after every epoch.
	var samples *tensor.Tensor[float32]
	if n := min(opt.Samples, test.Len()); n > 0 {
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
	plan := training.Plan{Epochs: opt.Epochs, StepsPerEpoch: spe}
	if ck != nil {
		plan.Epoch, plan.StepInEpoch = ck.Meta.Epoch, ck.Meta.StepInEpoch
		res.StepLoss = slices.Clone(ck.Progress.StepLoss)
		for e, te := range ck.Progress.TestError {
			res.Epochs = append(res.Epochs, EpochStats{Epoch: e + 1, Steps: (e + 1) * spe,
				TrainLoss: meanLoss(res.StepLoss[e*spe : (e+1)*spe]), TestError: te})
		}
		meta.Epoch, meta.Step = ck.Meta.Epoch, ck.Meta.Step
		if n := len(res.Epochs); n > 0 {
			meta.TestError = res.Epochs[n-1].TestError
		}
		if plan.Epoch >= opt.Epochs {
			return res, nil // nothing left to do
		}
	}

	var (
		batches  [][]int
		epochRNG [2]uint64 // the shuffling generator at the start of the epoch in progress
		start    time.Time
	)
	loop := training.Loop{Plan: plan, Hooks: opt.Hooks}
	loop.BeginEpoch = func(int) error {
		epochRNG = training.PCGState(pcg)
		batches, err = train.Batches(shuffle, opt.Batch)
		start = time.Now()
		return err
	}
	loop.Step = func(epoch, s int) ([]training.Metric, error) {
		x, _, err := train.Batch(batches[s])
		if err != nil {
			return nil, err
		}
		_, loss, err := model.Loss(x)
		if err != nil {
			return nil, err
		}
		l := float64(loss.Value.Data()[0])
		if !training.Finite(l) {
			return nil, fmt.Errorf("autoencoder: training diverged at epoch %d, step %d: %w (%v; try a smaller --lr); the last checkpoint written is kept",
				epoch, s+1, training.ErrNonFinite, l)
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
		return []training.Metric{{Name: "loss", Value: l}}, nil
	}
	loop.EndEpoch = func(epoch int) (training.EpochEnd, error) {
		st := EpochStats{Epoch: epoch, Steps: len(res.StepLoss), TrainLoss: meanLoss(res.StepLoss[len(res.StepLoss)-spe:]), Seconds: time.Since(start).Seconds()}
		evalStart := time.Now()
		var err error
		if st.TestError, err = model.TestError(test); err != nil {
			return training.EpochEnd{}, err
		}
		st.EvalSeconds = time.Since(evalStart).Seconds()
		res.Epochs = append(res.Epochs, st)
		meta.Epoch, meta.Step, meta.StepInEpoch, meta.TestError = epoch, len(res.StepLoss), 0, st.TestError
		end := training.EpochEnd{Metrics: []training.Metric{{Name: "train loss", Value: st.TrainLoss}, {Name: "test error", Value: st.TestError}}}
		if samples != nil {
			if end.Image, err = reconstructionGrid(model, samples); err != nil {
				return end, err
			}
		}
		if opt.OutDir != "" {
			// the generator now stands at the start of the next epoch
			if end.Files, err = writeEpochFiles(opt, model, optimizer, meta, training.PCGState(pcg), end.Image, res); err != nil {
				return end, err
			}
			res.Checkpoint = filepath.Join(opt.OutDir, CheckpointFile)
		}
		return end, nil
	}
	loop.Interrupt = func(epoch, s int) (string, error) {
		return saveInterrupted(opt, model, optimizer, meta, epochRNG, s, res)
	}
	return res, loop.Run(ctx)
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

// saveInterrupted saves the run stopped before step s (0-based) of the
// epoch after meta's, whose shuffle began at rng, and returns the
// checkpoint's path ("" without an output directory).
func saveInterrupted(opt Options, model *Model, optimizer optim.Optimizer[float32], meta Meta, rng [2]uint64, s int, res *Result) (string, error) {
	if opt.OutDir == "" {
		return "", nil
	}
	meta.StepInEpoch, meta.Step = s, len(res.StepLoss)
	if s > 0 {
		meta.TestError = math.NaN() // the weights have moved since the last test
	}
	ck := &Checkpoint{Model: model, Meta: meta, OptimizerState: optimizer.State(), Progress: progress(rng, res)}
	path := filepath.Join(opt.OutDir, CheckpointFile)
	if err := ck.Save(path); err != nil {
		return path, err
	}
	res.Checkpoint = path
	return path, nil
}

// reconstructionGrid pictures samples above the model's reconstructions of
// them, 8 per row.
func reconstructionGrid(model *Model, samples *tensor.Tensor[float32]) (image.Image, error) {
	rec, err := model.Reconstruct(samples)
	if err != nil {
		return nil, err
	}
	return viz.PairGrid(samples, rec, 8, 0, 1)
}

// writeEpochFiles writes the reconstruction grid, the loss curve, the
// history and the checkpoint of the epoch in meta, each atomically, and
// returns their names.
func writeEpochFiles(opt Options, model *Model, optimizer optim.Optimizer[float32], meta Meta, rng [2]uint64, grid image.Image, res *Result) ([]string, error) {
	var files []string
	if grid != nil {
		name := fmt.Sprintf("recon-epoch%d.png", meta.Epoch)
		path := filepath.Join(opt.OutDir, name)
		if err := training.FileError(path, viz.SavePNG(path, grid)); err != nil {
			return nil, err
		}
		files = append(files, name)
	}
	hist := history(meta, res)
	path := filepath.Join(opt.OutDir, training.LossPlotFile)
	title := fmt.Sprintf("auto-encoder %v on %s", meta.Config, meta.Dataset)
	if err := training.FileError(path, hist.Plot(path, title, viz.CurveOptions{XLabel: "step", YLabel: "sum of squared errors per image", LogY: true})); err != nil {
		return nil, err
	}
	path = filepath.Join(opt.OutDir, HistoryFile)
	if err := training.FileError(path, hist.WriteCSV(path)); err != nil {
		return nil, err
	}
	ck := &Checkpoint{Model: model, Meta: meta, OptimizerState: optimizer.State(), Progress: progress(rng, res)}
	if err := ck.Save(filepath.Join(opt.OutDir, CheckpointFile)); err != nil {
		return nil, err
	}
	return append(files, training.LossPlotFile, HistoryFile, CheckpointFile), nil
}

// HistoryFile is the CSV record of a run that each epoch's files include.
const HistoryFile = training.HistoryFile

// history is the record of history.csv and loss.png: per step its training
// loss, and after each epoch the test error, both per-image SSE (the loss
// falls by two orders of magnitude in the first epoch, hence the log axis).
func history(meta Meta, res *Result) training.History {
	te := make([]float64, len(res.Epochs))
	for i, e := range res.Epochs {
		te[i] = e.TestError
	}
	return training.History{
		StepsPerEpoch: stepsPerEpoch(meta.TrainImages, meta.Batch),
		Steps:         []training.Series{{Column: "train_loss", Legend: "training loss (per step)", Values: res.StepLoss}},
		Epochs:        []training.Series{{Column: "test_error", Legend: "test error (per epoch)", Values: te}},
	}
}
