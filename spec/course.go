package spec

import (
	"fmt"

	"github.com/backprop-dev/backprop/autograd"
	"github.com/backprop-dev/backprop/ops"
	"github.com/backprop-dev/backprop/tensor"
)

// course builds the layers of a course's problems that take no weight
// matrix of their own: softmax, pooling, normalisation, dropout with a
// given mask, and the element-wise combinations of residual blocks.
func (b *builder[T]) course(l Layer, ins []*autograd.Var[T], w, bias *autograd.Var[T]) (*autograd.Var[T], error) {
	x := ins[0]
	name := b.name(l.Name)
	axis := func(def int) int {
		if l.Axis != nil {
			return *l.Axis
		}
		return def
	}
	switch l.Type {
	case "softmax":
		return b.add(ops.Softmax(name, x, axis(-1)))
	case "log_softmax":
		return b.add(ops.LogSoftmax(name, x, axis(-1)))
	case "maxpool", "avgpool":
		if x.Value.Rank() != 3+b.off() {
			return nil, &tensor.ShapeError{Op: l.Type, Tensor: "input " + x.Name, Want: "channels×height×width", Got: x.Value.Shape()}
		}
		opt := ops.PoolOptions{KernelH: l.KernelSize.H, KernelW: l.KernelSize.W, StrideH: l.Stride.H, StrideW: l.Stride.W, PadH: l.Padding.H, PadW: l.Padding.W}
		if l.Type == "maxpool" {
			return b.add(ops.MaxPool2d(name, x, opt))
		}
		return b.add(ops.AvgPool2d(name, x, opt))
	case "batchnorm":
		if b.off() == 0 {
			return nil, fmt.Errorf("batch norm in training mode normalises over a batch: give the input with batch: true (one row per sample)")
		}
		c := x.Value.Dim(1)
		for _, p := range []*autograd.Var[T]{w, bias} {
			if p != nil && !tensor.SameShape(p.Value.Shape(), []int{c}) {
				return nil, &tensor.ShapeError{Op: "batchnorm", Tensor: p.Name, Want: fmt.Sprintf("[%d] (one per channel of %s)", c, x.Name), Got: p.Value.Shape()}
			}
		}
		v, err := b.add(ops.BatchNorm(name, x, w, bias, ops.BatchNormOptions[T]{Training: true, Eps: l.Eps}))
		if err == nil && b.s.countLayers("batchnorm") > 1 {
			// each layer's statistics under their own names in the rules
			op := v.Op.(*ops.BatchNormOp[T])
			op.MeanName, op.StdName = "μ_"+l.Name, "σ_"+l.Name
		}
		return v, err
	case "layernorm":
		d := x.Value.Dim(-1)
		for _, p := range []*autograd.Var[T]{w, bias} {
			if p != nil && !tensor.SameShape(p.Value.Shape(), []int{d}) {
				return nil, &tensor.ShapeError{Op: "layernorm", Tensor: p.Name, Want: fmt.Sprintf("[%d] (one per element of %s's last axis)", d, x.Name), Got: p.Value.Shape()}
			}
		}
		v, err := b.add(ops.LayerNorm(name, x, w, bias, l.Eps))
		if err == nil && b.s.countLayers("layernorm") > 1 {
			// each layer's statistics under their own names in the rules
			op := v.Op.(*ops.LayerNormOp[T])
			op.MeanName, op.StdName = "μ_"+l.Name, "σ_"+l.Name
		}
		return v, err
	case "dropout":
		mask := b.m.Name[b.name(l.Mask)]
		if !tensor.SameShape(mask.Value.Shape(), x.Value.Shape()) {
			return nil, &tensor.ShapeError{Op: "dropout", Tensor: "mask " + l.Mask, Want: tensor.FormatShape(x.Value.Shape()) + " (the shape of " + x.Name + ")", Got: mask.Value.Shape()}
		}
		return b.add(ops.DropoutMask(name, x, mask, l.Scale))
	case "add", "mul":
		if !tensor.SameShape(ins[0].Value.Shape(), ins[1].Value.Shape()) {
			return nil, fmt.Errorf("%s of %s %s and %s %s: the shapes must match", l.Type, ins[0].Name, tensor.FormatShape(ins[0].Value.Shape()), ins[1].Name, tensor.FormatShape(ins[1].Value.Shape()))
		}
		if l.Type == "add" {
			return b.add(ops.Add(name, ins[0], ins[1]))
		}
		return b.add(ops.Mul(name, ins[0], ins[1]))
	case "concat":
		return b.add(ops.Concat(name, axis(b.off()), ins...))
	}
	return nil, fmt.Errorf("unknown layer type %q", l.Type)
}

