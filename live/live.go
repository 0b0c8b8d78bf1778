// Package live lets a training loop show its progress in a browser. The loop
// publishes into a Store (epoch, step, losses, the discriminator's D(x) and
// D(G(z)), the latest grid of samples as PNG); the Store's Handler serves a
// page at /train that polls /api/train/status once a second, so closing the
// browser and opening it again simply resumes showing the job, and a job
// never waits for a viewer.
//
// A training loop (package training) publishes through the hooks of
// Store.Hooks:
//
//	loop.Hooks = loop.Hooks.Then(live.Default.Hooks("gan"))
//
// or by hand, with Start, Publish (epoch, step, losses, D scores),
// PublishGrid and Finish.
//
// `backprop train … --serve ADDR` serves the whole classroom with the job
// at /train (the page only watches). `backprop serve` mounts Jobs.Handler
// instead: the same page with a form that starts a small job (Jobs.Start:
// one at a time, bounded in images, epochs and time, stopped through its
// context by Jobs.Stop, at the time limit, or by Jobs.Close), so that the
// view is never an empty page.
package live

import (
	"embed"
	"encoding/json"
	"maps"
	"math"
	"net/http"
	"slices"
	"sync"
	"time"
)

// MaxPoints is the most points a history keeps per series. When a series
// grows past it, every other point is dropped, so a long run keeps its whole
// shape at half the resolution and the status stays small.
const MaxPoints = 1000

// Point is one value of a history at a training step.
type Point struct {
	Step  int     `json:"step"`
	Value float64 `json:"value"`
}

// DScores are a GAN discriminator's mean outputs on a batch: D(x) on real
// data and D(G(z)) on generated samples.
type DScores struct {
	Real float64 // D(x)
	Fake float64 // D(G(z))
}

// Update is one report from the training loop. Zero Epoch or Step keep the
// previous ones; nil maps and pointers publish nothing of their kind.
type Update struct {
	Epoch   int
	Step    int
	Losses  map[string]float64 // by series name, e.g. "D" and "G", or "loss"
	D       *DScores
	Message string // a line for the viewer, e.g. "saved checkpoint"
}

// Status is what the page shows: a copy of the store's state.
type Status struct {
	Active      bool               `json:"active"` // started and not finished
	Done        bool               `json:"done"`
	Kind        string             `json:"kind"` // e.g. "gan", "autoencoder"
	Epoch       int                `json:"epoch"`
	Epochs      int                `json:"epochs"`
	Step        int                `json:"step"`
	TotalSteps  int                `json:"totalSteps"`
	Progress    float64            `json:"progress"` // percent, 0 to 100
	Started     time.Time          `json:"started"`
	Updated     time.Time          `json:"updated"`
	Elapsed     float64            `json:"elapsedSeconds"`
	ETA         float64            `json:"etaSeconds"` // estimated seconds left; 0 when unknown
	Losses      map[string][]Point `json:"losses"`
	DReal       []Point            `json:"dReal"` // D(x)
	DFake       []Point            `json:"dFake"` // D(G(z))
	GridVersion int                `json:"gridVersion"`
	HasGrid     bool               `json:"hasGrid"` // the job has published a grid (GET /api/train/grid.png)
	Message     string             `json:"message"`
	Error       string             `json:"error,omitempty"`
	// Stopped is set on a job that ended before its last step without
	// failing: stopped from the page or at its time limit (Message says
	// which).
	Stopped bool `json:"stopped,omitempty"`
	// Controls, when the page can start and stop jobs (Jobs.Handler), say
	// what it may start; nil when the page only watches.
	Controls *Controls `json:"controls,omitempty"`
}

// Store is the thread-safe state a training loop publishes into and the
// page reads. The zero value is not ready; use NewStore.
type Store struct {
	mu   sync.RWMutex
	st   Status
	grid []byte
	now  func() time.Time
}

// NewStore returns an empty store: no job yet.
func NewStore() *Store {
	return &Store{st: Status{Losses: map[string][]Point{}}, now: time.Now}
}

// Default is the store the package-level functions publish into and
// `backprop serve` shows.
var Default = NewStore()

// Start begins a new job of the given kind with its planned number of
// epochs and steps (0 when unknown), clearing the previous job's history.
func (s *Store) Start(kind string, epochs, totalSteps int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	version := s.st.GridVersion
	s.st = Status{Active: true, Kind: kind, Epochs: epochs, TotalSteps: totalSteps, Started: now, Updated: now, Losses: map[string][]Point{}, GridVersion: version}
	s.grid = nil
}

// Publish records one report.
func (s *Store) Publish(u Update) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := &s.st
	if st.Started.IsZero() {
		st.Started = s.now()
		st.Active = true
	}
	if u.Epoch != 0 {
		st.Epoch = u.Epoch
	}
	if u.Step != 0 {
		st.Step = u.Step
	}
	for _, name := range slices.Sorted(maps.Keys(u.Losses)) {
		if v := u.Losses[name]; !math.IsNaN(v) && !math.IsInf(v, 0) {
			st.Losses[name] = appendPoint(st.Losses[name], Point{st.Step, v})
		}
	}
	if u.D != nil {
		st.DReal = appendPoint(st.DReal, Point{st.Step, u.D.Real})
		st.DFake = appendPoint(st.DFake, Point{st.Step, u.D.Fake})
	}
	if u.Message != "" {
		st.Message = u.Message
	}
	st.Updated = s.now()
}

