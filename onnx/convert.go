package onnx

import (
	"fmt"
	"math"
	"slices"

	"github.com/backprop-dev/backprop/autograd"
	"github.com/backprop-dev/backprop/onnx/internal/onnxpb"
	"github.com/backprop-dev/backprop/ops"
	"github.com/backprop-dev/backprop/tensor"
)

// convert imports node c with the engine's ops, by operator type.
func convert[T tensor.Float](c *nodeCtx[T]) error {
	switch c.op {
	case "Identity":
		v, err := c.value(0)
		if err != nil {
			return err
		}
		if v.Var != nil {
			c.setOut(0, v.Var)
		} else {
			c.setStatic(0, v.Static)
		}
		return nil
	case "Constant":
		return c.constant()
	case "Add", "Sub", "Mul", "Div":
		return c.binary()
	case "Relu", "Sigmoid", "Tanh", "LeakyRelu", "Exp", "Log":
		return c.unary()
	case "Softmax", "LogSoftmax":
		return c.softmax()
	case "Gemm":
		return c.gemm()
	case "MatMul":
		return c.matmul()
	case "Conv", "ConvTranspose":
		return c.conv(c.op == "ConvTranspose")
	case "MaxPool", "AveragePool":
		return c.pool(c.op == "MaxPool")
	case "BatchNormalization":
		return c.batchNorm()
	case "Dropout":
		return c.dropout()
	case "Flatten":
		return c.flatten()
	case "Reshape":
		return c.reshape()
	case "Transpose":
		return c.transpose()
	case "Concat":
		return c.concat()
	case "Pad":
		return c.pad()
	case "Gather":
		return c.gather()
	}
	return c.unsupported("", "operator not implemented")
}

// normAxis turns a possibly negative axis into one in [0, rank).
func (c *nodeCtx[T]) normAxis(attr string, axis int64, rank int) (int, error) {
	if axis < -int64(rank) || axis >= int64(rank) {
		return 0, c.errorf("%s %d is outside the input's %d axes", attr, axis, rank)
	}
	if axis < 0 {
		axis += int64(rank)
	}
	return int(axis), nil
}

func (c *nodeCtx[T]) constant() error {
	out := &Tensor{Name: c.outName(0)}
	set := 0
	if a, err := c.attr("value", onnxpb.AttributeProto_TENSOR); err != nil {
		return err
	} else if a != nil {
		t, err := decodeTensor(a.GetT())
		if err != nil {
			return c.unsupported("value", err.Error())
		}
		out, set = t, set+1
	}
	if a, err := c.attr("value_float", onnxpb.AttributeProto_FLOAT); err != nil {
		return err
	} else if a != nil {
		out.Type, out.Shape, out.Floats, set = Float, []int{}, []float64{float64(a.GetF())}, set+1
	}
	if a, err := c.attr("value_floats", onnxpb.AttributeProto_FLOATS); err != nil {
		return err
	} else if a != nil {
		out.Type, out.Shape, set = Float, []int{len(a.GetFloats())}, set+1
		for _, f := range a.GetFloats() {
			out.Floats = append(out.Floats, float64(f))
		}
	}
	if a, err := c.attr("value_int", onnxpb.AttributeProto_INT); err != nil {
		return err
	} else if a != nil {
		out.Type, out.Shape, out.Ints, set = Int64, []int{}, []int64{a.GetI()}, set+1
	}
	if a, err := c.attr("value_ints", onnxpb.AttributeProto_INTS); err != nil {
		return err
	} else if a != nil {
		out.Type, out.Shape, out.Ints, set = Int64, []int{len(a.GetInts())}, slices.Clone(a.GetInts()), set+1
	}
	for _, name := range []string{"sparse_value", "value_string", "value_strings"} {
		if _, ok := c.attrs[name]; ok {
			c.used[name] = true
			return c.unsupported(name, "string and sparse constants")
		}
	}
	if set != 1 {
		return c.errorf("a Constant needs exactly one value attribute, got %d", set)
	}
	out.Name = c.outName(0)
	switch {
	case out.Type.IsFloat():
		x, err := ToTensor[T](out)
		if err != nil {
			return err
		}
		c.setOut(0, autograd.Leaf(out.Name, x, false))
	case out.Type.isInteger():
		c.setStatic(0, out)
	default:
		return c.unsupported("value", fmt.Sprintf("element type %s", out.Type))
	}
	return nil
}

