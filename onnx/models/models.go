// Package models exports the project's networks as ONNX: the DCGAN's
// generator and discriminator, the auto-encoder and the evaluation
// classifier from their checkpoints, and any graph spec (Problem 1 and the
// problem bank). Each export comes with a sample input and backprop's own
// output for it, so that any runtime can check the file (an ONNX
// backend-test directory, WriteTestData).
package models

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"

	"github.com/backprop-dev/backprop/autoencoder"
	"github.com/backprop-dev/backprop/autograd"
	"github.com/backprop-dev/backprop/eval"
	"github.com/backprop-dev/backprop/gan"
	"github.com/backprop-dev/backprop/nn"
	"github.com/backprop-dev/backprop/onnx"
	"github.com/backprop-dev/backprop/ops"
	"github.com/backprop-dev/backprop/safetensors"
	"github.com/backprop-dev/backprop/spec"
	"github.com/backprop-dev/backprop/tensor"
)

// Kind names one of the project's networks.
type Kind string

// The networks a checkpoint holds.
const (
	Generator     Kind = "generator"     // the DCGAN generator: (N, 100) noise → (N, 1, 28, 28) images in [−1, 1]
	Discriminator Kind = "discriminator" // the DCGAN discriminator: (N, 1, 28, 28) images → (N, 1) logits of "real"
	Autoencoder   Kind = "autoencoder"   // the auto-encoder: (N, 784) pixels in [0, 1] → (N, 784) reconstructions
	Classifier    Kind = "classifier"    // the evaluation classifier: (N, 1, 28, 28) images in [0, 1] → (N, 10) class logits
)

// Kinds lists the networks in the order the command line offers them.
var Kinds = []Kind{Generator, Discriminator, Autoencoder, Classifier}

// Net is one of the project's networks with its weights.
type Net struct {
	Kind   Kind
	Module nn.Module[float32]
}

// Load reads the network kind from a checkpoint: a DCGAN checkpoint
// (train gan) holds the generator and the discriminator, an auto-encoder
// checkpoint (train autoencoder) the auto-encoder, a cached classifier
// (eval) the classifier. An empty kind takes the checkpoint's only
// network, or the generator of a DCGAN checkpoint.
func Load(path string, kind Kind) (*Net, error) {
	f, err := safetensors.Read(path)
	if err != nil {
		return nil, err
	}
	isGAN, isAE := false, false
	for _, n := range f.Names() {
		isGAN = isGAN || strings.HasPrefix(n, "G.")
		isAE = isAE || strings.HasPrefix(n, "encoder.")
	}
	switch {
	case kind == "" && isGAN:
		kind = Generator
	case kind == "" && isAE:
		kind = Autoencoder
	case kind == "":
		kind = Classifier
	}
	switch kind {
	case Generator, Discriminator:
		if !isGAN {
			return nil, fmt.Errorf("%s is not a DCGAN checkpoint (no G.* tensors): it holds no %s", path, kind)
		}
		// the recipe's models that the export's reference networks do not
		// describe: say so instead of failing on their state dict
		if f.Metadata["recipe.conditional"] == "true" {
			return nil, fmt.Errorf("%s is a class-conditional DCGAN (train gan --conditional): exporting its %s is not supported yet (its class embedding has no counterpart in the exported network)", path, kind)
		}
		if kind == Discriminator && f.Metadata["recipe.spectral_norm"] == "true" {
			return nil, fmt.Errorf("%s was trained with --spectral-norm: exporting its discriminator is not supported yet (the spectrally normalised weights need their power-iteration vectors); its generator exports", path)
		}
		m, prefix := gan.NewGenerator(nil), "G."
		if kind == Discriminator {
			m, prefix = gan.NewDiscriminator(nil), "D."
		}
		var sd []nn.StateEntry[float32]
		for _, name := range f.Names() {
			if !strings.HasPrefix(name, prefix) {
				continue
			}
			raw, _ := f.Get(name)
			var t *tensor.Tensor[float32]
			if raw.DType == safetensors.I64 {
				v, err := f.I64(name)
				if err != nil {
					return nil, err
				}
				t = tensor.Scalar(float32(v))
			} else if t, err = f.F32(name); err != nil {
				return nil, err
			}
			sd = append(sd, nn.StateEntry[float32]{Name: strings.TrimPrefix(name, prefix), Tensor: t})
		}
		if err := nn.LoadStateDict(m, sd); err != nil {
			return nil, fmt.Errorf("%s: %s: %w", path, kind, err)
		}
		return &Net{Kind: kind, Module: m}, nil
	case Autoencoder:
		c, err := autoencoder.Load(path)
		if err != nil {
			return nil, err
		}
		return &Net{Kind: kind, Module: c.Model}, nil
	case Classifier:
		c, err := eval.LoadClassifier(path)
		if err != nil {
			return nil, err
		}
		return &Net{Kind: kind, Module: c.Net}, nil
	}
	return nil, fmt.Errorf("unknown model %q: want generator, discriminator, autoencoder or classifier", kind)
}

// New builds the network kind with the initialization of a fresh run
// drawn from seed (for tests and examples without a checkpoint).
func New(kind Kind, seed uint64) (*Net, error) {
	rng := rand.New(rand.NewPCG(seed, 0x6f6e6e78))
	switch kind {
	case Generator:
		return &Net{kind, gan.NewGenerator(rng)}, nil
	case Discriminator:
		return &Net{kind, gan.NewDiscriminator(rng)}, nil
	case Autoencoder:
		m, err := autoencoder.New(autoencoder.Config{Input: autoencoder.DefaultInput, Hidden: autoencoder.DefaultHidden}, rng)
		if err != nil {
			return nil, err
		}
		return &Net{kind, m}, nil
	case Classifier:
		return &Net{kind, eval.NewClassifier(rng).Net}, nil
	}
	return nil, fmt.Errorf("unknown model %q: want generator, discriminator, autoencoder or classifier", kind)
}

