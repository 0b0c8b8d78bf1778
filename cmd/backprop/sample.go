package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/backprop-dev/backprop/gan"
	"github.com/backprop-dev/backprop/training"
)

// sampleCmd is `backprop sample`: draws images from a trained DCGAN
// checkpoint and writes them as an IDX file (for evaluation and any MNIST
// tool) or a PNG grid (to look at).
func sampleCmd() *cobra.Command {
	var (
		checkpoint, out string
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
130) or an error leaves no partial file, and an existing file at --out stays as it was.`,
		Example: `  backprop sample --checkpoint runs/mnist/checkpoint.safetensors --n 10000 --out samples.idx.gz
  backprop sample --checkpoint runs/mnist/checkpoint-epoch5.safetensors --n 64 --out grid.png`,
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
			ck, err := gan.OpenCheckpoint(checkpoint)
			if err != nil {
				return err
			}
			g, err := ck.Generator()
			if err != nil {
				return err
			}
			// Ctrl-C stops between two chunks; the file is written
			// atomically, so nothing of it is left behind
			ctx, stop := training.InterruptContext(cmd.Context())
			defer stop()
			if err := gan.WriteSampleFile(ctx, out, g, n, seed); err != nil {
				if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
					return interruptedError{fmt.Errorf("sample interrupted; nothing was written to %s", out)}
				}
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %d samples of %s (epoch %d, step %d) to %s\n", n, ck.Path, ck.Epoch, ck.Step, out)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&checkpoint, "checkpoint", "", "checkpoint file (checkpoint.safetensors or checkpoint-epochN.safetensors)")
	f.IntVar(&n, "n", 64, "number of images")
	f.StringVar(&out, "out", "", "output file: .png for a grid, otherwise IDX (.gz: gzipped)")
	f.Uint64Var(&seed, "seed", 1, "random seed of the noise")
	return cmd
}
