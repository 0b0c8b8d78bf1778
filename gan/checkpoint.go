package gan

import (
	"fmt"
	"io"
	"math/rand/v2"
	"strconv"
	"strings"

	"github.com/backprop-dev/backprop/nn"
	"github.com/backprop-dev/backprop/optim"
	"github.com/backprop-dev/backprop/safetensors"
	"github.com/backprop-dev/backprop/tensor"
	"github.com/backprop-dev/backprop/training"
)

// Format is the format of the DCGAN checkpoints Save writes (metadata
// "format"); a file without one is refused, so that a checkpoint of
// another model is reported as such rather than as a list of missing
// tensors. Version 1 seeded its random streams with rand.NewPCG(seed,
// stream) directly; version 2 derives them through SplitMix64
// (training.SeededPCG) and records the epochs the run is to reach. Both
// load, and a version-1 run resumes with its own seeding, bit for bit.
// Version 3 is written by runs of another recipe than the reference
// (Recipe): it records the recipe in the metadata ("recipe.*" keys), and
// the models' entries follow it (a conditional G's "G.0.weight" is its
// class embedding; a spectral-normalized D has "weight_orig", "weight_u",
// "weight_v"; with an EMA "G." holds the average and "G_train." the
// trained weights). Reference runs still write version 2, which earlier
// versions of backprop read.
var Format = training.Format{Kind: "backprop-dcgan28", Version: 3}

// oldestFormat is the oldest format version OpenCheckpoint reads.
const oldestFormat = 1

// metaEpochs is the metadata key of the epochs the run is to reach
// (format 2).
const metaEpochs = "epochs"

// Names of the checkpoint's parts. Model entries keep PyTorch's
// state_dict names under a prefix ("G.0.weight", "D.3.running_var"), as
// an nn.ModuleDict{"G", "D"} would name them; optimizer entries are
// "optG.<parameter>.<field>" with torch.optim.Adam's field names.
const (
	prefixG    = "G."
	prefixGT   = "G_train." // the trained generator when "G." holds its EMA
	prefixD    = "D."
	prefixOptG = "optG."
	prefixOptD = "optD."
	keyRNG     = "rng.noise"           // U8: the noise generator's PCG state (MarshalBinary)
	keyFixed   = "fixed_noise"         // F32 (64, 100)
	keySeed    = "train.seed"          // U64
	keyEpoch   = "train.epoch"         // I64: completed epochs
	keyInEpoch = "train.step_in_epoch" // I64: steps done in the current epoch
	keyStep    = "train.step"          // I64: global step count
	keyBatch   = "train.batch"         // I64
	keyLimit   = "train.limit"         // I64: 0 for the whole training set
	keyImages  = "train.images"        // I64: number of training images used
	keyHist    = "history."            // F64 per-step series: d_loss, g_loss, d_x, d_g_z
)

// wrapCheckpointWriter, when set by a test, wraps the writer of Save, to
// simulate a full disk part-way through a checkpoint.
var wrapCheckpointWriter func(io.Writer) io.Writer

