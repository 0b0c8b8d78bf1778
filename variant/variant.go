// Package variant makes randomized versions of the problem set's two
// problems for a class: the tiny GAN of Problem 1 and the auto-encoder of
// Problem 2, with weights drawn at a chosen decimal precision (one decimal,
// like the seed) and, optionally, different sizes. Each variant comes with
// a student sheet, a template for the student's numbers, and an answer key
// that `backprop grade` checks answers against: the numbers of `backprop
// solve --format json`, every element of every step of the worked trace
// with its label (h0[1], ∂J/∂w0[1,2]) and the full worked solution.
//
// Generation is deterministic: a variant depends only on the seed, its
// problem and its number (not on how many variants are made), through
// math/rand/v2's PCG generator, and every file is written byte for byte the
// same for the same options.
package variant

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"

	"github.com/backprop-dev/backprop/expr"
	"github.com/backprop-dev/backprop/solve"
	"github.com/backprop-dev/backprop/spec"
	"github.com/backprop-dev/backprop/tensor"
	"github.com/backprop-dev/backprop/trace"
)

// KeyFormat is the version of the key.json layout.
const KeyFormat = 1

// Options choose what Generate makes.
type Options struct {
	Seed      uint64
	Count     int    // variants per problem, 1 to 999
	Problem   string // "gan", "autoencoder" or "both"
	Precision int    // decimals of every drawn number, 1 to 4
	// VarySizes draws the sizes too: the GAN's z length (2–3), channels
	// (1–3), kernel size (2–3); the auto-encoder's input (3–5) and hidden
	// (2–4) sizes. Otherwise the seed's sizes are kept.
	VarySizes bool
	// Signed draws the GAN's weights from both signs (the seed's are all
	// positive), so that some ReLUs are off and their gradients zero.
	Signed bool
}

// Variant is one generated problem: its files' contents.
type Variant struct {
	Name     string // directory name, e.g. "gan-03"
	Problem  string // "gan" or "autoencoder"
	Index    int    // 1-based number among the variants of its problem
	Spec     []byte // the network in the spec format (YAML)
	Sheet    []byte // the student sheet (Markdown with LaTeX)
	Template []byte // answers-template.json: the key's shape, every number null
	Key      []byte // key.json
	Solution []byte // the worked solution (Markdown), as `backprop solve --format markdown`
}

// Check validates the options.
func (o Options) Check() error {
	switch o.Problem {
	case "gan", "autoencoder", "both":
	default:
		return fmt.Errorf("problem: want gan, autoencoder or both, got %q", o.Problem)
	}
	if o.Count < 1 || o.Count > 999 {
		return fmt.Errorf("count: want 1 to 999, got %d", o.Count)
	}
	if o.Precision < 1 || o.Precision > 4 {
		return fmt.Errorf("precision: want 1 to 4 decimals, got %d", o.Precision)
	}
	return nil
}

// Generate makes the variants: for "both", all GAN variants first.
func Generate(o Options) ([]Variant, error) {
	if err := o.Check(); err != nil {
		return nil, err
	}
	var problems []string
	switch o.Problem {
	case "both":
		problems = []string{"gan", "autoencoder"}
	default:
		problems = []string{o.Problem}
	}
	var out []Variant
	for _, p := range problems {
		for i := 1; i <= o.Count; i++ {
			v, err := generate(o, p, i)
			if err != nil {
				return nil, fmt.Errorf("%s variant %d: %w", p, i, err)
			}
			out = append(out, v)
		}
	}
	return out, nil
}

// stream numbers keep the problems' random streams apart.
var stream = map[string]uint64{"gan": 1 << 32, "autoencoder": 2 << 32}

// drawer draws numbers k/10^p, as text and value.
type drawer struct {
	r     *rand.Rand
	prec  int
	scale int
}

