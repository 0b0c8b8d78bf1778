package onnx

import (
	"fmt"
	"slices"

	"github.com/backprop-dev/backprop/autograd"
	"github.com/backprop-dev/backprop/onnx/internal/onnxpb"
	"github.com/backprop-dev/backprop/tensor"
)

// Value is a value of an imported graph: a floating-point node of the
// engine's graph (Var), or an integer or boolean tensor (Static) such as a
// Reshape's target shape or Dropout's mask, which the engine does not
// differentiate.
type Value[T tensor.Float] struct {
	Name   string
	Var    *autograd.Var[T]
	Static *Tensor
}

// Graph is a model imported onto the engine for one set of inputs: the
// forward pass has run, and autograd.Backward from any scalar built on the
// outputs fills the gradients of the parameters.
type Graph[T tensor.Float] struct {
	Model *Model
	// Inputs are the graph inputs the caller supplied, in the model's order.
	Inputs []Value[T]
	// Params are the floating-point initializers, in file order: leaves
	// that require gradients, named as in the file.
	Params []*autograd.Var[T]
	// Outputs are the graph outputs, in the model's order.
	Outputs []Value[T]
	// Nodes counts, per operator type, the nodes imported.
	Nodes map[string]int
}

// Options adjust Import.
type Options struct {
	// InputsRequireGrad makes the floating-point inputs leaves that
	// require gradients (a worked problem asking for ∂J/∂x), not only the
	// initializers.
	InputsRequireGrad bool
}

// Import builds the model's graph on the engine's ops with the given
// inputs, one per entry of m.Inputs() in that order (a nil entry for an
// optional input left out), and runs its forward pass. Floating-point
// values are computed in T whatever their type in the file. A node the
// engine cannot compute exactly as ONNX specifies is an *UnsupportedError.
func Import[T tensor.Float](m *Model, inputs []*Tensor, opt Options) (*Graph[T], error) {
	if err := m.Supported(); err != nil {
		return nil, err
	}
	g := &Graph[T]{Model: m, Nodes: map[string]int{}}
	b := &builder[T]{opset: m.Opset, values: map[string]*Value[T]{}}
	inits, err := m.Initializers()
	if err != nil {
		return nil, err
	}
	for _, t := range inits {
		v, err := b.leaf(t, true)
		if err != nil {
			return nil, fmt.Errorf("initializer %q: %w", t.Name, err)
		}
		if v.Var != nil {
			g.Params = append(g.Params, v.Var)
		}
	}
	want := m.Inputs()
	if len(inputs) != len(want) {
		return nil, fmt.Errorf("the model takes %d inputs (%s), got %d", len(want), inputNames(want), len(inputs))
	}
	for i, vi := range want {
		t := inputs[i]
		if t == nil {
			continue
		}
		if err := checkInput(vi, t); err != nil {
			return nil, err
		}
		c := *t
		c.Name = vi.Name
		v, err := b.leaf(&c, opt.InputsRequireGrad)
		if err != nil {
			return nil, fmt.Errorf("input %q: %w", vi.Name, err)
		}
		g.Inputs = append(g.Inputs, *v)
	}
	for _, n := range m.pb.GetGraph().GetNode() {
		if err := b.node(n); err != nil {
			return nil, err
		}
		g.Nodes[n.GetOpType()]++
	}
	for _, o := range m.Outputs() {
		v, ok := b.values[o.Name]
		if !ok {
			return nil, fmt.Errorf("graph output %q is not produced by any node", o.Name)
		}
		out := *v
		out.Name = o.Name
		g.Outputs = append(g.Outputs, out)
	}
	return g, nil
}

func inputNames(vs []ValueInfo) string {
	var s []string
	for _, v := range vs {
		s = append(s, fmt.Sprintf("%q", v.Name))
	}
	if len(s) == 0 {
		return "none"
	}
	return fmt.Sprint(s)
}

// checkInput compares a supplied tensor with the graph input's declared
// type and fixed dimensions.
func checkInput(vi ValueInfo, t *Tensor) error {
	if vi.Type != Undefined && vi.Type != t.Type && !(vi.Type.IsFloat() && t.Type.IsFloat()) {
		return fmt.Errorf("input %q: the model wants element type %s, got %s", vi.Name, vi.Type, t.Type)
	}
	if vi.Shape != nil {
		ok := len(vi.Shape) == len(t.Shape)
		for i := 0; ok && i < len(vi.Shape); i++ {
			ok = vi.Shape[i] < 0 || vi.Shape[i] == t.Shape[i]
		}
		if !ok {
			return fmt.Errorf("input %q: the model wants shape %s, got %s", vi.Name, formatDims(vi.Shape), tensor.FormatShape(t.Shape))
		}
	}
	return nil
}

