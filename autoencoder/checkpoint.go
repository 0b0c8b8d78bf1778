package autoencoder

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/backprop-dev/backprop/nn"
	"github.com/backprop-dev/backprop/safetensors"
	"github.com/backprop-dev/backprop/tensor"
	"github.com/backprop-dev/backprop/training"
)

// CheckpointFile is the name of the checkpoint inside a training run's
// output directory.
const CheckpointFile = training.CheckpointFile

// Format is the format of the checkpoints Save writes (metadata "format").
// Version 1 is every checkpoint written before formats were versioned: no
// "format" entry, otherwise the same layout, read as before. Version 2
// records its format.
var Format = training.Format{Kind: "backprop-autoencoder", Version: 2}

// oldestFormat is the oldest format version Load reads.
const oldestFormat = 1

// ModelKind is the value of the "model" metadata entry that marks an
// auto-encoder checkpoint; a checkpoint with another value (a GAN's) is
// refused with a clear error instead of a list of missing tensors.
const ModelKind = "autoencoder"

// OptimizerPrefix starts the names of the optimizer-state tensors in a
// checkpoint ("optimizer.encoder.weight.exp_avg"), keeping them apart from
// the model's state dict, which a PyTorch reader loads by its own names.
const OptimizerPrefix = "optimizer."

// ProgressPrefix starts the names of the tensors that hold the rest of a
// run's state, what `--resume` needs besides the weights and the optimizer
// state (see Progress). Like the optimizer's, they are plain F64 and I64
// tensors that any safetensors reader loads and a PyTorch state dict
// ignores.
const ProgressPrefix = "train."

// Names of the Progress tensors.
const (
	TensorShuffle   = ProgressPrefix + "shuffle_rng" // I64 [2]: the shuffling PCG's state (hi, lo), bits as int64
	TensorStepLoss  = ProgressPrefix + "step_loss"   // F64 [step]: the loss of every step so far
	TensorTestError = ProgressPrefix + "test_error"  // F64 [epoch]: the test error after every completed epoch
)

// Metadata keys of a checkpoint. Every value is a string, as safetensors
// requires; numbers are written in Go's shortest exact form.
const (
	MetaModel     = "model"         // ModelKind
	MetaInput     = "input_size"    // Config.Input
	MetaHidden    = "hidden_size"   // Config.Hidden
	MetaImageH    = "image_height"  // height of the training images
	MetaImageW    = "image_width"   // width of the training images
	MetaEpoch     = "epoch"         // epochs completed when the checkpoint was written
	MetaEpochs    = "epochs"        // epochs the run was asked for
	MetaStep      = "step"          // optimizer steps taken
	MetaInEpoch   = "step_in_epoch" // steps done in epoch+1 (0 at an epoch boundary)
	MetaDataset   = "dataset"       // --data of the run
	MetaTrainSize = "train_images"  // training images used (after --limit)
	MetaOptimizer = "optimizer"     // "adam" or "sgd"
	MetaLR        = "lr"            // learning rate
	MetaMomentum  = "momentum"      // SGD momentum (sgd only)
	MetaBatch     = "batch_size"    // mini-batch size
	MetaSeed      = "seed"          // seed of initialization and shuffling
	MetaTestError = "test_error"    // mean per-image SSE on the test set after this epoch
	MetaLoss      = "loss"          // description of the training objective
)

// lossDescription is the MetaLoss value: the objective in words, so a
// reader of the file knows what test_error measures.
const lossDescription = "sum of squared errors per image, averaged over the batch"

// Meta is what a checkpoint records about its model and the run that
// produced it. Only Config is needed to rebuild the model; the rest
// documents the run and is zero when a file does not record it.
type Meta struct {
	Config         Config  // the architecture
	ImageH, ImageW int     // image size the model was trained on (0 if unknown)
	Epoch, Epochs  int     // epochs done, epochs planned
	Step           int     // optimizer steps taken
	StepInEpoch    int     // steps done in the epoch after Epoch (0 at an epoch boundary)
	Dataset        string  // training data set (--data)
	TrainImages    int     // training images used
	Optimizer      string  // "adam" or "sgd"
	LR, Momentum   float64 // learning rate; SGD momentum
	Batch          int     // mini-batch size
	Seed           uint64  // seed of initialization and shuffling
	TestError      float64 // mean per-image SSE on the test set after epoch Epoch (NaN if unknown)
}

