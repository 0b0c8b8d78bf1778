package classroom_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/backprop-dev/backprop/classroom"
)

// fuzzServer is the classroom of `backprop serve` (Problem 1 and the
// auto-encoder), built once: every fuzz input is a request to it.
var fuzzServer = sync.OnceValues(func() (http.Handler, error) {
	problems, err := classroom.DefaultProblems(nil)
	if err != nil {
		return nil, err
	}
	return classroom.New(classroom.Options{Problems: problems})
})

// goInternals are fragments of Go's own error texts that an error of the
// API must not show the page's user: type names from encoding/json,
// strconv and fmt's %T.
var goInternals = []string{"Go value of type", "Go struct field", "interface {}", "map[string]", "[]interface", "strconv.", "json.RawMessage", "float64 where", "runtime error"}

// FuzzSolveRequest posts arbitrary bytes to POST /api/solve as the page
// would. Whatever the body, the server must answer without panicking and
// without a server error (5xx), with JSON: on 200 a result whose nodes'
// values have the sizes of their shapes and carry the values the request
// edited, exactly; otherwise a 4xx whose {"error": …} message is non-empty
// and in the user's words (no Go type names). The committed corpus in
// testdata/fuzz/FuzzSolveRequest holds edits of both problems, every
// convention, nested and flat values, and malformed requests: wrong
// shapes, ragged lists, strings, objects, null, 1e309, unknown fields and
// problems, trailing data.
func FuzzSolveRequest(f *testing.F) {
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"problem":"main","values":{"z":[0.5,-1]},"conventions":{"reshape":"column-major","kernel":"flipped","label":"y1"}}`))
	f.Add([]byte(`{"problem":"autoencoder","values":{"x":[1,0]}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		srv, err := fuzzServer()
		if err != nil {
			t.Fatalf("classroom.New: %v", err)
		}
		req := httptest.NewRequest(http.MethodPost, "/api/solve", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, req)
		resp := rec.Result()
		out := rec.Body.Bytes()
		if resp.StatusCode >= 500 {
			t.Fatalf("status %d for %q: %s", resp.StatusCode, body, out)
		}
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			t.Fatalf("status %d, Content-Type %q for %q, want JSON", resp.StatusCode, ct, body)
		}
		if resp.StatusCode != http.StatusOK {
			var e struct {
				Error string `json:"error"`
			}
			if err := json.Unmarshal(out, &e); err != nil || e.Error == "" {
				t.Fatalf("status %d for %q: body %q is not {\"error\": message}", resp.StatusCode, body, out)
			}
			if resp.StatusCode < 400 {
				t.Fatalf("status %d for %q with an error %q, want 4xx", resp.StatusCode, body, e.Error)
			}
			for _, g := range goInternals {
				if strings.Contains(e.Error, g) {
					t.Fatalf("status %d for %q: the error %q shows Go internals (%q); say it in the page's words: which tensor, which element, what is wrong", resp.StatusCode, body, e.Error, g)
				}
			}
			return
		}
		var res classroom.Result
		if err := json.Unmarshal(out, &res); err != nil {
			t.Fatalf("200 for %q, but the body is no Result: %v", body, err)
		}
		if len(res.Nodes) == 0 || res.Worked == "" && res.WorkedError == "" {
			t.Fatalf("200 for %q without nodes or worked solution: %d nodes", body, len(res.Nodes))
		}
		byName := map[string]classroom.Node{}
		for _, n := range res.Nodes {
			size := 1
			for _, d := range n.Shape {
				size *= d
			}
			if len(n.Value) != size || n.Grad != nil && len(n.Grad) != size {
				t.Fatalf("200 for %q: node %s of shape %v has %d values and %d gradients", body, n.Name, n.Shape, len(n.Value), len(n.Grad))
			}
			byName[n.Name] = n
		}
		// the edited values come back as sent
		var sent struct {
			Values map[string]any `json:"values"`
		}
		if json.Unmarshal(body, &sent) != nil {
			return
		}
		for name, v := range sent.Values {
			n, ok := byName[name]
			if !ok {
				t.Fatalf("200 for %q: edited %s is no node of the result", body, name)
			}
			want := numbers(v)
			if len(want) != len(n.Value) {
				t.Fatalf("200 for %q: %s has %d values, %d were sent", body, name, len(n.Value), len(want))
			}
			for i := range want {
				if want[i] != n.Value[i] {
					t.Fatalf("200 for %q: %s[%d] = %v, %v was sent", body, name, i, n.Value[i], want[i])
				}
			}
		}
	})
}

// numbers flattens a decoded JSON number or nested list in row-major order.
func numbers(v any) []float64 {
	switch x := v.(type) {
	case float64:
		return []float64{x}
	case []any:
		var out []float64
		for _, e := range x {
			out = append(out, numbers(e)...)
		}
		return out
	}
	return nil
}
