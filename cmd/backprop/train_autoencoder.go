package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
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
	var serveAddr string
	cmd := &cobra.Command{
		Use:   "autoencoder [flags]",
		Short: "Train the seed's auto-encoder (784 → hidden ReLU → 784 sigmoid) on real images",
		Long: `train autoencoder trains Problem 2's auto-encoder on real images:

    h  = ReLU(W1 x + b1)    encoder, 784 → --hidden
    x' = σ(W2 h + b2)       decoder, --hidden → 784

minimizing the seed's loss, the sum of squared errors of an image averaged
over the mini-batch. The weights start from PyTorch's default Linear
initialization; initialization and shuffling come from PCG generators seeded
with --seed, so a run is reproducible bit for bit.

A progress bar on stderr shows the epoch, step, loss, steps/s and ETA. After
every epoch the command prints the test reconstruction error (the mean over
the test images of the per-image sum of squared errors) and writes to --out:

    recon-epochN.png           16 test images above their reconstructions
    loss.png                   training loss per step, test error per epoch
    checkpoint.safetensors     weights ("encoder.weight" (hidden, 784), …, as
                               torch.nn.Linear), optimizer state, metadata

Each file is replaced atomically, so an interrupted run (Ctrl-C stops it
between steps) keeps the checkpoint of its last complete epoch. Use
` + "`backprop reconstruct --checkpoint FILE`" + ` to evaluate a checkpoint.`,
		Args: aeNoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if cmd.Flags().Changed("momentum") && opt.Optimizer != autoencoder.SGD {
				return usageError{fmt.Errorf("--momentum applies to --optimizer sgd only (the optimizer is %q)", opt.Optimizer)}
			}
			if cmd.Flags().Changed("lr") && opt.LR <= 0 {
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
			opt.Dataset = dataName
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
			if serveAddr != "" {
				if opt.Live, err = serveLive(ctx, serveAddr); err != nil {
					return fmt.Errorf("--serve: %w", err)
				}
			}
			res, err := autoencoder.Train(ctx, train, test, opt)
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
	f.IntVar(&opt.Epochs, "epochs", opt.Epochs, "passes over the training images")
	f.Uint64Var(&opt.Seed, "seed", opt.Seed, "seed of initialization and shuffling (same seed, same checkpoint bytes)")
	f.IntVar(&opt.Limit, "limit", 0, "use only the first N training images (0: all)")
	f.StringVar(&opt.OutDir, "out", opt.OutDir, "output directory for the checkpoint and pictures")
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
