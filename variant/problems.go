package variant

import (
	"fmt"
	"strings"
)

// ganSize is the shape of a Problem 1 variant.
type ganSize struct{ nz, ch, side, k int }

// ganSizes are the seed's sizes, or drawn ones with VarySizes.
func ganSizes(o Options, d *drawer) ganSize {
	sz := ganSize{nz: 2, ch: 2, side: 2, k: 3}
	if o.VarySizes {
		sz.nz = 2 + d.r.IntN(2)
		sz.ch = 1 + d.r.IntN(3)
		sz.k = 2 + d.r.IntN(2)
		if sz.ch == 1 && d.r.IntN(2) == 0 {
			sz.side = 3
		}
	}
	return sz
}

// ganAsk is what a Problem 1 sheet asks for: the forward values of task 1
// and the discriminator's pre-activation, the gradients of task 2.
const ganAsk = "ask: {forward: [h0, h1, h2, a], gradients: [w1, w0]}"

// gan draws the numbers of a Problem 1 variant and writes its spec and
// sheet. z is drawn from [0.1, 0.9]; w0 and w1 from [0.1, 0.9] like the
// seed's (both signs with Signed); b0, b1, w2 and b2 from [−0.9, 0.9], so
// that some ReLUs can be off and the logit a can stay small. AnyDraws
// draws every weight from [0.1, 0.9] (or [−0.9, 0.9] with Signed), as
// variants did before fair draws. No drawn number is 0.
func gan(o Options, d *drawer, index int, sz ganSize) ([]byte, string) {
	nz, ch, side, k := sz.nz, sz.ch, sz.side, sz.k
	nh := ch * side * side
	out := side + k - 1
	lo, hi := 0.1, 0.9
	if o.Signed {
		lo = -0.9
	}
	blo := -0.9 // biases and the discriminator's weights
	if o.AnyDraws {
		blo = lo
	}
	z := d.fill(nz, 0.1, 0.9, true)
	w0 := d.fill(nh*nz, lo, hi, true)
	b0 := d.fill(nh, blo, hi, true)
	w1 := d.fill(ch*k*k, lo, hi, true)
	b1 := d.fill(out*out, blo, hi, true)
	w2 := d.fill(out*out, blo, hi, true)
	b2 := d.num(blo, hi, true)

	var y strings.Builder
	fmt.Fprintf(&y, "# Problem 1, variant %d (backprop variant %s): a tiny GAN.\n", index, command(o))
	fmt.Fprintf(&y, "# Generator: h0 = ReLU(w0 z + b0), reshape into %d channel(s) of %d×%d (h1),\n", ch, side, side)
	fmt.Fprintf(&y, "# transposed convolution with a %d×%d kernel + ReLU (h2, %d×%d). Discriminator:\n", k, k, out, out)
	fmt.Fprintf(&y, "# p(y=0) = σ(a), a = w2ᵀ H2 + b2 on the flattened h2. Objective: maximize log p(y=0).\n")
	fmt.Fprintf(&y, "title: \"Problem 1, variant %d (seed %d): forward and backward propagation for a simple GAN\"\n\n", index, o.Seed)
	y.WriteString("conventions:\n  reshape: row-major\n  kernel: pytorch\n  label: y0\n\n")
	fmt.Fprintf(&y, "input:\n  name: z\n  value: %s\n\n", d.list(z, []int{nz}))
	y.WriteString("layers:\n")
	y.WriteString("  - {type: linear,  name: h0, weight: w0, bias: b0, activation: relu}\n")
	fmt.Fprintf(&y, "  - {type: reshape, name: h1, shape: [%d, %d, %d]}   # channels × height × width\n", ch, side, side)
	y.WriteString("  - {type: deconv,  name: h2, weight: w1, bias: b1, stride: 1, padding: 0, activation: relu}\n")
	y.WriteString("  - {type: flatten, name: H2}\n")
	y.WriteString("  - {type: logistic, name: p, weight: w2, bias: b2}\n\n")
	y.WriteString("objective: {type: log_p}   # maximize log p(y=0)\n")
	y.WriteString("# what the sheet asks for\n" + ganAsk + "\n\nparams:\n")
	y.WriteString(d.matrixYAML("w0", w0, nh, nz))
	fmt.Fprintf(&y, "  b0: %s\n", d.list(b0, []int{nh}))
	y.WriteString("  # deconv weight: [in channels][out channels][kh][kw], as ConvTranspose2d\n")
	y.WriteString(d.kernelsYAML("w1", w1, ch, k))
	y.WriteString("  # one bias per output pixel\n")
	y.WriteString(d.matrixYAML("b1", b1, out, out))
	fmt.Fprintf(&y, "  w2: %s\n", d.list(w2, []int{out * out}))
	fmt.Fprintf(&y, "  b2: %s\n", d.format(b2))

	var s strings.Builder
	fmt.Fprintf(&s, "# Problem 1, variant %d: forward and backward propagation for a simple GAN\n\n", index)
	fmt.Fprintf(&s, "*Seed %d, variant %d. Give every number to at least 4 significant digits; indices start at 1.*\n\n", o.Seed, index)
	s.WriteString("## Generator\n\n")
	fmt.Fprintf(&s, "Random input: $z = %s^\\top$\n\n", texTuple(d, z))
	fmt.Fprintf(&s, "Project: $h_0 = \\mathrm{ReLU}(w_0 z + b_0)$, with $w_0$ ($%d \\times %d$) and $b_0$ ($%d$):\n\n", nh, nz, nh)
	fmt.Fprintf(&s, "$$\nw_0 = %s, \\qquad b_0 = %s\n$$\n\n", texMatrix(d, w0, nh, nz), texMatrix(d, b0, nh, 1))
	chWord := "channels"
	if ch == 1 {
		chWord = "channel"
	}
	fmt.Fprintf(&s, "$h_1 = \\mathrm{reshape}(h_0)$: %d values into %d %s of $%d \\times %d$, in row-major order (channel 1 first, each channel row by row).\n\n", nh, ch, chWord, side, side)
	kernels := make([]string, ch)
	names := make([]string, ch)
	for c := range ch {
		names[c] = fmt.Sprintf("w_1^{%d}", c+1)
		kernels[c] = fmt.Sprintf("%s = %s", names[c], texMatrix(d, w1[c*k*k:(c+1)*k*k], k, k))
	}
	fmt.Fprintf(&s, "$h_2 = \\mathrm{ReLU}(\\mathrm{Deconv}(h_1, w_1, b_1)) \\in \\mathbb{R}^{%d \\times %d}$, where $w_1$ ($%d \\times %d \\times %d$) $= [%s]$, one $%d \\times %d$ kernel per input channel, and $b_1$ is a $%d \\times %d$ bias (one value per output pixel):\n\n",
		out, out, k, k, ch, strings.Join(names, "\\ "), k, k, out, out)
	fmt.Fprintf(&s, "$$\n%s, \\qquad b_1 = %s\n$$\n\n", strings.Join(kernels, ", \\qquad "), texMatrix(d, b1, out, out))
	fmt.Fprintf(&s, "A $%d \\times %d$ input and a $%d \\times %d$ kernel at stride 1 without padding give the $%d \\times %d$ output. ", side, side, k, k, out, out)
	s.WriteString("Each input pixel adds a copy of its channel's kernel, scaled by the pixel, with the kernel's top-left entry on the pixel's own position; with 1-based indices\n\n")
	s.WriteString(ganDeconvFormula + "\n\n")
	s.WriteString("summed over the channels $c$ and over the input pixels $(i, j)$ and kernel entries $(k, l)$ that meet at the output pixel $(m, n)$. ")
	s.WriteString("This is PyTorch's ConvTranspose2d, and the textbook full convolution of each channel of $h_1$ with its kernel, summed over the channels: in MATLAB, `conv2(X, K, 'full')` for each channel `X` and its kernel `K`, which slides `K` rotated by $180^\\circ$ over the zero-padded `X`.\n\n")
	s.WriteString("## Binary discriminator\n\n")
	fmt.Fprintf(&s, "$H_2 = \\mathrm{Flatten}(h_2) \\in \\mathbb{R}^{%d \\times 1}$ (row by row)\n\n", out*out)
	fmt.Fprintf(&s, "$p(y=0) = \\sigma(a)$ with the pre-activation $a = w_2^\\top H_2 + b_2$, where\n\n$$\nw_2 = %s^\\top, \\qquad b_2 = %s\n$$\n\n", texTuple(d, w2), d.format(b2))
	s.WriteString("## Tasks\n\n")
	s.WriteString("1. Using the forward propagation equations and the initial weights, produce the values of $h_0$, $h_1$ and $h_2$ from the given $z$, and the discriminator's pre-activation $a$.\n")
	s.WriteString("2. Given the logistic-regression discriminator parameters $\\theta_D = \\{w_2, b_2\\}$, derive the gradients for $w_1$ and $w_0$ by maximizing $\\log p(y=0)$. Show the process.\n\n")
	s.WriteString(handIn("$h_0$, $h_1$, $h_2$ and $a$",
		"$\\partial \\log p(y=0) / \\partial w_1$ and $\\partial \\log p(y=0) / \\partial w_0$ (the direction that increases $\\log p(y=0)$)",
		fmt.Sprintf("$h_1$ as %d %s of %d rows, $h_2$ as 1 channel of %d rows, $w_1$ as %d input %s of 1 output channel of %d rows", ch, chWord, side, out, ch, chWord, k)))
	return []byte(y.String()), s.String()
}

