package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/backprop-dev/backprop/internal/blas"
	"github.com/backprop-dev/backprop/internal/vec"
	"github.com/backprop-dev/backprop/training"
)

// runCLI runs a command line in this process, as main does, and returns
// its exit status, stdout and stderr.
func runCLI(t *testing.T, args ...string) (status int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	status = run(args, &out, &errOut)
	return status, out.String(), errOut.String()
}

// doubled matches a message that names the program twice, as in
// "backprop: backprop solve: unknown flag".
var doubled = regexp.MustCompile(`backprop: backprop[a-z ]*: `)

// leaks are fragments of Go internals no message may show.
var leaks = []string{"strconv.", "Go value of type", "Go struct field", "atomicfile:", ".tmp-", "context canceled", "goroutine ", "panic:", "fatal error"}

func checkNoLeaks(t *testing.T, args []string, text string) {
	t.Helper()
	for _, l := range leaks {
		if strings.Contains(text, l) {
			t.Errorf("%q: output shows %q:\n%s", args, l, text)
		}
	}
}

// TestUsageErrorsExitTwo: every mistake in the command line, in every
// command, ends with status 2, a message naming the mistake and a pointer
// to the command's help, before any work is done.
func TestUsageErrorsExitTwo(t *testing.T) {
	spec := filepath.Join("..", "..", "examples", "autoencoder.yaml")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"frobnicate"}, `unknown command "frobnicate" for "backprop"`},
		{[]string{"--no-such-flag"}, "unknown flag: --no-such-flag"},
		{[]string{"help", "frobnicate"}, `no command "frobnicate"`},
		{[]string{"solve", "--no-such-flag"}, "unknown flag: --no-such-flag"},
		{[]string{"solve", "extra"}, `solve takes no arguments, got "extra"`},
		{[]string{"solve", "--dtype", "x"}, `--dtype: want float64 or float32, got "x"`},
		{[]string{"solve", "--reshape", "diag"}, `--reshape: want row-major or column-major, got "diag"`},
		{[]string{"solve", "--kernel", "rotated"}, `--kernel: want pytorch or flipped, got "rotated"`},
		{[]string{"solve", "--label", "y2"}, `--label: want y0 or y1, got "y2"`},
		{[]string{"solve", "--detail", "some"}, `--detail: want handout or full, got "some"`},
		{[]string{"solve", "--format", "pdf"}, `--format: want text, markdown or json, got "pdf"`},
		{[]string{"solve", "--digits", "0"}, "--digits: want 1 to 17 significant digits, got 0"},
		{[]string{"solve", "--digits", "18"}, "--digits: want 1 to 17 significant digits, got 18"},
		{[]string{"solve", "--digits", "six"}, `--digits: want a whole number, got "six"`},
		{[]string{"solve", "--digits", "99999999999999999999"}, "--digits: 99999999999999999999 is out of range"},
		{[]string{"solve", "--elements", "-1"}, "--elements: want 0 or more elements, got -1"},
		{[]string{"solve", "--spec", spec, "--label", "y1"}, "--label y1: " + spec + " has no logistic layer"},
		{[]string{"solve", "--digits"}, "flag needs an argument: --digits"},
		{[]string{"derive", "resnet"}, `unknown network "resnet"`},
		{[]string{"derive", "gan", "autoencoder"}, "accepts at most 1 arg(s), received 2"},
		{[]string{"derive", "gan", "--form", "neither"}, `--form: want sample, batched or both, got "neither"`},
		{[]string{"variant", "--seed", "x", "--out", "v"}, `--seed: want a whole number ≥ 0, got "x"`},
		{[]string{"variant", "--seed", "-1", "--out", "v"}, `--seed: want a whole number ≥ 0, got "-1"`},
		{[]string{"variant", "--out", "v"}, "--seed N is required"},
		{[]string{"grade", "--key", "k.json"}, "--key and --answers are required"},
		{[]string{"grade", "--key", "k.json", "--answers", "a.json", "--tol", "loose"}, `--tol: want a number, got "loose"`},
		{[]string{"serve", "--digits", "40"}, "--digits: want 1 to 17 significant digits, got 40"},
		{[]string{"bench", "--count", "many"}, `--count: want a whole number, got "many"`},
		{[]string{"bench", "no-such-workload"}, `unknown workload "no-such-workload"`},
		{[]string{"version", "extra"}, `version takes no arguments, got "extra"`},
		{[]string{"train", "resnet"}, `unknown command "resnet" for "backprop train": want autoencoder or gan`},
		{[]string{"train", "gan", "--no-such-flag"}, "unknown flag: --no-such-flag"},
		{[]string{"train", "autoencoder", "extra"}, "takes no arguments"},
		{[]string{"train", "autoencoder", "--hidden", "many"}, `--hidden: want a whole number, got "many"`},
		{[]string{"sample", "--n", "1e9"}, `--n: want a whole number, got "1e9"`},
		{[]string{"reconstruct", "--no-such-flag"}, "unknown flag: --no-such-flag"},
		{[]string{"eval", "--splits", "ten"}, `--splits: want a whole number, got "ten"`},
		{[]string{"completion", "tcsh"}, `unknown command "tcsh" for "backprop completion"`},
	} {
		status, stdout, stderr := runCLI(t, c.args...)
		if status != statusUsage {
			t.Errorf("%q: exit status %d, want %d (usage error); stderr:\n%s", c.args, status, statusUsage, stderr)
			continue
		}
		if !strings.Contains(stderr, c.want) {
			t.Errorf("%q: stderr\n%s\nwant it to contain %q", c.args, stderr, c.want)
		}
		if !strings.Contains(stderr, "--help' for usage") {
			t.Errorf("%q: stderr\n%s\nwant a pointer to --help", c.args, stderr)
		}
		if doubled.MatchString(stderr) {
			t.Errorf("%q: stderr names the program twice:\n%s", c.args, stderr)
		}
		if stdout != "" {
			t.Errorf("%q: a usage error printed on stdout:\n%s", c.args, stdout)
		}
		checkNoLeaks(t, c.args, stderr)
	}
}

