package main

import (
	"os"
	"runtime/debug"

	"github.com/spf13/cobra"
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
