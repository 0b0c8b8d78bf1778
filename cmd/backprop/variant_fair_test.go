package main

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestVariantFairByDefault runs `backprop variant` end to end and reads the
// files as a teacher gets them: the template asks for exactly the sheet's
// values, the key answers them with the discriminator's a within ±4 (a =
// logit(p), computed here from the key's p), the sheet never names the key
// folder, and filling the template from the key grades all right.
func TestVariantFairByDefault(t *testing.T) {
	dir := t.TempDir()
	out, err := runClassroomCmd(t, "variant", "--seed", "77", "--count", "3", "--problem", "both", "--out", dir, "--no-pdf")
	if err != nil {
		t.Fatalf("variant: %v\n%s", err, out)
	}
	if !strings.Contains(out, "autoencoder-01: sheet.md, answers-template.json, key/{spec.yaml,key.json,solution.md,solution-full.md,derivation.md}") {
		t.Errorf("variant output does not list the auto-encoder's derivation:\n%s", out)
	}
	index, _ := os.ReadFile(filepath.Join(dir, "README.md"))
	if !strings.Contains(string(index), "fair draw") || strings.Contains(string(index), "--any-draws") {
		t.Errorf("index README:\n%s", index)
	}
	for _, name := range []string{"gan-01", "gan-02", "gan-03", "autoencoder-01"} {
		var tmpl, key struct {
			Forward   map[string]json.RawMessage `json:"forward"`
			Gradients map[string]json.RawMessage `json:"gradients"`
		}
		read := func(file string, v any) {
			data, err := os.ReadFile(filepath.Join(dir, name, file))
			if err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(data, v); err != nil {
				t.Fatalf("%s/%s: %v", name, file, err)
			}
		}
		read("answers-template.json", &tmpl)
		read(filepath.Join("key", "key.json"), &key)
		sheet, _ := os.ReadFile(filepath.Join(dir, name, "sheet.md"))
		if strings.Contains(string(sheet), "key/") || strings.Contains(string(sheet), "key.json") {
			t.Errorf("%s: the sheet points at the key folder", name)
		}
		want := "a,h0,h1,h2 w0,w1"
		if strings.HasPrefix(name, "autoencoder") {
			want = "L,h,x' b1,b2,w1,w2"
		}
		if got := sortedKeys(tmpl.Forward) + " " + sortedKeys(tmpl.Gradients); got != want {
			t.Errorf("%s: template asks for %s, want %s", name, got, want)
		}
		if strings.HasPrefix(name, "gan") {
			var a, p float64
			json.Unmarshal(key.Forward["a"], &a)
			json.Unmarshal(key.Forward["p"], &p)
			if logit := math.Log(p / (1 - p)); math.Abs(a) > 4 || math.Abs(a-logit) > 1e-9 {
				t.Errorf("%s: key a = %v, logit(p) = %v; want them equal and within ±4", name, a, logit)
			}
		}
		// the template filled with the key's numbers
		filled := map[string]any{"variant": name, "forward": map[string]json.RawMessage{}, "gradients": map[string]json.RawMessage{}}
		for n := range tmpl.Forward {
			filled["forward"].(map[string]json.RawMessage)[n] = key.Forward[n]
		}
		for n := range tmpl.Gradients {
			filled["gradients"].(map[string]json.RawMessage)[n] = key.Gradients[n]
		}
		data, _ := json.Marshal(filled)
		answers := filepath.Join(t.TempDir(), "answers.json")
		os.WriteFile(answers, data, 0o644)
		if out, err := runClassroomCmd(t, "grade", "--key", filepath.Join(dir, name, "key", "key.json"), "--answers", answers); err != nil {
			t.Errorf("%s: grading the filled template: %v\n%s", name, err, out)
		}
	}
}

// TestVariantAnyDrawsFlag checks that --any-draws makes other numbers than
// the fair default, says so in the index and in the spec's command line,
// and gives the old draw of seed 1, whose discriminator saturates.
func TestVariantAnyDrawsFlag(t *testing.T) {
	fair, old := t.TempDir(), t.TempDir()
	if out, err := runClassroomCmd(t, "variant", "--seed", "1", "--out", fair, "--no-pdf"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if out, err := runClassroomCmd(t, "variant", "--seed", "1", "--out", old, "--no-pdf", "--any-draws"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	f, _ := os.ReadFile(filepath.Join(fair, "gan-01", "key", "spec.yaml"))
	o, _ := os.ReadFile(filepath.Join(old, "gan-01", "key", "spec.yaml"))
	if string(f) == string(o) || !strings.Contains(string(o), "--any-draws") {
		t.Errorf("--any-draws spec:\n%s", o)
	}
	index, _ := os.ReadFile(filepath.Join(old, "README.md"))
	if !strings.Contains(string(index), "--any-draws") {
		t.Errorf("index README does not name --any-draws:\n%s", index)
	}
	var key struct {
		Forward struct {
			P float64 `json:"p"`
		} `json:"forward"`
	}
	data, _ := os.ReadFile(filepath.Join(old, "gan-01", "key", "key.json"))
	if err := json.Unmarshal(data, &key); err != nil {
		t.Fatal(err)
	}
	p := key.Forward.P
	if p < 0.99 {
		t.Errorf("seed 1 --any-draws: p = %v, the old draw saturated (p > 0.99)", p)
	}
}

func sortedKeys(m map[string]json.RawMessage) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return strings.Join(keys, ",")
}
