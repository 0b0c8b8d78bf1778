package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/backprop-dev/backprop/gan"
	"github.com/backprop-dev/backprop/live"
	"github.com/backprop-dev/backprop/training"
)

// trainGANCmd is `backprop train gan`: trains a DCGAN (the default recipe
// or the reference one), with per-epoch sample grids, loss curve and
// checkpoints, resumable bit for bit.
func trainGANCmd() *cobra.Command {
	var (
		tf   trainFlags
		arch string
		over recipeFlags
	)
	cmd := &cobra.Command{
		Use:   "gan [flags]",
		Short: "Train a DCGAN (the measured best recipe, or --arch reference) on MNIST, Fashion-MNIST or IDX files",
		Long: `Train a DCGAN (see package gan). By default (--arch default) it trains the recipe measured
best in bench/gan/results/recipe.md: the reference networks made class-conditional (a learned
class embedding concatenated to z, a projection discriminator, trained on the data set's labels)
with an exponential moving average of G's weights (decay 0.999) for sampling. --arch reference
trains the reference DCGAN, whose steps match PyTorch's DCGAN example to 1e-7: Adam lr 2e-4,
betas (0.5, 0.999), z ~ N(0, 1) of size 100, images scaled to [-1, 1], BCE-with-logits for D on
real (1) and fake (0) batches, the non-saturating loss for G. Initialization, shuffles and noise
come from PCG generators whose states are derived from --seed through SplitMix64.

When stderr is a terminal, a progress bar shows the epoch, step, D and G losses, D(x), D(G(z)),
steps/s and ETA (-q hides it). After every epoch it prints one line (steps, time, mean D and G
losses) and writes into --out (default runs/gan): samples-epochN.png (64 samples from a fixed
noise batch), loss.png, history.csv (its numbers: step, epoch, d_loss, g_loss, d_x, d_g_z),
checkpoint-epochN.safetensors and checkpoint.safetensors (the latest; both models, both
optimizers, the position, the noise generator's state and the fixed noise; the format is named
below), each atomically.

--resume DIR continues from DIR/checkpoint.safetensors (or the checkpoint file given) up to
--epochs epochs in total (default: the epochs it was started with), writing into DIR unless
--out is given; the result is bit for bit what the uninterrupted run produces. The run keeps its
settings: --data, --seed, --limit and --batch come from the checkpoint, and giving one with
another value is an error. Checkpoints of earlier versions (format backprop-dcgan28/v1) resume
with their own seeding. Ctrl-C or SIGTERM saves a checkpoint at the current step and exits with
status 130.

Recipe options change one ingredient of the --arch's recipe (the reference's values are the
defaults shown below; the default arch has --conditional and --ema 0.999). The reference recipe
writes checkpoint format backprop-dcgan28/v2; any other writes backprop-dcgan28/v3, which records
the recipe, and --resume keeps it:
  --loss hinge|ns|bce    D's and G's losses: bce (the reference: BCE-with-logits for D, the
                         non-saturating BCE(D(G(z)), 1) for G); ns (the same losses under the
                         name "non-saturating" the R1/StyleGAN papers use); hinge (D: mean
                         max(0, 1 - D(x)) + mean max(0, 1 + D(G(z))); G: -mean D(G(z)))
  --ema 0.999            exponential moving average of G's weights after every G step, its
                         decay warmed up as min(0.999, (1+t)/(10+t)) at step t; the sample
                         grids and the checkpoint's G (what sample and export read) use it
  --lr-g, --lr-d         Adam's step sizes for G and D (two-timescale update rule)
  --label-smoothing 0.9  D's target for real images (one-sided label smoothing; BCE only)
  --spectral-norm        spectral normalization of D's weights (one power iteration per step)
  --conditional          class-conditional G (a learned class embedding concatenated to z)
                         and projection D, trained on the data set's labels; the sample grid
                         has one row per class; "backprop sample --class" draws from it
  --r1 GAMMA             refused: the R1 penalty needs double backprop, which the engine's
                         autograd does not record`,
		Example: `  backprop train gan --data mnist --epochs 15 --out runs/mnist
  backprop train gan --resume runs/mnist --epochs 20
  backprop train gan --arch reference --data mnist --epochs 5 --out runs/reference
  backprop train gan --conditional=false --data mnist --epochs 15 --out runs/unconditional
  backprop train gan --data mnist --epochs 2 --ema 0.999 --loss hinge --spectral-norm --out runs/sn
  backprop train gan --arch reference --conditional --data mnist --epochs 2 --out runs/cond`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			flags := cmd.Flags()
			if err := tf.check(cmd); err != nil {
				return err
			}
			if tf.batch < 2 {
				return usageError{fmt.Errorf("--batch: want at least 2 (BatchNorm needs two samples), got %d", tf.batch)}
			}
			recipe, err := gan.ArchRecipe(arch)
			if err != nil {
				return usageError{err}
			}
			over.applyTo(&recipe, flags)
			if err := recipe.Check(); err != nil {
				if errors.Is(err, gan.ErrR1Unsupported) {
					return err
				}
				return usageError{err}
			}
			var tr *gan.Trainer
			out, epochs := tf.out, tf.epochs
			if tf.resume != "" {
				path := training.ResumeFile(tf.resume)
				if _, err := os.Stat(path); err != nil {
					return fmt.Errorf("--resume %s: no checkpoint %s to continue from; start a new run without --resume", tf.resume, path)
				}
				ck, err := gan.OpenCheckpoint(path)
				if err != nil {
					return err
				}
				c := ck.Config
				for _, m := range []struct {
					flag, given, saved string
				}{
					{"data", strconv.Quote(tf.data), strconv.Quote(c.Data)},
					{"seed", strconv.FormatUint(tf.seed, 10), strconv.FormatUint(c.Seed, 10)},
					{"limit", strconv.Itoa(tf.limit), strconv.Itoa(c.Limit)},
					{"batch", strconv.Itoa(tf.batch), strconv.Itoa(c.Batch)},
					{"loss", recipeLoss(recipe), recipeLoss(c.Recipe)},
					{"ema", fmtFloat(recipe.EMA), fmtFloat(c.Recipe.EMA)},
					{"lr-g", fmtLR(recipe.LRG), fmtLR(c.Recipe.LRG)},
					{"lr-d", fmtLR(recipe.LRD), fmtLR(c.Recipe.LRD)},
					{"label-smoothing", fmtFloat(recipe.LabelSmoothing), fmtFloat(c.Recipe.LabelSmoothing)},
					{"spectral-norm", strconv.FormatBool(recipe.SpectralNorm), strconv.FormatBool(c.Recipe.SpectralNorm)},
					{"conditional", strconv.FormatBool(recipe.Conditional), strconv.FormatBool(c.Recipe.Conditional)},
				} {
					if flags.Changed(m.flag) && m.given != m.saved {
						return usageError{&training.MismatchError{Flag: "--" + m.flag, Given: m.given, Checkpoint: m.saved, Path: ck.Path}}
					}
				}
				if flags.Changed("arch") && recipe.String() != c.Recipe.String() {
					return usageError{&training.MismatchError{Flag: "--arch", Given: arch + " (" + recipe.String() + ")", Checkpoint: c.Recipe.String(), Path: ck.Path}}
				}
				if !flags.Changed("epochs") {
					if ck.Epochs == 0 {
						return usageError{fmt.Errorf("--resume %s: the checkpoint (format %s/v%d) does not record the epochs its run was to reach; give --epochs", tf.resume, gan.Format.Kind, ck.Format)}
					}
					epochs = ck.Epochs
				}
				out = tf.resumeOut(cmd, path)
				fmt.Print(resumeLine(ck.Path, ck.Epoch, ck.StepInEpoch, int(ck.Step), epochs))
				if ck.Epoch >= epochs {
					fmt.Printf("nothing to do: %d epoch(s) are already done (--epochs %d)\n", ck.Epoch, epochs)
					return nil
				}
				images, labels, err := gan.LoadLabeled(c)
				if err != nil {
					return err
				}
				if tr, err = ck.ResumeLabeled(images, labels); err != nil {
					return err
				}
			} else {
				cfg := gan.Config{Data: tf.data, Seed: tf.seed, Limit: tf.limit, Batch: tf.batch, Recipe: recipe}
				images, labels, err := gan.LoadLabeled(cfg)
				if err != nil {
					return err
				}
				if tr, err = gan.NewLabeledTrainer(cfg, images, labels); err != nil {
					return err
				}
				fmt.Printf("training the DCGAN on %s (%d training images), batch %d, %d steps per epoch, %d epoch(s), seed %d, recipe: %s; output in %s\n",
					tf.data, images.Dim(0), tr.Config.Batch, tr.StepsPerEpoch(), epochs, tf.seed, recipe, out)
			}

			ctx, stop := training.InterruptContext(cmd.Context())
			defer stop()
			hooks := progressHooks(os.Stdout, tf.quiet, out)
			if tf.serve != "" {
				view, err := serveLive(ctx, tf.serve)
				if err != nil {
					return fmt.Errorf("--serve: %w", err)
				}
				hooks = hooks.Then(liveHooks(view, "gan", ganScores))
			}
			if err := tr.Run(ctx, epochs, out, hooks); err != nil {
				return trainError(err, "gan", out, epochs)
			}
			fmt.Printf("done: %d epochs, %d steps; latest checkpoint %s\n", tr.Epoch, tr.Step, filepath.Join(out, gan.CheckpointFile))
			return nil
		},
	}
	tf.register(cmd, "gan")
	f := cmd.Flags()
	f.StringVar(&arch, "arch", gan.ArchDefault, "recipe to start from: default (the measured best) or reference (the DCGAN that matches PyTorch's)")
	f.StringVar(&over.Loss, "loss", gan.LossBCE, "loss: bce (the reference's), ns (the same losses by their other name) or hinge (default: the --arch's)")
	f.Float64Var(&over.EMA, "ema", 0, "decay of an exponential moving average of G's weights, used for sampling (0: off; 0.999 is usual; default: the --arch's)")
	f.Float64Var(&over.LRG, "lr-g", gan.LearningRate, "Adam's step size for G")
	f.Float64Var(&over.LRD, "lr-d", gan.LearningRate, "Adam's step size for D")
	f.Float64Var(&over.LabelSmoothing, "label-smoothing", 0, "D's BCE target for real images, e.g. 0.9 (0: off, target 1)")
	f.BoolVar(&over.SpectralNorm, "spectral-norm", false, "spectral normalization of D's weights (default: the --arch's)")
	f.BoolVar(&over.Conditional, "conditional", false, "class-conditional G and projection D, trained on the labels (default: the --arch's; --conditional=false for an unconditional pair)")
	f.Float64Var(&over.R1, "r1", 0, "R1 penalty weight γ: not supported (needs double backprop), refused")
	return cmd
}

