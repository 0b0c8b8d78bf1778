package gan

import (
	"fmt"

	"github.com/backprop-dev/backprop/autograd"
	"github.com/backprop-dev/backprop/nn"
	"github.com/backprop-dev/backprop/ops"
	"github.com/backprop-dev/backprop/tensor"
)

// LabelEmbedding is the first layer of a conditional generator: it maps
// the noise z (N, ZDim) to [z, E[y]] (N, ZDim + EmbedDim), E the learned
// (Classes, EmbedDim) embedding ("weight") and y the labels set with
// SetLabels before the forward pass.
type LabelEmbedding struct {
	Weight   *autograd.Var[float32]
	Labels   []int
	training bool
}

// Forward implements nn.Module.
func (l *LabelEmbedding) Forward(x *autograd.Var[float32]) (*autograd.Var[float32], error) {
	if err := checkLabels(l.Labels, x.Value.Dim(0), l.Weight.Value.Dim(0)); err != nil {
		return nil, err
	}
	e, err := ops.Embedding("class_embedding", l.Weight, l.Labels)
	if err != nil {
		return nil, err
	}
	return ops.Concat("z_and_class", 1, x, e)
}

// Parameters implements nn.Module.
func (l *LabelEmbedding) Parameters() []nn.Parameter[float32] {
	return []nn.Parameter[float32]{{Name: "weight", Var: l.Weight}}
}

// StateDict implements nn.Module.
func (l *LabelEmbedding) StateDict() []nn.StateEntry[float32] {
	return []nn.StateEntry[float32]{{Name: "weight", Tensor: l.Weight.Value}}
}

// SetTraining implements nn.Module.
func (l *LabelEmbedding) SetTraining(training bool) { l.training = training }

// IsTraining implements nn.Module.
func (l *LabelEmbedding) IsTraining() bool { return l.training }

// Projection is the last layer of a projection discriminator (Miyato &
// Koyama 2018): on the features h = φ(x) (N, F) it gives Out(h) +
// ⟨V[y], h⟩, Out the unconditional logit layer and V the learned
// (Classes, F) class embedding ("embed"), y the labels set with SetLabels.
type Projection struct {
	Out      nn.Module[float32]
	Embed    *autograd.Var[float32]
	Labels   []int
	training bool
}

// Forward implements nn.Module.
func (p *Projection) Forward(h *autograd.Var[float32]) (*autograd.Var[float32], error) {
	if err := checkLabels(p.Labels, h.Value.Dim(0), p.Embed.Value.Dim(0)); err != nil {
		return nil, err
	}
	o, err := p.Out.Forward(h)
	if err != nil {
		return nil, err
	}
	e, err := ops.Embedding("class_projection", p.Embed, p.Labels)
	if err != nil {
		return nil, err
	}
	d, err := RowDot("projection", e, h)
	if err != nil {
		return nil, err
	}
	return ops.Add("logit", o, d)
}

// Parameters implements nn.Module: Out's, then "embed".
func (p *Projection) Parameters() []nn.Parameter[float32] {
	return append(p.Out.Parameters(), nn.Parameter[float32]{Name: "embed", Var: p.Embed})
}

// StateDict implements nn.Module: Out's entries, then "embed".
func (p *Projection) StateDict() []nn.StateEntry[float32] {
	return append(p.Out.StateDict(), nn.StateEntry[float32]{Name: "embed", Tensor: p.Embed.Value})
}

// SetTraining implements nn.Module.
func (p *Projection) SetTraining(training bool) {
	p.training = training
	p.Out.SetTraining(training)
}

// IsTraining implements nn.Module.
func (p *Projection) IsTraining() bool { return p.training }

// checkLabels checks that there is one label per sample, each a class.
func checkLabels(labels []int, n, classes int) error {
	if len(labels) != n {
		return fmt.Errorf("gan: conditional model: %d labels for %d samples (set them with SetLabels)", len(labels), n)
	}
	for i, y := range labels {
		if y < 0 || y >= classes {
			return fmt.Errorf("gan: conditional model: label %d of sample %d, want 0…%d", y, i, classes-1)
		}
	}
	return nil
}

// IsConditional reports whether the model m (a generator or
// discriminator of this package) takes class labels.
func IsConditional(m *nn.Sequential[float32]) bool {
	for i := range m.Len() {
		switch m.At(i).(type) {
		case *LabelEmbedding, *Projection:
			return true
		}
	}
	return false
}

// SetLabels gives a conditional model the labels of its next forward
// passes, one per sample; it returns an error for an unconditional model.
func SetLabels(m *nn.Sequential[float32], labels []int) error {
	set := false
	for i := range m.Len() {
		switch l := m.At(i).(type) {
		case *LabelEmbedding:
			l.Labels, set = labels, true
		case *Projection:
			l.Labels, set = labels, true
		}
	}
	if !set {
		return fmt.Errorf("gan: the model is not class-conditional")
	}
	return nil
}

// RowDot records the row-wise dot product of a and b (N, F): an (N, 1)
// output whose row i is Σⱼ aᵢⱼ bᵢⱼ.
func RowDot[T tensor.Float](name string, a, b *autograd.Var[T]) (*autograd.Var[T], error) {
	return autograd.Apply(name, &RowDotOp[T]{}, a, b)
}

// RowDotOp is RowDot's op; its gradients are gout_i·b_i for a and
// gout_i·a_i for b.
type RowDotOp[T tensor.Float] struct{}

// Name implements autograd.Op.
func (RowDotOp[T]) Name() string { return "row_dot" }

// Forward implements autograd.Op.
func (RowDotOp[T]) Forward(in []*tensor.Tensor[T]) (*tensor.Tensor[T], error) {
	a, b := in[0], in[1]
	if a.Rank() != 2 || !tensor.SameShape(a.Shape(), b.Shape()) {
		return nil, fmt.Errorf("row dot of %s and %s, want two (N, F) matrices", tensor.FormatShape(a.Shape()), tensor.FormatShape(b.Shape()))
	}
	n, f := a.Dim(0), a.Dim(1)
	out := tensor.New[T](n, 1)
	ad, bd := a.Data(), b.Data()
	for i := range n {
		s := 0.0
		for j := range f {
			s += float64(ad[i*f+j]) * float64(bd[i*f+j])
		}
		out.Data()[i] = T(s)
	}
	return out, nil
}

// Backward implements autograd.Op.
func (RowDotOp[T]) Backward(in []*tensor.Tensor[T], out, gout *tensor.Tensor[T], need []bool) []*tensor.Tensor[T] {
	grads := make([]*tensor.Tensor[T], 2)
	n, f := in[0].Dim(0), in[0].Dim(1)
	for k, other := range []*tensor.Tensor[T]{in[1], in[0]} {
		if !need[k] {
			continue
		}
		g := tensor.New[T](n, f)
		for i := range n {
			gi := gout.Data()[i]
			for j := range f {
				g.Data()[i*f+j] = gi * other.Data()[i*f+j]
			}
		}
		grads[k] = g
	}
	return grads
}