func (c *nodeCtx[T]) binary() error {
	a, err := c.float(0)
	if err != nil {
		return err
	}
	b, err := c.float(1)
	if err != nil {
		return err
	}
	name := c.outName(0)
	if c.b.opset < 7 {
		// before opset 7 b broadcasts onto a only when asked, aligned at axis
		bc, err := c.attrInt("broadcast", 0)
		if err != nil {
			return err
		}
		as, bs := a.Value.Shape(), b.Value.Shape()
		if bc == 0 && !tensor.SameShape(as, bs) {
			return c.errorf("operands of shapes %s and %s without broadcast 1", tensor.FormatShape(as), tensor.FormatShape(bs))
		}
		axis, err := c.attrInt("axis", int64(len(as)-len(bs)))
		if err != nil {
			return err
		}
		if bc != 0 && !tensor.SameShape(as, bs) {
			if axis < 0 {
				axis += int64(len(as))
			}
			if axis < 0 || int(axis)+len(bs) > len(as) {
				return c.errorf("axis %d places B %s outside A %s", axis, tensor.FormatShape(bs), tensor.FormatShape(as))
			}
			shape := make([]int, len(as))
			for i := range shape {
				shape[i] = 1
			}
			copy(shape[axis:], bs)
			if b, err = ops.Reshape(name+"_b_aligned", b, false, shape...); err != nil {
				return c.errorf("%v", err)
			}
		}
	}
	same := tensor.SameShape(a.Value.Shape(), b.Value.Shape())
	var y *autograd.Var[T]
	switch {
	case c.op == "Add" && same:
		y, err = ops.Add(name, a, b)
	case c.op == "Mul" && same:
		y, err = ops.Mul(name, a, b)
	default:
		kind := map[string]ops.BinaryKind{"Add": ops.BinAdd, "Sub": ops.BinSub, "Mul": ops.BinMul, "Div": ops.BinDiv}[c.op]
		y, err = ops.Broadcast(name, kind, a, b)
	}
	if err != nil {
		return c.errorf("%v", err)
	}
	c.setOut(0, y)
	return nil
}

func (c *nodeCtx[T]) unary() error {
	x, err := c.float(0)
	if err != nil {
		return err
	}
	name := c.outName(0)
	var y *autograd.Var[T]
	switch c.op {
	case "Relu":
		y, err = ops.ReLU(name, x)
	case "Sigmoid":
		y, err = ops.Sigmoid(name, x)
	case "Tanh":
		y, err = ops.Tanh(name, x)
	case "Exp":
		y, err = ops.Exp(name, x)
	case "Log":
		y, err = ops.Log(name, x)
	case "LeakyRelu":
		alpha, aerr := c.attrFloat("alpha", 0.01)
		if aerr != nil {
			return aerr
		}
		y, err = ops.LeakyReLU(name, x, alpha)
	}
	if err != nil {
		return c.errorf("%v", err)
	}
	c.setOut(0, y)
	return nil
}

func (c *nodeCtx[T]) softmax() error {
	x, err := c.float(0)
	if err != nil {
		return err
	}
	def := int64(-1)
	if c.b.opset < 13 {
		def = 1
	}
	a, err := c.attrInt("axis", def)
	if err != nil {
		return err
	}
	xs := x.Value.Shape()
	if len(xs) == 0 {
		return c.errorf("softmax of a scalar")
	}
	axis, err := c.normAxis("axis", a, len(xs))
	if err != nil {
		return err
	}
	name := c.outName(0)
	f := ops.Softmax[T]
	if c.op == "LogSoftmax" {
		f = ops.LogSoftmax[T]
	}
	if c.b.opset >= 13 || axis == len(xs)-1 {
		y, err := f(name, x, axis)
		if err != nil {
			return c.errorf("%v", err)
		}
		c.setOut(0, y)
		return nil
	}
	// before opset 13 the input is read as a matrix: the axes before axis
	// are its rows, the axes from axis on its columns
	flat, err := ops.Reshape(name+"_2d", x, false, tensor.NumElements(xs[:axis]), tensor.NumElements(xs[axis:]))
	if err != nil {
		return c.errorf("%v", err)
	}
	s, err := f(name+"_rows", flat, 1)
	if err != nil {
		return c.errorf("%v", err)
	}
	y, err := ops.Reshape(name, s, false, xs...)
	if err != nil {
		return c.errorf("%v", err)
	}
	c.setOut(0, y)
	return nil
}

