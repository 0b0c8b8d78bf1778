package eval

import (
	"fmt"
	"io"
	"math"
	"strconv"
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
	// MaxDev is the histogram's largest deviation from uniform as a
	// fraction (MaxDeviation), reached at class MaxDevClass.
	MaxDev      float64 `json:"max_class_deviation"`
	MaxDevClass int     `json:"max_deviation_class"`
	// Precision, for samples of a conditional model whose asked-for
	// classes are known, is per class the share of the samples asked for
	// it that the classifier assigns to it (ClassPrecision); nil otherwise.
	// A class no sample was asked for is left out of the JSON as null.
	Precision []Float `json:"class_precision,omitempty"`
}

// Float is a float64 whose NaN is written as JSON null.
type Float float64

// MarshalJSON writes NaN as null.
func (f Float) MarshalJSON() ([]byte, error) {
	if math.IsNaN(float64(f)) {
		return []byte("null"), nil
	}
	return []byte(strconv.FormatFloat(float64(f), 'g', -1, 64)), nil
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
	return s.ScoreLabeled(name, images, nil)
}

// ScoreLabeled is Score for samples of a conditional model: asked holds
// the class each image was generated for, and the score gets the
// per-class precision. A nil asked gives Score.
func (s *Scorer) ScoreLabeled(name string, images *tensor.Tensor[float32], asked []uint8) (Score, error) {
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
	sc.MaxDev, sc.MaxDevClass = MaxDeviation(sc.Hist)
	if asked != nil {
		p, err := ClassPrecision(out.Probs, asked, Classes)
		if err != nil {
			return Score{}, fmt.Errorf("eval: %s: %w", name, err)
		}
		for _, v := range p {
			sc.Precision = append(sc.Precision, Float(v))
		}
	}
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

// LabelsPath is where `backprop sample --class` writes the classes it
// asked for beside the samples at path, and where `backprop eval` looks
// for them: "s.idx.gz" → "s-labels.idx.gz", "s.idx" → "s-labels.idx",
// any other name gets "-labels.idx" appended.
func LabelsPath(path string) string {
	gz := strings.HasSuffix(path, ".gz")
	base := strings.TrimSuffix(path, ".gz")
	if !strings.HasSuffix(base, ".idx") {
		return path + "-labels.idx"
	}
	out := strings.TrimSuffix(base, ".idx") + "-labels.idx"
	if gz {
		out += ".gz"
	}
	return out
}

// WriteTable prints scores as a Markdown table: IS, FD, the class
// histogram and its largest deviation from uniform (percentage points,
// and the class), then, when any score has them, the per-class precision
// in percent ("–" for a class no sample was asked for, or for samples
// whose classes are unknown).
func WriteTable(w io.Writer, scores []Score) error {
	withPrec := false
	for _, s := range scores {
		withPrec = withPrec || s.Precision != nil
	}
	var b strings.Builder
	b.WriteString("| samples | n | IS (mean ± std over splits) | FD to test features | images per class 0…9 | largest deviation from uniform |")
	if withPrec {
		b.WriteString(" precision per class 0…9 (%) |")
	}
	b.WriteString("\n|---|---:|---:|---:|---|---:|")
	if withPrec {
		b.WriteString("---|")
	}
	b.WriteString("\n")
	for _, s := range scores {
		h := make([]string, len(s.Hist))
		for i, v := range s.Hist {
			h[i] = fmt.Sprint(v)
		}
		fmt.Fprintf(&b, "| %s | %d | %.3f ± %.3f | %.3f | %s | %.1f pp (class %d) |", s.Name, s.N, s.IS, s.ISStd, s.FD, strings.Join(h, " "), 100*s.MaxDev, s.MaxDevClass)
		if withPrec {
			p := make([]string, len(s.Precision))
			for i, v := range s.Precision {
				p[i] = "–"
				if !math.IsNaN(float64(v)) {
					p[i] = fmt.Sprintf("%.1f", 100*float64(v))
				}
			}
			if len(p) == 0 {
				p = []string{"–"}
			}
			fmt.Fprintf(&b, " %s |", strings.Join(p, " "))
		}
		b.WriteString("\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}
