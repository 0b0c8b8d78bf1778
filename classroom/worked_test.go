package classroom

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/backprop-dev/backprop/solve"
	"github.com/backprop-dev/backprop/spec"
)

// TestWorkedHandoutAndFull checks the two readings of the worked solution
// that every answer carries: Worked is `backprop solve --format markdown`
// (the handout) and WorkedFull is the same with --detail full, byte for
// byte, for each problem; the handout is the short one with the answers
// box, the full trace has every element.
func TestWorkedHandoutAndFull(t *testing.T) {
	ts, problems := newTestServer(t)
	for _, p := range problems {
		code, b := post(t, ts, fmt.Sprintf(`{"problem": %q}`, p.ID))
		if code != 200 {
			t.Fatalf("%s: status %d: %s", p.ID, code, b)
		}
		r := decode(t, b)
		if r.WorkedError != "" || r.WorkedFullError != "" {
			t.Errorf("%s: workedError %q, workedFullError %q, want none", p.ID, r.WorkedError, r.WorkedFullError)
		}
		for _, c := range []struct{ detail, field, got string }{{"", "worked", r.Worked}, {"full", "workedFull", r.WorkedFull}} {
			sol, err := solve.Solve(p.Spec.WithValues(keep), solve.Options{Detail: c.detail})
			if err != nil {
				t.Fatal(err)
			}
			var md bytes.Buffer
			if err := sol.WriteMarkdown(&md); err != nil {
				t.Fatal(err)
			}
			if c.got != md.String() {
				t.Errorf("%s: %s (%d bytes) is not `backprop solve --detail %s --format markdown` (%d bytes)", p.ID, c.field, len(c.got), map[string]string{"": "handout", "full": "full"}[c.detail], md.Len())
			}
		}
		if !strings.Contains(r.Worked, "## Answers") || strings.Contains(r.WorkedFull, "## Answers") {
			t.Errorf("%s: the answers section should be in the handout only (handout: %v, full: %v)", p.ID, strings.Contains(r.Worked, "## Answers"), strings.Contains(r.WorkedFull, "## Answers"))
		}
		// Problem 1's tensors are large enough for the handout to be far
		// shorter; the auto-encoder's are vectors of 3 and 4 elements
		if hl, fl := len(r.Worked), len(r.WorkedFull); p.ID == "main" && 2*hl > fl {
			t.Errorf("%s: the handout has %d bytes and the full trace %d; the handout should be far shorter", p.ID, hl, fl)
		}
	}

	// Problem 1: the full trace works every element of h2 (16), the handout
	// only a few of u2's, each with the numbers substituted
	_, b := post(t, ts, `{}`)
	r := decode(t, b)
	shown := 0
	for i := 1; i <= 4; i++ {
		for j := 1; j <= 4; j++ {
			if !strings.Contains(r.WorkedFull, fmt.Sprintf(`h_{2}[1,%d,%d] &=`, i, j)) {
				t.Errorf("the full trace has no line for h2[1,%d,%d]", i, j)
			}
			if strings.Contains(r.Worked, fmt.Sprintf(`u_{2}[1,%d,%d] &=`, i, j)) {
				shown++
			}
		}
	}
	if shown == 0 || shown > 3 {
		t.Errorf("the handout works %d elements of u2, want 1 to 3", shown)
	}

	// an edit reaches both texts: w0[1,1] = 0.5 makes
	// u0[1] = 0.5·0.4 + 0.3·0.8 + 0.1 = 0.54 (by hand)
	code, b := post(t, ts, `{"values":{"w0":[[0.5,0.3],[0.7,0.9],[0.5,0.7],[0.1,0.9],[0.3,0.1],[0.4,0.6],[0.7,0.8],[0.2,0.1]]}}`)
	if code != 200 {
		t.Fatalf("edit: status %d: %s", code, b)
	}
	r = decode(t, b)
	for field, text := range map[string]string{"worked": r.Worked, "workedFull": r.WorkedFull} {
		if !strings.Contains(text, `0.5 \cdot 0.4 + 0.3 \cdot 0.8 + 0.1`) || !strings.Contains(text, "0.54") {
			t.Errorf("%s after editing w0[1,1] to 0.5 lacks u0[1] = 0.5·0.4 + 0.3·0.8 + 0.1 = 0.54", field)
		}
	}
}