func (c *nodeCtx[T]) gemm() error {
	// before opset 7, C broadcasts only with broadcast 1
	legacyBroadcast, err := c.attrInt("broadcast", 1)
	if err != nil {
		return err
	}
	a, err := c.float(0)
	if err != nil {
		return err
	}
	b, err := c.float(1)
	if err != nil {
		return err
	}
	alpha, err := c.attrFloat("alpha", 1)
	if err != nil {
		return err
	}
	beta, err := c.attrFloat("beta", 1)
	if err != nil {
		return err
	}
	ta, err := c.attrInt("transA", 0)
	if err != nil {
		return err
	}
	tb, err := c.attrInt("transB", 0)
	if err != nil {
		return err
	}
	if a.Value.Rank() != 2 || b.Value.Rank() != 2 {
		return c.errorf("Gemm takes matrices, got A %s and B %s", tensor.FormatShape(a.Value.Shape()), tensor.FormatShape(b.Value.Shape()))
	}
	name := c.outName(0)
	prod := name
	if alpha != 1 || c.has(2) {
		prod = name + "_ab"
	}
	y, err := ops.MatMul(prod, a, b, ta != 0, tb != 0)
	if err != nil {
		return c.errorf("%v", err)
	}
	if alpha != 1 {
		n := name
		if c.has(2) {
			n = name + "_alpha_ab"
		}
		if y, err = ops.Scale(n, y, alpha); err != nil {
			return c.errorf("%v", err)
		}
	}
	if c.has(2) {
		bias, err := c.float(2)
		if err != nil {
			return err
		}
		if beta != 1 {
			if bias, err = ops.Scale(name+"_beta_c", bias, beta); err != nil {
				return c.errorf("%v", err)
			}
		}
		ys, cs := y.Value.Shape(), bias.Value.Shape()
		if legacyBroadcast == 0 && !tensor.SameShape(ys, cs) {
			return c.errorf("C of shape %s is not A·B's %s and broadcast is 0", tensor.FormatShape(cs), tensor.FormatShape(ys))
		}
		switch {
		case len(cs) == 1 && cs[0] == ys[1] && ys[1] != 1:
			y, err = ops.BiasAdd(name, y, bias, 1)
		case tensor.SameShape(cs, ys):
			y, err = ops.Add(name, y, bias)
		default:
			if _, err := ops.BroadcastShape(ys, cs); err != nil || len(cs) > 2 {
				return c.errorf("C of shape %s does not broadcast to A·B's %s", tensor.FormatShape(cs), tensor.FormatShape(ys))
			}
			y, err = ops.Broadcast(name, ops.BinAdd, y, bias)
		}
		if err != nil {
			return c.errorf("%v", err)
		}
	}
	c.setOut(0, y)
	return nil
}

func (c *nodeCtx[T]) matmul() error {
	a, err := c.float(0)
	if err != nil {
		return err
	}
	b, err := c.float(1)
	if err != nil {
		return err
	}
	var y *autograd.Var[T]
	if a.Value.Rank() <= 2 && b.Value.Rank() <= 2 && a.Value.Rank() > 0 && b.Value.Rank() > 0 && !(a.Value.Rank() == 1 && b.Value.Rank() == 1) {
		y, err = ops.MatMul(c.outName(0), a, b, false, false)
	} else {
		y, err = ops.BatchMatMul(c.outName(0), a, b)
	}
	if err != nil {
		return c.errorf("%v", err)
	}
	c.setOut(0, y)
	return nil
}

// window is the geometry of a convolution or pooling node, per spatial
// axis: kernel, stride and the padding before and after.
type window struct {
	k, s, pb, pe []int
}

// windowAttrs reads kernel_shape, strides, pads, dilations and auto_pad
// for a node with the given spatial input sizes; kernel is the kernel's
// size when the weight gives it (nil for pooling).
func (c *nodeCtx[T]) windowAttrs(in, kernel []int) (*window, error) {
	n := len(in)
	w := &window{k: kernel, s: make([]int, n), pb: make([]int, n), pe: make([]int, n)}
	ks, ok, err := c.attrInts("kernel_shape")
	if err != nil {
		return nil, err
	}
	if ok {
		if len(ks) != n {
			return nil, c.errorf("kernel_shape %v has %d entries for %d spatial axes", ks, len(ks), n)
		}
		k := make([]int, n)
		for i, v := range ks {
			k[i] = int(v)
		}
		if kernel != nil && !slices.Equal(k, kernel) {
			return nil, c.errorf("kernel_shape %v differs from the weight's spatial shape %v", ks, kernel)
		}
		w.k = k
	} else if kernel == nil {
		return nil, c.errorf("attribute kernel_shape is required")
	}
	st, ok, err := c.attrInts("strides")
	if err != nil {
		return nil, err
	}
	for i := range n {
		w.s[i] = 1
		if ok {
			if len(st) != n {
				return nil, c.errorf("strides %v has %d entries for %d spatial axes", st, len(st), n)
			}
			w.s[i] = int(st[i])
		}
	}
	if d, ok, err := c.attrInts("dilations"); err != nil {
		return nil, err
	} else if ok {
		for _, v := range d {
			if v != 1 {
				return nil, c.unsupported("dilations", fmt.Sprintf("dilations %v; backprop's convolutions and pooling have dilation 1", d))
			}
		}
	}
	p, ok, err := c.attrInts("pads")
	if err != nil {
		return nil, err
	}
	if ok {
		if len(p) != 2*n {
			return nil, c.errorf("pads %v has %d entries, want %d (begin and end of each spatial axis)", p, len(p), 2*n)
		}
		for i := range n {
			w.pb[i], w.pe[i] = int(p[i]), int(p[n+i])
			if w.pb[i] < 0 || w.pe[i] < 0 {
				return nil, c.unsupported("pads", fmt.Sprintf("negative pads %v", p))
			}
		}
	}
	auto, err := c.attrString("auto_pad", "NOTSET")
	if err != nil {
		return nil, err
	}
	switch auto {
	case "NOTSET", "":
	case "VALID":
		clear(w.pb)
		clear(w.pe)
	case "SAME_UPPER", "SAME_LOWER":
		if c.op == "ConvTranspose" {
			break // handled with the output size
		}
		for i := range n {
			out := (in[i] + w.s[i] - 1) / w.s[i]
			total := max((out-1)*w.s[i]+w.k[i]-in[i], 0)
			w.pb[i], w.pe[i] = total/2, total-total/2
			if auto == "SAME_LOWER" {
				w.pb[i], w.pe[i] = w.pe[i], w.pb[i]
			}
		}
	default:
		return nil, c.errorf("auto_pad %q is not one of NOTSET, SAME_UPPER, SAME_LOWER, VALID", auto)
	}
	return w, nil
}

