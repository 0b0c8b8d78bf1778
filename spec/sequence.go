package spec

import (
	"fmt"
	"math"
	"strings"

	"github.com/backprop-dev/backprop/autograd"
	"github.com/backprop-dev/backprop/ops"
	"github.com/backprop-dev/backprop/tensor"
)

// Recurrent networks and attention, unrolled into the graph a worked
// solution walks: an Elman RNN, an LSTM cell and a GRU cell over the rows
// of their input (one row per time step, PyTorch's RNNCell/LSTMCell/
// GRUCell conventions: weights out×in, gate rows i, f, g, o for the LSTM
// and r, z, n for the GRU, both biases), and multi-head scaled dot-product
// attention over the rows of its input (one row per token). Every time
// step's values are nodes of their own, named with the step (h_1, c_2,
// i_2), so that backpropagation through time shows each step's gradient
// and each shared weight's gradient as the sum of its per-step terms.

// checkSequenceLayer checks the fields of the sequence and attention
// layers and of matmul, slice and embedding.
func (s *Spec) checkSequenceLayer(i int, l *Layer) error {
	field := fmt.Sprintf("layers[%d]", i)
	param := func(f, n string, need bool) error {
		if n == "" {
			if need {
				return s.errf(l.line, field+"."+f, "missing: a %s layer needs %s", l.Type, f)
			}
			return nil
		}
		if s.Params[n] == nil {
			return s.errf(l.line, field+"."+f, "%q is not in params", n)
		}
		return nil
	}
	state := func(f, n string) error {
		if n == "" {
			return nil
		}
		in, ok := s.input(n)
		if !ok || in.Kind != "data" {
			return s.errf(l.line, field+"."+f, "want the name of a data input holding the initial state, got %q", n)
		}
		return nil
	}
	switch l.Type {
	case "rnn", "lstm", "gru":
		if err := param("recurrent", l.Recurrent, true); err != nil {
			return err
		}
		if err := param("recurrent_bias", l.RecurrentBias, false); err != nil {
			return err
		}
		if err := state("h0", l.H0); err != nil {
			return err
		}
		if l.C0 != "" && l.Type != "lstm" {
			return s.errf(l.line, field+".c0", "only an lstm layer has a cell state")
		}
		if err := state("c0", l.C0); err != nil {
			return err
		}
		if l.Type == "rnn" && l.Activation == "identity" {
			l.Activation = "tanh" // nn.RNNCell's default
		}
		if l.Type != "rnn" && l.Activation != "identity" {
			return s.errf(l.line, field+".activation", "an %s cell's activations are fixed (σ and tanh)", l.Type)
		}
		if s.Conventions.Weights == "" {
			s.Conventions.Weights = "Wh"
		}
		if !oneOf(s.Conventions.Weights, "Wh", "hW") {
			return s.errf(s.convLine["weights"], "conventions.weights", "want Wh (W·h, PyTorch) or hW (h·W); got %q", s.Conventions.Weights)
		}
	case "attention":
		for _, f := range []struct{ name, v string }{{"wq", l.WQ}, {"wk", l.WK}, {"wv", l.WV}, {"wo", l.WO}} {
			if err := param(f.name, f.v, true); err != nil {
				return err
			}
		}
		if l.Heads == 0 {
			l.Heads = 1
		}
		if l.Heads < 1 || l.Heads > 64 {
			return s.errf(l.line, field+".heads", "want 1 to 64 heads, got %d", l.Heads)
		}
	case "slice":
		if l.Stop <= l.Start || l.Start < 0 {
			return s.errf(l.line, field, "want 0 ≤ start < stop, got start %d, stop %d", l.Start, l.Stop)
		}
	case "embedding":
		if len(l.Inputs) != 1 {
			return s.errf(l.line, field+".inputs", "an embedding layer names its input of token ids (kind labels), e.g. inputs: [tokens]")
		}
		if in, ok := s.input(l.Inputs[0]); !ok || in.Kind != "labels" {
			return s.errf(l.line, field+".inputs[0]", "want an input of kind labels holding token ids, got %q", l.Inputs[0])
		}
	}
	if l.Type != "rnn" && l.Type != "lstm" && l.Type != "gru" && (l.Recurrent != "" || l.RecurrentBias != "" || l.H0 != "" || l.C0 != "") {
		return s.errf(l.line, field, "only recurrent layers (rnn, lstm, gru) have recurrent weights and initial states")
	}
	return nil
}

