package classroom

// Browser tests of a page without dead ends: a training job started,
// watched and stopped from the training view (on a small synthetic data
// set, so that they take seconds); the training view off when the server
// may not start jobs, and watching only under `train --serve`; and, in a
// 1024-pixel window, the graph fitting the window, long vectors drawn as
// one column, p told apart from 1, Problem 2's conventions, every opened
// node's upstream gradient shown whole, and the API's errors naming the
// tensor and the element.

import (
	"context"
	"fmt"
	"math"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/backprop-dev/backprop/data"
	"github.com/backprop-dev/backprop/live"
	"github.com/backprop-dev/backprop/solve"
)

// syntheticIDX writes a data set of n training and 64 test images of
// 28×28 (soft blobs at varying places, labels 0–9) in the MNIST layout
// and returns its directory, for --train-data.
func syntheticIDX(t *testing.T, n int) string {
	t.Helper()
	dir := t.TempDir()
	write := func(prefix string, n int) {
		px := make([]uint8, n*28*28)
		labels := make([]uint8, n)
		for k := range n {
			cx, cy := 6+float64(k%16), 6+float64((k/16)%16)
			for y := range 28 {
				for x := range 28 {
					d := math.Hypot(float64(x)-cx, float64(y)-cy)
					px[k*784+y*28+x] = uint8(255 * math.Exp(-d*d/18))
				}
			}
			labels[k] = uint8(k % 10)
		}
		if err := data.WriteIDX(filepath.Join(dir, prefix+"-images-idx3-ubyte"), []int{n, 28, 28}, px); err != nil {
			t.Fatal(err)
		}
		if err := data.WriteIDX(filepath.Join(dir, prefix+"-labels-idx1-ubyte"), []int{n}, labels); err != nil {
			t.Fatal(err)
		}
	}
	write("train", n)
	write("t10k", 64)
	return dir
}

// serveJobs runs the classroom with the given training jobs on a random
// loopback port; the server's jobs are closed when the test ends.
func serveJobs(t *testing.T, store *live.Store, jobs *TrainingJobs) string {
	t.Helper()
	problems, err := DefaultProblems(nil)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := New(Options{Problems: problems, Live: store, Training: jobs})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second}
	go hs.Serve(ln)
	t.Cleanup(func() { srv.Close(); hs.Close() })
	return "http://" + ln.Addr().String()
}

// waitJob waits until the training view shows the job in the given state
// (data-job: running, finished, stopped, failed).
func waitJob(t *testing.T, ctx context.Context, state string, timeout time.Duration) {
	t.Helper()
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](fmt.Sprintf(`document.body.dataset.job === %q`, state), chromedp.WithPollingTimeout(timeout))); err != nil {
		t.Fatalf("the job did not become %s: %v (job %q, message %q, error %q)", state, err,
			eval[string](t, ctx, `document.body.dataset.job || ""`), eval[string](t, ctx, `document.getElementById("message").textContent`),
			eval[string](t, ctx, `document.getElementById("job-error").textContent`))
	}
}

// startJob fills in the training view's form and presses start.
func startJob(t *testing.T, ctx context.Context, model string, images, epochs int) {
	t.Helper()
	do(t, ctx, "starting a "+model+" job",
		chromedp.SetValue(chromedp.CSS(`#job-model`), model),
		chromedp.SetValue(chromedp.CSS(`#job-images`), strconv.Itoa(images)),
		chromedp.SetValue(chromedp.CSS(`#job-epochs`), strconv.Itoa(epochs)),
		chromedp.Click(chromedp.CSS(`#job-start`)))
}