// symmetric reports whether every axis is padded alike at both ends.
func (w *window) symmetric() bool { return slices.Equal(w.pb, w.pe) }

// lift views a (N, C, L) input as (N, C, 1, L), so that a 1-D node runs
// on the engine's 2-D layers; geometry gets the extra axis too.
func lift[T tensor.Float](name string, x *autograd.Var[T]) (*autograd.Var[T], error) {
	s := x.Value.Shape()
	return ops.Reshape(name, x, false, s[0], s[1], 1, s[2])
}

func (w *window) lift() {
	w.k, w.s = append([]int{1}, w.k...), append([]int{1}, w.s...)
	w.pb, w.pe = append([]int{0}, w.pb...), append([]int{0}, w.pe...)
}

// spatialRank checks that x is (N, C, L) or (N, C, H, W).
func (c *nodeCtx[T]) spatialRank(x *autograd.Var[T]) (int, error) {
	r := x.Value.Rank()
	if r != 3 && r != 4 {
		return 0, c.unsupported(fmt.Sprintf("input 0 (%q)", c.n.GetInput()[0]),
			fmt.Sprintf("%d spatial axes (input shape %s); backprop's %s is 1-D or 2-D", r-2, tensor.FormatShape(x.Value.Shape()), c.op))
	}
	return r - 2, nil
}

// padExplicit pads x's spatial axes (the last two) with value as the
// window says and clears the window's padding.
func padExplicit[T tensor.Float](name string, x *autograd.Var[T], w *window, value float64) (*autograd.Var[T], error) {
	r := x.Value.Rank()
	before, after := make([]int, r), make([]int, r)
	copy(before[r-len(w.pb):], w.pb)
	copy(after[r-len(w.pe):], w.pe)
	clear(w.pb)
	clear(w.pe)
	return ops.Pad(name, x, before, after, value)
}

