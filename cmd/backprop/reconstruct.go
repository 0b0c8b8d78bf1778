package main

import (
	"fmt"
	"math"

	"github.com/spf13/cobra"

	"github.com/backprop-dev/backprop/autoencoder"
	"github.com/backprop-dev/backprop/data"
	"github.com/backprop-dev/backprop/safetensors"
	"github.com/backprop-dev/backprop/viz"
)

// reconstructCmd is `backprop reconstruct`: evaluate an auto-encoder
// checkpoint on a test set and picture its reconstructions.
func reconstructCmd() *cobra.Command {
	var ckptPath, dataName, out, tensorsOut string
	n := 16
	cmd := &cobra.Command{
		Use:   "reconstruct --checkpoint FILE [--data mnist] [--n 16] [--out recon.png]",
		Short: "Reconstruct test images with a trained auto-encoder and report its error",
		Long: `reconstruct loads an auto-encoder checkpoint written by ` + "`backprop train autoencoder`" + `
(or any safetensors file with the tensors encoder.weight (hidden, input),
encoder.bias, decoder.weight (input, hidden), decoder.bias), reports its test
reconstruction error (the mean over the test images of the per-image sum of
squared errors) and writes a PNG grid of the first --n test images, each
above its reconstruction.

A checkpoint of another model or architecture, or a truncated file, is
refused with the file, the tensor and the expected and actual shapes.
--tensors FILE also saves the shown images and their reconstructions as
float32 tensors "images" and "reconstructions" [n, input] in a safetensors
file, for comparison with other tools.`,
		Args: aeNoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if ckptPath == "" {
				return usageError{fmt.Errorf("reconstruct: --checkpoint FILE is required")}
			}
			if n <= 0 {
				return usageError{fmt.Errorf("--n: want at least 1 image, got %d", n)}
			}
			if out == "" {
				return usageError{fmt.Errorf("--out: want a PNG file name")}
			}
			ck, err := autoencoder.Load(ckptPath)
			if err != nil {
				return err
			}
			m := ck.Model
			name := dataName
			if name == "" {
				name = ck.Meta.Dataset
				if name == "" {
					name = "mnist"
				}
			}
			test, err := data.Load(name, data.Test)
			if err != nil {
				return err
			}
			h, w := test.ImageShape()
			if h*w != m.Config.Input {
				return fmt.Errorf("reconstruct: the checkpoint %s takes %d values per image, but the %s test images are %d×%d = %d pixels; use --data with the data set it was trained on",
					ckptPath, m.Config.Input, name, h, w, h*w)
			}

			desc := fmt.Sprintf("checkpoint %s: auto-encoder %v", ckptPath, m.Config)
			if ck.Meta.Epoch > 0 {
				desc += fmt.Sprintf(", %d epoch(s)", ck.Meta.Epoch)
			}
			if ck.Meta.StepInEpoch > 0 {
				desc += fmt.Sprintf(" and %d step(s) (saved mid-epoch)", ck.Meta.StepInEpoch)
			}
			if ck.Meta.Dataset != "" {
				desc += " on " + ck.Meta.Dataset
			}
			if !math.IsNaN(ck.Meta.TestError) {
				desc += fmt.Sprintf(" (test error %.4f when saved)", ck.Meta.TestError)
			}
			fmt.Println(desc)

			testErr, err := m.TestError(test)
			if err != nil {
				return err
			}
			fmt.Printf("test reconstruction error on %s: %.4f (mean per-image sum of squared errors over %d test images)\n", name, testErr, test.Len())

			if n > test.Len() {
				n = test.Len()
			}
			idx := make([]int, n)
			for i := range idx {
				idx[i] = i
			}
			images, _, err := test.Batch(idx)
			if err != nil {
				return err
			}
			rec, err := m.Reconstruct(images)
			if err != nil {
				return err
			}
			img, err := viz.PairGrid(images, rec, min(8, n), 0, 1)
			if err != nil {
				return err
			}
			if err := viz.SavePNG(out, img); err != nil {
				return err
			}
			fmt.Printf("wrote %s: %d test images, each above its reconstruction\n", out, n)

			if tensorsOut != "" {
				f := safetensors.NewFile()
				flatImg, err := m.Flatten(images)
				if err != nil {
					return err
				}
				flatRec, err := m.Flatten(rec)
				if err != nil {
					return err
				}
				if err := f.AddF32("images", flatImg); err != nil {
					return err
				}
				if err := f.AddF32("reconstructions", flatRec); err != nil {
					return err
				}
				f.Metadata["checkpoint"] = ckptPath
				f.Metadata["dataset"] = name
				f.Metadata["split"] = data.Test
				if err := f.WriteFile(tensorsOut); err != nil {
					return err
				}
				fmt.Printf("wrote %s: tensors images and reconstructions [%d×%d]\n", tensorsOut, n, m.Config.Input)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&ckptPath, "checkpoint", "", "auto-encoder checkpoint (safetensors) to load (required)")
	f.StringVar(&dataName, "data", "", "test data: mnist, fashion-mnist or a directory of IDX files (default: the checkpoint's data set, else mnist)")
	f.IntVar(&n, "n", n, "test images shown in the grid")
	f.StringVar(&out, "out", "recon.png", "PNG file for the grid")
	f.StringVar(&tensorsOut, "tensors", "", "also save the shown images and reconstructions to this safetensors file")
	return cmd
}
