package gan

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/backprop-dev/backprop/autograd"
	"github.com/backprop-dev/backprop/nn"
	"github.com/backprop-dev/backprop/tensor"
)

// snEps is the smallest norm PowerIteration divides by, as
// torch.nn.functional.normalize's eps in torch.nn.utils.spectral_norm.
const snEps = 1e-12

// normalize divides x by max(‖x‖₂, snEps), in float64.
func normalize(x []float64) {
	n := 0.0
	for _, v := range x {
		n += v * v
	}
	n = max(math.Sqrt(n), snEps)
	for i := range x {
		x[i] /= n
	}
}

// PowerIteration runs one step of power iteration on w, read as a matrix
// of w.Dim(0) rows (the weight flattened past its first axis, as PyTorch
// does for Conv2d): v ← normalize(Wᵀu), then u ← normalize(Wv). u has
// w.Dim(0) elements and v the rest; both are updated in place.
func PowerIteration[T tensor.Float](w *tensor.Tensor[T], u, v []T) error {
	rows := w.Dim(0)
	cols := w.Len() / rows
	if len(u) != rows || len(v) != cols {
		return fmt.Errorf("gan: power iteration on a %d×%d weight with u of %d and v of %d elements", rows, cols, len(u), len(v))
	}
	wd := w.Data()
	vv := make([]float64, cols)
	for i := range rows {
		ui := float64(u[i])
		for j, x := range wd[i*cols : (i+1)*cols] {
			vv[j] += float64(x) * ui
		}
	}
	normalize(vv)
	uu := make([]float64, rows)
	for i := range rows {
		s := 0.0
		for j, x := range wd[i*cols : (i+1)*cols] {
			s += float64(x) * vv[j]
		}
		uu[i] = s
	}
	normalize(uu)
	for i, x := range uu {
		u[i] = T(x)
	}
	for j, x := range vv {
		v[j] = T(x)
	}
	return nil
}

// SpectralNormOp is W/σ with σ = uᵀWv, W read as a matrix of W.Dim(0)
// rows, u and v fixed (constants of the op, as PyTorch computes them
// without gradient). Its gradient is
//
//	∂L/∂W = G/σ − (Σᵢⱼ Gᵢⱼ Wᵢⱼ / σ²) · u vᵀ
//
// with G the upstream gradient: σ's dependence on W, ∂σ/∂W = u vᵀ, is
// differentiated through, as in torch.nn.utils.spectral_norm.
type SpectralNormOp[T tensor.Float] struct {
	U, V  []float64
	sigma float64 // σ of the last Forward
}

// SpectralNormalize records W/σ(W) with σ = uᵀWv for the given u and v
// (PowerIteration's result).
func SpectralNormalize[T tensor.Float](name string, w *autograd.Var[T], u, v []T) (*autograd.Var[T], error) {
	op := &SpectralNormOp[T]{U: make([]float64, len(u)), V: make([]float64, len(v))}
	for i, x := range u {
		op.U[i] = float64(x)
	}
	for i, x := range v {
		op.V[i] = float64(x)
	}
	return autograd.Apply(name, op, w)
}

// Name implements autograd.Op.
func (o *SpectralNormOp[T]) Name() string { return "spectral_norm" }

// Sigma is σ = uᵀWv of the last Forward.
func (o *SpectralNormOp[T]) Sigma() float64 { return o.sigma }

// Forward implements autograd.Op.
func (o *SpectralNormOp[T]) Forward(in []*tensor.Tensor[T]) (*tensor.Tensor[T], error) {
	w := in[0]
	if w.Rank() < 2 {
		return nil, fmt.Errorf("spectral norm of a weight of rank %d, want at least 2", w.Rank())
	}
	rows := w.Dim(0)
	cols := w.Len() / rows
	if len(o.U) != rows || len(o.V) != cols {
		return nil, fmt.Errorf("spectral norm of a %d×%d weight with u of %d and v of %d elements", rows, cols, len(o.U), len(o.V))
	}
	s := 0.0
	wd := w.Data()
	for i := range rows {
		r := 0.0
		for j, x := range wd[i*cols : (i+1)*cols] {
			r += float64(x) * o.V[j]
		}
		s += o.U[i] * r
	}
	if s == 0 {
		return nil, fmt.Errorf("spectral norm: σ = uᵀWv is 0")
	}
	o.sigma = s
	out := tensor.New[T](w.Shape()...)
	for i, x := range wd {
		out.Data()[i] = T(float64(x) / s)
	}
	return out, nil
}

