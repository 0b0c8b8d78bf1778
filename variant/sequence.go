package variant

import (
	"fmt"
	"math"
	"strings"

	"github.com/backprop-dev/backprop/spec"
)

// MaxRecurrent bounds a fair RNN variant's pre-activations: |u| ≤ 2 keeps
// tanh(u) within ±0.964, where 1 − h² (the local derivative of the
// backward pass) is still at least 0.07, so that no time step's gradient
// vanishes and h written to four digits still gives it.
const MaxRecurrent = 2.0

// MaxAttention bounds a fair attention variant's attention weights: a
// softmax row with a probability above 0.95 is nearly one-hot, and the
// softmax's Jacobian diag(a) − a·aᵀ nearly zero.
const MaxAttention = 0.95

// rnnSize is the shape of an RNN variant: time steps, inputs per step and
// hidden units.
type rnnSize struct{ steps, in, hid int }

// rnnSizes are three steps of two inputs and two hidden units, or with
// VarySizes one to three inputs and two or three hidden units (always
// three steps).
func rnnSizes(o Options, d *drawer) rnnSize {
	sz := rnnSize{steps: 3, in: 2, hid: 2}
	if o.VarySizes {
		sz.in = 1 + d.r.IntN(3)
		sz.hid = 2 + d.r.IntN(2)
	}
	return sz
}

// rnnAsk is what an RNN sheet asks for.
func rnnAsk(steps int) string {
	hs := make([]string, steps)
	for t := range hs {
		hs[t] = fmt.Sprintf("h_%d", t+1)
	}
	return fmt.Sprintf("ask: {forward: [%s, y, E], gradients: [W_hy, b_y, W_hh, W_xh, b_h]}", strings.Join(hs, ", "))
}

