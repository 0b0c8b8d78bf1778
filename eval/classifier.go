package eval

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/backprop-dev/backprop/autograd"
	"github.com/backprop-dev/backprop/data"
	"github.com/backprop-dev/backprop/nn"
	"github.com/backprop-dev/backprop/ops"
	"github.com/backprop-dev/backprop/optim"
	"github.com/backprop-dev/backprop/safetensors"
	"github.com/backprop-dev/backprop/tensor"
	"github.com/backprop-dev/backprop/training"
)

// Classes is the number of classes of MNIST and Fashion-MNIST.
const Classes = 10

// FeatureDim is the size of the classifier's penultimate layer, the
// features of the Fréchet distance.
const FeatureDim = 128

// ClassifierFormat tags cached classifiers (metadata "format"); changing
// the architecture or the recipe must change it, so that stale caches are
// retrained. Version 1 was seeded with rand.NewPCG(seed, stream) directly,
// version 2 through SplitMix64 (training.SeededPCG); both hold the same
// network, trained the same way, so a cached version-1 classifier is still
// used (its scores are those it gave before).
var ClassifierFormat = training.Format{Kind: "backprop-eval-classifier", Version: 2}

// oldestClassifierFormat is the oldest cached classifier still read.
const oldestClassifierFormat = 1

// Random streams of the classifier's seed (training.SeededPCG).
var (
	streamInit    = training.Stream("init")
	streamShuffle = training.Stream("shuf")
)

// Classifier is the small CNN that scores samples: Conv2d(1→32, 4, 2, 1) →
// ReLU → Conv2d(32→64, 4, 2, 1) → ReLU → Flatten → Linear(3136→128) →
// ReLU → Linear(128→10). Its input is a (N, 1, 28, 28) batch in [0, 1]
// (scaled to [−1, 1] inside Forward), its output class logits; the
// 128 ReLU outputs before the last layer are the features.
type Classifier struct {
	Net *nn.Sequential[float32]
	// TestAccuracy is the accuracy on the real test split, measured after
	// training.
	TestAccuracy float64
}

// featureLayers is the number of leading layers of Net that produce the
// features.
const featureLayers = 7

// NewClassifier builds the classifier with PyTorch's default
// initialization from rng (nil: zeros, before loading weights).
func NewClassifier(rng *rand.Rand) *Classifier {
	return &Classifier{Net: nn.NewSequential[float32](
		nn.NewConv2d[float32](1, 32, 4, 2, 1, true, rng),
		nn.NewReLU[float32](),
		nn.NewConv2d[float32](32, 64, 4, 2, 1, true, rng),
		nn.NewReLU[float32](),
		nn.NewFlatten[float32](),
		nn.NewLinear[float32](64*7*7, FeatureDim, true, rng),
		nn.NewReLU[float32](),
		nn.NewLinear[float32](FeatureDim, Classes, true, rng),
	)}
}

// forward runs x ([0, 1] images) through the network and returns the
// features (after layer featureLayers−1) and the logits.
func (c *Classifier) forward(x *tensor.Tensor[float32]) (feat, logits *autograd.Var[float32], err error) {
	s := x.Shape()
	if len(s) != 4 || s[1] != 1 || s[2] != 28 || s[3] != 28 {
		return nil, nil, &tensor.ShapeError{Op: "eval.Classifier", Tensor: "images", Want: "(N, 1, 28, 28)", Got: s}
	}
	scaled := tensor.New[float32](s...)
	for i, v := range x.Data() {
		scaled.Data()[i] = 2*v - 1
	}
	h := autograd.Leaf("x", scaled, false)
	for i := range c.Net.Len() {
		if h, err = c.Net.At(i).Forward(h); err != nil {
			return nil, nil, fmt.Errorf("eval: classifier layer %d: %w", i, err)
		}
		if i == featureLayers-1 {
			feat = h
		}
	}
	return feat, h, nil
}

// Outputs are the classifier's view of a set of images.
type Outputs struct {
	Probs    [][]float64 // softmax class probabilities, one row per image
	Features [][]float64 // penultimate-layer activations, one row per image
}

