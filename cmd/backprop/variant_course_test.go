package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestVariantCourseThenGrade makes softmax-classifier and conv-net variants
// from the command line and grades a softmax answer whose gradients are
// all three times the key's (the 1/N of the mean forgotten, N = 3): the
// report names that cause and grade exits with an error.
func TestVariantCourseThenGrade(t *testing.T) {
	dir := t.TempDir()
	out, err := runClassroomCmd(t, "variant", "--seed", "5", "--count", "1", "--problem", "all", "--out", dir, "--no-pdf")
	if err != nil {
		t.Fatalf("variant: %v\n%s", err, out)
	}
	for _, name := range []string{"gan-01", "autoencoder-01", "softmax-01", "convnet-01", "rnn-01", "attention-01"} {
		if !strings.Contains(out, name) {
			t.Errorf("variant --problem all did not make %s:\n%s", name, out)
		}
	}
	keyPath := filepath.Join(dir, "softmax-01", "key", "key.json")
	data, err := os.ReadFile(keyPath)
	if err != nil {
		t.Fatal(err)
	}
	var key struct {
		Forward   map[string]any `json:"forward"`
		Gradients map[string]any `json:"gradients"`
	}
	if err := json.Unmarshal(data, &key); err != nil {
		t.Fatal(err)
	}
	var times3 func(v any) any
	times3 = func(v any) any {
		switch x := v.(type) {
		case float64:
			return 3 * x
		case []any:
			o := make([]any, len(x))
			for i, e := range x {
				o[i] = times3(e)
			}
			return o
		}
		return v
	}
	grads := map[string]any{}
	for n, v := range key.Gradients {
		grads[n] = times3(v)
	}
	b, _ := json.Marshal(map[string]any{"forward": key.Forward, "gradients": grads})
	ans := filepath.Join(dir, "answers.json")
	if err := os.WriteFile(ans, b, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err = runClassroomCmd(t, "grade", "--key", keyPath, "--answers", ans)
	if err == nil {
		t.Errorf("grade exits without an error for wrong gradients:\n%s", out)
	}
	if !strings.Contains(out, "Cause: every gradient is N = 3 times the right one: the 1/N of the mean was forgotten") {
		t.Errorf("grade does not name the forgotten 1/N:\n%s", out)
	}

	// the key's own numbers of the conv net grade right
	data, err = os.ReadFile(filepath.Join(dir, "convnet-01", "key", "key.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ckey struct {
		Forward   map[string]any `json:"forward"`
		Gradients map[string]any `json:"gradients"`
	}
	if err := json.Unmarshal(data, &ckey); err != nil {
		t.Fatal(err)
	}
	b, _ = json.Marshal(map[string]any{"forward": ckey.Forward, "gradients": ckey.Gradients})
	if err := os.WriteFile(ans, b, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err = runClassroomCmd(t, "grade", "--key", filepath.Join(dir, "convnet-01", "key", "key.json"), "--answers", ans)
	if err != nil || !strings.Contains(out, "All checked numbers are right.") {
		t.Errorf("conv net key graded: %v\n%s", err, out)
	}
}
