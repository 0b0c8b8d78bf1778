package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/backprop-dev/backprop/onnx"
	"github.com/backprop-dev/backprop/onnx/backendtest"
)

// onnxCmds are the ONNX commands: onnx (test, ops) and export.
func onnxCmds() []*cobra.Command {
	return []*cobra.Command{onnxCmd(), exportCmd()}
}

// onnxCmd is `backprop onnx`, the commands that read ONNX models.
func onnxCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "onnx",
		Short: "Run ONNX models and ONNX backend-test directories on the engine",
		Long: `onnx groups the commands that import ONNX models onto the engine.

  backprop onnx test DIR...   run ONNX backend-test directories and report each case
  backprop onnx ops           list the ONNX operators the importer implements`,
	}
	cmd.AddCommand(onnxTestCmd(), onnxOpsCmd())
	return cmd
}

// failedCases is the outcome of onnx test with a failure: the report is
// printed, only the exit status is left to set.
type failedCases struct{ n int }

func (e failedCases) Error() string { return fmt.Sprintf("%d cases failed", e.n) }
func (e failedCases) Quiet() bool   { return true }

func onnxTestCmd() *cobra.Command {
	var (
		rtol, atol  float64
		float32Mode bool
		quiet       bool
	)
	cmd := &cobra.Command{
		Use:   "test DIR...",
		Short: "Run ONNX backend-test directories through the importer",
		Long: `test runs ONNX backend-test directories through the importer: each DIR holds model.onnx
and test_data_set_*/input_N.pb, output_N.pb (ONNX's own test data, or what
'backprop export --test-data' writes); a DIR without model.onnx is a suite whose
subdirectories are the tests (e.g. /usr/share/libonnx-testdata/data/node).

Every data set is one case, printed as PASS, FAIL or UNSUPPORTED (an operator,
attribute or element type the importer does not implement, named), then the line
"N passed, M failed, K unsupported". Outputs are compared as ONNX's backend tests
compare them: |got − want| ≤ atol + rtol·|want|, by default rtol 1e-3, atol 1e-7.
The exit status is 1 when any case failed.`,
		Example: `  backprop onnx test /usr/share/libonnx-testdata/data/node/test_conv_with_strides_padding
  backprop onnx test -q /usr/share/libonnx-testdata/data/node`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if rtol < 0 || atol < 0 {
				return usageError{fmt.Errorf("--rtol and --atol must not be negative, got %g and %g", rtol, atol)}
			}
			dirs, err := backendtest.FindDirs(args)
			if err != nil {
				return err
			}
			sum := runBackendTests(cmd.OutOrStdout(), dirs, backendtest.Options{RTol: rtol, ATol: atol, Float32: float32Mode}, quiet)
			if sum.Failed > 0 {
				return failedCases{sum.Failed}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.Float64Var(&rtol, "rtol", backendtest.DefaultRTol, "relative tolerance")
	f.Float64Var(&atol, "atol", backendtest.DefaultATol, "absolute tolerance")
	f.BoolVar(&float32Mode, "float32", false, "compute in float32 (default float64)")
	f.BoolVarP(&quiet, "quiet", "q", false, "print only failed cases and the summary")
	return cmd
}

// runBackendTests runs the directories, printing a line per case (only
// failures when quiet) and the summary line.
func runBackendTests(w io.Writer, dirs []string, opt backendtest.Options, quiet bool) backendtest.Summary {
	var sum backendtest.Summary
	for _, d := range dirs {
		for _, r := range backendtest.RunDir(d, opt) {
			sum.Add(r)
			if quiet && r.Status != backendtest.Failed {
				continue
			}
			line := fmt.Sprintf("%-11s %s", r.Status, r.Name())
			if r.Detail != "" {
				line += ": " + strings.ReplaceAll(r.Detail, "\n", "; ")
			}
			fmt.Fprintln(w, line)
		}
	}
	fmt.Fprintln(w, sum)
	return sum
}

func onnxOpsCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "ops",
		Short: "List the ONNX operators the importer implements",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "ONNX operators of the default domain, up to opset %d:\n", onnx.MaxOpset)
			for _, op := range onnx.SupportedOperators() {
				fmt.Fprintf(w, "  %-19s from opset %d\n", op, onnx.OperatorSince(op))
			}
			return nil
		},
	}
}
