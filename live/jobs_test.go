package live

import (
	"context"
	"encoding/json"
	"errors"
	"image"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/backprop-dev/backprop/training"
)

// TestHooksPublishARun drives a training.Loop through Store.Hooks: the
// plan, every step's losses, a GAN's D(x) and D(G(z)) as the
// discriminator's scores, the epoch's line and picture, and the end.
func TestHooksPublishARun(t *testing.T) {
	s := NewStore()
	loop := training.Loop{
		Plan: training.Plan{Epochs: 2, StepsPerEpoch: 3},
		Step: func(e, k int) ([]training.Metric, error) {
			x := float64(e*10 + k)
			return []training.Metric{{Name: "D", Value: x}, {Name: "G", Value: -x}, {Name: MetricDReal, Value: 0.7}, {Name: MetricDFake, Value: 0.2}}, nil
		},
		EndEpoch: func(e int) (training.EpochEnd, error) {
			return training.EpochEnd{Metrics: []training.Metric{{Name: "mean D loss", Value: 1.5}}, Image: image.NewGray(image.Rect(0, 0, 3, 2))}, nil
		},
		Hooks: s.Hooks("gan"),
	}
	if err := loop.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	st := s.Snapshot()
	if st.Kind != "gan" || st.Epochs != 2 || st.TotalSteps != 6 || st.Step != 6 || !st.Done || st.Error != "" || st.Progress != 100 {
		t.Errorf("after the run: %+v", st)
	}
	if d := st.Losses["D"]; len(d) != 6 || d[5] != (Point{6, 22}) {
		t.Errorf("D losses %v, want 6 points ending at step 6 with 22", d)
	}
	if _, ok := st.Losses[MetricDReal]; ok || len(st.DReal) != 6 || st.DFake[0].Value != 0.2 {
		t.Errorf("D(x) drawn as a loss, or the scores missing: losses %v, D(x) %v, D(G(z)) %v", st.Losses, st.DReal, st.DFake)
	}
	if !strings.HasPrefix(st.Message, "epoch 2 of 2 done") || !strings.Contains(st.Message, "mean D loss 1.5000") {
		t.Errorf("message %q", st.Message)
	}
	if png, v := s.Grid(); png == nil || v != 2 || !st.HasGrid {
		t.Errorf("grid version %d (has grid: %v), want one per epoch", v, st.HasGrid)
	}
	// the next job starts without the previous job's grid
	s.Start("autoencoder", 1, 1)
	if st := s.Snapshot(); st.HasGrid || st.GridVersion != 2 {
		t.Errorf("a new job: has grid %v, version %d; want no grid, the version kept", st.HasGrid, st.GridVersion)
	}

	// a failing run is shown as failed
	s = NewStore()
	loop = training.Loop{Plan: training.Plan{Epochs: 1, StepsPerEpoch: 2}, Hooks: s.Hooks("autoencoder"),
		Step: func(int, int) ([]training.Metric, error) { return nil, errors.New("disk full") }}
	_ = loop.Run(context.Background())
	if st := s.Snapshot(); !st.Done || st.Error != "disk full" || st.Progress == 100 {
		t.Errorf("a failed run: %+v", st)
	}
}

// fakeJobs are jobs whose runs take a step every tick, through a real
// training.Loop, so that stopping and the time limit go through the
// loop's interrupt handling.
func fakeJobs(t *testing.T, opt JobsOptions, steps int, tick time.Duration) (*Jobs, *Store, *int32) {
	t.Helper()
	s := NewStore()
	var runs int32
	opt.Models = []Model{{ID: "autoencoder", Label: "auto-encoder", MinImages: 64}, {ID: "gan", Label: "DCGAN", MinImages: 64}}
	opt.Data = "synthetic"
	opt.Run = func(ctx context.Context, req JobRequest, hooks training.Hooks) error {
		atomic.AddInt32(&runs, 1)
		loop := training.Loop{Plan: training.Plan{Epochs: req.Epochs, StepsPerEpoch: steps}, Hooks: hooks,
			Step: func(e, k int) ([]training.Metric, error) {
				time.Sleep(tick)
				return []training.Metric{{Name: "loss", Value: 1 / float64(k+1)}}, nil
			}}
		return loop.Run(ctx)
	}
	j := NewJobs(s, opt)
	t.Cleanup(j.Close)
	return j, s, &runs
}