// Save writes the complete state of the run to path as a safetensors
// file, atomically (training.SaveCheckpoint): a crash, a kill or a full
// disk during the write leaves the previous file at path intact.
func (t *Trainer) Save(path string) error {
	f := safetensors.NewFile()
	f.Metadata["data"] = t.Config.Data
	if t.Epochs > 0 {
		f.Metadata[metaEpochs] = strconv.Itoa(t.Epochs)
	}
	f.Metadata["epoch"] = strconv.Itoa(t.Epoch)
	f.Metadata["step"] = strconv.FormatInt(t.Step, 10)
	f.Metadata["seed"] = strconv.FormatUint(t.Config.Seed, 10)
	r := t.Config.Recipe
	f.Metadata["recipe"] = fmt.Sprintf("Adam lr %g betas (%g, %g), batch %d, z %d, BCE-with-logits, non-saturating G loss", LearningRate, Beta1, Beta2, t.Config.Batch, ZDim)
	if !r.IsReference() {
		f.Metadata["recipe"] = fmt.Sprintf("Adam betas (%g, %g), batch %d, z %d; %s", Beta1, Beta2, t.Config.Batch, ZDim, r)
		r.metadata(f.Metadata)
	}
	if err := addStateDict(f, prefixG, t.SampleGenerator().StateDict()); err != nil {
		return err
	}
	if t.EMA != nil {
		if err := addStateDict(f, prefixGT, t.G.StateDict()); err != nil {
			return err
		}
	}
	if err := addStateDict(f, prefixD, t.D.StateDict()); err != nil {
		return err
	}
	if err := addStateDict(f, prefixOptG, t.OptG.State()); err != nil {
		return err
	}
	if err := addStateDict(f, prefixOptD, t.OptD.State()); err != nil {
		return err
	}
	rngState, err := t.noise.MarshalBinary()
	if err != nil {
		return fmt.Errorf("gan: save %s: noise generator state: %w", path, err)
	}
	errs := []error{
		f.Add(keyRNG, &safetensors.Tensor{DType: safetensors.U8, Shape: []int{len(rngState)}, Data: rngState}),
		f.AddF32(keyFixed, t.Fixed),
		f.AddU64(keySeed, t.Config.Seed),
		f.AddI64(keyEpoch, int64(t.Epoch)),
		f.AddI64(keyInEpoch, int64(t.StepInEpoch)),
		f.AddI64(keyStep, t.Step),
		f.AddI64(keyBatch, int64(t.Config.Batch)),
		f.AddI64(keyLimit, int64(t.Config.Limit)),
		f.AddI64(keyImages, int64(t.images.Dim(0))),
	}
	for name, s := range map[string][]float64{"d_loss": t.History.DLoss, "g_loss": t.History.GLoss, "d_x": t.History.DX, "d_g_z": t.History.DGZ} {
		errs = append(errs, f.AddF64(keyHist+name, tensor.MustFromSlice(append([]float64{}, s...), len(s))))
	}
	for _, err := range errs {
		if err != nil {
			return fmt.Errorf("gan: save %s: %w", path, err)
		}
	}
	format := Format
	format.Version = t.format // a resumed format-1 run keeps its seeding, and says so
	if format.Version == Format.Version && r.IsReference() {
		format.Version = 2 // what earlier versions of backprop read
	}
	return training.SaveCheckpoint(path, format, f, wrapCheckpointWriter)
}

// addStateDict stores entries under prefix: float tensors as F32, the
// integer ones (num_batches_tracked, Adam's step) as I64 as PyTorch does.
func addStateDict(f *safetensors.File, prefix string, sd []nn.StateEntry[float32]) error {
	for _, e := range sd {
		var err error
		if e.Int {
			err = f.AddI64(prefix+e.Name, int64(e.Tensor.Data()[0]))
		} else {
			err = f.AddF32(prefix+e.Name, e.Tensor)
		}
		if err != nil {
			return fmt.Errorf("gan: save: %w", err)
		}
	}
	return nil
}

// Checkpoint is a DCGAN checkpoint opened for sampling or resuming.
type Checkpoint struct {
	Path   string // the file it was read from
	Config Config // data set, seed, limit and batch of the run
	// Epoch is the number of completed epochs, StepInEpoch the steps done
	// in the next one, Step the global step count.
	Epoch, StepInEpoch int
	Step               int64
	Images             int // training images the run used
	// Epochs is the number of epochs the run was to reach, 0 when the
	// checkpoint does not say (format 1).
	Epochs int
	// Format is the checkpoint's format version (1 or 2).
	Format int
	file   *safetensors.File
}

