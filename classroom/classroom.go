// Package classroom is the web page behind `backprop serve`: it draws a
// network written in the spec format as a graph whose nodes show their
// values, lets a student or teacher edit any input or weight in place and
// see every value and gradient change at once, and opens each node's
// forward and backward step of the worked solution, rendered with KaTeX.
// Below the graph the worked solution is the handout of `backprop solve`,
// with every element of every step (--detail full) one switch away.
// A second tab shows the auto-encoder of Problem 2 with its derived
// gradient equations and its worked numbers; beside them a menu offers the
// problem bank (examples.Bank: Mazur's example, a softmax classifier on a
// batch, a conv net with pooling, batch norm, a residual block, momentum
// and Adam steps, ...). A spec with layer inputs (fan-in, several named
// inputs, shared parameters) is drawn as the graph it is, wrapped onto
// several rows (and, if need be, zoomed) so that it fits the window, and a
// spec with train: shows its optimizer steps with the numbers substituted.
// A tab may instead hold an imported ONNX model (Problem.ONNX, `backprop
// serve --spec MODEL.onnx`): its graph, steps and worked solution are
// those of `backprop solve --spec MODEL.onnx`, and its numbers cannot be
// edited on the page (Result.ReadOnly says why).
// A recurrent layer unrolled over time is drawn one column per time step
// (the nodes of step t, Node.Step, in column t under a "t = …" label) with
// the weights every step shares drawn once, above the steps, with an edge
// into each; an attention head's scores S and attention weights A open as
// a heat map in their node panel, each cell showing its number.
// /train shows a training job's progress (package live); with
// Options.Training it also starts and stops a small one (an auto-encoder
// or a DCGAN on the first images of a data set, bounded in images, epochs
// and time), so that the training view is never an empty page.
//
// # Server-side computation, not WebAssembly
//
// The page computes nothing itself: every edit is sent to POST /api/solve,
// and the server runs the very code behind `backprop solve` and `backprop
// derive` and answers with values, gradients and per-node LaTeX. We chose
// this over compiling the engine to WebAssembly because
//
//   - the engine stays one Go implementation with one build: no second
//     target, no wasm_exec.js to keep in step with the Go toolchain, and no
//     multi-megabyte .wasm download before the first picture;
//   - the networks are tiny, so a round trip on the loopback interface is
//     far below what a person notices (the whole answer for Problem 1 —
//     values, gradients, both readings of the worked solution and the
//     derived equations — takes a few milliseconds);
//   - the training view needs a server anyway, to receive progress from a
//     running job;
//   - the API is plain JSON over HTTP, so it is tested with net/http/httptest
//     and scripts can use it too.
//
// The cost is that the page needs `backprop serve` running; it is not a
// static file that can be mailed around.
//
// # API
//
//	GET  /                  the page
//	GET  /static/...        its script, style sheet and KaTeX (embedded)
//	GET  /api/problems      [{id, label, title, group}]
//	POST /api/solve         SolveRequest → Result (JSON)
//	GET  /train             training progress page (when Options.Live is set)
//	GET  /api/train/status  training progress as JSON
//	GET  /api/train/grid.png  the latest sample grid
//	POST /api/train/start   start a small training job (when Options.Training is set)
//	POST /api/train/stop    stop it
//
// Requests larger than MaxRequestBytes are refused with 413, malformed ones
// with 400 (bad JSON) or 422 (well-formed but not fitting the network), and
// the server keeps serving.
package classroom

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"mime"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/backprop-dev/backprop/examples"
	"github.com/backprop-dev/backprop/live"
	"github.com/backprop-dev/backprop/spec"
	"github.com/backprop-dev/backprop/tensor"
)

// MaxRequestBytes is the largest request body the API reads (1 MiB): far
// more than any worked problem needs, small enough that a stray upload
// cannot tie up the server.
const MaxRequestBytes = 1 << 20

//go:embed static
var staticFS embed.FS

