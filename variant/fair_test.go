package variant

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/backprop-dev/backprop/examples"
	"github.com/backprop-dev/backprop/solve"
	"github.com/backprop-dev/backprop/spec"
)

// solved solves a variant's spec afresh and returns its forward values by
// name (flat), independent of the drawing code's checks.
func solved(t *testing.T, v Variant) map[string][]float64 {
	t.Helper()
	s, err := spec.Parse(v.Name, v.Spec)
	if err != nil {
		t.Fatalf("%s: %v", v.Name, err)
	}
	sol, err := solve.Solve(s, solve.Options{})
	if err != nil {
		t.Fatalf("%s: %v", v.Name, err)
	}
	out := map[string][]float64{}
	for _, f := range sol.Forward {
		out[f.Name] = f.Value.Data
	}
	return out
}

func logit(p float64) float64 { return math.Log(p / (1 - p)) }

// zeros counts the exact zeros of a ReLU's output: the units that are off.
func zeros(v []float64) int {
	n := 0
	for _, x := range v {
		if x == 0 {
			n++
		}
	}
	return n
}

// fairOptions are the option sets the fairness tests run per seed: one
// variant at the defaults, and several with other sizes, signs and
// precisions.
var fairOptions = []Options{
	{Count: 1, Precision: 1},
	{Count: 3, Precision: 2, VarySizes: true},
	{Count: 2, Precision: 1, Signed: true},
}

// TestFairGANSeeds1To100 solves the GAN variants of seeds 1–100 and checks
// on the solved values that the discriminator is out of saturation
// (a = logit(p) within ±4) and that at least one ReLU unit of h0 or h2 is
// off while each layer keeps one on.
func TestFairGANSeeds1To100(t *testing.T) {
	for seed := uint64(1); seed <= 100; seed++ {
		for _, o := range fairOptions {
			o.Seed, o.Problem = seed, "gan"
			for _, v := range gen(t, o) {
				f := solved(t, v)
				a := logit(f["p"][0])
				if math.Abs(a) > 4 || math.IsNaN(a) {
					t.Errorf("seed %d %s (%+v): a = logit(p) = %.4g, outside ±4", seed, v.Name, o, a)
				}
				h0, h2 := f["h0"], f["h2"]
				if zeros(h0)+zeros(h2) == 0 {
					t.Errorf("seed %d %s (%+v): no ReLU unit is off (h0 %v, h2 %v)", seed, v.Name, o, h0, h2)
				}
				if zeros(h0) == len(h0) || zeros(h2) == len(h2) {
					t.Errorf("seed %d %s (%+v): a whole ReLU layer is off (h0 %v, h2 %v)", seed, v.Name, o, h0, h2)
				}
			}
		}
	}
}

// TestFairAutoencoderSeeds1To100 is the same for Problem 2: every output
// sigmoid's pre-activation u2 = logit(x') within ±4, at least one hidden
// unit off and one on.
func TestFairAutoencoderSeeds1To100(t *testing.T) {
	for seed := uint64(1); seed <= 100; seed++ {
		for _, o := range fairOptions {
			o.Seed, o.Problem = seed, "autoencoder"
			for _, v := range gen(t, o) {
				f := solved(t, v)
				for i, x := range f["x'"] {
					if u := logit(x); math.Abs(u) > 4 || math.IsNaN(u) {
						t.Errorf("seed %d %s: u2[%d] = logit(x') = %.4g, outside ±4", seed, v.Name, i+1, u)
					}
				}
				if h := f["h"]; zeros(h) == 0 || zeros(h) == len(h) {
					t.Errorf("seed %d %s (%+v): h = %v, want some hidden units off and some on", seed, v.Name, o, h)
				}
			}
		}
	}
}

