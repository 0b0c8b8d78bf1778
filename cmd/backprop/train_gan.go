package main

import (
	"bytes"
	"image/png"

	"errors"
	"fmt"
	"github.com/backprop-dev/backprop/live"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/backprop-dev/backprop/gan"
)

// exitInterrupted is the exit status after Ctrl-C (SIGINT) or SIGTERM
// stopped training and the checkpoint was saved: 128 + SIGINT, as a shell
// reports a program stopped by Ctrl-C, so scripts can tell an interrupted
// run from a finished one (0) and a failed one (1).
const exitInterrupted = 130

// trainGANCmd is `backprop train gan`: trains the reference DCGAN, with
// per-epoch sample grids, loss curve and checkpoints, resumable bit for
// bit.
func trainGANCmd() *cobra.Command {
	var (
		dataName, out, resume, serveAddr string
		epochs, limit, batch             int
		seed                             uint64
		quiet                            bool
	)
	cmd := &cobra.Command{
		Use:   "gan",
		Short: "Train the reference DCGAN on MNIST, Fashion-MNIST or a directory of IDX files",
		Long: `Train the reference DCGAN (see package gan) with the DCGAN recipe: Adam lr 2e-4,
betas (0.5, 0.999), z ~ N(0, 1) of size 100, images scaled to [-1, 1], BCE-with-logits for D
on real (1) and fake (0) batches, the non-saturating loss for G.

After every epoch it writes into --out: samples-epochN.png (64 samples from a fixed noise
batch), loss.png, history.csv (its numbers: step, epoch, d_loss, g_loss, d_x, d_g_z),
checkpoint-epochN.safetensors and checkpoint.safetensors (the latest; both models, both
optimizers, the position, the noise generator's state and the fixed noise).

--resume DIR continues from DIR/checkpoint.safetensors up to --epochs epochs in total; the
result is bit for bit what an uninterrupted run with the same seed produces. Ctrl-C or SIGTERM
saves a checkpoint at the current step and exits with status 130.`,
		Example: `  backprop train gan --data mnist --epochs 5 --out runs/mnist
  backprop train gan --resume runs/mnist --epochs 10`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			flags := cmd.Flags()
			if epochs <= 0 {
				return usageError{fmt.Errorf("--epochs must be a positive number of epochs, got %d", epochs)}
			}
			if limit < 0 {
				return usageError{fmt.Errorf("--limit must be 0 (all images) or positive, got %d", limit)}
			}
			if batch < 2 {
				return usageError{fmt.Errorf("--batch must be at least 2 (BatchNorm needs two samples), got %d", batch)}
			}
			var tr *gan.Trainer
			if resume != "" {
				if out == "" {
					out = resume
				}
				path := filepath.Join(resume, gan.CheckpointFile)
				if _, err := os.Stat(path); err != nil {
					return fmt.Errorf("--resume %s: no %s there to continue from (%v); start a new run with --data and --out", resume, gan.CheckpointFile, err)
				}
				ck, err := gan.OpenCheckpoint(path)
				if err != nil {
					return err
				}
				c := ck.Config
				for _, m := range []struct {
					flag      string
					set       bool
					got, want any
				}{
					{"--data", flags.Changed("data"), dataName, c.Data},
					{"--seed", flags.Changed("seed"), seed, c.Seed},
					{"--limit", flags.Changed("limit"), limit, c.Limit},
					{"--batch", flags.Changed("batch"), batch, c.Batch},
				} {
					if m.set && fmt.Sprint(m.got) != fmt.Sprint(m.want) {
						return usageError{fmt.Errorf("%s %v differs from the checkpoint's %v (%s); a resumed run keeps its settings, leave the flag out", m.flag, m.got, m.want, ck.Path)}
					}
				}
				images, err := gan.LoadImages(c)
				if err != nil {
					return err
				}
				if tr, err = ck.Resume(images); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "resuming %s: %d epochs and %d steps done (global step %d)\n", ck.Path, ck.Epoch, ck.StepInEpoch, ck.Step)
			} else {
				if dataName == "" {
					return usageError{errors.New("--data is required (mnist, fashion-mnist or a directory of IDX files), unless --resume is given")}
				}
				if out == "" {
					return usageError{errors.New("--out DIR is required: where samples, the loss curve and checkpoints go")}
				}
				cfg := gan.Config{Data: dataName, Seed: seed, Limit: limit, Batch: batch}
				images, err := gan.LoadImages(cfg)
				if err != nil {
					return err
				}
				if tr, err = gan.NewTrainer(cfg, images); err != nil {
					return err
				}
			}
			if tr.Epoch >= epochs {
				fmt.Fprintf(cmd.OutOrStdout(), "nothing to do: %d epochs are already done (--epochs %d)\n", tr.Epoch, epochs)
				return nil
			}
			return runTraining(cmd, tr, epochs, out, quiet, serveAddr)
		},
	}
	f := cmd.Flags()
	f.StringVar(&dataName, "data", "", `data set: "mnist", "fashion-mnist" or a directory of MNIST-layout IDX files`)
	f.IntVar(&epochs, "epochs", 0, "train until this many epochs are done in total (required)")
	f.StringVar(&out, "out", "", "output directory (default with --resume: the resumed directory)")
	f.Uint64Var(&seed, "seed", 1, "random seed: initialization, shuffles and noise")
	f.StringVar(&resume, "resume", "", "continue the run saved in this directory")
	f.IntVar(&limit, "limit", 0, "train on the first N training images only (0: all)")
	f.IntVar(&batch, "batch", gan.DefaultBatch, "mini-batch size")
	f.BoolVar(&quiet, "quiet", false, "no progress bar (the per-epoch lines are still printed)")
	f.StringVar(&serveAddr, "serve", "", "show the job live in a browser at this address, e.g. 127.0.0.1:8080 (page /train)")
	return cmd
}