// ganDeconvFormula is the sheet's index form of the transposed
// convolution under the pytorch kernel reading at stride 1 without
// padding (solve.DeconvIndexFormula with s = 1, p = 0, as a gather), with
// u_2 the pre-activation Deconv(h1, w1) + b1 of h2 = ReLU(u2). The tests
// evaluate it.
const ganDeconvFormula = "$$\nu_2[m, n] = b_1[m, n] + \\sum_{c} \\sum_{i + k - 1 = m,\\ j + l - 1 = n} h_1[c, i, j]\\, w_1^{c}[k, l], \\qquad h_2 = \\mathrm{ReLU}(u_2),\n$$"

// aeSize is the shape of a Problem 2 variant: input and hidden lengths.
type aeSize struct{ n, m int }

// aeSizes are the worked example's sizes, or drawn ones with VarySizes.
func aeSizes(o Options, d *drawer) aeSize {
	sz := aeSize{n: 4, m: 3}
	if o.VarySizes {
		sz.n = 3 + d.r.IntN(3)
		sz.m = 2 + d.r.IntN(3)
	}
	return sz
}

// aeAsk is what a Problem 2 sheet asks for: the forward values of task 2,
// the gradients of task 3.
const aeAsk = "ask: {forward: [h, \"x'\", L], gradients: [w1, b1, w2, b2]}"

