package main

import (
	"fmt"
	"slices"

	"github.com/spf13/cobra"

	"github.com/backprop-dev/backprop/onnx/models"
	"github.com/backprop-dev/backprop/spec"
)

// exportCmd is `backprop export`: a checkpoint's network or a spec's
// network as an ONNX model.
func exportCmd() *cobra.Command {
	var (
		out, checkpoint, model, specFile, testData string
		batch                                      int
		seed                                       uint64
	)
	cmd := &cobra.Command{
		Use:   "export --onnx OUT.onnx (--checkpoint CK [--model NAME] | --spec FILE)",
		Short: "Export a trained network or a spec's network as an ONNX model",
		Long: `export writes a network as an ONNX model (opset 13, float32) that ONNX Runtime or any
other runtime serves:

  --checkpoint CK   a checkpoint of train gan (--model generator, the default, or
                    discriminator), of train autoencoder (autoencoder) or the classifier
                    eval caches (classifier), in evaluation mode: batch normalization on
                    its running statistics, no dropout; the batch axis is left open (N)
  --spec FILE       a graph spec's network, from its inputs to its last layer (the
                    objective is not part of the model); its parameters are initializers

With --test-data DIR it also writes an ONNX backend-test directory, DIR/model.onnx and
DIR/test_data_set_0/input_0.pb, output_0.pb: a sample input (--batch samples drawn
from --seed for a checkpoint, the spec's own input for a spec) and backprop's output for
it, so that any runtime can check the export ('backprop onnx test DIR' runs it here).`,
		Example: `  backprop export --onnx generator.onnx --checkpoint run/checkpoint.safetensors
  backprop export --onnx d.onnx --checkpoint run/checkpoint.safetensors --model discriminator --test-data d-test
  backprop export --onnx problem1.onnx --spec examples/problem1.yaml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch {
			case out == "":
				return usageError{fmt.Errorf("--onnx OUT.onnx is required")}
			case (checkpoint == "") == (specFile == ""):
				return usageError{fmt.Errorf("give exactly one of --checkpoint and --spec")}
			case model != "" && !slices.Contains(models.Kinds, models.Kind(model)):
				return usageError{fmt.Errorf("--model %q: want generator, discriminator, autoencoder or classifier", model)}
			case model != "" && specFile != "":
				return usageError{fmt.Errorf("--model applies to --checkpoint, not --spec")}
			case batch < 1:
				return usageError{fmt.Errorf("--batch must be at least 1, got %d", batch)}
			}
			var e *models.Export
			what := ""
			if specFile != "" {
				s, err := spec.ReadFile(specFile)
				if err != nil {
					return err
				}
				if e, err = models.ExportSpec(s); err != nil {
					return fmt.Errorf("%s: %w", specFile, err)
				}
				what = "the network of " + specFile
			} else {
				n, err := models.Load(checkpoint, models.Kind(model))
				if err != nil {
					return err
				}
				if e, err = models.ExportNet(n, models.SampleInput(n.Kind, batch, seed)); err != nil {
					return fmt.Errorf("%s: %w", checkpoint, err)
				}
				what = fmt.Sprintf("the %s of %s", n.Kind, checkpoint)
			}
			if err := e.Model.Save(out); err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "wrote %s: %s (operators %v)\n", out, what, e.Model.Operators())
			if testData != "" {
				if err := models.WriteTestData(testData, e); err != nil {
					return err
				}
				fmt.Fprintf(w, "wrote %s: model.onnx and test_data_set_0 (a sample input and backprop's output)\n", testData)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&out, "onnx", "", "write the ONNX model to `OUT.onnx`")
	f.StringVar(&checkpoint, "checkpoint", "", "export the network of checkpoint `CK`")
	f.StringVar(&model, "model", "", "the checkpoint's network: generator, discriminator, autoencoder or classifier (default: the checkpoint's own, the generator of a DCGAN)")
	f.StringVar(&specFile, "spec", "", "export the network of spec `FILE` (YAML or JSON)")
	f.StringVar(&testData, "test-data", "", "also write an ONNX backend-test directory `DIR`")
	f.IntVar(&batch, "batch", 2, "samples in the test data's input (--checkpoint)")
	f.Uint64Var(&seed, "seed", 1, "seed of the test data's input (--checkpoint)")
	_ = cmd.RegisterFlagCompletionFunc("model", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		var ks []string
		for _, k := range models.Kinds {
			ks = append(ks, string(k))
		}
		return ks, cobra.ShellCompDirectiveNoFileComp
	})
	return cmd
}