func (c *nodeCtx[T]) conv(transposed bool) error {
	x, err := c.float(0)
	if err != nil {
		return err
	}
	wt, err := c.float(1)
	if err != nil {
		return err
	}
	sr, err := c.spatialRank(x)
	if err != nil {
		return err
	}
	ws := wt.Value.Shape()
	if len(ws) != sr+2 {
		return c.errorf("weight of shape %s for an input of shape %s", tensor.FormatShape(ws), tensor.FormatShape(x.Value.Shape()))
	}
	if g, err := c.attrInt("group", 1); err != nil {
		return err
	} else if g != 1 {
		return c.unsupported("group", fmt.Sprintf("group %d; backprop's convolutions are not grouped (group 1)", g))
	}
	xs := x.Value.Shape()
	w, err := c.windowAttrs(xs[2:], slices.Clone(ws[2:]))
	if err != nil {
		return err
	}
	name := c.outName(0)
	outPad := make([]int, sr)
	crop := false
	var cropB, cropA []int
	if transposed {
		op, ok, err := c.attrInts("output_padding")
		if err != nil {
			return err
		}
		if ok {
			if len(op) != sr {
				return c.errorf("output_padding %v has %d entries for %d spatial axes", op, len(op), sr)
			}
			for i, v := range op {
				outPad[i] = int(v)
			}
		}
		auto, _ := c.attrString("auto_pad", "NOTSET")
		oshape, hasShape, err := c.attrInts("output_shape")
		if err != nil {
			return err
		}
		if hasShape && len(oshape) != sr {
			if len(oshape) == sr+2 {
				oshape = oshape[2:]
			} else {
				return c.errorf("output_shape %v has %d entries for %d spatial axes", oshape, len(oshape), sr)
			}
		}
		if hasShape || auto == "SAME_UPPER" || auto == "SAME_LOWER" {
			for i := range sr {
				full := w.s[i]*(xs[2+i]-1) + outPad[i] + w.k[i]
				want := xs[2+i] * w.s[i]
				if hasShape {
					want = int(oshape[i])
				}
				total := full - want
				if auto == "SAME_UPPER" {
					w.pb[i], w.pe[i] = total/2, total-total/2
				} else {
					w.pb[i], w.pe[i] = total-total/2, total/2
				}
				if total < 0 {
					w.pb[i], w.pe[i] = 0, total
				}
			}
		}
		// the engine crops p from both ends and adds the output padding
		// (less than the stride) at the end; other pads run the full
		// transposed convolution and crop or pad its result
		for i := range sr {
			extra := outPad[i] + w.pb[i] - w.pe[i]
			if extra < 0 || extra >= w.s[i] && extra > 0 {
				crop = true
			}
		}
		if crop {
			cropB, cropA = make([]int, sr), make([]int, sr)
			for i := range sr {
				cropB[i], cropA[i] = -w.pb[i], outPad[i]-w.pe[i]
			}
			clear(w.pb)
			clear(w.pe)
			clear(outPad)
		} else {
			for i := range sr {
				outPad[i] += w.pb[i] - w.pe[i]
				w.pe[i] = w.pb[i]
			}
		}
	} else if !w.symmetric() {
		if x, err = padExplicit(name+"_padded", x, w, 0); err != nil {
			return c.errorf("%v", err)
		}
	}
	if sr == 1 {
		if x, err = lift(name+"_2d_input", x); err != nil {
			return c.errorf("%v", err)
		}
		if wt, err = ops.Reshape(name+"_2d_weight", wt, false, ws[0], ws[1], 1, ws[2]); err != nil {
			return c.errorf("%v", err)
		}
		w.lift()
		outPad = append([]int{0}, outPad...)
		if crop {
			cropB, cropA = append([]int{0}, cropB...), append([]int{0}, cropA...)
		}
	}
	opt := ops.ConvOptions{StrideH: w.s[0], StrideW: w.s[1], PadH: w.pb[0], PadW: w.pb[1]}
	if transposed {
		opt.OutPadH, opt.OutPadW = outPad[0], outPad[1]
	}
	conv := name
	if c.has(2) || sr == 1 || crop {
		conv = name + "_conv"
	}
	var y *autograd.Var[T]
	if transposed {
		y, err = ops.ConvTranspose2d(conv, x, wt, opt)
	} else {
		y, err = ops.Conv2d(conv, x, wt, opt)
	}
	if err != nil {
		return c.errorf("%v", err)
	}
	if crop {
		n := name
		if c.has(2) || sr == 1 {
			n = name + "_cropped"
		}
		if y, err = ops.Pad(n, y, append([]int{0, 0}, cropB...), append([]int{0, 0}, cropA...), 0); err != nil {
			return c.errorf("%v", err)
		}
	}
	if c.has(2) {
		b, err := c.float(2)
		if err != nil {
			return err
		}
		n := name
		if sr == 1 {
			n = name + "_biased"
		}
		if y, err = ops.BiasAdd(n, y, b, 1); err != nil {
			return c.errorf("%v", err)
		}
	}
	if sr == 1 {
		s := y.Value.Shape()
		if y, err = ops.Reshape(name, y, false, s[0], s[1], s[3]); err != nil {
			return c.errorf("%v", err)
		}
	}
	c.setOut(0, y)
	return nil
}

