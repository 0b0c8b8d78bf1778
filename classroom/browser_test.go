package classroom

// End-to-end tests in a real browser: Debian's chromium, headless, driven
// through the DevTools protocol by chromedp. They skip when no chromium is
// installed, so `go test ./...` passes anywhere; CI installs chromium.
//
// BACKPROP_UPDATE_SCREENSHOTS=1 writes the screenshots to docs/ (the ones
// the README shows); BACKPROP_SCREENSHOT_DIR=DIR to DIR, to look at them;
// otherwise they go to a temporary directory.
// BACKPROP_CHROMIUM names the browser binary when it is not on PATH.

import (
	"bytes"
	"context"
	"fmt"
	"image/png"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/backprop-dev/backprop/internal/testenv"
	"github.com/backprop-dev/backprop/live"
	"github.com/backprop-dev/backprop/solve"
	"github.com/backprop-dev/backprop/spec"
	"github.com/backprop-dev/backprop/tensor"
	"github.com/backprop-dev/backprop/viz"
)

// chromiumPath finds a Chromium or Chrome binary, or returns "".
func chromiumPath() string {
	if p := os.Getenv("BACKPROP_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// browser starts a fresh headless chromium for one test, 1920×1080.
func browser(t *testing.T) context.Context {
	t.Helper()
	return browserSized(t, 1920, 1080)
}

// browserSized starts a fresh headless chromium whose window is w×h.
func browserSized(t *testing.T, w, h int) context.Context {
	t.Helper()
	path := chromiumPath()
	if path == "" {
		testenv.Missing(t, "chromium", "no chromium binary found (install Debian's chromium, or set BACKPROP_CHROMIUM)")
	}
	if testing.Short() {
		t.Skip("browser test skipped in -short mode")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(w, h),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 3*time.Minute)
	t.Cleanup(func() {
		cancelTimeout()
		cancelCtx()
		cancelAlloc()
	})
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(int64(w), int64(h))); err != nil {
		t.Fatalf("starting %s: %v", path, err)
	}
	return ctx
}

// serve runs the classroom server with the default problems on a random
// loopback port.
func serve(t *testing.T, store *live.Store) (string, []Problem) {
	t.Helper()
	problems, err := DefaultProblems(nil)
	if err != nil {
		t.Fatal(err)
	}
	return serveProblems(t, store, problems), problems
}

// serveProblems runs the classroom server with the given problems on a
// random loopback port and returns its URL.
func serveProblems(t *testing.T, store *live.Store, problems []Problem) string {
	t.Helper()
	srv, err := New(Options{Problems: problems, Live: store})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second}
	go hs.Serve(ln)
	t.Cleanup(func() { hs.Close() })
	return "http://" + ln.Addr().String()
}

func do(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func eval[T any](t *testing.T, ctx context.Context, js string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js))
	if err != nil {
		t.Fatalf("evaluating %s: %v", js, err)
	}
	return v
}

// waitSolves waits until the page has applied n answers of the server.
func waitSolves(t *testing.T, ctx context.Context, n int) {
	t.Helper()
	js := fmt.Sprintf(`document.body.dataset.solves === "%d" && document.body.dataset.state === "ready"`, n)
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](js, chromedp.WithPollingTimeout(30*time.Second))); err != nil {
		status := eval[string](t, ctx, `document.getElementById("status").textContent`)
		t.Fatalf("waiting for answer %d of the server: %v (status line: %q)", n, err, status)
	}
}

// cell is a number as the page shows it.
type cell struct {
	I int    `json:"i"`
	V string `json:"v"` // full precision (data-v)
	T string `json:"t"` // the text on screen
}

func cells(t *testing.T, ctx context.Context, node string) []cell {
	t.Helper()
	sel := `.node[data-name="` + node + `"] .cell`
	return eval[[]cell](t, ctx, fmt.Sprintf(`Array.from(document.querySelectorAll(%q)).map(c => ({i: +c.dataset.i, v: c.dataset.v, t: c.textContent}))`, sel))
}

