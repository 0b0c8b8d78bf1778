package classroom

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/backprop-dev/backprop/live"
	"github.com/backprop-dev/backprop/solve"
	"github.com/backprop-dev/backprop/spec"
	"github.com/backprop-dev/backprop/tensor"
)

func newTestServer(t *testing.T) (*httptest.Server, []Problem) {
	t.Helper()
	problems, err := DefaultProblems(nil)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := New(Options{Problems: problems, Live: live.NewStore()})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	return ts, problems
}

func post(t *testing.T, ts *httptest.Server, body string) (int, []byte) {
	t.Helper()
	resp, err := http.Post(ts.URL+"/api/solve", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func decode(t *testing.T, b []byte) *Result {
	t.Helper()
	var r Result
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("decoding result: %v\n%s", err, b)
	}
	return &r
}

func node(t *testing.T, r *Result, name string) Node {
	t.Helper()
	for _, n := range r.Nodes {
		if n.Name == name {
			return n
		}
	}
	t.Fatalf("no node %q", name)
	return Node{}
}

// engineJSON is `backprop solve --format json` for s.
func engineJSON(t *testing.T, s *spec.Spec, opt solve.Options) map[string]map[string]any {
	t.Helper()
	sol, err := solve.Solve(s, opt)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := sol.WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	// the objects (forward, gradients, meta); steps is a list
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b.Bytes(), &raw); err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]any{}
	for k, v := range raw {
		var m map[string]any
		if json.Unmarshal(v, &m) == nil {
			out[k] = m
		}
	}
	return out
}

func flat(v any) []float64 {
	d, _, _ := flatten(v, 0)
	return d
}