// TestConventionsListedApply checks that the page lists only the
// conventions a network uses, in the answer's header and in both worked
// texts, and that the kernel line names the readings right: pytorch is
// ConvTranspose2d and the textbook full convolution, flipped slides the
// kernel without rotating it.
func TestConventionsListedApply(t *testing.T) {
	ts, _ := newTestServer(t)
	_, b := post(t, ts, `{"problem":"autoencoder"}`)
	r := decode(t, b)
	if r.Relevant.Reshape || r.Relevant.Kernel || r.Relevant.Label {
		t.Errorf("autoencoder: relevant conventions %+v, want none", r.Relevant)
	}
	for _, h := range r.Header {
		for _, w := range []string{"reshape", "kernel", "label"} {
			if strings.Contains(h, w) {
				t.Errorf("autoencoder: header line %q names the %s convention, which it does not use", h, w)
			}
		}
	}
	for field, text := range map[string]string{"worked": r.Worked, "workedFull": r.WorkedFull} {
		for _, w := range []string{"reshape/flatten order", "deconv kernel", "label: σ(a)"} {
			if strings.Contains(text, w) {
				t.Errorf("autoencoder: %s lists %q", field, w)
			}
		}
	}

	kernelLine := func(r *Result) string {
		for _, h := range r.Header {
			if strings.HasPrefix(h, "deconv kernel") {
				return h
			}
		}
		t.Fatalf("no deconv kernel line in %q", r.Header)
		return ""
	}
	_, b = post(t, ts, `{}`)
	r = decode(t, b)
	if !r.Relevant.Reshape || !r.Relevant.Kernel || !r.Relevant.Label {
		t.Errorf("Problem 1: relevant conventions %+v, want all", r.Relevant)
	}
	if k := kernelLine(r); !strings.Contains(k, "ConvTranspose2d") || !strings.Contains(k, "full convolution") || !strings.Contains(k, "(i−1)·s + a − p") {
		t.Errorf("pytorch kernel line %q: want ConvTranspose2d, the full convolution and the 1-based index formula", k)
	}
	_, b = post(t, ts, `{"conventions":{"kernel":"flipped"}}`)
	r = decode(t, b)
	k := kernelLine(r)
	if !strings.Contains(k, "cross-correlation") || !strings.Contains(k, "without being rotated") {
		t.Errorf("flipped kernel line %q: want the unrotated kernel, a full cross-correlation", k)
	}
	for field, text := range map[string]string{"worked": r.Worked, "workedFull": r.WorkedFull} {
		if !strings.Contains(text, "- "+k+"\n") {
			t.Errorf("%s does not list the kernel line of the header %q", field, k)
		}
	}
}

// TestStepRulesAndChains checks the general index formulas and chain-rule
// factors the node panels show for Problem 1, against formulas written by
// hand, and evaluates the deconv's general element for both kernel readings
// on the answer's own numbers.
func TestStepRulesAndChains(t *testing.T) {
	ts, _ := newTestServer(t)
	_, b := post(t, ts, `{}`)
	r := decode(t, b)
	u0 := node(t, r, "u0")
	if got, want := u0.Forward.RuleText, "u0[i] = Σ_j w0[i,j]·z[j] + b0[i]"; got != want {
		t.Errorf("u0's general element:\n got %s\nwant %s", got, want)
	}
	if !strings.Contains(u0.Forward.Rule, `\sum_{j}`) {
		t.Errorf("u0's general element in LaTeX: %s", u0.Forward.Rule)
	}
	if got, want := u0.Backward.ChainText, "∂J/∂u0 = ∂J/∂h0·∂h0/∂u0 = ∂J/∂h0 ⊙ 1[u0 > 0]"; got != want {
		t.Errorf("∂J/∂u0 as chain-rule factors:\n got %s\nwant %s", got, want)
	}
	if !strings.HasPrefix(u0.Backward.Local, "ReLU′(u0) = 1[u0 > 0]") || !strings.Contains(u0.Backward.Local, "0 at u0 = 0") {
		t.Errorf("∂J/∂u0's local derivative note: %q", u0.Backward.Local)
	}
	a := node(t, r, "a")
	if got, want := a.Backward.ChainText, "∂J/∂a = ∂J/∂log_p·∂log_p/∂a = "; !strings.HasPrefix(got, want) || !strings.Contains(a.Backward.Local, "σ(−a)") {
		t.Errorf("∂J/∂a: chain %q (want it to start %q), local %q (want σ(−a))", got, want, a.Backward.Local)
	}
	w0 := node(t, r, "w0")
	if got, want := w0.Backward.RuleText, "∂J/∂w0[i,j] = ∂J/∂u0[i]·z[j]"; got != want || w0.Backward.Chain != "" {
		t.Errorf("∂J/∂w0: general element %q, want %q; chain %q, want none for a parameter", got, want, w0.Backward.Chain)
	}
	if h0 := node(t, r, "h0"); h0.Forward.Rule == "" || node(t, r, "h1").Forward.RuleText != "h1[c,i,j] = h0[4(c−1)+2(i−1)+j]" {
		t.Errorf("h0's general element %q, h1's %q", h0.Forward.RuleText, node(t, r, "h1").Forward.RuleText)
	}

	// u2[1,i,j] = Σ_{c,k,l} h1[c,k,l]·w1[c,1,·,·] + b1[i,j] with the kernel
	// index i−k+1 (pytorch, the kernel added as it is) or k−i+3 (flipped,
	// the kernel rotated 180° in the scatter), summed where it is in 1…3
	for _, c := range []struct {
		kernel, rule string
		idx          func(i, k int) int
	}{
		{"pytorch", "u2[1,i,j] = Σ_{c,k,l} h1[c,k,l]·w1[c,1,i−k+1,j−l+1] + b1[i,j]", func(i, k int) int { return i - k + 1 }},
		{"flipped", "u2[1,i,j] = Σ_{c,k,l} h1[c,k,l]·w1[c,1,k−i+3,l−j+3] + b1[i,j]", func(i, k int) int { return k - i + 3 }},
	} {
		_, b := post(t, ts, fmt.Sprintf(`{"conventions":{"kernel":%q}}`, c.kernel))
		r := decode(t, b)
		u2 := node(t, r, "u2")
		if u2.Forward.RuleText != c.rule {
			t.Errorf("%s: u2's general element:\n got %s\nwant %s", c.kernel, u2.Forward.RuleText, c.rule)
		}
		h1, w1, b1 := node(t, r, "h1").Value, node(t, r, "w1").Value, node(t, r, "b1").Value // 2×2×2, 2×1×3×3, 4×4
		for i := 1; i <= 4; i++ {
			for j := 1; j <= 4; j++ {
				want := b1[(i-1)*4+j-1]
				for ch := 1; ch <= 2; ch++ {
					for k := 1; k <= 2; k++ {
						for l := 1; l <= 2; l++ {
							p, q := c.idx(i, k), c.idx(j, l)
							if p < 1 || p > 3 || q < 1 || q > 3 {
								continue
							}
							want += h1[(ch-1)*4+(k-1)*2+l-1] * w1[(ch-1)*9+(p-1)*3+q-1]
						}
					}
				}
				if got := u2.Value[(i-1)*4+j-1]; math.Abs(got-want) > 1e-12 {
					t.Errorf("%s: u2[1,%d,%d] = %v, the general element gives %v", c.kernel, i, j, got, want)
				}
			}
		}
	}
}