// TestRuntimeErrorsExitOne: a command line that is right but fails
// (a file that does not exist, a malformed file) ends with status 1.
func TestRuntimeErrorsExitOne(t *testing.T) {
	dir := t.TempDir()
	broken := filepath.Join(dir, "broken.yaml")
	if err := os.WriteFile(broken, []byte("layers: [\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	answers := filepath.Join(dir, "answers.json")
	if err := os.WriteFile(answers, []byte(`{"forward": {}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"solve", "--spec", filepath.Join(dir, "missing.yaml")}, "missing.yaml"},
		{[]string{"solve", "--spec", broken}, "broken.yaml"},
		{[]string{"derive", "--spec", filepath.Join(dir, "missing.yaml")}, "missing.yaml"},
		{[]string{"grade", "--key", filepath.Join(dir, "missing.json"), "--answers", answers}, "missing.json"},
		{[]string{"serve", "--addr", "no-port-here"}, "--addr no-port-here"},
	} {
		status, _, stderr := runCLI(t, c.args...)
		if status != statusFailure {
			t.Errorf("%q: exit status %d, want %d; stderr:\n%s", c.args, status, statusFailure, stderr)
		}
		if !strings.Contains(stderr, c.want) {
			t.Errorf("%q: stderr\n%s\nwant it to name %q", c.args, stderr, c.want)
		}
		if strings.Contains(stderr, "for usage") {
			t.Errorf("%q: a runtime error points at --help:\n%s", c.args, stderr)
		}
		checkNoLeaks(t, c.args, stderr)
	}
}

// TestExitStatus: the status of each kind of error, wherever it is
// wrapped.
func TestExitStatus(t *testing.T) {
	interrupted := &training.InterruptedError{Cause: context.Canceled, Epoch: 1, StepInEpoch: 3, StepsPerEpoch: 10, Step: 3, Path: "runs/x/checkpoint.safetensors"}
	for _, c := range []struct {
		name string
		err  error
		want int
	}{
		{"nil", nil, statusOK},
		{"usage", usageError{errors.New("--x: bad")}, statusUsage},
		{"usage inside a command's error", ranError{fmt.Errorf("solve: %w", usageError{errors.New("--x")})}, statusUsage},
		{"command failed", ranError{errors.New("open x: no such file")}, statusFailure},
		{"raised by cobra", errors.New(`unknown command "x" for "backprop"`), statusUsage},
		{"interruptedError", ranError{interruptedError{errors.New("stopped")}}, statusInterrupted},
		{"training.InterruptedError", ranError{interrupted}, statusInterrupted},
		{"context.Canceled", ranError{fmt.Errorf("waiting: %w", context.Canceled)}, statusInterrupted},
		{"server stopped", ranError{stoppedBySignal{}}, statusInterrupted},
		{"quiet failure", ranError{quietError{errors.New("2 wrong")}}, statusFailure},
	} {
		if got := exitStatus(c.err); got != c.want {
			t.Errorf("%s: exitStatus(%v) = %d, want %d", c.name, c.err, got, c.want)
		}
	}
	if !isQuiet(ranError{stoppedBySignal{}}) || !isQuiet(ranError{quietError{errors.New("x")}}) || isQuiet(ranError{errors.New("x")}) {
		t.Error("isQuiet: want true for a stopped server and grade's outcome only")
	}
}

// TestUserMessage: Go internals in errors are put in the user's words.
func TestUserMessage(t *testing.T) {
	var ute *json.UnmarshalTypeError
	if err := json.Unmarshal([]byte(`{"h0": [1e309]}`), &struct {
		H0 []float64 `json:"h0"`
	}{}); !errors.As(err, &ute) {
		t.Fatalf("decoding 1e309: %v, want a *json.UnmarshalTypeError", err)
	}
	var ute2 *json.UnmarshalTypeError
	if err := json.Unmarshal([]byte(`{"h0": "x"}`), &struct {
		H0 float64 `json:"h0"`
	}{}); !errors.As(err, &ute2) {
		t.Fatalf("decoding a string: %v, want a *json.UnmarshalTypeError", err)
	}
	tmp := &fs.PathError{Op: "open", Path: "/srv/out/.sheet.md.tmp-123456", Err: errors.New("permission denied")}
	for _, c := range []struct {
		err       error
		want, not string
	}{
		{fmt.Errorf("answers.json: forward.h0: %w", ute), "answers.json: forward.h0: h0: number 1e309 is out of range", "Go value"},
		{fmt.Errorf("answers.json: %w", ute2), "answers.json: h0: want a number, got a string", "Go value"},
		{fmt.Errorf("atomicfile: /srv/out/sheet.md: create temporary file: %w", tmp), "/srv/out/sheet.md: cannot create it: permission denied", ".tmp-"},
		{fmt.Errorf("atomicfile: /srv/out/c.safetensors: rename temporary file into place: %w", errors.New("no space left on device")), "/srv/out/c.safetensors: cannot put it in place: no space left on device", "atomicfile"},
		{fmt.Errorf("training interrupted (%w)", context.Canceled), "training interrupted (interrupted)", "context canceled"},
		{errors.Join(errors.New("first"), fmt.Errorf("second: %w", ute2)), "second: h0: want a number", "Go value"},
		{errors.New("plain words stay as they are"), "plain words stay as they are", "\x00"},
	} {
		got := userMessage(c.err)
		if !strings.Contains(got, c.want) || strings.Contains(got, c.not) {
			t.Errorf("userMessage(%q) = %q, want it to contain %q and not %q", c.err, got, c.want, c.not)
		}
	}
}

// TestVersion: `backprop version` and `backprop --version` print the same
// line: the module version, the revision, the Go version.
func TestVersion(t *testing.T) {
	s1, out1, _ := runCLI(t, "version")
	s2, out2, _ := runCLI(t, "--version")
	if s1 != 0 || s2 != 0 || out1 != out2 {
		t.Fatalf("version: status %d %q; --version: status %d %q; want the same line, status 0", s1, out1, s2, out2)
	}
	if !strings.HasPrefix(out1, "backprop ") || !strings.Contains(out1, runtime.Version()) || strings.Count(out1, "\n") != 1 {
		t.Errorf("version = %q, want one line naming backprop and %s", out1, runtime.Version())
	}
	info := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: "github.com/backprop-dev/backprop", Version: "v1.2.0"},
		Settings: []debug.BuildSetting{{Key: "vcs", Value: "git"}, {Key: "vcs.revision", Value: "8080e1a0c0ffee"}, {Key: "vcs.time", Value: "2026-05-04T10:00:00Z"}, {Key: "vcs.modified", Value: "true"}}}
	want := fmt.Sprintf("backprop v1.2.0, revision 8080e1a0c0ffee, committed 2026-05-04T10:00:00Z, with local changes; go1.26.8 %s/%s; kernels: matrix products %s, element-wise %s", runtime.GOOS, runtime.GOARCH, blas.Kernel(), vec.Kernel())
	if k := blas.Kernel(); k != "avx512" && k != "avx2" && k != "go" {
		t.Errorf("matrix kernel %q, want avx512, avx2 or go", k)
	}
	if got := versionOf(info); got != want {
		t.Errorf("versionOf(tagged, modified) =\n%q\nwant\n%q", got, want)
	}
	info = &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: "github.com/backprop-dev/backprop", Version: "(devel)"}}
	if got := versionOf(info); !strings.Contains(got, "(devel)") || !strings.Contains(got, "revision unknown") {
		t.Errorf("versionOf(no VCS) = %q, want (devel) and an unknown revision", got)
	}
}

// TestHelpAndCompletion: help of a command and the shell completion of
// commands and enum flags.
func TestHelpAndCompletion(t *testing.T) {
	status, stdout, _ := runCLI(t, "help", "solve")
	if status != 0 || !strings.Contains(stdout, "--digits") {
		t.Errorf("help solve: status %d, output without --digits:\n%s", status, stdout)
	}
	status, stdout, _ = runCLI(t, "train")
	if status != 0 || !strings.Contains(stdout, "autoencoder") || !strings.Contains(stdout, "gan") {
		t.Errorf("train: status %d, want its help listing autoencoder and gan:\n%s", status, stdout)
	}
	for _, c := range []struct {
		args []string
		want []string
	}{
		{[]string{"__complete", "solve", "--dtype", ""}, []string{"float64", "float32"}},
		{[]string{"__complete", "solve", "--kernel", ""}, []string{"pytorch", "flipped"}},
		{[]string{"__complete", "derive", ""}, []string{"autoencoder", "gan"}},
		{[]string{"__complete", "variant", "--problem", ""}, []string{"gan", "autoencoder", "both"}},
		{[]string{"__complete", "tr"}, []string{"train"}},
		{[]string{"__complete", "help", "s"}, []string{"solve", "sample", "serve"}},
	} {
		status, stdout, stderr := runCLI(t, c.args...)
		if status != 0 {
			t.Errorf("%q: status %d: %s", c.args, status, stderr)
		}
		for _, w := range c.want {
			if !strings.Contains(stdout, w) {
				t.Errorf("%q: completions\n%s\nwant %q", c.args, stdout, w)
			}
		}
	}
	for _, shell := range []string{"bash", "zsh", "fish", "powershell"} {
		status, stdout, _ := runCLI(t, "completion", shell)
		if status != 0 || !strings.Contains(stdout, "backprop") {
			t.Errorf("completion %s: status %d, %d bytes", shell, status, len(stdout))
		}
	}
}
