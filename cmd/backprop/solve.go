package main

import (
	"bufio"
	"fmt"
	"strings"

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
	var onnxFlags onnxSpecFlags
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
			if isONNXSpec(specPath) { // --label is the class index here
				onnxFlags.label, opt.Label = opt.Label, ""
			}
			if err := checkSolveFlags(opt, format); err != nil {
				return err
			}
			if isONNXSpec(specPath) {
				o, err := onnxFlags.options(opt)
				if err != nil {
					return err
				}
				return solveONNX(cmd.OutOrStdout(), specPath, format, o)
			}
			if len(onnxFlags.inputs) > 0 || onnxFlags.objective != "" {
				return usageError{fmt.Errorf("--input and --objective apply to a .onnx --spec")}
			}
			s, err := loadSpec(specPath, examples.Problem1)
			if err != nil {
				return err
			}
			if opt.Label != "" && !hasLayer(s, "logistic") {
				return usageError{fmt.Errorf("--label %s: %s has no logistic layer, so there is no σ(a) whose class to choose; leave --label out", opt.Label, s.File())}
			}
			if opt.MaxElements == 0 {
				// none element by element (Solve reads 0 as its default)
				opt.MaxElements = -1
			}
			sol, err := solve.Solve(s, opt)
			if err != nil {
				return err
			}
			w := bufio.NewWriter(cmd.OutOrStdout())
			switch format {
			case "text":
				err = sol.WriteText(w)
			case "markdown", "md":
				err = sol.WriteMarkdown(w)
			case "json":
				err = sol.WriteJSON(w)
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
	f.StringVar(&opt.Label, "label", "", "which class σ(a) is: y0 (p(y=0) = σ(a)) or y1; default: the spec's, else y0 (a .onnx --spec: the class index K of --objective cross_entropy)")
	f.IntVar(&opt.MaxElements, "elements", 64, "largest tensor shown element by element (0: none)")
	f.IntVar(&opt.Digits, "digits", 6, "significant digits in the trace, 1 to 17")
	onnxFlags.add(cmd)
	completeChoices(cmd, map[string][]string{
		"format": {"text", "markdown", "json"}, "dtype": {"float64", "float32"}, "reshape": {"row-major", "column-major"},
		"kernel": {"pytorch", "flipped"}, "detail": {"handout", "full"}, "label": {"y0", "y1"},
	})
	completeFiles(cmd, "spec", "yaml", "yml", "json", "onnx")
	return cmd
}

// checkSolveFlags refuses a value solve would not understand as a usage
// error, before any work: an unknown enum value, --digits outside 1–17
// (float64 has 17 significant digits at most), a negative --elements.
func checkSolveFlags(opt solve.Options, format string) error {
	for _, c := range []struct {
		flag, value string
		allowed     []string
	}{
		{"--format", format, []string{"text", "markdown", "md", "json"}},
		{"--dtype", opt.DType, []string{"float64", "float32"}},
		{"--reshape", opt.Reshape, []string{"", "row-major", "column-major"}},
		{"--kernel", opt.Kernel, []string{"", "pytorch", "flipped"}},
		{"--detail", opt.Detail, []string{"handout", "full"}},
		{"--label", opt.Label, []string{"", "y0", "y1"}},
	} {
		if err := oneOf(c.flag, c.value, c.allowed...); err != nil {
			return err
		}
	}
	if err := checkDigits(opt.Digits); err != nil {
		return err
	}
	if opt.MaxElements < 0 {
		return usageError{fmt.Errorf("--elements: want 0 or more elements, got %d", opt.MaxElements)}
	}
	return nil
}

// checkDigits refuses a --digits outside 1–17.
func checkDigits(d int) error {
	if d < 1 || d > 17 {
		return usageError{fmt.Errorf("--digits: want 1 to 17 significant digits, got %d", d)}
	}
	return nil
}

// oneOf refuses a flag value outside allowed ("" in allowed: the flag may
// be left empty).
func oneOf(flag, value string, allowed ...string) error {
	for _, a := range allowed {
		if value == a {
			return nil
		}
	}
	var shown []string
	for _, a := range allowed {
		if a != "" && a != "md" {
			shown = append(shown, a)
		}
	}
	return usageError{fmt.Errorf("%s: want %s, got %q", flag, orList(shown), value)}
}

// orList renders [a b c] as "a, b or c".
func orList(s []string) string {
	if len(s) <= 1 {
		return strings.Join(s, "")
	}
	return strings.Join(s[:len(s)-1], ", ") + " or " + s[len(s)-1]
}

// hasLayer reports whether the spec has a layer of the type.
func hasLayer(s *spec.Spec, typ string) bool {
	for _, l := range s.Layers {
		if l.Type == typ {
			return true
		}
	}
	return false
}

// completeChoices registers shell completion of the allowed values of
// enum flags.
func completeChoices(cmd *cobra.Command, choices map[string][]string) {
	for flag, values := range choices {
		_ = cmd.RegisterFlagCompletionFunc(flag, cobra.FixedCompletions(values, cobra.ShellCompDirectiveNoFileComp))
	}
}

// completeFiles makes the shell complete a flag with files of the given
// extensions.
func completeFiles(cmd *cobra.Command, flag string, exts ...string) {
	_ = cmd.MarkFlagFilename(flag, exts...)
}
