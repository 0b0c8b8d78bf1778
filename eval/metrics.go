// Package eval measures the quality of generated images without Python: a
// small CNN classifier trained with the engine itself on the real data set
// stands in for the Inception network of the usual metrics, giving a
// classifier-based Inception Score (how confidently and how evenly the
// samples fall into the classes) and a Fréchet distance between the
// classifier's penultimate-layer features of the samples and of the real
// test set (how close the two feature distributions are), plus the class
// histogram of the samples.
package eval

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/mat"
)

// InceptionScore is exp(E_x KL(p(y|x) ‖ p(y))) of the class probabilities
// probs (one row of K probabilities per sample), with p(y) the mean of the
// rows. It is 1 when every sample gets the same distribution and K when
// every sample is classified with certainty and the classes are equally
// frequent. As in the original Inception Score, the samples are cut into
// splits consecutive groups, the score is computed on each, and the mean
// and (population) standard deviation over the groups are returned; splits
// is reduced to the number of samples if it exceeds it.
func InceptionScore(probs [][]float64, splits int) (mean, std float64, err error) {
	n := len(probs)
	if n == 0 {
		return 0, 0, fmt.Errorf("eval: Inception Score of no samples")
	}
	if splits < 1 {
		return 0, 0, fmt.Errorf("eval: Inception Score: %d splits, want at least 1", splits)
	}
	k := len(probs[0])
	for i, p := range probs {
		if len(p) != k {
			return 0, 0, fmt.Errorf("eval: Inception Score: sample %d has %d class probabilities, sample 0 has %d", i, len(p), k)
		}
	}
	splits = min(splits, n)
	scores := make([]float64, splits)
	for s := range splits {
		part := probs[s*n/splits : (s+1)*n/splits]
		marginal := make([]float64, k)
		for _, p := range part {
			for y, v := range p {
				marginal[y] += v
			}
		}
		for y := range marginal {
			marginal[y] /= float64(len(part))
		}
		kl := 0.0
		for _, p := range part {
			for y, v := range p {
				if v > 0 {
					kl += v * (math.Log(v) - math.Log(marginal[y]))
				}
			}
		}
		scores[s] = math.Exp(kl / float64(len(part)))
	}
	for _, v := range scores {
		mean += v
	}
	mean /= float64(splits)
	for _, v := range scores {
		std += (v - mean) * (v - mean)
	}
	return mean, math.Sqrt(std / float64(splits)), nil
}

// Gaussian is the mean and covariance of a set of feature vectors.
type Gaussian struct {
	Mean []float64     // μ, one value per feature
	Cov  *mat.SymDense // Σ, unbiased
}

// FitGaussian returns the mean and the unbiased (n−1) covariance of the
// rows of features, accumulated in float64.
func FitGaussian(features [][]float64) (Gaussian, error) {
	n := len(features)
	if n < 2 {
		return Gaussian{}, fmt.Errorf("eval: a covariance needs at least 2 feature vectors, got %d", n)
	}
	d := len(features[0])
	mu := make([]float64, d)
	for i, f := range features {
		if len(f) != d {
			return Gaussian{}, fmt.Errorf("eval: feature vector %d has %d values, vector 0 has %d", i, len(f), d)
		}
		for j, v := range f {
			mu[j] += v
		}
	}
	for j := range mu {
		mu[j] /= float64(n)
	}
	centred := mat.NewDense(n, d, nil)
	for i, f := range features {
		for j, v := range f {
			centred.Set(i, j, v-mu[j])
		}
	}
	cov := mat.NewSymDense(d, nil)
	cov.SymOuterK(1/float64(n-1), centred.T())
	return Gaussian{Mean: mu, Cov: cov}, nil
}