// objective adds the loss the spec asks for (the logistic layer builds its
// own), then the weight-decay term.
func (b *builder[T]) objective(x *autograd.Var[T], params map[string]*autograd.Var[T]) error {
	s, m := b.s, b.m
	o := s.Objective
	if o.Of != "" {
		x = m.Name[b.name(o.Of)]
	}
	fail := func(field, format string, a ...any) error {
		return &Error{File: s.file, Field: field, Msg: fmt.Sprintf(format, a...)}
	}
	// samples in a batch, for mean reductions over it
	n := 1
	if b.off() > 0 {
		n = x.Value.Dim(0)
	}
	switch o.Type {
	case "sse", "half_sse", "mse":
		t := m.Input
		if o.Target != "" {
			t = m.Name[b.name(o.Target)]
		}
		if !tensor.SameShape(x.Value.Shape(), t.Value.Shape()) {
			return fail("objective", "%s compares the output %s of shape %s with %s of shape %s; they must match",
				o.Type, x.Name, tensor.FormatShape(x.Value.Shape()), t.Name, tensor.FormatShape(t.Value.Shape()))
		}
		div := 1.0
		switch {
		case o.Type == "half_sse":
			div = 2
		case o.Type == "mse" && o.Reduction == "mean":
			div = float64(x.Value.Len())
		}
		if o.Type != "mse" && o.Reduction == "mean" {
			div *= float64(n)
		}
		loss, err := b.add(ops.SquaredError(lossName(o), x, t, div))
		if err != nil {
			return err
		}
		m.Objective = loss
	case "cross_entropy":
		in, _ := s.input(o.Labels)
		labels := make([]int, in.tensor.Len())
		for i, v := range in.tensor.Data() {
			labels[i] = int(v)
		}
		k := x.Value.Dim(-1)
		rows := 1
		if x.Value.Rank() == 2 {
			rows = x.Value.Dim(0)
		} else if x.Value.Rank() != 1 {
			return fail("objective", "cross_entropy takes logits of shape [classes] or [samples×classes]; %s has shape %s", x.Name, tensor.FormatShape(x.Value.Shape()))
		}
		if len(labels) != rows {
			return fail("objective.labels", "%s has %d labels for %d row(s) of logits %s", o.Labels, len(labels), rows, x.Name)
		}
		for i, y := range labels {
			if y >= k {
				return fail("objective.labels", "label %d of %s is class %d, outside the %d classes (0 to %d) of %s", i+1, o.Labels, y, k, k-1, x.Name)
			}
		}
		loss, err := b.add(ops.CrossEntropyReduce(lossName(o), x, labels, o.Reduction == "mean"))
		if err != nil {
			return err
		}
		m.Objective = loss
	}
	if o.Type != "log_p" && o.Type != "bce" && m.Objective != nil {
		m.Outputs = append(m.Outputs, m.Objective)
	}
	if wd := o.WeightDecay; wd != nil && m.Objective != nil {
		// J = loss + (λ/2)·Σ‖w‖², or log p − (λ/2)·Σ‖w‖² when maximized
		coef := wd.Lambda / 2
		if m.Maximize {
			coef = -coef
		}
		total := m.Objective
		for _, p := range wd.Params {
			r, err := b.add(ops.SumSquares("R_"+p, params[p], coef))
			if err != nil {
				return err
			}
			if total, err = b.add(ops.Add("", total, r)); err != nil {
				return err
			}
			total.Inline = true
		}
		total.Name, total.Inline = "J", false
		m.Name[total.Name] = total
		m.Objective = total
		m.Outputs = append(m.Outputs, total)
	}
	return nil
}

// lossName is the loss's name: the spec's, else L.
func lossName(o Objective) string {
	if o.Name != "" {
		return o.Name
	}
	return "L"
}

// countLayers counts the spec's layers of type t.
func (s *Spec) countLayers(t string) int {
	n := 0
	for _, l := range s.Layers {
		if l.Type == t {
			n++
		}
	}
	return n
}