// TestBrowserTrainingJobFromPage starts an auto-encoder job from the
// training view and watches it to its end (loss chart, reconstruction
// grid, step count), then starts a DCGAN job, watches its discriminator
// chart and stops it from the page: it stops between two steps, says
// where, leaves no temporary files, and the next job can start.
func TestBrowserTrainingJobFromPage(t *testing.T) {
	ctx := browserSized(t, 1024, 768)
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp) // the DCGAN job's files go here, and must go away
	dir := syntheticIDX(t, 4096)
	store := live.NewStore()
	base := serveJobs(t, store, &TrainingJobs{Data: dir})

	do(t, ctx, "loading /train", chromedp.Navigate(base+"/train"), chromedp.WaitVisible(chromedp.CSS(`#jobform`)))
	if got := eval[string](t, ctx, `document.getElementById("empty").textContent`); !strings.Contains(got, "start one above") {
		t.Errorf("before any job the view says %q", got)
	}
	if got := eval[string](t, ctx, `Array.from(document.querySelectorAll("#job-model option")).map(o => o.value).join(",")`); got != "autoencoder,gan" {
		t.Errorf("models offered: %s", got)
	}
	if note := eval[string](t, ctx, `document.getElementById("job-note").textContent`); !strings.Contains(note, "at most 4096 images") || !strings.Contains(note, "5m") {
		t.Errorf("the limits are not stated: %q", note)
	}

	// an auto-encoder on 64 images for one epoch: one step, to its end
	startJob(t, ctx, "autoencoder", 64, 1)
	waitJob(t, ctx, "finished", 60*time.Second)
	if got := eval[string](t, ctx, `document.getElementById("step").textContent`); got != "1 / 1" {
		t.Errorf("step shows %q, want 1 / 1", got)
	}
	if got := eval[string](t, ctx, `document.getElementById("title").textContent`); got != "Training: autoencoder (finished)" {
		t.Errorf("title %q", got)
	}
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`document.getElementById("grid").naturalWidth > 0 && !document.getElementById("grid").hidden`, chromedp.WithPollingTimeout(10*time.Second))); err != nil {
		t.Fatalf("no reconstruction grid: %v", err)
	}
	if got := eval[string](t, ctx, `document.getElementById("gridTitle").textContent`); !strings.HasPrefix(got, "Latest reconstructions") {
		t.Errorf("the auto-encoder's grid is titled %q", got)
	}
	if n := eval[int](t, ctx, `document.querySelectorAll("#losses polyline").length`); n < 1 {
		t.Error("no loss curve drawn")
	}
	if msg := eval[string](t, ctx, `document.getElementById("message").textContent`); !strings.Contains(msg, "test error") {
		t.Errorf("the epoch's line %q does not give the test error", msg)
	}
	if eval[bool](t, ctx, `document.getElementById("job-start").disabled`) || !eval[bool](t, ctx, `document.getElementById("job-stop").hidden`) {
		t.Error("after the job, start is not offered again or stop still is")
	}

	// a request out of the limits: the server's sentence on the page
	startJob(t, ctx, "gan", 10, 1)
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`!document.getElementById("job-error").hidden`, chromedp.WithPollingTimeout(10*time.Second))); err != nil {
		t.Fatalf("no error for 10 images: %v", err)
	}
	if got := eval[string](t, ctx, `document.getElementById("job-error").textContent`); got != "images: want 64 to 4096 training images for the DCGAN, got 10" {
		t.Errorf("error shown: %q", got)
	}

	// a DCGAN on 4096 images for 2 epochs (128 steps), stopped from the page
	startJob(t, ctx, "gan", 4096, 2)
	waitJob(t, ctx, "running", 30*time.Second)
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`!document.getElementById("dcard").hidden && document.querySelectorAll("#dscores polyline").length === 2 && !document.getElementById("job-stop").hidden`, chromedp.WithPollingTimeout(60*time.Second))); err != nil {
		t.Fatalf("the DCGAN's steps and its D(x), D(G(z)) chart did not show: %v", err)
	}
	if !eval[bool](t, ctx, `document.getElementById("job-start").disabled`) {
		t.Error("start is offered while a job runs")
	}
	if !store.Snapshot().HasGrid && !eval[bool](t, ctx, `document.getElementById("grid").hidden && document.getElementById("gridTitle").textContent === "Latest samples"`) {
		t.Error("before its first epoch ends, the DCGAN job shows the auto-encoder's grid")
	}
	if got := eval[string](t, ctx, `document.getElementById("step").textContent`); !strings.HasSuffix(got, " / 128") {
		t.Errorf("step shows %q, want … / 128", got)
	}
	screenshot(t, ctx, "classroom-train-job.png")
	do(t, ctx, "stopping the job", chromedp.Click(chromedp.CSS(`#job-stop`)))
	waitJob(t, ctx, "stopped", 30*time.Second)
	msg := eval[string](t, ctx, `document.getElementById("message").textContent`)
	if !strings.HasPrefix(msg, "stopped from the page in epoch 1 after ") {
		t.Errorf("after stop the message is %q", msg)
	}
	if st := store.Snapshot(); !st.Stopped || st.Step >= 128 || st.Error != "" {
		t.Errorf("the stopped job: stopped %v, step %d, error %q", st.Stopped, st.Step, st.Error)
	}
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`!document.getElementById("job-start").disabled && document.getElementById("job-stop").hidden`, chromedp.WithPollingTimeout(10*time.Second))); err != nil {
		t.Errorf("after stopping, start is not offered again: %v", err)
	}
	if left, _ := filepath.Glob(filepath.Join(tmp, "backprop-serve-gan-*")); len(left) != 0 {
		t.Errorf("the stopped job left %v", left)
	}
	// the classroom is one click away
	do(t, ctx, "back to the classroom", chromedp.Click(chromedp.CSS(`header a[href="/"]`)), chromedp.WaitVisible(chromedp.CSS(`.node[data-name="h2"]`)))
}