// Problem is one tab of the page: a network in the spec format, or an
// imported ONNX model.
type Problem struct {
	ID    string     // used in URLs and requests, e.g. "main"
	Label string     // the tab's label, e.g. "Problem 1: GAN"
	Spec  *spec.Spec // the network with its initial values; nil for ONNX
	// ONNX, when set instead of Spec, is an imported ONNX model, whose
	// numbers the page shows but does not let the user change.
	ONNX *ONNXModel
	// Group is "" for a tab of its own, or BankGroup for a problem of the
	// bank, which the page offers in a menu beside the tabs.
	Group string
}

// BankGroup is the Group of the problem bank's problems.
const BankGroup = "bank"

// BankPrefix starts the ID of every problem of the bank: bank-mazur for
// examples/mazur.yaml.
const BankPrefix = "bank-"

// Options configure a Server.
type Options struct {
	// Problems are the page's tabs, in order; at least one.
	Problems []Problem
	// Live, when set, is mounted at /train and /api/train/.
	Live *live.Store
	// Digits are the significant digits of numbers in formulas (0: 6).
	Digits int
	// Training, when set (with Live), lets the training view start and
	// stop a small training job from the page (POST /api/train/start and
	// /api/train/stop); its Off says when and why it may not.
	Training *TrainingJobs
}

// Server serves the classroom page and its API. It is safe for concurrent
// use: every request solves its own copy of the spec.
type Server struct {
	opt  Options
	mux  *http.ServeMux
	byID map[string]*Problem
	sem  chan struct{}
	jobs *live.Jobs // nil unless Options.Training is set
	// fixed holds the answers of the ONNX problems, computed once by New:
	// their numbers cannot be edited, so every request gets the same.
	fixed map[string]*Result
}

// DefaultProblems are the problems of `backprop serve`: as tabs, the given
// spec (nil: Problem 1 of the problem set, the tiny GAN) and the
// auto-encoder of Problem 2; then, in the bank's menu, every problem of
// examples.Bank in its order, labelled with its title.
func DefaultProblems(main *spec.Spec) ([]Problem, error) {
	load := func(name string) (*spec.Spec, error) {
		data, err := examples.FS.ReadFile(name)
		if err != nil {
			return nil, err
		}
		return spec.Parse("examples/"+name, data)
	}
	label := "Problem 1: GAN"
	if main == nil {
		var err error
		if main, err = load(examples.Problem1); err != nil {
			return nil, err
		}
	} else {
		label = main.Title
		if label == "" {
			label = main.File()
		}
	}
	ae, err := load(examples.Autoencoder)
	if err != nil {
		return nil, err
	}
	out := []Problem{
		{ID: "main", Label: label, Spec: main},
		{ID: "autoencoder", Label: "Problem 2: auto-encoder", Spec: ae},
	}
	bank, err := BankProblems()
	if err != nil {
		return nil, err
	}
	return append(out, bank...), nil
}

// BankProblems are the problems of examples.Bank, each with the ID
// BankPrefix + its file name without .yaml, its title as the label and
// BankGroup as the group.
func BankProblems() ([]Problem, error) {
	var out []Problem
	for _, name := range examples.Bank {
		data, err := examples.FS.ReadFile(name)
		if err != nil {
			return nil, err
		}
		s, err := spec.Parse("examples/"+name, data)
		if err != nil {
			return nil, err
		}
		label := s.Title
		if label == "" {
			label = name
		}
		out = append(out, Problem{ID: BankPrefix + strings.TrimSuffix(name, ".yaml"), Label: label, Spec: s, Group: BankGroup})
	}
	return out, nil
}