// Export is an exported model with a sample input and backprop's output
// for it.
type Export struct {
	Model   *onnx.Model
	Inputs  []*onnx.Tensor
	Outputs []*onnx.Tensor
}

// SampleInput draws a batch of n inputs the network kind takes, from
// seed: N(0, 1) noise for the generator, uniform images in [−1, 1] for the
// discriminator and in [0, 1] for the auto-encoder and the classifier.
func SampleInput(kind Kind, n int, seed uint64) *tensor.Tensor[float32] {
	rng := rand.New(rand.NewPCG(seed, 0x696e7075))
	var x *tensor.Tensor[float32]
	switch kind {
	case Generator:
		return gan.Noise(rng, n)
	case Autoencoder:
		x = tensor.New[float32](n, autoencoder.DefaultInput)
	default:
		x = tensor.New[float32](n, 1, gan.ImageSize, gan.ImageSize)
	}
	for i := range x.Data() {
		v := rng.Float64()
		if kind == Discriminator {
			v = 2*v - 1
		}
		x.Data()[i] = float32(v)
	}
	return x
}

// ExportNet traces the network in evaluation mode (batch normalization on
// its running statistics, no dropout) on input x and exports it, with a
// batch axis of any size. The classifier's export includes its input
// scaling (2x − 1), so that it takes images in [0, 1] as Apply does.
func ExportNet(n *Net, x *tensor.Tensor[float32]) (*Export, error) {
	n.Module.SetTraining(false)
	names := map[*autograd.Var[float32]]string{}
	for _, p := range n.Module.Parameters() {
		names[p.Var] = p.Name
	}
	in := autograd.Leaf("input", x, false)
	h := in
	var err error
	if n.Kind == Classifier {
		if h, err = ops.Scale("scaled", h, 2); err != nil {
			return nil, err
		}
		one := autograd.Leaf("one", tensor.Scalar[float32](1), false)
		if h, err = ops.Broadcast("centered", ops.BinSub, h, one); err != nil {
			return nil, err
		}
	}
	y, err := n.Module.Forward(h)
	if err != nil {
		return nil, err
	}
	y.Name = "output"
	m, err := onnx.Export(string(n.Kind), []*autograd.Var[float32]{in}, []*autograd.Var[float32]{y}, onnx.ExportOptions[float32]{Names: names, DynamicBatch: true})
	if err != nil {
		return nil, err
	}
	return &Export{Model: m, Inputs: []*onnx.Tensor{onnx.FromTensor("input", x)}, Outputs: []*onnx.Tensor{onnx.FromTensor("output", y.Value)}}, nil
}

// ExportSpec builds a graph spec on the engine (float64, as backprop
// solve) and exports its network: the spec's inputs the last layer reads
// (directly or not) are the model's inputs, its parameters the
// initializers, the last layer's output the model's output; the objective
// is not part of the model. The sample input is the spec's own.
func ExportSpec(s *spec.Spec) (*Export, error) {
	m, err := spec.Build[float64](s)
	if err != nil {
		return nil, err
	}
	if len(s.Layers) == 0 {
		return nil, fmt.Errorf("the spec has no layers")
	}
	out, ok := m.Name[s.Layers[len(s.Layers)-1].Name]
	if !ok {
		return nil, fmt.Errorf("the spec's last layer %q has no value", s.Layers[len(s.Layers)-1].Name)
	}
	inputNames := map[string]bool{s.Input.Name: true}
	for _, in := range s.Inputs {
		inputNames[in.Name] = true
	}
	var inputs []*autograd.Var[float64]
	for _, v := range autograd.Topo(out) {
		if v.IsLeaf() && inputNames[v.Name] && s.Params[v.Name] == nil {
			inputs = append(inputs, v)
		}
	}
	if len(inputs) == 0 {
		// a recurrent layer reads its input row by row as given vectors,
		// and a token model reads integer ids: neither is a float input
		// an ONNX graph could take
		return nil, fmt.Errorf("export: the spec's network reads none of its inputs as a tensor (a recurrent layer's given time steps or an embedding's token ids cannot be an ONNX input)")
	}
	name := s.Title
	if name == "" {
		name = "spec"
	}
	model, err := onnx.Export(name, inputs, []*autograd.Var[float64]{out}, onnx.ExportOptions[float64]{})
	if err != nil {
		return nil, err
	}
	e := &Export{Model: model}
	for _, v := range inputs {
		e.Inputs = append(e.Inputs, onnx.FromTensor(v.Name, tensor.Convert[float32](v.Value)))
	}
	e.Outputs = []*onnx.Tensor{onnx.FromTensor(out.Name, tensor.Convert[float32](out.Value))}
	return e, nil
}

// WriteTestData writes e as an ONNX backend-test directory: dir/model.onnx
// and dir/test_data_set_0/input_N.pb, output_N.pb.
func WriteTestData(dir string, e *Export) error {
	set := filepath.Join(dir, "test_data_set_0")
	if err := os.MkdirAll(set, 0o755); err != nil {
		return err
	}
	if err := e.Model.Save(filepath.Join(dir, "model.onnx")); err != nil {
		return err
	}
	for i, t := range e.Inputs {
		if err := onnx.WriteTensorFile(filepath.Join(set, fmt.Sprintf("input_%d.pb", i)), t); err != nil {
			return err
		}
	}
	for i, t := range e.Outputs {
		if err := onnx.WriteTensorFile(filepath.Join(set, fmt.Sprintf("output_%d.pb", i)), t); err != nil {
			return err
		}
	}
	return nil
}