func (c *nodeCtx[T]) pool(isMax bool) error {
	x, err := c.float(0)
	if err != nil {
		return err
	}
	sr, err := c.spatialRank(x)
	if err != nil {
		return err
	}
	xs := x.Value.Shape()
	w, err := c.windowAttrs(xs[2:], nil)
	if err != nil {
		return err
	}
	ceil, err := c.attrInt("ceil_mode", 0)
	if err != nil {
		return err
	}
	includePad := false
	if isMax {
		if _, err := c.attrInt("storage_order", 0); err != nil {
			return err
		}
		if len(c.n.GetOutput()) > 1 && c.n.GetOutput()[1] != "" {
			return c.unsupported("output 1 (Indices)", "MaxPool's indices output")
		}
	} else {
		cip, err := c.attrInt("count_include_pad", 0)
		if err != nil {
			return err
		}
		includePad = cip != 0
	}
	name := c.outName(0)
	// ceil_mode adds a last window that starts inside the input (or its
	// begin padding) and overhangs the end by over elements
	over := make([]int, sr)
	direct := w.symmetric()
	for i := range sr {
		if ceil != 0 {
			span := xs[2+i] + w.pb[i] + w.pe[i] - w.k[i]
			out := (span+w.s[i]-1)/w.s[i] + 1
			if (out-1)*w.s[i] >= xs[2+i]+w.pb[i] {
				out--
			}
			over[i] = max((out-1)*w.s[i]+w.k[i]-(xs[2+i]+w.pb[i]+w.pe[i]), 0)
		}
		direct = direct && over[i] == 0 && 2*w.pb[i] <= w.k[i]
	}
	spatial := func(v []int) (before []int) { return append(make([]int, x.Value.Rank()-sr), v...) }
	var den *autograd.Var[T]
	if !direct {
		// pad explicitly, then pool without padding: max pooling pads with
		// −Inf; average pooling sums zero-padded windows and divides by
		// the number of elements each window counts (the input's, and the
		// padding's when count_include_pad is 1, never the overhang)
		after := make([]int, sr)
		for i := range sr {
			after[i] = w.pe[i] + over[i]
		}
		v := 0.0
		if isMax {
			v = math.Inf(-1)
		}
		if x, err = ops.Pad(name+"_padded", x, spatial(w.pb), spatial(after), v); err != nil {
			return c.errorf("%v", err)
		}
		if !isMax {
			ones := tensor.New[T](append([]int{1, 1}, xs[2:]...)...)
			ones.Fill(1)
			pv := 0.0
			if includePad {
				pv = 1
			}
			m, err := ops.Pad(name+"_count", autograd.Leaf(name+"_ones", ones, false), spatial(w.pb), spatial(w.pe), pv)
			if err == nil {
				m, err = ops.Pad(name+"_count", m, spatial(make([]int, sr)), spatial(over), 0)
			}
			if err != nil {
				return c.errorf("%v", err)
			}
			den = m
		}
		clear(w.pb)
		clear(w.pe)
	}
	if sr == 1 {
		if x, err = lift(name+"_2d_input", x); err != nil {
			return c.errorf("%v", err)
		}
		if den != nil {
			if den, err = lift(name+"_count_2d", den); err != nil {
				return c.errorf("%v", err)
			}
		}
		w.lift()
	}
	opt := ops.PoolOptions{KernelH: w.k[0], KernelW: w.k[1], StrideH: w.s[0], StrideW: w.s[1], PadH: w.pb[0], PadW: w.pb[1], ExcludePad: !includePad}
	pn := name
	if sr == 1 || den != nil {
		pn = name + "_pool"
	}
	var y *autograd.Var[T]
	if isMax {
		y, err = ops.MaxPool2d(pn, x, opt)
	} else {
		y, err = ops.AvgPool2d(pn, x, opt)
	}
	if err != nil {
		return c.errorf("%v", err)
	}
	if den != nil {
		// the average over k elements times k over the count
		d, err := ops.AvgPool2d(name+"_counted", den, opt)
		if err != nil {
			return c.errorf("%v", err)
		}
		d = autograd.Leaf(d.Name, d.Value, false)
		n := name
		if sr == 1 {
			n = name + "_divided"
		}
		if y, err = ops.Broadcast(n, ops.BinDiv, y, d); err != nil {
			return c.errorf("%v", err)
		}
	}
	if sr == 1 {
		s := y.Value.Shape()
		if y, err = ops.Reshape(name, y, false, s[0], s[1], s[3]); err != nil {
			return c.errorf("%v", err)
		}
	}
	c.setOut(0, y)
	return nil
}

func (c *nodeCtx[T]) batchNorm() error {
	if sp, err := c.attrInt("spatial", 1); err != nil {
		return err
	} else if sp != 1 {
		return c.unsupported("spatial", "spatial 0 (statistics per element rather than per channel)")
	}
	if c.b.opset < 7 {
		if t, err := c.attrInt("is_test", 0); err != nil {
			return err
		} else if t == 0 {
			return c.unsupported("is_test", "is_test 0 (training mode); backprop imports batch normalization in inference mode")
		}
	}
	if tm, err := c.attrInt("training_mode", 0); err != nil {
		return err
	} else if tm != 0 {
		return c.unsupported("training_mode", "training_mode 1; backprop imports batch normalization in inference mode")
	}
	if _, err := c.attrFloat("momentum", 0.9); err != nil {
		return err
	}
	eps, err := c.attrFloat("epsilon", 1e-5)
	if err != nil {
		return err
	}
	for i := 1; i < len(c.n.GetOutput()); i++ {
		if c.n.GetOutput()[i] != "" {
			return c.unsupported(fmt.Sprintf("output %d (%q)", i, c.n.GetOutput()[i]), "running statistics outputs (training mode)")
		}
	}
	var in [5]*autograd.Var[T]
	for i := range in {
		if in[i], err = c.float(i); err != nil {
			return err
		}
	}
	if in[0].Value.Rank() < 2 {
		return c.errorf("input of shape %s has no channel axis", tensor.FormatShape(in[0].Value.Shape()))
	}
	y, err := ops.BatchNorm(c.outName(0), in[0], in[1], in[2], ops.BatchNormOptions[T]{Eps: eps, RunningMean: in[3].Value, RunningVar: in[4].Value})
	if err != nil {
		return c.errorf("%v", err)
	}
	c.setOut(0, y)
	return nil
}

