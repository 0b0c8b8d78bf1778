package main

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/backprop-dev/backprop/onnx/models"
	"github.com/backprop-dev/backprop/spec"
)

// exportCmd is `backprop export`: a checkpoint's network or a spec's
// network as an ONNX model, or a checkpoint's networks as weights-only
// safetensors files PyTorch loads strictly.
func exportCmd() *cobra.Command {
	var (
		out, torchDir, checkpoint, model, specFile, testData string
		batch, lossBatch                                     int
		seed                                                 uint64
	)
	cmd := &cobra.Command{
		Use:   "export (--onnx OUT.onnx (--checkpoint CK [--model NAME] | --spec FILE) | --pytorch DIR --checkpoint CK [--model NAME])",
		Short: "Export a trained network as an ONNX model or as weights PyTorch loads",
		Long: `export writes a network as an ONNX model (opset 13, float32) that ONNX Runtime or any
other runtime serves:

  --checkpoint CK   a checkpoint of train gan (--model generator, the default, or
                    discriminator), of train autoencoder (autoencoder) or the classifier
                    eval caches (classifier), in evaluation mode: batch normalization on
                    its running statistics, no dropout; the batch axis is left open (N)
  --spec FILE       a graph spec's network, from its inputs to its last layer (the
                    objective is not part of the model); its parameters are initializers

A checkpoint's model takes "input" and gives "output" (FLOAT): the generator (N, 100)
noise -> (N, 1, 28, 28) images in [-1, 1], the discriminator (N, 1, 28, 28) images in
[-1, 1] -> (N, 1) logits, the auto-encoder (N, 784) pixels in [0, 1], the classifier
(N, 1, 28, 28) images in [0, 1] -> (N, 10) logits. Every recipe of train gan exports:

  class-conditional (train gan's default recipe, or --conditional): both models take a
      second input, "class", INT64 (N,), each sample's class 0-9. The generator gathers
      its class embedding (Gather of the initializer 0.weight by "class") and
      concatenates it to the noise; the discriminator outputs the projection
      discriminator's logit, linear(phi(x)) + <V[class], phi(x)>, V the initializer
      6.embed and phi(x) the flattened features its last Linear reads
  --spectral-norm   the discriminator holds the weights it uses in evaluation mode,
      W / sigma with sigma = u.W.v from its stored power-iteration vectors (no new
      iteration, as torch.nn.utils.spectral_norm in eval mode), as plain initializers
  --ema             the generator is the moving average, the one sample draws from

With --test-data DIR it also writes an ONNX backend-test directory, DIR/model.onnx and
DIR/test_data_set_0/input_0.pb, output_0.pb: a sample input (--batch samples drawn
from --seed for a checkpoint, the spec's own input for a spec) and backprop's output for
it, so that any runtime can check the export ('backprop onnx test DIR' runs it here). A
class-conditional model's classes are input_1.pb: 0, 1, ..., 9, 0, 1, ... in turn.

export --pytorch DIR writes the checkpoint's networks (both of a DCGAN checkpoint
unless --model picks one) as weights-only safetensors files, DIR/<model>.safetensors,
with model.py defining the PyTorch modules (Generator, Discriminator, AutoEncoder,
Classifier) they load into with load_state_dict(strict=True): model.load(FILE) builds
the module the file's metadata names, with its constructor's arguments
(Generator(conditional=1), Discriminator(conditional=1, spectral_norm=1) for the other
recipes of train gan), and loads it; a conditional module takes the classes as its
second argument, g(z, y) and d(x, y). The optimizer state, the run's progress and the
noise stay in the checkpoint. With --loss-batch N (an auto-encoder checkpoint) it also
writes DIR/backprop_loss.json, backprop's training loss on the first N training images,
which scripts/pytorch/ddp_continue.py compares with PyTorch's first step when it
continues the run with DistributedDataParallel.`,
		Example: `  backprop export --onnx generator.onnx --checkpoint run/checkpoint.safetensors
  backprop export --onnx d.onnx --checkpoint run/checkpoint.safetensors --model discriminator --test-data d-test
  backprop export --onnx problem1.onnx --spec examples/problem1.yaml
  backprop export --pytorch torch-weights --checkpoint run/checkpoint.safetensors`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if torchDir != "" {
				return exportPyTorch(cmd, torchDir, checkpoint, model, lossBatch, out != "" || specFile != "" || testData != "")
			}
			switch {
			case out == "":
				return usageError{fmt.Errorf("--onnx OUT.onnx or --pytorch DIR is required")}
			case lossBatch != 0:
				return usageError{fmt.Errorf("--loss-batch applies to --pytorch")}
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
			var inputs []string
			for _, in := range e.Model.Inputs() {
				inputs = append(inputs, fmt.Sprintf("%s %s", in.Name, in.Type))
			}
			fmt.Fprintf(w, "wrote %s: %s (inputs %s; operators %v)\n", out, what, strings.Join(inputs, ", "), e.Model.Operators())
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
	f.StringVar(&torchDir, "pytorch", "", "write the checkpoint's networks as weights-only safetensors files and model.py to `DIR`")
	f.IntVar(&lossBatch, "loss-batch", 0, "with --pytorch: also write backprop's training loss on the first `N` training images (auto-encoder)")
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

// exportPyTorch is `backprop export --pytorch DIR --checkpoint CK`: the
// checkpoint's networks as weights-only safetensors files and model.py,
// and with lossBatch > 0 backprop's loss on the first lossBatch training
// images (an auto-encoder checkpoint). onnxFlags reports flags of the ONNX
// export given with it.
func exportPyTorch(cmd *cobra.Command, dir, checkpoint, model string, lossBatch int, onnxFlags bool) error {
	switch {
	case onnxFlags:
		return usageError{fmt.Errorf("--pytorch takes --checkpoint [--model] [--loss-batch], not --onnx, --spec or --test-data")}
	case checkpoint == "":
		return usageError{fmt.Errorf("--pytorch needs --checkpoint CK")}
	case model != "" && !slices.Contains(models.Kinds, models.Kind(model)):
		return usageError{fmt.Errorf("--model %q: want generator, discriminator, autoencoder or classifier", model)}
	case lossBatch < 0:
		return usageError{fmt.Errorf("--loss-batch must be at least 1, got %d", lossBatch)}
	}
	nets, err := models.LoadAll(checkpoint, models.Kind(model))
	if err != nil {
		return err
	}
	if lossBatch > 0 && (len(nets) != 1 || nets[0].Kind != models.Autoencoder) {
		return usageError{fmt.Errorf("--loss-batch: %s holds the %s; the training loss is recorded for an auto-encoder checkpoint", checkpoint, models.KindsOf(nets))}
	}
	files, err := models.WritePyTorch(dir, nets)
	if err != nil {
		return err
	}
	w := cmd.OutOrStdout()
	for _, f := range files {
		fmt.Fprintf(w, "wrote %s\n", f)
	}
	if lossBatch > 0 {
		b, err := models.AutoencoderBatchLoss(checkpoint, lossBatch)
		if err != nil {
			return err
		}
		path := filepath.Join(dir, "backprop_loss.json")
		if err := b.WriteJSON(path); err != nil {
			return err
		}
		fmt.Fprintf(w, "wrote %s: loss %.9g on the first %d training images of %s\n", path, b.Loss, lossBatch, b.Dataset)
	}
	fmt.Fprintf(w, "load in PyTorch: sys.path.insert(0, %q); import model; m = model.load(%q)\n", dir, files[0])
	return nil
}
