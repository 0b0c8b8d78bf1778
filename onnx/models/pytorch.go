package models

import (
	_ "embed" // model.py, written next to the weights
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/backprop-dev/backprop/autoencoder"
	"github.com/backprop-dev/backprop/autograd"
	"github.com/backprop-dev/backprop/data"
	"github.com/backprop-dev/backprop/safetensors"
)

// ModelPy is model.py, the PyTorch modules the weights of WritePyTorch
// load into with load_state_dict(strict=True): Generator, Discriminator
// (with the keyword arguments of TorchClass for a class-conditional or
// spectrally normalized DCGAN), AutoEncoder and Classifier, built layer
// for layer as the Go networks, with a hand-written safetensors reader and
// a load(path) that builds the module a weights file names and loads it
// strictly.
//
//go:embed pytorch/model.py
var ModelPy []byte

// ModelPyFile is the name of model.py in an export directory.
const ModelPyFile = "model.py"

// WeightsFormat is the "format" metadata of the weights files
// WritePyTorch writes.
const WeightsFormat = "backprop-pytorch-weights"

// TorchClass returns the class of model.py that network n loads into and
// the keyword arguments of its constructor: the auto-encoder's sizes; for
// a DCGAN network of another recipe than the reference, conditional: 1
// (a class-conditional generator or projection discriminator) and
// spectral_norm: 1 (a spectrally normalized discriminator); the reference
// networks and the classifier take none.
func TorchClass(n *Net) (class string, kwargs map[string]int, err error) {
	switch n.Kind {
	case Generator, Discriminator:
		kwargs = map[string]int{}
		if n.Conditional {
			kwargs["conditional"] = 1
		}
		if n.SpectralNorm {
			if n.Kind != Discriminator {
				return "", nil, fmt.Errorf("the %s is marked spectrally normalized: model.py's Generator has no spectral norm", n.Kind)
			}
			kwargs["spectral_norm"] = 1
		}
		class = "Generator"
		if n.Kind == Discriminator {
			class = "Discriminator"
		}
		return class, kwargs, nil
	case Classifier:
		return "Classifier", map[string]int{}, nil
	case Autoencoder:
		m, ok := n.Module.(*autoencoder.Model)
		if !ok {
			return "", nil, fmt.Errorf("the auto-encoder is a %T, not an *autoencoder.Model", n.Module)
		}
		return "AutoEncoder", map[string]int{"input_size": m.Config.Input, "hidden_size": m.Config.Hidden}, nil
	}
	return "", nil, fmt.Errorf("unknown model %q", n.Kind)
}

// Weights returns the weights-only safetensors file of network n: its
// state_dict under PyTorch's names (float tensors as F32,
// num_batches_tracked as an I64 scalar, as PyTorch stores them) and no
// optimizer state, run progress or noise, so that load_state_dict(strict=True)
// accepts it. The metadata names the format, the network ("model"), the
// class of model.py ("class") and its constructor's arguments as JSON
// ("kwargs").
func Weights(n *Net) (*safetensors.File, error) {
	class, kwargs, err := TorchClass(n)
	if err != nil {
		return nil, err
	}
	kw, err := json.Marshal(kwargs)
	if err != nil {
		return nil, err
	}
	f := safetensors.NewFile()
	f.Metadata["format"] = WeightsFormat
	f.Metadata["model"] = string(n.Kind)
	f.Metadata["class"] = class
	f.Metadata["kwargs"] = string(kw)
	for _, e := range n.Module.StateDict() {
		if e.Int {
			err = f.AddI64(e.Name, int64(e.Tensor.Data()[0]))
		} else {
			err = f.AddF32(e.Name, e.Tensor)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", n.Kind, err)
		}
	}
	return f, nil
}

// LoadAll reads every network of a checkpoint: the generator and the
// discriminator of a DCGAN checkpoint, the auto-encoder, or the
// classifier; a non-empty kind takes that network only (as Load).
func LoadAll(path string, kind Kind) ([]*Net, error) {
	first, err := Load(path, kind)
	if err != nil {
		return nil, err
	}
	nets := []*Net{first}
	if kind == "" && first.Kind == Generator {
		d, err := Load(path, Discriminator)
		if err != nil {
			return nil, err
		}
		nets = append(nets, d)
	}
	return nets, nil
}

