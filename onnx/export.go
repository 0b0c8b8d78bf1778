package onnx

import (
	"fmt"
	"slices"

	"github.com/backprop-dev/backprop/autograd"
	"github.com/backprop-dev/backprop/ops"
	"github.com/backprop-dev/backprop/tensor"
)

// ExportOptions adjust Export.
type ExportOptions[T tensor.Float] struct {
	// Names gives values their ONNX names (a parameter's state-dict name,
	// "0.weight"); others keep their engine name, made unique.
	Names map[*autograd.Var[T]]string
	// DynamicBatch declares the inputs' and outputs' first axis as the
	// symbolic batch size N, so the model takes any number of samples:
	// reshapes keep that axis (0 in the target shape) instead of fixing
	// the traced size.
	DynamicBatch bool
}

// Export writes the graph that computed outputs from inputs as an ONNX
// model, the way torch.onnx.export traces a module: every node between the
// inputs and the outputs becomes ONNX nodes (opset ExportOpset), every
// other leaf (the parameters, constants) an initializer. The model is
// FLOAT (float32), the type every runtime implements. An op with no ONNX
// equivalent here (a loss, a column-major reshape, a flipped kernel,
// training-mode batch normalization) is an error naming the node.
func Export[T tensor.Float](name string, inputs, outputs []*autograd.Var[T], opt ExportOptions[T]) (*Model, error) {
	e := &exporter[T]{b: NewBuilder(name), opt: opt, names: map[*autograd.Var[T]]string{}, used: map[string]bool{}, isInput: map[*autograd.Var[T]]bool{}}
	for _, v := range inputs {
		e.isInput[v] = true
	}
	for _, v := range inputs {
		s := slices.Clone(v.Value.Shape())
		if opt.DynamicBatch && len(s) > 0 {
			e.batch = s[0]
			s[0] = -1
		}
		e.b.Input(e.name(v), Float, s)
	}
	root := &autograd.Var[T]{Inputs: outputs}
	for _, v := range autograd.Topo(root) {
		if v == root {
			continue
		}
		if err := e.node(v); err != nil {
			return nil, err
		}
	}
	for _, v := range outputs {
		s := slices.Clone(v.Value.Shape())
		if opt.DynamicBatch && len(s) > 0 && s[0] == e.batch {
			s[0] = -1
		}
		e.b.Output(e.name(v), Float, s)
	}
	return e.b.Model()
}

type exporter[T tensor.Float] struct {
	b       *Builder
	opt     ExportOptions[T]
	names   map[*autograd.Var[T]]string
	used    map[string]bool
	isInput map[*autograd.Var[T]]bool
	batch   int
}

// fresh returns base, or base_2, base_3, … when it is taken.
func (e *exporter[T]) fresh(base string) string {
	if base == "" {
		base = "t"
	}
	n := base
	for i := 2; e.used[n]; i++ {
		n = fmt.Sprintf("%s_%d", base, i)
	}
	e.used[n] = true
	return n
}

// name is v's ONNX name, chosen on first use.
func (e *exporter[T]) name(v *autograd.Var[T]) string {
	if n, ok := e.names[v]; ok {
		return n
	}
	base := v.Name
	if n, ok := e.opt.Names[v]; ok {
		base = n
	}
	n := e.fresh(base)
	e.names[v] = n
	return n
}

// floatConst adds a FLOAT initializer and returns its name.
func (e *exporter[T]) floatConst(base string, shape []int, v ...float64) string {
	n := e.fresh(base)
	e.b.Initializer(&Tensor{Name: n, Type: Float, Shape: shape, Floats: v})
	return n
}

// shapeConst adds an INT64 initializer holding a shape.
func (e *exporter[T]) shapeConst(base string, shape []int) string {
	n := e.fresh(base)
	ints := make([]int64, len(shape))
	for i, d := range shape {
		ints[i] = int64(d)
	}
	e.b.Initializer(&Tensor{Name: n, Type: Int64, Shape: []int{len(shape)}, Ints: ints})
	return n
}

// reshapeTo adds a Reshape of value in to shape and returns its output.
func (e *exporter[T]) reshapeTo(in string, shape []int, out string) string {
	if out == "" {
		out = e.fresh(in + "_reshaped")
	}
	e.b.Node("Reshape", []string{in, e.shapeConst(out+"_shape", shape)}, []string{out})
	return out
}

func (e *exporter[T]) unsupported(v *autograd.Var[T], detail string) error {
	return fmt.Errorf("export: node %q (%s): %s", v.Name, v.Op.Name(), detail)
}

