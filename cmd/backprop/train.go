package main

import (
	"bytes"
	"errors"
	"fmt"
	"image/png"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/backprop-dev/backprop/live"
	"github.com/backprop-dev/backprop/training"
)

func trainCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:              "train",
		Short:            "Train a network on real images (autoencoder, gan)",
		PersistentPreRun: func(*cobra.Command, []string) { tuneGC() },
	}
	cmd.AddCommand(trainAutoencoderCmd(), trainGANCmd())
	return cmd
}

// trainGCPercent is the garbage collector's target (GOGC) for training and
// benchmark runs. A training step allocates little, since its tensors are
// recycled through the tensor pool, and most of the heap is long-lived: the
// data set (188 MB of float32 for MNIST) and the models. The default
// GOGC=100 lets the heap grow to twice that before collecting; 20 keeps the
// peak memory near the live data, for one short collection every few
// seconds.
const trainGCPercent = 20

// tuneGC applies trainGCPercent unless the user set GOGC.
func tuneGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(trainGCPercent)
	}
}

// Defaults shared by `train autoencoder` and `train gan`.
const (
	defaultTrainData   = "mnist"
	defaultTrainEpochs = 3
	defaultTrainSeed   = 1
	defaultTrainBatch  = 64
)

// trainFlags are the flags `train autoencoder` and `train gan` share, with
// the same names, meanings and defaults.
type trainFlags struct {
	data, out, resume, serve string
	epochs, batch, limit     int
	seed                     uint64
	quiet                    bool
}

// register defines the shared flags on cmd; model names the default
// output directory runs/<model>.
func (f *trainFlags) register(cmd *cobra.Command, model string) {
	fs := cmd.Flags()
	fs.StringVar(&f.data, "data", defaultTrainData, "data set: mnist, fashion-mnist or a directory of IDX files (train-/t10k-images-idx3-ubyte[.gz], …)")
	fs.IntVar(&f.epochs, "epochs", defaultTrainEpochs, "epochs to reach, in total (with --resume: default the run's own)")
	fs.IntVar(&f.batch, "batch", defaultTrainBatch, "mini-batch size")
	fs.Uint64Var(&f.seed, "seed", defaultTrainSeed, "seed of every random stream (same seed, same checkpoint bytes)")
	fs.IntVar(&f.limit, "limit", 0, "use only the first N training images (0: all)")
	fs.StringVar(&f.out, "out", filepath.Join("runs", model), "output directory for the checkpoint, pictures and history (with --resume: default the resumed directory)")
	fs.StringVar(&f.resume, "resume", "", "continue the run saved in this directory (or checkpoint file); --epochs is the total to reach")
	fs.BoolVarP(&f.quiet, "quiet", "q", false, "no progress bar (the line per epoch is still printed)")
	fs.StringVar(&f.serve, "serve", "", "show the job live in a browser at this address, e.g. 127.0.0.1:8080 (page /train)")
	cmd.Args = aeNoArgs
}

// check reports a shared flag out of range as a usage error.
func (f *trainFlags) check(cmd *cobra.Command) error {
	switch {
	case f.epochs <= 0:
		return usageError{fmt.Errorf("--epochs: want at least 1 epoch, got %d", f.epochs)}
	case f.limit < 0:
		return usageError{fmt.Errorf("--limit: want a number of training images ≥ 0 (0 = all), got %d", f.limit)}
	case f.batch <= 0:
		return usageError{fmt.Errorf("--batch: want a batch size > 0, got %d", f.batch)}
	case f.resume == "" && f.out == "":
		return usageError{errors.New("--out: want an output directory")}
	}
	return nil
}

// resumeOut is the output directory of a resumed run: --out when given,
// else the directory of the checkpoint resumed.
func (f *trainFlags) resumeOut(cmd *cobra.Command, checkpoint string) string {
	if cmd.Flags().Changed("out") {
		return f.out
	}
	return filepath.Dir(checkpoint)
}

// stderrIsTerminal reports whether progress bars can be drawn: stderr is
// a terminal, not a file or a pipe.
var stderrIsTerminal = func() bool { return term.IsTerminal(int(os.Stderr.Fd())) }

// progressHooks show a run on the command line: a progress bar on stderr
// when it is a terminal and quiet is false (the epoch, the step, the step's
// metrics, steps/s and the ETA), and one plain line per epoch on out in
// any case, so that redirected output holds one line per epoch and no bar.
// dir is the output directory the epoch's files are named in ("" names
// none).
func progressHooks(out io.Writer, quiet bool, dir string) training.Hooks {
	return progressHooksPrefix(out, quiet, dir, "")
}