// OpenCheckpoint reads a checkpoint written by Trainer.Save, of this
// version or an earlier one, and checks that it is one: the format tag
// (a checkpoint of another model or of an unknown version is refused,
// naming its format) and the run's counters must be there, and no tensor
// may hold NaN or Inf (a *training.NonFiniteError names it).
func OpenCheckpoint(path string) (*Checkpoint, error) {
	f, err := safetensors.Read(path)
	if err != nil {
		return nil, fmt.Errorf("gan: checkpoint: %w", err)
	}
	version, err := training.CheckFormat(f.Metadata, Format, oldestFormat)
	if err == nil && version == 0 {
		err = &training.FormatError{Want: Format, Oldest: oldestFormat}
	}
	if err != nil {
		return nil, fmt.Errorf("gan: %s is not a backprop DCGAN checkpoint this version reads: %w", path, err)
	}
	if err := training.CheckFinite(f); err != nil {
		return nil, fmt.Errorf("gan: checkpoint %s: %w", path, err)
	}
	c := &Checkpoint{Path: path, file: f, Config: Config{Data: f.Metadata["data"]}, Format: version}
	if c.Config.Recipe, err = recipeFromMetadata(f.Metadata); err != nil {
		return nil, fmt.Errorf("gan: checkpoint %s: %w", path, err)
	}
	if s, ok := f.Metadata[metaEpochs]; ok {
		if c.Epochs, err = strconv.Atoi(s); err != nil || c.Epochs < 1 {
			return nil, fmt.Errorf("gan: checkpoint %s: metadata %s = %q, want a positive number of epochs", path, metaEpochs, s)
		}
	}
	ints := map[string]*int64{}
	var epoch, inEpoch, batch, limit, images int64
	ints[keyEpoch], ints[keyInEpoch], ints[keyStep], ints[keyBatch], ints[keyLimit], ints[keyImages] = &epoch, &inEpoch, &c.Step, &batch, &limit, &images
	for k, p := range ints {
		if *p, err = f.I64(k); err != nil {
			return nil, fmt.Errorf("gan: checkpoint %s: %w", path, err)
		}
	}
	if c.Config.Seed, err = f.U64(keySeed); err != nil {
		return nil, fmt.Errorf("gan: checkpoint %s: %w", path, err)
	}
	c.Epoch, c.StepInEpoch, c.Config.Batch, c.Config.Limit, c.Images = int(epoch), int(inEpoch), int(batch), int(limit), int(images)
	switch {
	case epoch < 0 || inEpoch < 0 || c.Step < 0:
		return nil, fmt.Errorf("gan: checkpoint %s: negative counters (epoch %d, step in epoch %d, step %d)", path, epoch, inEpoch, c.Step)
	case batch < 2 || images < batch || limit < 0:
		return nil, fmt.Errorf("gan: checkpoint %s: batch %d, limit %d, images %d: want batch ≥ 2, images ≥ batch, limit ≥ 0", path, batch, limit, images)
	case int(inEpoch) >= int(images/batch):
		return nil, fmt.Errorf("gan: checkpoint %s: step in epoch %d, but an epoch has only %d steps", path, inEpoch, images/batch)
	}
	return c, nil
}

// readStateDict gathers every tensor under prefix as state-dict entries
// (prefix removed), converting I64 entries to float32.
func readStateDict(f *safetensors.File, prefix string) ([]nn.StateEntry[float32], error) {
	var out []nn.StateEntry[float32]
	for _, name := range f.Names() {
		if !strings.HasPrefix(name, prefix) {
			continue
		}
		raw, _ := f.Get(name)
		var t *tensor.Tensor[float32]
		var err error
		switch raw.DType {
		case safetensors.F32:
			t, err = f.F32(name)
		case safetensors.I64:
			var v int64
			if v, err = f.I64(name); err == nil {
				t = tensor.Scalar(float32(v))
			}
		default:
			err = fmt.Errorf("tensor %q has dtype %s, want F32 (or I64 for counters)", name, raw.DType)
		}
		if err != nil {
			return nil, err
		}
		out = append(out, nn.StateEntry[float32]{Name: strings.TrimPrefix(name, prefix), Tensor: t})
	}
	return out, nil
}

// loadModel fills m from the entries under prefix.
func (c *Checkpoint) loadModel(m nn.Module[float32], prefix, what string) error {
	sd, err := readStateDict(c.file, prefix)
	if err != nil {
		return fmt.Errorf("gan: checkpoint %s: %s: %w", c.Path, what, err)
	}
	if err := nn.LoadStateDict(m, sd); err != nil {
		return fmt.Errorf("gan: checkpoint %s: %s (entries %q…): %w", c.Path, what, prefix, err)
	}
	return nil
}

// Conditional reports whether the checkpoint's models are
// class-conditional (Recipe.Conditional).
func (c *Checkpoint) Conditional() bool { return c.Config.Recipe.Conditional }

// Generator returns the checkpoint's generator, ready for Generate (or
// GenerateLabeled for a conditional one): its moving average when the run
// kept one.
func (c *Checkpoint) Generator() (*nn.Sequential[float32], error) {
	g, _ := NewModels(c.Config.Recipe, nil)
	if err := c.loadModel(g, prefixG, "generator"); err != nil {
		return nil, err
	}
	return g, nil
}

