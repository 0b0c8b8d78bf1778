// Package models exports the project's networks as ONNX: the DCGAN's
// generator and discriminator (of every recipe train gan runs: the
// reference pair, a class-conditional pair, a spectrally normalized
// discriminator), the auto-encoder and the evaluation classifier from
// their checkpoints, and any graph spec (Problem 1 and the problem bank).
// Each export comes with a sample input and backprop's own output for it,
// so that any runtime can check the file (an ONNX backend-test directory,
// WriteTestData).
package models

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"google.golang.org/protobuf/proto"

	"github.com/backprop-dev/backprop/autoencoder"
	"github.com/backprop-dev/backprop/autograd"
	"github.com/backprop-dev/backprop/eval"
	"github.com/backprop-dev/backprop/gan"
	"github.com/backprop-dev/backprop/nn"
	"github.com/backprop-dev/backprop/onnx"
	"github.com/backprop-dev/backprop/onnx/internal/onnxpb"
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

// Names of the exported models' inputs and output. Every export takes
// its data as InputName and gives OutputName; a class-conditional DCGAN
// network also takes ClassInputName.
const (
	InputName  = "input"  // FLOAT: the noise, images or pixels (batch axis N)
	OutputName = "output" // FLOAT: the network's output (batch axis N)
	// ClassInputName is the second input of a class-conditional network:
	// INT64 (N,), each sample's class in 0…gan.Classes−1.
	ClassInputName = "class"
)

// Net is one of the project's networks with its weights.
type Net struct {
	Kind   Kind
	Module nn.Module[float32]
	// Conditional marks a class-conditional DCGAN network (train gan
	// --conditional, Module an *nn.Sequential[float32]): the generator
	// starts with a gan.LabelEmbedding, the discriminator ends with a
	// gan.Projection, and both take each sample's class beside its input.
	Conditional bool
	// SpectralNorm marks a discriminator trained with --spectral-norm:
	// its convolutions and its last Linear are gan.SpectralNorm layers.
	SpectralNorm bool
}

// Load reads the network kind from a checkpoint: a DCGAN checkpoint
// (train gan) holds the generator and the discriminator, an auto-encoder
// checkpoint (train autoencoder) the auto-encoder, a cached classifier
// (eval) the classifier. An empty kind takes the checkpoint's only
// network, or the generator of a DCGAN checkpoint. A DCGAN network is
// built as its run's recipe says (gan.NewModels): class-conditional
// (Net.Conditional) or with a spectrally normalized discriminator
// (Net.SpectralNorm); with an EMA the generator is the moving average.
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
		r, err := ganRecipe(path, kind, f.Metadata)
		if err != nil {
			return nil, err
		}
		g, d := gan.NewModels(r, nil)
		m, prefix := g, "G."
		if kind == Discriminator {
			m, prefix = d, "D."
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
			return nil, fmt.Errorf("%s: %s of recipe %q: %w", path, kind, r, err)
		}
		return &Net{Kind: kind, Module: m, Conditional: r.Conditional, SpectralNorm: kind == Discriminator && r.SpectralNorm}, nil
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

// ganRecipe reads the parts of a DCGAN checkpoint's recipe (its
// "recipe.*" metadata, format 3) that shape its networks: whether they
// are class-conditional and whether the discriminator is spectrally
// normalized. A checkpoint without them (formats 1 and 2) holds the
// reference networks; the other ingredients (loss, EMA, step sizes) only
// change the weights, and with an EMA the "G." entries are already the
// moving average, the generator the run samples from.
func ganRecipe(path string, kind Kind, meta map[string]string) (gan.Recipe, error) {
	var r gan.Recipe
	for _, b := range []struct {
		key string
		dst *bool
	}{{"recipe.conditional", &r.Conditional}, {"recipe.spectral_norm", &r.SpectralNorm}} {
		s, ok := meta[b.key]
		if !ok {
			continue
		}
		v, err := strconv.ParseBool(s)
		if err != nil {
			return r, fmt.Errorf("%s: cannot export its %s: metadata %s = %q, want true or false", path, kind, b.key, s)
		}
		*b.dst = v
	}
	return r, nil
}

