package variant

import (
	"fmt"
	"math"
	"strings"

	"github.com/backprop-dev/backprop/spec"
)

// softmaxSize is the shape of a softmax-classifier variant: the batch
// size, input features, hidden units and classes.
type softmaxSize struct{ n, d, h, k int }

// softmaxSizes are three samples of three features, three hidden units and
// three classes, or drawn ones with VarySizes (N 2–4, D 2–4, H 2–4, K 3–4).
func softmaxSizes(o Options, d *drawer) softmaxSize {
	sz := softmaxSize{n: 3, d: 3, h: 3, k: 3}
	if o.VarySizes {
		sz.n = 2 + d.r.IntN(3)
		sz.d = 2 + d.r.IntN(3)
		sz.h = 2 + d.r.IntN(3)
		sz.k = 3 + d.r.IntN(2)
	}
	return sz
}

// softmaxAsk is what a softmax-classifier sheet asks for.
const softmaxAsk = "ask: {forward: [h1, z, L], gradients: [W2, b2, W1, b1]}"

// softmax draws a variant of the multi-class MLP of a course: a batch of N
// samples x (N×D, from [−1, 1]), a ReLU hidden layer h1 = ReLU(x·W1ᵀ + b1),
// logits z = h1·W2ᵀ + b2 and the mean softmax cross-entropy against
// integer labels y (0-based, as PyTorch). Weights are drawn from
// [−0.9, 0.9] (nonzero), biases from [−0.3, 0.3], labels uniformly.
func softmax(o Options, d *drawer, index int, sz softmaxSize) ([]byte, string) {
	n, din, h, k := sz.n, sz.d, sz.h, sz.k
	x := d.fill(n*din, -1, 1, true)
	w1 := d.fill(h*din, -0.9, 0.9, true)
	b1 := d.fill(h, -0.3, 0.3, false)
	w2 := d.fill(k*h, -0.9, 0.9, true)
	b2 := d.fill(k, -0.3, 0.3, false)
	y := make([]int, n)
	for i := range y {
		y[i] = d.r.IntN(k)
	}
	labels := make([]string, n)
	for i, c := range y {
		labels[i] = fmt.Sprint(c)
	}

	var s strings.Builder
	fmt.Fprintf(&s, "# Softmax classifier, variant %d (backprop variant %s --problem softmax):\n", index, command(o))
	s.WriteString("#   h1 = ReLU(x W1^T + b1), z = h1 W2^T + b2 (one row per sample),\n")
	s.WriteString("#   L = mean over the batch of the cross-entropy -log softmax(z_n)[y_n].\n")
	fmt.Fprintf(&s, "title: \"Softmax classifier, variant %d (seed %d): cross-entropy on a batch\"\n\n", index, o.Seed)
	s.WriteString("inputs:\n")
	fmt.Fprintf(&s, "  - name: x\n    batch: true\n    value: %s\n", d.list(x, []int{n, din}))
	fmt.Fprintf(&s, "  - {name: y, kind: labels, value: [%s]}   # classes 0 to %d\n\n", strings.Join(labels, ", "), k-1)
	s.WriteString("layers:\n")
	s.WriteString("  - {type: linear, name: h1, weight: W1, bias: b1, activation: relu}   # pre-activation u1\n")
	s.WriteString("  - {type: linear, name: z,  weight: W2, bias: b2}                     # logits\n\n")
	s.WriteString("objective: {type: cross_entropy, labels: y, reduction: mean}\n")
	s.WriteString("# what the sheet asks for\n" + softmaxAsk + "\n\nparams:\n")
	s.WriteString(d.matrixYAML("W1", w1, h, din))
	fmt.Fprintf(&s, "  b1: %s\n", d.list(b1, []int{h}))
	s.WriteString(d.matrixYAML("W2", w2, k, h))
	fmt.Fprintf(&s, "  b2: %s\n", d.list(b2, []int{k}))

	var t strings.Builder
	fmt.Fprintf(&t, "# Softmax classifier, variant %d: cross-entropy on a batch\n\n", index)
	fmt.Fprintf(&t, "*Seed %d, variant %d. Give every number to at least 4 significant digits; indices start at 1, classes at 0.*\n\n", o.Seed, index)
	fmt.Fprintf(&t, "A batch of $N = %d$ samples, one per row of $x$ ($%d \\times %d$), with their class labels $y$ (one of the $K = %d$ classes $0, \\dots, %d$ each):\n\n", n, n, din, k, k-1)
	fmt.Fprintf(&t, "$$\nx = %s, \\qquad y = (%s)\n$$\n\n", texMatrix(d, x, n, din), strings.Join(labels, ", "))
	s2 := "A hidden layer with ReLU and a linear layer to the logits, applied to every row:\n\n"
	s2 += "$$\nu_1 = x W_1^\\top + b_1, \\quad h_1 = \\mathrm{ReLU}(u_1), \\qquad z = h_1 W_2^\\top + b_2\n$$\n\n"
	t.WriteString(s2)
	fmt.Fprintf(&t, "with $W_1$ ($%d \\times %d$), $b_1$ ($%d$), $W_2$ ($%d \\times %d$) and $b_2$ ($%d$), each bias added to every row:\n\n", h, din, h, k, h, k)
	fmt.Fprintf(&t, "$$\nW_1 = %s, \\qquad b_1 = %s\n$$\n\n", texMatrix(d, w1, h, din), texTuple(d, b1))
	fmt.Fprintf(&t, "$$\nW_2 = %s, \\qquad b_2 = %s\n$$\n\n", texMatrix(d, w2, k, h), texTuple(d, b2))
	t.WriteString("The loss is the mean cross-entropy of the softmax of the logits over the batch:\n\n")
	t.WriteString("$$\nL = \\frac{1}{N} \\sum_{n=1}^{N} -\\log \\mathrm{softmax}(z_n)_{y_n}, \\qquad \\mathrm{softmax}(z_n)_c = \\frac{e^{z_{n,c}}}{\\sum_{c'} e^{z_{n,c'}}}\n$$\n\n")
	t.WriteString("## Tasks\n\n")
	t.WriteString("1. Compute the forward pass: $h_1$, the logits $z$ and the loss $L$.\n")
	t.WriteString("2. Derive $\\partial L / \\partial z$ and backpropagate it: give $\\partial L / \\partial W_2$, $\\partial L / \\partial b_2$, $\\partial L / \\partial W_1$ and $\\partial L / \\partial b_1$. Show the process.\n\n")
	t.WriteString(handIn("$h_1$, $z$ and $L$",
		"$\\partial L / \\partial W_2$, $\\partial L / \\partial b_2$, $\\partial L / \\partial W_1$ and $\\partial L / \\partial b_1$",
		fmt.Sprintf("$h_1$ and $z$ with one row per sample, $W_1$ as %d rows of %d, $W_2$ as %d rows of %d", h, din, k, h)))
	return []byte(s.String()), t.String()
}