// checkShown compares a node's displayed numbers with the engine's.
func checkShown(t *testing.T, ctx context.Context, node string, want []float64) {
	t.Helper()
	got := cells(t, ctx, node)
	if len(got) != len(want) {
		t.Fatalf("%s: %d numbers on the page, engine has %d", node, len(got), len(want))
	}
	for _, c := range got {
		var v, shown float64
		if _, err := fmt.Sscan(c.V, &v); err != nil || v != want[c.I] {
			t.Errorf("%s[%d]: page has %s, engine %v", node, c.I, c.V, want[c.I])
		}
		// a number just below 1 is shown as 1 − (1 − v)
		rest, nearOne := strings.CutPrefix(c.T, "1 − ")
		_, err := fmt.Sscan(rest, &shown)
		if nearOne {
			ok := err == nil && math.Abs(shown-(1-want[c.I])) <= 6e-4*(1-want[c.I])
			if !ok {
				t.Errorf("%s[%d]: shown as %q, engine %v", node, c.I, c.T, want[c.I])
			}
			continue
		}
		if err != nil || math.Abs(shown-want[c.I]) > 6e-4*math.Abs(want[c.I]) {
			t.Errorf("%s[%d]: shown as %q, engine %v", node, c.I, c.T, want[c.I])
		}
	}
}

// engine is the solve JSON of s under opt, as flat slices.
func engine(t *testing.T, s *spec.Spec, opt solve.Options) (fwd, grad map[string][]float64) {
	t.Helper()
	j := engineJSON(t, s, opt)
	fwd, grad = map[string][]float64{}, map[string][]float64{}
	for k, v := range j["forward"] {
		fwd[k] = flat(v)
	}
	for k, v := range j["gradients"] {
		grad[k] = flat(v)
	}
	for k, p := range s.Params { // the parameters' own values
		fwd[k] = p.Tensor.Data()
	}
	fwd[s.Input.Name] = s.InputTensor().Data()
	return fwd, grad
}

// solveLine is the line of `backprop solve --detail full` (text) that
// starts with prefix.
func solveLine(t *testing.T, s *spec.Spec, prefix string) string {
	t.Helper()
	sol, err := solve.Solve(s, solve.Options{Detail: "full"})
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := sol.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(b.String(), "\n") {
		if l = strings.TrimSpace(l); strings.HasPrefix(l, prefix) {
			return l
		}
	}
	t.Fatalf("no line %q in the solve output", prefix)
	return ""
}

// screenshot saves the viewport as PNG: to docs/ when
// BACKPROP_UPDATE_SCREENSHOTS=1, else to a temporary directory.
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	dir := t.TempDir()
	if d := os.Getenv("BACKPROP_SCREENSHOT_DIR"); d != "" {
		dir = d
	}
	if os.Getenv("BACKPROP_UPDATE_SCREENSHOTS") == "1" {
		dir = filepath.Join("..", "docs")
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)
}

func noKaTeXErrors(t *testing.T, ctx context.Context, where string) {
	t.Helper()
	n := eval[int](t, ctx, fmt.Sprintf(`document.querySelectorAll(%q).length`, where+" .katex"))
	bad := eval[int](t, ctx, fmt.Sprintf(`document.querySelectorAll(%q).length`, where+" .katex-error"))
	if n == 0 || bad > 0 {
		t.Errorf("%s: %d formulas rendered by KaTeX, %d failed", where, n, bad)
	}
}

// workedTeX is the LaTeX source of every formula of the worked solution
// as the page shows it (KaTeX keeps it in each formula's MathML).
func workedTeX(t *testing.T, ctx context.Context) string {
	t.Helper()
	return eval[string](t, ctx, `Array.from(document.querySelectorAll('details[data-key="worked"] .worked annotation')).map(a => a.textContent).join("\n")`)
}

func withW0(s *spec.Spec, v float64) *spec.Spec {
	return s.WithValues(func(name string, old *tensor.Tensor[float64]) *tensor.Tensor[float64] {
		if name != "w0" {
			return old
		}
		c := old.Clone()
		c.Data()[0] = v
		return c
	})
}