// recipeFlags holds the recipe options of `train gan`; those given on the
// command line replace the ingredients of the --arch's recipe.
type recipeFlags gan.Recipe

// applyTo sets in r the ingredients whose options were given.
func (o recipeFlags) applyTo(r *gan.Recipe, flags *pflag.FlagSet) {
	for name, set := range map[string]func(){
		"loss":            func() { r.Loss = o.Loss },
		"ema":             func() { r.EMA = o.EMA },
		"lr-g":            func() { r.LRG = o.LRG },
		"lr-d":            func() { r.LRD = o.LRD },
		"label-smoothing": func() { r.LabelSmoothing = o.LabelSmoothing },
		"spectral-norm":   func() { r.SpectralNorm = o.SpectralNorm },
		"conditional":     func() { r.Conditional = o.Conditional },
		"r1":              func() { r.R1 = o.R1 },
	} {
		if flags.Changed(name) {
			set()
		}
	}
}

// recipeLoss is the recipe's loss as --loss spells it, "bce" for the
// default.
func recipeLoss(r gan.Recipe) string {
	if r.Loss == "" {
		return gan.LossBCE
	}
	return r.Loss
}

// fmtLR prints a step size, 0 (not recorded) as gan.LearningRate.
func fmtLR(v float64) string {
	if v == 0 {
		v = gan.LearningRate
	}
	return fmtFloat(v)
}

// fmtFloat prints a recipe number for a mismatch message.
func fmtFloat(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

// ganScores takes D(x) and D(G(z)) out of a GAN step's metrics (the
// losses stay) for the live view's discriminator chart.
func ganScores(ms []training.Metric) ([]training.Metric, *live.DScores) {
	var losses []training.Metric
	var d live.DScores
	for _, m := range ms {
		switch m.Name {
		case "D(x)":
			d.Real = m.Value
		case "D(G(z))":
			d.Fake = m.Value
		default:
			losses = append(losses, m)
		}
	}
	return losses, &d
}