// TestFairNamesTheSeedsSaturation runs Fair on the problem set's own
// numbers: Problem 1's discriminator saturates (p = 0.9999974269 from the
// worked solution, so a = ln(p/(1−p)) = 12.87 by hand) and no ReLU is off;
// the auto-encoder's worked example, with h = (0.45, 0, 0.52), is fair.
func TestFairNamesTheSeedsSaturation(t *testing.T) {
	for _, c := range []struct{ file, want string }{
		{examples.Problem1, "sigmoid saturated: a = 12.87, outside ±4"},
		{examples.Autoencoder, ""},
	} {
		data, _ := examples.FS.ReadFile(c.file)
		s, err := spec.Parse(c.file, data)
		if err != nil {
			t.Fatal(err)
		}
		why, err := Fair(s)
		if err != nil || why != c.want {
			t.Errorf("%s: Fair = %q, %v; want %q", c.file, why, err, c.want)
		}
	}
	// with a small logit, Problem 1's all-positive numbers still fail: no ReLU is off
	data, _ := examples.FS.ReadFile(examples.Problem1)
	small := strings.Replace(string(data), "b2: 0.3", "b2: -12.0", 1)
	s, err := spec.Parse("small", []byte(small))
	if err != nil {
		t.Fatal(err)
	}
	if why, _ := Fair(s); !strings.HasPrefix(why, "no ReLU unit is off") {
		t.Errorf("all-positive GAN with a = 0.87: Fair = %q", why)
	}
}

// TestAnyDrawsRestoresTheOldNumbers compares --any-draws specs with the
// specs variant wrote before fair draws (testdata/any-draws, written by
// commit 59da24e's `backprop variant`): byte for byte once the comment
// lines and the new ask line are set aside.
func TestAnyDrawsRestoresTheOldNumbers(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("testdata", "any-draws", "*.yaml"))
	if len(files) != 12 {
		t.Fatalf("%d golden specs, want 12", len(files))
	}
	sets := map[string]Options{
		"seed_1_count_2_problem_both":                       {Seed: 1, Count: 2, Problem: "both", Precision: 1},
		"seed_5_count_2_problem_both_signed":                {Seed: 5, Count: 2, Problem: "both", Precision: 1, Signed: true},
		"seed_7_count_2_problem_both_varysizes_precision_2": {Seed: 7, Count: 2, Problem: "both", Precision: 2, VarySizes: true},
	}
	made := map[string][]byte{}
	for tag, o := range sets {
		o.AnyDraws = true
		for _, v := range gen(t, o) {
			made[tag+"__"+v.Name+".yaml"] = v.Spec
		}
	}
	strip := func(b []byte) string {
		var keep []string
		for _, l := range strings.Split(string(b), "\n") {
			if !strings.HasPrefix(l, "#") && !strings.HasPrefix(l, "ask:") {
				keep = append(keep, l)
			}
		}
		return strings.Join(keep, "\n")
	}
	for _, f := range files {
		old, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		got, ok := made[filepath.Base(f)]
		if !ok {
			t.Errorf("%s: no variant made for it", f)
			continue
		}
		if strip(got) != strip(old) {
			t.Errorf("%s: --any-draws spec differs from the old one:\n%s\nwant\n%s", f, strip(got), strip(old))
		}
	}
	// and the old draws are the unfair ones: seed 1's first GAN saturates
	v := gen(t, Options{Seed: 1, Count: 1, Problem: "gan", Precision: 1, AnyDraws: true})[0]
	if a := logit(solved(t, v)["p"][0]); math.Abs(a) <= 4 && !math.IsInf(a, 0) {
		t.Errorf("seed 1 --any-draws: a = %.4g, the old draw saturated", a)
	}
}

// TestFairDrawsAreDeterministic draws the same variants twice and checks a
// variant depends on its seed, problem and number only.
func TestFairDrawsAreDeterministic(t *testing.T) {
	o := Options{Seed: 31, Count: 4, Problem: "both", Precision: 1}
	a, b := gen(t, o), gen(t, o)
	for i := range a {
		if !bytes.Equal(a[i].Spec, b[i].Spec) || !bytes.Equal(a[i].Key, b[i].Key) || !bytes.Equal(a[i].Sheet, b[i].Sheet) || a[i].Attempts != b[i].Attempts {
			t.Errorf("%s differs between two runs", a[i].Name)
		}
	}
	one := gen(t, Options{Seed: 31, Count: 1, Problem: "autoencoder", Precision: 1})
	if !bytes.Equal(one[0].Spec, a[4].Spec) {
		t.Error("autoencoder-01 depends on --count or --problem")
	}
	next := gen(t, Options{Seed: 32, Count: 1, Problem: "gan", Precision: 1})
	if bytes.Equal(next[0].Spec, a[0].Spec) {
		t.Error("seeds 31 and 32 drew the same GAN")
	}
}