// convnetSize is the shape of a conv-net variant: the image side, the
// number of filters, the kernel side, the pooling window and stride, and
// the classes.
type convnetSize struct{ side, filters, ksize, pool, stride, classes int }

// convnetSizes are a 5×5 image, two 3×3 filters, 2×2 max pooling at
// stride 1 and three classes (as the bank's conv net), or drawn ones with
// VarySizes (side 4–6, 1–2 filters, kernel 2–3, pooling 2×2 at stride 1 or
// 2 where it tiles the map, 2–3 classes).
func convnetSizes(o Options, d *drawer) convnetSize {
	sz := convnetSize{side: 5, filters: 2, ksize: 3, pool: 2, stride: 1, classes: 3}
	if o.VarySizes {
		sz.side = 4 + d.r.IntN(3)
		sz.filters = 1 + d.r.IntN(2)
		sz.ksize = 2 + d.r.IntN(2)
		sz.classes = 2 + d.r.IntN(2)
		if m := sz.side - sz.ksize + 1; m%2 == 0 && d.r.IntN(2) == 0 {
			sz.stride = 2
		}
	}
	return sz
}

// convnetAsk is what a conv-net sheet asks for.
const convnetAsk = "ask: {forward: [h1, m, z, L], gradients: [w2, b2, w1, b1]}"

