package main

import (
	"bufio"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/backprop-dev/backprop/derive"
	"github.com/backprop-dev/backprop/examples"
	"github.com/backprop-dev/backprop/solve"
)

func deriveCmd() *cobra.Command {
	var specPath, format, form string
	var check bool
	var seed uint64
	var onnxFlags onnxSpecFlags
	cmd := &cobra.Command{
		Use:   "derive [autoencoder|gan] [--spec FILE]",
		Short: "Gradient equations of a network, derived from its graph",
		Long: `derive walks a network's graph backwards and writes the chain of gradient
equations with the network's own names, per sample and in batched matrix form
over N samples. "autoencoder" is Problem 2 of the problem set, derived in
symbolic sizes (x ∈ ℝ^d, h ∈ ℝ^k) with the scalar chain rule for one weight
before the vector form; "gan" is Problem 1; --spec takes any network in the
spec format, with the sizes it fixes. The batched form writes every
broadcast out (U1 = X·w1 + 1_N·b1ᵀ, ∂L/∂b1 = Δ1ᵀ·1_N).

--check evaluates the derived equations numerically on random inputs and
weights and compares them with autodiff and with finite differences; it exits
non-zero when any relative difference exceeds 1e-6.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if isONNXSpec(specPath) && len(args) == 0 {
				o, err := onnxFlags.options(solve.Options{})
				if err != nil {
					return err
				}
				if check || form != "both" {
					return usageError{fmt.Errorf("--check and --form apply to specs; a .onnx model is derived for its input as given")}
				}
				return deriveONNX(cmd.OutOrStdout(), specPath, format, o)
			}
			if len(onnxFlags.inputs) > 0 || onnxFlags.objective != "" || onnxFlags.label != "" {
				return usageError{fmt.Errorf("--input, --objective and --label apply to a .onnx --spec")}
			}
			builtin := examples.Problem1
			if len(args) == 1 {
				switch args[0] {
				case "autoencoder", "ae":
					builtin = examples.Autoencoder
				case "gan":
				default:
					return usageError{fmt.Errorf("derive: unknown network %q: want autoencoder or gan, or --spec FILE", args[0])}
				}
				if specPath != "" {
					return usageError{fmt.Errorf("derive: give a network name or --spec, not both")}
				}
			} else if specPath == "" {
				return usageError{fmt.Errorf("derive: name a network (autoencoder or gan) or give --spec FILE")}
			}
			s, err := loadSpec(specPath, builtin)
			if err != nil {
				return err
			}
			opt := derive.Options{}
			var batches []int
			switch form {
			case "both":
				batches = []int{0, derive.BatchSize}
			case "sample":
				batches, opt.Sample = []int{0}, true
			case "batched":
				batches, opt.Batched = []int{derive.BatchSize}, true
			default:
				return usageError{fmt.Errorf("--form: want sample, batched or both, got %q", form)}
			}
			if check {
				return runCheck(s.Title, func(batch int) ([]derive.CheckResult, error) {
					return derive.Check(s, batch, rand.New(rand.NewPCG(seed, uint64(batch))))
				}, batches)
			}
			if format != "text" && format != "markdown" && format != "md" && format != "json" {
				return usageError{fmt.Errorf("--format: want text, markdown or json, got %q", format)}
			}
			if builtin == examples.Autoencoder && specPath == "" {
				// Problem 2 gives no sizes: derive it in symbols (x ∈ ℝ^d,
				// h ∈ ℝ^k); the worked example's numbers are solve's
				opt.Symbolic = true
				opt.Title = strings.TrimSuffix(s.Title, " (worked example)")
			}
			w := bufio.NewWriter(cmd.OutOrStdout())
			if err := derive.Write(w, s, format, opt); err != nil {
				return err
			}
			return w.Flush()
		},
	}
	f := cmd.Flags()
	f.StringVar(&specPath, "spec", "", "network spec file (JSON or YAML)")
	f.StringVar(&format, "format", "text", "output: text, markdown or json")
	f.StringVar(&form, "form", "both", "sample, batched or both")
	f.BoolVar(&check, "check", false, "evaluate the equations on random values against autodiff and finite differences")
	f.Uint64Var(&seed, "seed", 1, "random seed for --check")
	onnxFlags.add(cmd)
	f.StringVar(&onnxFlags.label, "label", "", "with a .onnx --spec and --objective cross_entropy: the class index K (from 0; comma-separated, one per row)")
	cmd.ValidArgs = []string{"autoencoder", "gan"}
	completeChoices(cmd, map[string][]string{"format": {"text", "markdown", "json"}, "form": {"sample", "batched", "both"}})
	completeFiles(cmd, "spec", "yaml", "yml", "json", "onnx")
	return cmd
}

// runCheck prints the largest relative difference per gradient and fails
// above 1e-6.
func runCheck(title string, check func(batch int) ([]derive.CheckResult, error), batches []int) error {
	const tol = 1e-6
	worst := 0.0
	tw := tabwriter.NewWriter(os.Stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "Checking the derived equations of %s on random inputs and weights (float64)\n", title)
	fmt.Fprintf(tw, "relative difference = max |derived − reference| / max |reference|, per gradient\n\n")
	for _, n := range batches {
		form := "per sample"
		if n > 0 {
			form = fmt.Sprintf("batched, N = %d", n)
		}
		res, err := check(n)
		var declined *derive.DeclinedError
		if errors.As(err, &declined) {
			fmt.Fprintf(tw, "%s: not checked. %s\n\n", form, declined.Reason)
			continue
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(tw, "%s:\n\tgradient\tvs autodiff\tvs finite differences\t\n", form)
		for _, r := range res {
			fd := "—"
			if r.VsFiniteDiff >= 0 {
				fd = fmt.Sprintf("%.2e", r.VsFiniteDiff)
				worst = max(worst, r.VsFiniteDiff)
			}
			worst = max(worst, r.VsAutodiff)
			fmt.Fprintf(tw, "\t%s\t%.2e\t%s\t\n", r.Name, r.VsAutodiff, fd)
		}
		fmt.Fprintln(tw)
	}
	tw.Flush()
	if worst > tol {
		return fmt.Errorf("check failed: largest relative difference %.3g exceeds %g", worst, tol)
	}
	fmt.Printf("OK: largest relative difference %.3g (tolerance %g)\n", worst, tol)
	return nil
}
