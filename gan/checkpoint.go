package gan

import (
	"fmt"
	"io"
	"math/rand/v2"
	"strconv"
	"strings"

	"github.com/backprop-dev/backprop/internal/atomicfile"
	"github.com/backprop-dev/backprop/nn"
	"github.com/backprop-dev/backprop/optim"
	"github.com/backprop-dev/backprop/safetensors"
	"github.com/backprop-dev/backprop/tensor"
)

// Format is the "format" metadata value of a DCGAN checkpoint; a file
// without it is refused, so that a checkpoint of another model is
// reported as such rather than as a list of missing tensors.
const Format = "backprop-dcgan28/v1"

// Names of the checkpoint's parts. Model entries keep PyTorch's
// state_dict names under a prefix ("G.0.weight", "D.3.running_var"), as
// an nn.ModuleDict{"G", "D"} would name them; optimizer entries are
// "optG.<parameter>.<field>" with torch.optim.Adam's field names.
const (
	prefixG    = "G."
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
// file, atomically: a crash, a kill or a full disk during the write
// leaves the previous file at path intact.
func (t *Trainer) Save(path string) error {
	f := safetensors.NewFile()
	f.Source = path
	f.Metadata["format"] = Format
	f.Metadata["data"] = t.Config.Data
	f.Metadata["epoch"] = strconv.Itoa(t.Epoch)
	f.Metadata["step"] = strconv.FormatInt(t.Step, 10)
	f.Metadata["seed"] = strconv.FormatUint(t.Config.Seed, 10)
	f.Metadata["recipe"] = fmt.Sprintf("Adam lr %g betas (%g, %g), batch %d, z %d, BCE-with-logits, non-saturating G loss", LearningRate, Beta1, Beta2, t.Config.Batch, ZDim)
	if err := addStateDict(f, prefixG, t.G.StateDict()); err != nil {
		return err
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
	return atomicfile.WriteFile(path, func(w io.Writer) error {
		if wrapCheckpointWriter != nil {
			w = wrapCheckpointWriter(w)
		}
		_, err := f.WriteTo(w)
		return err
	})
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
	file               *safetensors.File
}

// OpenCheckpoint reads a checkpoint written by Trainer.Save and checks
// that it is one: the format tag and the run's counters must be there.
func OpenCheckpoint(path string) (*Checkpoint, error) {
	f, err := safetensors.Read(path)
	if err != nil {
		return nil, fmt.Errorf("gan: checkpoint: %w", err)
	}
	if got := f.Metadata["format"]; got != Format {
		if got == "" {
			got = "none"
		} else {
			got = strconv.Quote(got)
		}
		return nil, fmt.Errorf("gan: %s is not a backprop DCGAN checkpoint: metadata \"format\" is %s, want %q (is it a checkpoint of another model?)", path, got, Format)
	}
	c := &Checkpoint{Path: path, file: f, Config: Config{Data: f.Metadata["data"]}}
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

// Generator returns the checkpoint's generator, ready for Generate.
func (c *Checkpoint) Generator() (*nn.Sequential[float32], error) {
	g := NewGenerator(nil)
	if err := c.loadModel(g, prefixG, "generator"); err != nil {
		return nil, err
	}
	return g, nil
}

// Resume rebuilds the trainer saved in the checkpoint around images,
// which must be the same training images (LoadImages with c.Config).
// Training continued from it produces exactly what the uninterrupted run
// would have.
func (c *Checkpoint) Resume(images *tensor.Tensor[float32]) (*Trainer, error) {
	if images.Dim(0) != c.Images {
		return nil, fmt.Errorf("gan: checkpoint %s was trained on %d images of %q (limit %d), but %d images were loaded",
			c.Path, c.Images, c.Config.Data, c.Config.Limit, images.Dim(0))
	}
	g, d := NewGenerator(nil), NewDiscriminator(nil)
	if err := c.loadModel(g, prefixG, "generator"); err != nil {
		return nil, err
	}
	if err := c.loadModel(d, prefixD, "discriminator"); err != nil {
		return nil, err
	}
	t, err := newTrainer(c.Config, images, g, d)
	if err != nil {
		return nil, err
	}
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
	return t, nil
}
