package main

import (
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/backprop-dev/backprop/data"
	"github.com/backprop-dev/backprop/eval"
	"github.com/backprop-dev/backprop/gan"
	"github.com/backprop-dev/backprop/training"
)

// sampleCmd is `backprop sample`: draws images from a trained DCGAN
// checkpoint and writes them as an IDX file (for evaluation and any MNIST
// tool) or a PNG grid (to look at).
func sampleCmd() *cobra.Command {
	var (
		checkpoint, out string
		class           string
		noEMA           bool
		n               int
		seed            uint64
	)
	cmd := &cobra.Command{
		Use:   "sample",
		Short: "Generate images from a trained DCGAN checkpoint (IDX or PNG grid)",
		Long: `Generate --n images with the generator of a checkpoint written by "backprop train gan"
(BatchNorm in evaluation mode, noise from --seed). The output format follows the extension of
--out: .png writes a grid, anything else an IDX file of unsigned bytes in MNIST's format
(gzip-compressed if it ends in .gz), which "backprop eval --samples" reads.

The images are generated and written 256 at a time, so memory does not grow with --n (a PNG
grid holds one row of tiles). The file appears only when it is complete: Ctrl-C (exit status
130) or an error leaves no partial file, and an existing file at --out stays as it was.

A class-conditional checkpoint (the default recipe of train gan, or --conditional) takes --class:
a digit 0-9 draws every image of that class, "all" draws --n/10 images of each class (--n a
multiple of 10): a PNG grid has one row per class; in an IDX file the classes cycle 0, 1, ..., 9,
0, 1, ..., so that every run of consecutive samples holds the classes equally often, as the
Inception Score's splits assume. Without --class the classes are drawn in turn the same way (any
--n; a PNG grid has one row per class when --n is a multiple of 10). For an IDX file the classes
asked for are written beside it (S-labels.idx.gz for S.idx.gz), where "backprop eval" finds them
to report the per-class precision. --class is
refused for an unconditional checkpoint.`,
		Example: `  backprop sample --checkpoint runs/mnist/checkpoint.safetensors --n 10000 --out samples.idx.gz
  backprop sample --checkpoint runs/mnist/checkpoint-epoch5.safetensors --n 64 --out grid.png
  backprop sample --checkpoint runs/cond/checkpoint.safetensors --class all --n 100 --out classes.png
  backprop sample --checkpoint runs/cond/checkpoint.safetensors --class 7 --n 10000 --out sevens.idx.gz`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch {
			case checkpoint == "":
				return usageError{fmt.Errorf("--checkpoint FILE is required (a checkpoint written by backprop train gan)")}
			case out == "":
				return usageError{fmt.Errorf("--out FILE is required (.png for a grid, otherwise IDX, .gz for gzipped IDX)")}
			case n <= 0:
				return usageError{fmt.Errorf("--n must be a positive number of images, got %d", n)}
			}
			// what sample allocates is recycled chunk after chunk: keep
			// the heap near what is live, as train does
			tuneGC()
			classOf, cols, err := sampleClasses(class, n, strings.EqualFold(filepath.Ext(out), ".png"))
			if err != nil {
				return err
			}
			ck, err := gan.OpenCheckpoint(checkpoint)
			if err != nil {
				return err
			}
			switch {
			case ck.Conditional() && classOf == nil:
				// no class asked for: every class in turn, as a
				// class-conditional model's unconditional samples are
				// drawn (BigGAN's y ~ uniform), so that the Inception
				// Score's splits each hold the classes equally often
				classOf, cols = everyClass(n, strings.EqualFold(filepath.Ext(out), ".png"))
			case !ck.Conditional() && classOf != nil:
				return usageError{fmt.Errorf("--class %s: %s is not class-conditional (trained without --conditional); sample it without --class", class, ck.Path)}
			}
			generator := ck.Generator
			if noEMA {
				if ck.Config.Recipe.EMA == 0 {
					return usageError{fmt.Errorf("--no-ema: %s was trained without --ema; it has only the trained generator", ck.Path)}
				}
				generator = ck.TrainedGenerator
			}
			g, err := generator()
			if err != nil {
				return err
			}
			// Ctrl-C stops between two chunks; the file is written
			// atomically, so nothing of it is left behind
			ctx, stop := training.InterruptContext(cmd.Context())
			defer stop()
			write := func() error { return gan.WriteSampleFile(ctx, out, g, n, seed) }
			if classOf != nil {
				write = func() error { return gan.WriteLabeledSampleFile(ctx, out, g, n, seed, classOf, cols) }
			}
			if err := write(); err != nil {
				if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
					return interruptedError{fmt.Errorf("sample interrupted; nothing was written to %s", out)}
				}
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %d samples of %s (epoch %d, step %d) to %s\n", n, ck.Path, ck.Epoch, ck.Step, out)
			if classOf != nil && !strings.EqualFold(filepath.Ext(out), ".png") {
				labels := make([]uint8, n)
				for i := range labels {
					labels[i] = uint8(classOf(i))
				}
				lp := eval.LabelsPath(out)
				if err := data.WriteIDX(lp, []int{n}, labels); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "wrote the classes asked for to %s\n", lp)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&checkpoint, "checkpoint", "", "checkpoint file (checkpoint.safetensors or checkpoint-epochN.safetensors)")
	f.IntVar(&n, "n", 64, "number of images")
	f.StringVar(&out, "out", "", "output file: .png for a grid, otherwise IDX (.gz: gzipped)")
	f.Uint64Var(&seed, "seed", 1, "random seed of the noise")
	f.BoolVar(&noEMA, "no-ema", false, "sample the trained generator rather than its moving average (a run trained with --ema)")
	f.StringVar(&class, "class", "", "class to draw from a conditional checkpoint: 0-9, or all (one row per class)")
	return cmd
}

// everyClass draws the classes in turn: for a PNG grid whose n is a
// multiple of the class count, class after class with one row per class
// (n/10 columns); otherwise cycling through the classes, image i of class
// i mod 10.
func everyClass(n int, png bool) (classOf func(int) int, cols int) {
	if png && n%gan.Classes == 0 {
		per := n / gan.Classes
		return func(i int) int { return i / per }, per
	}
	return func(i int) int { return i % gan.Classes }, 0
}

// sampleClasses reads --class: nil for none; a digit gives every image
// that class; "all" gives n/10 images of each class: for a PNG grid
// (png) class after class in a grid of n/10 columns (one row per class),
// otherwise cycling through the classes (image i of class i mod 10), so
// that the Inception Score's splits of consecutive samples each hold
// every class equally often.
func sampleClasses(class string, n int, png bool) (classOf func(int) int, cols int, err error) {
	switch class {
	case "":
		return nil, 0, nil
	case "all":
		if n%gan.Classes != 0 {
			return nil, 0, usageError{fmt.Errorf("--class all: --n must be a multiple of %d (the same number of each class), got %d", gan.Classes, n)}
		}
		classOf, cols := everyClass(n, png)
		return classOf, cols, nil
	}
	c, err := strconv.Atoi(class)
	if err != nil || c < 0 || c >= gan.Classes {
		return nil, 0, usageError{fmt.Errorf("--class: want a class 0…%d or all, got %q", gan.Classes-1, class)}
	}
	return func(int) int { return c }, 0, nil
}