// metadata renders m as safetensors metadata. The output depends only on
// m, so equal runs write byte-identical files. An unknown (NaN) test error
// is left out.
func (m Meta) metadata() map[string]string {
	itoa := strconv.Itoa
	ftoa := func(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
	md := map[string]string{
		MetaModel:     ModelKind,
		MetaInput:     itoa(m.Config.Input),
		MetaHidden:    itoa(m.Config.Hidden),
		MetaImageH:    itoa(m.ImageH),
		MetaImageW:    itoa(m.ImageW),
		MetaEpoch:     itoa(m.Epoch),
		MetaEpochs:    itoa(m.Epochs),
		MetaStep:      itoa(m.Step),
		MetaInEpoch:   itoa(m.StepInEpoch),
		MetaDataset:   m.Dataset,
		MetaTrainSize: itoa(m.TrainImages),
		MetaOptimizer: m.Optimizer,
		MetaLR:        ftoa(m.LR),
		MetaBatch:     itoa(m.Batch),
		MetaSeed:      strconv.FormatUint(m.Seed, 10),
		MetaLoss:      lossDescription,
	}
	if !math.IsNaN(m.TestError) {
		md[MetaTestError] = ftoa(m.TestError)
	}
	if m.Optimizer == "sgd" {
		md[MetaMomentum] = ftoa(m.Momentum)
	}
	return md
}

// Checkpoint is a trained model with its metadata and, when saved during
// training, the optimizer's state and the run's Progress, everything
// Train needs to continue the run (Options.Resume) as if it had never
// stopped.
type Checkpoint struct {
	Path  string // the file it was loaded from ("" if not loaded)
	Model *Model // the auto-encoder with the checkpoint's weights
	Meta  Meta   // architecture and description of the run
	// OptimizerState is the optimizer's State(), names without
	// OptimizerPrefix; nil when the file holds none.
	OptimizerState []nn.StateEntry[float32]
	// Progress is the rest of the run's state; nil when the file holds
	// none (a checkpoint of another tool, or of a version before
	// --resume), which can be evaluated but not resumed.
	Progress *Progress
}

// Progress is the part of a run's state that is neither weights nor
// optimizer state, saved under ProgressPrefix.
type Progress struct {
	// Shuffle is the state (hi, lo) of the PCG generator that shuffles
	// the training images, as it was at the start of the epoch in
	// progress, epoch Meta.Epoch+1: drawing that epoch's batches from it
	// and skipping the first Meta.StepInEpoch of them gives exactly the
	// batches the uninterrupted run would still see.
	Shuffle [2]uint64
	// StepLoss is the loss of every step so far (Meta.Step values), so
	// that loss.png of a resumed run covers the whole run.
	StepLoss []float64
	// TestError is the test error after each completed epoch (Meta.Epoch
	// values).
	TestError []float64
}

// wrapCheckpointWriter, when non-nil, wraps the writer a checkpoint is
// encoded to. Tests use it to make a write fail part-way.
var wrapCheckpointWriter func(io.Writer) io.Writer

// encode builds the safetensors file of c: the model's state dict under
// its PyTorch names (F32), the optimizer state under OptimizerPrefix (F32,
// step counts as I64 scalars, as torch.optim stores them) and the
// metadata.
func (c *Checkpoint) encode() (*safetensors.File, error) {
	if c.Model == nil {
		return nil, errors.New("autoencoder: checkpoint without a model")
	}
	if c.Meta.Config != c.Model.Config {
		return nil, fmt.Errorf("autoencoder: checkpoint metadata describes %v, the model is %v", c.Meta.Config, c.Model.Config)
	}
	f := safetensors.NewFile()
	for _, e := range c.Model.StateDict() {
		if err := f.AddF32(e.Name, e.Tensor); err != nil {
			return nil, err
		}
	}
	for _, e := range c.OptimizerState {
		name := OptimizerPrefix + e.Name
		var err error
		if e.Int {
			if e.Tensor.Len() != 1 {
				return nil, fmt.Errorf("autoencoder: optimizer state %q: integer entry of shape %s, want a scalar", e.Name, tensor.FormatShape(e.Tensor.Shape()))
			}
			err = f.AddI64(name, int64(e.Tensor.Data()[0]))
		} else {
			err = f.AddF32(name, e.Tensor)
		}
		if err != nil {
			return nil, err
		}
	}
	if p := c.Progress; p != nil {
		if len(p.StepLoss) != c.Meta.Step || len(p.TestError) != c.Meta.Epoch {
			return nil, fmt.Errorf("autoencoder: checkpoint progress has %d step losses and %d test errors, the metadata says step %d, epoch %d",
				len(p.StepLoss), len(p.TestError), c.Meta.Step, c.Meta.Epoch)
		}
		errs := []error{
			f.AddI64s(TensorShuffle, []int64{int64(p.Shuffle[0]), int64(p.Shuffle[1])}),
			f.AddF64(TensorStepLoss, tensor.MustFromSlice(slices.Clone(p.StepLoss), len(p.StepLoss))),
			f.AddF64(TensorTestError, tensor.MustFromSlice(slices.Clone(p.TestError), len(p.TestError))),
		}
		if err := errors.Join(errs...); err != nil {
			return nil, err
		}
	}
	f.Metadata = c.Meta.metadata()
	return f, nil
}

// Save writes the checkpoint to path in Format, atomically
// (training.SaveCheckpoint): a failure at any point (full disk, crash,
// interrupt) leaves the previous checkpoint at path intact. Equal
// checkpoints give identical bytes.
func (c *Checkpoint) Save(path string) error {
	f, err := c.encode()
	if err != nil {
		return fmt.Errorf("autoencoder: checkpoint %s: %w", path, err)
	}
	return training.SaveCheckpoint(path, Format, f, wrapCheckpointWriter)
}

// CheckpointError is a checkpoint that cannot be used as an auto-encoder:
// unreadable, truncated, of another model, or of another architecture. It
// names the file; Err says what is wrong with it.
type CheckpointError struct {
	Path string // the checkpoint file
	Err  error  // the problem; an *nn.LoadError for a shape or key mismatch
}

// Error implements error.
func (e *CheckpointError) Error() string {
	return fmt.Sprintf("checkpoint %s: %v", e.Path, e.Err)
}

// Unwrap returns the underlying problem.
func (e *CheckpointError) Unwrap() error { return e.Err }

// Load reads an auto-encoder checkpoint written by Save, by an earlier
// version (format 1), or by any tool that writes the same tensor names: it
// rebuilds the model from the metadata (or, when the file has none, from
// the shape of "encoder.weight"), loads the weights, and returns the
// optimizer state found under OptimizerPrefix and the Progress under
// ProgressPrefix. Every failure is a *CheckpointError naming the file and
// what is wrong: a truncated or corrupt file, a checkpoint of another
// model or of a format this version does not read (naming it), a tensor
// holding NaN or Inf (a *training.NonFiniteError), tensors whose names or
// shapes do not fit (with the key and both shapes), or a run state that
// contradicts itself.
func Load(path string) (*Checkpoint, error) {
	f, err := readCheckpoint(path)
	if err != nil {
		return nil, err
	}
	meta, err := parseMeta(f)
	if err != nil {
		return nil, &CheckpointError{Path: path, Err: err}
	}
	m, err := New(meta.Config, nil)
	if err != nil {
		return nil, &CheckpointError{Path: path, Err: err}
	}
	opt, err := loadTensors(m, f)
	if err != nil {
		return nil, &CheckpointError{Path: path, Err: err}
	}
	prog, err := parseProgress(f, meta)
	if err != nil {
		return nil, &CheckpointError{Path: path, Err: err}
	}
	return &Checkpoint{Path: path, Model: m, Meta: meta, OptimizerState: opt, Progress: prog}, nil
}

// parseProgress reads the Progress tensors of f, nil when there are none,
// and checks them against each other and the metadata.
func parseProgress(f *safetensors.File, meta Meta) (*Progress, error) {
	var have, lack []string
	for _, name := range []string{TensorShuffle, TensorStepLoss, TensorTestError} {
		if _, ok := f.Get(name); ok {
			have = append(have, strconv.Quote(name))
		} else {
			lack = append(lack, strconv.Quote(name))
		}
	}
	for _, name := range f.Names() {
		if strings.HasPrefix(name, ProgressPrefix) && name != TensorShuffle && name != TensorStepLoss && name != TensorTestError {
			return nil, fmt.Errorf("unexpected tensor %q: the training state is %q, %q and %q", name, TensorShuffle, TensorStepLoss, TensorTestError)
		}
	}
	if len(have) == 0 {
		return nil, nil
	}
	if len(lack) > 0 {
		return nil, fmt.Errorf("incomplete training state: it has %s but lacks %s", strings.Join(have, ", "), strings.Join(lack, ", "))
	}
	p := &Progress{}
	rng, err := f.I64s(TensorShuffle)
	if err != nil {
		return nil, err
	}
	if len(rng) != 2 {
		return nil, fmt.Errorf("tensor %q has %d values, want the 2 words of a PCG state", TensorShuffle, len(rng))
	}
	p.Shuffle = [2]uint64{uint64(rng[0]), uint64(rng[1])}
	for _, s := range []struct {
		name string
		dst  *[]float64
		want int
		what string
	}{
		{TensorStepLoss, &p.StepLoss, meta.Step, "one per step: metadata " + MetaStep},
		{TensorTestError, &p.TestError, meta.Epoch, "one per completed epoch: metadata " + MetaEpoch},
	} {
		t, err := f.F64(s.name)
		if err != nil {
			return nil, err
		}
		if len(t.Shape()) != 1 || t.Len() != s.want {
			return nil, fmt.Errorf("tensor %q has shape %s, want [%d] (%s = %d)", s.name, tensor.FormatShape(t.Shape()), s.want, s.what, s.want)
		}
		*s.dst = t.Data()
	}
	if meta.Batch <= 0 || meta.TrainImages <= 0 {
		return nil, fmt.Errorf("training state without the metadata %s and %s it belongs to", MetaBatch, MetaTrainSize)
	}
	spe := stepsPerEpoch(meta.TrainImages, meta.Batch)
	if meta.StepInEpoch >= spe || meta.Step != meta.Epoch*spe+meta.StepInEpoch {
		return nil, fmt.Errorf("metadata %s %d, %s %d and %s %d do not fit epochs of %d steps (%d images in batches of %d)",
			MetaEpoch, meta.Epoch, MetaInEpoch, meta.StepInEpoch, MetaStep, meta.Step, spe, meta.TrainImages, meta.Batch)
	}
	return p, nil
}

// stepsPerEpoch is the number of batches of an epoch over n images, the
// last one shorter when batch does not divide n.
func stepsPerEpoch(n, batch int) int { return (n + batch - 1) / batch }

// LoadWeights loads the model weights of the checkpoint at path into m,
// whose architecture is fixed: a checkpoint of another hidden or input
// size fails with a *CheckpointError wrapping an *nn.LoadError that names
// each mismatched key with the checkpoint's and the model's shapes. m is
// unchanged on error. It returns the checkpoint's metadata.
func (m *Model) LoadWeights(path string) (Meta, error) {
	f, err := readCheckpoint(path)
	if err != nil {
		return Meta{}, err
	}
	meta, err := parseMeta(f)
	if err != nil {
		return Meta{}, &CheckpointError{Path: path, Err: err}
	}
	if _, err := loadTensors(m, f); err != nil {
		return Meta{}, &CheckpointError{Path: path, Err: err}
	}
	return meta, nil
}

// readCheckpoint reads the safetensors file at path and checks its format
// and that every number in it is finite.
func readCheckpoint(path string) (*safetensors.File, error) {
	f, err := safetensors.Read(path)
	if err != nil {
		return nil, &CheckpointError{Path: path, Err: readProblem(err, path)}
	}
	if _, err := training.CheckFormat(f.Metadata, Format, oldestFormat); err != nil {
		return nil, &CheckpointError{Path: path, Err: err}
	}
	if err := training.CheckFinite(f); err != nil {
		return nil, &CheckpointError{Path: path, Err: err}
	}
	return f, nil
}

// readProblem strips the path the safetensors reader puts in its errors
// (CheckpointError names the file already) and hints at the usual cause.
func readProblem(err error, path string) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return fmt.Errorf("cannot read it: %w", pe.Err)
	}
	msg := strings.TrimPrefix(err.Error(), "safetensors "+path+": ")
	if !strings.Contains(msg, "corrupt") {
		msg += " (truncated or corrupt file?)"
	}
	return fmt.Errorf("not a valid safetensors file: %s", msg)
}

