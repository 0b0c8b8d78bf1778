package optim

import (
	"math"

	"github.com/backprop-dev/backprop/internal/vec"
	"github.com/backprop-dev/backprop/nn"
	"github.com/backprop-dev/backprop/tensor"
)

// AdamOptions are torch.optim.Adam's hyperparameters; DefaultAdamOptions
// gives PyTorch's defaults. Every value is used as given (β1 = 0 is a
// legitimate choice, common for GANs), so start from the defaults.
type AdamOptions struct {
	LR           float64 // learning rate (PyTorch 1e-3)
	Beta1, Beta2 float64 // decay rates of the moment estimates (0.9, 0.999)
	Eps          float64 // added to √v̂ in the denominator (1e-8)
	WeightDecay  float64 // L2 penalty λ added to the gradient as λ·θ (0)
	AMSGrad      bool    // use the running maximum of v (false)
}

// DefaultAdamOptions returns PyTorch's defaults: lr 1e-3, betas (0.9,
// 0.999), eps 1e-8, no weight decay, no AMSGrad.
func DefaultAdamOptions() AdamOptions {
	return AdamOptions{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8}
}

// Adam is torch.optim.Adam. With g the gradient of parameter θ and t its
// own step count (incremented first):
//
//	g ← g + λθ                            (if WeightDecay λ ≠ 0)
//	m ← β1·m + (1−β1)·g
//	v ← β2·v + (1−β2)·g²
//	v_max ← max(v_max, v)                 (AMSGrad; v_max replaces v below)
//	denom = √v / √(1−β2^t) + eps
//	θ ← θ − lr/(1−β1^t) · m/denom
//
// Note that eps is added after the bias correction of √v, as PyTorch does,
// not to √v before it. The state per parameter is exported as
// "<parameter>.step" (an integer, a scalar), "<parameter>.exp_avg",
// "<parameter>.exp_avg_sq" and, with AMSGrad, "<parameter>.max_exp_avg_sq",
// PyTorch's names.
type Adam[T tensor.Float] struct {
	// Options may be changed between steps (a learning-rate schedule).
	Options AdamOptions

	params []nn.Parameter[T]
	state  []adamState[T]
	batch  *vec.AdamBatch // float32 updates of one Step, made by the first
}

// adamState is one parameter's state; expAvg is nil before its first step.
type adamState[T tensor.Float] struct {
	step                          int64
	expAvg, expAvgSq, maxExpAvgSq *tensor.Tensor[T]
}

// NewAdam returns an Adam optimizer over params (names must be distinct;
// nn.Module.Parameters gives such a list).
func NewAdam[T tensor.Float](params []nn.Parameter[T], opt AdamOptions) (*Adam[T], error) {
	ps, err := checkParams(params)
	if err != nil {
		return nil, err
	}
	if len(ps) == 0 {
		return nil, errNoParams
	}
	switch {
	case !(opt.LR >= 0):
		return nil, errRange("learning rate", opt.LR, "≥ 0")
	case !(opt.Eps >= 0):
		return nil, errRange("epsilon", opt.Eps, "≥ 0")
	case !(opt.Beta1 >= 0 && opt.Beta1 < 1):
		return nil, errRange("beta1", opt.Beta1, "in [0, 1)")
	case !(opt.Beta2 >= 0 && opt.Beta2 < 1):
		return nil, errRange("beta2", opt.Beta2, "in [0, 1)")
	case !(opt.WeightDecay >= 0):
		return nil, errRange("weight decay", opt.WeightDecay, "≥ 0")
	}
	return &Adam[T]{Options: opt, params: ps, state: make([]adamState[T], len(ps))}, nil
}

