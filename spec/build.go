package spec

import (
	"fmt"
	"strings"
	"unicode"

	"github.com/backprop-dev/backprop/autograd"
	"github.com/backprop-dev/backprop/ops"
	"github.com/backprop-dev/backprop/tensor"
)

// Model is a spec built on the engine: every node in creation order, the
// parameters, the outputs to report and the objective.
type Model[T tensor.Float] struct {
	Spec      *Spec
	Nodes     []*autograd.Var[T] // creation order: each node after its inputs
	Input     *autograd.Var[T]
	Params    []*autograd.Var[T] // in the order params lists them
	Outputs   []*autograd.Var[T] // the named values a solution reports, in order
	Objective *autograd.Var[T]   // the scalar gradients are taken of
	Maximize  bool               // the objective is maximized (log p) rather than minimized
	Name      map[string]*autograd.Var[T]
	// Group is the time step (1, 2, ...) of the values of a recurrent
	// layer, so that a worked solution can show each step as a group.
	Group map[string]int
}

type builder[T tensor.Float] struct {
	s     *Spec
	m     *Model[T]
	batch int // 0 for one sample; N for the batched form
}

// name is a node's name: as the spec gives it for one sample; capitalised
// for the batched form (x → X, u1 → U1), unless that collides.
func (b *builder[T]) name(n string) string {
	if b.batch == 0 || n == "" {
		return n
	}
	prefix := ""
	if strings.HasPrefix(n, "log_") && len(n) > 4 { // log_p → log_P
		prefix, n = "log_", n[4:]
	}
	r := []rune(n)
	up := prefix + string(unicode.ToUpper(r[0])) + string(r[1:])
	n = prefix + n
	if up == n || b.taken(up) {
		return n + "_N"
	}
	return up
}

func (b *builder[T]) taken(n string) bool { return named(b.s, n) }

// off is the number of leading batch axes (0 or 1): 1 in the batched
// form of a derivation, or when the spec's input is a batch itself.
func (b *builder[T]) off() int {
	if b.batch > 0 || b.s.Batched() {
		return 1
	}
	return 0
}

func (b *builder[T]) add(v *autograd.Var[T], err error) (*autograd.Var[T], error) {
	if err != nil {
		return nil, err
	}
	b.m.Nodes = append(b.m.Nodes, v)
	if v.Name != "" {
		b.m.Name[v.Name] = v
	}
	return v, nil
}

// Build makes the spec's graph in element type T and runs it forward. The
// objective's gradient is not taken here: call autograd.Backward on
// Model.Objective.
func Build[T tensor.Float](s *Spec) (*Model[T], error) { return build[T](s, 0) }

// BuildBatched makes the spec's graph for a batch of n samples (the input
// repeated n times): layer outputs gain a leading batch axis, names are
// capitalised (X, H, U1), and a per-sample objective is summed over the
// batch. It is the graph behind the batched matrix form of derived
// equations.
func BuildBatched[T tensor.Float](s *Spec, n int) (*Model[T], error) {
	if n < 1 {
		return nil, fmt.Errorf("spec: batch size %d, want at least 1", n)
	}
	return build[T](s, n)
}

