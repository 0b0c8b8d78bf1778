package derive

import (
	"bytes"
	"math/rand/v2"
	"os"
	"strings"
	"testing"

	"github.com/backprop-dev/backprop/spec"
)

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
			"Δ2 = ∂L/∂U2 = ∂L/∂X' ⊙ X' ⊙ (1 - X') = 2·(X' - X) ⊙ X' ⊙ (1 - X')",
			"∂L/∂w2 = Hᵀ·Δ2",
			"∂L/∂b2 = Σ_batch(Δ2)",
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
	for _, l := range []string{`\delta_{2} &= \frac{\partial L}{\partial u_{2}} = `, `2 \cdot \left(x' - x\right) \odot x' \odot \left(1 - x'\right)`, `\mathbb{1}\left[u_{1} > 0\right]`} {
		if !strings.Contains(md.String(), l) {
			t.Errorf("markdown lacks %q:\n%s", l, md.String())
		}
	}
}

func checkAll(t *testing.T, s *spec.Spec) {
	t.Helper()
	for _, n := range []int{0, 3} {
		res, err := Check(s, n, rand.New(rand.NewPCG(1, uint64(n))))
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

func TestCheckAutoencoder(t *testing.T) { checkAll(t, load(t, "autoencoder.yaml")) }
func TestCheckGAN(t *testing.T)         { checkAll(t, load(t, "problem1.yaml")) }

// TestCheckOtherSpecs runs the check over every spec of the reference
// suite: strides, padding, output padding, several channels, conventions.
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

// TestDocsAreTheCommandsOutput keeps docs/autoencoder.md exactly what
// `backprop derive autoencoder --format markdown` writes.
func TestDocsAreTheCommandsOutput(t *testing.T) {
	s := load(t, "autoencoder.yaml")
	var forms []*Derivation
	for _, n := range []int{0, 3} {
		d, _, err := Spec(s, n)
		if err != nil {
			t.Fatal(err)
		}
		forms = append(forms, d)
	}
	var b bytes.Buffer
	if err := WriteDocument(&b, s.Title, "markdown", forms); err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile("../docs/autoencoder.md")
	if err != nil {
		t.Fatal(err)
	}
	if b.String() != string(want) {
		t.Fatal("docs/autoencoder.md is stale: regenerate with backprop derive autoencoder --format markdown > docs/autoencoder.md")
	}
}