// num draws a number in [lo, hi] (in units of 10^-prec), never zero when
// nonzero is set.
func (d *drawer) num(lo, hi float64, nonzero bool) float64 {
	a, b := int(lo*float64(d.scale)), int(hi*float64(d.scale))
	for {
		k := a + d.r.IntN(b-a+1)
		if k != 0 || !nonzero {
			return float64(k) / float64(d.scale)
		}
	}
}

func (d *drawer) fill(n int, lo, hi float64, nonzero bool) []float64 {
	out := make([]float64, n)
	for i := range out {
		out[i] = d.num(lo, hi, nonzero)
	}
	return out
}

// format writes v with exactly the drawer's decimals.
func (d *drawer) format(v float64) string { return strconv.FormatFloat(v, 'f', d.prec, 64) }

// list writes a nested YAML/JSON list of data in shape.
func (d *drawer) list(data []float64, shape []int) string {
	if len(shape) == 0 {
		return d.format(data[0])
	}
	var b strings.Builder
	var rec func(off int, dims []int)
	rec = func(off int, dims []int) {
		b.WriteString("[")
		step := tensor.NumElements(dims[1:])
		for i := range dims[0] {
			if i > 0 {
				b.WriteString(", ")
			}
			if len(dims) == 1 {
				b.WriteString(d.format(data[off+i]))
			} else {
				rec(off+i*step, dims[1:])
			}
		}
		b.WriteString("]")
	}
	rec(0, shape)
	return b.String()
}

// matrixYAML writes a 2-D list one row per line, aligned under the key.
func (d *drawer) matrixYAML(key string, data []float64, rows, cols int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "  %s: [", key)
	pad := strings.Repeat(" ", len(key)+5)
	for i := range rows {
		if i > 0 {
			b.WriteString(",\n" + pad)
		}
		b.WriteString(d.list(data[i*cols:(i+1)*cols], []int{cols}))
	}
	b.WriteString("]\n")
	return b.String()
}

// kernelsYAML writes a [ch][1][k][k] deconv weight one kernel row per line.
func (d *drawer) kernelsYAML(key string, data []float64, ch, k int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "  %s: [", key)
	pad := strings.Repeat(" ", len(key)+4)
	for c := range ch {
		if c > 0 {
			b.WriteString(",\n" + pad + " ")
		}
		b.WriteString("[[")
		for i := range k {
			if i > 0 {
				b.WriteString(",\n" + pad + "    ")
			}
			b.WriteString(d.list(data[(c*k+i)*k:(c*k+i+1)*k], []int{k}))
		}
		b.WriteString("]]")
	}
	b.WriteString("]\n")
	return b.String()
}

func generate(o Options, problem string, index int) (Variant, error) {
	d := &drawer{r: rand.New(rand.NewPCG(o.Seed, stream[problem]+uint64(index))), prec: o.Precision, scale: pow10(o.Precision)}
	v := Variant{Name: fmt.Sprintf("%s-%02d", problem, index), Problem: problem, Index: index}
	var sheet string
	switch problem {
	case "gan":
		v.Spec, sheet = gan(o, d, index)
	case "autoencoder":
		v.Spec, sheet = autoencoder(o, d, index)
	}
	s, err := spec.Parse(v.Name+"/key/spec.yaml", v.Spec)
	if err != nil {
		return v, fmt.Errorf("generated spec does not parse: %w", err)
	}
	sol, err := solve.Solve(s, solve.Options{})
	if err != nil {
		return v, err
	}
	var md bytes.Buffer
	if err := sol.WriteMarkdown(&md); err != nil {
		return v, err
	}
	v.Solution = md.Bytes()
	v.Key, v.Template, err = key(o, v, sol)
	if err != nil {
		return v, err
	}
	v.Sheet = []byte(sheet)
	return v, nil
}

func pow10(n int) int {
	p := 1
	for range n {
		p *= 10
	}
	return p
}

