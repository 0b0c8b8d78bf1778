package main

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/backprop-dev/backprop/variant"
)

// variantCmd is `backprop variant`: randomized versions of the problems
// with student sheets and answer keys.
func variantCmd() *cobra.Command {
	var o variant.Options
	var out string
	var noPDF bool
	cmd := &cobra.Command{
		Use:   "variant --seed N --count K --out DIR [--problem gan|autoencoder|both|softmax|convnet|rnn|attention|all]",
		Short: "Randomized versions of the problems, with student sheets and answer keys",
		Long: `variant writes K randomized versions of Problem 1 (the tiny GAN) and/or
Problem 2 (the auto-encoder, with small numbers) into DIR; --problem softmax
draws the softmax classifier of the problem bank (a batch of 3 samples, a ReLU
hidden layer, the mean cross-entropy against class labels), --problem convnet
the conv net (convolution + ReLU, max pooling, flatten, a linear layer and
cross-entropy), --problem rnn an Elman RNN over 3 time steps with a read-out
at every step under 1/2 squared error (backpropagation through time),
--problem attention one head of scaled dot-product attention over 3 tokens,
--problem all the six. Weights are drawn at --precision
decimals (1, like the problem set); --vary-sizes also draws the sizes (z length,
channels, kernel size; input and hidden sizes; batch, features, hidden units and
classes; image side, filters, kernel and pooling stride). The same options always
give byte-identical files.

Draws are fair: a variant is redrawn until every sigmoid's pre-activation (the
discriminator's a, the decoder's u2) lies within ±4, so that p written to four
digits still gives gradients of the right size, and at least one ReLU unit is off (with
at least one on in every layer), so that the masks matter; the softmax classifier
and the conv net also keep every row of logits within a spread of 4, have two
labels or more and a sample the network gets wrong in a batch, and no tie in a
pooling window (so each gradient has one way back); the RNN keeps every
pre-activation within ±2 (no saturated tanh), the attention head every
attention weight at most 0.95 (no nearly one-hot softmax row). --any-draws turns
this off and draws the numbers variants had before fair draws (the discriminator
may saturate, every ReLU may be on).

Each variant gets a folder with
  sheet.md               the student sheet: the network, its numbers, the tasks
  sheet.pdf              the same as PDF, when pandoc and a LaTeX engine are on PATH
  answers-template.json  exactly the values the sheet asks for, every number null
                         (Problem 1: h0, h1, h2, a and the gradients of w1 and w0)
  key/spec.yaml          the network in the spec format
  key/key.json           the answer key for backprop grade
  key/solution.md        the worked solution, as a handout
  key/solution-full.md   every element of every step; its step numbers are
                         those of key.json and of backprop grade's reports
  key/derivation.md      the gradient equations (auto-encoder variants)
Hand out sheet.md (or sheet.pdf) and answers-template.json; keep key/.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return usageError{fmt.Errorf("variant: --out DIR is required")}
			}
			if !cmd.Flags().Changed("seed") {
				return usageError{fmt.Errorf("variant: --seed N is required, so that the same sheets can be made again")}
			}
			if err := o.Check(); err != nil {
				return usageError{fmt.Errorf("variant: %w", err)}
			}
			vs, err := variant.Generate(o)
			if err != nil {
				return err
			}
			if _, err := variant.Write(out, o, vs); err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "wrote %d variant(s) to %s (index: %s)\n", len(vs), out, filepath.Join(out, "README.md"))
			for _, v := range vs {
				fmt.Fprintf(w, "  %s: sheet.md, answers-template.json, key/{%s}\n", filepath.Join(out, v.Name), strings.Join(v.KeyFiles(), ","))
			}
			pandoc, engine := variant.PDFTools()
			switch {
			case noPDF:
				fmt.Fprintln(w, "PDF: skipped (--no-pdf)")
			case pandoc == "" || engine == "":
				fmt.Fprintln(w, "PDF: skipped, pandoc and a LaTeX engine (xelatex, lualatex or pdflatex) are not both on PATH; the Markdown sheets are complete")
			default:
				// a broken TeX installation costs the PDFs, not the sheets
				made := 0
				for _, v := range vs {
					md := filepath.Join(out, v.Name, "sheet.md")
					if err := variant.PDF(cmd.Context(), pandoc, engine, md, filepath.Join(out, v.Name, "sheet.pdf")); err != nil {
						fmt.Fprintf(cmd.ErrOrStderr(), "PDF: failed for %s, the Markdown sheet is complete: %v\n", v.Name, err)
						continue
					}
					made++
				}
				fmt.Fprintf(w, "PDF: wrote sheet.pdf for %d of %d variant(s) (pandoc with %s)\n", made, len(vs), filepath.Base(engine))
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.Uint64Var(&o.Seed, "seed", 0, "random seed (required); the same seed gives the same variants")
	f.IntVar(&o.Count, "count", 1, "number of variants per problem")
	f.StringVar(&out, "out", "", "output directory (required)")
	f.StringVar(&o.Problem, "problem", "gan", "gan (Problem 1), autoencoder (Problem 2), both, softmax (softmax classifier), convnet (conv net with pooling), rnn (RNN over 3 steps), attention (one attention head) or all")
	f.IntVar(&o.Precision, "precision", 1, "decimals of every drawn number (1 to 4)")
	f.BoolVar(&o.VarySizes, "vary-sizes", false, "also draw the sizes (z length, channels, kernel size; input and hidden sizes; batch, features, classes; image, filters, stride)")
	f.BoolVar(&o.Signed, "signed", false, "draw the GAN's w0 and w1 with both signs too (its biases, w2 and b2 have both signs unless --any-draws)")
	f.BoolVar(&o.AnyDraws, "any-draws", false, "draw without the fairness conditions, as variants were drawn before them (a sigmoid may saturate, no ReLU need be off)")
	f.BoolVar(&noPDF, "no-pdf", false, "do not make PDFs even when pandoc is available")
	completeChoices(cmd, map[string][]string{"problem": {"gan", "autoencoder", "both", "softmax", "convnet", "rnn", "attention", "all"}})
	_ = cmd.MarkFlagDirname("out")
	return cmd
}