// progressHooksPrefix is progressHooks with prefix before every epoch
// line ("classifier ").
func progressHooksPrefix(out io.Writer, quiet bool, dir, prefix string) training.Hooks {
	h := training.Hooks{Epoch: func(r training.EpochReport) { fmt.Fprintln(out, prefix+epochLine(r, dir)) }}
	if quiet || !stderrIsTerminal() {
		return h
	}
	var bar *progressbar.ProgressBar
	return training.Hooks{
		Begin: func(p training.Plan) {
			bar = progressbar.NewOptions(p.Total()-p.Done(),
				progressbar.OptionSetWriter(os.Stderr),
				progressbar.OptionSetWidth(20),
				progressbar.OptionShowCount(),
				progressbar.OptionShowIts(),
				progressbar.OptionSetItsString("steps"),
				progressbar.OptionSetPredictTime(true),
				progressbar.OptionThrottle(150*time.Millisecond),
				progressbar.OptionShowDescriptionAtLineEnd(),
				progressbar.OptionSetRenderBlankState(true),
			)
		},
		Step: func(r training.StepReport) {
			bar.Describe(fmt.Sprintf("epoch %d/%d step %d/%d %s", r.Epoch, r.Epochs, r.StepInEpoch, r.StepsPerEpoch, metrics(r.Metrics, " ")))
			bar.Add(1)
		},
		Epoch: func(training.EpochReport) { bar.Clear() },
		End: func(error) {
			if bar != nil {
				bar.Clear()
				bar.Exit()
			}
		},
	}.Then(h)
}

// epochLine is the line printed after an epoch: "epoch 2/5: 937 steps in
// 52.1 s (18.0 steps/s), mean D loss 1.0234, mean G loss 1.2345; files
// 0.4 s; wrote runs/gan/{…}". Scripts read it (bench/gan/speed.sh,
// bench/autoencoder/seeds.py).
func epochLine(r training.EpochReport, dir string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "epoch %d/%d: %d steps in %.1f s (%.1f steps/s)", r.Epoch, r.Epochs, r.Steps, r.Train.Seconds(), r.StepsPerSecond())
	if len(r.Metrics) > 0 {
		b.WriteString(", " + metrics(r.Metrics, ", "))
	}
	if len(r.Files) > 0 {
		fmt.Fprintf(&b, "; evaluation and files %.1f s", r.End.Seconds())
		if dir != "" {
			fmt.Fprintf(&b, "; wrote %s", filepath.Join(dir, "{"+strings.Join(r.Files, ",")+"}"))
		}
	}
	return b.String()
}

// metrics renders metrics as "name value" pairs joined by sep.
func metrics(ms []training.Metric, sep string) string {
	parts := make([]string, len(ms))
	for i, m := range ms {
		parts[i] = fmt.Sprintf("%s %.4f", m.Name, m.Value)
	}
	return strings.Join(parts, sep)
}

// liveHooks publish a run into the browser view: the plan, the step's
// metrics every ten steps (and at the end of each epoch), each epoch's
// metrics and picture, and the end. scores, if set, takes a GAN's D(x)
// and D(G(z)) out of the step metrics to be drawn as such.
func liveHooks(view *live.Store, kind string, scores func([]training.Metric) ([]training.Metric, *live.DScores)) training.Hooks {
	return training.Hooks{
		Begin: func(p training.Plan) { view.Start(kind, p.Epochs, p.Total()) },
		Step: func(r training.StepReport) {
			if r.Step%10 != 0 && r.StepInEpoch != r.StepsPerEpoch {
				return
			}
			u := live.Update{Epoch: r.Epoch, Step: r.Step}
			ms := r.Metrics
			if scores != nil {
				ms, u.D = scores(ms)
			}
			u.Losses = map[string]float64{}
			for _, m := range ms {
				u.Losses[m.Name] = m.Value
			}
			view.Publish(u)
		},
		Epoch: func(r training.EpochReport) {
			u := live.Update{Epoch: r.Epoch, Step: r.Step, Losses: map[string]float64{},
				Message: fmt.Sprintf("epoch %d done in %.0f s: %s", r.Epoch, r.Train.Seconds(), metrics(r.Metrics, ", "))}
			for _, m := range r.Metrics {
				u.Losses[m.Name] = m.Value
			}
			view.Publish(u)
			if r.Image != nil {
				var buf bytes.Buffer
				if png.Encode(&buf, r.Image) == nil {
					view.PublishGrid(buf.Bytes())
				}
			}
		},
		End: view.Finish,
	}
}

// trainError turns the error of a training run into the command's error:
// an interruption (a *training.InterruptedError, which says where the run
// stopped and where its checkpoint is) becomes an interruptedError (exit
// status 130) that also gives the command resuming the run, when a
// checkpoint is there to resume; anything else is returned as it is.
func trainError(err error, model, dir string, epochs int) error {
	var ie *training.InterruptedError
	if !errors.As(err, &ie) {
		return err
	}
	if ie.Path != "" && (ie.SaveErr == nil || ie.Kept) {
		err = fmt.Errorf("%w\nresume with: backprop train %s --resume %s --epochs %d", err, model, dir, epochs)
	}
	return interruptedError{err}
}
