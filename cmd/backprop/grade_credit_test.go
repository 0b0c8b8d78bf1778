package main

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestGradeCause fills a variant's answers template from its key with
// every gradient negated: the report names the sign flip as the cause,
// ends with its summary paragraph and a newline, and the command's error
// only sets the exit status (main does not print it after the report).
func TestGradeCause(t *testing.T) {
	dir := t.TempDir()
	if out, err := runClassroomCmd(t, "variant", "--seed", "7", "--count", "1", "--problem", "gan", "--out", dir, "--no-pdf"); err != nil {
		t.Fatalf("variant: %v\n%s", err, out)
	}
	keyPath := filepath.Join(dir, "gan-01", "key", "key.json")
	var key, template struct {
		Forward   map[string]any `json:"forward"`
		Gradients map[string]any `json:"gradients"`
	}
	for path, dst := range map[string]any{keyPath: &key, filepath.Join(dir, "gan-01", "answers-template.json"): &template} {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(data, dst); err != nil {
			t.Fatal(err)
		}
	}
	var negate func(v any) any
	negate = func(v any) any {
		switch x := v.(type) {
		case float64:
			return -x
		case []any:
			out := make([]any, len(x))
			for i, e := range x {
				out[i] = negate(e)
			}
			return out
		}
		return v
	}
	// the template's names, filled from the key
	fwd, grads := map[string]any{}, map[string]any{}
	for n := range template.Forward {
		fwd[n] = key.Forward[n]
	}
	for n := range template.Gradients {
		grads[n] = negate(key.Gradients[n])
	}
	b, _ := json.Marshal(map[string]any{"variant": "gan-01", "forward": fwd, "gradients": grads})
	answers := filepath.Join(t.TempDir(), "answers.json")
	if err := os.WriteFile(answers, b, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := runClassroomCmd(t, "grade", "--key", keyPath, "--answers", answers)
	if err == nil {
		t.Fatalf("negated gradients graded as right:\n%s", out)
	}
	var quiet interface{ Quiet() bool }
	if !errors.As(err, &quiet) || !quiet.Quiet() {
		t.Errorf("error %v (%T) would be printed after the report", err, err)
	}
	for _, want := range []string{"\nCause: every gradient has the opposite sign", "forward values", "\nSummary:\n  Score: "} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "First step off the correct path") {
		t.Errorf("the report names a first wrong step where the cause explains it all:\n%s", out)
	}
	if !strings.HasSuffix(out, "\n") {
		t.Errorf("report does not end with a newline: %q", out[max(0, len(out)-80):])
	}

	// the same answers as JSON: the cause and the summary are there too
	out, _ = runClassroomCmd(t, "grade", "--key", keyPath, "--answers", answers, "--format", "json")
	var rep struct {
		OK      bool   `json:"ok"`
		Cause   string `json:"cause"`
		Summary string `json:"summary"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if rep.OK || !strings.Contains(rep.Cause, "opposite sign") || !strings.HasPrefix(rep.Summary, "Score: ") {
		t.Errorf("JSON report %s", out)
	}
}
