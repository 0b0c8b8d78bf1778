package main

import (
	"bufio"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/backprop-dev/backprop/examples"
	"github.com/backprop-dev/backprop/solve"
	"github.com/backprop-dev/backprop/spec"
)

// loadSpec reads --spec, or the built-in Problem 1 when it is empty.
func loadSpec(path, builtin string) (*spec.Spec, error) {
	if path == "" {
		data, err := examples.FS.ReadFile(builtin)
		if err != nil {
			return nil, err
		}
		return spec.Parse("examples/"+builtin, data)
	}
	return spec.ReadFile(path)
}

func solveCmd() *cobra.Command {
	var opt solve.Options
	var specPath, format string
	cmd := &cobra.Command{
		Use:   "solve [--spec FILE]",
		Short: "Forward and backward pass of a small network, every step shown",
		Long: `solve computes every value and gradient of a small network and shows the work:
each forward step with its formula and the numbers substituted, then each
backward step with the upstream gradient, the local derivative and the result.

With no --spec it solves Problem 1 of the problem set (the tiny GAN) exactly as
given. The spec format is documented in the README; examples/ has samples.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := loadSpec(specPath, examples.Problem1)
			if err != nil {
				return err
			}
			sol, err := solve.Solve(s, opt)
			if err != nil {
				return err
			}
			w := bufio.NewWriter(os.Stdout)
			switch format {
			case "text":
				err = sol.WriteText(w)
			case "markdown", "md":
				err = sol.WriteMarkdown(w)
			case "json":
				err = sol.WriteJSON(w)
			default:
				return usageError{fmt.Errorf("--format: want text, markdown or json, got %q", format)}
			}
			if err != nil {
				return err
			}
			return w.Flush()
		},
	}
	f := cmd.Flags()
	f.StringVar(&specPath, "spec", "", "network spec file (JSON or YAML); default: Problem 1 of the problem set")
	f.StringVar(&format, "format", "text", "output: text, markdown or json")
	f.StringVar(&opt.DType, "dtype", "float64", "precision: float64 or float32")
	f.StringVar(&opt.Reshape, "reshape", "", "reshape order: row-major (NumPy, PyTorch) or column-major (MATLAB); default: the spec's, else row-major")
	f.StringVar(&opt.Kernel, "kernel", "", "deconv kernel: pytorch (ConvTranspose2d, the textbook full convolution) or flipped (the kernel slid unrotated, a full cross-correlation); default: the spec's, else pytorch")
	f.StringVar(&opt.Detail, "detail", "handout", "text and markdown: handout (a few elements worked per step, the answers asked for) or full (every element of every step)")
	f.StringVar(&opt.Label, "label", "", "which class σ(a) is: y0 (p(y=0) = σ(a)) or y1; default: the spec's, else y0")
	f.IntVar(&opt.MaxElements, "elements", 64, "largest tensor shown element by element")
	f.IntVar(&opt.Digits, "digits", 6, "significant digits in the trace")
	return cmd
}
