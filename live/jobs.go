package live

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/backprop-dev/backprop/training"
)

// Limits of the jobs the page may start, unless JobsOptions says
// otherwise: a small subset of the data, one or two epochs, five minutes.
const (
	DefaultMaxImages     = 4096
	DefaultJobImages     = 2048
	DefaultMaxEpochs     = 2
	DefaultMaxJobSeconds = 300
)

// maxJobRequestBytes bounds the body of POST /api/train/start.
const maxJobRequestBytes = 4 << 10

// JobRequest is what the page asks to train (the body of POST
// /api/train/start).
type JobRequest struct {
	Model  string `json:"model"`  // a Model's ID, e.g. "autoencoder" or "gan"
	Images int    `json:"images"` // train on the first Images images of the data set
	Epochs int    `json:"epochs"`
}

// Model is one kind of job the page offers.
type Model struct {
	ID    string `json:"id"`
	Label string `json:"label"`
	// MinImages is the fewest training images a job may use (a batch).
	MinImages int `json:"minImages"`
}

// Controls tell the page what it may start: the status's controls when
// the page is served by Jobs.Handler.
type Controls struct {
	// Enabled is false when jobs cannot be started from the page; Off
	// then says why and how to allow them.
	Enabled bool   `json:"enabled"`
	Off     string `json:"off,omitempty"`
	// Running is true while a job started from the page runs (Stop is
	// offered).
	Running       bool    `json:"running"`
	Models        []Model `json:"models"`
	Data          string  `json:"data"` // the data set the jobs train on
	DefaultImages int     `json:"defaultImages"`
	MaxImages     int     `json:"maxImages"`
	MaxEpochs     int     `json:"maxEpochs"`
	MaxSeconds    float64 `json:"maxSeconds"` // a job is stopped after this long
}

// RunFunc runs one job: it trains req.Model on the first req.Images
// images for req.Epochs epochs, reports through hooks (Begin before the
// first step, then every step and epoch) and returns the run's error. It
// must stop between two steps once ctx is done (training.Loop does), and
// clean up what it wrote.
type RunFunc func(ctx context.Context, req JobRequest, hooks training.Hooks) error

// JobsOptions configure Jobs.
type JobsOptions struct {
	Models []Model // what the page offers; at least one
	Run    RunFunc
	Data   string // the data set's name, shown on the page
	// Limits; zero values take DefaultMaxImages, DefaultJobImages,
	// DefaultMaxEpochs and DefaultMaxJobSeconds.
	MaxImages, DefaultImages, MaxEpochs int
	MaxDuration                         time.Duration
	// Off, when not "", keeps the page from starting jobs and is shown
	// instead of the controls: why, and how to allow them.
	Off string
}

// Jobs start, run and stop training jobs on behalf of the page, one at a
// time, each bounded in images, epochs and time, publishing into a Store.
type Jobs struct {
	store *Store
	opt   JobsOptions

	mu     sync.Mutex
	cancel context.CancelCauseFunc // of the running job; nil when none runs
	done   chan struct{}           // closed when the running job has ended
	closed bool
}

// Why a job's context ended.
var (
	errStopped  = errors.New("stopped from the page")
	errTimeUp   = errors.New("time limit")
	errShutdown = errors.New("server shutting down")
)

// NewJobs returns the jobs of a page that publish into store.
func NewJobs(store *Store, opt JobsOptions) *Jobs {
	if opt.MaxImages <= 0 {
		opt.MaxImages = DefaultMaxImages
	}
	if opt.DefaultImages <= 0 {
		opt.DefaultImages = DefaultJobImages
	}
	opt.DefaultImages = min(opt.DefaultImages, opt.MaxImages)
	if opt.MaxEpochs <= 0 {
		opt.MaxEpochs = DefaultMaxEpochs
	}
	if opt.MaxDuration <= 0 {
		opt.MaxDuration = DefaultMaxJobSeconds * time.Second
	}
	return &Jobs{store: store, opt: opt}
}

