package solve_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/backprop-dev/backprop/examples"
	"github.com/backprop-dev/backprop/solve"
	"github.com/backprop-dev/backprop/spec"
)

func problem(t *testing.T, name string) *spec.Spec {
	t.Helper()
	data, err := examples.FS.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	s, err := spec.Parse(name, data)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestDocsAreTheCommandsOutput keeps each worked solution under docs/
// exactly what `backprop solve` writes for it.
func TestDocsAreTheCommandsOutput(t *testing.T) {
	cases := []struct{ doc, spec, detail string }{
		{"problem1.md", examples.Problem1, "handout"},
		{"problem1-full.md", examples.Problem1, "full"},
		{"autoencoder-solution.md", examples.Autoencoder, "handout"},
	}
	for _, name := range examples.Bank {
		cases = append(cases, struct{ doc, spec, detail string }{"bank/" + strings.TrimSuffix(name, ".yaml") + ".md", name, "handout"})
	}
	for _, c := range cases {
		sol, err := solve.Solve(problem(t, c.spec), solve.Options{Detail: c.detail})
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		if err := sol.WriteMarkdown(&b); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join("..", "docs", c.doc)
		if os.Getenv("BACKPROP_WRITE_DOCS") != "" {
			if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if b.String() != string(want) {
			t.Errorf("docs/%s is stale: regenerate with BACKPROP_WRITE_DOCS=1 go test ./solve -run TestDocs (it is `backprop solve --spec examples/%s --detail %s --format markdown`)", c.doc, c.spec, c.detail)
		}
	}
}

// TestHandoutProblem1 checks the default handout of Problem 1 against the
// statements a hand solution makes, each recomputed by hand: the general
// rules, that only the asked gradients are worked, the answers box, and
// its length.
func TestHandoutProblem1(t *testing.T) {
	sol, err := solve.Solve(problem(t, examples.Problem1), solve.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := sol.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"u0[i] = Σ_j w0[i,j]·z[j] + b0[i]",
		"u0[1] = w0[1,1]·z[1] + w0[1,2]·z[2] + b0[1] = 0.1·0.4 + 0.3·0.8 + 0.1 = 0.28 + 0.1 = 0.38",
		"h0 = ReLU(u0) = u0, since every u0 > 0",
		"h1[c,i,j] = h0[4(c−1)+2(i−1)+j]",
		"u2[1,i,j] = Σ_{c,k,l} h1[c,k,l]·w1[c,1,i−k+1,j−l+1] + b1[i,j]",
		"u2[1,1,1] = 0.38·0.1 + 0.7·0.2 + 0.1 = 0.178 + 0.1 = 0.278",
		"H2[k] = h2[1,i,j], where k = 4(i−1)+j",
		"a = Σ_k w2[k]·H2[k] + b2",
		"= 12.5704 + 0.3 = 12.8704",
		"∂J/∂a = ∂J/∂log_p·σ(-a) = 1·σ(-12.8704) = 2.57309e-06",
		"1 − σ(a) = σ(−a)",
		"∂J/∂H2[k] = ∂J/∂a·w2[k]",
		"∂J/∂w1[c,1,a,b] = Σ_{k,l} ∂J/∂u2[1,k+a−1,l+b−1]·h1[c,k,l]",
		"∂J/∂w1[1,1,1,1] = 2.57309e-07·0.38 + 5.14618e-07·1.4 + 1.02924e-06·0.96 + 1.54385e-06·1.06 = 3.4428e-06",
		"∂J/∂h1[c,i,j] = Σ_{a,b} ∂J/∂u2[1,i+a−1,j+b−1]·w1[c,1,a,b]",
		"∂J/∂w0[i,j] = ∂J/∂u0[i]·z[j]",
		"ReLU′(u2) = 1[u2 > 0]",
		"The sigmoid is saturated",
		"gradient-ascent step",
		"Answers\n-------\nh0 = [0.38   1.4  0.96  1.06   0.7  1.54  1.62  1.06]ᵀ\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("handout lacks %q", want)
		}
	}
	for _, bad := range []string{"∂J/∂w2", "∂J/∂b2", "∂J/∂b1", "∂J/∂b0", "⊙ σ", "∂J/∂aᵀ", " conv(", "3×1×4×4"} {
		if strings.Contains(out, bad) {
			t.Errorf("handout has %q, which it should not", bad)
		}
	}
	if n := strings.Count(out, "\n"); n > 140 {
		t.Errorf("handout is %d lines, want at most 140", n)
	}
	var full bytes.Buffer
	sol, err = solve.Solve(problem(t, examples.Problem1), solve.Options{Detail: "full"})
	if err != nil {
		t.Fatal(err)
	}
	if err := sol.WriteText(&full); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"∂J/∂w2[16] = ∂J/∂a·H2[16]", "h2[1,4,4] = ReLU(", "∂J/∂b1[4,4]"} {
		if !strings.Contains(full.String(), want) {
			t.Errorf("--detail full lacks %q", want)
		}
	}
}

// TestMarkdownFitsAPage: no math line of the handout's Markdown is longer
// than a rendered page can show (prose lines wrap; display math does not).
func TestMarkdownFitsAPage(t *testing.T) {
	for _, name := range []string{examples.Problem1, examples.Autoencoder} {
		sol, err := solve.Solve(problem(t, name), solve.Options{})
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		if err := sol.WriteMarkdown(&b); err != nil {
			t.Fatal(err)
		}
		inMath := false
		for i, l := range strings.Split(b.String(), "\n") {
			if l == "$$" {
				inMath = !inMath
				continue
			}
			if inMath && strings.Contains(l, "bmatrix") {
				continue // a matrix is one line of source but rows on the page
			}
			if inMath && len([]rune(l)) > 300 {
				t.Errorf("%s line %d: %d characters of display math: %.80s…", name, i+1, len([]rune(l)), l)
			}
		}
	}
}