// Step implements Optimizer.
//
// float32 parameters without AMSGrad are updated by package internal/vec,
// all in one fork/join across the cores when there are many, with SIMD
// kernels that compute the loop below operation by operation (no fused
// multiply-add), so bit for bit on normal values; they flush subnormal
// moments to zero, which spares x86 a microcode assist per element and
// changes no parameter visibly. float64 and AMSGrad run the loop here.
func (o *Adam[T]) Step() error {
	opt := o.Options
	b1, b2 := T(opt.Beta1), T(opt.Beta2)
	c1, c2 := T(1-opt.Beta1), T(1-opt.Beta2)
	wd, eps := T(opt.WeightDecay), T(opt.Eps)
	// The queued float32 updates run at the end, or before an error is
	// returned (the parameters before the faulty one are updated, as by
	// the loop).
	defer o.flush()
	for i, p := range o.params {
		g, err := gradOf(p)
		if err != nil {
			return err
		}
		if g == nil {
			continue
		}
		st := &o.state[i]
		if st.expAvg == nil {
			shape := p.Var.Value.Shape()
			st.expAvg, st.expAvgSq = tensor.New[T](shape...), tensor.New[T](shape...)
			if opt.AMSGrad {
				st.maxExpAvgSq = tensor.New[T](shape...)
			}
		}
		st.step++
		t := float64(st.step)
		bc1 := 1 - math.Pow(opt.Beta1, t)
		bc2 := 1 - math.Pow(opt.Beta2, t)
		stepSize := T(opt.LR / bc1)
		bc2Sqrt := T(math.Sqrt(bc2))
		theta, m, v := p.Var.Value.Data(), st.expAvg.Data(), st.expAvgSq.Data()
		var vmax []T
		if opt.AMSGrad {
			if st.maxExpAvgSq == nil { // AMSGrad switched on after some steps
				st.maxExpAvgSq = tensor.New[T](p.Var.Value.Shape()...)
			}
			vmax = st.maxExpAvgSq.Data()
		}
		if g32, ok := any(g).([]float32); ok && vmax == nil {
			if o.batch == nil {
				o.batch = new(vec.AdamBatch)
			}
			o.batch.Add(vec.AdamTensor{
				Theta: any(theta).([]float32), M: any(m).([]float32), V: any(v).([]float32), Grad: g32,
				Coeffs: vec.AdamCoeffs{
					B1: float32(b1), B2: float32(b2), C1: float32(c1), C2: float32(c2),
					WeightDecay: float32(wd), Eps: float32(eps),
					StepSize: float32(stepSize), BC2Sqrt: float32(bc2Sqrt),
				},
			})
			continue
		}
		for j, d := range g {
			if wd != 0 {
				d += wd * theta[j]
			}
			m[j] = m[j]*b1 + c1*d
			v[j] = v[j]*b2 + c2*d*d
			vv := v[j]
			if vmax != nil {
				vmax[j] = max(vmax[j], vv)
				vv = vmax[j]
			}
			denom := T(math.Sqrt(float64(vv)))/bc2Sqrt + eps
			theta[j] -= stepSize * m[j] / denom
		}
	}
	return nil
}

// flush runs the float32 updates queued by Step.
func (o *Adam[T]) flush() {
	if o.batch != nil {
		o.batch.Run()
	}
}

// ZeroGrad implements Optimizer.
func (o *Adam[T]) ZeroGrad() { zeroGrads(o.params) }

// fields is the per-parameter state of this configuration.
func (o *Adam[T]) fields() []stateField {
	f := []stateField{{name: "step", scalar: true}, {name: "exp_avg"}, {name: "exp_avg_sq"}}
	if o.Options.AMSGrad {
		f = append(f, stateField{name: "max_exp_avg_sq"})
	}
	return f
}

// State implements Optimizer: for every parameter that has taken a step,
// its step count (marked Int) and moment estimates, in PyTorch's order.
func (o *Adam[T]) State() []nn.StateEntry[T] {
	var out []nn.StateEntry[T]
	for i, p := range o.params {
		st := o.state[i]
		if st.expAvg == nil {
			continue
		}
		out = append(out,
			nn.StateEntry[T]{Name: p.Name + ".step", Tensor: tensor.Scalar(T(st.step)), Buffer: true, Int: true},
			nn.StateEntry[T]{Name: p.Name + ".exp_avg", Tensor: st.expAvg.Clone(), Buffer: true},
			nn.StateEntry[T]{Name: p.Name + ".exp_avg_sq", Tensor: st.expAvgSq.Clone(), Buffer: true},
		)
		if o.Options.AMSGrad && st.maxExpAvgSq != nil {
			out = append(out, nn.StateEntry[T]{Name: p.Name + ".max_exp_avg_sq", Tensor: st.maxExpAvgSq.Clone(), Buffer: true})
		}
	}
	return out
}

// LoadState implements Optimizer. A parameter with no entries starts
// afresh; one with some must have all of step, exp_avg, exp_avg_sq (and
// max_exp_avg_sq with AMSGrad).
func (o *Adam[T]) LoadState(state []nn.StateEntry[T]) error {
	why := "step, exp_avg and exp_avg_sq per parameter"
	if o.Options.AMSGrad {
		why = "step, exp_avg, exp_avg_sq and max_exp_avg_sq per parameter"
	} else {
		why += " (AMSGrad is off)"
	}
	ps, err := parseState(o.params, o.fields(), state, why)
	if err != nil {
		return err
	}
	for i := range o.params {
		f := ps[i]
		if f[0] == nil {
			o.state[i] = adamState[T]{}
			continue
		}
		st := adamState[T]{step: int64(f[0].Data()[0]), expAvg: f[1].Clone(), expAvgSq: f[2].Clone()}
		if o.Options.AMSGrad {
			st.maxExpAvgSq = f[3].Clone()
		}
		o.state[i] = st
	}
	return nil
}