// runTraining runs tr to epochs with a progress bar on stderr and a line
// per epoch on stdout, handling Ctrl-C.
func runTraining(cmd *cobra.Command, tr *gan.Trainer, epochs int, out string, quiet bool, serveAddr string) error {
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var view *live.Store
	if serveAddr != "" {
		var err error
		if view, err = serveLive(ctx, serveAddr); err != nil {
			return fmt.Errorf("--serve: %w", err)
		}
	}
	go func() {
		<-ctx.Done()
		stop() // a second Ctrl-C kills at once; the checkpoint write is atomic anyway
	}()
	spe := tr.StepsPerEpoch()
	remaining := int64(epochs-tr.Epoch)*int64(spe) - int64(tr.StepInEpoch)
	bar := progressbar.NewOptions64(remaining,
		progressbar.OptionSetWriter(os.Stderr),
		progressbar.OptionSetVisibility(!quiet),
		progressbar.OptionShowCount(),
		progressbar.OptionShowIts(),
		progressbar.OptionSetItsString("steps"),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionThrottle(200*time.Millisecond),
		progressbar.OptionSetWidth(20),
		progressbar.OptionShowDescriptionAtLineEnd(),
		progressbar.OptionSetDescription(fmt.Sprintf("epoch %d/%d", tr.Epoch+1, epochs)),
	)
	stdout := cmd.OutOrStdout()
	var dSum, gSum float64
	var n int
	hooks := gan.Hooks{
		Step: func(s gan.Stats) {
			dSum, gSum, n = dSum+s.DLoss, gSum+s.GLoss, n+1
			bar.Describe(fmt.Sprintf("epoch %d/%d step %d/%d  D %.3f  G %.3f  D(x) %.2f  D(G(z)) %.2f",
				s.Epoch+1, epochs, s.StepInEpoch, spe, s.DLoss, s.GLoss, s.DX, s.DGZ))
			bar.Add(1)
		},
		Epoch: func(e int, took time.Duration) {
			if !quiet {
				bar.Clear()
			}
			fmt.Fprintf(stdout, "epoch %d/%d: %d steps in %.1f s (%.2f steps/s), mean D loss %.4f, mean G loss %.4f; wrote %s\n",
				e, epochs, n, took.Seconds(), float64(n)/took.Seconds(), dSum/float64(max(n, 1)), gSum/float64(max(n, 1)),
				filepath.Join(out, fmt.Sprintf("{samples-epoch%d.png,loss.png,history.csv,%s,%s}", e, gan.EpochCheckpointFile(e), gan.CheckpointFile)))
			dSum, gSum, n = 0, 0, 0
		},
	}
	if view != nil {
		hooks = liveHooks(view, tr, epochs, hooks)
	}
	err := tr.Run(ctx, epochs, out, hooks)
	if view != nil {
		view.Finish(err)
	}
	if !quiet {
		bar.Exit()
		fmt.Fprintln(os.Stderr)
	}
	if errors.Is(err, gan.ErrInterrupted) {
		fmt.Fprintf(os.Stderr, "backprop: %v\nresume with: backprop train gan --resume %s --epochs %d\n", err, out, epochs)
		os.Exit(exitInterrupted)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "done: %d epochs, %d steps; latest checkpoint %s\n", tr.Epoch, tr.Step, filepath.Join(out, gan.CheckpointFile))
	return nil
}

// liveHooks adds the browser view to a run's hooks: losses, D(x) and
// D(G(z)) every few steps, and the fixed-noise sample grid after every
// epoch.
func liveHooks(view *live.Store, tr *gan.Trainer, epochs int, h gan.Hooks) gan.Hooks {
	view.Start("gan", epochs, epochs*tr.StepsPerEpoch())
	step, epoch := h.Step, h.Epoch
	h.Step = func(s gan.Stats) {
		step(s)
		if tr.Step%10 == 0 {
			view.Publish(live.Update{Epoch: s.Epoch + 1, Step: int(tr.Step), Losses: map[string]float64{"D": s.DLoss, "G": s.GLoss},
				D: &live.DScores{Real: s.DX, Fake: s.DGZ}})
		}
	}
	h.Epoch = func(e int, took time.Duration) {
		epoch(e, took)
		view.Publish(live.Update{Epoch: e, Step: int(tr.Step), Message: fmt.Sprintf("epoch %d done in %.0f s", e, took.Seconds())})
		if img, err := tr.SampleGrid(); err == nil {
			var buf bytes.Buffer
			if png.Encode(&buf, img) == nil {
				view.PublishGrid(buf.Bytes())
			}
		}
	}
	return h
}
