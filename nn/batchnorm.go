package nn

import (
	"fmt"

	"github.com/backprop-dev/backprop/autograd"
	"github.com/backprop-dev/backprop/ops"
	"github.com/backprop-dev/backprop/tensor"
)

// BatchNorm is torch.nn.BatchNorm1d or BatchNorm2d (see NewBatchNorm1d and
// NewBatchNorm2d): per-channel normalization with a learned scale (weight
// γ) and shift (bias β), and running estimates of the channel statistics
// for evaluation mode.
//
// In training mode the batch's own mean and biased variance normalize the
// input, and the running estimates move towards the batch statistics:
//
//	running_mean ← (1 − momentum)·running_mean + momentum·mean
//	running_var  ← (1 − momentum)·running_var  + momentum·unbiased variance
//
// with num_batches_tracked counting the updates. In evaluation mode the
// running estimates normalize and nothing is updated. The defaults are
// PyTorch's: momentum 0.1, eps 1e-5, γ = 1, β = 0, running mean 0, running
// variance 1.
type BatchNorm[T tensor.Float] struct {
	trainMode
	Features int     // number of channels C
	Eps      float64 // added to the variance before the square root
	Momentum float64 // weight of the newest batch in the running estimates

	Weight *autograd.Var[T] // γ (C)
	Bias   *autograd.Var[T] // β (C)

	RunningMean       *tensor.Tensor[T] // (C)
	RunningVar        *tensor.Tensor[T] // (C)
	NumBatchesTracked *tensor.Tensor[T] // scalar, an int64 in PyTorch

	kind  string // "batch_norm1d" or "batch_norm2d"
	ranks []int  // accepted input ranks
	want  string // the accepted shapes, for errors
}

// NewBatchNorm1d builds BatchNorm1d(features) for inputs (N, C) or
// (N, C, L).
func NewBatchNorm1d[T tensor.Float](features int) *BatchNorm[T] {
	return newBatchNorm[T](features, "batch_norm1d", []int{2, 3}, fmt.Sprintf("(N, %d) or (N, %d, L)", features, features))
}

// NewBatchNorm2d builds BatchNorm2d(features) for inputs (N, C, H, W).
func NewBatchNorm2d[T tensor.Float](features int) *BatchNorm[T] {
	return newBatchNorm[T](features, "batch_norm2d", []int{4}, fmt.Sprintf("(N, %d, H, W)", features))
}

func newBatchNorm[T tensor.Float](c int, kind string, ranks []int, want string) *BatchNorm[T] {
	b := &BatchNorm[T]{
		Features: c, Eps: 1e-5, Momentum: 0.1,
		Weight:            param[T]("weight", c),
		Bias:              param[T]("bias", c),
		RunningMean:       tensor.New[T](c),
		RunningVar:        tensor.New[T](c),
		NumBatchesTracked: tensor.Scalar[T](0),
		kind:              kind, ranks: ranks, want: want,
	}
	b.resetParameters(nil)
	return b
}

// ResetRunningStats sets the running mean to 0, the running variance to 1
// and num_batches_tracked to 0, as PyTorch's reset_running_stats.
func (b *BatchNorm[T]) ResetRunningStats() {
	b.RunningMean.Zero()
	b.RunningVar.Fill(1)
	b.NumBatchesTracked.Zero()
}

// Parameters implements Module: weight, then bias.
func (b *BatchNorm[T]) Parameters() []Parameter[T] { return weightAndBias(b.Weight, b.Bias) }

// StateDict implements Module: weight, bias, running_mean, running_var,
// num_batches_tracked (marked Int).
func (b *BatchNorm[T]) StateDict() []StateEntry[T] {
	return append(paramEntries(b.Parameters()),
		StateEntry[T]{Name: "running_mean", Tensor: b.RunningMean, Buffer: true},
		StateEntry[T]{Name: "running_var", Tensor: b.RunningVar, Buffer: true},
		StateEntry[T]{Name: "num_batches_tracked", Tensor: b.NumBatchesTracked, Buffer: true, Int: true},
	)
}

// Forward implements Module with ops.BatchNorm; in training mode it then
// updates the running statistics from the batch statistics the op
// computed.
func (b *BatchNorm[T]) Forward(x *autograd.Var[T]) (*autograd.Var[T], error) {
	xs := x.Value.Shape()
	okRank := false
	for _, r := range b.ranks {
		okRank = okRank || len(xs) == r
	}
	if !okRank || xs[1] != b.Features {
		return nil, &tensor.ShapeError{Op: b.kind, Tensor: "input", Want: b.want, Got: xs}
	}
	op := ops.NewBatchNormOp(ops.BatchNormOptions[T]{
		Training: b.IsTraining(), Eps: b.Eps, RunningMean: b.RunningMean, RunningVar: b.RunningVar,
	})
	y, err := autograd.Apply(b.kind, op, x, b.Weight, b.Bias)
	if err != nil {
		return nil, err
	}
	if b.IsTraining() {
		// the unbiased variance as op.UnbiasedVariance computes it, without
		// its slice
		mean, variance, m := op.Mean(), op.Variance(), float64(op.Count())
		rm, rv := b.RunningMean.Data(), b.RunningVar.Data()
		for c := range rm {
			unbiased := variance[c] * m / (m - 1)
			rm[c] = T(b.Momentum*mean[c] + (1-b.Momentum)*float64(rm[c]))
			rv[c] = T(b.Momentum*unbiased + (1-b.Momentum)*float64(rv[c]))
		}
		b.NumBatchesTracked.Data()[0]++
	}
	return y, nil
}
