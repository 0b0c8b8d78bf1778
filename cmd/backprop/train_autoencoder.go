package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/backprop-dev/backprop/autoencoder"
	"github.com/backprop-dev/backprop/data"
)

// trainAutoencoderCmd is `backprop train autoencoder`: Problem 2's
// auto-encoder trained on MNIST, Fashion-MNIST or a directory of IDX files.
func trainAutoencoderCmd() *cobra.Command {
	opt := autoencoder.DefaultOptions() // LR 0: the optimizer's default unless --lr is given
	dataName := "mnist"
	opt.OutDir = "runs/autoencoder"
	var quiet bool
	var serveAddr, resume string
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

A progress bar on stderr shows the epoch, step, loss, steps/s and ETA. After
every epoch the command prints the test reconstruction error (the mean over
the test images of the per-image sum of squared errors) and writes to --out:

    recon-epochN.png           16 test images above their reconstructions
    loss.png                   training loss per step, test error per epoch
    history.csv                the same numbers: step, epoch, train_loss, test_error
    checkpoint.safetensors     weights ("encoder.weight" (hidden, 784), …, as
                               torch.nn.Linear), optimizer state, the
                               shuffling generator's state, the loss
                               history, metadata

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
		Args: aeNoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			flags := cmd.Flags()
			opt.Dataset = dataName
			if resume != "" {
				path := autoencoder.ResumeFile(resume)
				if _, err := os.Stat(path); err != nil {
					return fmt.Errorf("--resume %s: no %s there to continue from (%v); start a new run without --resume", resume, autoencoder.CheckpointFile, err)
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
				if !flags.Changed("out") {
					opt.OutDir = filepath.Dir(path)
				}
				dataName = opt.Dataset
				m := ck.Meta
				fmt.Printf("resuming %s: %d of %d epoch(s) done", path, m.Epoch, opt.Epochs)
				if m.StepInEpoch > 0 {
					fmt.Printf(" and %d step(s) of epoch %d", m.StepInEpoch, m.Epoch+1)
				}
				fmt.Printf(", %d steps in all\n", m.Step)
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
			train, err := data.Load(dataName, data.Train)
			if err != nil {
				return err
			}
			test, err := data.Load(dataName, data.Test)
			if err != nil {
				return err
			}
			if !quiet {
				opt.Progress = os.Stderr
			}
			opt.Log = os.Stdout

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
				autoencoder.Config{Input: h * w, Hidden: opt.Hidden}, dataName, n, test.Len(), h, w, optDesc, opt.Batch, opt.Epochs, opt.Seed, opt.OutDir)

			ctx := cmd.Context()
			if ctx == nil {
				ctx = context.Background()
			}
			ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
			defer stop()
			go func() {
				<-ctx.Done()
				stop() // a second Ctrl-C kills at once; checkpoint writes are atomic anyway
			}()
			if serveAddr != "" {
				if opt.Live, err = serveLive(ctx, serveAddr); err != nil {
					return fmt.Errorf("--serve: %w", err)
				}
			}
			res, err := autoencoder.Train(ctx, train, test, opt)
			var mismatch *autoencoder.MismatchError
			if errors.As(err, &mismatch) { // --limit, checked against the data
				return usageError{err}
			}
			if errors.Is(err, autoencoder.ErrInterrupted) {
				fmt.Fprintf(os.Stderr, "backprop: %v\n", err)
				if _, statErr := os.Stat(filepath.Join(opt.OutDir, autoencoder.CheckpointFile)); opt.OutDir != "" && statErr == nil {
					fmt.Fprintf(os.Stderr, "resume with: backprop train autoencoder --resume %s --epochs %d\n", opt.OutDir, opt.Epochs)
				}
				os.Exit(exitInterrupted)
			}
			if err != nil {
				return err
			}
			last := res.Epochs[len(res.Epochs)-1]
			fmt.Printf("done: test error %.4f after %d epoch(s); checkpoint %s\n", last.TestError, last.Epoch, res.Checkpoint)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&dataName, "data", dataName, "data set: mnist, fashion-mnist or a directory of IDX files (train-/t10k-images-idx3-ubyte[.gz], …)")
	f.IntVar(&opt.Hidden, "hidden", opt.Hidden, "hidden units")
	f.StringVar(&opt.Optimizer, "optimizer", opt.Optimizer, "optimizer: adam or sgd")
	f.Float64Var(&opt.LR, "lr", 0, fmt.Sprintf("learning rate (default %g for adam, %g for sgd)", autoencoder.DefaultAdamLR, autoencoder.DefaultSGDLR))
	f.Float64Var(&opt.Momentum, "momentum", opt.Momentum, "momentum of sgd")
	f.IntVar(&opt.Batch, "batch", opt.Batch, "mini-batch size")
	f.IntVar(&opt.Epochs, "epochs", opt.Epochs, "passes over the training images, in total (with --resume: default the run's own)")
	f.Uint64Var(&opt.Seed, "seed", opt.Seed, "seed of initialization and shuffling (same seed, same checkpoint bytes)")
	f.StringVar(&resume, "resume", "", "continue the run saved in this directory (or checkpoint file); --epochs is the total to reach")
	f.IntVar(&opt.Limit, "limit", 0, "use only the first N training images (0: all)")
	f.StringVar(&opt.OutDir, "out", opt.OutDir, "output directory for the checkpoint and pictures (with --resume: default the resumed directory)")
	f.BoolVarP(&quiet, "quiet", "q", false, "no progress bar")
	f.StringVar(&serveAddr, "serve", "", "show the job live in a browser at this address, e.g. 127.0.0.1:8080 (page /train)")
	cmd.SetFlagErrorFunc(aeFlagError)
	return cmd
}

// aeNoArgs rejects positional arguments as a usage error (exit status 2).
func aeNoArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usageError{fmt.Errorf("%s takes no arguments, got %q (flags start with --)", cmd.CommandPath(), args)}
	}
	return nil
}

// aeFlagError makes a malformed or unknown flag a usage error (exit status 2).
func aeFlagError(cmd *cobra.Command, err error) error {
	return usageError{fmt.Errorf("%s: %w", cmd.CommandPath(), err)}
}