// formatDims writes a shape with "?" for unknown dimensions.
func formatDims(s []int) string {
	out := "("
	for i, d := range s {
		if i > 0 {
			out += ", "
		}
		if d < 0 {
			out += "?"
		} else {
			out += fmt.Sprint(d)
		}
	}
	if len(s) == 1 {
		out += ","
	}
	return out + ")"
}

// builder holds the values computed so far while the nodes are imported.
type builder[T tensor.Float] struct {
	opset  int64
	values map[string]*Value[T]
}

// leaf makes a value from a tensor: a leaf Var for floating-point data, a
// static tensor for integers and booleans.
func (b *builder[T]) leaf(t *Tensor, grad bool) (*Value[T], error) {
	v := &Value[T]{Name: t.Name}
	switch {
	case t.Type.IsFloat():
		x, err := ToTensor[T](t)
		if err != nil {
			return nil, err
		}
		v.Var = autograd.Leaf(t.Name, x, grad)
	case t.Type.isInteger():
		v.Static = t
	default:
		return nil, fmt.Errorf("element type %s is not supported (FLOAT, DOUBLE, integers and booleans are)", t.Type)
	}
	b.values[t.Name] = v
	return v, nil
}

// nodeName is a node's name, or its first output's when it has none.
func nodeName(n *onnxpb.NodeProto) string {
	if n.GetName() != "" {
		return n.GetName()
	}
	if len(n.GetOutput()) > 0 {
		return n.GetOutput()[0]
	}
	return n.GetOpType()
}

// node imports one node.
func (b *builder[T]) node(n *onnxpb.NodeProto) error {
	c := &nodeCtx[T]{b: b, n: n, name: nodeName(n), op: n.GetOpType(), attrs: map[string]*onnxpb.AttributeProto{}, used: map[string]bool{}}
	if d := n.GetDomain(); d != "" && d != "ai.onnx" {
		return c.unsupported("", fmt.Sprintf("operator domain %q; backprop implements operators of the default domain only", d))
	}
	for _, a := range n.GetAttribute() {
		if a.GetRefAttrName() != "" {
			return c.unsupported(a.GetName(), "attribute references (inside functions)")
		}
		c.attrs[a.GetName()] = a
	}
	conv, ok := converters[c.op]
	if !ok {
		return c.unsupported("", "operator not implemented; supported: "+fmt.Sprint(SupportedOperators()))
	}
	if b.opset < int64(conv.since) {
		return c.unsupported("opset", fmt.Sprintf("operator set %d; backprop implements %s from opset %d", b.opset, c.op, conv.since))
	}
	// consumed_inputs, an optimization hint of opset 1, changes nothing
	if b.opset < 6 {
		c.used["consumed_inputs"] = true
	}
	if err := convert(c); err != nil {
		return err
	}
	for name := range c.attrs {
		if !c.used[name] {
			return c.unsupported(name, "attribute not implemented for "+c.op)
		}
	}
	for i, o := range n.GetOutput() {
		if o != "" && i < len(c.outs) && c.outs[i] == nil || o != "" && i >= len(c.outs) {
			return c.unsupported(fmt.Sprintf("output %d (%q)", i, o), "this output is not computed by backprop")
		}
	}
	for i, o := range n.GetOutput() {
		if o == "" {
			continue
		}
		v := *c.outs[i]
		v.Name = o
		if v.Var != nil && v.Var.Name == "" {
			v.Var.Name = o
		}
		b.values[o] = &v
	}
	return nil
}

// converter describes how one operator is imported: the first opset whose
// definition backprop implements.
type converter struct {
	since int
}

// converters lists the supported operators (convert has their code).
var converters = map[string]converter{
	"Add": {1}, "Sub": {1}, "Mul": {1}, "Div": {1},
	"Gemm": {1}, "MatMul": {1},
	"Relu": {1}, "LeakyRelu": {1}, "Sigmoid": {1}, "Tanh": {1}, "Exp": {1}, "Log": {1},
	"Softmax": {1}, "LogSoftmax": {1},
	"Conv": {1}, "ConvTranspose": {1}, "MaxPool": {1}, "AveragePool": {1},
	"BatchNormalization": {6}, "Dropout": {6},
	"Flatten": {1}, "Reshape": {1}, "Transpose": {1}, "Concat": {1},
	"Identity": {1}, "Constant": {1}, "Pad": {2}, "Gather": {1},
}

// OperatorSince is the first version of the default operator set whose
// definition of op Import implements, or 0 when it does not implement op.
func OperatorSince(op string) int { return converters[op].since }

