package derive

import (
	"bytes"
	"errors"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/backprop-dev/backprop/autograd"
	"github.com/backprop-dev/backprop/spec"
)

func autogradBackward(m *spec.Model[float64]) error { return autograd.Backward(m.Objective) }

func load(t *testing.T, name string) *spec.Spec {
	t.Helper()
	s, err := spec.ReadFile("../examples/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestAutoencoderTextbook checks that the walk of Problem 2's graph gives
// the textbook equations, in both forms.
func TestAutoencoderTextbook(t *testing.T) {
	s := load(t, "autoencoder.yaml")
	want := map[int][]string{
		0: {
			"∂L/∂x' = 2·(x' - x)",
			"δ2 = ∂L/∂u2 = ∂L/∂x' ⊙ x' ⊙ (1 - x') = 2·(x' - x) ⊙ x' ⊙ (1 - x')",
			"∂L/∂w2 = h·δ2ᵀ",
			"∂L/∂b2 = δ2",
			"∂L/∂h = w2·δ2",
			"δ1 = ∂L/∂u1 = ∂L/∂h ⊙ 1[u1 > 0] = (w2·δ2) ⊙ 1[u1 > 0]",
			"∂L/∂w1 = x·δ1ᵀ",
			"∂L/∂b1 = δ1",
		},
		3: {
			"U1 = X·w1 + 1_N·b1ᵀ    ∈ ℝ^(N×3)",
			"U2 = H·w2 + 1_N·b2ᵀ    ∈ ℝ^(N×4)",
			"L = Σ_n Σ_i (X'[n,i] - X[n,i])²    ∈ ℝ",
			"Δ2 = ∂L/∂U2 = ∂L/∂X' ⊙ X' ⊙ (1 - X') = 2·(X' - X) ⊙ X' ⊙ (1 - X')",
			"∂L/∂w2 = Hᵀ·Δ2",
			"∂L/∂b2 = Δ2ᵀ·1_N    ∈ ℝ^(4)",
			"∂L/∂b1 = Δ1ᵀ·1_N    ∈ ℝ^(3)",
			"Δ1 = ∂L/∂U1 = ∂L/∂H ⊙ 1[U1 > 0] = (Δ2·w2ᵀ) ⊙ 1[U1 > 0]",
			"∂L/∂w1 = Xᵀ·Δ1",
			"∂L/∂w1 = Xᵀ·Δ1    ∈ ℝ^(4×3)",
			"Δ1 = ∂L/∂U1 = ∂L/∂H ⊙ 1[U1 > 0] = (Δ2·w2ᵀ) ⊙ 1[U1 > 0]    ∈ ℝ^(N×3)",
		},
	}
	for n, lines := range want {
		d, _, err := Spec(s, n)
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		if err := d.WriteText(&b); err != nil {
			t.Fatal(err)
		}
		for _, l := range lines {
			if !strings.Contains(b.String(), l) {
				t.Errorf("batch %d: missing %q in\n%s", n, l, b.String())
			}
		}
	}
	d, _, _ := Spec(s, 0)
	var md bytes.Buffer
	if err := d.WriteMarkdown(&md); err != nil {
		t.Fatal(err)
	}
	for _, l := range []string{"\\delta_{2} &= \\frac{\\partial L}{\\partial u_{2}} &&\\in \\mathbb{R}^{4}\\\\\n&= \\frac{\\partial L}{\\partial x'} \\odot", `2 \cdot \left(x' - x\right) \odot x' \odot \left(1 - x'\right)`, `\mathbb{1}\left[u_{1} > 0\right]`} {
		if !strings.Contains(md.String(), l) {
			t.Errorf("markdown lacks %q:\n%s", l, md.String())
		}
	}
}

func checkAll(t *testing.T, s *spec.Spec) {
	t.Helper()
	for _, n := range []int{0, 3} {
		res, err := Check(s, n, rand.New(rand.NewPCG(1, uint64(n))))
		var declined *DeclinedError
		if n > 0 && errors.As(err, &declined) {
			if want := declineReason(s); !strings.Contains(declined.Reason, want) {
				t.Errorf("batched form declined for the wrong reason (want %q): %s", want, declined.Reason)
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		params := 0
		for _, r := range res {
			if r.VsAutodiff > 1e-12 {
				t.Errorf("batch %d: %s differs from autodiff by %.3g", n, r.Name, r.VsAutodiff)
			}
			if r.Param {
				params++
				if r.VsFiniteDiff > 1e-6 {
					t.Errorf("batch %d: %s differs from finite differences by %.3g", n, r.Name, r.VsFiniteDiff)
				}
			}
		}
		if params != len(s.ParamOrder) {
			t.Errorf("batch %d: %d parameter gradients checked, want %d", n, params, len(s.ParamOrder))
		}
	}
}

// declineReason is what the sentence declining s's batched form must say:
// that the input is already a batch, that its rows are a sequence's time
// steps or tokens, that a matmul multiplies whole matrices, or that its
// labels name one sample.
func declineReason(s *spec.Spec) string {
	if s.Batched() {
		return "is already a batch"
	}
	kinds := map[string]bool{}
	for _, l := range s.Layers {
		kinds[l.Type] = true
	}
	switch {
	case kinds["rnn"] || kinds["lstm"] || kinds["gru"]:
		return "are the time steps of one sequence"
	case kinds["attention"]:
		return "are the tokens of one sequence"
	case kinds["embedding"]:
		return "are the positions of one sequence"
	case kinds["matmul"]:
		return "multiplies whole matrices"
	}
	return "name the class"
}

func TestCheckAutoencoder(t *testing.T) { checkAll(t, load(t, "autoencoder.yaml")) }
func TestCheckGAN(t *testing.T)         { checkAll(t, load(t, "problem1.yaml")) }

// TestCheckOtherSpecs runs the check over every spec of the reference
// suite: strides, padding, output padding, several channels, conventions,
// and the course's layer families (softmax and cross-entropy, pooling,
// batch and layer norm, dropout, residual and shared weights, weight
// decay), natively batched or not.
func TestCheckOtherSpecs(t *testing.T) {
	files, _ := os.ReadDir("../solve/testdata/specs")
	for _, f := range files {
		if !strings.HasSuffix(f.Name(), ".yaml") {
			continue
		}
		t.Run(f.Name(), func(t *testing.T) {
			s, err := spec.ReadFile("../solve/testdata/specs/" + f.Name())
			if err != nil {
				t.Fatal(err)
			}
			checkAll(t, s)
		})
	}
}

// TestCheckBank runs the check over every problem of the bank
// (examples/*.yaml): every derived equation evaluates and agrees with
// autodiff and finite differences.
func TestCheckBank(t *testing.T) {
	files, err := filepath.Glob("../examples/*.yaml")
	if err != nil || len(files) < 17 {
		t.Fatalf("the bank has %d problems (%v), want at least 17", len(files), err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			s := load(t, filepath.Base(f))
			checkAll(t, s)
			for _, format := range []string{"text", "markdown", "json"} {
				if err := Write(io.Discard, s, format, Options{}); err != nil {
					t.Errorf("%s: %v", format, err)
				}
			}
		})
	}
}

// TestBatchedFormDeclined: a spec whose input is already a batch, or whose
// labels name one sample, gets its own form and a sentence in place of the
// form batched over N, in every format, and no error.
func TestBatchedFormDeclined(t *testing.T) {
	for name, want := range map[string]string{
		"batchnorm.yaml":         "is already a batch of 4 samples",
		"weight-decay.yaml":      "The labels y name the class",
		"lstm.yaml":              "The rows of x are the time steps of one sequence, which the lstm layer h reads in order",
		"attention.yaml":         "The rows of x are the tokens of one sequence, which the attention layer y mixes",
		"next-token.yaml":        "The rows of e are the tokens of one sequence",
		"transformer-block.yaml": "The rows of n1 are the tokens of one sequence",
	} {
		s := load(t, name)
		for _, format := range []string{"text", "markdown", "json"} {
			for _, opt := range []Options{{}, {Batched: true}} {
				var b bytes.Buffer
				if err := Write(&b, s, format, opt); err != nil {
					t.Fatalf("%s %s %+v: %v", name, format, opt, err)
				}
				if !strings.Contains(b.String(), want) {
					t.Errorf("%s %s %+v: no sentence %q in\n%s", name, format, opt, want, b.String())
				}
				if !strings.Contains(b.String(), "∂L/∂") && !strings.Contains(b.String(), "∂J/∂") && format != "markdown" {
					t.Errorf("%s %s %+v: no equations", name, format, opt)
				}
			}
		}
		if _, _, err := Spec(s, BatchSize); err == nil {
			t.Errorf("%s: the batched form was derived", name)
		}
	}
}

func TestCheckCatchesAWrongRule(t *testing.T) {
	// a derivation whose equation is wrong must not pass: corrupt one
	// equation and evaluate it against autodiff
	s := load(t, "autoencoder.yaml")
	d, _, err := Spec(s, 0)
	if err != nil {
		t.Fatal(err)
	}
	var w2 Equation
	for _, e := range d.Backward {
		if e.Node == "w2" {
			w2 = e
		}
	}
	for i := range d.Backward {
		if d.Backward[i].Node == "w1" { // x δ1ᵀ replaced by h δ2ᵀ, which has as many elements
			d.Backward[i].Chain = w2.Chain
			d.Backward[i].Expanded = nil
		}
	}
	vals, err := Evaluate(d)
	if err == nil && relDiff(vals["w1"], d.nodes["w1"].Grad) < 1e-3 {
		t.Fatal("a wrong equation evaluated to the right gradient")
	}
}

// builtinOptions are the options `backprop derive` uses for the two
// problems (cmd/backprop/derive.go): Problem 2 in symbolic sizes.
func builtinOptions(name string, s *spec.Spec) Options {
	if name == "autoencoder.yaml" {
		return Options{Symbolic: true, Title: strings.TrimSuffix(s.Title, " (worked example)")}
	}
	return Options{}
}

func document(t *testing.T, name, format string, opt *Options) string {
	t.Helper()
	s := load(t, name)
	o := builtinOptions(name, s)
	if opt != nil {
		o = *opt
	}
	var b bytes.Buffer
	if err := Write(&b, s, format, o); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// TestDocsAreTheCommandsOutput keeps docs/autoencoder.md and
// docs/gan-equations.md exactly what `backprop derive autoencoder
// --format markdown` and `backprop derive gan --format markdown` write.
func TestDocsAreTheCommandsOutput(t *testing.T) {
	for _, c := range []struct{ spec, doc, cmd string }{
		{"autoencoder.yaml", "../docs/autoencoder.md", "autoencoder"},
		{"problem1.yaml", "../docs/gan-equations.md", "gan"},
	} {
		want, err := os.ReadFile(c.doc)
		if err != nil {
			t.Fatal(err)
		}
		if got := document(t, c.spec, "markdown", nil); got != string(want) {
			t.Errorf("%s is stale: regenerate with backprop derive %s --format markdown > %s", c.doc, c.cmd, strings.TrimPrefix(c.doc, "../"))
		}
	}
}

// TestDocLineWidths holds the rule for the derivation documents: prose is
// wrapped at 100 characters (a list item's continuation indented), and
// every row of display math is one aligned row of at most 250 characters,
// so that no equation runs into a 600-character line; a row that would be
// longer is broken into aligned rows by the writer.
func TestDocLineWidths(t *testing.T) {
	for _, doc := range []string{"../docs/autoencoder.md", "../docs/gan-equations.md"} {
		data, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		math := false
		for i, l := range strings.Split(string(data), "\n") {
			if l == "$$" {
				math = !math
				continue
			}
			n := len([]rune(l))
			if math && n > 250 {
				t.Errorf("%s:%d: display-math row of %d characters, want at most 250: %s", doc, i+1, n, l)
			}
			if !math && n > 100 {
				t.Errorf("%s:%d: prose line of %d characters, want at most 100: %s", doc, i+1, n, l)
			}
		}
		if math {
			t.Errorf("%s: unclosed $$ block", doc)
		}
	}
}

// TestAutoencoderSymbolic checks Problem 2 as a course writes it: symbolic
// sizes, the derivative rules with the ReLU convention at 0, the scalar
// chain rule for one weight of each layer (hand-derived lines), the vector
// forms in d and k, the batched forms with explicit broadcasts; and that a
// spec keeps its own numbers.
func TestAutoencoderSymbolic(t *testing.T) {
	txt := document(t, "autoencoder.yaml", "text", nil)
	for _, l := range []string{
		"Sizes: x ∈ ℝ^(d), h ∈ ℝ^(k); w1 ∈ ℝ^(d×k), b1 ∈ ℝ^(k), w2 ∈ ℝ^(k×d), b2 ∈ ℝ^(d); a batch holds N samples.",
		"Objective: L = Σ_i (x'_i − x_i)², the squared error summed over the components i of one sample",
		"  σ′(u) = σ(u)·(1 − σ(u))",
		"  ReLU′(u) = 1[u > 0]: 1 for u > 0, 0 for u ≤ 0 (ReLU has no derivative at u = 0; 0 is the convention there, as in PyTorch)",
		"Chain rule for one weight, per sample (i indexes x' and u2, j indexes h and u1, l indexes x):",
		"  w2[j,i] enters L only through u2_i = Σ_j w2[j,i]·h_j + b2_i:",
		"    ∂L/∂w2[j,i] = ∂L/∂x'_i · ∂x'_i/∂u2_i · ∂u2_i/∂w2[j,i]\n                = 2(x'_i − x_i) · x'_i(1 − x'_i) · h_j = δ2_i·h_j\n",
		"    ∂L/∂w1[l,j] = Σ_i ∂L/∂x'_i · ∂x'_i/∂u2_i · ∂u2_i/∂h_j · ∂h_j/∂u1_j · ∂u1_j/∂w1[l,j]\n" +
			"                = Σ_i 2(x'_i − x_i) · x'_i(1 − x'_i) · w2[j,i] · 1[u1_j > 0] · x_l\n" +
			"                = δ1_j·x_l\n",
		"  with δ2_i = ∂L/∂u2_i = 2(x'_i − x_i)·x'_i(1 − x'_i), and ∂L/∂b2_i = δ2_i",
		"  δ1_j = ∂L/∂u1_j = (Σ_i w2[j,i]·δ2_i)·1[u1_j > 0], and ∂L/∂b1_j = δ1_j",
		"  L = Σ_i (x'_i - x_i)²    ∈ ℝ",
		"  ∂L/∂w2 = h·δ2ᵀ    ∈ ℝ^(k×d)",
		"  ∂L/∂w1 = x·δ1ᵀ    ∈ ℝ^(d×k)",
		"  U1 = X·w1 + 1_N·b1ᵀ    ∈ ℝ^(N×k)",
		"  L = Σ_n Σ_i (X'[n,i] - X[n,i])²    ∈ ℝ",
		"  ∂L/∂b2 = Δ2ᵀ·1_N    ∈ ℝ^(d)",
		"  ∂L/∂w1 = Xᵀ·Δ1    ∈ ℝ^(d×k)",
	} {
		if !strings.Contains(txt, l) {
			t.Errorf("derive autoencoder lacks %q in\n%s", l, txt)
		}
	}
	if strings.Contains(txt, "ℝ^(4") || strings.Contains(txt, "×3)") {
		t.Errorf("symbolic derivation prints a numeric size:\n%s", txt)
	}
	md := document(t, "autoencoder.yaml", "markdown", nil)
	for _, l := range []string{
		`\frac{\partial L}{\partial w_{2}[j,i]} &= \frac{\partial L}{\partial x'_{i}} \cdot \frac{\partial x'_{i}}{\partial u_{2,i}} \cdot \frac{\partial u_{2,i}}{\partial w_{2}[j,i]}\\`,
		`&= 2\left(x'_{i} - x_{i}\right) \cdot x'_{i}\left(1 - x'_{i}\right) \cdot h_{j} = \delta_{2,i}\,h_{j}\\`,
		`U_{1} &= X w_{1} + \mathbf{1}_{N} b_{1}^{\top} &&\in \mathbb{R}^{N\times k}\\`,
		`\frac{\partial L}{\partial b_{2}} &= \Delta_{2}^{\top} \mathbf{1}_{N} &&\in \mathbb{R}^{d}\\`,
	} {
		if !strings.Contains(md, l) {
			t.Errorf("markdown lacks %q", l)
		}
	}
	js := document(t, "autoencoder.yaml", "json", nil)
	for _, l := range []string{`"sizes": "Sizes: x ∈ ℝ^(d)`, `"chain_rule": {`, `"text": "= 2(x'_i − x_i) · x'_i(1 − x'_i) · h_j = δ2_i·h_j"`, `"chain": "Δ2ᵀ·1_N"`} {
		if !strings.Contains(js, l) {
			t.Errorf("json lacks %q", l)
		}
	}
	num := document(t, "autoencoder.yaml", "text", &Options{})
	for _, l := range []string{"  ∂L/∂w1 = x·δ1ᵀ    ∈ ℝ^(4×3)", "  U1 = X·w1 + 1_N·b1ᵀ    ∈ ℝ^(N×3)", "    ∂L/∂w2[j,i] = "} {
		if !strings.Contains(num, l) {
			t.Errorf("derive --spec examples/autoencoder.yaml lacks %q", l)
		}
	}
	if strings.Contains(num, "Sizes:") {
		t.Error("a spec's derivation states symbolic sizes")
	}
}

// TestScalarChainRuleValues evaluates the printed scalar chain rule by hand
// at the example's numbers, element by element, against autodiff:
// ∂L/∂w2[j,i] = 2(x'_i − x_i)·x'_i(1 − x'_i)·h_j and
// ∂L/∂w1[l,j] = Σ_i 2(x'_i − x_i)·x'_i(1 − x'_i)·w2[j,i]·1[u1_j > 0]·x_l.
func TestScalarChainRuleValues(t *testing.T) {
	s := load(t, "autoencoder.yaml")
	m, err := spec.Build[float64](s)
	if err != nil {
		t.Fatal(err)
	}
	if err := autogradBackward(m); err != nil {
		t.Fatal(err)
	}
	val := func(n string) []float64 { return m.Name[n].Value.Data() }
	x, h, xp, u1, w2 := val("x"), val("h"), val("x'"), val("u1"), val("w2")
	d, k := len(x), len(h)
	gw2, gw1 := m.Name["w2"].Grad.Data(), m.Name["w1"].Grad.Data()
	for j := range k {
		for i := range d {
			want := 2 * (xp[i] - x[i]) * xp[i] * (1 - xp[i]) * h[j]
			if got := gw2[j*d+i]; math.Abs(got-want) > 1e-12 {
				t.Errorf("∂L/∂w2[%d,%d]: chain rule %g, autodiff %g", j+1, i+1, want, got)
			}
		}
	}
	for l := range d {
		for j := range k {
			want := 0.0
			for i := range d {
				relu := 0.0
				if u1[j] > 0 {
					relu = 1
				}
				want += 2 * (xp[i] - x[i]) * xp[i] * (1 - xp[i]) * w2[j*d+i] * relu * x[l]
			}
			if got := gw1[l*k+j]; math.Abs(got-want) > 1e-12 {
				t.Errorf("∂L/∂w1[%d,%d]: chain rule %g, autodiff %g", l+1, j+1, want, got)
			}
		}
	}
}

// TestGANText pins the fixed wording of `derive gan`: the batch axis of a
// reshape is N (not the batch size the graph was built with), the
// per-pixel bias's gradient is reshaped to its 4×4, no scalar is
// transposed or ⊙-multiplied by a ones vector, no stacked name leaks its
// internal _N suffix, and the y1 reading names its logit.
func TestGANText(t *testing.T) {
	txt := document(t, "problem1.yaml", "text", nil)
	for _, l := range []string{
		"  ∂J/∂b1 = reshape(δ2; to 4×4)    ∈ ℝ^(4×4)",
		"  ∂J/∂w2 = ∂J/∂a·H2 = σ(-a)·H2    ∈ ℝ^(16)",
		"  J = log p = log σ(a)    ∈ ℝ",
		"  H1 = reshape(H0; to N×2×2×2)    ∈ ℝ^(N×2×2×2)",
		"  U0 = Z·w0ᵀ + 1_N·b0ᵀ    ∈ ℝ^(N×8)",
		"  A = H2·w2 + b2·1_N    ∈ ℝ^(N)",
		"  ∂J/∂A = ∂J/∂log P ⊙ σ(-A) = σ(-A)    ∈ ℝ^(N)",
		"  ∂J/∂b2 = 1_Nᵀ·∂J/∂A = 1_Nᵀ·σ(-A)    ∈ ℝ",
		"  ∂J/∂h2⁽ᴺ⁾ = reshape(∂J/∂H2; to N×1×4×4) = reshape(σ(-A)·w2ᵀ; to N×1×4×4)    ∈ ℝ^(N×1×4×4)",
		"  ∂J/∂H0 = reshape(∂J/∂H1; to N×8) = reshape(corr(Δ2, w1; stride 1, pad 0); to N×8)    ∈ ℝ^(N×8)",
		"  ∂J/∂b1 = Σ_n(Δ2)    ∈ ℝ^(4×4)",
		"  ∂J/∂b0 = Δ0ᵀ·1_N    ∈ ℝ^(8)",
		"  ∂J/∂h1 = corr(δ2, w1; stride 1, pad 0)    ∈ ℝ^(2×2×2)",
		"  ∂J/∂w1 = corr(δ2, h1; stride 1, pad 0)    ∈ ℝ^(2×1×3×3)",
	} {
		if !strings.Contains(txt, l) {
			t.Errorf("derive gan lacks %q in\n%s", l, txt)
		}
	}
	for _, bad := range []string{"to 3×", "h2_N", "H2_N", "𝟏", "ᵀ ⊙", "aᵀ", "-a)ᵀ", " conv(", "log_", "Σ_batch", "δ2    ∈ ℝ^(4×4)"} {
		if strings.Contains(txt, bad) {
			t.Errorf("derive gan prints %q", bad)
		}
	}
	y1 := load(t, "problem1.yaml")
	y1.Conventions.Label = "y1"
	var b bytes.Buffer
	if err := Write(&b, y1, "text", Options{}); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), "∂J/∂-a") || strings.Contains(b.String(), "--a") || !strings.Contains(b.String(), "∂J/∂a = -∂J/∂s = -σ(-s)") {
		t.Errorf("label y1 derivation:\n%s", b.String())
	}
}

// TestDeconvElementFormulas evaluates the element formulas printed under a
// transposed convolution's two gradients, written out here as loops over
// 1-based indices, against autodiff, for both kernel readings and a
// stride, padding and output padding that make the index arithmetic
// matter.
func TestDeconvElementFormulas(t *testing.T) {
	for _, kernel := range []string{"pytorch", "flipped"} {
		s, err := spec.ReadFile("../solve/testdata/specs/gan-stride2.yaml")
		if err != nil {
			t.Fatal(err)
		}
		s.Conventions.Kernel = kernel
		d, m, err := Spec(s, 0)
		if err != nil {
			t.Fatal(err)
		}
		var txt bytes.Buffer
		if err := d.WriteText(&txt); err != nil {
			t.Fatal(err)
		}
		ra, rb := "a", "b"
		if kernel == "flipped" {
			ra, rb = "k_h+1−a", "k_w+1−b"
		}
		for _, want := range []string{
			"∂J/∂h1[c,i,j] = Σ_c' Σ_a Σ_b w1[c,c'," + ra + "," + rb + "]·δ2[c', (i−1)·s + a − p, (j−1)·s + b − p]",
			"∂J/∂w1[c,c',a,b] = Σ_i Σ_j h1[c,i,j]·δ2[c', (i−1)·s + " + ra + " − p, (j−1)·s + " + rb + " − p]",
			"s = 2, p = 1",
		} {
			if !strings.Contains(txt.String(), want) {
				t.Errorf("%s: lacks %q in\n%s", kernel, want, txt.String())
			}
		}
		h1, w1, d2 := m.Name["h1"].Value, m.Name["w1"].Value, m.Name["u2"].Grad
		C, H, W := h1.Dim(0), h1.Dim(1), h1.Dim(2)
		Co, KH, KW := w1.Dim(1), w1.Dim(2), w1.Dim(3)
		OH, OW := d2.Dim(1), d2.Dim(2)
		const st, p = 2, 1
		at := func(c, y, x int) float64 { // δ2[c', y, x], 1-based, 0 outside
			if y < 1 || y > OH || x < 1 || x > OW {
				return 0
			}
			return d2.Data()[((c-1)*OH+y-1)*OW+x-1]
		}
		kidx := func(a, b int) (int, int) {
			if kernel == "flipped" {
				return KH + 1 - a, KW + 1 - b
			}
			return a, b
		}
		w := func(c, co, a, b int) float64 { return w1.Data()[(((c-1)*Co+co-1)*KH+a-1)*KW+b-1] }
		gh, gw := m.Name["h1"].Grad.Data(), m.Name["w1"].Grad.Data()
		for c := 1; c <= C; c++ {
			for i := 1; i <= H; i++ {
				for j := 1; j <= W; j++ {
					sum := 0.0
					for co := 1; co <= Co; co++ {
						for a := 1; a <= KH; a++ {
							for b := 1; b <= KW; b++ {
								ka, kb := kidx(a, b)
								sum += w(c, co, ka, kb) * at(co, (i-1)*st+a-p, (j-1)*st+b-p)
							}
						}
					}
					if got := gh[((c-1)*H+i-1)*W+j-1]; math.Abs(got-sum) > 1e-12 {
						t.Errorf("%s: ∂J/∂h1[%d,%d,%d]: formula %g, autodiff %g", kernel, c, i, j, sum, got)
					}
				}
			}
		}
		for c := 1; c <= C; c++ {
			for co := 1; co <= Co; co++ {
				for a := 1; a <= KH; a++ {
					for b := 1; b <= KW; b++ {
						ka, kb := kidx(a, b)
						sum := 0.0
						for i := 1; i <= H; i++ {
							for j := 1; j <= W; j++ {
								sum += h1.Data()[((c-1)*H+i-1)*W+j-1] * at(co, (i-1)*st+ka-p, (j-1)*st+kb-p)
							}
						}
						if got := gw[(((c-1)*Co+co-1)*KH+a-1)*KW+b-1]; math.Abs(got-sum) > 1e-12 {
							t.Errorf("%s: ∂J/∂w1[%d,%d,%d,%d]: formula %g, autodiff %g", kernel, c, co, a, b, sum, got)
						}
					}
				}
			}
		}
	}
}

// TestBPTTIsASumOverSteps: backpropagation through time, as derive writes
// it from the unrolled graph, gathers ∂E/∂h_t from the read-out and from
// step t+1, and writes each shared weight's gradient as the sum of its
// per-step terms; the same under conventions.weights hW, with the vector
// results read as columns (W·g, h·gᵀ). Every printed equation evaluates
// to autodiff's gradient (checkAll).
func TestBPTTIsASumOverSteps(t *testing.T) {
	for _, c := range []struct {
		file  string
		lines []string
	}{
		{"../examples/rnn.yaml", []string{
			"  ∂E/∂h_3 = row(∂E/∂h; 3) = ",
			"  ∂E/∂h_2 = W_hhᵀ·∂E/∂u_h_3 + row(∂E/∂h; 2) = ",
			"  ∂E/∂h_1 = W_hhᵀ·∂E/∂u_h_2 + row(∂E/∂h; 1) = ",
			"  ∂E/∂W_hh = ∂E/∂u_h_1·h_0ᵀ + ∂E/∂u_h_2·h_1ᵀ + ∂E/∂u_h_3·h_2ᵀ = ",
			"  ∂E/∂b_h = ∂E/∂u_h_1 + ∂E/∂u_h_2 + ∂E/∂u_h_3 = ",
			"  ∂E/∂W_xh = ∂E/∂u_h_1·x_1ᵀ + ∂E/∂u_h_2·x_2ᵀ + ∂E/∂u_h_3·x_3ᵀ = ",
			"  u_h_2 = W_xh·x_2 + b_h + W_hh·h_1    ∈ ℝ^(2)",
		}},
		{"../solve/testdata/specs/course-rnn-hw.yaml", []string{
			"  u_h_2 = x_2ᵀ·W_xh + b_h + h_1ᵀ·W_hh    ∈ ℝ^(3)",
			"  ∂L/∂h_2 = W_hh·∂L/∂u_h_3 + row(∂L/∂h; 2) = ",
			"  ∂L/∂W_hh = h_0·∂L/∂u_h_1ᵀ + h_1·∂L/∂u_h_2ᵀ + h_2·∂L/∂u_h_3ᵀ = ",
			"  ∂L/∂W_xh = x_1·∂L/∂u_h_1ᵀ + x_2·∂L/∂u_h_2ᵀ + x_3·∂L/∂u_h_3ᵀ = ",
		}},
	} {
		s, err := spec.ReadFile(c.file)
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		if err := Write(&b, s, "text", Options{}); err != nil {
			t.Fatal(err)
		}
		for _, l := range c.lines {
			if !strings.Contains(b.String(), l) {
				t.Errorf("%s: lacks %q in\n%s", c.file, l, b.String())
			}
		}
		checkAll(t, s)
	}
}

// TestSoftmaxJacobianForm: the softmax's gradient in an attention head is
// written in its Jacobian-vector form, row by row, and evaluates.
func TestSoftmaxJacobianForm(t *testing.T) {
	txt := document(t, "attention.yaml", "text", &Options{Sample: true})
	for _, l := range []string{
		"  A = softmax(S; per row)    ∈ ℝ^(3×3)",
		"  ∂L/∂S = ((diag(A) - A·Aᵀ)·∂L/∂A; per row) = ",
		"  ∂L/∂A = ∂L/∂O·Vᵀ = ",
	} {
		if !strings.Contains(txt, l) {
			t.Errorf("derive attention lacks %q in\n%s", l, txt)
		}
	}
}