// sequence builds the sequence layers, attention, matmul, slice and
// embedding.
func (b *builder[T]) sequence(l Layer, ins []*autograd.Var[T], w, bias *autograd.Var[T], params map[string]*autograd.Var[T]) (*autograd.Var[T], error) {
	x := ins[0]
	name := b.name(l.Name)
	switch l.Type {
	case "matmul":
		a, c := ins[0], ins[1]
		if a.Value.Rank() != 2 || c.Value.Rank() != 2 {
			return nil, fmt.Errorf("matmul multiplies two matrices; %s has shape %s and %s %s", a.Name, tensor.FormatShape(a.Value.Shape()), c.Name, tensor.FormatShape(c.Value.Shape()))
		}
		if l.Scale == 0 || l.Scale == 1 {
			return b.add(ops.MatMul(name, a, c, false, l.TransposeB))
		}
		p, err := b.add(ops.MatMul("", a, c, false, l.TransposeB))
		if err != nil {
			return nil, err
		}
		p.Inline = true
		return b.add(ops.Scale(name, p, l.Scale))
	case "slice":
		axis := -1
		if l.Axis != nil {
			axis = *l.Axis
		}
		return b.add(ops.Slice(name, x, axis, l.Start, l.Stop))
	case "embedding":
		v, _ := b.s.InputValue(l.Inputs[0])
		ids := make([]int, v.Len())
		for i, f := range v.Data() {
			ids[i] = int(f)
			if ids[i] >= w.Value.Dim(0) {
				return nil, fmt.Errorf("token id %d (position %d of %s) is outside the vocabulary of %s, which has %d rows", ids[i], i+1, l.Inputs[0], w.Name, w.Value.Dim(0))
			}
		}
		return b.add(ops.Embedding(name, w, ids))
	case "rnn", "lstm", "gru":
		return b.recurrent(l, x, w, bias, params)
	case "attention":
		return b.attention(l, x, params)
	}
	return nil, fmt.Errorf("unknown layer type %q", l.Type)
}

// stepName is the name of a value at time step t (1-based): h_1.
func stepName(base string, t int) string { return fmt.Sprintf("%s_%d", base, t) }

