// Package testenv decides what a test does when something it needs from the
// machine is missing: a browser, a data set, a runtime library.
//
// On a developer's machine such a test skips, so `go test ./...` passes on a
// fresh checkout. CI sets BACKPROP_REQUIRE to a comma-separated list of the
// requirements it installs (for example "chromium,mnist,fashion-mnist"),
// and for those the same test fails instead, naming what is missing: a CI
// run that silently skipped the browser tests would prove less than it
// seems to.
package testenv

import (
	"os"
	"slices"
	"strings"
	"testing"
)

// Env is the environment variable listing the requirements that must be
// present: a comma-separated list of Known names.
const Env = "BACKPROP_REQUIRE"

// Known lists the requirement names the tests use: onnxruntime is the npm
// package onnxruntime-node that runs backprop's ONNX exports (package
// onnx/export), onnx-testdata is ONNX's own backend-test data from Debian's
// libonnx-testdata (package onnx/backendtest). A name outside this list is
// a typo in the environment, which TestRequireNamesKnown reports.
var Known = []string{"chromium", "mnist", "fashion-mnist", "onnxruntime", "onnx-testdata"}

// Required lists the names set in BACKPROP_REQUIRE, trimmed and lower-cased,
// without empty entries.
func Required() []string {
	var out []string
	for _, n := range strings.Split(os.Getenv(Env), ",") {
		if n = strings.ToLower(strings.TrimSpace(n)); n != "" {
			out = append(out, n)
		}
	}
	return out
}

// IsRequired reports whether BACKPROP_REQUIRE names the requirement.
func IsRequired(name string) bool {
	return slices.Contains(Required(), name)
}

// Unknown lists the names in BACKPROP_REQUIRE that are not Known.
func Unknown() []string {
	var out []string
	for _, n := range Required() {
		if !slices.Contains(Known, n) {
			out = append(out, n)
		}
	}
	return out
}

// Missing ends the test because the requirement name is not available on
// this machine, for the reason given (what was looked for and how to
// install it): a failure when BACKPROP_REQUIRE names it, a skip otherwise.
func Missing(t testing.TB, name, reason string) {
	t.Helper()
	if IsRequired(name) {
		t.Fatalf("%s is required (%s=%q) but missing: %s", name, Env, os.Getenv(Env), reason)
		return
	}
	t.Skipf("%s not available (set %s=%s to make this a failure): %s", name, Env, name, reason)
}
