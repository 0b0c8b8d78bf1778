package main

import (
	"bufio"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/backprop-dev/backprop/derive"
	"github.com/backprop-dev/backprop/onnx"
	"github.com/backprop-dev/backprop/onnx/backendtest"
	"github.com/backprop-dev/backprop/solve"
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

// onnxSpecFlags are the flags of solve and derive that apply to a .onnx
// --spec: its input files, the objective and the class labels.
type onnxSpecFlags struct {
	inputs    []string
	objective string
	label     string // solve's --label: class indices for cross_entropy
}

// isONNXSpec reports whether --spec names an ONNX model.
func isONNXSpec(path string) bool {
	return strings.EqualFold(filepath.Ext(path), ".onnx")
}

// add registers --input and --objective (solve's --label is its own).
func (o *onnxSpecFlags) add(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringArrayVar(&o.inputs, "input", nil, "with a .onnx --spec: the model's input, a JSON nested list or an ONNX TensorProto .pb (repeat for each input, in order)")
	f.StringVar(&o.objective, "objective", "", "with a .onnx --spec without a loss: sum (J = Σ output) or cross_entropy (with --label)")
}

// options turns the flags into solve's options for an ONNX model; a flag
// that only applies to specs, or a value out of place, is a usage error.
func (o *onnxSpecFlags) options(base solve.Options) (solve.ONNXOptions, error) {
	opt := solve.ONNXOptions{Options: base, Inputs: o.inputs, Objective: o.objective}
	if opt.MaxElements == 0 {
		opt.MaxElements = -1 // --elements 0: none element by element (SolveONNX reads 0 as its default)
	}
	if base.Reshape != "" || base.Kernel != "" {
		return opt, usageError{fmt.Errorf("--reshape and --kernel apply to specs, not to ONNX models")}
	}
	if len(o.inputs) == 0 {
		return opt, usageError{fmt.Errorf("a .onnx --spec needs --input FILE (a JSON nested list or a TensorProto .pb)")}
	}
	switch o.objective {
	case "", solve.ObjectiveSum:
		if o.label != "" {
			return opt, usageError{fmt.Errorf("--label applies to --objective cross_entropy")}
		}
	case solve.ObjectiveCrossEntropy:
		if o.label == "" {
			return opt, usageError{fmt.Errorf("--objective cross_entropy needs --label K (the class index from 0, one per row: --label 2 or --label 2,0)")}
		}
		for _, s := range strings.Split(o.label, ",") {
			k, err := strconv.Atoi(strings.TrimSpace(s))
			if err != nil {
				return opt, usageError{fmt.Errorf("--label %q: want class indices from 0, comma-separated", o.label)}
			}
			opt.Labels = append(opt.Labels, k)
		}
	default:
		return opt, usageError{fmt.Errorf("--objective: want %s or %s, got %q", solve.ObjectiveSum, solve.ObjectiveCrossEntropy, o.objective)}
	}
	return opt, nil
}

// solveONNX is `backprop solve --spec MODEL.onnx`: the worked solution of
// an imported model in format text, markdown or json.
func solveONNX(w io.Writer, path, format string, opt solve.ONNXOptions) error {
	sol, err := solve.SolveONNX(path, opt)
	if err != nil {
		return err
	}
	bw := bufio.NewWriter(w)
	switch format {
	case "markdown", "md":
		err = sol.WriteMarkdown(bw)
	case "json":
		err = sol.WriteJSON(bw)
	default:
		err = sol.WriteText(bw)
	}
	if err != nil {
		return err
	}
	return bw.Flush()
}

// deriveONNX is `backprop derive --spec MODEL.onnx`: the gradient
// equations of an imported model, per sample (the input's own shape).
func deriveONNX(w io.Writer, path, format string, opt solve.ONNXOptions) error {
	g, err := solve.BuildONNX[float64](path, opt)
	if err != nil {
		return err
	}
	d, err := derive.Graph(g.Nodes, g.Objective, false)
	if err != nil {
		return err
	}
	bw := bufio.NewWriter(w)
	if err := derive.WriteDocument(bw, g.Title, format, []*derive.Derivation{d}); err != nil {
		return err
	}
	return bw.Flush()
}