// recurrent unrolls an RNN, LSTM or GRU over the rows of x.
func (b *builder[T]) recurrent(l Layer, x, wih, bih *autograd.Var[T], params map[string]*autograd.Var[T]) (*autograd.Var[T], error) {
	if b.off() > 0 || x.Value.Rank() != 2 {
		return nil, &tensor.ShapeError{Op: l.Type, Tensor: "input " + x.Name, Want: "a sequence, one row per time step (T×inputs), not a batch", Got: x.Value.Shape()}
	}
	whh, bhh := params[l.Recurrent], params[l.RecurrentBias]
	hw := b.s.Conventions.Weights == "hW"
	gates := map[string]int{"rnn": 1, "lstm": 4, "gru": 3}[l.Type]
	steps, in := x.Value.Dim(0), x.Value.Dim(1)
	// the state size from the recurrent weight, (gates·H)×H or H×(gates·H)
	ws := whh.Value.Shape()
	if len(ws) != 2 {
		return nil, &tensor.ShapeError{Op: l.Type, Tensor: "recurrent weight " + whh.Name, Want: "a matrix", Got: ws}
	}
	hid := ws[1]
	wantHH, wantIH := []int{gates * hid, hid}, []int{gates * hid, in}
	if hw {
		hid = ws[0]
		wantHH, wantIH = []int{hid, gates * hid}, []int{in, gates * hid}
	}
	if !tensor.SameShape(ws, wantHH) {
		return nil, &Error{File: b.s.file, Line: b.s.Params[whh.Name].Line, Field: "params." + whh.Name, Msg: fmt.Sprintf("has shape %s; a %s of %d hidden units wants %s (%d gate(s) of %d)", tensor.FormatShape(ws), l.Type, hid, tensor.FormatShape(wantHH), gates, hid)}
	}
	if !tensor.SameShape(wih.Value.Shape(), wantIH) {
		return nil, &Error{File: b.s.file, Line: b.s.Params[wih.Name].Line, Field: "params." + wih.Name, Msg: fmt.Sprintf("has shape %s; with %d inputs per step (the columns of %s) and %d hidden units it must be %s", tensor.FormatShape(wih.Value.Shape()), in, x.Name, hid, tensor.FormatShape(wantIH))}
	}
	if l.Hidden != 0 && l.Hidden != hid {
		return nil, fmt.Errorf("hidden: %d, but the weights give %d hidden units", l.Hidden, hid)
	}
	for _, bv := range []*autograd.Var[T]{bih, bhh} {
		if bv != nil && !tensor.SameShape(bv.Value.Shape(), []int{gates * hid}) {
			return nil, &Error{File: b.s.file, Line: b.s.Params[bv.Name].Line, Field: "params." + bv.Name, Msg: fmt.Sprintf("has shape %s, want [%d] (%d gate(s) of %d)", tensor.FormatShape(bv.Value.Shape()), gates*hid, gates, hid)}
		}
	}
	initial := func(n, what string) (*autograd.Var[T], error) {
		if n == "" {
			return b.add(autograd.Leaf(b.uniq(stepName(what, 0)), tensor.New[T](hid), false), nil)
		}
		v := b.m.Name[b.name(n)]
		if !tensor.SameShape(v.Value.Shape(), []int{hid}) {
			return nil, &tensor.ShapeError{Op: l.Type, Tensor: "initial state " + n, Want: fmt.Sprintf("[%d]", hid), Got: v.Value.Shape()}
		}
		return v, nil
	}
	base := l.Name
	h, err := initial(l.H0, base)
	if err != nil {
		return nil, err
	}
	var c *autograd.Var[T]
	if l.Type == "lstm" {
		if c, err = initial(l.C0, "c"); err != nil {
			return nil, err
		}
	}
	// affine maps v (a vector) through w: W·v, or vᵀ·W under hW
	affine := func(w, v *autograd.Var[T]) (*autograd.Var[T], error) {
		var p *autograd.Var[T]
		var err error
		if hw {
			p, err = b.add(ops.MatMul("", v, w, false, false))
		} else {
			p, err = b.add(ops.MatMul("", w, v, false, false))
		}
		if err == nil {
			p.Inline = true
		}
		return p, err
	}
	withBias := func(p, bv *autograd.Var[T]) (*autograd.Var[T], error) {
		if bv == nil {
			return p, nil
		}
		q, err := b.add(ops.BiasAdd("", p, bv, 0))
		if err == nil {
			q.Inline = true
		}
		return q, err
	}
	slice := func(n string, v *autograd.Var[T], g int) (*autograd.Var[T], error) {
		return b.add(ops.Slice(n, v, 0, g*hid, (g+1)*hid))
	}
	var outs []*autograd.Var[T]
	for t := 1; t <= steps; t++ {
		// x_t, row t of the input: a given vector when x is an input,
		// else a slice the gradient flows back through
		var xt *autograd.Var[T]
		if x.IsLeaf() {
			row := tensor.New[T](in)
			copy(row.Data(), x.Value.Data()[(t-1)*in:t*in])
			xt, _ = b.add(autograd.Leaf(b.uniq(stepName(x.Name, t)), row, false), nil)
		} else {
			r, err := b.add(ops.Slice("", x, 0, t-1, t))
			if err != nil {
				return nil, err
			}
			r.Inline = true
			if xt, err = b.add(ops.Reshape(b.uniq(stepName(x.Name, t)), r, false, in)); err != nil {
				return nil, err
			}
		}
		gi, err := affine(wih, xt)
		if err != nil {
			return nil, err
		}
		if gi, err = withBias(gi, bih); err != nil {
			return nil, err
		}
		gh, err := affine(whh, h)
		if err != nil {
			return nil, err
		}
		if gh, err = withBias(gh, bhh); err != nil {
			return nil, err
		}
		switch l.Type {
		case "rnn":
			u, err := b.add(ops.Add(b.uniq(stepName("u_"+base, t)), gi, gh))
			if err != nil {
				return nil, err
			}
			if h, err = b.activation(b.uniq(stepName(base, t)), l, u); err != nil {
				return nil, err
			}
		case "lstm":
			a, err := b.add(ops.Add(b.uniq(stepName("a", t)), gi, gh))
			if err != nil {
				return nil, err
			}
			var gate [4]*autograd.Var[T]
			for g, gn := range []string{"i", "f", "g", "o"} {
				pre, err := slice(b.uniq(stepName("a"+gn, t)), a, g)
				if err != nil {
					return nil, err
				}
				pre.Inline = true
				fn := ops.ActSigmoid
				if gn == "g" {
					fn = ops.ActTanh
				}
				if gate[g], err = b.add(ops.Unary(b.uniq(stepName(gn, t)), fn, pre)); err != nil {
					return nil, err
				}
			}
			fc, err := b.add(ops.Mul("", gate[1], c))
			if err != nil {
				return nil, err
			}
			fc.Inline = true
			ig, err := b.add(ops.Mul("", gate[0], gate[2]))
			if err != nil {
				return nil, err
			}
			ig.Inline = true
			if c, err = b.add(ops.Add(b.uniq(stepName("c", t)), fc, ig)); err != nil {
				return nil, err
			}
			tc, err := b.add(ops.Tanh(b.uniq(stepName("q", t)), c))
			if err != nil {
				return nil, err
			}
			tc.Inline = true
			if h, err = b.add(ops.Mul(b.uniq(stepName(base, t)), gate[3], tc)); err != nil {
				return nil, err
			}
		case "gru":
			// the stacked input and hidden parts feed three gates each
			for _, g := range []struct {
				v    *autograd.Var[T]
				name string
			}{{gi, "gx"}, {gh, "gh"}} {
				g.v.Name = b.uniq(stepName(g.name, t))
				b.m.Name[g.v.Name] = g.v
			}
			var gi3, gh3 [3]*autograd.Var[T]
			for g, gn := range []string{"r", "z", "n"} {
				if gi3[g], err = slice(b.uniq(stepName("x"+gn, t)), gi, g); err != nil {
					return nil, err
				}
				gi3[g].Inline = true
				if gh3[g], err = slice(b.uniq(stepName("h"+gn, t)), gh, g); err != nil {
					return nil, err
				}
				gh3[g].Inline = true
			}
			sum := func(n string, p, q *autograd.Var[T]) (*autograd.Var[T], error) {
				v, err := b.add(ops.Add(n, p, q))
				if err == nil {
					v.Inline = true
				}
				return v, err
			}
			rs, err := sum(b.uniq(stepName("ar", t)), gi3[0], gh3[0])
			if err != nil {
				return nil, err
			}
			r, err := b.add(ops.Sigmoid(b.uniq(stepName("r", t)), rs))
			if err != nil {
				return nil, err
			}
			zs, err := sum(b.uniq(stepName("az", t)), gi3[1], gh3[1])
			if err != nil {
				return nil, err
			}
			z, err := b.add(ops.Sigmoid(b.uniq(stepName("z", t)), zs))
			if err != nil {
				return nil, err
			}
			rh, err := b.add(ops.Mul(b.uniq(stepName("rh", t)), r, gh3[2]))
			if err != nil {
				return nil, err
			}
			rh.Inline = true
			ns, err := sum(b.uniq(stepName("an", t)), gi3[2], rh)
			if err != nil {
				return nil, err
			}
			n, err := b.add(ops.Tanh(b.uniq(stepName("n", t)), ns))
			if err != nil {
				return nil, err
			}
			// h' = (1 − z)⊙n + z⊙h = n − z⊙n + z⊙h
			zn, err := b.add(ops.Mul(b.uniq(stepName("zn", t)), z, n))
			if err != nil {
				return nil, err
			}
			zn.Inline = true
			nzn, err := b.add(ops.Scale(b.uniq(stepName("mzn", t)), zn, -1))
			if err != nil {
				return nil, err
			}
			nzn.Inline = true
			zh, err := b.add(ops.Mul(b.uniq(stepName("zh", t)), z, h))
			if err != nil {
				return nil, err
			}
			zh.Inline = true
			part, err := sum("", n, nzn)
			if err != nil {
				return nil, err
			}
			if h, err = b.add(ops.Add(b.uniq(stepName(base, t)), part, zh)); err != nil {
				return nil, err
			}
		}
		b.m.Group[h.Name] = t
		outs = append(outs, h)
	}
	for _, v := range b.m.Nodes {
		if g := stepOf(v.Name); g > 0 {
			if _, ok := b.m.Group[v.Name]; !ok {
				b.m.Group[v.Name] = g
			}
		}
	}
	// the sequence of states, one row per step, for the layers after
	return b.add(ops.Stack(b.name(l.Name), outs...))
}