// autoencoder draws a variant of Problem 2 with small numbers: x from
// [0.1, 0.9], weights from [−0.5, 0.5] (nonzero), biases from [−0.2, 0.2].
func autoencoder(o Options, d *drawer, index int, sz aeSize) ([]byte, string) {
	n, m := sz.n, sz.m
	x := d.fill(n, 0.1, 0.9, true)
	w1 := d.fill(n*m, -0.5, 0.5, true)
	b1 := d.fill(m, -0.2, 0.2, false)
	w2 := d.fill(m*n, -0.5, 0.5, true)
	b2 := d.fill(n, -0.2, 0.2, false)

	var y strings.Builder
	fmt.Fprintf(&y, "# Problem 2, variant %d (backprop variant %s): an auto-encoder\n", index, command(o))
	y.WriteString("#   h  = ReLU(w1ᵀ x + b1)\n#   x' = σ(w2ᵀ h + b2)\n")
	y.WriteString("# trained by minimizing the reconstruction error L = Σᵢ (xᵢ − x'ᵢ)².\n")
	fmt.Fprintf(&y, "title: \"Problem 2, variant %d (seed %d): an auto-encoder\"\n\n", index, o.Seed)
	fmt.Fprintf(&y, "input:\n  name: x\n  value: %s\n\n", d.list(x, []int{n}))
	y.WriteString("layers:\n")
	y.WriteString("  - {type: linear, name: h,  weight: w1, bias: b1, transpose: true, activation: relu,    preactivation: u1}\n")
	y.WriteString("  - {type: linear, name: \"x'\", weight: w2, bias: b2, transpose: true, activation: sigmoid, preactivation: u2}\n\n")
	y.WriteString("objective: {type: sse}   # minimize L = Σ (x − x')²\n")
	y.WriteString("# what the sheet asks for\n" + aeAsk + "\n\nparams:\n")
	y.WriteString(d.matrixYAML("w1", w1, n, m))
	fmt.Fprintf(&y, "  b1: %s\n", d.list(b1, []int{m}))
	y.WriteString(d.matrixYAML("w2", w2, m, n))
	fmt.Fprintf(&y, "  b2: %s\n", d.list(b2, []int{n}))

	var s strings.Builder
	fmt.Fprintf(&s, "# Problem 2, variant %d: auto-encoder\n\n", index)
	fmt.Fprintf(&s, "*Seed %d, variant %d. Give every number to at least 4 significant digits; indices start at 1.*\n\n", o.Seed, index)
	s.WriteString("Encoder and decoder, with the pre-activations $u_1$ and $u_2$ named:\n\n")
	s.WriteString("$$\nu_1 = w_1^\\top x + b_1, \\quad h = \\mathrm{ReLU}(u_1), \\qquad u_2 = w_2^\\top h + b_2, \\quad x' = \\sigma(u_2)\n$$\n\n")
	s.WriteString("trained by minimizing the reconstruction error\n\n")
	fmt.Fprintf(&s, "$$\nL = \\sum_{i=1}^{d} (x_i - x'_i)^2, \\qquad w_1, w_2 = \\arg\\min_{w_1, w_2} L \\qquad (d = %d, \\text{ the length of } x)\n$$\n\n", n)
	fmt.Fprintf(&s, "with the input $x = %s^\\top$, $w_1$ ($%d \\times %d$), $b_1$ ($%d$), $w_2$ ($%d \\times %d$) and $b_2$ ($%d$):\n\n", texTuple(d, x), n, m, m, m, n, n)
	fmt.Fprintf(&s, "$$\nw_1 = %s, \\qquad b_1 = %s\n$$\n\n", texMatrix(d, w1, n, m), texMatrix(d, b1, m, 1))
	fmt.Fprintf(&s, "$$\nw_2 = %s, \\qquad b_2 = %s\n$$\n\n", texMatrix(d, w2, m, n), texMatrix(d, b2, n, 1))
	s.WriteString("## Tasks\n\n")
	s.WriteString("1. Derive the gradient equations for $w_1$, $b_1$, $w_2$ and $b_2$ by minimizing the reconstruction error above.\n")
	s.WriteString("2. With the numbers above, compute $h$, $x'$ and the reconstruction error $L$.\n")
	s.WriteString("3. Evaluate your equations: give $\\partial L / \\partial w_1$, $\\partial L / \\partial b_1$, $\\partial L / \\partial w_2$ and $\\partial L / \\partial b_2$.\n\n")
	s.WriteString(handIn("$h$, $x'$ and $L$",
		"$\\partial L / \\partial w_1$, $\\partial L / \\partial b_1$, $\\partial L / \\partial w_2$ and $\\partial L / \\partial b_2$",
		fmt.Sprintf("$w_1$ as %d rows of %d, $w_2$ as %d rows of %d", n, m, m, n)))
	return []byte(y.String()), s.String()
}

// handIn is the sheet's last section: what goes where in the template.
func handIn(forward, gradients, shapes string) string {
	return "## Handing in your numbers\n\n" +
		"Write your numbers into a copy of `answers-template.json`: replace a `null` by your value, and leave `null` what you do not answer. " +
		"`forward` holds " + forward + ", `gradients` holds " + gradients + ", each nested as in the template (" + shapes + ").\n"
}