// Handler serves the store's training view (Store.Handler) with the
// controls of these jobs:
//
//	POST /api/train/start   JobRequest → 202 and the Status; 403 when jobs
//	                        are off, 409 while one runs, 400/422 for a bad
//	                        request
//	POST /api/train/stop    stops the running job → 202; 409 when none runs
//
// Both want a JSON request from the page's own origin: a request of
// another site (Origin or Sec-Fetch-Site saying so) is refused with 403.
func (j *Jobs) Handler() http.Handler { return j.store.handler(j) }

// Controls reports what the page may start and whether a job of the page
// is running.
func (j *Jobs) Controls() Controls {
	j.mu.Lock()
	running := j.cancel != nil
	j.mu.Unlock()
	return Controls{
		Enabled: j.opt.Off == "", Off: j.opt.Off, Running: running,
		Models: j.opt.Models, Data: j.opt.Data,
		DefaultImages: j.opt.DefaultImages, MaxImages: j.opt.MaxImages, MaxEpochs: j.opt.MaxEpochs,
		MaxSeconds: j.opt.MaxDuration.Seconds(),
	}
}

// JobError is a request the jobs refuse, with the HTTP status it deserves.
type JobError struct {
	Status int
	Msg    string
}

func (e *JobError) Error() string { return e.Msg }

// check validates req against the offered models and the limits.
func (j *Jobs) check(req JobRequest) *JobError {
	var m *Model
	ids := ""
	for i := range j.opt.Models {
		if j.opt.Models[i].ID == req.Model {
			m = &j.opt.Models[i]
		}
		if i > 0 {
			ids += ", "
		}
		ids += j.opt.Models[i].ID
	}
	switch {
	case m == nil:
		return &JobError{http.StatusUnprocessableEntity, fmt.Sprintf("model: want one of %s, got %q", ids, req.Model)}
	case req.Images < max(1, m.MinImages) || req.Images > j.opt.MaxImages:
		return &JobError{http.StatusUnprocessableEntity, fmt.Sprintf("images: want %d to %d training images for the %s, got %d", max(1, m.MinImages), j.opt.MaxImages, m.Label, req.Images)}
	case req.Epochs < 1 || req.Epochs > j.opt.MaxEpochs:
		return &JobError{http.StatusUnprocessableEntity, fmt.Sprintf("epochs: want 1 to %d epochs, got %d", j.opt.MaxEpochs, req.Epochs)}
	}
	return nil
}

// Start starts the job req asks for in the background and returns at
// once; the store shows its progress. It refuses (with a *JobError) when
// jobs are off, while a job runs, and a request out of the limits.
func (j *Jobs) Start(req JobRequest) error {
	if j.opt.Off != "" {
		return &JobError{http.StatusForbidden, j.opt.Off}
	}
	if err := j.check(req); err != nil {
		return err
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	switch {
	case j.closed:
		return &JobError{http.StatusServiceUnavailable, "the server is shutting down"}
	case j.cancel != nil:
		st := j.store.Snapshot()
		return &JobError{http.StatusConflict, fmt.Sprintf("a training job is already running (%s, step %d of %d); stop it first", st.Kind, st.Step, st.TotalSteps)}
	}
	ctx, cancel := context.WithCancelCause(context.Background())
	ctx, cancelTimeout := context.WithTimeoutCause(ctx, j.opt.MaxDuration, errTimeUp)
	j.cancel, j.done = cancel, make(chan struct{})
	what := fmt.Sprintf("the first %d images of %s, %d epoch(s)", req.Images, j.opt.Data, req.Epochs)
	j.store.Start(req.Model, req.Epochs, 0)
	j.store.Publish(Update{Message: "loading " + what + "…"})
	hooks := j.store.Hooks(req.Model)
	hooks.End = nil // the job's end is told by run, which knows why it stopped
	begin := hooks.Begin
	hooks.Begin = func(p training.Plan) {
		begin(p)
		j.store.Publish(Update{Message: "training on " + what})
	}
	go j.run(ctx, req, hooks, func() { cancelTimeout(); cancel(nil) }, j.done)
	return nil
}

// run runs one job and records how it ended.
func (j *Jobs) run(ctx context.Context, req JobRequest, hooks training.Hooks, release func(), done chan struct{}) {
	defer close(done)
	err := j.runSafely(ctx, req, hooks)
	cause := context.Cause(ctx)
	release()
	// the store is told under j.mu, so that a job started next cannot be
	// marked ended by this one
	j.mu.Lock()
	defer j.mu.Unlock()
	j.cancel = nil
	var ie *training.InterruptedError
	switch {
	case err == nil:
		j.store.Finish(nil)
	case errors.As(err, &ie) && errors.Is(cause, errTimeUp):
		j.store.Stop(fmt.Sprintf("stopped at the time limit of %s %s", j.opt.MaxDuration, where(ie)))
	case errors.As(err, &ie) && errors.Is(cause, errShutdown):
		j.store.Stop("stopped: the server is shutting down " + where(ie))
	case errors.As(err, &ie):
		j.store.Stop("stopped from the page " + where(ie))
	default:
		j.store.Finish(err)
	}
}

// runSafely calls the job's RunFunc, turning a panic into an error so
// that a failing job never takes the server down.
func (j *Jobs) runSafely(ctx context.Context, req JobRequest, hooks training.Hooks) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("the training job failed: %v", p)
		}
	}()
	return j.opt.Run(ctx, req, hooks)
}