// Apply runs the classifier in evaluation mode over images (N, 1, 28, 28)
// in [0, 1], 500 at a time.
func (c *Classifier) Apply(images *tensor.Tensor[float32]) (*Outputs, error) {
	c.Net.SetTraining(false)
	n := images.Dim(0)
	per := images.Len() / max(n, 1)
	out := &Outputs{Probs: make([][]float64, 0, n), Features: make([][]float64, 0, n)}
	const chunk = 500
	for lo := 0; lo < n; lo += chunk {
		hi := min(lo+chunk, n)
		x, err := tensor.FromSlice(images.Data()[lo*per:hi*per], append([]int{hi - lo}, images.Shape()[1:]...)...)
		if err != nil {
			return nil, err
		}
		feat, logits, err := c.forward(x)
		if err != nil {
			return nil, err
		}
		f, l := feat.Value.Data(), logits.Value.Data()
		for i := range hi - lo {
			row := make([]float64, FeatureDim)
			for j := range row {
				row[j] = float64(f[i*FeatureDim+j])
			}
			out.Features = append(out.Features, row)
			out.Probs = append(out.Probs, softmax(l[i*Classes:(i+1)*Classes]))
		}
	}
	return out, nil
}

// softmax is the softmax of one row of logits, in float64.
func softmax(l []float32) []float64 {
	m := math.Inf(-1)
	for _, v := range l {
		m = max(m, float64(v))
	}
	p := make([]float64, len(l))
	s := 0.0
	for i, v := range l {
		p[i] = math.Exp(float64(v) - m)
		s += p[i]
	}
	for i := range p {
		p[i] /= s
	}
	return p
}

// Accuracy is the fraction of rows of probs whose most probable class is
// the label.
func Accuracy(probs [][]float64, labels []uint8) float64 {
	if len(probs) == 0 {
		return 0
	}
	right := 0
	for i, p := range probs {
		best := 0
		for y, v := range p {
			if v > p[best] {
				best = y
			}
		}
		if best == int(labels[i]) {
			right++
		}
	}
	return float64(right) / float64(len(probs))
}

// TrainOptions set how the classifier is trained.
type TrainOptions struct {
	Epochs int    // passes over the training split (2)
	Batch  int    // mini-batch size (64)
	Seed   uint64 // initialization and shuffles (1)
	// Hooks follow the training (a progress bar): every step reports its
	// "loss", every epoch its "mean loss".
	Hooks training.Hooks
}

// TrainClassifier trains a classifier on the labelled train split with
// Adam (lr 1e-3) and softmax cross-entropy, on training.Loop, then
// measures its accuracy on test. A cancelled ctx stops it between steps
// with an error wrapping training.ErrInterrupted (nothing is saved: the
// classifier is cached only once trained).
func TrainClassifier(ctx context.Context, train, test *data.Dataset, opt TrainOptions) (*Classifier, error) {
	if opt.Epochs == 0 {
		opt.Epochs = 2
	}
	if opt.Batch == 0 {
		opt.Batch = 64
	}
	if opt.Seed == 0 {
		opt.Seed = 1
	}
	if train.Len() == 0 {
		return nil, fmt.Errorf("eval: no training images for the classifier")
	}
	c := NewClassifier(training.NewRand(opt.Seed, streamInit))
	adam, err := optim.NewAdam(c.Net.Parameters(), optim.DefaultAdamOptions())
	if err != nil {
		return nil, err
	}
	shuffle := training.NewRand(opt.Seed, streamShuffle)
	var batches [][]int
	var epochLoss float64
	loop := training.Loop{
		Plan:  training.Plan{Epochs: opt.Epochs, StepsPerEpoch: (train.Len() + opt.Batch - 1) / opt.Batch},
		Hooks: opt.Hooks,
	}
	loop.BeginEpoch = func(int) (err error) {
		batches, err = train.Batches(shuffle, opt.Batch)
		epochLoss = 0
		return err
	}
	loop.Step = func(e, s int) ([]training.Metric, error) {
		x, labels, err := train.Batch(batches[s])
		if err != nil {
			return nil, err
		}
		c.Net.SetTraining(true)
		adam.ZeroGrad()
		_, logits, err := c.forward(x)
		if err != nil {
			return nil, err
		}
		loss, err := ops.CrossEntropy("cross_entropy", logits, labels)
		if err != nil {
			return nil, err
		}
		if err := autograd.Backward(loss); err != nil {
			return nil, err
		}
		l := float64(loss.Value.Data()[0])
		if !training.Finite(l) {
			return nil, fmt.Errorf("eval: classifier training at epoch %d, step %d: %w (%v)", e, s+1, training.ErrNonFinite, l)
		}
		if err := adam.Step(); err != nil {
			return nil, err
		}
		epochLoss += l
		return []training.Metric{{Name: "loss", Value: l}}, nil
	}
	loop.EndEpoch = func(int) (training.EpochEnd, error) {
		return training.EpochEnd{Metrics: []training.Metric{{Name: "mean loss", Value: epochLoss / float64(len(batches))}}}, nil
	}
	if err := loop.Run(ctx); err != nil {
		return nil, err
	}
	out, err := c.Apply(test.Images)
	if err != nil {
		return nil, err
	}
	c.TestAccuracy = Accuracy(out.Probs, test.Labels)
	return c, nil
}

