package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSpecErrorsPointAtTheCulprit: a mistake in a spec file is reported
// on the entry to change, with its line: a weight of the wrong shape on
// the weight (not on the bias that no longer matches it), a kernel larger
// than its input on the kernel, a convention or an input value on its own
// line. Each case edits Problem 1's spec and runs backprop solve on it.
func TestSpecErrorsPointAtTheCulprit(t *testing.T) {
	src, err := os.ReadFile(filepath.Join("..", "..", "examples", "problem1.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	problem1 := string(src)
	bigKernel := `title: "a kernel larger than its input"
input:
  name: x
  value: [[[0.1, 0.2, 0.3],
           [0.4, 0.5, 0.6],
           [0.7, 0.8, 0.9]]]
layers:
  - {type: conv, name: h0, weight: k, bias: c, activation: relu}
  - {type: flatten, name: H0}
  - {type: logistic, name: p, weight: w2, bias: b2}
objective: {type: log_p}
params:
  k: [[[[0.1, 0.2, 0.3, 0.4],
        [0.1, 0.2, 0.3, 0.4],
        [0.1, 0.2, 0.3, 0.4],
        [0.1, 0.2, 0.3, 0.4]]]]
  c: [0.1]
  w2: [0.5]
  b2: 0.1
`
	edit := func(old, new string) string {
		t.Helper()
		if !strings.Contains(problem1, old) {
			t.Fatalf("examples/problem1.yaml no longer has %q", old)
		}
		return strings.Replace(problem1, old, new, 1)
	}
	for _, c := range []struct {
		name, spec string
		line       string // the text of the culprit's line
		want       []string
		not        []string
	}{
		{
			name: "w0 with a ninth row",
			spec: edit("[0.2, 0.1]]\n  b0", "[0.2, 0.1],\n       [0.3, 0.3]]\n  b0"),
			line: "  w0: [[0.1, 0.3],",
			want: []string{"params.w0", "[9×2]"},
			not:  []string{"params.b0", "bias b0 has shape [8], want [9]"},
		},
		{
			name: "kernel 4×4 on a 3×3 input",
			spec: bigKernel,
			line: "  k: [[[[0.1, 0.2, 0.3, 0.4],",
			want: []string{"params.k", "4×4", "3×3"},
		},
		{
			name: "unknown reshape order",
			spec: edit("reshape: row-major ", "reshape: diagonal "),
			line: "  reshape: diagonal ",
			want: []string{"conventions.reshape", `"diagonal"`},
		},
		{
			name: "unknown kernel reading",
			spec: edit("kernel: pytorch ", "kernel: rotated "),
			line: "  kernel: rotated ",
			want: []string{"conventions.kernel", `"rotated"`},
		},
		{
			name: "unknown label",
			spec: edit("label: y0 ", "label: y2 "),
			line: "  label: y2 ",
			want: []string{"conventions.label", `"y2"`},
		},
		{
			name: "input value not a number",
			spec: edit("value: [0.4, 0.8]", "value: [0.4, eight]"),
			line: "  value: [0.4, eight]",
			want: []string{"input.value[1]", `"eight"`},
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "spec.yaml")
			if err := os.WriteFile(path, []byte(c.spec), 0o644); err != nil {
				t.Fatal(err)
			}
			line := 0
			for i, l := range strings.Split(c.spec, "\n") {
				if strings.HasPrefix(l, c.line) {
					line = i + 1
					break
				}
			}
			if line == 0 {
				t.Fatalf("no line %q in the spec", c.line)
			}
			status, _, stderr := runCLI(t, "solve", "--spec", path)
			if status != statusFailure {
				t.Errorf("exit status %d, want %d; stderr:\n%s", status, statusFailure, stderr)
			}
			at := fmt.Sprintf("%s:%d: ", path, line)
			if !strings.Contains(stderr, at) {
				t.Errorf("stderr\n%s\nwant the culprit's line: %q", stderr, at)
			}
			for _, w := range c.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr\n%s\nwant %q", stderr, w)
				}
			}
			for _, n := range c.not {
				if strings.Contains(stderr, n) {
					t.Errorf("stderr\n%s\nblames %q", stderr, n)
				}
			}
		})
	}
}