// gan draws a variant of Problem 1.
func gan(o Options, d *drawer, index int) ([]byte, string) {
	nz, ch, side, k := 2, 2, 2, 3
	if o.VarySizes {
		nz = 2 + d.r.IntN(2)
		ch = 1 + d.r.IntN(3)
		k = 2 + d.r.IntN(2)
		if ch == 1 && d.r.IntN(2) == 0 {
			side = 3
		}
	}
	nh := ch * side * side
	out := side + k - 1
	lo, hi := 0.1, 0.9
	if o.Signed {
		lo = -0.9
	}
	z := d.fill(nz, 0.1, 0.9, true)
	w0 := d.fill(nh*nz, lo, hi, true)
	b0 := d.fill(nh, lo, hi, true)
	w1 := d.fill(ch*k*k, lo, hi, true)
	b1 := d.fill(out*out, lo, hi, true)
	w2 := d.fill(out*out, lo, hi, true)
	b2 := d.num(lo, hi, true)

	var y strings.Builder
	fmt.Fprintf(&y, "# Problem 1, variant %d (backprop variant --seed %d, precision %d): a tiny GAN.\n", index, o.Seed, o.Precision)
	fmt.Fprintf(&y, "# Generator: h0 = ReLU(w0 z + b0), reshape into %d channel(s) of %d×%d (h1),\n", ch, side, side)
	fmt.Fprintf(&y, "# transposed convolution with a %d×%d kernel + ReLU (h2, %d×%d). Discriminator:\n", k, k, out, out)
	fmt.Fprintf(&y, "# p(y=0) = σ(w2ᵀ H2 + b2) on the flattened h2. Objective: maximize log p(y=0).\n")
	fmt.Fprintf(&y, "title: \"Problem 1, variant %d (seed %d): forward and backward propagation for a simple GAN\"\n\n", index, o.Seed)
	y.WriteString("conventions:\n  reshape: row-major\n  kernel: pytorch\n  label: y0\n\n")
	fmt.Fprintf(&y, "input:\n  name: z\n  value: %s\n\n", d.list(z, []int{nz}))
	y.WriteString("layers:\n")
	y.WriteString("  - {type: linear,  name: h0, weight: w0, bias: b0, activation: relu}\n")
	fmt.Fprintf(&y, "  - {type: reshape, name: h1, shape: [%d, %d, %d]}   # channels × height × width\n", ch, side, side)
	y.WriteString("  - {type: deconv,  name: h2, weight: w1, bias: b1, stride: 1, padding: 0, activation: relu}\n")
	y.WriteString("  - {type: flatten, name: H2}\n")
	y.WriteString("  - {type: logistic, name: p, weight: w2, bias: b2}\n\n")
	y.WriteString("objective: {type: log_p}   # maximize log p(y=0)\n\nparams:\n")
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
	fmt.Fprintf(&s, "A $%d \\times %d$ input and a $%d \\times %d$ kernel at stride 1 without padding give the $%d \\times %d$ output: each input pixel adds a copy of its channel's kernel, scaled by the pixel, at its position (as PyTorch's ConvTranspose2d).\n\n", side, side, k, k, out, out)
	s.WriteString("## Binary discriminator\n\n")
	fmt.Fprintf(&s, "$H_2 = \\mathrm{Flatten}(h_2) \\in \\mathbb{R}^{%d \\times 1}$ (row by row)\n\n", out*out)
	fmt.Fprintf(&s, "$p(y=0) = \\sigma(w_2^\\top H_2 + b_2)$, with\n\n$$\nw_2 = %s^\\top, \\qquad b_2 = %s\n$$\n\n", texTuple(d, w2), d.format(b2))
	s.WriteString("## Tasks\n\n")
	s.WriteString("1. Using the forward propagation equations and the initial weights, produce the values of $h_0$, $h_1$ and $h_2$ from the given $z$.\n")
	s.WriteString("2. Given the logistic-regression discriminator parameters $\\theta_D = \\{w_2, b_2\\}$, derive the gradients for $w_1$ and $w_0$ by maximizing $\\log p(y=0)$. Show the process.\n\n")
	s.WriteString(handIn)
	return []byte(y.String()), s.String()
}