func build[T tensor.Float](s *Spec, batch int) (*Model[T], error) {
	m := &Model[T]{Spec: s, Name: map[string]*autograd.Var[T]{}, Group: map[string]int{}}
	b := &builder[T]{s: s, m: m, batch: batch}
	params := map[string]*autograd.Var[T]{}
	for _, name := range s.ParamOrder {
		v := autograd.Leaf(name, tensor.Convert[T](s.Params[name].Tensor), true)
		params[name] = v
		m.Params = append(m.Params, v)
		b.add(v, nil)
	}
	if batch > 0 && s.Batched() {
		return nil, &Error{File: s.file, Field: "input.batch", Msg: "the spec's input is already a batch; the batched form needs a single sample"}
	}
	for _, in := range s.Inputs {
		if in.Kind == "labels" {
			continue // class indices stay integers, outside the graph
		}
		t := tensor.Convert[T](in.tensor)
		if batch > 0 {
			rep := tensor.New[T](append([]int{batch}, t.Shape()...)...)
			for i := range batch {
				copy(rep.Data()[i*t.Len():], t.Data())
			}
			t = rep
		}
		v, _ := b.add(autograd.Leaf(b.name(in.Name), t, false), nil)
		if in.Name == s.Input.Name {
			m.Input = v
		}
	}
	x := m.Input
	used := map[string]bool{}
	for i, l := range s.Layers {
		field := fmt.Sprintf("layers[%d] (%s %s)", i, l.Type, l.Name)
		fail := func(err error) error {
			return &Error{File: s.file, Line: l.line, Field: field, Msg: err.Error()}
		}
		w, bias := params[l.Weight], params[l.Bias]
		for _, n := range []string{l.Weight, l.Bias, l.Recurrent, l.RecurrentBias, l.WQ, l.WK, l.WV, l.WO} {
			used[n] = true
		}
		ins := []*autograd.Var[T]{x}
		if len(l.Inputs) > 0 {
			ins = ins[:0]
			for _, n := range l.Inputs {
				ins = append(ins, m.Name[b.name(n)])
			}
			x = ins[0]
		}
		var err error
		switch l.Type {
		case "linear":
			x, err = b.linear(l, x, w, bias)
		case "reshape":
			shape := l.Shape
			if b.off() > 0 {
				shape = append([]int{x.Value.Dim(0)}, shape...)
			}
			x, err = b.add(ops.ReshapeLead(b.name(l.Name), x, s.Conventions.Reshape == "column-major", b.off(), shape...))
		case "flatten":
			x, err = b.add(ops.Flatten(b.name(l.Name), x, b.off(), s.Conventions.Reshape == "column-major"))
		case "conv", "deconv":
			x, err = b.conv(l, x, w, bias)
		case "activation":
			x, err = b.activation(b.name(l.Name), l, x)
		case "logistic":
			x, err = b.logistic(l, x, w, bias)
		case "matmul", "slice", "embedding", "rnn", "lstm", "gru", "attention":
			x, err = b.sequence(l, ins, w, bias, params)
		default:
			x, err = b.course(l, ins, w, bias)
		}
		if err != nil {
			if se, ok := err.(*Error); ok {
				return nil, se // already placed on its culprit
			}
			return nil, fail(err)
		}
		if l.Type != "logistic" {
			m.Outputs = append(m.Outputs, x)
		}
	}
	for _, name := range s.ParamOrder {
		if !used[name] {
			return nil, &Error{File: s.file, Line: s.Params[name].Line, Field: "params." + name, Msg: "is not used by any layer"}
		}
	}
	if err := b.objective(x, params); err != nil {
		return nil, err
	}
	if batch == 0 {
		for i, n := range s.Ask.Forward {
			if m.Name[n] == nil || m.Name[n].IsLeaf() {
				return nil, &Error{File: s.file, Line: s.Ask.line, Field: fmt.Sprintf("ask.forward[%d]", i), Msg: fmt.Sprintf("%q is not a value the network computes (have %s)", n, strings.Join(computedNames(m), ", "))}
			}
		}
	}
	return m, nil
}

// computedNames lists the named non-leaf nodes of m in creation order.
func computedNames[T tensor.Float](m *Model[T]) []string {
	var out []string
	for _, v := range m.Nodes {
		if v.Name != "" && !v.IsLeaf() && m.Name[v.Name] == v {
			out = append(out, v.Name)
		}
	}
	return out
}

// logisticPre is the default name of a logistic layer's pre-activation:
// a, unless the spec already uses that name for something else.
func logisticPre(s *Spec) string {
	n := "a"
	for named(s, n) {
		n += "'"
	}
	return n
}

// logitName names the logit of class y=0 under the y1 reading: s, unless
// the spec already uses that name.
func logitName(s *Spec) string {
	n := "s"
	for taken(s, n) {
		n += "'"
	}
	return n
}

// named reports whether the spec gives something the name n: a
// parameter, an input, a layer or a pre-activation.
func named(s *Spec, n string) bool {
	if _, ok := s.Params[n]; ok {
		return true
	}
	if _, ok := s.input(n); ok {
		return true
	}
	for _, l := range s.Layers {
		if l.Name == n || l.Preactivation == n {
			return true
		}
	}
	return false
}

// taken reports whether the spec or the nodes it implies (a logistic
// layer's log_p and pre-activation) use the name n.
func taken(s *Spec, n string) bool {
	if named(s, n) {
		return true
	}
	for _, l := range s.Layers {
		if l.Type == "logistic" && (n == "log_"+l.Name || (l.Preactivation == "" && n == logisticPre(s))) {
			return true
		}
	}
	return false
}