// Backward implements autograd.Op.
func (o *SpectralNormOp[T]) Backward(in []*tensor.Tensor[T], out, gout *tensor.Tensor[T], need []bool) []*tensor.Tensor[T] {
	if !need[0] {
		return []*tensor.Tensor[T]{nil}
	}
	w := in[0]
	rows := w.Dim(0)
	cols := w.Len() / rows
	gw := 0.0
	for i, g := range gout.Data() {
		gw += float64(g) * float64(w.Data()[i])
	}
	c := gw / (o.sigma * o.sigma)
	dw := tensor.New[T](w.Shape()...)
	d, gd := dw.Data(), gout.Data()
	for i := range rows {
		for j := range cols {
			k := i*cols + j
			d[k] = T(float64(gd[k])/o.sigma - c*o.U[i]*o.V[j])
		}
	}
	return []*tensor.Tensor[T]{dw}
}

// SpectralNorm wraps a Conv2d or Linear layer of float32 so that its
// forward pass uses W/σ(W) (torch.nn.utils.spectral_norm with one power
// iteration): in training mode each Forward first advances u and v by one
// step of PowerIteration; in evaluation mode they stay. Its state-dict
// entries carry PyTorch's names: the layer's weight as "weight_orig",
// its bias, and the buffers "weight_u" and "weight_v".
type SpectralNorm struct {
	// Layer is the wrapped *nn.Conv2d[float32] or *nn.Linear[float32].
	Layer nn.Module[float32]
	// U and V are the power iteration's vectors: U has as many elements as
	// the weight's first axis, V the rest.
	U, V     *tensor.Tensor[float32]
	training bool
}

// NewSpectralNorm wraps layer (an *nn.Conv2d[float32] or
// *nn.Linear[float32]) with u and v drawn from N(0, 1) by rng and
// normalized, as PyTorch initializes them; a nil rng leaves them zero,
// for a model about to load a state dict.
func NewSpectralNorm(layer nn.Module[float32], rng *rand.Rand) *SpectralNorm {
	wp := weightOf(layer)
	if wp == nil {
		panic(fmt.Sprintf("gan: spectral norm of a %T, want a Conv2d or Linear", layer))
	}
	w := (*wp).Value
	rows := w.Dim(0)
	s := &SpectralNorm{Layer: layer, U: tensor.New[float32](rows), V: tensor.New[float32](w.Len() / rows), training: true}
	if rng != nil {
		for _, t := range []*tensor.Tensor[float32]{s.U, s.V} {
			x := make([]float64, t.Len())
			for i := range x {
				x[i] = rng.NormFloat64()
			}
			normalize(x)
			for i, v := range x {
				t.Data()[i] = float32(v)
			}
		}
	}
	return s
}

// weightOf returns a pointer to the Weight field of a Conv2d or Linear.
func weightOf(m nn.Module[float32]) **autograd.Var[float32] {
	switch l := m.(type) {
	case *nn.Conv2d[float32]:
		return &l.Weight
	case *nn.Linear[float32]:
		return &l.Weight
	}
	return nil
}

// Forward implements nn.Module.
func (s *SpectralNorm) Forward(x *autograd.Var[float32]) (*autograd.Var[float32], error) {
	wp := weightOf(s.Layer)
	orig := *wp
	if s.training {
		if err := PowerIteration(orig.Value, s.U.Data(), s.V.Data()); err != nil {
			return nil, err
		}
	}
	wsn, err := SpectralNormalize("spectral_norm", orig, s.U.Data(), s.V.Data())
	if err != nil {
		return nil, err
	}
	*wp = wsn
	defer func() { *wp = orig }()
	return s.Layer.Forward(x)
}

// Parameters implements nn.Module: the layer's, its weight named
// "weight_orig".
func (s *SpectralNorm) Parameters() []nn.Parameter[float32] {
	ps := s.Layer.Parameters()
	for i := range ps {
		if ps[i].Name == "weight" {
			ps[i].Name = "weight_orig"
		}
	}
	return ps
}

// StateDict implements nn.Module: the parameters, then the buffers
// weight_u and weight_v.
func (s *SpectralNorm) StateDict() []nn.StateEntry[float32] {
	var sd []nn.StateEntry[float32]
	for _, p := range s.Parameters() {
		sd = append(sd, nn.StateEntry[float32]{Name: p.Name, Tensor: p.Var.Value})
	}
	return append(sd, nn.StateEntry[float32]{Name: "weight_u", Tensor: s.U, Buffer: true},
		nn.StateEntry[float32]{Name: "weight_v", Tensor: s.V, Buffer: true})
}

// SetTraining implements nn.Module.
func (s *SpectralNorm) SetTraining(training bool) {
	s.training = training
	s.Layer.SetTraining(training)
}

// IsTraining implements nn.Module.
func (s *SpectralNorm) IsTraining() bool { return s.training }