// autoencoder draws a variant of Problem 2 with small numbers.
func autoencoder(o Options, d *drawer, index int) ([]byte, string) {
	n, m := 4, 3
	if o.VarySizes {
		n = 3 + d.r.IntN(3)
		m = 2 + d.r.IntN(3)
	}
	x := d.fill(n, 0.1, 0.9, true)
	w1 := d.fill(n*m, -0.5, 0.5, true)
	b1 := d.fill(m, -0.2, 0.2, false)
	w2 := d.fill(m*n, -0.5, 0.5, true)
	b2 := d.fill(n, -0.2, 0.2, false)

	var y strings.Builder
	fmt.Fprintf(&y, "# Problem 2, variant %d (backprop variant --seed %d, precision %d): an auto-encoder\n", index, o.Seed, o.Precision)
	y.WriteString("#   h  = ReLU(w1ᵀ x + b1)\n#   x' = σ(w2ᵀ h + b2)\n")
	y.WriteString("# trained by minimizing the reconstruction error L = Σᵢ (xᵢ − x'ᵢ)².\n")
	fmt.Fprintf(&y, "title: \"Problem 2, variant %d (seed %d): an auto-encoder\"\n\n", index, o.Seed)
	fmt.Fprintf(&y, "input:\n  name: x\n  value: %s\n\n", d.list(x, []int{n}))
	y.WriteString("layers:\n")
	y.WriteString("  - {type: linear, name: h,  weight: w1, bias: b1, transpose: true, activation: relu,    preactivation: u1}\n")
	y.WriteString("  - {type: linear, name: \"x'\", weight: w2, bias: b2, transpose: true, activation: sigmoid, preactivation: u2}\n\n")
	y.WriteString("objective: {type: sse}   # minimize L = Σ (x − x')²\n\nparams:\n")
	y.WriteString(d.matrixYAML("w1", w1, n, m))
	fmt.Fprintf(&y, "  b1: %s\n", d.list(b1, []int{m}))
	y.WriteString(d.matrixYAML("w2", w2, m, n))
	fmt.Fprintf(&y, "  b2: %s\n", d.list(b2, []int{n}))

	var s strings.Builder
	fmt.Fprintf(&s, "# Problem 2, variant %d: auto-encoder\n\n", index)
	fmt.Fprintf(&s, "*Seed %d, variant %d. Give every number to at least 4 significant digits; indices start at 1.*\n\n", o.Seed, index)
	s.WriteString("Encoder and decoder:\n\n$$\nh = \\mathrm{ReLU}(w_1^\\top x + b_1), \\qquad x' = \\sigma(w_2^\\top h + b_2)\n$$\n\n")
	fmt.Fprintf(&s, "$$\nw_1, w_2 = \\arg\\min_{w_1, w_2} \\sum_{i=1}^{N} (x_i - x'_i)^2 \\qquad (N = %d)\n$$\n\n", n)
	fmt.Fprintf(&s, "with the input $x = %s^\\top$, $w_1$ ($%d \\times %d$), $b_1$ ($%d$), $w_2$ ($%d \\times %d$) and $b_2$ ($%d$):\n\n", texTuple(d, x), n, m, m, m, n, n)
	fmt.Fprintf(&s, "$$\nw_1 = %s, \\qquad b_1 = %s\n$$\n\n", texMatrix(d, w1, n, m), texMatrix(d, b1, m, 1))
	fmt.Fprintf(&s, "$$\nw_2 = %s, \\qquad b_2 = %s\n$$\n\n", texMatrix(d, w2, m, n), texMatrix(d, b2, n, 1))
	s.WriteString("## Tasks\n\n")
	s.WriteString("1. Derive the gradient equations for $w_1$ and $w_2$ by minimizing the reconstruction error above.\n")
	s.WriteString("2. With the numbers above, compute $h$, $x'$ and the reconstruction error $L$.\n")
	s.WriteString("3. Evaluate your equations: give $\\partial L / \\partial w_1$, $\\partial L / \\partial b_1$, $\\partial L / \\partial w_2$ and $\\partial L / \\partial b_2$.\n\n")
	s.WriteString(handIn)
	return []byte(y.String()), s.String()
}