// preName is the pre-activation's name: the layer's own choice, else u<n>
// for an output named h<n>, else u_<name>.
func preName(l Layer) string {
	if l.Preactivation != "" {
		return l.Preactivation
	}
	i := len(l.Name)
	for i > 0 && unicode.IsDigit(rune(l.Name[i-1])) {
		i--
	}
	if i < len(l.Name) {
		return "u" + l.Name[i:]
	}
	return "u_" + strings.TrimRight(l.Name, "'")
}

// activation applies l's activation to x as node name.
func (b *builder[T]) activation(name string, l Layer, x *autograd.Var[T]) (*autograd.Var[T], error) {
	if l.Activation == "leaky_relu" {
		return b.add(ops.LeakyReLU(name, x, l.Slope))
	}
	return b.add(ops.Unary(name, ops.Activation(l.Activation), x))
}

// finish names the affine result and applies the activation, marking the
// pre-activation for inline display.
func (b *builder[T]) finish(l Layer, pre *autograd.Var[T]) (*autograd.Var[T], error) {
	if l.Activation == "identity" {
		pre.Name = b.name(l.Name)
		b.m.Name[pre.Name] = pre
		return pre, nil
	}
	pre.Name = b.name(preName(l))
	pre.Inline = true
	b.m.Name[pre.Name] = pre
	return b.activation(b.name(l.Name), l, pre)
}

func (b *builder[T]) linear(l Layer, x, w, bias *autograd.Var[T]) (*autograd.Var[T], error) {
	// a matrix input is a stack of rows mapped one by one: samples of a
	// batch, the states of a sequence, the tokens of attention
	off := b.off()
	if off == 0 && x.Value.Rank() == 2 {
		off = 1
	}
	if x.Value.Rank() != 1+off {
		return nil, &tensor.ShapeError{Op: "linear", Tensor: "input " + x.Name, Want: "a vector, or a matrix of rows (flatten it first)", Got: x.Value.Shape()}
	}
	n := x.Value.Dim(-1)
	ws := w.Value.Shape()
	want := fmt.Sprintf("[out×%d] (out rows, one column per input element of %s)", n, x.Name)
	if l.Transpose {
		want = fmt.Sprintf("[%d×out] (transpose: one row per input element of %s, applied as %sᵀ%s)", n, x.Name, w.Name, x.Name)
	}
	if len(ws) != 2 || (!l.Transpose && ws[1] != n) || (l.Transpose && ws[0] != n) {
		return nil, &tensor.ShapeError{Op: "linear", Tensor: "weight " + w.Name, Want: want, Got: ws}
	}
	var mm *autograd.Var[T]
	var err error
	if off > 0 { // rows are samples: X wᵀ for an out×in weight, X w for in×out
		mm, err = b.add(ops.MatMul("", x, w, false, !l.Transpose))
	} else {
		mm, err = b.add(ops.MatMul("", w, x, l.Transpose, false))
	}
	if err != nil {
		return nil, err
	}
	mm.Inline = true
	u := mm
	if bias != nil {
		// a scalar bias is one bias shared by every unit of the layer
		if bias.Value.Rank() != 0 && !tensor.SameShape(bias.Value.Shape(), mm.Value.Shape()[off:]) {
			// the weight's row count fixes the outputs; when the bias
			// disagrees, either may be the slip: report on the weight,
			// naming both
			out := mm.Value.Dim(-1)
			p := b.s.Params[w.Name]
			return nil, &Error{File: b.s.file, Line: p.Line, Field: "params." + w.Name,
				Msg: fmt.Sprintf("gives %d outputs (shape %s) but bias %s has shape %s; they must agree (one bias per output, or one number shared by all)",
					out, tensor.FormatShape(w.Value.Shape()), bias.Name, tensor.FormatShape(bias.Value.Shape()))}
		}
		if u, err = b.add(ops.BiasAdd("", mm, bias, off)); err != nil {
			return nil, err
		}
	}
	return b.finish(l, u)
}