// convnet draws a variant of the conv net of a course: one image x
// (1×S×S, from [0, 1]), a convolution with F filters and ReLU (h1), max
// pooling (m), flattening (f, row-major) and a linear layer to the logits
// z, with the cross-entropy against one label y. Kernels and weights are
// drawn from [−0.5, 0.5] (nonzero), biases from [−0.2, 0.2].
func convnet(o Options, d *drawer, index int, sz convnetSize) ([]byte, string) {
	side, nf, ks, pool, st, nc := sz.side, sz.filters, sz.ksize, sz.pool, sz.stride, sz.classes
	conv := side - ks + 1
	pooled := (conv-pool)/st + 1
	nflat := nf * pooled * pooled
	x := d.fill(side*side, 0, 1, false)
	w1 := d.fill(nf*ks*ks, -0.5, 0.5, true)
	b1 := d.fill(nf, -0.2, 0.2, false)
	w2 := d.fill(nc*nflat, -0.5, 0.5, true)
	b2 := d.fill(nc, -0.2, 0.2, false)
	label := d.r.IntN(nc)

	var s strings.Builder
	fmt.Fprintf(&s, "# Conv net, variant %d (backprop variant %s --problem convnet):\n", index, command(o))
	fmt.Fprintf(&s, "#   h1 = ReLU(conv(x, w1) + b1) (%d filter(s) of %dx%d), m = maxpool(h1) (%dx%d, stride %d),\n", nf, ks, ks, pool, pool, st)
	s.WriteString("#   f = flatten(m) (row-major), z = w2 f + b2, L = cross-entropy of z against the label y.\n")
	fmt.Fprintf(&s, "title: \"Conv net, variant %d (seed %d): convolution, max pooling and cross-entropy\"\n\n", index, o.Seed)
	s.WriteString("conventions:\n  reshape: row-major\n\n")
	s.WriteString("inputs:\n")
	fmt.Fprintf(&s, "  - name: x   # 1 channel of %dx%d\n    value: %s\n", side, side, d.list(x, []int{1, side, side}))
	fmt.Fprintf(&s, "  - {name: y, kind: labels, value: [%d]}   # classes 0 to %d\n\n", label, nc-1)
	s.WriteString("layers:\n")
	s.WriteString("  - {type: conv, name: h1, weight: w1, bias: b1, activation: relu}   # pre-activation u1\n")
	fmt.Fprintf(&s, "  - {type: maxpool, name: m, kernel_size: %d, stride: %d}\n", pool, st)
	s.WriteString("  - {type: flatten, name: f}\n")
	s.WriteString("  - {type: linear, name: z, weight: w2, bias: b2}   # logits\n\n")
	s.WriteString("objective: {type: cross_entropy, labels: y}\n")
	s.WriteString("# what the sheet asks for\n" + convnetAsk + "\n\nparams:\n")
	s.WriteString("  # conv weight: [filters][in channels][kh][kw], as Conv2d\n")
	s.WriteString(d.convYAML("w1", w1, nf, ks))
	fmt.Fprintf(&s, "  b1: %s\n", d.list(b1, []int{nf}))
	s.WriteString(d.matrixYAML("w2", w2, nc, nflat))
	fmt.Fprintf(&s, "  b2: %s\n", d.list(b2, []int{nc}))

	var t strings.Builder
	fmt.Fprintf(&t, "# Conv net, variant %d: convolution, max pooling and cross-entropy\n\n", index)
	fmt.Fprintf(&t, "*Seed %d, variant %d. Give every number to at least 4 significant digits; indices start at 1, classes at 0.*\n\n", o.Seed, index)
	fmt.Fprintf(&t, "One gray image $x$ ($1 \\times %d \\times %d$) of class $y = %d$ (of the classes $0, \\dots, %d$):\n\n", side, side, label, nc-1)
	fmt.Fprintf(&t, "$$\nx = %s\n$$\n\n", texMatrix(d, x, side, side))
	fmt.Fprintf(&t, "A convolution with %d filter(s) of $%d \\times %d$ (as PyTorch's Conv2d: the kernel slides over the image without being rotated, a cross-correlation; stride 1, no padding) and ReLU:\n\n", nf, ks, ks)
	t.WriteString("$$\nu_1[f, i, j] = b_1[f] + \\sum_{k, l} x[1, i + k - 1, j + l - 1]\\, w_1[f, 1, k, l], \\qquad h_1 = \\mathrm{ReLU}(u_1)\n$$\n\n")
	kernels := make([]string, nf)
	for f := range nf {
		kernels[f] = fmt.Sprintf("w_1[%d, 1] = %s", f+1, texMatrix(d, w1[f*ks*ks:(f+1)*ks*ks], ks, ks))
	}
	fmt.Fprintf(&t, "$$\n%s, \\qquad b_1 = %s\n$$\n\n", strings.Join(kernels, ", \\qquad "), texTuple(d, b1))
	fmt.Fprintf(&t, "Max pooling over $%d \\times %d$ windows at stride %d gives $m$ ($%d \\times %d \\times %d$); $f = \\mathrm{Flatten}(m)$ reads $m$ in row-major order (filter 1 first, each map row by row) into %d values, and a linear layer gives the logits $z = w_2 f + b_2$ with\n\n", pool, pool, st, nf, pooled, pooled, nflat)
	fmt.Fprintf(&t, "$$\nw_2 = %s, \\qquad b_2 = %s\n$$\n\n", texMatrix(d, w2, nc, nflat), texTuple(d, b2))
	t.WriteString("The loss is the cross-entropy of the softmax of the logits:\n\n")
	t.WriteString("$$\nL = -\\log \\mathrm{softmax}(z)_y = -z_y + \\log \\sum_c e^{z_c}\n$$\n\n")
	t.WriteString("## Tasks\n\n")
	t.WriteString("1. Compute the forward pass: $h_1$, $m$, the logits $z$ and the loss $L$.\n")
	t.WriteString("2. Backpropagate: give $\\partial L / \\partial w_2$, $\\partial L / \\partial b_2$, $\\partial L / \\partial w_1$ and $\\partial L / \\partial b_1$. Say which element of each pooling window receives its gradient. Show the process.\n\n")
	t.WriteString(handIn("$h_1$, $m$, $z$ and $L$",
		"$\\partial L / \\partial w_2$, $\\partial L / \\partial b_2$, $\\partial L / \\partial w_1$ and $\\partial L / \\partial b_1$",
		fmt.Sprintf("$h_1$ as %d filter map(s) of %d rows, $m$ as %d map(s) of %d rows, $w_1$ as %d filter(s) of 1 channel of %d rows, $w_2$ as %d rows of %d", nf, conv, nf, pooled, nf, ks, nc, nflat)))
	return []byte(s.String()), t.String()
}

