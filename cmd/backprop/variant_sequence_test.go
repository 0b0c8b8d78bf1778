package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestVariantSequenceThenGrade makes an RNN and an attention variant from
// the command line: the RNN key's own numbers grade right, and attention
// answers with every gradient's sign flipped are graded with that cause,
// in the words of ½ squared error.
func TestVariantSequenceThenGrade(t *testing.T) {
	dir := t.TempDir()
	for _, p := range []string{"rnn", "attention"} {
		out, err := runClassroomCmd(t, "variant", "--seed", "3", "--count", "1", "--problem", p, "--out", dir, "--no-pdf")
		if err != nil || !strings.Contains(out, p+"-01") {
			t.Fatalf("variant --problem %s: %v\n%s", p, err, out)
		}
	}
	read := func(name string) (map[string]any, map[string]any) {
		t.Helper()
		data, err := os.ReadFile(filepath.Join(dir, name, "key", "key.json"))
		if err != nil {
			t.Fatal(err)
		}
		var k struct {
			Forward   map[string]any `json:"forward"`
			Gradients map[string]any `json:"gradients"`
		}
		if err := json.Unmarshal(data, &k); err != nil {
			t.Fatal(err)
		}
		return k.Forward, k.Gradients
	}
	write := func(doc any) string {
		t.Helper()
		b, _ := json.Marshal(doc)
		path := filepath.Join(dir, "answers.json")
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	fwd, grads := read("rnn-01")
	out, err := runClassroomCmd(t, "grade", "--key", filepath.Join(dir, "rnn-01", "key", "key.json"), "--answers", write(map[string]any{"forward": fwd, "gradients": grads}))
	if err != nil || !strings.Contains(out, "All checked numbers are right.") {
		t.Errorf("the RNN key graded: %v\n%s", err, out)
	}
	var neg func(v any) any
	neg = func(v any) any {
		switch x := v.(type) {
		case float64:
			return -x
		case []any:
			o := make([]any, len(x))
			for i, e := range x {
				o[i] = neg(e)
			}
			return o
		}
		return v
	}
	fwd, grads = read("attention-01")
	for n, v := range grads {
		grads[n] = neg(v)
	}
	out, err = runClassroomCmd(t, "grade", "--key", filepath.Join(dir, "attention-01", "key", "key.json"), "--answers", write(map[string]any{"forward": fwd, "gradients": grads}))
	if err == nil || !strings.Contains(out, "Cause: every gradient has the opposite sign: these are the gradients of −J, as if ∂J/∂y were t − y") {
		t.Errorf("attention with the signs flipped: %v\n%s", err, out)
	}
}