// rnn draws a variant of the Elman RNN of a course unrolled over three
// steps: h_t = tanh(W_xh x_t + W_hh h_{t-1} + b_h) from h_0 = 0 (PyTorch's
// nn.RNNCell with one bias), a read-out y_t = W_hy h_t + b_y at every step
// and E = ½ Σ_t (y_t − t_t)². The inputs and targets are drawn from
// [−1, 1], W_xh and W_hy from [−0.9, 0.9] (nonzero), W_hh from [−0.6, 0.6]
// (nonzero), the biases from [−0.3, 0.3].
func rnn(o Options, d *drawer, index int, sz rnnSize) ([]byte, string) {
	T, n, h := sz.steps, sz.in, sz.hid
	x := d.fill(T*n, -1, 1, true)
	tg := d.fill(T, -1, 1, false)
	wxh := d.fill(h*n, -0.9, 0.9, true)
	whh := d.fill(h*h, -0.6, 0.6, true)
	bh := d.fill(h, -0.3, 0.3, false)
	why := d.fill(h, -0.9, 0.9, true)
	by := d.fill(1, -0.3, 0.3, false)

	var s strings.Builder
	fmt.Fprintf(&s, "# RNN, variant %d (backprop variant %s --problem rnn):\n", index, command(o))
	s.WriteString("#   h_t = tanh(W_xh x_t + W_hh h_{t-1} + b_h), h_0 = 0 (one row of x per time step),\n")
	s.WriteString("#   y_t = W_hy h_t + b_y, E = 1/2 sum_t (y_t - t_t)^2: backpropagation through time.\n")
	fmt.Fprintf(&s, "title: \"RNN, variant %d (seed %d): backpropagation through time over %d steps\"\n\n", index, o.Seed, T)
	s.WriteString("inputs:\n")
	fmt.Fprintf(&s, "  - {name: x, value: %s}   # one row per time step\n", d.list(x, []int{T, n}))
	fmt.Fprintf(&s, "  - {name: t, kind: target, value: %s}\n\n", d.list(tg, []int{T, 1}))
	s.WriteString("layers:\n")
	s.WriteString("  - {type: rnn, name: h, weight: W_xh, recurrent: W_hh, bias: b_h}   # pre-activations u_h_t\n")
	s.WriteString("  - {type: linear, name: y, weight: W_hy, bias: b_y}\n\n")
	s.WriteString("objective: {type: half_sse, target: t, name: E}\n")
	s.WriteString("# what the sheet asks for\n" + rnnAsk(T) + "\n\nparams:\n")
	s.WriteString(d.matrixYAML("W_xh", wxh, h, n))
	s.WriteString(d.matrixYAML("W_hh", whh, h, h))
	fmt.Fprintf(&s, "  b_h: %s\n", d.list(bh, []int{h}))
	s.WriteString(d.matrixYAML("W_hy", why, 1, h))
	fmt.Fprintf(&s, "  b_y: %s\n", d.list(by, []int{1}))

	var t strings.Builder
	fmt.Fprintf(&t, "# RNN, variant %d: backpropagation through time\n\n", index)
	fmt.Fprintf(&t, "*Seed %d, variant %d. Give every number to at least 4 significant digits; indices start at 1.*\n\n", o.Seed, index)
	fmt.Fprintf(&t, "An Elman RNN reads a sequence of $T = %d$ inputs $x_t$ (the rows of $x$, %d number(s) each) with %d hidden units, from $h_0 = 0$:\n\n", T, n, h)
	t.WriteString("$$\nu_t = W_{xh} x_t + W_{hh} h_{t-1} + b_h, \\qquad h_t = \\tanh(u_t), \\qquad y_t = W_{hy} h_t + b_y\n$$\n\n")
	t.WriteString("The same weights are used at every time step. The loss sums the squared errors of the read-outs against the targets $t_t$:\n\n")
	t.WriteString("$$\nE = \\frac{1}{2} \\sum_{t=1}^{T} (y_t - t_t)^2\n$$\n\n")
	fmt.Fprintf(&t, "$$\nx = %s, \\qquad t = %s\n$$\n\n", texMatrix(d, x, T, n), texTuple(d, tg))
	fmt.Fprintf(&t, "$$\nW_{xh} = %s, \\qquad W_{hh} = %s, \\qquad b_h = %s\n$$\n\n", texMatrix(d, wxh, h, n), texMatrix(d, whh, h, h), texTuple(d, bh))
	fmt.Fprintf(&t, "$$\nW_{hy} = %s, \\qquad b_y = %s\n$$\n\n", texMatrix(d, why, 1, h), d.format(by[0]))
	t.WriteString("## Tasks\n\n")
	t.WriteString("1. Compute the forward pass step by step: $h_1$, $h_2$, $h_3$, the read-outs $y$ (one per step) and the loss $E$.\n")
	t.WriteString("2. Backpropagate through time. For each step, $\\partial E / \\partial h_t$ gathers the read-out's gradient $W_{hy}^\\top (y_t - t_t)$ and the gradient from step $t+1$, $W_{hh}^\\top \\partial E / \\partial u_{t+1}$ (none at the last step). Give $\\partial E / \\partial W_{hy}$, $\\partial E / \\partial b_y$ and the shared weights' gradients $\\partial E / \\partial W_{hh}$, $\\partial E / \\partial W_{xh}$, $\\partial E / \\partial b_h$, each the sum of its per-step terms. Show the process.\n\n")
	hs := make([]string, T)
	for i := range hs {
		hs[i] = fmt.Sprintf("$h_%d$", i+1)
	}
	t.WriteString(handIn(strings.Join(hs, ", ")+", $y$ and $E$",
		"$\\partial E / \\partial W_{hy}$, $\\partial E / \\partial b_y$, $\\partial E / \\partial W_{hh}$, $\\partial E / \\partial W_{xh}$ and $\\partial E / \\partial b_h$",
		fmt.Sprintf("$y$ with one row per step, $W_{xh}$ as %d rows of %d, $W_{hh}$ as %d rows of %d, $W_{hy}$ as 1 row of %d", h, n, h, h, h)))
	return []byte(s.String()), t.String()
}

