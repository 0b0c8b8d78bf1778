package testenv

import (
	"os"
	"strings"
	"testing"
)

// TestRequireNamesKnown fails when BACKPROP_REQUIRE names a requirement no
// test knows, so a misspelt name in CI cannot silently require nothing.
func TestRequireNamesKnown(t *testing.T) {
	if u := Unknown(); len(u) > 0 {
		t.Errorf("%s=%q names %q, not one of %q", Env, os.Getenv(Env), u, Known)
	}
}

// TestRequired parses the list as CI writes it.
func TestRequired(t *testing.T) {
	t.Setenv(Env, " Chromium, ,mnist,fashion-mnist,typo ")
	if got := strings.Join(Required(), "|"); got != "chromium|mnist|fashion-mnist|typo" {
		t.Errorf("Required() = %q", got)
	}
	if !IsRequired("fashion-mnist") || IsRequired("onnxruntime") {
		t.Errorf("IsRequired: fashion-mnist %v, onnxruntime %v; want true, false", IsRequired("fashion-mnist"), IsRequired("onnxruntime"))
	}
	if u := Unknown(); len(u) != 1 || u[0] != "typo" {
		t.Errorf("Unknown() = %q, want [typo]", u)
	}
}

// recorder is a testing.TB that records how Missing ended the test.
type recorder struct {
	testing.TB
	failed, skipped string
}

func (r *recorder) Helper()                           {}
func (r *recorder) Fatalf(format string, args ...any) { r.failed = format }
func (r *recorder) Skipf(format string, args ...any)  { r.skipped = format }

// TestMissing checks that a missing requirement skips unless it is
// required, and fails when it is.
func TestMissing(t *testing.T) {
	t.Setenv(Env, "mnist")
	r := &recorder{TB: t}
	Missing(r, "chromium", "no chromium on PATH")
	if r.skipped == "" || r.failed != "" {
		t.Errorf("chromium not required: skipped %q, failed %q; want a skip", r.skipped, r.failed)
	}
	r = &recorder{TB: t}
	Missing(r, "mnist", "no MNIST files")
	if r.failed == "" || r.skipped != "" {
		t.Errorf("mnist required: skipped %q, failed %q; want a failure", r.skipped, r.failed)
	}
}
