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
answered; the output of backprop solve --format json is accepted as it is)
against KEY.json from backprop variant, and marks every number right,
follow-through or wrong.

Follow-through is method credit: a number that differs from the key only
because it was computed, correctly, from an earlier wrong number of the
student's own. The key's network is re-run from the student's values to tell
(forward from their forward values; backward from their gradients, where a
bias gradient stands for the pre-activation gradient it equals). In a
recurrent network a slip in one time step's state carried forward
consistently is one wrong number: the later steps earn follow-through.

The report gives a score per task (forward values, gradients) and per tensor
(right + follow-through of the numbers asked), the wrong numbers grouped by
tensor, and either the cause of the wrong numbers, when a common global mistake
explains them all (every gradient with the opposite sign, a factor of 2 or ½,
for a mean cross-entropy over a batch the forgotten 1/N, a transposed weight
gradient, in an RNN backpropagation through time truncated to one step (the
gradient from step t+1 forgotten), in attention the forgotten 1/sqrt(d_k) of
the scores, another reading of the problem: reshape order,
kernel orientation, label), or the first step of the worked trace where the
answers leave the correct path with its worked line. It ends with a summary
paragraph to paste into the student's feedback; --format json carries the same.

A number is right when |got − expected| ≤ tol·max(|expected|, m/1000) + atol,
where m is the largest magnitude in its tensor. The exit status is 0 when every
checked number is right, 1 when any is not (wrong or follow-through) or the
answers do not fit the key (the report says which), 2 for a mistake in the
command line.`,
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
			if !r.OK() {
				// the report has said it all; the error only sets the exit status
				cmd.SilenceErrors, cmd.SilenceUsage = true, true
			}
			switch {
			case r.OK():
				return nil
			case r.Checked == 0 && len(r.Problems) == 0:
				return quietError{fmt.Errorf("nothing to grade")}
			default:
				// the report on stdout says what is wrong: only the status
				return quietError{fmt.Errorf("%d wrong, %d follow-through, %d problem(s)", len(r.Wrong), len(r.FollowThrough), len(r.Problems))}
			}
		},
	}
	f := cmd.Flags()
	f.StringVar(&keyPath, "key", "", "key.json of the variant (from backprop variant)")
	f.StringVar(&answersPath, "answers", "", "the student's answers (JSON, shaped like answers-template.json)")
	f.Float64Var(&o.Rel, "tol", 1e-3, "relative tolerance")
	f.Float64Var(&o.Abs, "atol", 0, "absolute tolerance added to the relative one")
	f.StringVar(&format, "format", "text", "report: text or json")
	completeChoices(cmd, map[string][]string{"format": {"text", "json"}})
	completeFiles(cmd, "key", "json")
	completeFiles(cmd, "answers", "json")
	return cmd
}

// quietError is an outcome already reported on stdout: main sets the exit
// status from it without printing it again (after a report that ends in
// its summary paragraph).
type quietError struct{ error }

// Quiet marks the error as reported.
func (quietError) Quiet() bool { return true }