// TestPageConventionWording pins the words of the page's convention
// switches: the kernel readings are named as the worked solution names
// them, and no label calls the flipped reading a 180° rotation.
func TestPageConventionWording(t *testing.T) {
	html, err := staticFS.ReadFile("static/index.html")
	if err != nil {
		t.Fatal(err)
	}
	page := string(html)
	start := strings.Index(page, `id="conv-kernel"`)
	end := strings.Index(page[max(start, 0):], "</fieldset>")
	if start < 0 || end < 0 {
		t.Fatal("index.html has no deconv kernel fieldset")
	}
	kernel := page[start : start+end]
	for _, want := range []string{`value="pytorch"`, "ConvTranspose2d", "full convolution", `value="flipped"`, "without being rotated", "unrotated", "cross-correlation"} {
		if !strings.Contains(kernel, want) {
			t.Errorf("the kernel switch does not say %q:\n%s", want, kernel)
		}
	}
	if strings.Contains(kernel, "flipped 180") {
		t.Errorf("the kernel switch calls the flipped reading a 180° flip:\n%s", kernel)
	}
}

// TestWrittenRecovers checks that a text whose writer fails or panics
// becomes an error naming the text, so that the rest of the answer (and
// the server) keeps working.
func TestWrittenRecovers(t *testing.T) {
	text, err := written("the handout", func(w io.Writer) error {
		fmt.Fprint(w, "partial")
		panic("index out of range")
	})
	if text != "" || err == nil || !strings.Contains(err.Error(), "the handout") || !strings.Contains(err.Error(), "index out of range") {
		t.Errorf("a panicking writer gave %q, %v; want no text and an error naming the handout and the panic", text, err)
	}
	text, err = written("the full trace", func(w io.Writer) error {
		fmt.Fprint(w, "partial")
		return errors.New("disk full")
	})
	if text != "" || err == nil || !strings.Contains(err.Error(), "the full trace") || !strings.Contains(err.Error(), "disk full") {
		t.Errorf("a failing writer gave %q, %v; want no text and an error naming the full trace and the cause", text, err)
	}
	if text, err = written("x", func(w io.Writer) error { _, err := fmt.Fprint(w, "ok"); return err }); text != "ok" || err != nil {
		t.Errorf("a good writer gave %q, %v", text, err)
	}
}

// TestEverySolveSpec serves each network of the solve package's test
// specs, as `backprop serve --spec FILE` would: each answers with a graph
// whose computed nodes all have a forward step, and with the full trace.
func TestEverySolveSpec(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "solve", "testdata", "specs", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no specs under ../solve/testdata/specs (%v)", err)
	}
	for _, f := range files {
		s, err := spec.ReadFile(f)
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		r, aerr := solveSpec("main", s.WithValues(keep), 6)
		if aerr != nil {
			t.Errorf("%s: status %d: %s", f, aerr.Status, aerr.Msg)
			continue
		}
		if r.WorkedFull == "" || r.WorkedFullError != "" {
			t.Errorf("%s: no full trace (%s)", f, r.WorkedFullError)
		}
		if r.WorkedError != "" {
			// the page shows the message in place of the handout
			t.Logf("%s: %s", f, r.WorkedError)
		}
		for _, n := range r.Nodes {
			if strings.Contains(n.Name, "#") {
				continue // a name given to two nodes: the trace's steps cannot tell them apart
			}
			if n.Kind != "input" && n.Kind != "param" && n.Forward == nil && n.InlineIn == "" {
				t.Errorf("%s: node %s has no forward step", f, n.Name)
			}
		}
	}
}