// DefaultCacheDir is where classifiers are cached unless told otherwise:
// the user's cache directory (~/.cache on Linux) under "backprop".
func DefaultCacheDir() (string, error) {
	dir, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("eval: no cache directory (set --cache): %w", err)
	}
	return filepath.Join(dir, "backprop"), nil
}

// cacheKey names a data set's cached classifier: the name itself for
// "mnist" and "fashion-mnist", a hash of the absolute path for a
// directory.
func cacheKey(name string) string {
	switch n := strings.ToLower(name); n {
	case "mnist", "fashion-mnist":
		return n
	}
	abs, err := filepath.Abs(name)
	if err != nil {
		abs = name
	}
	h := sha256.Sum256([]byte(abs))
	return "dir-" + hex.EncodeToString(h[:8])
}

// CachePath is the file holding the cached classifier of data set name.
func CachePath(cacheDir, name string) string {
	return filepath.Join(cacheDir, "classifier-"+cacheKey(name)+".safetensors")
}

// Save writes the classifier's weights and test accuracy to path in
// ClassifierFormat, atomically (training.SaveCheckpoint).
func (c *Classifier) Save(path, dataName string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("eval: cache directory: %w", err)
	}
	f := safetensors.NewFile()
	for _, e := range c.Net.StateDict() {
		if err := f.AddF32(e.Name, e.Tensor); err != nil {
			return err
		}
	}
	f.Metadata["data"] = dataName
	f.Metadata["test_accuracy"] = strconv.FormatFloat(c.TestAccuracy, 'g', -1, 64)
	return training.SaveCheckpoint(path, ClassifierFormat, f, nil)
}

// LoadClassifier reads a classifier written by Save, of this version or an
// earlier one; a file of another format or holding NaN or Inf is refused.
func LoadClassifier(path string) (*Classifier, error) {
	f, err := safetensors.Read(path)
	if err != nil {
		return nil, fmt.Errorf("eval: classifier: %w", err)
	}
	version, err := training.CheckFormat(f.Metadata, ClassifierFormat, oldestClassifierFormat)
	if err == nil && version == 0 {
		err = &training.FormatError{Want: ClassifierFormat, Oldest: oldestClassifierFormat}
	}
	if err == nil {
		err = training.CheckFinite(f)
	}
	if err != nil {
		return nil, fmt.Errorf("eval: %s is not a cached classifier this version reads: %w", path, err)
	}
	c := NewClassifier(nil)
	var sd []nn.StateEntry[float32]
	for _, name := range f.Names() {
		t, err := f.F32(name)
		if err != nil {
			return nil, fmt.Errorf("eval: classifier: %w", err)
		}
		sd = append(sd, nn.StateEntry[float32]{Name: name, Tensor: t})
	}
	if err := nn.LoadStateDict(c.Net, sd); err != nil {
		return nil, fmt.Errorf("eval: classifier %s: %w", path, err)
	}
	if c.TestAccuracy, err = strconv.ParseFloat(f.Metadata["test_accuracy"], 64); err != nil {
		return nil, fmt.Errorf("eval: classifier %s: metadata test_accuracy %q: %w", path, f.Metadata["test_accuracy"], err)
	}
	return c, nil
}

// CachedClassifier returns the classifier of data set name from cacheDir,
// training it on the train split (and saving it) the first time. log,
// if not nil, hears about the training.
func CachedClassifier(ctx context.Context, cacheDir, name string, train, test *data.Dataset, log io.Writer, opt TrainOptions) (*Classifier, bool, error) {
	path := CachePath(cacheDir, name)
	if _, err := os.Stat(path); err == nil {
		c, err := LoadClassifier(path)
		if err == nil {
			return c, true, nil
		}
		if log != nil {
			fmt.Fprintf(log, "ignoring the cached classifier (%v); retraining\n", err)
		}
	}
	c, err := TrainClassifier(ctx, train, test, opt)
	if err != nil {
		return nil, false, err
	}
	if err := c.Save(path, name); err != nil {
		return nil, false, err
	}
	return c, false, nil
}