// stepOf reads the time step of a name such as c_2 (0 when there is none).
func stepOf(n string) int {
	i := strings.LastIndexByte(n, '_')
	if i < 0 || i == len(n)-1 {
		return 0
	}
	t := 0
	for _, r := range n[i+1:] {
		if r < '0' || r > '9' {
			return 0
		}
		t = t*10 + int(r-'0')
	}
	return t
}

// uniq returns n, or n with primes when the graph already has that name.
func (b *builder[T]) uniq(n string) string {
	for b.m.Name[n] != nil || taken(b.s, n) {
		n += "'"
	}
	return n
}

// attention builds multi-head scaled dot-product attention over the rows
// of x: Q = x·Wqᵀ, K, V likewise; per head S = Q_h·K_hᵀ/√d_k (masked when
// causal), A = softmax(S) by rows, O_h = A·V_h; the heads concatenated and
// projected by Wo.
func (b *builder[T]) attention(l Layer, x *autograd.Var[T], params map[string]*autograd.Var[T]) (*autograd.Var[T], error) {
	if x.Value.Rank() != 2 {
		return nil, &tensor.ShapeError{Op: "attention", Tensor: "input " + x.Name, Want: "one row per token (T×d)", Got: x.Value.Shape()}
	}
	d := x.Value.Dim(1)
	wq, wk, wv, wo := params[l.WQ], params[l.WK], params[l.WV], params[l.WO]
	dm := wq.Value.Dim(0)
	for _, w := range []*autograd.Var[T]{wq, wk, wv} {
		if !tensor.SameShape(w.Value.Shape(), []int{dm, d}) {
			return nil, &Error{File: b.s.file, Line: b.s.Params[w.Name].Line, Field: "params." + w.Name, Msg: fmt.Sprintf("has shape %s, want %s (out×in as nn.Linear, %d inputs per token)", tensor.FormatShape(w.Value.Shape()), tensor.FormatShape([]int{dm, d}), d)}
		}
	}
	if dm%l.Heads != 0 {
		return nil, fmt.Errorf("%d heads do not divide the %d columns of %s's projections", l.Heads, dm, l.Name)
	}
	if wo.Value.Rank() != 2 || wo.Value.Dim(1) != dm {
		return nil, &Error{File: b.s.file, Line: b.s.Params[wo.Name].Line, Field: "params." + wo.Name, Msg: fmt.Sprintf("has shape %s, want [out×%d] (it maps the %d concatenated head outputs)", tensor.FormatShape(wo.Value.Shape()), dm, dm)}
	}
	dk := dm / l.Heads
	proj := func(n string, w *autograd.Var[T]) (*autograd.Var[T], error) {
		return b.add(ops.MatMul(b.uniq(n), x, w, false, true))
	}
	q, err := proj("Q", wq)
	if err != nil {
		return nil, err
	}
	k, err := proj("K", wk)
	if err != nil {
		return nil, err
	}
	v, err := proj("V", wv)
	if err != nil {
		return nil, err
	}
	suffix := func(n string, h int) string {
		if l.Heads == 1 {
			return b.uniq(n)
		}
		return b.uniq(stepName(n, h))
	}
	var heads []*autograd.Var[T]
	for h := 1; h <= l.Heads; h++ {
		qh, kh, vh := q, k, v
		if l.Heads > 1 {
			if qh, err = b.add(ops.Slice(suffix("Q", h), q, 1, (h-1)*dk, h*dk)); err != nil {
				return nil, err
			}
			if kh, err = b.add(ops.Slice(suffix("K", h), k, 1, (h-1)*dk, h*dk)); err != nil {
				return nil, err
			}
			if vh, err = b.add(ops.Slice(suffix("V", h), v, 1, (h-1)*dk, h*dk)); err != nil {
				return nil, err
			}
		}
		qk, err := b.add(ops.MatMul(suffix("QK", h), qh, kh, false, true))
		if err != nil {
			return nil, err
		}
		qk.Inline = true
		s, err := b.add(ops.Scale(suffix("S", h), qk, 1/math.Sqrt(float64(dk))))
		if err != nil {
			return nil, err
		}
		if l.Causal {
			if s, err = b.add(ops.CausalMask(suffix("M", h), s)); err != nil {
				return nil, err
			}
		}
		a, err := b.add(ops.Softmax(suffix("A", h), s, -1))
		if err != nil {
			return nil, err
		}
		o, err := b.add(ops.MatMul(suffix("O", h), a, vh, false, false))
		if err != nil {
			return nil, err
		}
		heads = append(heads, o)
	}
	o := heads[0]
	if len(heads) > 1 {
		if o, err = b.add(ops.Concat(b.uniq("O"), 1, heads...)); err != nil {
			return nil, err
		}
	}
	return b.add(ops.MatMul(b.name(l.Name), o, wo, false, true))
}