// SupportedOperators lists the ONNX operators Import implements, sorted.
func SupportedOperators() []string {
	var out []string
	for k := range converters {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// nodeCtx is one node being imported: its inputs, attributes and outputs.
type nodeCtx[T tensor.Float] struct {
	b     *builder[T]
	n     *onnxpb.NodeProto
	name  string
	op    string
	attrs map[string]*onnxpb.AttributeProto
	used  map[string]bool
	outs  []*Value[T]
}

func (c *nodeCtx[T]) unsupported(attr, detail string) error {
	return &UnsupportedError{Node: c.name, Op: c.op, Attribute: attr, Detail: detail}
}

// errorf is an error in the model (not a missing feature) naming the node.
func (c *nodeCtx[T]) errorf(format string, a ...any) error {
	return fmt.Errorf("node %q (%s): %s", c.name, c.op, fmt.Sprintf(format, a...))
}

// nIn is the number of inputs the node lists.
func (c *nodeCtx[T]) nIn() int { return len(c.n.GetInput()) }

// has reports whether optional input i is given.
func (c *nodeCtx[T]) has(i int) bool { return i < c.nIn() && c.n.GetInput()[i] != "" }

// value is input i, which must be given.
func (c *nodeCtx[T]) value(i int) (*Value[T], error) {
	if !c.has(i) {
		return nil, c.errorf("input %d is missing", i)
	}
	name := c.n.GetInput()[i]
	v, ok := c.b.values[name]
	if !ok {
		return nil, c.errorf("input %q is neither a graph input, an initializer nor the output of an earlier node", name)
	}
	return v, nil
}

// float is input i as a floating-point node.
func (c *nodeCtx[T]) float(i int) (*autograd.Var[T], error) {
	v, err := c.value(i)
	if err != nil {
		return nil, err
	}
	if v.Var == nil {
		return nil, c.unsupported(fmt.Sprintf("input %d (%q)", i, c.n.GetInput()[i]),
			fmt.Sprintf("element type %s; backprop computes %s in FLOAT or DOUBLE", v.Static.Type, c.op))
	}
	return v.Var, nil
}

// static is input i as an integer tensor known while importing (a shape,
// axes).
func (c *nodeCtx[T]) static(i int) (*Tensor, error) {
	v, err := c.value(i)
	if err != nil {
		return nil, err
	}
	if v.Static == nil {
		return nil, c.errorf("input %d (%q) must be an integer tensor, got a floating-point one", i, c.n.GetInput()[i])
	}
	return v.Static, nil
}

// setOut records output i as a floating-point node.
func (c *nodeCtx[T]) setOut(i int, v *autograd.Var[T]) {
	for len(c.outs) <= i {
		c.outs = append(c.outs, nil)
	}
	c.outs[i] = &Value[T]{Var: v}
}

// setStatic records output i as an integer or boolean tensor.
func (c *nodeCtx[T]) setStatic(i int, t *Tensor) {
	for len(c.outs) <= i {
		c.outs = append(c.outs, nil)
	}
	c.outs[i] = &Value[T]{Static: t}
}

// outName is the name of output i, for the engine's node.
func (c *nodeCtx[T]) outName(i int) string {
	if i < len(c.n.GetOutput()) {
		return c.n.GetOutput()[i]
	}
	return ""
}

// attr returns attribute name of the wanted type, marking it used.
func (c *nodeCtx[T]) attr(name string, typ onnxpb.AttributeProto_AttributeType) (*onnxpb.AttributeProto, error) {
	a, ok := c.attrs[name]
	if !ok {
		return nil, nil
	}
	c.used[name] = true
	if a.GetType() != typ && a.GetType() != onnxpb.AttributeProto_UNDEFINED {
		return nil, c.errorf("attribute %s has type %s, want %s", name, a.GetType(), typ)
	}
	return a, nil
}

func (c *nodeCtx[T]) attrInt(name string, def int64) (int64, error) {
	a, err := c.attr(name, onnxpb.AttributeProto_INT)
	if a == nil || err != nil {
		return def, err
	}
	return a.GetI(), nil
}

func (c *nodeCtx[T]) attrFloat(name string, def float64) (float64, error) {
	a, err := c.attr(name, onnxpb.AttributeProto_FLOAT)
	if a == nil || err != nil {
		return def, err
	}
	return float64(a.GetF()), nil
}

func (c *nodeCtx[T]) attrInts(name string) ([]int64, bool, error) {
	a, err := c.attr(name, onnxpb.AttributeProto_INTS)
	if a == nil || err != nil {
		return nil, false, err
	}
	return a.GetInts(), true, nil
}

func (c *nodeCtx[T]) attrString(name, def string) (string, error) {
	a, err := c.attr(name, onnxpb.AttributeProto_STRING)
	if a == nil || err != nil {
		return def, err
	}
	return string(a.GetS()), nil
}