// where says where an interrupted run stopped.
func where(ie *training.InterruptedError) string {
	return fmt.Sprintf("in epoch %d after %d of its %d steps (%d steps in all)", ie.Epoch, ie.StepInEpoch, ie.StepsPerEpoch, ie.Step)
}

// Stop stops the running job between two steps and returns at once; it
// reports whether a job was running.
func (j *Jobs) Stop() bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.cancel == nil {
		return false
	}
	j.cancel(errStopped)
	return true
}

// Close stops a running job, waits until it has ended and refuses new
// ones: for a server shutting down.
func (j *Jobs) Close() {
	j.mu.Lock()
	j.closed = true
	done := j.done
	if j.cancel != nil {
		j.cancel(errShutdown)
	}
	j.mu.Unlock()
	if done != nil {
		<-done
	}
}

// sameOrigin refuses a request another site's page makes the browser
// send: the page has no login, so only its own origin may start jobs.
func sameOrigin(r *http.Request) *JobError {
	refused := &JobError{http.StatusForbidden, "a request from another site is refused: start jobs from the training page itself"}
	if r.Header.Get("Sec-Fetch-Site") == "cross-site" {
		return refused
	}
	if o := r.Header.Get("Origin"); o != "" {
		u, err := url.Parse(o)
		if err != nil || u.Host != r.Host {
			return refused
		}
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		return &JobError{http.StatusUnsupportedMediaType, "send the request as application/json"}
	}
	return nil
}

func (j *Jobs) serveStart(w http.ResponseWriter, r *http.Request) {
	if e := sameOrigin(r); e != nil {
		writeJobError(w, e)
		return
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxJobRequestBytes))
	dec.DisallowUnknownFields()
	var req JobRequest
	if err := dec.Decode(&req); err != nil {
		writeJobError(w, &JobError{http.StatusBadRequest, `malformed request: want {"model": …, "images": …, "epochs": …}`})
		return
	}
	if err := j.Start(req); err != nil {
		var je *JobError
		if !errors.As(err, &je) {
			je = &JobError{http.StatusInternalServerError, err.Error()}
		}
		writeJobError(w, je)
		return
	}
	writeJSON(w, http.StatusAccepted, j.status())
}

func (j *Jobs) serveStop(w http.ResponseWriter, r *http.Request) {
	if e := sameOrigin(r); e != nil {
		writeJobError(w, e)
		return
	}
	if !j.Stop() {
		writeJobError(w, &JobError{http.StatusConflict, "no training job started from this page is running"})
		return
	}
	writeJSON(w, http.StatusAccepted, j.status())
}

// status is the store's status with these jobs' controls.
func (j *Jobs) status() Status {
	st := j.store.Snapshot()
	c := j.Controls()
	st.Controls = &c
	return st
}

func writeJobError(w http.ResponseWriter, e *JobError) {
	writeJSON(w, e.Status, map[string]string{"error": e.Msg})
}
