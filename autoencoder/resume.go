package autoencoder

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/backprop-dev/backprop/training"
)

// ErrInterrupted is wrapped by the error of Train when its context is
// cancelled (Ctrl-C): the run was saved at the step it had reached, and
// Options.Resume continues it. It is training.ErrInterrupted, shared by
// every trainer.
var ErrInterrupted = training.ErrInterrupted

// MismatchError is a setting given for a resumed run that differs from the
// run saved in the checkpoint (training.MismatchError).
type MismatchError = training.MismatchError

// ResumeFile is the checkpoint `--resume DIR` continues from: DIR's
// CheckpointFile, or DIR itself when it is a file.
func ResumeFile(dir string) string { return training.ResumeFile(dir) }

// ResumeOptions returns the options that continue the run saved in c:
// each setting the run depends on (--data, --hidden, --optimizer, --lr,
// --momentum, --batch, --seed, --limit), and --epochs, is taken from the
// checkpoint unless given(flag) reports that the caller set it, in which
// case it must equal the checkpoint's (a *MismatchError otherwise).
// Epochs, when given, is the total to reach, not a number to add. The
// result has Resume set to c; the output directory, the progress and log
// writers and the sample count are opt's.
func (c *Checkpoint) ResumeOptions(opt Options, given func(flag string) bool) (Options, error) {
	if given == nil {
		given = func(string) bool { return false }
	}
	m := c.Meta
	if !given("data") {
		opt.Dataset = m.Dataset
	}
	if !given("hidden") {
		opt.Hidden = m.Config.Hidden
	}
	if !given("optimizer") {
		opt.Optimizer = m.Optimizer
	}
	if !given("lr") {
		opt.LR = m.LR
	}
	if !given("momentum") && m.Optimizer == SGD {
		opt.Momentum = m.Momentum
	}
	if !given("batch") {
		opt.Batch = m.Batch
	}
	if !given("seed") {
		opt.Seed = m.Seed
	}
	if !given("limit") {
		opt.Limit = m.TrainImages
	}
	if !given("epochs") && m.Epochs > 0 {
		opt.Epochs = m.Epochs
	}
	opt.Resume = c
	if err := c.checkOptions(opt); err != nil {
		return opt, err
	}
	return opt, nil
}

// checkOptions reports the first setting of opt that contradicts the
// checkpoint, and a checkpoint that cannot be resumed at all. The number
// of training images (--limit) is checked by Train, which has the data.
func (c *Checkpoint) checkOptions(opt Options) error {
	if c.Progress == nil {
		return &CheckpointError{Path: c.Path, Err: errors.New("it holds no training state (shuffling generator, loss history): " +
			"it was not written by this version of `backprop train autoencoder`, so it can be evaluated but not resumed")}
	}
	m := c.Meta
	ftoa := func(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
	type check struct {
		flag, ckpt, given string
	}
	checks := []check{
		{"--data", strconv.Quote(m.Dataset), strconv.Quote(opt.Dataset)},
		{"--hidden", strconv.Itoa(m.Config.Hidden), strconv.Itoa(opt.Hidden)},
		{"--optimizer", m.Optimizer, opt.Optimizer},
		{"--lr", ftoa(m.LR), ftoa(opt.LearningRate())},
	}
	if m.Optimizer == SGD && opt.Optimizer == SGD {
		checks = append(checks, check{"--momentum", ftoa(m.Momentum), ftoa(opt.Momentum)})
	}
	checks = append(checks,
		check{"--batch", strconv.Itoa(m.Batch), strconv.Itoa(opt.Batch)},
		check{"--seed", strconv.FormatUint(m.Seed, 10), strconv.FormatUint(opt.Seed, 10)},
	)
	for _, k := range checks {
		if k.ckpt != k.given {
			return &MismatchError{Flag: k.flag, Checkpoint: k.ckpt, Given: k.given, Path: c.Path}
		}
	}
	if c.Model == nil {
		return &CheckpointError{Path: c.Path, Err: errors.New("no model")}
	}
	if c.Meta.Step > 0 {
		// every parameter steps at every step: Adam keeps step, exp_avg and
		// exp_avg_sq of each, SGD with momentum a momentum buffer
		per := 0
		switch {
		case c.Meta.Optimizer == Adam:
			per = 3
		case c.Meta.Optimizer == SGD && c.Meta.Momentum != 0:
			per = 1
		}
		if want := per * len(c.Model.Parameters()); len(c.OptimizerState) != want {
			return &CheckpointError{Path: c.Path, Err: fmt.Errorf("it is at step %d of %s but holds %d optimizer-state tensors (%q…), want %d",
				c.Meta.Step, c.Meta.Optimizer, len(c.OptimizerState), OptimizerPrefix, want)}
		}
	}
	return nil
}

// checkData reports training data that is not the checkpoint's: another
// image size, or another number of images (--limit).
func (c *Checkpoint) checkData(opt Options, h, w, n int) error {
	m := c.Meta
	if h*w != m.Config.Input || (m.ImageH*m.ImageW != 0 && (h != m.ImageH || w != m.ImageW)) {
		return fmt.Errorf("--data %s: the training images are %d×%d, the checkpoint %s was trained on %d×%d images (%d values)",
			opt.Dataset, h, w, c.Path, m.ImageH, m.ImageW, m.Config.Input)
	}
	if n != m.TrainImages {
		return &MismatchError{Flag: "--limit", Path: c.Path, Checkpoint: strconv.Itoa(m.TrainImages), Given: strconv.Itoa(opt.Limit),
			Note: fmt.Sprintf("it selects %d training images of %s, the run used %d", n, opt.Dataset, m.TrainImages)}
	}
	return nil
}