// parseMeta reads the architecture and run description from f's metadata.
// A file without metadata (written by another tool) gets its architecture
// from the shape of "encoder.weight".
func parseMeta(f *safetensors.File) (Meta, error) {
	md := f.Metadata
	meta := Meta{TestError: math.NaN()}
	if kind, ok := md[MetaModel]; ok && kind != ModelKind {
		return meta, fmt.Errorf("it holds a %q model, not an auto-encoder (metadata %s = %q, want %q)", kind, MetaModel, kind, ModelKind)
	}
	var errs []string
	intField := func(key string, dst *int, positive bool) {
		s, ok := md[key]
		if !ok {
			return
		}
		v, err := strconv.Atoi(s)
		if err != nil || v < 0 || positive && v == 0 || v > maxUnits*maxUnits {
			want := "an integer ≥ 0"
			if positive {
				want = "a positive integer"
			}
			errs = append(errs, fmt.Sprintf("metadata %s = %q, want %s", key, s, want))
			return
		}
		*dst = v
	}
	floatField := func(key string, dst *float64) {
		if s, ok := md[key]; ok {
			v, err := strconv.ParseFloat(s, 64)
			if err != nil {
				errs = append(errs, fmt.Sprintf("metadata %s = %q, want a number", key, s))
				return
			}
			*dst = v
		}
	}
	intField(MetaInput, &meta.Config.Input, true)
	intField(MetaHidden, &meta.Config.Hidden, true)
	intField(MetaImageH, &meta.ImageH, false)
	intField(MetaImageW, &meta.ImageW, false)
	intField(MetaEpoch, &meta.Epoch, false)
	intField(MetaEpochs, &meta.Epochs, false)
	intField(MetaStep, &meta.Step, false)
	intField(MetaInEpoch, &meta.StepInEpoch, false)
	intField(MetaTrainSize, &meta.TrainImages, false)
	intField(MetaBatch, &meta.Batch, false)
	floatField(MetaLR, &meta.LR)
	floatField(MetaMomentum, &meta.Momentum)
	floatField(MetaTestError, &meta.TestError)
	if s, ok := md[MetaSeed]; ok {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			errs = append(errs, fmt.Sprintf("metadata %s = %q, want an unsigned integer", MetaSeed, s))
		}
		meta.Seed = v
	}
	meta.Dataset = md[MetaDataset]
	meta.Optimizer = md[MetaOptimizer]
	if len(errs) > 0 {
		return meta, errors.New(strings.Join(errs, "; "))
	}
	if meta.ImageH*meta.ImageW != 0 && meta.ImageH*meta.ImageW != meta.Config.Input && meta.Config.Input != 0 {
		return meta, fmt.Errorf("metadata says %d×%d images but input size %d", meta.ImageH, meta.ImageW, meta.Config.Input)
	}

	// Sizes the metadata does not give come from the encoder's weight
	// (Hidden, Input), as a PyTorch state dict would provide them.
	if meta.Config.Input == 0 || meta.Config.Hidden == 0 {
		w, ok := f.Get("encoder.weight")
		if !ok {
			return meta, fmt.Errorf("no tensor \"encoder.weight\" and no %s/%s metadata: it is not an auto-encoder checkpoint (it holds %s)",
				MetaInput, MetaHidden, listNames(f.Names()))
		}
		if len(w.Shape) != 2 || w.Shape[0] == 0 || w.Shape[1] == 0 {
			return meta, fmt.Errorf("tensor \"encoder.weight\" has shape %s, want [hidden×input]", tensor.FormatShape(w.Shape))
		}
		if meta.Config.Hidden == 0 {
			meta.Config.Hidden = w.Shape[0]
		}
		if meta.Config.Input == 0 {
			meta.Config.Input = w.Shape[1]
		}
	}
	if err := meta.Config.Validate(); err != nil {
		return meta, err
	}
	return meta, nil
}