// New builds the network kind with the initialization of a fresh run
// drawn from seed (for tests and examples without a checkpoint).
func New(kind Kind, seed uint64) (*Net, error) {
	rng := rand.New(rand.NewPCG(seed, 0x6f6e6e78))
	switch kind {
	case Generator:
		return &Net{Kind: kind, Module: gan.NewGenerator(rng)}, nil
	case Discriminator:
		return &Net{Kind: kind, Module: gan.NewDiscriminator(rng)}, nil
	case Autoencoder:
		m, err := autoencoder.New(autoencoder.Config{Input: autoencoder.DefaultInput, Hidden: autoencoder.DefaultHidden}, rng)
		if err != nil {
			return nil, err
		}
		return &Net{Kind: kind, Module: m}, nil
	case Classifier:
		return &Net{Kind: kind, Module: eval.NewClassifier(rng).Net}, nil
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

// SampleClasses returns the classes of the n sample inputs of a
// class-conditional network: 0, 1, …, gan.Classes−1, 0, 1, … in turn.
func SampleClasses(n int) []int {
	c := make([]int, n)
	for i := range c {
		c[i] = i % gan.Classes
	}
	return c
}

// ExportNet traces the network in evaluation mode (batch normalization on
// its running statistics, no dropout) on input x and exports it, with a
// batch axis of any size. The classifier's export includes its input
// scaling (2x − 1), so that it takes images in [0, 1] as Apply does.
//
// A class-conditional DCGAN network (n.Conditional) is traced on the
// classes SampleClasses gives (ExportNetClasses takes others) and
// exported with a second input, ClassInputName: INT64 (N,), each sample's
// class. The generator gathers its class embedding by it (Gather, the
// table an initializer "0.weight") and concatenates it to the noise, as
// gan.LabelEmbedding does; the discriminator adds ⟨V[y], φ(x)⟩ to its
// logit, V gathered from the initializer "6.embed" and φ(x) the features
// before its last layer, as gan.Projection does. A spectrally normalized
// discriminator (n.SpectralNorm) is exported with the weights it uses in
// evaluation mode, W/σ with σ = uᵀWv from its stored power-iteration
// vectors (no new iteration, as torch.nn.utils.spectral_norm in eval
// mode), as plain initializers named as a plain layer's ("0.weight").
// The sample outputs are the network's own (nn.Module.Forward).
func ExportNet(n *Net, x *tensor.Tensor[float32]) (*Export, error) {
	var classes []int
	if n.Conditional {
		classes = SampleClasses(x.Dim(0))
	}
	return ExportNetClasses(n, x, classes)
}

// ExportNetClasses is ExportNet with the classes of the samples of x, one
// per sample, for a class-conditional network; for any other network
// classes must be nil.
func ExportNetClasses(n *Net, x *tensor.Tensor[float32], classes []int) (*Export, error) {
	if !n.Conditional {
		if classes != nil {
			return nil, fmt.Errorf("export: the %s is not class-conditional: it takes no classes", n.Kind)
		}
		return exportUnconditional(n, x)
	}
	seq, ok := n.Module.(*nn.Sequential[float32])
	if !ok || !gan.IsConditional(seq) {
		return nil, fmt.Errorf("export: the %s is marked class-conditional but is a %T without a class embedding", n.Kind, n.Module)
	}
	if len(classes) != x.Dim(0) {
		return nil, fmt.Errorf("export: %d classes for %d samples", len(classes), x.Dim(0))
	}
	seq.SetTraining(false)
	if err := gan.SetLabels(seq, classes); err != nil {
		return nil, err
	}
	want, err := seq.Forward(autograd.Leaf(InputName, x, false))
	if err != nil {
		return nil, err
	}
	plain, err := evalModule(seq)
	if err != nil {
		return nil, err
	}
	names := paramNames(plain)
	in := autograd.Leaf(InputName, x, false)
	var rows, table, y *autograd.Var[float32]
	switch n.Kind {
	case Generator:
		emb, ok := plain.At(0).(*gan.LabelEmbedding)
		if !ok {
			return nil, fmt.Errorf("export: the conditional generator starts with a %T, not a gan.LabelEmbedding", plain.At(0))
		}
		table = emb.Weight
		rows = autograd.Leaf("class_embedding", gatherRows(table.Value, classes), false)
		h, err := ops.Concat("z_and_class", 1, in, rows)
		for i := 1; err == nil && i < plain.Len(); i++ {
			h, err = plain.At(i).Forward(h)
		}
		if err != nil {
			return nil, err
		}
		y = h
	case Discriminator:
		last := plain.Len() - 1
		p, ok := plain.At(last).(*gan.Projection)
		if !ok {
			return nil, fmt.Errorf("export: the conditional discriminator ends with a %T, not a gan.Projection", plain.At(last))
		}
		h := in
		for i := 0; err == nil && i < last; i++ {
			h, err = plain.At(i).Forward(h)
		}
		if err != nil {
			return nil, err
		}
		logit, err := p.Out.Forward(h)
		if err != nil {
			return nil, err
		}
		// ⟨V[y], h⟩ as Σⱼ (V[y] ⊙ h)ⱼ, the sum a product with a column of ones
		table = p.Embed
		rows = autograd.Leaf("class_projection", gatherRows(table.Value, classes), false)
		terms, err := ops.Mul("projection_terms", rows, h)
		if err != nil {
			return nil, err
		}
		ones := tensor.New[float32](h.Value.Dim(1), 1)
		for i := range ones.Data() {
			ones.Data()[i] = 1
		}
		dot, err := ops.MatMul("projection", terms, autograd.Leaf("projection_sum", ones, false), false, false)
		if err != nil {
			return nil, err
		}
		if y, err = ops.Add("logit", logit, dot); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("export: the %s cannot be class-conditional", n.Kind)
	}
	y.Name = OutputName
	if err := agree(y.Value, want.Value); err != nil {
		return nil, fmt.Errorf("export: the exported %s: %w", n.Kind, err)
	}
	m, err := onnx.Export(string(n.Kind), []*autograd.Var[float32]{in, rows}, []*autograd.Var[float32]{y}, onnx.ExportOptions[float32]{Names: names, DynamicBatch: true})
	if err != nil {
		return nil, err
	}
	if m, err = gatherClasses(m, onnx.FromTensor(names[table], table.Value)); err != nil {
		return nil, err
	}
	cls := &onnx.Tensor{Name: ClassInputName, Type: onnx.Int64, Shape: []int{len(classes)}, Ints: make([]int64, len(classes))}
	for i, c := range classes {
		cls.Ints[i] = int64(c)
	}
	return &Export{Model: m, Inputs: []*onnx.Tensor{onnx.FromTensor(InputName, x), cls}, Outputs: []*onnx.Tensor{onnx.FromTensor(OutputName, want.Value)}}, nil
}

// exportUnconditional is ExportNet for a network of one input.
func exportUnconditional(n *Net, x *tensor.Tensor[float32]) (*Export, error) {
	n.Module.SetTraining(false)
	module := n.Module
	var want *tensor.Tensor[float32]
	if n.SpectralNorm {
		seq, ok := n.Module.(*nn.Sequential[float32])
		if !ok {
			return nil, fmt.Errorf("export: the spectrally normalized %s is a %T, not an nn.Sequential", n.Kind, n.Module)
		}
		y, err := seq.Forward(autograd.Leaf(InputName, x, false))
		if err != nil {
			return nil, err
		}
		want = y.Value
		if module, err = evalModule(seq); err != nil {
			return nil, err
		}
	}
	names := paramNames(module)
	in := autograd.Leaf(InputName, x, false)
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
	y, err := module.Forward(h)
	if err != nil {
		return nil, err
	}
	y.Name = OutputName
	if want == nil {
		want = y.Value
	} else if err := agree(y.Value, want); err != nil {
		return nil, fmt.Errorf("export: the exported %s: %w", n.Kind, err)
	}
	m, err := onnx.Export(string(n.Kind), []*autograd.Var[float32]{in}, []*autograd.Var[float32]{y}, onnx.ExportOptions[float32]{Names: names, DynamicBatch: true})
	if err != nil {
		return nil, err
	}
	return &Export{Model: m, Inputs: []*onnx.Tensor{onnx.FromTensor(InputName, x)}, Outputs: []*onnx.Tensor{onnx.FromTensor(OutputName, want)}}, nil
}

// paramNames maps each parameter of m to its state-dict name.
func paramNames(m nn.Module[float32]) map[*autograd.Var[float32]]string {
	names := map[*autograd.Var[float32]]string{}
	for _, p := range m.Parameters() {
		names[p.Var] = p.Name
	}
	return names
}

// evalModule returns the DCGAN network seq as it computes in evaluation
// mode, with plain layers only: each gan.SpectralNorm (also as a
// gan.Projection's Out) is replaced by a copy of its layer whose weight is
// W/σ, σ = uᵀWv with the stored u and v, exactly the weight
// SpectralNorm.Forward uses when not training. The other layers are
// seq's own; seq is left unchanged.
func evalModule(seq *nn.Sequential[float32]) (*nn.Sequential[float32], error) {
	layers := make([]nn.Module[float32], seq.Len())
	for i := range layers {
		m := seq.At(i)
		switch l := m.(type) {
		case *gan.SpectralNorm:
			w, err := normalizedLayer(l)
			if err != nil {
				return nil, fmt.Errorf("layer %d: %w", i, err)
			}
			m = w
		case *gan.Projection:
			if sn, ok := l.Out.(*gan.SpectralNorm); ok {
				w, err := normalizedLayer(sn)
				if err != nil {
					return nil, fmt.Errorf("layer %d: %w", i, err)
				}
				p := *l
				p.Out = w
				m = &p
			}
		}
		layers[i] = m
	}
	s := nn.NewSequential(layers...)
	s.SetTraining(false)
	return s, nil
}

// normalizedLayer is a copy of the Conv2d or Linear that s wraps, with
// the weight W/σ(W) s uses in evaluation mode.
func normalizedLayer(s *gan.SpectralNorm) (nn.Module[float32], error) {
	var w *autograd.Var[float32]
	switch l := s.Layer.(type) {
	case *nn.Conv2d[float32]:
		w = l.Weight
	case *nn.Linear[float32]:
		w = l.Weight
	default:
		return nil, fmt.Errorf("spectral norm of a %T, want a Conv2d or Linear", s.Layer)
	}
	wsn, err := gan.SpectralNormalize("spectral_norm", w, s.U.Data(), s.V.Data())
	if err != nil {
		return nil, err
	}
	weight := autograd.Leaf("weight", wsn.Value, false)
	switch l := s.Layer.(type) {
	case *nn.Conv2d[float32]:
		c := *l
		c.Weight = weight
		return &c, nil
	case *nn.Linear[float32]:
		c := *l
		c.Weight = weight
		return &c, nil
	}
	panic("unreachable")
}

// gatherRows returns the rows of table (K, D) at the given indices, an
// (N, D) matrix.
func gatherRows(table *tensor.Tensor[float32], idx []int) *tensor.Tensor[float32] {
	d := table.Dim(1)
	out := tensor.New[float32](len(idx), d)
	for i, k := range idx {
		copy(out.Data()[i*d:(i+1)*d], table.Data()[k*d:(k+1)*d])
	}
	return out
}

// agree checks that the traced graph's output got matches the network's
// own want to 1e-4 (relative to values above 1): the same computation up
// to the order of a sum.
func agree(got, want *tensor.Tensor[float32]) error {
	if !tensor.SameShape(got.Shape(), want.Shape()) {
		return fmt.Errorf("shape %s, the network's %s", tensor.FormatShape(got.Shape()), tensor.FormatShape(want.Shape()))
	}
	for i, w := range want.Data() {
		if d := math.Abs(float64(got.Data()[i]) - float64(w)); !(d <= 1e-4*math.Max(1, math.Abs(float64(w)))) {
			return fmt.Errorf("element %d is %g, the network's %g", i, got.Data()[i], w)
		}
	}
	return nil
}

// gatherClasses turns m's second input, a FLOAT placeholder holding the
// rows of table for each sample's class, into Gather(table, class): the
// model then takes ClassInputName, INT64 (N,), in its place and holds
// table as an initializer.
func gatherClasses(m *onnx.Model, table *onnx.Tensor) (*onnx.Model, error) {
	var pb onnxpb.ModelProto
	if err := unmarshal(m, &pb); err != nil {
		return nil, err
	}
	g := pb.GetGraph()
	if len(g.GetInput()) != 2 {
		return nil, fmt.Errorf("export: the traced model has %d inputs, want the data and the class rows", len(g.GetInput()))
	}
	placeholder := g.GetInput()[1].GetName()
	b := onnx.NewBuilder("classes")
	b.Input(ClassInputName, onnx.Int64, []int{-1})
	b.Initializer(table)
	b.Node("Gather", []string{table.Name, ClassInputName}, []string{placeholder}, onnx.Attr{Name: "axis", Value: 0})
	extra, err := b.Model()
	if err != nil {
		return nil, err
	}
	var epb onnxpb.ModelProto
	if err := unmarshal(extra, &epb); err != nil {
		return nil, err
	}
	eg := epb.GetGraph()
	g.Input[1] = eg.GetInput()[0]
	g.Initializer = append(g.Initializer, eg.GetInitializer()...)
	g.Node = append(eg.GetNode(), g.GetNode()...)
	raw, err := proto.Marshal(&pb)
	if err != nil {
		return nil, err
	}
	return onnx.Parse(raw)
}

// unmarshal decodes m into pb.
func unmarshal(m *onnx.Model, pb *onnxpb.ModelProto) error {
	raw, err := m.Marshal()
	if err != nil {
		return err
	}
	return proto.Unmarshal(raw, pb)
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