func (c *nodeCtx[T]) dropout() error {
	x, err := c.float(0)
	if err != nil {
		return err
	}
	ratio, training := 0.5, false
	if c.b.opset < 12 {
		if ratio, err = c.attrFloat("ratio", 0.5); err != nil {
			return err
		}
		if c.b.opset < 7 {
			t, err := c.attrInt("is_test", 0)
			if err != nil {
				return err
			}
			training = t == 0
		}
	} else {
		if _, err := c.attrInt("seed", 0); err != nil {
			return err
		}
		if c.has(1) {
			r, err := c.float(1)
			if err != nil {
				return err
			}
			if r.Value.Len() != 1 {
				return c.errorf("ratio must be a scalar, got shape %s", tensor.FormatShape(r.Value.Shape()))
			}
			ratio = float64(r.Value.Data()[0])
		}
		if c.has(2) {
			t, err := c.static(2)
			if err != nil {
				return err
			}
			training = len(t.Ints) == 1 && t.Ints[0] != 0
		}
	}
	if training && ratio != 0 {
		return c.unsupported("training_mode", fmt.Sprintf("training_mode true with ratio %g: random dropout; backprop imports dropout in inference mode", ratio))
	}
	c.setOut(0, x)
	if len(c.n.GetOutput()) > 1 && c.n.GetOutput()[1] != "" {
		shape := slices.Clone(x.Value.Shape())
		if c.b.opset < 10 {
			ones := tensor.New[T](shape...)
			ones.Fill(1)
			c.setOut(1, autograd.Leaf(c.n.GetOutput()[1], ones, false))
		} else {
			mask := &Tensor{Name: c.n.GetOutput()[1], Type: Bool, Shape: shape, Ints: make([]int64, tensor.NumElements(shape))}
			for i := range mask.Ints {
				mask.Ints[i] = 1
			}
			c.setStatic(1, mask)
		}
	}
	return nil
}

func (c *nodeCtx[T]) flatten() error {
	x, err := c.float(0)
	if err != nil {
		return err
	}
	a, err := c.attrInt("axis", 1)
	if err != nil {
		return err
	}
	xs := x.Value.Shape()
	axis := int(a)
	if axis < 0 {
		axis += len(xs)
	}
	if axis < 0 || axis > len(xs) {
		return c.errorf("axis %d is outside [-%d, %d] for an input of shape %s", a, len(xs), len(xs), tensor.FormatShape(xs))
	}
	y, err := ops.Reshape(c.outName(0), x, false, tensor.NumElements(xs[:axis]), tensor.NumElements(xs[axis:]))
	if err != nil {
		return c.errorf("%v", err)
	}
	c.setOut(0, y)
	return nil
}

func (c *nodeCtx[T]) reshape() error {
	x, err := c.float(0)
	if err != nil {
		return err
	}
	var st *Tensor
	if c.b.opset < 5 {
		sh, ok, err := c.attrInts("shape")
		if err != nil {
			return err
		}
		if !ok {
			return c.errorf("attribute shape is required")
		}
		st = &Tensor{Type: Int64, Shape: []int{len(sh)}, Ints: sh}
	} else if st, err = c.static(1); err != nil {
		return err
	}
	allowZero := int64(0)
	if c.b.opset >= 14 {
		if allowZero, err = c.attrInt("allowzero", 0); err != nil {
			return err
		}
	}
	xs := x.Value.Shape()
	shape := make([]int, len(st.Ints))
	infer := -1
	for i, d := range st.Ints {
		switch {
		case d == 0 && allowZero == 0:
			if i >= len(xs) {
				return c.errorf("shape %v copies axis %d (a 0) from an input of only %d axes", st.Ints, i, len(xs))
			}
			shape[i] = xs[i]
		case d == -1:
			if infer >= 0 {
				return c.errorf("shape %v has more than one -1", st.Ints)
			}
			infer = i
		case d < 0:
			return c.errorf("shape %v has a negative entry other than -1", st.Ints)
		default:
			shape[i] = int(d)
		}
	}
	if infer >= 0 {
		rest := 1
		for i, d := range shape {
			if i != infer {
				rest *= d
			}
		}
		if rest == 0 || x.Value.Len()%rest != 0 {
			return c.errorf("cannot infer the -1 of shape %v for %d elements", st.Ints, x.Value.Len())
		}
		shape[infer] = x.Value.Len() / rest
	}
	if tensor.NumElements(shape) != x.Value.Len() {
		return c.errorf("shape %v holds %d elements, the input %s has %d", st.Ints, tensor.NumElements(shape), tensor.FormatShape(xs), x.Value.Len())
	}
	y, err := ops.Reshape(c.outName(0), x, false, shape...)
	if err != nil {
		return c.errorf("%v", err)
	}
	c.setOut(0, y)
	return nil
}