// attentionSize is the shape of an attention variant: tokens, the model
// width and the head width d_k.
type attentionSize struct{ tokens, dm, dk int }

// attentionSizes are three tokens of width 2 and a head of width 2, or
// with VarySizes a model width of 2 to 3 (always three tokens and d_k = 2).
func attentionSizes(o Options, d *drawer) attentionSize {
	sz := attentionSize{tokens: 3, dm: 2, dk: 2}
	if o.VarySizes {
		sz.dm = 2 + d.r.IntN(2)
	}
	return sz
}

// attentionAsk is what an attention sheet asks for.
const attentionAsk = "ask: {forward: [Q, K, V, S, A, O, y, L], gradients: [Wo, Wv, Wq, Wk]}"

// attention draws a variant of one head of scaled dot-product attention
// over three tokens: Q = x Wqᵀ, K = x Wkᵀ, V = x Wvᵀ, S = Q Kᵀ/√d_k,
// A = softmax(S) by rows, O = A V, y = O Woᵀ, and L = ½ Σ (y − t)². The
// tokens and targets are drawn from [−1, 1], the weights from [−0.9, 0.9]
// (nonzero).
func attention(o Options, d *drawer, index int, sz attentionSize) ([]byte, string) {
	T, dm, dk := sz.tokens, sz.dm, sz.dk
	x := d.fill(T*dm, -1, 1, true)
	tg := d.fill(T*dm, -1, 1, false)
	wq := d.fill(dk*dm, -0.9, 0.9, true)
	wk := d.fill(dk*dm, -0.9, 0.9, true)
	wv := d.fill(dk*dm, -0.9, 0.9, true)
	wo := d.fill(dm*dk, -0.9, 0.9, true)

	var s strings.Builder
	fmt.Fprintf(&s, "# Attention, variant %d (backprop variant %s --problem attention):\n", index, command(o))
	s.WriteString("#   Q = x Wq^T, K = x Wk^T, V = x Wv^T, S = Q K^T / sqrt(d_k), A = softmax(S) by rows,\n")
	s.WriteString("#   O = A V, y = O Wo^T, L = 1/2 sum (y - t)^2.\n")
	fmt.Fprintf(&s, "title: \"Attention, variant %d (seed %d): one head over %d tokens\"\n\n", index, o.Seed, T)
	s.WriteString("inputs:\n")
	fmt.Fprintf(&s, "  - {name: x, value: %s}   # one row per token\n", d.list(x, []int{T, dm}))
	fmt.Fprintf(&s, "  - {name: t, kind: target, value: %s}\n\n", d.list(tg, []int{T, dm}))
	s.WriteString("layers:\n")
	s.WriteString("  - {type: attention, name: y, wq: Wq, wk: Wk, wv: Wv, wo: Wo, heads: 1}\n\n")
	s.WriteString("objective: {type: half_sse, target: t}\n")
	s.WriteString("# what the sheet asks for\n" + attentionAsk + "\n\nparams:\n")
	s.WriteString(d.matrixYAML("Wq", wq, dk, dm))
	s.WriteString(d.matrixYAML("Wk", wk, dk, dm))
	s.WriteString(d.matrixYAML("Wv", wv, dk, dm))
	s.WriteString(d.matrixYAML("Wo", wo, dm, dk))

	var t strings.Builder
	fmt.Fprintf(&t, "# Attention, variant %d: one head of scaled dot-product attention\n\n", index)
	fmt.Fprintf(&t, "*Seed %d, variant %d. Give every number to at least 4 significant digits; indices start at 1.*\n\n", o.Seed, index)
	fmt.Fprintf(&t, "Three tokens, one per row of $x$ ($%d \\times %d$), pass one attention head of width $d_k = %d$ and an output projection:\n\n", T, dm, dk)
	t.WriteString("$$\nQ = x W_q^\\top, \\quad K = x W_k^\\top, \\quad V = x W_v^\\top, \\qquad S = \\frac{Q K^\\top}{\\sqrt{d_k}}, \\quad A = \\mathrm{softmax}(S), \\quad O = A V, \\quad y = O W_o^\\top\n$$\n\n")
	t.WriteString("where the softmax is taken along each row of $S$ (row $i$ holds how much token $i$ attends to each token). The loss is\n\n")
	t.WriteString("$$\nL = \\frac{1}{2} \\sum_{i, j} (y_{ij} - t_{ij})^2\n$$\n\n")
	fmt.Fprintf(&t, "$$\nx = %s, \\qquad t = %s\n$$\n\n", texMatrix(d, x, T, dm), texMatrix(d, tg, T, dm))
	fmt.Fprintf(&t, "$$\nW_q = %s, \\qquad W_k = %s, \\qquad W_v = %s, \\qquad W_o = %s\n$$\n\n", texMatrix(d, wq, dk, dm), texMatrix(d, wk, dk, dm), texMatrix(d, wv, dk, dm), texMatrix(d, wo, dm, dk))
	t.WriteString("## Tasks\n\n")
	t.WriteString("1. Compute the forward pass: $Q$, $K$, $V$, the scores $S$ (do not forget the $1/\\sqrt{d_k}$), the attention weights $A$, $O$, $y$ and $L$.\n")
	t.WriteString("2. Backpropagate: through the softmax of each row with its Jacobian, $\\partial L / \\partial s = (\\mathrm{diag}(a) - a a^\\top)\\, \\partial L / \\partial a$, and through the scaling. Give $\\partial L / \\partial W_o$, $\\partial L / \\partial W_v$, $\\partial L / \\partial W_q$ and $\\partial L / \\partial W_k$. Show the process.\n\n")
	t.WriteString(handIn("$Q$, $K$, $V$, $S$, $A$, $O$, $y$ and $L$",
		"$\\partial L / \\partial W_o$, $\\partial L / \\partial W_v$, $\\partial L / \\partial W_q$ and $\\partial L / \\partial W_k$",
		fmt.Sprintf("every matrix with one row per token, $W_q$, $W_k$, $W_v$ as %d rows of %d, $W_o$ as %d rows of %d", dk, dm, dm, dk)))
	return []byte(s.String()), t.String()
}