var texNumber = regexp.MustCompile(`-?\d+\.\d+`)

// TestSheetFormulasGiveTheKey evaluates the sheet's equations by hand in
// this test — h0 = ReLU(w0 z + b0), the row-major reshape, the sheet's
// index form of the transposed convolution u2[m,n] = b1[m,n] +
// Σ_c Σ_{i+k−1=m, j+l−1=n} h1[c,i,j]·w1ᶜ[k,l], h2 = ReLU(u2), the row-by-row
// flatten and a = w2ᵀH2 + b2 — on the numbers printed in the sheet, and
// compares with the key.
func TestSheetFormulasGiveTheKey(t *testing.T) {
	for _, o := range []Options{
		{Seed: 3, Count: 2, Problem: "gan", Precision: 1},
		{Seed: 4, Count: 3, Problem: "gan", Precision: 2, VarySizes: true, Signed: true},
	} {
		for _, v := range gen(t, o) {
			sheet := string(v.Sheet)
			if !strings.Contains(sheet, ganDeconvFormula) {
				t.Fatalf("%s: the sheet lacks the index formula", v.Name)
			}
			s, err := spec.Parse(v.Name, v.Spec)
			if err != nil {
				t.Fatal(err)
			}
			// the sheet's numbers, in the order it prints them: z, w0, b0, w1¹…, b1, w2, b2
			var nums []float64
			for _, m := range texNumber.FindAllString(sheet, -1) {
				var x float64
				json.Unmarshal([]byte(m), &x)
				nums = append(nums, x)
			}
			take := func(n int) []float64 {
				out := nums[:n]
				nums = nums[n:]
				return out
			}
			nz := s.InputTensor().Len()
			w1shape := s.Params["w1"].Tensor.Shape() // [ch, 1, k, k]
			ch, k := w1shape[0], w1shape[2]
			nh := s.Params["b0"].Tensor.Len()
			side := int(math.Sqrt(float64(nh / ch)))
			out := side + k - 1
			z, w0, b0 := take(nz), take(nh*nz), take(nh)
			w1, b1, w2, b2 := take(ch*k*k), take(out*out), take(out*out), take(1)[0]
			h0 := make([]float64, nh)
			for r := range nh {
				u := b0[r]
				for c := range nz {
					u += w0[r*nz+c] * z[c]
				}
				h0[r] = max(u, 0)
			}
			h1 := func(c, i, j int) float64 { return h0[(c*side+i)*side+j] } // 0-based, row-major
			h2 := make([]float64, out*out)
			a := b2
			for m := 1; m <= out; m++ {
				for n := 1; n <= out; n++ {
					u := b1[(m-1)*out+n-1]
					for c := 0; c < ch; c++ {
						for i := 1; i <= side; i++ {
							for j := 1; j <= side; j++ {
								kk, l := m-i+1, n-j+1 // i + k − 1 = m, j + l − 1 = n
								if kk >= 1 && kk <= k && l >= 1 && l <= k {
									u += h1(c, i-1, j-1) * w1[(c*k+kk-1)*k+l-1]
								}
							}
						}
					}
					h2[(m-1)*out+n-1] = max(u, 0)
					a += w2[(m-1)*out+n-1] * h2[(m-1)*out+n-1]
				}
			}
			var key struct{ Forward map[string]json.RawMessage }
			json.Unmarshal(v.Key, &key)
			var keyH2 [][][]float64
			var keyA float64
			json.Unmarshal(key.Forward["h2"], &keyH2)
			json.Unmarshal(key.Forward["a"], &keyA)
			for m := range out {
				for n := range out {
					if got := keyH2[0][m][n]; math.Abs(got-h2[m*out+n]) > 1e-9 {
						t.Errorf("%s: key h2[1,%d,%d] = %v, the sheet's formula gives %v", v.Name, m+1, n+1, got, h2[m*out+n])
					}
				}
			}
			if math.Abs(keyA-a) > 1e-9 {
				t.Errorf("%s: key a = %v, the sheet's a = w2ᵀH2 + b2 gives %v", v.Name, keyA, a)
			}
		}
	}
}