func (c *nodeCtx[T]) transpose() error {
	x, err := c.float(0)
	if err != nil {
		return err
	}
	p, ok, err := c.attrInts("perm")
	if err != nil {
		return err
	}
	var perm []int
	if ok {
		for _, v := range p {
			perm = append(perm, int(v))
		}
	}
	y, err := ops.Transpose(c.outName(0), x, perm)
	if err != nil {
		return c.errorf("%v", err)
	}
	c.setOut(0, y)
	return nil
}

func (c *nodeCtx[T]) concat() error {
	def := int64(math.MinInt64)
	if c.b.opset < 4 {
		def = 1
	}
	a, err := c.attrInt("axis", def)
	if err != nil {
		return err
	}
	if a == math.MinInt64 {
		return c.errorf("attribute axis is required")
	}
	var xs []*autograd.Var[T]
	for i := range c.nIn() {
		x, err := c.float(i)
		if err != nil {
			return err
		}
		xs = append(xs, x)
	}
	if len(xs) == 0 {
		return c.errorf("no inputs")
	}
	axis, err := c.normAxis("axis", a, xs[0].Value.Rank())
	if err != nil {
		return err
	}
	y, err := ops.Concat(c.outName(0), axis, xs...)
	if err != nil {
		return c.errorf("%v", err)
	}
	c.setOut(0, y)
	return nil
}

func (c *nodeCtx[T]) pad() error {
	x, err := c.float(0)
	if err != nil {
		return err
	}
	mode, err := c.attrString("mode", "constant")
	if err != nil {
		return err
	}
	if mode != "constant" {
		return c.unsupported("mode", fmt.Sprintf("mode %q; backprop pads with a constant", mode))
	}
	var pads []int64
	value := 0.0
	if c.b.opset < 11 {
		p, ok, err := c.attrInts("pads")
		if err != nil {
			return err
		}
		if !ok {
			return c.errorf("attribute pads is required")
		}
		pads = p
		if value, err = c.attrFloat("value", 0); err != nil {
			return err
		}
	} else {
		p, err := c.static(1)
		if err != nil {
			return err
		}
		pads = p.Ints
		if c.has(2) {
			v, err := c.float(2)
			if err != nil {
				return err
			}
			if v.Value.Len() != 1 {
				return c.errorf("constant_value must be one number, got shape %s", tensor.FormatShape(v.Value.Shape()))
			}
			value = float64(v.Value.Data()[0])
		}
		if c.has(3) {
			return c.unsupported("input 3 (axes)", "padding only some axes (opset 18's axes input)")
		}
	}
	r := x.Value.Rank()
	if len(pads) != 2*r {
		return c.errorf("pads %v has %d entries for an input of %d axes (want begin and end of each)", pads, len(pads), r)
	}
	before, after := make([]int, r), make([]int, r)
	for i := range r {
		before[i], after[i] = int(pads[i]), int(pads[r+i])
	}
	y, err := ops.Pad(c.outName(0), x, before, after, value)
	if err != nil {
		return c.errorf("%v", err)
	}
	c.setOut(0, y)
	return nil
}

// gather imports Gather of rows: axis 0 of a floating-point matrix, with
// a vector of integer indices (negative ones count from the end), as a
// class or token id input gives them. It is the engine's embedding lookup,
// whose gradient adds each output row's into the row it was read from.
func (c *nodeCtx[T]) gather() error {
	data, err := c.float(0)
	if err != nil {
		return err
	}
	idx, err := c.static(1)
	if err != nil {
		return err
	}
	a, err := c.attrInt("axis", 0)
	if err != nil {
		return err
	}
	rank := data.Value.Rank()
	axis, err := c.normAxis("axis", a, rank)
	if err != nil {
		return err
	}
	switch {
	case axis != 0:
		return c.unsupported("axis", fmt.Sprintf("axis %d; backprop gathers along the first axis", a))
	case rank != 2:
		return c.unsupported(fmt.Sprintf("input 0 (%q)", c.n.GetInput()[0]), fmt.Sprintf("data of rank %d; backprop gathers rows of a matrix", rank))
	case len(idx.Shape) != 1:
		return c.unsupported(fmt.Sprintf("input 1 (%q)", c.n.GetInput()[1]), fmt.Sprintf("indices of rank %d; backprop gathers with a vector of indices", len(idx.Shape)))
	}
	rows := int64(data.Value.Dim(0))
	ids := make([]int, len(idx.Ints))
	for i, k := range idx.Ints {
		if k < -rows || k >= rows {
			return c.errorf("index %d (position %d) is outside the %d rows of input %q", k, i, rows, c.n.GetInput()[0])
		}
		if k < 0 {
			k += rows
		}
		ids[i] = int(k)
	}
	y, err := ops.Embedding(c.outName(0), data, ids)
	if err != nil {
		return c.errorf("%v", err)
	}
	c.setOut(0, y)
	return nil
}