// TestBrowserClassroom drives the page like a student: reads the graph,
// opens a node, edits a weight, switches to gradients and conventions, types
// text into a number, and visits the auto-encoder tab.
func TestBrowserClassroom(t *testing.T) {
	ctx := browser(t)
	base, problems := serve(t, live.NewStore())
	gan := problems[0].Spec
	do(t, ctx, "loading the page", chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.CSS(`.node[data-name="h2"]`)))
	waitSolves(t, ctx, 1)

	// the seed's numbers, as the engine computes them
	fwd, _ := engine(t, gan.WithValues(keep), solve.Options{})
	for _, n := range []string{"h0", "h1", "h2", "p"} {
		checkShown(t, ctx, n, fwd[n])
	}
	if n := eval[int](t, ctx, `document.querySelectorAll(".node").length`); n != 16 {
		t.Errorf("%d nodes drawn, want 16", n)
	}
	if n := eval[int](t, ctx, `document.querySelectorAll("svg.edges path[data-from]").length`); n != 15 {
		t.Errorf("%d edges drawn, want 15", n)
	}
	noKaTeXErrors(t, ctx, "#graph")
	screenshot(t, ctx, "classroom-graph.png")

	// the worked solution: the handout by default, every element one click
	// away, and back
	if got := eval[string](t, ctx, `document.querySelector('details[data-key="worked"] .worked').dataset.detail`); got != "handout" {
		t.Errorf("the worked solution opens as %q, want the handout", got)
	}
	if !eval[bool](t, ctx, `document.querySelector('details[data-key="worked"]').open`) {
		t.Error("the worked solution is closed; the handout should show by default")
	}
	if n := eval[int](t, ctx, `document.querySelectorAll('details[data-key="worked"] .answers .katex').length`); n == 0 {
		t.Error("the handout shows no answers box with formulas")
	}
	noKaTeXErrors(t, ctx, `details[data-key="worked"]`)
	handoutEqs := eval[int](t, ctx, `document.querySelectorAll('details[data-key="worked"] .worked .eq').length`)
	do(t, ctx, "showing every element", chromedp.Click(chromedp.CSS(`#detail-full`)), chromedp.WaitVisible(chromedp.CSS(`.worked[data-detail="full"]`)))
	fullEqs := eval[int](t, ctx, `document.querySelectorAll('details[data-key="worked"] .worked .eq').length`)
	if fullEqs <= handoutEqs || !strings.Contains(workedTeX(t, ctx), `h_{2}[1,4,4] &=`) {
		t.Errorf("the full trace shows %d formulas (the handout %d) and should work h2[1,4,4]", fullEqs, handoutEqs)
	}
	if eval[string](t, ctx, `document.getElementById("detail-full").getAttribute("aria-pressed")`) != "true" {
		t.Error("the switch does not mark the full trace as chosen")
	}
	if s := eval[string](t, ctx, `document.body.dataset.solves`); s != "1" {
		t.Errorf("switching the detail asked the server again (answers: %s)", s)
	}
	noKaTeXErrors(t, ctx, `details[data-key="worked"]`)
	do(t, ctx, "back to the handout", chromedp.Click(chromedp.CSS(`#detail-handout`)), chromedp.WaitVisible(chromedp.CSS(`.worked[data-detail="handout"]`)))
	if n := eval[int](t, ctx, `document.querySelectorAll('details[data-key="worked"] .worked .eq').length`); n != handoutEqs {
		t.Errorf("back to the handout: %d formulas, want %d", n, handoutEqs)
	}

	// the kernel switch names the readings as the worked solution does
	kernel := eval[string](t, ctx, `document.getElementById("conv-kernel").textContent`)
	if !strings.Contains(kernel, "full convolution") || !strings.Contains(kernel, "unrotated") || strings.Contains(kernel, "180") {
		t.Errorf("kernel switch reads %q", kernel)
	}

	// open h0: its forward step with the numbers substituted
	do(t, ctx, "opening h0", chromedp.Click(chromedp.CSS(`.node[data-name="h0"] .nh`)), chromedp.WaitVisible(chromedp.CSS(`#panel .fwd .line`)))
	line := eval[string](t, ctx, `document.querySelector("#panel .fwd .line").dataset.text`)
	if want := solveLine(t, gan, "h0[1] = "); line != want {
		t.Errorf("h0's first line:\n page %s\n want %s", line, want)
	}
	if want := "h0[1] = ReLU(w0[1,1]·z[1] + w0[1,2]·z[2] + b0[1]) = ReLU(0.1·0.4 + 0.3·0.8 + 0.1) = ReLU(0.38) = 0.38"; line != want {
		t.Errorf("h0's first line:\n page %s\n want %s", line, want)
	}
	bline := eval[string](t, ctx, `document.querySelector("#panel .bwd .line").dataset.text`)
	if want := solveLine(t, gan, "∂J/∂h0[1] = "); bline != want {
		t.Errorf("∂J/∂h0's first line:\n page %s\n want %s", bline, want)
	}
	if n := eval[int](t, ctx, `document.querySelectorAll("#panel .bwd .upstream").length`); n != 1 {
		t.Errorf("h0's backward step shows %d upstream gradients, want 1 (from h1)", n)
	}
	noKaTeXErrors(t, ctx, "#panel")
	screenshot(t, ctx, "classroom-node.png")

	// edit w0[1,1] from 0.1 to 0.5: everything updates at once
	w0cell := chromedp.CSS(`.node[data-name="w0"] .cell[data-i="0"]`)
	input := chromedp.CSS(`.node[data-name="w0"] .cell input`)
	do(t, ctx, "editing w0[1,1]", chromedp.Click(w0cell), chromedp.WaitVisible(input), chromedp.SetValue(input, "0.5"), chromedp.SendKeys(input, "\r"))
	waitSolves(t, ctx, 2)
	edited := withW0(gan, 0.5)
	fwd, grad := engine(t, edited, solve.Options{})
	for _, n := range []string{"w0", "h0", "h2", "p", "log_p"} {
		checkShown(t, ctx, n, fwd[n])
	}
	if got := eval[string](t, ctx, `document.querySelector("#panel .fwd .line").dataset.text`); got != solveLine(t, edited, "h0[1] = ") || !strings.Contains(got, "0.5·0.4") {
		t.Errorf("h0's line after the edit: %s", got)
	}
	if !eval[bool](t, ctx, `document.querySelector('.node[data-name="w0"] .cell[data-i="0"]').classList.contains("edited")`) {
		t.Error("the edited number is not marked")
	}

	// gradients
	do(t, ctx, "showing gradients", chromedp.Click(chromedp.CSS(`#view-grad`)), chromedp.WaitVisible(chromedp.CSS(`.node.show-grad`)))
	for _, n := range []string{"w0", "b0", "w1", "b1", "w2", "b2"} {
		checkShown(t, ctx, n, grad[n])
	}
	do(t, ctx, "showing values", chromedp.Click(chromedp.CSS(`#view-value`)), chromedp.WaitVisible(chromedp.CSS(`.node.show-value`)))

	// text in a number: an inline error, the last good numbers stay
	b0cell := chromedp.CSS(`.node[data-name="b0"] .cell[data-i="0"]`)
	b0input := chromedp.CSS(`.node[data-name="b0"] .cell input`)
	do(t, ctx, "typing text into b0[1]", chromedp.Click(b0cell), chromedp.WaitVisible(b0input), chromedp.SetValue(b0input, "abc"), chromedp.SendKeys(b0input, "\r"), chromedp.WaitVisible(chromedp.CSS(`.cell-error`)))
	msg := eval[string](t, ctx, `document.querySelector(".cell-error").textContent`)
	if !strings.Contains(msg, "abc") || !strings.Contains(msg, "not a number") {
		t.Errorf("inline error %q", msg)
	}
	do(t, ctx, "waiting", chromedp.Sleep(300*time.Millisecond))
	if s := eval[string](t, ctx, `document.body.dataset.solves`); s != "2" {
		t.Errorf("text in a number reached the server (answers: %s)", s)
	}
	checkShown(t, ctx, "h2", fwd["h2"])
	do(t, ctx, "cancelling", chromedp.SendKeys(b0input, "\x1b"), chromedp.WaitNotPresent(chromedp.CSS(`.cell-error`)))
	if got := eval[string](t, ctx, `document.querySelector('.node[data-name="b0"] .cell[data-i="0"]').textContent`); got != "0.1" {
		t.Errorf("b0[1] after cancelling shows %q, want 0.1", got)
	}

	// the full trace, chosen before an edit, stays chosen and shows the
	// edited numbers: u0[1] = 0.5·0.4 + 0.3·0.8 + 0.1
	do(t, ctx, "showing every element", chromedp.Click(chromedp.CSS(`#detail-full`)), chromedp.WaitVisible(chromedp.CSS(`.worked[data-detail="full"]`)))
	if tex := workedTeX(t, ctx); !strings.Contains(tex, `0.5 \cdot 0.4 + 0.3 \cdot 0.8 + 0.1`) {
		t.Error("the full trace does not show the edited w0[1,1] = 0.5 in u0[1]")
	}

	// a pre-activation's panel: its general element, and its gradient as
	// chain-rule factors with the ReLU′ convention
	do(t, ctx, "opening u0", chromedp.Click(chromedp.CSS(`.node[data-name="u0"] .nh`)), chromedp.WaitVisible(chromedp.CSS(`#panel .fwd .rule`)))
	if got, want := eval[string](t, ctx, `document.querySelector("#panel .fwd .rule").dataset.text`), "u0[i] = Σ_j w0[i,j]·z[j] + b0[i]"; got != want {
		t.Errorf("u0's general element:\n page %s\n want %s", got, want)
	}
	if got, want := eval[string](t, ctx, `document.querySelector("#panel .bwd .chain").title`), "∂J/∂u0 = ∂J/∂h0·∂h0/∂u0 = ∂J/∂h0 ⊙ 1[u0 > 0]"; got != want {
		t.Errorf("∂J/∂u0's chain-rule factors:\n page %s\n want %s", got, want)
	}
	if got := eval[string](t, ctx, `document.querySelector("#panel .bwd .local").textContent`); !strings.Contains(got, "0 at u0 = 0") {
		t.Errorf("∂J/∂u0's local derivative note: %q", got)
	}
	noKaTeXErrors(t, ctx, "#panel")

	// a convention switch: σ(a) read as p(y=1)
	do(t, ctx, "switching the label", chromedp.Click(chromedp.CSS(`input[name=label][value=y1]`)))
	waitSolves(t, ctx, 3)
	fwd, grad = engine(t, edited, solve.Options{Label: "y1"})
	checkShown(t, ctx, "p", fwd["p"])
	checkShown(t, ctx, "log_p", fwd["log_p"])
	do(t, ctx, "showing gradients", chromedp.Click(chromedp.CSS(`#view-grad`)), chromedp.WaitVisible(chromedp.CSS(`.node.show-grad`)))
	checkShown(t, ctx, "w0", grad["w0"])
	do(t, ctx, "showing values", chromedp.Click(chromedp.CSS(`#view-value`)))

	// the auto-encoder tab: graph, derived equations and worked numbers
	ae := problems[1].Spec
	do(t, ctx, "opening the auto-encoder", chromedp.Click(chromedp.CSS(`.tab[data-id="autoencoder"]`)), chromedp.WaitVisible(chromedp.CSS(`.node[data-name="x'"]`)))
	waitSolves(t, ctx, 4)
	fwd, grad = engine(t, ae.WithValues(keep), solve.Options{})
	checkShown(t, ctx, "h", fwd["h"])
	checkShown(t, ctx, "x'", fwd["x'"])
	checkShown(t, ctx, "L", fwd["L"])
	noKaTeXErrors(t, ctx, `details[data-key="derive"]`)
	noKaTeXErrors(t, ctx, `details[data-key="worked"]`)
	derivation := eval[string](t, ctx, `document.querySelector('details[data-key="derive"]').textContent`)
	if !strings.Contains(derivation, "Per sample") || !strings.Contains(derivation, "Batched over N samples") {
		t.Errorf("derived equations section: %.200s", derivation)
	}
	do(t, ctx, "opening w2", chromedp.Click(chromedp.CSS(`.node[data-name="w2"] .nh`)), chromedp.WaitVisible(chromedp.CSS(`#panel .bwd .line`)))
	if got, want := eval[string](t, ctx, `document.querySelector("#panel .bwd .line").dataset.text`), solveLine(t, ae, "∂J/∂w2[1,1] = "); got != want {
		t.Errorf("∂J/∂w2's first line:\n page %s\n want %s", got, want)
	}
	do(t, ctx, "showing gradients", chromedp.Click(chromedp.CSS(`#view-grad`)), chromedp.WaitVisible(chromedp.CSS(`.node.show-grad`)))
	checkShown(t, ctx, "w1", grad["w1"])
	do(t, ctx, "showing values", chromedp.Click(chromedp.CSS(`#view-value`)), chromedp.WaitVisible(chromedp.CSS(`.node.show-value`)))
	screenshot(t, ctx, "classroom-autoencoder.png")

	// Problem 2 has no reshape, deconv or logistic unit: those switches are
	// not offered and the conventions list does not name them
	for _, c := range []string{"reshape", "kernel", "label"} {
		if eval[bool](t, ctx, fmt.Sprintf(`document.getElementById("conv-%s").offsetParent !== null`, c)) {
			t.Errorf("the auto-encoder tab shows the %s switch", c)
		}
	}
	conv := eval[string](t, ctx, `document.querySelector('details[data-key="conv"]').textContent`)
	for _, w := range []string{"reshape", "kernel", "label"} {
		if strings.Contains(conv, w) {
			t.Errorf("the auto-encoder's conventions name %q: %s", w, conv)
		}
	}
	if got := eval[string](t, ctx, `document.querySelector('details[data-key="worked"] .worked').dataset.detail`); got != "handout" {
		t.Errorf("the auto-encoder's worked solution opens as %q, want the handout (the detail is chosen per tab)", got)
	}
	do(t, ctx, "back to Problem 1", chromedp.Click(chromedp.CSS(`.tab[data-id="main"]`)), chromedp.WaitVisible(chromedp.CSS(`.node[data-name="h2"]`)))
	if eval[bool](t, ctx, `document.getElementById("conv-kernel").offsetParent === null`) {
		t.Error("back on Problem 1 the kernel switch is hidden")
	}
}