// WritePyTorch writes each network's weights (Weights) to dir/<kind>.safetensors
// and model.py next to them, creating dir, and returns the files written.
func WritePyTorch(dir string, nets []*Net) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	var files []string
	for _, n := range nets {
		f, err := Weights(n)
		if err != nil {
			return files, err
		}
		path := filepath.Join(dir, string(n.Kind)+".safetensors")
		if err := f.WriteFile(path); err != nil {
			return files, err
		}
		files = append(files, path)
	}
	path := filepath.Join(dir, ModelPyFile)
	if err := os.WriteFile(path, ModelPy, 0o644); err != nil {
		return files, err
	}
	return append(files, path), nil
}

// BatchLoss is backprop's training loss of a checkpoint's network on one
// batch of its training images, written as JSON for a PyTorch run that
// continues training from the exported weights to compare its first
// step's loss with (scripts/pytorch/ddp_continue.py).
type BatchLoss struct {
	Model      Kind    `json:"model"`       // the network
	Checkpoint string  `json:"checkpoint"`  // the checkpoint it was computed from
	Step       int     `json:"step"`        // optimizer steps the checkpoint had taken
	Dataset    string  `json:"dataset"`     // the run's data set (--data)
	ImagesFile string  `json:"images_file"` // the IDX file of the training images
	First      int     `json:"first"`       // the batch: training images First … First+Count−1, in order
	Count      int     `json:"count"`       // the batch's size
	Loss       float64 `json:"loss"`        // backprop's loss on the batch (float32 arithmetic)
	Definition string  `json:"definition"`  // the loss in words
	Optimizer  string  `json:"optimizer"`   // the run's optimizer ("adam" or "sgd")
	LR         float64 `json:"lr"`          // its learning rate
	Momentum   float64 `json:"momentum"`    // SGD's momentum (0 for Adam)
	Batch      int     `json:"batch"`       // the run's mini-batch size
}

// AutoencoderBatchLoss computes the loss of the auto-encoder checkpoint at
// path on the first n images of its training set (the checkpoint's
// "dataset", loaded with data.Load), as a training step computes it:
// L = Σ (x' − x)² / n in float32, before any update.
func AutoencoderBatchLoss(path string, n int) (*BatchLoss, error) {
	ck, err := autoencoder.Load(path)
	if err != nil {
		return nil, err
	}
	if ck.Meta.Dataset == "" {
		return nil, fmt.Errorf("%s: the checkpoint does not name its data set", path)
	}
	train, err := data.Load(ck.Meta.Dataset, data.Train)
	if err != nil {
		return nil, err
	}
	if n < 1 || n > train.Len() {
		return nil, fmt.Errorf("batch of %d images: the training set %s has %d", n, ck.Meta.Dataset, train.Len())
	}
	images, err := filepath.Abs(train.ImagesFile)
	if err != nil {
		return nil, err
	}
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	x, _, err := train.Batch(idx)
	if err != nil {
		return nil, err
	}
	_, loss, err := ck.Model.Loss(x)
	if err != nil {
		return nil, err
	}
	defer autograd.Release(loss)
	return &BatchLoss{
		Model: Autoencoder, Checkpoint: path, Step: ck.Meta.Step, Dataset: ck.Meta.Dataset,
		ImagesFile: images, First: 0, Count: n, Loss: float64(loss.Value.Data()[0]),
		Definition: "sum over an image's pixels of (reconstruction - pixel)^2, averaged over the batch's images; pixels are bytes / 255",
		Optimizer:  ck.Meta.Optimizer, LR: ck.Meta.LR, Momentum: ck.Meta.Momentum, Batch: ck.Meta.Batch,
	}, nil
}

// WriteJSON writes b to path, indented.
func (b *BatchLoss) WriteJSON(path string) error {
	out, err := json.MarshalIndent(b, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(out, '\n'), 0o644)
}

// KindsOf names the networks, for messages.
func KindsOf(nets []*Net) string {
	var s []string
	for _, n := range nets {
		s = append(s, string(n.Kind))
	}
	return strings.Join(s, ", ")
}