// TrainedGenerator is the generator as training left it: for a run with
// an EMA (whose "G." entries hold the moving average, what Generator
// returns) the trained weights themselves, otherwise the same as
// Generator. Sampling both measures what the average adds.
func (c *Checkpoint) TrainedGenerator() (*nn.Sequential[float32], error) {
	if c.Config.Recipe.EMA == 0 {
		return c.Generator()
	}
	g, _ := NewModels(c.Config.Recipe, nil)
	if err := c.loadModel(g, prefixGT, "trained generator"); err != nil {
		return nil, err
	}
	return g, nil
}

// Resume rebuilds the trainer saved in the checkpoint around images,
// which must be the same training images (LoadImages with c.Config).
// Training continued from it produces exactly what the uninterrupted run
// would have.
func (c *Checkpoint) Resume(images *tensor.Tensor[float32]) (*Trainer, error) {
	return c.ResumeLabeled(images, nil)
}

// ResumeLabeled is Resume with the images' classes (LoadLabeled), which a
// conditional run needs.
func (c *Checkpoint) ResumeLabeled(images *tensor.Tensor[float32], labels []uint8) (*Trainer, error) {
	if images.Dim(0) != c.Images {
		return nil, fmt.Errorf("gan: checkpoint %s was trained on %d images of %q (limit %d), but %d images were loaded",
			c.Path, c.Images, c.Config.Data, c.Config.Limit, images.Dim(0))
	}
	g, d := NewModels(c.Config.Recipe, nil)
	var ema *nn.Sequential[float32]
	if c.Config.Recipe.EMA != 0 {
		ema, _ = NewModels(c.Config.Recipe, nil)
		if err := c.loadModel(ema, prefixG, "generator's moving average"); err != nil {
			return nil, err
		}
		if err := c.loadModel(g, prefixGT, "generator"); err != nil {
			return nil, err
		}
	} else if err := c.loadModel(g, prefixG, "generator"); err != nil {
		return nil, err
	}
	if err := c.loadModel(d, prefixD, "discriminator"); err != nil {
		return nil, err
	}
	t, err := newTrainer(c.Config, images, labels, g, d)
	if err != nil {
		return nil, err
	}
	t.EMA = ema
	for _, o := range []struct {
		opt    *optim.Adam[float32]
		prefix string
	}{{t.OptG, prefixOptG}, {t.OptD, prefixOptD}} {
		st, err := readStateDict(c.file, o.prefix)
		if err == nil {
			err = o.opt.LoadState(st)
		}
		if err != nil {
			return nil, fmt.Errorf("gan: checkpoint %s: optimizer %q: %w", c.Path, strings.TrimSuffix(o.prefix, "."), err)
		}
	}
	raw, ok := c.file.Get(keyRNG)
	if !ok || raw.DType != safetensors.U8 {
		return nil, fmt.Errorf("gan: checkpoint %s: no U8 tensor %q with the noise generator's state", c.Path, keyRNG)
	}
	pcg := &rand.PCG{}
	if err := pcg.UnmarshalBinary(raw.Data); err != nil {
		return nil, fmt.Errorf("gan: checkpoint %s: tensor %q: %w", c.Path, keyRNG, err)
	}
	t.noise, t.rng = pcg, rand.New(pcg)
	if t.Fixed, err = c.file.F32(keyFixed); err != nil {
		return nil, fmt.Errorf("gan: checkpoint %s: %w", c.Path, err)
	}
	if s := t.Fixed.Shape(); len(s) != 2 || s[1] != ZDim {
		return nil, fmt.Errorf("gan: checkpoint %s: %q has shape %s, want (N, %d)", c.Path, keyFixed, tensor.FormatShape(s), ZDim)
	}
	hist := map[string]*[]float64{"d_loss": &t.History.DLoss, "g_loss": &t.History.GLoss, "d_x": &t.History.DX, "d_g_z": &t.History.DGZ}
	for name, dst := range hist {
		v, err := c.file.F64(keyHist + name)
		if err != nil {
			return nil, fmt.Errorf("gan: checkpoint %s: %w", c.Path, err)
		}
		if int64(v.Len()) != c.Step {
			return nil, fmt.Errorf("gan: checkpoint %s: %q has %d entries, want one per step (%d)", c.Path, keyHist+name, v.Len(), c.Step)
		}
		*dst = v.Data()
	}
	t.Epoch, t.StepInEpoch, t.Step = c.Epoch, c.StepInEpoch, c.Step
	t.Epochs, t.format = c.Epochs, c.Format
	return t, nil
}