// TestSheetsStayOutOfTheKey checks that no sheet refers a student to the
// key folder or its files, and that auto-encoder keys, solutions and
// sheets name none of Problem 1's conventions.
func TestSheetsStayOutOfTheKey(t *testing.T) {
	for _, v := range gen(t, Options{Seed: 12, Count: 2, Problem: "both", Precision: 1, VarySizes: true}) {
		// pdflatex makes the PDF: the sheet is ASCII, the math LaTeX
		for i, r := range string(v.Sheet) {
			if r > 127 {
				t.Errorf("%s: the sheet has %q at byte %d, not ASCII", v.Name, r, i)
				break
			}
		}
		for _, bad := range []string{"key/", "key.json", "solution.md", "spec.yaml", "derivation.md", "backprop solve"} {
			if strings.Contains(string(v.Sheet), bad) {
				t.Errorf("%s: the sheet mentions %q", v.Name, bad)
			}
		}
		if v.Problem != "autoencoder" {
			continue
		}
		for name, text := range map[string][]byte{"key.json": v.Key, "solution.md": v.Solution, "sheet.md": v.Sheet} {
			for _, bad := range []string{"reshape", "kernel", "label:", "conventions"} {
				if strings.Contains(string(text), bad) {
					t.Errorf("%s: %s mentions %q, a convention of Problem 1", v.Name, name, bad)
				}
			}
		}
		d := string(v.Derivation)
		// per sample and batched over N samples, with the broadcasts written out
		for _, want := range []string{`\partial`, "w_{1}", "w_{2}", "u_{1}", "u_{2}", "U_{1}", "_{N}"} {
			if !strings.Contains(d, want) {
				t.Errorf("%s: derivation.md lacks %q:\n%s", v.Name, want, d)
			}
		}
	}
}

// TestKeyStepsNumberAsSolutionFull checks that the key's step numbers are
// the headings of key/solution-full.md, pass by pass, so that a step
// `backprop grade` names can be found there.
func TestKeyStepsNumberAsSolutionFull(t *testing.T) {
	for _, v := range gen(t, Options{Seed: 8, Count: 1, Problem: "both", Precision: 1}) {
		var key struct{ Steps []KeyStep }
		if err := json.Unmarshal(v.Key, &key); err != nil {
			t.Fatal(err)
		}
		full := string(v.SolutionFull)
		fwd, bwd, ok := strings.Cut(full, "## Backward pass")
		if !ok {
			t.Fatalf("%s: solution-full.md has no backward pass", v.Name)
		}
		count := map[string]int{}
		for _, st := range key.Steps {
			count[st.Pass]++
			section := fwd
			if st.Pass == "backward" {
				section = bwd
			}
			if !strings.Contains(section, fmt.Sprintf("### Step %d: ", st.Step)) {
				t.Errorf("%s: no heading for %s step %d (%s) in solution-full.md", v.Name, st.Pass, st.Step, st.Target)
			}
		}
		if n := strings.Count(fwd, "### Step "); n != count["forward"] {
			t.Errorf("%s: %d forward steps in solution-full.md, %d in the key", v.Name, n, count["forward"])
		}
		if n := strings.Count(bwd, "### Step "); n != count["backward"] {
			t.Errorf("%s: %d backward steps in solution-full.md, %d in the key", v.Name, n, count["backward"])
		}
	}
}
