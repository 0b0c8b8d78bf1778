// Command backprop is a deep-learning engine whose forward and backward
// propagation you can read: it solves the problem set's worked problems step
// by step and trains real networks on real data.
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

func main() {
	root := &cobra.Command{
		Use:           "backprop",
		Short:         "Forward and backward propagation you can read",
		Long:          "backprop solves forward and backward propagation exactly and shows its work, derives gradient equations, and trains networks on real data.",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(solveCmd(), deriveCmd(), trainCmd(), reconstructCmd(), sampleCmd(), evalCmd(), serveCmd(), variantCmd(), gradeCmd(), benchCmd())
	if err := root.Execute(); err != nil {
		// a command that already reported the outcome on stdout (grade)
		// only sets the exit status
		var quiet interface{ Quiet() bool }
		if !errors.As(err, &quiet) || !quiet.Quiet() {
			fmt.Fprintln(os.Stderr, "backprop:", err)
		}
		var ue usageError
		if errors.As(err, &ue) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

// usageError marks mistakes in the command line (exit status 2).
type usageError struct{ error }
