package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/backprop-dev/backprop/grade"
)

// gradeCmd is `backprop grade`: a student's numbers against a variant's key.
func gradeCmd() *cobra.Command {
	var keyPath, answersPath, format string
	var o grade.Options
	cmd := &cobra.Command{
		Use:   "grade --key KEY.json --answers ANSWERS.json [--tol 1e-3]",
		Short: "Check a student's numbers against the answer key of a variant",
		Long: `grade checks the numbers in ANSWERS.json (shaped like the variant's
answers-template.json: "forward" values and "gradients", null where not
answered) against KEY.json from backprop variant. It lists every wrong number
with the expected value, names the first step of the worked trace (forward
steps, then backward steps) where the answers leave the correct path together
with the worked line of that step, and says when the numbers fit another
reading of the problem (reshape order, kernel orientation, label).

A number is right when |got − expected| ≤ tol·max(|expected|, m/1000) + atol,
where m is the largest magnitude in its tensor. The exit status is 0 when every
checked number is right, 1 when any is wrong or the answers do not fit the key,
2 for a mistake in the command line.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if keyPath == "" || answersPath == "" {
				return usageError{fmt.Errorf("grade: --key and --answers are required")}
			}
			if o.Rel <= 0 || o.Abs < 0 {
				return usageError{fmt.Errorf("grade: --tol must be positive and --atol not negative")}
			}
			if format != "text" && format != "json" {
				return usageError{fmt.Errorf("--format: want text or json, got %q", format)}
			}
			k, err := grade.ReadKey(keyPath)
			if err != nil {
				return err
			}
			a, err := grade.ReadAnswers(answersPath)
			if err != nil {
				return err
			}
			r := grade.Grade(k, a, o)
			w := cmd.OutOrStdout()
			if format == "json" {
				err = r.WriteJSON(w)
			} else {
				err = r.WriteText(w, o)
			}
			if err != nil {
				return err
			}
			switch {
			case r.OK():
				return nil
			case r.First != nil:
				return fmt.Errorf("%d wrong number(s); the first wrong step is %s step %d (%s)", len(r.Wrong), r.First.Pass, r.First.Step, r.First.Target)
			case len(r.Problems) > 0:
				return fmt.Errorf("the answers do not fit the key (%d problem(s))", len(r.Problems))
			default:
				return fmt.Errorf("nothing to grade")
			}
		},
	}
	f := cmd.Flags()
	f.StringVar(&keyPath, "key", "", "key.json of the variant (from backprop variant)")
	f.StringVar(&answersPath, "answers", "", "the student's answers (JSON, shaped like answers-template.json)")
	f.Float64Var(&o.Rel, "tol", 1e-3, "relative tolerance")
	f.Float64Var(&o.Abs, "atol", 0, "absolute tolerance added to the relative one")
	f.StringVar(&format, "format", "text", "report: text or json")
	return cmd
}