// fairSequence adds the conditions of the RNN and the attention head to
// Fair's: every pre-activation u_h_t of the RNN within ±MaxRecurrent, so no
// tanh saturates; no softmax row of the attention head with a probability
// above MaxAttention.
func fairSequence(s *spec.Spec, problem string) (string, error) {
	m, err := spec.Build[float64](s)
	if err != nil {
		return "", err
	}
	switch problem {
	case "rnn":
		found := false
		for t := 1; ; t++ {
			name := fmt.Sprintf("u_h_%d", t)
			u := m.Name[name]
			if u == nil {
				break
			}
			found = true
			for i, v := range u.Value.Data() {
				if math.Abs(v) > MaxRecurrent {
					return fmt.Sprintf("tanh saturated: %s%s = %.4g, outside ±%g", name, at(u.Value.Data(), i), v, MaxRecurrent), nil
				}
			}
		}
		if !found {
			return "", fmt.Errorf("fairness check: the network has no pre-activation u_h_1")
		}
	case "attention":
		a := m.Name["A"]
		if a == nil {
			return "", fmt.Errorf("fairness check: the network has no attention weights A")
		}
		k := a.Value.Dim(a.Value.Rank() - 1)
		for i, v := range a.Value.Data() {
			if v > MaxAttention {
				return fmt.Sprintf("softmax nearly one-hot: A[%d,%d] = %.4g, above %g", i/k+1, i%k+1, v, MaxAttention), nil
			}
		}
	}
	return "", nil
}
