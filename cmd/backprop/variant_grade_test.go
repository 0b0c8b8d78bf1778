package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// runClassroomCmd executes a command of this binary in-process and returns its output.
func runClassroomCmd(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	var err error
	switch args[0] {
	case "variant":
		c := variantCmd()
		c.SetArgs(args[1:])
		c.SetOut(&out)
		c.SetErr(&out)
		err = c.Execute()
	case "grade":
		c := gradeCmd()
		c.SetArgs(args[1:])
		c.SetOut(&out)
		c.SetErr(&out)
		err = c.Execute()
	default:
		t.Fatalf("unknown command %s", args[0])
	}
	return out.String(), err
}

// TestVariantThenGrade makes variants, answers one with a deliberately wrong
// number and checks that grade fails and names the first wrong step.
func TestVariantThenGrade(t *testing.T) {
	dir := t.TempDir()
	out, err := runClassroomCmd(t, "variant", "--seed", "2024", "--count", "2", "--problem", "both", "--out", dir, "--no-pdf")
	if err != nil {
		t.Fatalf("variant: %v\n%s", err, out)
	}
	if !strings.Contains(out, "wrote 4 variant(s)") || !strings.Contains(out, "PDF: skipped") {
		t.Errorf("variant output:\n%s", out)
	}
	keyPath := filepath.Join(dir, "gan-02", "key", "key.json")
	var key struct {
		Forward   map[string]any `json:"forward"`
		Gradients map[string]any `json:"gradients"`
	}
	data, err := os.ReadFile(keyPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &key); err != nil {
		t.Fatal(err)
	}
	write := func(doc any) string {
		b, _ := json.Marshal(doc)
		p := filepath.Join(t.TempDir(), "answers.json")
		os.WriteFile(p, b, 0o644)
		return p
	}

	right := write(map[string]any{"variant": "gan-02", "forward": key.Forward, "gradients": key.Gradients})
	if out, err := runClassroomCmd(t, "grade", "--key", keyPath, "--answers", right); err != nil || !strings.Contains(out, "All checked numbers are right") {
		t.Errorf("grading the key's own numbers: %v\n%s", err, out)
	}

	// a student who got h1 right but slipped in h2[1,1,1] (and so in H2)
	h2 := key.Forward["h2"].([]any)[0].([]any)[0].([]any)
	h2[0] = h2[0].(float64) + 0.1
	H2 := key.Forward["H2"].([]any)
	H2[0] = H2[0].(float64) + 0.1
	wrong := write(map[string]any{"forward": map[string]any{"h0": key.Forward["h0"], "h1": key.Forward["h1"], "h2": key.Forward["h2"], "H2": H2}})
	out, err = runClassroomCmd(t, "grade", "--key", keyPath, "--answers", wrong)
	if err == nil {
		t.Fatalf("grade accepted a wrong answer:\n%s", out)
	}
	// H2[1] follows from the wrong h2[1,1,1]: follow-through, not wrong
	for _, want := range []string{"1 follow-through, 1 wrong", "h2[1,1,1]", "H2: 1 (H2[1])", "First step off the correct path: forward step 3, h2 = ReLU(", "h2[1,1,1] = ReLU("} {
		if !strings.Contains(out, want) {
			t.Errorf("grade output lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(err.Error(), "1 wrong, 1 follow-through") {
		t.Errorf("error %v", err)
	}

	// command-line mistakes are usage errors (exit status 2)
	for _, args := range [][]string{
		{"grade", "--key", keyPath},
		{"grade", "--key", keyPath, "--answers", right, "--tol", "0"},
		{"variant", "--seed", "1", "--count", "1"},
		{"variant", "--count", "1", "--out", dir},
		{"variant", "--seed", "1", "--out", dir, "--problem", "vae"},
	} {
		_, err := runClassroomCmd(t, args...)
		var ue usageError
		if err == nil || !isClassroomUsageError(err, &ue) {
			t.Errorf("%v: error %v, want a usage error", args, err)
		}
	}
}

func isClassroomUsageError(err error, ue *usageError) bool {
	u, ok := err.(usageError)
	if ok {
		*ue = u
	}
	return ok
}
