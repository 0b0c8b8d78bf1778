package eval

import (
	"fmt"
	"io"
	"strings"

	"github.com/backprop-dev/backprop/data"
	"github.com/backprop-dev/backprop/tensor"
)

// Score is the quality of one set of images.
type Score struct {
	Name   string  `json:"name"`    // what was scored (a label or a file)
	N      int     `json:"n"`       // number of images
	IS     float64 `json:"is"`      // Inception Score, mean over the splits
	ISStd  float64 `json:"is_std"`  // its standard deviation over the splits
	Splits int     `json:"splits"`  // number of splits
	FD     float64 `json:"fd"`      // Fréchet distance to the real test set's features
	Hist   []int   `json:"classes"` // images per predicted class
}

// Scorer scores image sets against a data set's real test split with one
// classifier.
type Scorer struct {
	Classifier *Classifier
	Splits     int      // Inception Score splits (10)
	Real       Gaussian // the test split's features
}

// NewScorer prepares the reference statistics: the classifier's features
// of the real test images.
func NewScorer(c *Classifier, test *data.Dataset, splits int) (*Scorer, error) {
	out, err := c.Apply(test.Images)
	if err != nil {
		return nil, err
	}
	g, err := FitGaussian(out.Features)
	if err != nil {
		return nil, err
	}
	return &Scorer{Classifier: c, Splits: splits, Real: g}, nil
}

// Score computes the Inception Score, the Fréchet distance to the real
// test features and the class histogram of images (N, 1, 28, 28) in
// [0, 1].
func (s *Scorer) Score(name string, images *tensor.Tensor[float32]) (Score, error) {
	out, err := s.Classifier.Apply(images)
	if err != nil {
		return Score{}, fmt.Errorf("eval: %s: %w", name, err)
	}
	sc := Score{Name: name, N: len(out.Probs), Splits: min(s.Splits, len(out.Probs))}
	if sc.IS, sc.ISStd, err = InceptionScore(out.Probs, s.Splits); err != nil {
		return Score{}, fmt.Errorf("eval: %s: %w", name, err)
	}
	g, err := FitGaussian(out.Features)
	if err != nil {
		return Score{}, fmt.Errorf("eval: %s: %w", name, err)
	}
	if sc.FD, err = FrechetDistance(g, s.Real); err != nil {
		return Score{}, fmt.Errorf("eval: %s: %w", name, err)
	}
	sc.Hist = Histogram(out.Probs, Classes)
	return sc, nil
}

// LoadSamples reads generated images from an IDX file of unsigned bytes
// (plain or .gz), as `backprop sample` writes them, into a
// (N, 1, 28, 28) tensor in [0, 1].
func LoadSamples(path string) (*tensor.Tensor[float32], error) {
	idx, err := data.ReadImages(path)
	if err != nil {
		return nil, err
	}
	n, h, w := idx.Dims[0], idx.Dims[1], idx.Dims[2]
	if h != 28 || w != 28 {
		return nil, fmt.Errorf("eval: samples %s are %d×%d images, want 28×28 (the classifier's input)", path, h, w)
	}
	if n < 2 {
		return nil, fmt.Errorf("eval: samples %s hold %d image(s), want at least 2 for a covariance", path, n)
	}
	px := make([]float32, len(idx.Data))
	for i, b := range idx.Data {
		px[i] = float32(b) / 255
	}
	return tensor.FromSlice(px, n, 1, h, w)
}

// WriteTable prints scores as a Markdown table.
func WriteTable(w io.Writer, scores []Score) error {
	var b strings.Builder
	b.WriteString("| samples | n | IS (mean ± std over splits) | FD to test features | images per class 0…9 |\n")
	b.WriteString("|---|---:|---:|---:|---|\n")
	for _, s := range scores {
		h := make([]string, len(s.Hist))
		for i, v := range s.Hist {
			h[i] = fmt.Sprint(v)
		}
		fmt.Fprintf(&b, "| %s | %d | %.3f ± %.3f | %.3f | %s |\n", s.Name, s.N, s.IS, s.ISStd, s.FD, strings.Join(h, " "))
	}
	_, err := io.WriteString(w, b.String())
	return err
}