// TestBrowserTrainingViewOffAndWatching: a server that may not start jobs
// says why on the training view and offers no form; a watching server
// (`train --serve`) serves the whole classroom, with the job at /train
// and no controls.
func TestBrowserTrainingViewOffAndWatching(t *testing.T) {
	ctx := browserSized(t, 1024, 768)
	off := "Starting training jobs from this page is off: the server listens on 0.0.0.0:8080."
	base := serveJobs(t, live.NewStore(), &TrainingJobs{Data: "mnist", Off: off})
	do(t, ctx, "loading /train", chromedp.Navigate(base+"/train"), chromedp.WaitVisible(chromedp.CSS(`#off`)))
	if got := eval[string](t, ctx, `document.getElementById("off").textContent`); got != off {
		t.Errorf("the reason shown is %q", got)
	}
	if eval[bool](t, ctx, `document.getElementById("jobform").offsetParent !== null`) {
		t.Error("a form is offered although jobs are off")
	}

	// watching only: the classroom at /, the job at /train
	store := live.NewStore()
	watch := serveJobs(t, store, nil)
	store.Start("gan", 1, 10)
	store.Publish(live.Update{Epoch: 1, Step: 4, Losses: map[string]float64{"D": 1.2, "G": 0.8}})
	do(t, ctx, "loading the classroom", chromedp.Navigate(watch+"/"), chromedp.WaitVisible(chromedp.CSS(`.node[data-name="h2"]`)))
	do(t, ctx, "opening the training view", chromedp.Click(chromedp.CSS(`a.trainlink`)), chromedp.Sleep(500*time.Millisecond), chromedp.WaitVisible(chromedp.CSS(`#losses`)))
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`document.getElementById("step") && document.getElementById("step").textContent === "4 / 10"`, chromedp.WithPollingTimeout(10*time.Second))); err != nil {
		t.Fatalf("the watched job is not shown: %v", err)
	}
	if !eval[bool](t, ctx, `document.getElementById("jobs").hidden`) {
		t.Error("a watching server offers job controls")
	}
}

// TestBrowserNoDeadEnds checks, in a 1024×768 window: Problem 1's and
// Problem 2's graphs fit the window; the 16-element vector H2 is one
// column; p = σ(12.87) is shown as 1 − 2.573e-6, not as 1; every opened
// node's upstream gradients are shown whole; Problem 2 lists only the
// conventions that apply to it; a number too large for float64 is
// refused in the cell, naming the element, and the API's error names
// the tensor and the element.
func TestBrowserNoDeadEnds(t *testing.T) {
	ctx := browserSized(t, 1024, 768)
	base, problems := serve(t, live.NewStore())
	do(t, ctx, "loading the page", chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.CSS(`.node[data-name="h2"]`)))
	waitSolves(t, ctx, 1)
	checkFits(t, ctx, "Problem 1 at 1024 px")

	// H2 (16 elements) is one column of 16 rows
	if got := eval[[]int](t, ctx, `(() => { const t = document.querySelector('.node[data-name="H2"] table.mat'); return [t.rows.length, Math.max(...Array.from(t.rows).map(r => r.cells.length))]; })()`); len(got) != 2 || got[0] != 16 || got[1] != 1 {
		t.Errorf("H2 is drawn as %v rows × columns, want 16 × 1", got)
	}
	if n := eval[int](t, ctx, `new Set(Array.from(document.querySelectorAll('.node[data-name="H2"] .cell')).map(c => Math.round(c.getBoundingClientRect().right))).size`); n != 1 {
		t.Errorf("H2's numbers stand in %d columns, want 1", n)
	}

	// p is told apart from 1
	fwd, _ := engine(t, problems[0].Spec.WithValues(keep), solve.Options{})
	p := fwd["p"][0]
	shown := cells(t, ctx, "p")
	if len(shown) != 1 || shown[0].T != "1 − 2.573e-6" {
		t.Fatalf("p = %v is shown as %+v, want 1 − 2.573e-6", p, shown)
	}
	if v, _ := strconv.ParseFloat(shown[0].V, 64); v != p {
		t.Errorf("p's full value %s, engine %v", shown[0].V, p)
	}
	do(t, ctx, "opening p", chromedp.Click(chromedp.CSS(`.node[data-name="p"] .nh`)), chromedp.WaitVisible(chromedp.CSS(`#panel h2`)))
	if tex := eval[string](t, ctx, `Array.from(document.querySelectorAll("#panel annotation")).map(a => a.textContent).join("\n")`); strings.Contains(tex, "= 1\n") || strings.HasSuffix(tex, "= 1") {
		t.Errorf("the panel of p shows p = 1:\n%s", tex)
	}

	openAll(t, ctx, "Problem 1")

	// a number beyond float64 in a cell: refused there, naming the element
	zcell := chromedp.CSS(`.node[data-name="z"] .cell[data-i="0"]`)
	zinput := chromedp.CSS(`.node[data-name="z"] .cell input`)
	do(t, ctx, "typing 1e309 into z[1]", chromedp.Click(zcell), chromedp.WaitVisible(zinput), chromedp.SetValue(zinput, "1e309"), chromedp.SendKeys(zinput, "\r"), chromedp.WaitVisible(chromedp.CSS(`.cell-error`)))
	if msg := eval[string](t, ctx, `document.querySelector(".cell-error").textContent`); !strings.HasPrefix(msg, "z[1]: “1e309” is too large for a number") {
		t.Errorf("inline error %q", msg)
	}
	do(t, ctx, "cancelling", chromedp.SendKeys(zinput, "\x1b"), chromedp.WaitNotPresent(chromedp.CSS(`.cell-error`)))
	// the API, asked as the page asks it
	apiErr, err := chromedp.Run(ctx, chromedp.Evaluate[string](`fetch("/api/solve", {method: "POST", headers: {"Content-Type": "application/json"}, body: '{"values":{"z":[1e309,0.8]}}'}).then(r => r.json()).then(j => j.error)`, chromedp.EvalAwaitPromise))
	if err != nil || apiErr != "values.z[1]: want a finite number, got 1e309" {
		t.Errorf("the API's error: %q (%v)", apiErr, err)
	}

	// Problem 2: fits, lists only its conventions, upstream gradients whole
	do(t, ctx, "opening the auto-encoder", chromedp.Click(chromedp.CSS(`.tab[data-id="autoencoder"]`)), chromedp.WaitVisible(chromedp.CSS(`.node[data-name="x'"]`)))
	waitSolves(t, ctx, 2)
	checkFits(t, ctx, "Problem 2 at 1024 px")
	conv := eval[string](t, ctx, `document.querySelector('details[data-key="conv"]').textContent`)
	for _, w := range []string{"reshape", "kernel", "deconv", "label", "σ(a)"} {
		if strings.Contains(conv, w) {
			t.Errorf("Problem 2's conventions name %q: %s", w, conv)
		}
	}
	if !strings.Contains(conv, "1-based") {
		t.Errorf("Problem 2's conventions do not say how indices count: %s", conv)
	}
	for _, c := range []string{"reshape", "kernel", "label"} {
		if eval[bool](t, ctx, fmt.Sprintf(`document.getElementById("conv-%s").offsetParent !== null`, c)) {
			t.Errorf("Problem 2 shows the %s switch", c)
		}
	}
	openAll(t, ctx, "Problem 2")
}