const handIn = "## Handing in your numbers\n\n" +
	"Write your numbers into a copy of `answers-template.json`: replace a `null` by your value, and leave `null` what you do not answer. " +
	"`forward` holds the values of the forward pass, `gradients` the gradient of the objective with respect to each parameter, in the shapes given above.\n"

func texTuple(d *drawer, v []float64) string {
	parts := make([]string, len(v))
	for i, x := range v {
		parts[i] = d.format(x)
	}
	return "(" + strings.Join(parts, ", ") + ")"
}

func texMatrix(d *drawer, v []float64, rows, cols int) string {
	var b strings.Builder
	b.WriteString(`\begin{bmatrix} `)
	for i := range rows {
		if i > 0 {
			b.WriteString(` \\ `)
		}
		for j := range cols {
			if j > 0 {
				b.WriteString(" & ")
			}
			b.WriteString(d.format(v[i*cols+j]))
		}
	}
	b.WriteString(` \end{bmatrix}`)
	return b.String()
}

// KeyStep is one step of the worked trace in the key.
type KeyStep struct {
	Pass    string `json:"pass"` // "forward" or "backward"
	Step    int    `json:"step"` // 1-based within its pass, as `backprop solve` numbers it
	Target  string `json:"target"`
	Formula string `json:"formula"`
	// Answer is where a student's answers file holds this step's values:
	// "forward.h0" or "gradients.w0"; empty when it holds none.
	Answer   string       `json:"answer,omitempty"`
	Shape    []int        `json:"shape"`
	Elements []KeyElement `json:"elements"`
}

// KeyElement is one element of a step: its label in the trace, its value
// and the worked line that computes it.
type KeyElement struct {
	Label string  `json:"label"`
	Value float64 `json:"value"`
	Line  string  `json:"line,omitempty"`
}

// key builds key.json and answers-template.json.
func key(o Options, v Variant, sol *solve.Solution) ([]byte, []byte, error) {
	var js bytes.Buffer
	if err := sol.WriteJSON(&js); err != nil {
		return nil, nil, err
	}
	var nums struct {
		Forward   json.RawMessage `json:"forward"`
		Gradients json.RawMessage `json:"gradients"`
	}
	if err := json.Unmarshal(js.Bytes(), &nums); err != nil {
		return nil, nil, err
	}
	forward, gradients := map[string]bool{}, map[string]bool{}
	for _, f := range sol.Forward {
		forward[f.Name] = true
	}
	for _, g := range sol.Gradients {
		gradients[g.Name] = true
	}
	var steps []KeyStep
	add := func(pass string, list []trace.Step) {
		for i, st := range list {
			ks := KeyStep{Pass: pass, Step: i + 1, Target: expr.String(st.Target), Formula: expr.String(st.Formula), Shape: st.Value.Shape}
			if ks.Shape == nil {
				ks.Shape = []int{}
			}
			switch t := st.Target.(type) {
			case expr.Ref:
				if pass == "forward" && forward[t.Name] {
					ks.Answer = "forward." + t.Name
				}
			case expr.Grad:
				if gradients[t.Wrt.Name] {
					ks.Answer = "gradients." + t.Wrt.Name
				}
			}
			text := stepLines(st, sol)
			for k, val := range st.Value.Data {
				e := KeyElement{Value: val}
				if k < len(st.Lines) {
					e.Label = expr.String(st.Lines[k].Target)
					if k < len(text) {
						e.Line = text[k]
					}
				} else {
					e.Label = elementLabel(ks.Target, st.Value.Shape, k)
				}
				ks.Elements = append(ks.Elements, e)
			}
			steps = append(steps, ks)
		}
	}
	add("forward", sol.Trace.Forward)
	add("backward", sol.Trace.Backward)

	var b bytes.Buffer
	field := func(name string, v any, last bool) error {
		raw, err := marshal(v)
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "  %q: %s", name, raw)
		if !last {
			b.WriteString(",")
		}
		b.WriteString("\n")
		return nil
	}
	b.WriteString("{\n")
	meta := []struct {
		k string
		v any
	}{
		{"backprop_key", KeyFormat}, {"variant", v.Name}, {"problem", v.Problem}, {"index", v.Index},
		{"seed", o.Seed}, {"precision", o.Precision}, {"title", sol.Spec.Title},
		{"conventions", sol.Spec.Conventions}, {"objective", sol.Spec.Objective.Type},
	}
	for _, m := range meta {
		if err := field(m.k, m.v, false); err != nil {
			return nil, nil, err
		}
	}
	fmt.Fprintf(&b, "  \"forward\": %s,\n", indentRaw(nums.Forward))
	fmt.Fprintf(&b, "  \"gradients\": %s,\n", indentRaw(nums.Gradients))
	b.WriteString("  \"steps\": [\n")
	for i, st := range steps {
		raw, err := marshal(st)
		if err != nil {
			return nil, nil, err
		}
		b.WriteString("    ")
		b.Write(raw)
		if i < len(steps)-1 {
			b.WriteString(",")
		}
		b.WriteString("\n")
	}
	b.WriteString("  ],\n")
	if err := field("spec", string(v.Spec), true); err != nil {
		return nil, nil, err
	}
	b.WriteString("}\n")

	var t bytes.Buffer
	t.WriteString("{\n  \"variant\": ")
	name, _ := marshal(v.Name)
	t.Write(name)
	t.WriteString(",\n  \"forward\": {")
	for i, f := range sol.Forward {
		writeNull(&t, f.Name, f.Value.Shape, i == 0)
	}
	t.WriteString("\n  },\n  \"gradients\": {")
	for i, g := range sol.Gradients {
		writeNull(&t, g.Name, g.Value.Shape, i == 0)
	}
	t.WriteString("\n  }\n}\n")
	return b.Bytes(), t.Bytes(), nil
}

