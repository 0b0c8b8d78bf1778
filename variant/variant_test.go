package variant

import (
	"bytes"
	"encoding/json"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/backprop-dev/backprop/examples"
	"github.com/backprop-dev/backprop/solve"
	"github.com/backprop-dev/backprop/spec"
)

func gen(t *testing.T, o Options) []Variant {
	t.Helper()
	vs, err := Generate(o)
	if err != nil {
		t.Fatal(err)
	}
	return vs
}

// readTree reads every file under dir.
func readTree(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		rel, _ := filepath.Rel(dir, p)
		out[rel] = b
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestSameSeedSameBytes writes the same options twice and compares every
// file byte for byte.
func TestSameSeedSameBytes(t *testing.T) {
	for _, o := range []Options{
		{Seed: 42, Count: 3, Problem: "both", Precision: 1},
		{Seed: 7, Count: 2, Problem: "both", Precision: 2, VarySizes: true, Signed: true},
		{Seed: 9, Count: 2, Problem: "both", Precision: 1, AnyDraws: true},
	} {
		a, b := t.TempDir(), t.TempDir()
		if _, err := Write(a, o, gen(t, o)); err != nil {
			t.Fatal(err)
		}
		if _, err := Write(b, o, gen(t, o)); err != nil {
			t.Fatal(err)
		}
		ta, tb := readTree(t, a), readTree(t, b)
		// per variant: sheet, template, spec, key, solution, solution-full; derivation.md for the auto-encoder
		if len(ta) != 1+(6+7)*o.Count || len(ta) != len(tb) {
			t.Fatalf("%d and %d files", len(ta), len(tb))
		}
		for name, data := range ta {
			if !bytes.Equal(data, tb[name]) {
				t.Errorf("seed %d: %s differs between two runs", o.Seed, name)
			}
		}
	}
}

func TestSeedsAndIndicesDiffer(t *testing.T) {
	a := gen(t, Options{Seed: 1, Count: 3, Problem: "gan", Precision: 1})
	b := gen(t, Options{Seed: 2, Count: 3, Problem: "gan", Precision: 1})
	if bytes.Equal(a[0].Spec, b[0].Spec) || bytes.Equal(a[0].Spec, a[1].Spec) {
		t.Error("different seeds or indices gave the same spec")
	}
	// a variant does not depend on how many are made
	c := gen(t, Options{Seed: 1, Count: 1, Problem: "gan", Precision: 1})
	if !bytes.Equal(a[0].Key, c[0].Key) {
		t.Error("variant 1 changed with --count")
	}
}

// TestDefaultSizesAreTheSeed checks that without --vary-sizes a GAN
// variant has exactly Problem 1's shapes and an auto-encoder variant those
// of the worked example.
func TestDefaultSizesAreTheSeed(t *testing.T) {
	for _, c := range []struct{ problem, file string }{{"gan", examples.Problem1}, {"autoencoder", examples.Autoencoder}} {
		data, _ := examples.FS.ReadFile(c.file)
		seed, err := spec.Parse(c.file, data)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range gen(t, Options{Seed: 3, Count: 4, Problem: c.problem, Precision: 1}) {
			s, err := spec.Parse(v.Name, v.Spec)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(s.ParamOrder, ",") != strings.Join(seed.ParamOrder, ",") {
				t.Fatalf("%s: params %v", v.Name, s.ParamOrder)
			}
			for _, name := range seed.ParamOrder {
				if got, want := s.Params[name].Tensor.Shape(), seed.Params[name].Tensor.Shape(); !equalInts(got, want) {
					t.Errorf("%s: %s has shape %v, the seed's %v", v.Name, name, got, want)
				}
				for _, x := range s.Params[name].Tensor.Data() {
					if x*10 != float64(int(x*10+0.5*sign(x))) {
						t.Errorf("%s: %s has %v, not one decimal", v.Name, name, x)
					}
				}
			}
		}
	}
}

func sign(x float64) float64 {
	if x < 0 {
		return -1
	}
	return 1
}

func equalInts(a, b []int) bool {
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

// TestKeysMatchTheEngine solves every variant's spec independently and
// compares the key's numbers, and checks the key's steps and the template.
func TestKeysMatchTheEngine(t *testing.T) {
	for seed := uint64(1); seed <= 6; seed++ {
		o := Options{Seed: seed, Count: 2, Problem: "both", Precision: 1 + int(seed%3), VarySizes: seed%2 == 0, Signed: seed%3 == 0}
		for _, v := range gen(t, o) {
			s, err := spec.Parse(v.Name, v.Spec)
			if err != nil {
				t.Fatalf("%s: %v", v.Name, err)
			}
			sol, err := solve.Solve(s, solve.Options{})
			if err != nil {
				t.Fatal(err)
			}
			var js bytes.Buffer
			sol.WriteJSON(&js)
			var want, key map[string]json.RawMessage
			json.Unmarshal(js.Bytes(), &want)
			if err := json.Unmarshal(v.Key, &key); err != nil {
				t.Fatalf("%s: key.json: %v", v.Name, err)
			}
			if !jsonEqual(t, want["gradients"], key["gradients"]) {
				t.Errorf("%s: key gradients differ from solve --format json", v.Name)
			}
			// the key's forward values are solve's plus the discriminator's
			// pre-activation a, which the sheet asks for
			var wantF, keyF map[string]json.RawMessage
			json.Unmarshal(want["forward"], &wantF)
			json.Unmarshal(key["forward"], &keyF)
			for n, raw := range wantF {
				if !jsonEqual(t, raw, keyF[n]) {
					t.Errorf("%s: key forward.%s differs from solve --format json", v.Name, n)
				}
			}
			extra := len(keyF) - len(wantF)
			if v.Problem == "gan" {
				var a, p float64
				json.Unmarshal(keyF["a"], &a)
				json.Unmarshal(wantF["p"], &p)
				// independent: a = logit(p) = log(p / (1 − p))
				if logit := math.Log(p / (1 - p)); extra != 1 || math.Abs(a-logit) > 1e-9*max(1, math.Abs(a)) {
					t.Errorf("%s: key forward has %d extra values, a = %v, logit(p) = %v", v.Name, extra, a, logit)
				}
			} else if extra != 0 {
				t.Errorf("%s: key forward has %d values solve does not report", v.Name, extra)
			}
			var steps []KeyStep
			json.Unmarshal(key["steps"], &steps)
			if len(steps) != len(sol.Trace.Forward)+len(sol.Trace.Backward) {
				t.Errorf("%s: %d steps", v.Name, len(steps))
			}
			labels := map[string]bool{}
			answered := map[string]bool{}
			for _, st := range steps {
				n := 1
				for _, d := range st.Shape {
					n *= d
				}
				if len(st.Elements) != n {
					t.Errorf("%s: step %s has %d elements for shape %v", v.Name, st.Target, len(st.Elements), st.Shape)
				}
				for _, e := range st.Elements {
					if labels[e.Label] {
						t.Errorf("%s: label %s twice", v.Name, e.Label)
					}
					labels[e.Label] = true
					if e.Line == "" || !strings.HasPrefix(e.Line, e.Label+" = ") {
						t.Errorf("%s: %s has line %q", v.Name, e.Label, e.Line)
					}
				}
				if st.Answer != "" {
					answered[st.Answer] = true
				}
			}
			for _, p := range s.ParamOrder {
				if !answered["gradients."+p] {
					t.Errorf("%s: no step holds the gradient of %s", v.Name, p)
				}
			}
			for _, f := range s.Ask.Forward {
				if !answered["forward."+f] {
					t.Errorf("%s: no step holds the asked forward value %s", v.Name, f)
				}
			}
			if !labels["∂J/∂"+s.ParamOrder[0]+"[1,1]"] {
				t.Errorf("%s: no label ∂J/∂%s[1,1]", v.Name, s.ParamOrder[0])
			}
			var tmpl struct {
				Variant   string
				Forward   map[string]any
				Gradients map[string]any
			}
			if err := json.Unmarshal(v.Template, &tmpl); err != nil {
				t.Fatalf("%s: template: %v", v.Name, err)
			}
			wantAsk := map[string][]string{
				"gan":         {"h0,h1,h2,a", "w1,w0"},
				"autoencoder": {"h,x',L", "w1,b1,w2,b2"},
			}[v.Problem]
			if tmpl.Variant != v.Name || strings.Join(keysOf(t, v.Template, "forward"), ",") != wantAsk[0] || strings.Join(keysOf(t, v.Template, "gradients"), ",") != wantAsk[1] {
				t.Errorf("%s: template for %q asks for forward %v and gradients %v, want %v", v.Name, tmpl.Variant, keysOf(t, v.Template, "forward"), keysOf(t, v.Template, "gradients"), wantAsk)
			}
			if strings.Join(s.Ask.Forward, ",") != wantAsk[0] || strings.Join(s.Ask.Gradients, ",") != wantAsk[1] {
				t.Errorf("%s: spec asks for %+v, want %v", v.Name, s.Ask, wantAsk)
			}
			if strings.Contains(string(v.Template), ".") {
				t.Errorf("%s: the template gives numbers away", v.Name)
			}
			if !strings.Contains(string(v.Sheet), "## Tasks") || !strings.Contains(string(v.Solution), "## Backward pass") {
				t.Errorf("%s: sheet or solution incomplete", v.Name)
			}
			x := s.InputTensor().Data()[0]
			if !strings.Contains(string(v.Sheet), "("+formatFor(o, x)) {
				t.Errorf("%s: the sheet does not show the input %v", v.Name, x)
			}
		}
	}
}

// keysOf lists the keys of the object doc[section] in the order written.
func keysOf(t *testing.T, doc []byte, section string) []string {
	t.Helper()
	var top map[string]json.RawMessage
	if err := json.Unmarshal(doc, &top); err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(top[section]))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		t.Fatalf("%s is not an object", section)
	}
	var keys []string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, tok.(string))
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			t.Fatal(err)
		}
	}
	return keys
}