// batched wraps a (C, H, W) operand as (1, C, H, W) for ONNX's image
// operators, which always take a batch axis; unwrap removes it again.
func (e *exporter[T]) batched(in string, shape []int) string {
	if len(shape) == 4 {
		return in
	}
	return e.reshapeTo(in, append([]int{1}, shape...), "")
}

func (e *exporter[T]) node(v *autograd.Var[T]) error {
	if v.IsLeaf() {
		name := e.name(v)
		if !e.isInput[v] {
			e.b.Initializer(FromTensor(name, tensor.Convert[float32](v.Value)))
		}
		return nil
	}
	in := make([]string, len(v.Inputs))
	for i, u := range v.Inputs {
		in[i] = e.name(u)
	}
	out := e.name(v)
	ys := v.Value.Shape()
	switch op := v.Op.(type) {
	case *ops.AddOp[T]:
		e.b.Node("Add", in, []string{out})
	case *ops.MulOp[T]:
		e.b.Node("Mul", in, []string{out})
	case *ops.BroadcastOp[T]:
		e.b.Node(map[ops.BinaryKind]string{ops.BinAdd: "Add", ops.BinSub: "Sub", ops.BinMul: "Mul", ops.BinDiv: "Div"}[op.Kind], in, []string{out})
	case *ops.ScaleOp[T]:
		e.b.Node("Mul", []string{in[0], e.floatConst(out+"_factor", []int{}, op.C)}, []string{out})
	case *ops.UnaryMathOp[T]:
		e.b.Node(map[ops.MathFn]string{ops.MathExp: "Exp", ops.MathLog: "Log"}[op.Fn], in, []string{out})
	case *ops.UnaryOp[T]:
		switch op.Fn {
		case ops.ActReLU:
			e.b.Node("Relu", in, []string{out})
		case ops.ActLeakyReLU:
			e.b.Node("LeakyRelu", in, []string{out}, Attr{"alpha", op.Slope})
		case ops.ActSigmoid:
			e.b.Node("Sigmoid", in, []string{out})
		case ops.ActTanh:
			e.b.Node("Tanh", in, []string{out})
		case ops.ActIdentity:
			e.b.Node("Identity", in, []string{out})
		case ops.ActLogSigmoid:
			s := e.fresh(out + "_sigmoid")
			e.b.Node("Sigmoid", in, []string{s})
			e.b.Node("Log", []string{s}, []string{out})
		default:
			return e.unsupported(v, fmt.Sprintf("activation %q has no ONNX operator here", op.Fn))
		}
	case *ops.MatMulOp[T]:
		a, b := v.Inputs[0].Value, v.Inputs[1].Value
		if a.Rank() == 2 && b.Rank() == 2 {
			var attrs []Attr
			if op.TransA {
				attrs = append(attrs, Attr{"transA", 1})
			}
			if op.TransB {
				attrs = append(attrs, Attr{"transB", 1})
			}
			e.b.Node("Gemm", in, []string{out}, attrs...)
			break
		}
		e.b.Node("MatMul", in, []string{out})
	case *ops.BatchMatMulOp[T]:
		e.b.Node("MatMul", in, []string{out})
	case *ops.BiasAddOp[T]:
		bs := v.Inputs[1].Value.Shape()
		bias := in[1]
		if tail := len(ys) - op.Axis - len(bs); tail > 0 {
			shape := slices.Clone(bs)
			for range tail {
				shape = append(shape, 1)
			}
			bias = e.reshapeTo(in[1], shape, "")
		}
		e.b.Node("Add", []string{in[0], bias}, []string{out})
	case *ops.ReshapeOp[T]:
		if op.ColMajor {
			return e.unsupported(v, "a column-major reshape; export supports conventions.reshape: row-major")
		}
		xs := v.Inputs[0].Value.Shape()
		if op.Label == "flatten" && op.Lead >= 1 && len(ys) == op.Lead+1 {
			e.b.Node("Flatten", in, []string{out}, Attr{"axis", op.Lead})
			break
		}
		shape := slices.Clone(ys)
		if e.opt.DynamicBatch && len(xs) > 0 && len(shape) > 0 && xs[0] == e.batch && shape[0] == e.batch {
			shape[0] = 0
		}
		e.reshapeTo(in[0], shape, out)
	case *ops.TransposeOp[T]:
		var attrs []Attr
		if op.Perm != nil {
			attrs = append(attrs, Attr{"perm", op.Perm})
		}
		e.b.Node("Transpose", in, []string{out}, attrs...)
	case *ops.ConcatOp[T]:
		e.b.Node("Concat", in, []string{out}, Attr{"axis", op.Axis})
	case *ops.SoftmaxOp[T]:
		kind := "Softmax"
		if op.Log {
			kind = "LogSoftmax"
		}
		e.b.Node(kind, in, []string{out}, Attr{"axis", op.Axis})
	case *ops.DropoutOp[T]:
		if op.Training && op.P > 0 {
			return e.unsupported(v, "dropout in training mode; export a model in evaluation mode")
		}
		e.b.Node("Identity", in[:1], []string{out})
	case *ops.DropoutMaskOp[T]:
		m := e.fresh(out + "_masked")
		e.b.Node("Mul", in, []string{m})
		e.b.Node("Mul", []string{m, e.floatConst(out+"_scale", []int{}, op.Scale)}, []string{out})
	case *ops.BatchNormOp[T]:
		if op.Training {
			return e.unsupported(v, "batch normalization with batch statistics (training mode); export a model in evaluation mode, which uses the running statistics")
		}
		mean := e.fresh(out + "_running_mean")
		vr := e.fresh(out + "_running_var")
		e.b.Initializer(FromTensor(mean, tensor.Convert[float32](op.RunningMean)))
		e.b.Initializer(FromTensor(vr, tensor.Convert[float32](op.RunningVar)))
		e.b.Node("BatchNormalization", []string{in[0], in[1], in[2], mean, vr}, []string{out}, Attr{"epsilon", op.Eps})
	case *ops.Conv2dOp[T], *ops.ConvTranspose2dOp[T]:
		var o ops.ConvOptions
		kind := "Conv"
		if c, ok := op.(*ops.Conv2dOp[T]); ok {
			o = c.Options
		} else {
			o = op.(*ops.ConvTranspose2dOp[T]).Options
			kind = "ConvTranspose"
		}
		if o.Flip {
			return e.unsupported(v, "a flipped kernel (conventions.kernel: flipped); export supports the PyTorch reading")
		}
		s := func(x int) int { return max(x, 1) }
		attrs := []Attr{{"strides", []int{s(o.StrideH), s(o.StrideW)}}, {"pads", []int{o.PadH, o.PadW, o.PadH, o.PadW}}}
		ws := v.Inputs[1].Value.Shape()
		attrs = append(attrs, Attr{"kernel_shape", ws[2:]})
		if kind == "ConvTranspose" && (o.OutPadH != 0 || o.OutPadW != 0) {
			attrs = append(attrs, Attr{"output_padding", []int{o.OutPadH, o.OutPadW}})
		}
		x := e.batched(in[0], v.Inputs[0].Value.Shape())
		if len(ys) == 4 {
			e.b.Node(kind, []string{x, in[1]}, []string{out}, attrs...)
		} else {
			y := e.fresh(out + "_batched")
			e.b.Node(kind, []string{x, in[1]}, []string{y}, attrs...)
			e.reshapeTo(y, ys, out)
		}
	case *ops.MaxPool2dOp[T], *ops.AvgPool2dOp[T]:
		var o ops.PoolOptions
		kind := "MaxPool"
		if p, ok := op.(*ops.MaxPool2dOp[T]); ok {
			o = p.Options
		} else {
			o = op.(*ops.AvgPool2dOp[T]).Options
			kind = "AveragePool"
		}
		sh, sw := o.StrideH, o.StrideW
		if sh == 0 {
			sh = o.KernelH
		}
		if sw == 0 {
			sw = o.KernelW
		}
		attrs := []Attr{{"kernel_shape", []int{o.KernelH, o.KernelW}}, {"strides", []int{sh, sw}}, {"pads", []int{o.PadH, o.PadW, o.PadH, o.PadW}}}
		if kind == "AveragePool" && !o.ExcludePad {
			attrs = append(attrs, Attr{"count_include_pad", 1})
		}
		x := e.batched(in[0], v.Inputs[0].Value.Shape())
		if len(ys) == 4 {
			e.b.Node(kind, []string{x}, []string{out}, attrs...)
		} else {
			y := e.fresh(out + "_batched")
			e.b.Node(kind, []string{x}, []string{y}, attrs...)
			e.reshapeTo(y, ys, out)
		}
	default:
		return e.unsupported(v, "no ONNX operator for this op in export (losses and objectives are not exported: export the network's outputs)")
	}
	return nil
}