// waitDone polls the store until its job has ended.
func waitDone(t *testing.T, s *Store) Status {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if st := s.Snapshot(); st.Done {
			return st
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("the job did not end: %+v", s.Snapshot())
	return Status{}
}

func postJSON(t *testing.T, url, body string, header map[string]string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest("POST", url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

// TestJobsStartStopOneAtATime starts a job over HTTP, refuses a second one
// while it runs, stops it between two steps and starts the next.
func TestJobsStartStopOneAtATime(t *testing.T) {
	j, s, runs := fakeJobs(t, JobsOptions{}, 1000, 2*time.Millisecond)
	ts := httptest.NewServer(j.Handler())
	defer ts.Close()

	st := getJSON(t, ts.URL+"/api/train/status")
	if c := st.Controls; c == nil || !c.Enabled || c.Running || c.MaxImages != DefaultMaxImages || c.DefaultImages != DefaultJobImages || c.MaxEpochs != DefaultMaxEpochs || c.MaxSeconds != DefaultMaxJobSeconds || len(c.Models) != 2 {
		t.Fatalf("controls before a job: %+v", st.Controls)
	}
	if code, out := postJSON(t, ts.URL+"/api/train/stop", `{}`, nil); code != 409 || !strings.Contains(out["error"].(string), "no training job") {
		t.Errorf("stop with no job: %d %v", code, out)
	}
	if code, out := postJSON(t, ts.URL+"/api/train/start", `{"model":"gan","images":128,"epochs":2}`, nil); code != 202 || out["kind"] != "gan" {
		t.Fatalf("start: %d %v", code, out)
	}
	if code, out := postJSON(t, ts.URL+"/api/train/start", `{"model":"autoencoder","images":128,"epochs":1}`, nil); code != 409 || !strings.Contains(out["error"].(string), "already running") {
		t.Errorf("a second job while one runs: %d %v", code, out)
	}
	for s.Snapshot().Step < 3 {
		time.Sleep(time.Millisecond)
	}
	if st := getJSON(t, ts.URL+"/api/train/status"); !st.Controls.Running || !st.Active || st.TotalSteps != 2000 || !strings.Contains(st.Message, "first 128 images of synthetic") {
		t.Errorf("while running: running %v, active %v, %d steps, message %q", st.Controls.Running, st.Active, st.TotalSteps, st.Message)
	}
	if code, _ := postJSON(t, ts.URL+"/api/train/stop", `{}`, nil); code != 202 {
		t.Fatalf("stop: %d", code)
	}
	st = waitDone(t, s)
	if !st.Stopped || st.Error != "" || !strings.HasPrefix(st.Message, "stopped from the page in epoch 1 after ") || st.Progress >= 100 {
		t.Errorf("after stop: stopped %v, error %q, message %q, progress %g", st.Stopped, st.Error, st.Message, st.Progress)
	}
	for j.Controls().Running {
		time.Sleep(time.Millisecond)
	}
	// the next job starts afresh and runs to its end
	j2, s2, _ := fakeJobs(t, JobsOptions{}, 3, 0)
	if err := j2.Start(JobRequest{Model: "autoencoder", Images: 64, Epochs: 1}); err != nil {
		t.Fatal(err)
	}
	if st := waitDone(t, s2); st.Stopped || st.Error != "" || st.Step != 3 || st.Progress != 100 {
		t.Errorf("a job run to its end: %+v", st)
	}
	if err := j.Start(JobRequest{Model: "autoencoder", Images: 64, Epochs: 1}); err != nil {
		t.Errorf("starting after a stopped job: %v", err)
	}
	j.Stop()
	waitDone(t, s)
	if n := atomic.LoadInt32(runs); n != 2 {
		t.Errorf("%d runs, want 2 (the refused one never ran)", n)
	}
}

// TestJobsTimeLimit stops a job at its time limit and says so.
func TestJobsTimeLimit(t *testing.T) {
	j, s, _ := fakeJobs(t, JobsOptions{MaxDuration: 50 * time.Millisecond}, 1_000_000, time.Millisecond)
	start := time.Now()
	if err := j.Start(JobRequest{Model: "gan", Images: 64, Epochs: 1}); err != nil {
		t.Fatal(err)
	}
	st := waitDone(t, s)
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("stopped after %v", d)
	}
	if !st.Stopped || !strings.HasPrefix(st.Message, "stopped at the time limit of 50ms in epoch 1 after ") {
		t.Errorf("at the time limit: stopped %v, message %q", st.Stopped, st.Message)
	}
}

// TestJobsRefused: jobs off, requests out of the limits or malformed, and
// requests of another site are refused with a sentence and the right
// status; nothing runs.
func TestJobsRefused(t *testing.T) {
	j, s, runs := fakeJobs(t, JobsOptions{MaxImages: 1000, MaxEpochs: 2}, 1, 0)
	ts := httptest.NewServer(j.Handler())
	defer ts.Close()
	start := ts.URL + "/api/train/start"
	cases := []struct {
		name, body string
		header     map[string]string
		status     int
		msg        string
	}{
		{"unknown model", `{"model":"vae","images":100,"epochs":1}`, nil, 422, `model: want one of autoencoder, gan, got "vae"`},
		{"too few images", `{"model":"gan","images":10,"epochs":1}`, nil, 422, "images: want 64 to 1000 training images for the DCGAN, got 10"},
		{"too many images", `{"model":"gan","images":60000,"epochs":1}`, nil, 422, "got 60000"},
		{"too many epochs", `{"model":"gan","images":100,"epochs":3}`, nil, 422, "epochs: want 1 to 2 epochs, got 3"},
		{"no epochs", `{"model":"gan","images":100}`, nil, 422, "got 0"},
		{"not JSON", `model=gan`, nil, 400, "malformed request"},
		{"unknown field", `{"model":"gan","images":100,"epochs":1,"seconds":9999}`, nil, 400, "malformed request"},
		{"another site", `{"model":"gan","images":100,"epochs":1}`, map[string]string{"Origin": "http://evil.example"}, 403, "another site"},
		{"cross-site fetch", `{"model":"gan","images":100,"epochs":1}`, map[string]string{"Sec-Fetch-Site": "cross-site"}, 403, "another site"},
		{"a form post", `model=gan`, map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, 415, "application/json"},
	}
	for _, c := range cases {
		code, out := postJSON(t, start, c.body, c.header)
		if msg, _ := out["error"].(string); code != c.status || !strings.Contains(msg, c.msg) {
			t.Errorf("%s: %d %q, want %d and %q", c.name, code, msg, c.status, c.msg)
		}
	}
	if code, _ := postJSON(t, ts.URL+"/api/train/stop", `{}`, map[string]string{"Origin": "http://evil.example"}); code != 403 {
		t.Errorf("stop from another site: %d, want 403", code)
	}
	// the page's own origin is fine
	if code, out := postJSON(t, start, `{"model":"gan","images":100,"epochs":1}`, map[string]string{"Origin": ts.URL, "Sec-Fetch-Site": "same-origin"}); code != 202 {
		t.Errorf("same origin: %d %v", code, out)
	}
	waitDone(t, s)
	if n := atomic.LoadInt32(runs); n != 1 {
		t.Errorf("%d runs, want 1", n)
	}

	// off: the reason, and nothing starts
	off, s2, runs2 := fakeJobs(t, JobsOptions{Off: "Starting training jobs from this page is off: …"}, 1, 0)
	ts2 := httptest.NewServer(off.Handler())
	defer ts2.Close()
	if st := getJSON(t, ts2.URL+"/api/train/status"); st.Controls == nil || st.Controls.Enabled || !strings.HasPrefix(st.Controls.Off, "Starting training jobs") {
		t.Errorf("controls when off: %+v", st.Controls)
	}
	if code, out := postJSON(t, ts2.URL+"/api/train/start", `{"model":"gan","images":100,"epochs":1}`, nil); code != 403 || !strings.HasPrefix(out["error"].(string), "Starting training jobs") {
		t.Errorf("start when off: %d %v", code, out)
	}
	if atomic.LoadInt32(runs2) != 0 || s2.Snapshot().Active {
		t.Error("a job ran although jobs are off")
	}
	// the watching page has no controls and no start
	ts3 := httptest.NewServer(NewStore().Handler())
	defer ts3.Close()
	if st := getJSON(t, ts3.URL+"/api/train/status"); st.Controls != nil {
		t.Errorf("a watching page has controls: %+v", st.Controls)
	}
	if code, _ := postJSON(t, ts3.URL+"/api/train/start", `{"model":"gan","images":100,"epochs":1}`, nil); code != 404 && code != 405 {
		t.Errorf("start on a watching page: %d", code)
	}
}

// TestJobsCloseStopsAndWaits: Close stops the running job, returns only
// once it has ended, and refuses jobs afterwards; a panicking job is
// reported as failed instead of taking the server down.
func TestJobsCloseStopsAndWaits(t *testing.T) {
	j, s, _ := fakeJobs(t, JobsOptions{}, 1_000_000, time.Millisecond)
	if err := j.Start(JobRequest{Model: "gan", Images: 64, Epochs: 1}); err != nil {
		t.Fatal(err)
	}
	j.Close()
	if st := s.Snapshot(); !st.Done || !strings.HasPrefix(st.Message, "stopped: the server is shutting down") {
		t.Errorf("after Close: done %v, message %q", st.Done, st.Message)
	}
	var je *JobError
	if err := j.Start(JobRequest{Model: "gan", Images: 64, Epochs: 1}); !errors.As(err, &je) || je.Status != 503 {
		t.Errorf("start after Close: %v", err)
	}

	s2 := NewStore()
	p := NewJobs(s2, JobsOptions{Models: []Model{{ID: "x", Label: "x"}}, Run: func(context.Context, JobRequest, training.Hooks) error { panic("boom") }})
	if err := p.Start(JobRequest{Model: "x", Images: 1, Epochs: 1}); err != nil {
		t.Fatal(err)
	}
	p.Close()
	if st := s2.Snapshot(); !st.Done || !strings.Contains(st.Error, "boom") {
		t.Errorf("a panicking job: %+v", st)
	}
}