// openAll opens every node of the graph in turn and checks that each
// upstream gradient of its backward step is shown whole: it fits its box
// (shrunk to no less than 60 %) and lies within the panel.
func openAll(t *testing.T, ctx context.Context, what string) {
	t.Helper()
	names := eval[[]string](t, ctx, `Array.from(document.querySelectorAll("#graph .node")).map(d => d.dataset.name)`)
	seen := 0
	for _, n := range names {
		sel := `.node[data-name="` + n + `"]`
		do(t, ctx, "opening "+n, chromedp.Click(chromedp.CSS(sel+` .nh`)))
		if _, err := chromedp.Run(ctx, chromedp.Poll[bool](fmt.Sprintf(`!!document.querySelector("#panel h2") && document.querySelector(%q).classList.contains("selected")`, sel), chromedp.WithPollingTimeout(5*time.Second))); err != nil {
			t.Fatalf("%s: opening %s: %v", what, n, err)
		}
		type box struct {
			SW, CW, Scale float64
			Left, Right   float64
			PLeft, PRight float64
		}
		ups := eval[[]box](t, ctx, `(() => { const p = document.getElementById("panel").getBoundingClientRect(); return Array.from(document.querySelectorAll("#panel .eq.upstream")).map(e => { const k = e.querySelector(".katex").getBoundingClientRect(); return {SW: e.scrollWidth, CW: e.clientWidth, Scale: +e.dataset.scale, Left: k.left, Right: k.right, PLeft: p.left, PRight: p.right}; }); })()`)
		for i, u := range ups {
			seen++
			if u.SW > u.CW+1 || u.Left < u.PLeft-0.5 || u.Right > u.PRight+0.5 {
				t.Errorf("%s: %s's upstream gradient %d is cut off: %g px wide in a %g px box, spans %.0f–%.0f in a panel %.0f–%.0f", what, n, i+1, u.SW, u.CW, u.Left, u.Right, u.PLeft, u.PRight)
			}
			if u.Scale < 60 {
				t.Errorf("%s: %s's upstream gradient %d shrunk to %g %%", what, n, i+1, u.Scale)
			}
		}
	}
	if seen == 0 {
		t.Errorf("%s: no upstream gradient checked", what)
	}
}