func (b *builder[T]) conv(l Layer, x, w, bias *autograd.Var[T]) (*autograd.Var[T], error) {
	if x.Value.Rank() != 3+b.off() {
		return nil, &tensor.ShapeError{Op: l.Type, Tensor: "input " + x.Name, Want: "channels×height×width (reshape it first)", Got: x.Value.Shape()}
	}
	o := b.off()
	ws := w.Value.Shape()
	layout := "[out channels×in channels×kh×kw]"
	if l.Type == "deconv" {
		layout = "[in channels×out channels×kh×kw] (PyTorch's ConvTranspose2d layout)"
	}
	if len(ws) != 4 {
		return nil, &tensor.ShapeError{Op: l.Type, Tensor: "weight " + w.Name, Want: layout, Got: ws}
	}
	cin := ws[1]
	if l.Type == "deconv" {
		cin = ws[0]
	}
	if cin != x.Value.Dim(o) {
		return nil, &tensor.ShapeError{Op: l.Type, Tensor: "weight " + w.Name, Want: fmt.Sprintf("%s with %d input channels (the channels of %s)", layout, x.Value.Dim(o), x.Name), Got: ws}
	}
	kh, kw := ws[2], ws[3]
	h, wd := x.Value.Dim(o+1), x.Value.Dim(o+2)
	var oh, ow int
	if l.Type == "conv" {
		if kh > h+2*l.Padding.H || kw > wd+2*l.Padding.W {
			return nil, &Error{File: b.s.file, Line: b.s.Params[w.Name].Line, Field: "params." + w.Name,
				Msg: fmt.Sprintf("kernel %d×%d is larger than the padded input %s of %d×%d (layer %s)", kh, kw, x.Name, h+2*l.Padding.H, wd+2*l.Padding.W, l.Name)}
		}
		oh, ow = (h+2*l.Padding.H-kh)/l.Stride.H+1, (wd+2*l.Padding.W-kw)/l.Stride.W+1
	} else {
		if l.OutputPadding.H >= l.Stride.H || l.OutputPadding.W >= l.Stride.W {
			if l.OutputPadding.H > 0 || l.OutputPadding.W > 0 {
				return nil, fmt.Errorf("output_padding [%d, %d] must be smaller than the stride [%d, %d]", l.OutputPadding.H, l.OutputPadding.W, l.Stride.H, l.Stride.W)
			}
		}
		oh = (h-1)*l.Stride.H - 2*l.Padding.H + kh + l.OutputPadding.H
		ow = (wd-1)*l.Stride.W - 2*l.Padding.W + kw + l.OutputPadding.W
		if oh <= 0 || ow <= 0 {
			return nil, fmt.Errorf("output would be %d×%d: padding [%d, %d] is too large for kernel %d×%d", oh, ow, l.Padding.H, l.Padding.W, kh, kw)
		}
	}
	if oh > MaxDim || ow > MaxDim || oh*ow*max(ws[0], ws[1]) > MaxElements {
		return nil, fmt.Errorf("output of %d×%d is larger than a worked problem allows", oh, ow)
	}
	opt := ops.ConvOptions{StrideH: l.Stride.H, StrideW: l.Stride.W, PadH: l.Padding.H, PadW: l.Padding.W, OutPadH: l.OutputPadding.H, OutPadW: l.OutputPadding.W}
	var y *autograd.Var[T]
	var err error
	if l.Type == "conv" {
		y, err = b.add(ops.Conv2d("", x, w, opt))
	} else {
		opt.Flip = b.s.Conventions.Kernel == "flipped"
		y, err = b.add(ops.ConvTranspose2d("", x, w, opt))
	}
	if err != nil {
		return nil, err
	}
	y.Inline = true
	u := y
	if bias != nil {
		cout, bs := y.Value.Dim(o), bias.Value.Shape()
		ys := y.Value.Shape()[o:]
		mode := l.BiasMode
		if mode == "" {
			if len(bs) == 1 && bs[0] == cout {
				mode = "channel"
			} else {
				mode = "pixel"
			}
		}
		axis := o
		switch {
		case mode == "channel" && len(bs) == 1 && bs[0] == cout:
		case mode == "pixel" && tensor.SameShape(bs, ys):
		case mode == "pixel" && cout == 1 && len(bs) == 2 && bs[0] == oh && bs[1] == ow:
			axis = o + 1
		default:
			want := fmt.Sprintf("[%d] (one per output channel) or %s (one per output element)", cout, tensor.FormatShape(ys))
			return nil, &tensor.ShapeError{Op: l.Type, Tensor: "bias " + bias.Name, Want: want, Got: bs}
		}
		if u, err = b.add(ops.BiasAdd("", y, bias, axis)); err != nil {
			return nil, err
		}
	}
	return b.finish(l, u)
}