func formatFor(o Options, x float64) string {
	d := &drawer{prec: o.Precision}
	return d.format(x)
}

func jsonEqual(t *testing.T, a, b json.RawMessage) bool {
	t.Helper()
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	xa, _ := json.Marshal(x)
	ya, _ := json.Marshal(y)
	return bytes.Equal(xa, ya)
}

func TestOptionsChecked(t *testing.T) {
	for _, o := range []Options{
		{Seed: 1, Count: 0, Problem: "gan", Precision: 1},
		{Seed: 1, Count: 1, Problem: "vae", Precision: 1},
		{Seed: 1, Count: 1, Problem: "gan", Precision: 0},
		{Seed: 1, Count: 1, Problem: "gan", Precision: 5},
	} {
		if _, err := Generate(o); err == nil {
			t.Errorf("%+v: no error", o)
		}
	}
}

func TestPDFWhenToolsExist(t *testing.T) {
	pandoc, engine := PDFTools()
	if pandoc == "" || engine == "" {
		t.Skip("pandoc and a LaTeX engine are not both on PATH")
	}
	dir := t.TempDir()
	o := Options{Seed: 5, Count: 1, Problem: "both", Precision: 1}
	vs := gen(t, o)
	if _, err := Write(dir, o, vs); err != nil {
		t.Fatal(err)
	}
	for _, v := range vs {
		md := filepath.Join(dir, v.Name, "sheet.md")
		pdf := filepath.Join(dir, v.Name, "sheet.pdf")
		if err := PDF(t.Context(), pandoc, engine, md, pdf); err != nil {
			t.Fatal(err)
		}
		first, err := os.ReadFile(pdf)
		if err != nil || !bytes.HasPrefix(first, []byte("%PDF")) {
			t.Fatalf("%s: no PDF", pdf)
		}
		if filepath.Base(engine) != "pdflatex" {
			continue
		}
		if err := PDF(t.Context(), pandoc, engine, md, pdf); err != nil {
			t.Fatal(err)
		}
		if again, _ := os.ReadFile(pdf); !bytes.Equal(first, again) {
			t.Errorf("%s: a second run gave different PDF bytes", pdf)
		}
	}
}