func sameFloats(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestSolveMatchesEngine(t *testing.T) {
	ts, problems := newTestServer(t)
	for _, p := range problems {
		code, b := post(t, ts, fmt.Sprintf(`{"problem": %q}`, p.ID))
		if code != 200 {
			t.Fatalf("%s: status %d: %s", p.ID, code, b)
		}
		r := decode(t, b)
		want := engineJSON(t, p.Spec.WithValues(keep), solve.Options{})
		for name, v := range want["forward"] {
			if got := node(t, r, name).Value; !sameFloats(got, flat(v)) {
				t.Errorf("%s: %s = %v, engine %v", p.ID, name, got, flat(v))
			}
		}
		for name, v := range want["gradients"] {
			if got := node(t, r, name).Grad; !sameFloats(got, flat(v)) {
				t.Errorf("%s: ∂J/∂%s = %v, engine %v", p.ID, name, got, flat(v))
			}
		}
		var sol map[string]any
		if err := json.Unmarshal(r.Solution, &sol); err != nil {
			t.Errorf("%s: solution is not JSON: %v", p.ID, err)
		}
		if !strings.Contains(r.Worked, "## Backward pass") || (r.Derivation == "" && r.DerivationError == "") {
			t.Errorf("%s: worked solution or derivation missing", p.ID)
		}
		if (p.Spec.Train != nil) != (r.Train != nil) {
			t.Errorf("%s: train: %v in the spec, optimizer steps %v in the answer", p.ID, p.Spec.Train != nil, r.Train != nil)
		}
	}
}

func TestGraphOfProblem1(t *testing.T) {
	ts, _ := newTestServer(t)
	_, b := post(t, ts, `{}`)
	r := decode(t, b)
	var names []string
	for _, n := range r.Nodes {
		names = append(names, n.Name+":"+n.Kind)
	}
	want := "w0:param b0:param w1:param b1:param w2:param b2:param z:input u0:value h0:value h1:value u2:value h2:value H2:value a:value p:value log_p:objective"
	if got := strings.Join(names, " "); got != want {
		t.Errorf("nodes:\n got %s\nwant %s", got, want)
	}
	edges := map[string]bool{}
	for _, e := range r.Edges {
		edges[e.From+"→"+e.To] = true
	}
	for _, e := range []string{"z→u0", "w0→u0", "b0→u0", "u0→h0", "h0→h1", "h1→u2", "w1→u2", "b1→u2", "u2→h2", "h2→H2", "H2→a", "w2→a", "b2→a", "a→p", "a→log_p"} {
		if !edges[e] {
			t.Errorf("missing edge %s", e)
		}
	}
	if len(r.Edges) != 15 {
		t.Errorf("%d edges, want 15", len(r.Edges))
	}
	if !r.Relevant.Reshape || !r.Relevant.Kernel || !r.Relevant.Label {
		t.Errorf("relevant conventions %+v, want all", r.Relevant)
	}
	h0 := node(t, r, "h0")
	if h0.Forward == nil || h0.Backward == nil {
		t.Fatal("h0 has no steps")
	}
	if want := "h0[1] = ReLU(w0[1,1]·z[1] + w0[1,2]·z[2] + b0[1]) = ReLU(0.1·0.4 + 0.3·0.8 + 0.1) = ReLU(0.38) = 0.38"; h0.Forward.LinesText[0] != want {
		t.Errorf("h0 line 1:\n got %s\nwant %s", h0.Forward.LinesText[0], want)
	}
	if !strings.Contains(h0.Forward.Lines[0], `\operatorname{ReLU}`) || strings.Contains(h0.Forward.Lines[0], "&") {
		t.Errorf("h0 LaTeX line: %s", h0.Forward.Lines[0])
	}
	u0 := node(t, r, "u0")
	if u0.InlineIn != "h0" || u0.Forward == nil || !strings.HasPrefix(u0.Forward.HeadText, "u0 = ") {
		t.Errorf("u0: inline in %q, forward %+v", u0.InlineIn, u0.Forward)
	}
	if got := node(t, r, "w0").Consumers; len(got) != 1 || got[0] != "u0" {
		t.Errorf("w0 consumers %v, want [u0]", got)
	}
	if node(t, r, "z").Grad != nil || node(t, r, "p").Grad != nil {
		t.Error("z and p should have no gradient")
	}
}

// TestStepsAreTheSolveText checks that every element line the page shows is
// a line of `backprop solve --detail full` (text) for the same values, and
// that the LaTeX of each step's formula, element lines and result is that
// of the Markdown the page receives as the full trace.
func TestStepsAreTheSolveText(t *testing.T) {
	ts, problems := newTestServer(t)
	for _, p := range problems {
		_, b := post(t, ts, fmt.Sprintf(`{"problem": %q}`, p.ID))
		r := decode(t, b)
		sol, err := solve.Solve(p.Spec.WithValues(keep), solve.Options{Detail: "full"})
		if err != nil {
			t.Fatal(err)
		}
		var txt bytes.Buffer
		if err := sol.WriteText(&txt); err != nil {
			t.Fatal(err)
		}
		lines := map[string]bool{}
		for _, l := range strings.Split(txt.String(), "\n") {
			lines[strings.TrimSpace(l)] = true
		}
		for _, n := range r.Nodes {
			for _, st := range []*StepText{n.Forward, n.Backward} {
				if st == nil {
					continue
				}
				if len(st.Lines) != len(st.LinesText) {
					t.Errorf("%s/%s: %d LaTeX lines, %d text lines", p.ID, n.Name, len(st.Lines), len(st.LinesText))
				}
				if st.Head == "" || st.Result == "" {
					t.Errorf("%s/%s: empty head or result", p.ID, n.Name)
				}
				if n.InlineIn != "" && st == n.Forward {
					continue // a finer step than the solution shows
				}
				for _, l := range st.LinesText {
					if !lines[l] {
						t.Errorf("%s/%s: line not in the solve output: %s", p.ID, n.Name, l)
					}
				}
				if !lines["[1] "+st.HeadText] && !strings.Contains(txt.String(), "] "+st.HeadText+"\n") {
					t.Errorf("%s/%s: formula not in the solve output: %s", p.ID, n.Name, st.HeadText)
				}
				for what, want := range map[string]string{"formula": "$$\n" + st.Head + "\n$$", "result": "$$\n" + st.Result + "\n$$"} {
					if !strings.Contains(r.WorkedFull, want) {
						t.Errorf("%s/%s: the %s's LaTeX is not in the full trace: %s", p.ID, n.Name, what, want)
					}
				}
				for _, l := range st.Lines {
					if want := strings.Replace(l, " = ", " &= ", 1) + `\\`; !strings.Contains(r.WorkedFull, want) {
						t.Errorf("%s/%s: LaTeX line not in the full trace: %s", p.ID, n.Name, want)
					}
				}
			}
		}
	}
}

func TestEditAndConventions(t *testing.T) {
	ts, problems := newTestServer(t)
	code, b := post(t, ts, `{"problem":"main","values":{"w0":[[0.5,0.3],[0.7,0.9],[0.5,0.7],[0.1,0.9],[0.3,0.1],[0.4,0.6],[0.7,0.8],[0.2,0.1]],"z":[0.4,-0.8]},"conventions":{"label":"y1","reshape":"column-major"}}`)
	if code != 200 {
		t.Fatalf("status %d: %s", code, b)
	}
	r := decode(t, b)
	s := problems[0].Spec.WithValues(func(name string, old *tensor.Tensor[float64]) *tensor.Tensor[float64] {
		switch name {
		case "w0":
			c := old.Clone()
			c.Data()[0] = 0.5
			return c
		case "z":
			return tensor.MustFromSlice([]float64{0.4, -0.8}, 2)
		}
		return old
	})
	want := engineJSON(t, s, solve.Options{Label: "y1", Reshape: "column-major"})
	for _, name := range []string{"h0", "h2", "p"} {
		if got := node(t, r, name).Value; !sameFloats(got, flat(want["forward"][name])) {
			t.Errorf("%s = %v, engine %v", name, got, want["forward"][name])
		}
	}
	for _, name := range []string{"w0", "w1", "b2"} {
		if got := node(t, r, name).Grad; !sameFloats(got, flat(want["gradients"][name])) {
			t.Errorf("∂J/∂%s = %v, engine %v", name, got, want["gradients"][name])
		}
	}
	if r.Conventions.Label != "y1" || r.Conventions.Reshape != "column-major" || r.Conventions.Kernel != "pytorch" {
		t.Errorf("conventions %+v", r.Conventions)
	}
	// the flat form is accepted too, and the spec itself is not changed
	code, b = post(t, ts, `{"values":{"b2":[1.5]}}`)
	if code != 200 {
		t.Fatalf("flat b2: %d %s", code, b)
	}
	if got := node(t, decode(t, b), "b2").Value[0]; got != 1.5 {
		t.Errorf("b2 = %v", got)
	}
	if problems[0].Spec.Params["b2"].Tensor.Data()[0] != 0.3 || problems[0].Spec.Conventions.Label != "y0" {
		t.Error("a request changed the server's spec")
	}
}

// TestBadRequests sends malformed and oversized requests: each gets a 4xx
// with a message, and the server keeps answering.
func TestBadRequests(t *testing.T) {
	ts, _ := newTestServer(t)
	huge := `{"values":{"w0":[` + strings.Repeat("0.1,", MaxRequestBytes/4+10) + `0.1]}}`
	cases := []struct {
		name, body string
		status     int
		msg        string
	}{
		{"not JSON", `{"values": {`, 400, "malformed"},
		{"text", `hello`, 400, "malformed"},
		{"unknown field", `{"problem":"main","weights":{}}`, 400, "unknown field"},
		{"trailing data", `{} {}`, 400, "after the JSON"},
		{"text in a number", `{"values":{"b2":"abc"}}`, 422, "b2"},
		{"text in a list", `{"values":{"z":[0.4,"x"]}}`, 422, "z"},
		{"null", `{"values":{"z":[0.4,null]}}`, 422, "null"},
		{"wrong shape", `{"values":{"w0":[1,2,3]}}`, 422, "shape"},
		{"ragged", `{"values":{"w0":[[1,2],[3]]}}`, 422, "ragged"},
		{"unknown name", `{"values":{"w9":[1]}}`, 422, "w9"},
		{"bad convention", `{"conventions":{"kernel":"sideways"}}`, 422, "kernel"},
		{"unknown problem", `{"problem":"nope"}`, 404, "nope"},
		{"overflow", `{"values":{"w2":[1e308,1e308,1e308,1e308,1e308,1e308,1e308,1e308,1e308,1e308,1e308,1e308,1e308,1e308,1e308,1e308]}}`, 422, "overflow"},
		{"number too large for JSON", `{"values":{"b2":1e999}}`, 400, "values.b2: want a finite number, got 1e999"},
		// the tensor and the element, 1-based as on the page
		{"element too large", `{"values":{"z":[1e309,0.8]}}`, 400, "values.z[1]: want a finite number, got 1e309"},
		{"element of a matrix", `{"values":{"w0":[[0.1,0.3],[0.7,-1e400],[0.5,0.7],[0.1,0.9],[0.3,0.1],[0.4,0.6],[0.7,0.8],[0.2,0.1]]}}`, 400, "values.w0[2,2]: want a finite number, got -1e400"},
		{"element of a flat list", `{"values":{"w0":[0.1,0.3,0.7,0.9,0.5,0.7,0.1,0.9,0.3,0.1,0.4,0.6,0.7,0.8,0.2,"x"]}}`, 422, "values.w0[8,2]: want a number, got a string"},
		{"element null", `{"values":{"z":[0.4,null]}}`, 422, "values.z[2]: want a number, got null"},
		{"element a list", `{"values":{"z":[0.4,[1]]}}`, 422, "values.z: ragged list: item 2 is a list of shape [1] but item 1 is a number"},
		{"ragged row", `{"values":{"w0":[[0.1,0.3],[0.7]]}}`, 422, "values.w0: ragged list: item 2"},
		{"element an object", `{"values":{"z":[{"a":1},0.4]}}`, 422, "values.z[1]: want a number, got an object"},
		{"oversized", huge, 413, "larger than"},
	}
	for _, c := range cases {
		code, b := post(t, ts, c.body)
		if code != c.status {
			t.Errorf("%s: status %d, want %d (%.200s)", c.name, code, c.status, b)
			continue
		}
		var e struct{ Error string }
		if err := json.Unmarshal(b, &e); err != nil || !strings.Contains(e.Error, c.msg) {
			t.Errorf("%s: error %q, want it to mention %q", c.name, e.Error, c.msg)
		}
	}
	resp, err := http.Post(ts.URL+"/api/solve", "text/plain", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnsupportedMediaType {
		t.Errorf("text/plain: status %d, want 415", resp.StatusCode)
	}
	resp, err = http.Get(ts.URL + "/api/solve")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET /api/solve: status %d, want 405", resp.StatusCode)
	}
	// still up and answering correctly
	if code, b := post(t, ts, `{}`); code != 200 || node(t, decode(t, b), "h0").Value[0] != 0.38 {
		t.Errorf("after bad requests: status %d", code)
	}
}

func TestConcurrentRequests(t *testing.T) {
	ts, _ := newTestServer(t)
	var wg sync.WaitGroup
	errs := make(chan string, 16)
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v := 0.1 * float64(i)
			resp, err := http.Post(ts.URL+"/api/solve", "application/json", strings.NewReader(fmt.Sprintf(`{"values":{"b2":%g}}`, v)))
			if err != nil {
				errs <- err.Error()
				return
			}
			defer resp.Body.Close()
			var r Result
			if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
				errs <- err.Error()
				return
			}
			for _, n := range r.Nodes {
				if n.Name == "b2" && n.Value[0] != v {
					errs <- fmt.Sprintf("request %d got b2 = %v", i, n.Value[0])
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

func TestPagesAndAssets(t *testing.T) {
	ts, _ := newTestServer(t)
	for path, want := range map[string]string{
		"/":                           "text/html",
		"/static/app.js":              "javascript",
		"/static/app.css":             "text/css",
		"/static/katex/katex.min.js":  "javascript",
		"/static/katex/katex.min.css": "text/css",
		"/api/problems":               "application/json",
		"/train":                      "text/html",
		"/api/train/status":           "application/json",
		"/static/katex/fonts/KaTeX_Main-Regular.woff2": "font/woff2",
	} {
		resp, err := http.Get(ts.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(resp.Header.Get("Content-Type"), want) {
			t.Errorf("%s: %d %s", path, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
	}
	resp, err := http.Get(ts.URL + "/nothing-here")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Errorf("unknown path: %d", resp.StatusCode)
	}
	names := strings.Join(staticNames(), " ")
	for _, f := range []string{"index.html", "app.js", "katex/katex.min.js", "katex/LICENSE"} {
		if !strings.Contains(names, f) {
			t.Errorf("embedded files lack %s", f)
		}
	}
}

func TestIsLoopback(t *testing.T) {
	for addr, want := range map[string]bool{"127.0.0.1:8080": true, "localhost:80": true, "[::1]:9": true, "0.0.0.0:8080": false, ":8080": false, "192.168.1.2:80": false, "nonsense": false} {
		if got := IsLoopback(addr); got != want {
			t.Errorf("IsLoopback(%q) = %v", addr, got)
		}
	}
}

func TestServeAnnouncesLoopbackAndStops(t *testing.T) {
	problems, err := DefaultProblems(nil)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := New(Options{Problems: problems})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var out bytes.Buffer
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, ln, srv, &out) }()
	url := "http://" + ln.Addr().String()
	var resp *http.Response
	for range 50 {
		if resp, err = http.Get(url + "/api/problems"); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	cancel()
	if err := <-done; err != nil {
		t.Errorf("shutdown: %v", err)
	}
	if !strings.Contains(out.String(), "serving on "+url) || !strings.Contains(out.String(), "loopback") {
		t.Errorf("announcement:\n%s", out.String())
	}
	if _, err := http.Get(url + "/train"); err == nil {
		t.Error("server still answering after shutdown")
	}
}

// TestCustomSpec serves a network of the user's own (as --spec does): a
// different shape, names and objective still make a graph with steps.
func TestCustomSpec(t *testing.T) {
	const yaml = `
title: "two-layer classifier"
input: {name: x, value: [0.5, -0.2, 0.1]}
layers:
  - {type: linear, name: h, weight: W, bias: c, activation: tanh}
  - {type: logistic, name: q, weight: v, bias: d}
objective: {type: bce, label: 1}
params:
  W: [[0.1, 0.2, 0.3], [-0.3, 0.2, 0.1]]
  c: [0.0, 0.1]
  v: [0.5, -0.5]
  d: [0.2]
`
	s, err := spec.Parse("custom.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	problems, err := DefaultProblems(s)
	if err != nil {
		t.Fatal(err)
	}
	if problems[0].Label != "two-layer classifier" || problems[1].ID != "autoencoder" {
		t.Errorf("tabs %q, %q", problems[0].Label, problems[1].ID)
	}
	srv, err := New(Options{Problems: problems})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	code, b := post(t, ts, `{"values": {"d": 0.7}}`)
	if code != 200 {
		t.Fatalf("%d %s", code, b)
	}
	r := decode(t, b)
	if r.Relevant.Reshape || r.Relevant.Kernel || !r.Relevant.Label {
		t.Errorf("relevant %+v", r.Relevant)
	}
	want := engineJSON(t, s.WithValues(func(name string, old *tensor.Tensor[float64]) *tensor.Tensor[float64] {
		if name == "d" {
			return tensor.MustFromSlice([]float64{0.7}, 1)
		}
		return old
	}), solve.Options{})
	for name, v := range want["gradients"] {
		if got := node(t, r, name).Grad; !sameFloats(got, flat(v)) {
			t.Errorf("∂J/∂%s = %v, engine %v", name, got, flat(v))
		}
	}
	obj := 0
	for _, n := range r.Nodes {
		if n.Kind == "objective" {
			obj++
			if n.Name != "loss" {
				t.Errorf("objective node %s", n.Name)
			}
		}
		if n.Kind != "input" && n.Kind != "param" && n.Forward == nil && n.InlineIn == "" {
			t.Errorf("%s has no forward step", n.Name)
		}
	}
	if obj != 1 {
		t.Errorf("%d objective nodes", obj)
	}
}