// FrechetDistance is the squared Fréchet (2-Wasserstein) distance between
// the Gaussians N(μ1, Σ1) and N(μ2, Σ2),
//
//	|μ1 − μ2|² + tr(Σ1 + Σ2 − 2 (Σ1^½ Σ2 Σ1^½)^½),
//
// the quantity of the Fréchet Inception Distance. The matrix square roots
// come from eigen-decompositions of symmetric matrices: Σ1^½ = V √Λ Vᵀ, and
// the trace of (Σ1^½ Σ2 Σ1^½)^½, a symmetric positive semi-definite
// matrix, is the sum of the square roots of its eigenvalues (which equals
// tr((Σ1 Σ2)^½), as the two products share their eigenvalues). Eigenvalues
// that rounding made slightly negative count as zero, and so does a
// slightly negative total.
func FrechetDistance(a, b Gaussian) (float64, error) {
	d := len(a.Mean)
	if len(b.Mean) != d || a.Cov.SymmetricDim() != d || b.Cov.SymmetricDim() != d {
		return 0, fmt.Errorf("eval: Fréchet distance between Gaussians of dimensions %d and %d", d, len(b.Mean))
	}
	dist := 0.0
	for j := range d {
		diff := a.Mean[j] - b.Mean[j]
		dist += diff * diff
	}
	sqrtA, err := sqrtSym(a.Cov)
	if err != nil {
		return 0, err
	}
	var m mat.Dense
	m.Product(sqrtA, b.Cov, sqrtA)
	sym := mat.NewSymDense(d, nil)
	for i := range d {
		for j := i; j < d; j++ {
			sym.SetSym(i, j, (m.At(i, j)+m.At(j, i))/2)
		}
	}
	vals, err := eigenvalues(sym)
	if err != nil {
		return 0, err
	}
	trSqrt := 0.0
	for _, v := range vals {
		trSqrt += math.Sqrt(max(v, 0))
	}
	// rounding can leave a tiny negative value for (nearly) equal inputs
	return max(dist+mat.Trace(a.Cov)+mat.Trace(b.Cov)-2*trSqrt, 0), nil
}

// eigenvalues returns the eigenvalues of the symmetric matrix s.
func eigenvalues(s *mat.SymDense) ([]float64, error) {
	var e mat.EigenSym
	if !e.Factorize(s, false) {
		return nil, fmt.Errorf("eval: the eigen-decomposition of a %d×%d covariance did not converge", s.SymmetricDim(), s.SymmetricDim())
	}
	return e.Values(nil), nil
}

// sqrtSym is the principal square root V √Λ Vᵀ of a symmetric positive
// semi-definite matrix, negative rounding noise in Λ clamped to 0.
func sqrtSym(s *mat.SymDense) (*mat.Dense, error) {
	var e mat.EigenSym
	if !e.Factorize(s, true) {
		return nil, fmt.Errorf("eval: the eigen-decomposition of a %d×%d covariance did not converge", s.SymmetricDim(), s.SymmetricDim())
	}
	var v mat.Dense
	e.VectorsTo(&v)
	vals := e.Values(nil)
	n := len(vals)
	scaled := mat.NewDense(n, n, nil)
	for i := range n {
		for j := range n {
			scaled.Set(i, j, v.At(i, j)*math.Sqrt(max(vals[j], 0)))
		}
	}
	var out mat.Dense
	out.Mul(scaled, v.T())
	return &out, nil
}

// Histogram counts the most probable class of every row of probs.
func Histogram(probs [][]float64, classes int) []int {
	h := make([]int, classes)
	for _, p := range probs {
		best := 0
		for y, v := range p {
			if v > p[best] {
				best = y
			}
		}
		if best < classes {
			h[best]++
		}
	}
	return h
}

// MaxDeviation is the class histogram's largest deviation from uniform:
// max over the classes of |h_c/N − 1/K|, as a fraction (0.03 = three
// percentage points), and the class where it is reached. It is 0 for a
// perfectly even histogram and 1 − 1/K when every sample falls into one
// class; an empty histogram gives 0 and class −1.
func MaxDeviation(hist []int) (dev float64, class int) {
	n := 0
	for _, v := range hist {
		n += v
	}
	if n == 0 || len(hist) == 0 {
		return 0, -1
	}
	uniform := 1 / float64(len(hist))
	class = -1
	for c, v := range hist {
		if d := math.Abs(float64(v)/float64(n) - uniform); class < 0 || d > dev {
			dev, class = d, c
		}
	}
	return dev, class
}

// ClassPrecision is, for every class c, the share of the samples asked
// for class c (asked[i] == c) that the classifier assigns to c (the most
// probable class of probs[i]); NaN for a class no sample was asked for.
func ClassPrecision(probs [][]float64, asked []uint8, classes int) ([]float64, error) {
	if len(asked) != len(probs) {
		return nil, fmt.Errorf("eval: %d labels for %d samples", len(asked), len(probs))
	}
	hit, total := make([]int, classes), make([]int, classes)
	for i, p := range probs {
		c := int(asked[i])
		if c >= classes {
			return nil, fmt.Errorf("eval: label %d of sample %d, want 0…%d", c, i, classes-1)
		}
		best := 0
		for y, v := range p {
			if v > p[best] {
				best = y
			}
		}
		total[c]++
		if best == c {
			hit[c]++
		}
	}
	out := make([]float64, classes)
	for c := range out {
		out[c] = math.NaN()
		if total[c] > 0 {
			out[c] = float64(hit[c]) / float64(total[c])
		}
	}
	return out, nil
}
