package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/backprop-dev/backprop/autoencoder"
	"github.com/backprop-dev/backprop/data"
	"github.com/backprop-dev/backprop/training"
)

// trainAutoencoderCmd is `backprop train autoencoder`: Problem 2's
// auto-encoder trained on MNIST, Fashion-MNIST or a directory of IDX files.
func trainAutoencoderCmd() *cobra.Command {
	opt := autoencoder.DefaultOptions() // LR 0: the optimizer's default unless --lr is given
	var tf trainFlags
	cmd := &cobra.Command{
		Use:   "autoencoder [flags]",
		Short: "Train the seed's auto-encoder (784 → hidden ReLU → 784 sigmoid) on real images",
		Long: `train autoencoder trains Problem 2's auto-encoder on real images:

    h  = ReLU(W1 x + b1)    encoder, 784 → --hidden
    x' = σ(W2 h + b2)       decoder, --hidden → 784

minimizing the seed's loss, the sum of squared errors of an image averaged
over the mini-batch. The weights start from PyTorch's default Linear
initialization; initialization and shuffling come from PCG generators whose
states are derived from --seed (through SplitMix64), so a run is reproducible
bit for bit.

When stderr is a terminal, a progress bar shows the epoch, step, loss,
steps/s and ETA (-q hides it). After every epoch the command prints one line
with the training loss and the test reconstruction error (the mean over the
test images of the per-image sum of squared errors) and writes to --out
(default runs/autoencoder):

    recon-epochN.png           16 test images above their reconstructions
    loss.png                   training loss per step, test error per epoch
    history.csv                the same numbers: step, epoch, train_loss, test_error
    checkpoint.safetensors     weights ("encoder.weight" (hidden, 784), …, as
                               torch.nn.Linear), optimizer state, the
                               shuffling generator's state, the loss
                               history, metadata (format backprop-autoencoder/v2)

Each file is replaced atomically: a crash or a kill at any moment leaves the
previous checkpoint intact. Ctrl-C (SIGINT) or SIGTERM stops training between
steps, saves a checkpoint of the step reached and exits with status 130.

--resume DIR continues the run saved in DIR/checkpoint.safetensors (or in
the checkpoint file given) up to --epochs epochs in total (default: the
epochs it was started with), writing into DIR unless --out is given. The
result is bit for bit that of a run never interrupted. The run keeps its
settings: --data, --hidden, --optimizer, --lr, --momentum, --batch, --seed
and --limit come from the checkpoint, and giving one with another value is
an error. Use ` + "`backprop reconstruct --checkpoint FILE`" + ` to evaluate a checkpoint.`,
		Example: `  backprop train autoencoder --data mnist --epochs 3 --out runs/ae
  backprop train autoencoder --resume runs/ae --epochs 10`,
		RunE: func(cmd *cobra.Command, args []string) error {
			flags := cmd.Flags()
			if err := tf.check(cmd); err != nil {
				return err
			}
			opt.Dataset, opt.OutDir, opt.Epochs, opt.Batch, opt.Seed, opt.Limit = tf.data, tf.out, tf.epochs, tf.batch, tf.seed, tf.limit
			if tf.resume != "" {
				path := training.ResumeFile(tf.resume)
				if _, err := os.Stat(path); err != nil {
					return fmt.Errorf("--resume %s: no checkpoint %s to continue from; start a new run without --resume", tf.resume, path)
				}
				ck, err := autoencoder.Load(path)
				if err != nil {
					return err
				}
				if opt, err = ck.ResumeOptions(opt, flags.Changed); err != nil {
					var me *autoencoder.MismatchError
					if errors.As(err, &me) {
						return usageError{err}
					}
					return err
				}
				opt.OutDir = tf.resumeOut(cmd, path)
				m := ck.Meta
				fmt.Print(resumeLine(path, m.Epoch, m.StepInEpoch, m.Step, opt.Epochs))
				if m.Epoch >= opt.Epochs {
					fmt.Printf("nothing to do: %d epoch(s) are already done (--epochs %d)\n", m.Epoch, opt.Epochs)
					return nil
				}
			}
			if flags.Changed("momentum") && opt.Optimizer != autoencoder.SGD {
				return usageError{fmt.Errorf("--momentum applies to --optimizer sgd only (the optimizer is %q)", opt.Optimizer)}
			}
			if flags.Changed("lr") && opt.LR <= 0 {
				return usageError{fmt.Errorf("--lr: want a learning rate > 0, got %g", opt.LR)}
			}
			if err := opt.Validate(); err != nil {
				return usageError{err}
			}
			train, err := data.Load(opt.Dataset, data.Train)
			if err != nil {
				return err
			}
			test, err := data.Load(opt.Dataset, data.Test)
			if err != nil {
				return err
			}

			n := train.Len()
			if opt.Limit > 0 {
				n = min(n, opt.Limit)
			}
			h, w := train.ImageShape()
			optDesc := fmt.Sprintf("%s lr %g", opt.Optimizer, opt.LearningRate())
			if opt.Optimizer == autoencoder.SGD {
				optDesc += fmt.Sprintf(" momentum %g", opt.Momentum)
			}
			fmt.Printf("training the auto-encoder %v on %s (%d training, %d test images of %d×%d), %s, batch %d, %d epoch(s), seed %d; output in %s\n",
				autoencoder.Config{Input: h * w, Hidden: opt.Hidden}, opt.Dataset, n, test.Len(), h, w, optDesc, opt.Batch, opt.Epochs, opt.Seed, opt.OutDir)
			fmt.Printf("test error: the mean over the %d test images of the per-image sum of squared errors\n", test.Len())

			ctx, stop := training.InterruptContext(cmd.Context())
			defer stop()
			opt.Hooks = progressHooks(os.Stdout, tf.quiet, opt.OutDir)
			if tf.serve != "" {
				view, err := serveLive(ctx, tf.serve)
				if err != nil {
					return fmt.Errorf("--serve: %w", err)
				}
				opt.Hooks = opt.Hooks.Then(liveHooks(view, "autoencoder", nil))
			}
			res, err := autoencoder.Train(ctx, train, test, opt)
			var mismatch *autoencoder.MismatchError
			if errors.As(err, &mismatch) { // --limit, checked against the data
				return usageError{err}
			}
			if err != nil {
				return trainError(err, "autoencoder", opt.OutDir, opt.Epochs)
			}
			last := res.Epochs[len(res.Epochs)-1]
			fmt.Printf("done: test error %.4f after %d epoch(s); checkpoint %s\n", last.TestError, last.Epoch, res.Checkpoint)
			return nil
		},
	}
	tf.register(cmd, "autoencoder")
	f := cmd.Flags()
	f.IntVar(&opt.Hidden, "hidden", opt.Hidden, "hidden units")
	f.StringVar(&opt.Optimizer, "optimizer", opt.Optimizer, "optimizer: adam or sgd")
	f.Float64Var(&opt.LR, "lr", 0, fmt.Sprintf("learning rate (default %g for adam, %g for sgd)", autoencoder.DefaultAdamLR, autoencoder.DefaultSGDLR))
	f.Float64Var(&opt.Momentum, "momentum", opt.Momentum, "momentum of sgd")
	return cmd
}

// resumeLine is the line that starts a resumed run: the checkpoint and how
// far it got.
func resumeLine(path string, epoch, inEpoch, step, epochs int) string {
	s := fmt.Sprintf("resuming %s: %d of %d epoch(s) done", path, epoch, epochs)
	if inEpoch > 0 {
		s += fmt.Sprintf(" and %d step(s) of epoch %d", inEpoch, epoch+1)
	}
	return s + fmt.Sprintf(", %d steps in all\n", step)
}

// aeNoArgs rejects positional arguments as a usage error (exit status 2).
func aeNoArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usageError{fmt.Errorf("%s takes no arguments, got %q (flags start with --)", cmd.CommandPath(), args)}
	}
	return nil
}