// stepLines are the step's element lines as `backprop solve` prints them.
func stepLines(st trace.Step, sol *solve.Solution) []string {
	if len(st.Lines) == 0 {
		return nil
	}
	var txt bytes.Buffer
	one := &trace.Trace{Forward: []trace.Step{st}}
	if err := one.WriteText(&txt, trace.Header{}, 0); err != nil {
		return nil
	}
	lines := strings.Split(txt.String(), "\n")
	for i, l := range lines {
		if !strings.HasPrefix(l, "[1] ") {
			continue
		}
		j := i + 1
		if st.Note != "" {
			j++
		}
		var out []string
		for k := 0; k < len(st.Lines) && j+k < len(lines); k++ {
			out = append(out, strings.TrimSpace(lines[j+k]))
		}
		return out
	}
	return nil
}

// elementLabel names element k of a tensor, 1-based: h0[3], ∂J/∂w1[1,1,2,3].
func elementLabel(target string, shape []int, k int) string {
	if len(shape) == 0 {
		return target
	}
	idx := tensor.Index(shape, k)
	parts := make([]string, len(idx))
	for i, x := range idx {
		parts[i] = strconv.Itoa(x + 1)
	}
	return target + "[" + strings.Join(parts, ",") + "]"
}

func writeNull(b *bytes.Buffer, name string, shape []int, first bool) {
	if !first {
		b.WriteString(",")
	}
	k, _ := marshal(name)
	fmt.Fprintf(b, "\n    %s: %s", k, nulls(shape))
}

func nulls(shape []int) string {
	if len(shape) == 0 {
		return "null"
	}
	inner := nulls(shape[1:])
	parts := make([]string, shape[0])
	for i := range parts {
		parts[i] = inner
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// marshal is json.Marshal without HTML escaping (formulas contain < and >).
func marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(b.Bytes(), "\n"), nil
}

// indentRaw is an object of `solve --format json`, already indented for
// its place in the key.
func indentRaw(raw json.RawMessage) string { return strings.TrimSpace(string(raw)) }