// appendPoint appends p, halving the history when it is full.
func appendPoint(h []Point, p Point) []Point {
	h = append(h, p)
	if len(h) > MaxPoints {
		half := h[:0]
		for i := 0; i < len(h); i += 2 {
			half = append(half, h[i])
		}
		if half[len(half)-1] != p {
			half = append(half, p)
		}
		h = half
	}
	return h
}

// PublishGrid records the latest grid of samples, PNG-encoded. The store
// keeps its own copy.
func (s *Store) PublishGrid(png []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.grid = append([]byte(nil), png...)
	s.st.GridVersion++
	s.st.Updated = s.now()
}

// Finish ends the job; err, when not nil, is shown as its failure.
func (s *Store) Finish(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.st.Active = false
	s.st.Done = true
	if err != nil {
		s.st.Error = err.Error()
	}
	s.st.Updated = s.now()
}

// Stop ends the job before its last step without an error: stopped by the
// viewer or at its time limit. msg says where it stopped and why.
func (s *Store) Stop(msg string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.st.Active = false
	s.st.Done = true
	s.st.Stopped = true
	s.st.Message = msg
	s.st.Updated = s.now()
}

// Snapshot returns a deep copy of the current status, with progress,
// elapsed time and ETA worked out.
func (s *Store) Snapshot() Status {
	s.mu.RLock()
	defer s.mu.RUnlock()
	st := s.st
	st.Losses = make(map[string][]Point, len(s.st.Losses))
	for k, v := range s.st.Losses {
		st.Losses[k] = slices.Clone(v)
	}
	st.DReal, st.DFake = slices.Clone(s.st.DReal), slices.Clone(s.st.DFake)
	st.HasGrid = s.grid != nil
	if st.TotalSteps > 0 {
		st.Progress = min(100, 100*float64(st.Step)/float64(st.TotalSteps))
	} else if st.Epochs > 0 {
		st.Progress = min(100, 100*float64(st.Epoch)/float64(st.Epochs))
	}
	if st.Done && st.Error == "" && !st.Stopped {
		st.Progress = 100
	}
	if !st.Started.IsZero() {
		end := s.now()
		if !st.Active {
			end = st.Updated
		}
		st.Elapsed = end.Sub(st.Started).Seconds()
		if st.Active && st.Progress > 0 && st.Progress < 100 {
			st.ETA = st.Elapsed * (100 - st.Progress) / st.Progress
		}
	}
	return st
}

// Grid returns the latest PNG grid (nil when none) and its version.
func (s *Store) Grid() ([]byte, int) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.grid, s.st.GridVersion
}

// Start begins a job in the Default store.
func Start(kind string, epochs, totalSteps int) { Default.Start(kind, epochs, totalSteps) }

// Publish records a report in the Default store.
func Publish(u Update) { Default.Publish(u) }

// PublishGrid records a sample grid in the Default store.
func PublishGrid(png []byte) { Default.PublishGrid(png) }

// Finish ends the Default store's job.
func Finish(err error) { Default.Finish(err) }

//go:embed static
var staticFS embed.FS

// Handler serves the training view:
//
//	GET /train               the page (polls the status once a second)
//	GET /train/{file}        its script and style sheet
//	GET /api/train/status    Status as JSON
//	GET /api/train/grid.png  the latest sample grid (404 until there is one)
//
// The page only watches; Jobs.Handler serves it with the controls that
// start and stop a job.
func (s *Store) Handler() http.Handler { return s.handler(nil) }

// handler serves the view; with jobs, the status carries its controls
// and POST /api/train/start and /api/train/stop are served too.
func (s *Store) handler(jobs *Jobs) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /train", func(w http.ResponseWriter, r *http.Request) {
		s.static(w, "train.html", "text/html; charset=utf-8")
	})
	mux.HandleFunc("GET /train/train.js", func(w http.ResponseWriter, r *http.Request) {
		s.static(w, "train.js", "text/javascript; charset=utf-8")
	})
	mux.HandleFunc("GET /api/train/status", func(w http.ResponseWriter, r *http.Request) {
		st := s.Snapshot()
		if jobs != nil {
			c := jobs.Controls()
			st.Controls = &c
		}
		writeJSON(w, http.StatusOK, st)
	})
	mux.HandleFunc("GET /api/train/grid.png", func(w http.ResponseWriter, r *http.Request) {
		png, _ := s.Grid()
		if png == nil {
			http.Error(w, "no sample grid published yet", http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", "image/png")
		w.Header().Set("Cache-Control", "no-store")
		_, _ = w.Write(png)
	})
	if jobs != nil {
		mux.HandleFunc("POST /api/train/start", jobs.serveStart)
		mux.HandleFunc("POST /api/train/stop", jobs.serveStop)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Content-Type-Options", "nosniff")
		mux.ServeHTTP(w, r)
	})
}

// writeJSON answers v as JSON with the given status, never cached.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (s *Store) static(w http.ResponseWriter, name, ctype string) {
	data, err := staticFS.ReadFile("static/" + name)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", ctype)
	w.Header().Set("Cache-Control", "no-cache")
	_, _ = w.Write(data)
}