// logistic builds a = wᵀx + b, p(y=0) under the label convention, and the
// objective.
func (b *builder[T]) logistic(l Layer, x, w, bias *autograd.Var[T]) (*autograd.Var[T], error) {
	if x.Value.Rank() != 1+b.off() {
		return nil, &tensor.ShapeError{Op: "logistic", Tensor: "input " + x.Name, Want: "a vector (flatten it first)", Got: x.Value.Shape()}
	}
	if !tensor.SameShape(w.Value.Shape(), x.Value.Shape()[b.off():]) {
		return nil, &tensor.ShapeError{Op: "logistic", Tensor: "weight " + w.Name, Want: fmt.Sprintf("%s (one per element of %s)", tensor.FormatShape(x.Value.Shape()[b.off():]), x.Name), Got: w.Value.Shape()}
	}
	var a *autograd.Var[T]
	var err error
	if b.off() > 0 {
		a, err = b.add(ops.MatMul("", x, w, false, false))
	} else {
		a, err = b.add(ops.MatMul("", w, x, false, false))
	}
	if err != nil {
		return nil, err
	}
	a.Inline = true
	if bias != nil {
		if bias.Value.Len() != 1 {
			return nil, &tensor.ShapeError{Op: "logistic", Tensor: "bias " + bias.Name, Want: "a single number", Got: bias.Value.Shape()}
		}
		bv := bias
		if bias.Value.Rank() != 0 {
			if bv, err = b.add(ops.Reshape("", bias, false)); err != nil {
				return nil, err
			}
		}
		if a, err = b.add(ops.BiasAdd("", a, bv, 0)); err != nil {
			return nil, err
		}
	}
	a.Name = l.Preactivation
	if a.Name == "" {
		a.Name = logisticPre(b.s)
	}
	a.Name = b.name(a.Name)
	b.m.Name[a.Name] = a
	// s is the logit of class y=0: a itself, or −a when σ(a) is p(y=1)
	s := a
	if b.s.Conventions.Label == "y1" {
		// s = −a, the logit of class 0, a node of its own so that the
		// trace reads p = σ(s) and ∂J/∂a = −∂J/∂s
		if s, err = b.add(ops.Scale(b.name(logitName(b.s)), a, -1)); err != nil {
			return nil, err
		}
	}
	p, err := b.add(ops.Sigmoid(b.name(l.Name), s))
	if err != nil {
		return nil, err
	}
	logp, err := b.add(ops.LogSigmoid(b.name("log_"+l.Name), s))
	if err != nil {
		return nil, err
	}
	b.m.Outputs = append(b.m.Outputs, p, logp)
	switch b.s.Objective.Type {
	case "log_p":
		b.m.Objective, b.m.Maximize = logp, true
		if b.off() > 0 { // J = Σₙ log p(yₙ=0)
			name := "J"
			if b.s.Objective.WeightDecay != nil {
				name = "logL" // J is the total with the penalty
			}
			if b.m.Objective, err = b.add(ops.Sum(name, logp)); err != nil {
				return nil, err
			}
		}
	case "bce":
		// −log p(y=label): −log σ(s) for label 0, −log σ(−s) for label 1
		if b.s.Objective.Label == 0 {
			loss, err := b.add(ops.Scale("loss", logp, -1))
			if err != nil {
				return nil, err
			}
			b.m.Objective = loss
		} else {
			neg, err := b.add(ops.Scale("", s, -1))
			if err != nil {
				return nil, err
			}
			neg.Inline = true
			lp1, err := b.add(ops.LogSigmoid("log_p1", neg))
			if err != nil {
				return nil, err
			}
			lp1.Inline = true
			loss, err := b.add(ops.Scale("loss", lp1, -1))
			if err != nil {
				return nil, err
			}
			b.m.Objective = loss
		}
		if b.off() > 0 {
			b.m.Objective.Name = ""
			b.m.Objective.Inline = true
			if b.m.Objective, err = b.add(ops.Sum("loss", b.m.Objective)); err != nil {
				return nil, err
			}
		}
		b.m.Outputs = append(b.m.Outputs, b.m.Objective)
	}
	return p, nil
}
