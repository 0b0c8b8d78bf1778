package optim

import (
	"fmt"
	"math"

	"github.com/backprop-dev/backprop/internal/vec"
	"github.com/backprop-dev/backprop/nn"
	"github.com/backprop-dev/backprop/tensor"
)

// SGDOptions are torch.optim.SGD's hyperparameters. The zero value of each
// field is PyTorch's default except LR, which PyTorch requires too.
type SGDOptions struct {
	LR          float64 // learning rate
	Momentum    float64 // momentum factor μ; 0 for plain gradient descent
	Dampening   float64 // dampening τ of the momentum
	WeightDecay float64 // L2 penalty λ, added to the gradient as λ·θ
	Nesterov    bool    // Nesterov momentum (needs Momentum > 0, Dampening 0)
}

// SGD is stochastic gradient descent with momentum, torch.optim.SGD. With
// g the gradient of parameter θ at step t:
//
//	g ← g + λθ                          (if WeightDecay λ ≠ 0)
//	b ← g at the first step,
//	    μb + (1−τ)g afterwards          (if Momentum μ ≠ 0)
//	g ← g + μb if Nesterov, else b      (if Momentum μ ≠ 0)
//	θ ← θ − lr·g
//
// Its state is one momentum buffer b per parameter, exported as
// "<parameter>.momentum_buffer".
type SGD[T tensor.Float] struct {
	// Options may be changed between steps (a learning-rate schedule).
	Options SGDOptions

	params []nn.Parameter[T]
	buf    []*tensor.Tensor[T] // momentum buffers; nil before a parameter's first step
	batch  *vec.SGDBatch       // float32 updates of one Step, made by the first
}

// NewSGD returns an SGD optimizer over params (names must be distinct;
// nn.Module.Parameters gives such a list).
func NewSGD[T tensor.Float](params []nn.Parameter[T], opt SGDOptions) (*SGD[T], error) {
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
	case !(opt.Momentum >= 0):
		return nil, errRange("momentum", opt.Momentum, "≥ 0")
	case !(opt.WeightDecay >= 0):
		return nil, errRange("weight decay", opt.WeightDecay, "≥ 0")
	case math.IsNaN(opt.Dampening):
		return nil, errRange("dampening", opt.Dampening, "a number")
	case opt.Nesterov && (opt.Momentum <= 0 || opt.Dampening != 0):
		return nil, fmt.Errorf("optim: Nesterov momentum needs momentum > 0 and dampening 0, got momentum %g, dampening %g", opt.Momentum, opt.Dampening)
	}
	return &SGD[T]{Options: opt, params: ps, buf: make([]*tensor.Tensor[T], len(ps))}, nil
}

// Step implements Optimizer.
//
// float32 parameters are updated by package internal/vec, all in one
// fork/join across the cores when there are many, with SIMD kernels that
// compute the loops below operation by operation (no fused multiply-add),
// so bit for bit on normal values; they flush subnormal values to zero.
// float64 runs the loops here.
func (o *SGD[T]) Step() error {
	lr, wd, mu := T(o.Options.LR), T(o.Options.WeightDecay), T(o.Options.Momentum)
	damp := T(1 - o.Options.Dampening)
	// The queued float32 updates run at the end, or before an error is
	// returned (the parameters before the faulty one are updated, as by
	// the loops).
	defer o.flush()
	for i, p := range o.params {
		g, err := gradOf(p)
		if err != nil {
			return err
		}
		if g == nil {
			continue
		}
		theta := p.Var.Value.Data()
		if g32, ok := any(g).([]float32); ok {
			c := vec.SGDCoeffs{LR: float32(lr), WeightDecay: float32(wd), Momentum: float32(mu), Damp: float32(damp),
				HasMomentum: o.Options.Momentum != 0, Nesterov: o.Options.Nesterov}
			var b []float32
			if c.HasMomentum {
				c.First = o.buf[i] == nil
				if c.First {
					o.buf[i] = tensor.New[T](p.Var.Value.Shape()...)
				}
				b = any(o.buf[i].Data()).([]float32)
			}
			if o.batch == nil {
				o.batch = new(vec.SGDBatch)
			}
			o.batch.Add(vec.SGDTensor{Theta: any(theta).([]float32), Buf: b, Grad: g32, Coeffs: c})
			continue
		}
		if o.Options.Momentum == 0 {
			for j, d := range g {
				if wd != 0 {
					d += wd * theta[j]
				}
				theta[j] -= lr * d
			}
			continue
		}
		first := o.buf[i] == nil
		if first {
			o.buf[i] = tensor.New[T](p.Var.Value.Shape()...)
		}
		b := o.buf[i].Data()
		for j, d := range g {
			if wd != 0 {
				d += wd * theta[j]
			}
			if first {
				b[j] = d
			} else {
				b[j] = b[j]*mu + damp*d
			}
			if o.Options.Nesterov {
				d += mu * b[j]
			} else {
				d = b[j]
			}
			theta[j] -= lr * d
		}
	}
	return nil
}

// flush runs the float32 updates queued by Step.
func (o *SGD[T]) flush() {
	if o.batch != nil {
		o.batch.Run()
	}
}

// ZeroGrad implements Optimizer.
func (o *SGD[T]) ZeroGrad() { zeroGrads(o.params) }

// sgdFields is SGD's per-parameter state.
var sgdFields = []stateField{{name: "momentum_buffer"}}

// State implements Optimizer: "<parameter>.momentum_buffer" for every
// parameter that has taken a momentum step.
func (o *SGD[T]) State() []nn.StateEntry[T] {
	var out []nn.StateEntry[T]
	for i, p := range o.params {
		if o.buf[i] != nil {
			out = append(out, nn.StateEntry[T]{Name: p.Name + ".momentum_buffer", Tensor: o.buf[i].Clone(), Buffer: true})
		}
	}
	return out
}

// LoadState implements Optimizer. Parameters without an entry start afresh
// (their next step initializes the buffer from the gradient, as a first
// step does).
func (o *SGD[T]) LoadState(state []nn.StateEntry[T]) error {
	fields := sgdFields
	why := "a momentum_buffer per parameter"
	if o.Options.Momentum == 0 {
		fields, why = nil, "no state without momentum"
	}
	ps, err := parseState(o.params, fields, state, why)
	if err != nil {
		return err
	}
	for i := range o.params {
		o.buf[i] = nil
		if len(fields) > 0 && ps[i][0] != nil {
			o.buf[i] = ps[i][0].Clone()
		}
	}
	return nil
}