// New checks that every problem solves and returns the server.
func New(opt Options) (*Server, error) {
	if len(opt.Problems) == 0 {
		return nil, errors.New("classroom: no problems to show")
	}
	if opt.Digits == 0 {
		opt.Digits = 6
	}
	s := &Server{opt: opt, mux: http.NewServeMux(), byID: map[string]*Problem{}, fixed: map[string]*Result{}, sem: make(chan struct{}, 4)}
	for i := range opt.Problems {
		p := &opt.Problems[i]
		if p.ID == "" || s.byID[p.ID] != nil {
			return nil, fmt.Errorf("classroom: problem %d: empty or repeated id %q", i+1, p.ID)
		}
		if p.ONNX != nil {
			r, err := solveONNX(p.ID, p.ONNX, opt.Digits)
			if err != nil {
				return nil, fmt.Errorf("classroom: %s: %v", p.ONNX.Path, err)
			}
			s.fixed[p.ID] = r
		} else if p.Spec == nil {
			return nil, fmt.Errorf("classroom: problem %q has neither a spec nor an ONNX model", p.ID)
		} else if _, err := solveSpec(p.ID, p.Spec.WithValues(keep), opt.Digits); err != nil {
			return nil, fmt.Errorf("classroom: %s: %v", p.Spec.File(), err)
		}
		s.byID[p.ID] = p
	}
	static, _ := fs.Sub(staticFS, "static")
	files := http.FileServerFS(static)
	s.mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		serveFile(w, static, "index.html")
	})
	s.mux.Handle("GET /static/", http.StripPrefix("/static/", cacheFor(time.Hour, files)))
	s.mux.HandleFunc("GET /api/problems", s.problems)
	s.mux.HandleFunc("POST /api/solve", s.solve)
	if opt.Training != nil && opt.Live == nil {
		return nil, errors.New("classroom: Options.Training needs Options.Live to show the jobs")
	}
	if opt.Live != nil {
		h := opt.Live.Handler()
		if opt.Training != nil {
			s.jobs = newJobs(opt.Live, *opt.Training)
			h = s.jobs.Handler()
		}
		s.mux.Handle("/train", h)
		s.mux.Handle("/train/", h)
		s.mux.Handle("/api/train/", h)
	}
	return s, nil
}

// Close stops the training job started from the page, if one runs, and
// waits until it has ended (its temporary files removed); no job starts
// afterwards. The page itself keeps being served.
func (s *Server) Close() {
	if s.jobs != nil {
		s.jobs.Close()
	}
}

// keep is the identity for Spec.WithValues: a copy with the same values.
func keep(_ string, t *tensor.Tensor[float64]) *tensor.Tensor[float64] { return t }

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Content-Security-Policy", "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self'; connect-src 'self'; frame-ancestors 'none'")
	s.mux.ServeHTTP(w, r)
}

func serveFile(w http.ResponseWriter, fsys fs.FS, name string) {
	data, err := fs.ReadFile(fsys, name)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	_, _ = w.Write(data)
}

func cacheFor(d time.Duration, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", fmt.Sprintf("public, max-age=%d", int(d.Seconds())))
		h.ServeHTTP(w, r)
	})
}

// ProblemInfo is an entry of GET /api/problems.
type ProblemInfo struct {
	ID    string `json:"id"`
	Label string `json:"label"`
	Title string `json:"title"`
	// Group is "" for a tab, BankGroup for a problem of the bank's menu.
	Group string `json:"group,omitempty"`
}

func (s *Server) problems(w http.ResponseWriter, r *http.Request) {
	var out []ProblemInfo
	for _, p := range s.opt.Problems {
		out = append(out, ProblemInfo{ID: p.ID, Label: p.Label, Title: p.title(), Group: p.Group})
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) solve(w http.ResponseWriter, r *http.Request) {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
			writeError(w, &apiError{http.StatusUnsupportedMediaType, "send the request as application/json"})
			return
		}
	}
	body := http.MaxBytesReader(w, r.Body, MaxRequestBytes)
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	var req SolveRequest
	if err := dec.Decode(&req); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, &apiError{http.StatusRequestEntityTooLarge, fmt.Sprintf("request larger than %d bytes", MaxRequestBytes)})
			return
		}
		writeError(w, badRequest("malformed request: %s", requestError(err)))
		return
	}
	if _, err := dec.Token(); err != io.EOF {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, &apiError{http.StatusRequestEntityTooLarge, fmt.Sprintf("request larger than %d bytes", MaxRequestBytes)})
			return
		}
		writeError(w, badRequest("malformed request: data after the JSON object"))
		return
	}
	id := req.Problem
	if id == "" {
		id = s.opt.Problems[0].ID
	}
	p := s.byID[id]
	if p == nil {
		writeError(w, &apiError{http.StatusNotFound, fmt.Sprintf("no problem %q", req.Problem)})
		return
	}
	if r := s.fixed[p.ID]; r != nil {
		if aerr := onnxRequest(p, req); aerr != nil {
			writeError(w, aerr)
			return
		}
		writeJSON(w, http.StatusOK, r)
		return
	}
	select {
	case s.sem <- struct{}{}:
		defer func() { <-s.sem }()
	case <-r.Context().Done():
		return
	}
	c, aerr := withEdits(p.Spec, req)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	res, aerr := solveSpec(p.ID, c, s.opt.Digits)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

