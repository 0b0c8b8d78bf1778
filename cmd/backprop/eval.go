package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/backprop-dev/backprop/data"
	"github.com/backprop-dev/backprop/eval"
	"github.com/backprop-dev/backprop/tensor"
	"github.com/backprop-dev/backprop/training"
)

// evalCmd is `backprop eval`: scores generated samples with a classifier
// trained by the engine on the real data set (cached), without Python.
func evalCmd() *cobra.Command {
	var (
		dataName, cacheDir string
		samples            []string
		splits, refN       int
		asJSON             bool
	)
	cmd := &cobra.Command{
		Use:   "eval",
		Short: "Score generated images: classifier-based Inception Score, Fréchet distance, class histogram",
		Long: `Score generated images against a real data set without Python.

The first time for a data set, a small CNN classifier (two strided convolutions, two linear
layers) is trained with this engine on the real training split (2 epochs, Adam) and cached in
--cache (default ~/.cache/backprop); its accuracy on the test split is reported.

For each --samples file (an IDX file as "backprop sample" writes it) it reports:
  IS  exp(E KL(p(y|x) || p(y))) over the classifier's class probabilities, mean ± std over
      --splits consecutive groups (1 ≤ IS ≤ 10; higher: confident and varied samples);
  FD  the Fréchet distance between Gaussians fitted to the classifier's 128 penultimate-layer
      features of the samples and of the real test split (lower is closer);
  the number of samples per predicted class, and its largest deviation from uniform (mode
  coverage: max over the classes of |share - 10 %|, in percentage points, and the class);
  for samples of a conditional model (written by "backprop sample --class", which puts the
  classes it asked for beside them, S-labels.idx.gz for S.idx.gz), the per-class precision:
  the share of the samples asked for class c that the classifier assigns to c.
Two reference rows are scored the same way: the real test split itself (FD 0 by definition) and
the first --ref images of the real training split (the FD a perfect generator would get).

--samples may be given several times, as FILE or LABEL=FILE; the result is a Markdown table
(or JSON with --json).`,
		Example: `  backprop eval --data mnist --samples samples.idx.gz
  backprop eval --data fashion-mnist --samples "epoch 1=e1.idx.gz" --samples "epoch 5=e5.idx.gz"`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch {
			case dataName == "":
				return usageError{fmt.Errorf("--data is required: mnist, fashion-mnist or a directory of IDX files")}
			case splits < 1:
				return usageError{fmt.Errorf("--splits must be at least 1, got %d", splits)}
			case refN < 2:
				return usageError{fmt.Errorf("--ref must be at least 2 images, got %d", refN)}
			}
			type input struct{ label, path string }
			var inputs []input
			for _, s := range samples {
				in := input{label: s, path: s}
				if _, err := os.Stat(s); err != nil {
					if label, path, ok := strings.Cut(s, "="); ok {
						in = input{label: label, path: path}
					}
				}
				inputs = append(inputs, in)
			}
			// read the samples first: a wrong file should not wait for a classifier
			images := make([]*tensor.Tensor[float32], len(inputs))
			asked := make([][]uint8, len(inputs))
			for i, in := range inputs {
				var err error
				if images[i], err = eval.LoadSamples(in.path); err != nil {
					return err
				}
				lp := eval.LabelsPath(in.path)
				if _, err := os.Stat(lp); err != nil {
					continue
				}
				if asked[i], err = data.ReadLabels(lp); err != nil {
					return fmt.Errorf("classes of the samples %s: %w", in.path, err)
				}
				if len(asked[i]) != images[i].Dim(0) {
					return fmt.Errorf("%s holds %d classes for the %d samples of %s", lp, len(asked[i]), images[i].Dim(0), in.path)
				}
				fmt.Fprintf(os.Stderr, "%s: classes asked for read from %s\n", in.path, lp)
				if !splitsSeeAllClasses(asked[i], splits) {
					fmt.Fprintf(os.Stderr, "warning: %s: a class is missing from some of the %d runs of consecutive samples the Inception Score is computed on, so its IS understates the samples (\"backprop sample --class all\" cycles the classes)\n", in.path, splits)
				}
			}
			train, err := data.Load(dataName, data.Train)
			if err != nil {
				return err
			}
			test, err := data.Load(dataName, data.Test)
			if err != nil {
				return err
			}
			if cacheDir == "" {
				if cacheDir, err = eval.DefaultCacheDir(); err != nil {
					return err
				}
			}
			start := time.Now()
			// a progress bar on a terminal, one line per epoch otherwise, on
			// stderr: stdout holds the scores only
			opt := eval.TrainOptions{Hooks: training.Hooks{Begin: func(training.Plan) {
				fmt.Fprintf(os.Stderr, "training the %s classifier (cached in %s)\n", dataName, eval.CachePath(cacheDir, dataName))
			}}.Then(progressHooksPrefix(os.Stderr, false, "", "classifier "))}
			ctx, stop := training.InterruptContext(cmd.Context())
			defer stop()
			clf, cached, err := eval.CachedClassifier(ctx, cacheDir, dataName, train, test, os.Stderr, opt)
			if errors.Is(err, training.ErrInterrupted) {
				return interruptedError{fmt.Errorf("classifier training %w; nothing was cached", training.ErrInterrupted)}
			}
			if err != nil {
				return err
			}
			how := "cached"
			if !cached {
				how = fmt.Sprintf("trained in %.0f s", time.Since(start).Seconds())
			}
			scorer, err := eval.NewScorer(clf, test, splits)
			if err != nil {
				return err
			}
			var scores []eval.Score
			ref, err := scorer.Score("real test set (reference)", test.Images)
			if err != nil {
				return err
			}
			scores = append(scores, ref)
			n := min(refN, train.Len())
			idx := make([]int, n)
			for i := range idx {
				idx[i] = i
			}
			trainImgs, _, err := train.Batch(idx)
			if err != nil {
				return err
			}
			if ref, err = scorer.Score(fmt.Sprintf("real train images, first %d (reference)", n), trainImgs); err != nil {
				return err
			}
			scores = append(scores, ref)
			for i, in := range inputs {
				s, err := scorer.ScoreLabeled(in.label, images[i], asked[i])
				if err != nil {
					return err
				}
				scores = append(scores, s)
			}
			out := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				return enc.Encode(map[string]any{
					"data": dataName, "classifier_test_accuracy": clf.TestAccuracy, "classifier": eval.CachePath(cacheDir, dataName), "scores": scores,
				})
			}
			fmt.Fprintf(out, "data set %s; classifier %s (%s), test accuracy %.2f%%\n\n", dataName, eval.CachePath(cacheDir, dataName), how, 100*clf.TestAccuracy)
			return eval.WriteTable(out, scores)
		},
	}
	f := cmd.Flags()
	f.StringVar(&dataName, "data", "", `real data set: "mnist", "fashion-mnist" or a directory of IDX files`)
	f.StringArrayVar(&samples, "samples", nil, "IDX file of generated images, as FILE or LABEL=FILE (repeatable)")
	f.StringVar(&cacheDir, "cache", "", "directory of cached classifiers (default ~/.cache/backprop)")
	f.IntVar(&splits, "splits", 10, "Inception Score splits")
	f.IntVar(&refN, "ref", 10000, "training images in the real-train reference row")
	f.BoolVar(&asJSON, "json", false, "print JSON instead of a Markdown table")
	return cmd
}

// splitsSeeAllClasses reports whether each of the Inception Score's splits
// (consecutive runs of samples, as eval.InceptionScore cuts them) holds
// every class asked for somewhere in asked.
func splitsSeeAllClasses(asked []uint8, splits int) bool {
	n := len(asked)
	splits = min(splits, n)
	all := map[uint8]bool{}
	for _, c := range asked {
		all[c] = true
	}
	for s := range splits {
		seen := map[uint8]bool{}
		for _, c := range asked[s*n/splits : (s+1)*n/splits] {
			seen[c] = true
		}
		if len(seen) != len(all) {
			return false
		}
	}
	return true
}