// TestBrowserTrainingView publishes fake progress and watches the training
// page pick it up by polling.
func TestBrowserTrainingView(t *testing.T) {
	ctx := browser(t)
	store := live.NewStore()
	base, _ := serve(t, store)
	do(t, ctx, "loading /train", chromedp.Navigate(base+"/train"), chromedp.WaitVisible(chromedp.CSS(`#empty`)))

	store.Start("gan", 5, 100)
	for step := 1; step <= 40; step++ {
		x := float64(step)
		store.Publish(live.Update{Epoch: 1 + step/20, Step: step,
			Losses: map[string]float64{"D": 1.4*math.Exp(-x/30) + 0.3, "G": 0.7 + 0.9*(1-math.Exp(-x/15))},
			D:      &live.DScores{Real: 0.5 + 0.3*(1-math.Exp(-x/20)), Fake: 0.5 - 0.3*(1-math.Exp(-x/25))}})
	}
	store.PublishGrid(gridPNG(t))
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`document.getElementById("step").textContent === "40 / 100"`, chromedp.WithPollingTimeout(10*time.Second))); err != nil {
		t.Fatalf("the page did not show step 40: %v", err)
	}
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`document.getElementById("grid").naturalWidth > 0`, chromedp.WithPollingTimeout(10*time.Second))); err != nil {
		t.Fatalf("the page did not load the sample grid: %v", err)
	}
	if got := eval[string](t, ctx, `document.getElementById("progress").textContent`); got != "40.0 %" {
		t.Errorf("progress shows %q", got)
	}
	if n := eval[int](t, ctx, `document.querySelectorAll("#losses polyline, #dscores polyline").length`); n != 4 {
		t.Errorf("%d curves drawn, want 4 (D, G, D(x), D(G(z)))", n)
	}
	screenshot(t, ctx, "classroom-train.png")

	// reopening the page resumes showing the job
	do(t, ctx, "reloading", chromedp.Reload())
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`document.getElementById("step").textContent === "40 / 100"`, chromedp.WithPollingTimeout(10*time.Second))); err != nil {
		t.Fatalf("after a reload the page did not show step 40: %v", err)
	}
}

// gridPNG draws a 4×8 grid of soft blobs, standing in for generated samples.
func gridPNG(t *testing.T) []byte {
	t.Helper()
	const size = 28
	var imgs [][]float32
	for k := range 32 {
		cx, cy := 8+float64(k%5)*3, 8+float64(k%7)*2
		im := make([]float32, size*size)
		for y := range size {
			for x := range size {
				d := math.Hypot(float64(x)-cx, float64(y)-cy) + 0.3*math.Hypot(float64(x)-cy, float64(y)-cx)
				im[y*size+x] = float32(math.Exp(-d * d / (30 + float64(k))))
			}
		}
		imgs = append(imgs, im)
	}
	g, err := viz.ImageGridSlices(imgs, size, size, 8, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := png.Encode(&b, g); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}