// listNames renders up to 6 tensor names for an error message.
func listNames(names []string) string {
	if len(names) == 0 {
		return "no tensors"
	}
	const show = 6
	q := make([]string, 0, show)
	for i, n := range names {
		if i == show {
			q = append(q, fmt.Sprintf("… %d more", len(names)-show))
			break
		}
		q = append(q, strconv.Quote(n))
	}
	return "tensors " + strings.Join(q, ", ")
}

// loadTensors loads the model tensors of f into m (strictly: every model
// entry present with its shape, no other tensor outside OptimizerPrefix
// and ProgressPrefix) and returns the optimizer state. m is unchanged on
// error.
func loadTensors(m *Model, f *safetensors.File) ([]nn.StateEntry[float32], error) {
	var sd, opt []nn.StateEntry[float32]
	var errs []string
	for _, name := range f.Names() {
		if strings.HasPrefix(name, ProgressPrefix) {
			continue // parseProgress
		}
		raw, _ := f.Get(name)
		if oname, ok := strings.CutPrefix(name, OptimizerPrefix); ok {
			switch raw.DType {
			case safetensors.I64:
				v, err := f.I64(name)
				if err != nil {
					errs = append(errs, err.Error())
					continue
				}
				opt = append(opt, nn.StateEntry[float32]{Name: oname, Tensor: tensor.Scalar(float32(v)), Buffer: true, Int: true})
			case safetensors.F32:
				t, err := f.F32(name)
				if err != nil {
					errs = append(errs, err.Error())
					continue
				}
				opt = append(opt, nn.StateEntry[float32]{Name: oname, Tensor: t, Buffer: true})
			default:
				errs = append(errs, fmt.Sprintf("optimizer tensor %q has dtype %s, want F32 or I64", name, raw.DType))
			}
			continue
		}
		if raw.DType != safetensors.F32 {
			errs = append(errs, fmt.Sprintf("tensor %q has dtype %s, want F32", name, raw.DType))
			continue
		}
		t, err := f.F32(name)
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		sd = append(sd, nn.StateEntry[float32]{Name: name, Tensor: t})
	}
	if len(errs) > 0 {
		return nil, errors.New(strings.Join(errs, "; "))
	}
	if err := nn.LoadStateDict[float32](m, sd); err != nil {
		var le *nn.LoadError
		if errors.As(err, &le) {
			return nil, &archError{model: m.Config, err: le}
		}
		return nil, err
	}
	return opt, nil
}

// archError is an nn.LoadError with the architecture the checkpoint was
// loaded into, so the message says what the model expected.
type archError struct {
	model Config
	err   *nn.LoadError
}

// Error implements error: the model's architecture, then every mismatch.
func (e *archError) Error() string {
	return fmt.Sprintf("does not fit the auto-encoder %v: %s", e.model, strings.TrimPrefix(e.err.Error(), "nn: cannot load state dict: "))
}

// Unwrap returns the *nn.LoadError.
func (e *archError) Unwrap() error { return e.err }