// requestError says what is wrong with a request body in the page's
// words, without encoding/json's Go type names.
func requestError(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		want := map[string]string{
			"values":      "an object of names and numbers or lists of numbers",
			"conventions": `an object such as {"reshape": "row-major"}`,
			"problem":     "a problem id (a string)",
		}
		field := te.Field
		if field == "" {
			return fmt.Sprintf("want a JSON object, got %s", jsonWord(te.Value))
		}
		w, ok := want[field]
		if !ok {
			w = "a string"
		}
		return fmt.Sprintf("%s must be %s, got %s", field, w, jsonWord(te.Value))
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("not JSON (at byte %d: %s)", se.Offset, strings.TrimPrefix(se.Error(), "invalid character "))
	}
	if strings.HasPrefix(err.Error(), "json: unknown field ") {
		return "unknown field " + strings.TrimPrefix(err.Error(), "json: unknown field ") + " (a request has problem, values and conventions)"
	}
	return strings.TrimPrefix(err.Error(), "json: ")
}

// jsonWord is encoding/json's name of a JSON value's kind, in words.
func jsonWord(v string) string {
	switch {
	case strings.HasPrefix(v, "number"):
		return "a number"
	case v == "array":
		return "a list"
	case v == "object":
		return "an object"
	case v == "string":
		return "a string"
	case v == "bool":
		return "true or false"
	}
	return v
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, e *apiError) {
	writeJSON(w, e.Status, map[string]string{"error": e.Msg})
}

// IsLoopback reports whether addr (host:port) listens on the loopback
// interface only.
func IsLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// ListenAndServe serves h on addr until ctx ends, then shuts down
// gracefully. It writes the URL to out once listening, and says whether the
// server is reachable from other machines. Training commands with a
// --serve flag use it with the Handler of their live.Store.
func ListenAndServe(ctx context.Context, addr string, h http.Handler, out io.Writer) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	return Serve(ctx, ln, h, out)
}

// Serve is ListenAndServe on an open listener.
func Serve(ctx context.Context, ln net.Listener, h http.Handler, out io.Writer) error {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
	}
	if out != nil {
		Announce(out, ln.Addr(), "/")
		fmt.Fprintln(out, "backprop: press Ctrl+C to stop")
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		err := srv.Shutdown(sctx)
		if e := <-errc; e != nil && !errors.Is(e, http.ErrServerClosed) && err == nil {
			err = e
		}
		return err
	}
}

// Announce writes the URL of path on a server listening at addr to out
// (localhost for an unspecified address such as 0.0.0.0), and says
// whether other machines can reach it.
func Announce(out io.Writer, addr net.Addr, path string) {
	a := addr.String()
	host := a
	if tcp, ok := addr.(*net.TCPAddr); ok && tcp.IP.IsUnspecified() {
		host = net.JoinHostPort("localhost", fmt.Sprint(tcp.Port))
	}
	fmt.Fprintf(out, "backprop: serving on http://%s%s\n", host, path)
	if IsLoopback(a) {
		fmt.Fprintf(out, "backprop: bound to the loopback interface %s: only this machine can connect (--addr 0.0.0.0:PORT to share it on your network)\n", a)
	} else {
		fmt.Fprintf(out, "backprop: WARNING: bound to %s, reachable from other machines on the network; there is no authentication\n", a)
	}
}

// staticNames lists the embedded files, for tests and diagnostics.
func staticNames() []string {
	var out []string
	_ = fs.WalkDir(staticFS, "static", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			out = append(out, strings.TrimPrefix(p, "static/"))
		}
		return nil
	})
	return out
}