// convYAML writes a [filters][1][k][k] conv weight one kernel row per line.
func (d *drawer) convYAML(key string, data []float64, nf, k int) string {
	return d.kernelsYAML(key, data, nf, k)
}

// fairCourse adds the conditions of the softmax classifier and the conv
// net to Fair's: every row of logits spread by at most MaxLogit (so that no
// probability rounds to 0 or 1 at four digits), for a batch at least two
// different labels and at least one sample the network gets wrong (so the
// one-hot term matters), and no tie for the maximum in any pooling window
// (so that the gradient's way back is unique).
func fairCourse(s *spec.Spec) (string, error) {
	m, err := spec.Build[float64](s)
	if err != nil {
		return "", err
	}
	z := m.Name["z"]
	if z == nil {
		return "", fmt.Errorf("fairness check: the network has no logits z")
	}
	k := z.Value.Shape()[z.Value.Rank()-1]
	rows := z.Value.Len() / k
	yt, _ := s.InputValue("y")
	wrong := 0
	for r := range rows {
		row := z.Value.Data()[r*k : (r+1)*k]
		lo, hi, arg := math.Inf(1), math.Inf(-1), 0
		for c, v := range row {
			lo = min(lo, v)
			if v > hi {
				hi, arg = v, c
			}
		}
		if hi-lo > MaxLogit {
			return fmt.Sprintf("softmax saturated: the logits of row %d spread by %.3g, more than %g", r+1, hi-lo, MaxLogit), nil
		}
		if yt != nil && int(yt.Data()[r]) != arg {
			wrong++
		}
	}
	if yt != nil && rows > 1 {
		first, same := yt.Data()[0], true
		for _, v := range yt.Data() {
			same = same && v == first
		}
		if same {
			return "every sample has the same label", nil
		}
		if wrong == 0 {
			return "the network classifies every sample right", nil
		}
	}
	for _, l := range s.Layers {
		if l.Type != "maxpool" {
			continue
		}
		in := m.Name["h1"]
		if in == nil {
			return "", fmt.Errorf("fairness check: no input h1 of the pooling")
		}
		sh := in.Value.Shape()
		ch, hh, ww := sh[len(sh)-3], sh[len(sh)-2], sh[len(sh)-1]
		ks, st := l.KernelSize.H, l.Stride.H
		if !l.Stride.Set {
			st = ks
		}
		v := in.Value.Data()
		for c := range ch {
			for i := 0; i+ks <= hh; i += st {
				for j := 0; j+ks <= ww; j += st {
					best, second := math.Inf(-1), math.Inf(-1)
					for a := range ks {
						for b := range ks {
							x := v[(c*hh+i+a)*ww+j+b]
							if x > best {
								best, second = x, best
							} else if x > second {
								second = x
							}
						}
					}
					if best-second <= kink {
						return fmt.Sprintf("a tie in pooling window (%d, %d) of map %d: two elements are %.4g", i+1, j+1, c+1, best), nil
					}
				}
			}
		}
	}
	return "", nil
}
