package main

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestOutOfMemoryIsAnError runs the built binary under an address-space
// limit (ulimit -v 6000000, about 5.7 GiB) with flags that ask for far
// more: each must end with status 1 and a message naming the flag, the
// estimate and the memory available, not with the Go runtime's "fatal
// error: out of memory" and a goroutine dump.
func TestOutOfMemoryIsAnError(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary; skipped with -short")
	}
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Fatalf("the test needs a POSIX shell for ulimit: %v", err)
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "backprop")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	limited := func(args ...string) (status int, stderr string) {
		t.Helper()
		cmd := exec.Command(sh, append([]string{"-c", `ulimit -v 6000000 && exec "$0" "$@"`, bin}, args...)...)
		cmd.Dir = dir
		var errOut strings.Builder
		cmd.Stderr = &errOut
		err := cmd.Run()
		var ee *exec.ExitError
		switch {
		case err == nil:
			return 0, errOut.String()
		case errors.As(err, &ee):
			return ee.ExitCode(), errOut.String()
		}
		t.Fatalf("%q: %v", args, err)
		return 0, ""
	}
	missing := filepath.Join(dir, "no-checkpoint.safetensors")
	for _, c := range []struct {
		args []string
		want []string
	}{
		{[]string{"train", "autoencoder", "--hidden", "1048576"}, []string{"--hidden 1048576", "use a smaller --hidden"}},
		{[]string{"train", "gan", "--batch", "30000"}, []string{"--batch 30000", "use a smaller --batch"}},
		{[]string{"sample", "--checkpoint", missing, "--n", "1000000000", "--out", "s.idx"}, []string{"--n 1000000000", "use a smaller --n"}},
		// a grid holds one row of ⌈√n⌉ tiles: 3.2 million columns here
		{[]string{"sample", "--checkpoint", missing, "--n", "10000000000000", "--out", "grid.png"}, []string{"--n 10000000000000 (a PNG grid)", "memory"}},
	} {
		status, stderr := limited(c.args...)
		if status != statusFailure {
			t.Errorf("%q under ulimit -v 6000000: exit status %d, want %d; stderr:\n%s", c.args, status, statusFailure, stderr)
		}
		want := append([]string{"needs about", "GiB", "available", "ulimit -v"}, c.want...)
		if strings.Contains(stderr, "disk space") {
			// sample streaming to disk: the file, not memory, is what does not fit
			want = append([]string{"would take", "available"}, c.want...)
		}
		for _, w := range want {
			if !strings.Contains(stderr, w) {
				t.Errorf("%q: stderr\n%s\nwant it to contain %q", c.args, stderr, w)
			}
		}
		for _, dump := range []string{"goroutine", "fatal error", "out of memory: cannot allocate", "panic"} {
			if strings.Contains(stderr, dump) {
				t.Errorf("%q: a runtime dump (%q) on stderr:\n%s", c.args, dump, stderr)
			}
		}
		if n := strings.Count(strings.TrimSpace(stderr), "\n"); n > 1 {
			t.Errorf("%q: %d lines on stderr, want the one message:\n%s", c.args, n+1, stderr)
		}
	}

	// a job that fits passes the check and fails on what is wrong with it
	status, stderr := limited("train", "gan", "--batch", "64", "--data", filepath.Join(dir, "no-such-data"))
	if status == 0 || strings.Contains(stderr, "needs about") || !strings.Contains(stderr, "no-such-data") {
		t.Errorf("train gan --batch 64 with missing data under the limit: status %d, stderr\n%s\nwant the data error, no memory refusal", status, stderr)
	}
}

// TestMemoryEstimatesMatchMeasurements compares the estimates with the
// peak address space measured for the same command lines (VmPeak less the
// VmSize at start, MiB, linux/amd64, GOGC=20; see memcheck.go): each
// estimate must cover its measurement without exceeding it by more than
// 30 %, so that a job that fits is not refused.
func TestMemoryEstimatesMatchMeasurements(t *testing.T) {
	for _, c := range []struct {
		args     []string
		measured float64 // MiB
	}{
		{[]string{"train", "autoencoder", "--hidden", "256"}, 353},
		{[]string{"train", "autoencoder", "--hidden", "16384"}, 1250},
		{[]string{"train", "autoencoder", "--hidden", "32768"}, 2347},
		{[]string{"train", "autoencoder", "--hidden", "256", "--batch", "4096"}, 417},
		{[]string{"train", "gan", "--batch", "64"}, 353},
		{[]string{"train", "gan", "--batch", "512"}, 802},
		{[]string{"train", "gan", "--batch", "2048"}, 2539},
		{[]string{"train", "gan", "--batch", "3400"}, 4146},
		{[]string{"train", "gan", "--batch", "4096"}, 4591},
		{[]string{"sample", "--n", "200000", "--out", "s.idx"}, 471},
		{[]string{"sample", "--n", "20000", "--out", "s.png"}, 471},
	} {
		need := estimateFor(t, c.args...)
		if need == nil {
			t.Errorf("%q: no estimate", c.args)
			continue
		}
		got := float64(need.bytes) / (1 << 20)
		if got < c.measured || got > 1.3*c.measured {
			t.Errorf("%q: estimate %.0f MiB, measured %.0f MiB: want 1 to 1.3 times the measurement", c.args, got, c.measured)
		}
	}
	// no estimate where the command itself refuses the flags or the sizes
	// come from a checkpoint
	for _, args := range [][]string{
		{"train", "gan", "--batch", "1"},
		{"train", "autoencoder", "--hidden", "0"},
		{"train", "autoencoder", "--resume", "runs/ae"},
		{"sample", "--n", "0"},
		{"solve"},
	} {
		if need := estimateFor(t, args...); need != nil {
			t.Errorf("%q: estimate %+v, want none", args, need)
		}
	}
	// absurd flags saturate instead of wrapping around to a small number
	if need := estimateFor(t, "train", "autoencoder", "--hidden", "9223372036854775807"); need == nil || need.bytes != ^uint64(0) {
		t.Errorf("train autoencoder --hidden MaxInt64: estimate %+v, want the largest uint64", need)
	}
}

// estimateFor parses a command line and returns its memory estimate.
func estimateFor(t *testing.T, args ...string) *memoryNeed {
	t.Helper()
	root := newRoot(io.Discard, io.Discard)
	cmd, rest, err := root.Find(args)
	if err != nil {
		t.Fatalf("%q: %v", args, err)
	}
	if err := cmd.ParseFlags(rest); err != nil {
		t.Fatalf("%q: %v", args, err)
	}
	estimate := memoryEstimates[cmd.CommandPath()]
	if estimate == nil {
		return nil
	}
	return estimate(cmd)
}

// TestDataSizeFromIDXHeaders: a directory's size is read from its IDX
// headers, plain or gzipped.
func TestDataSizeFromIDXHeaders(t *testing.T) {
	dir := t.TempDir()
	header := func(n, h, w uint32) []byte {
		return []byte{0, 0, 8, 3, byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n), 0, 0, 0, byte(h), 0, 0, 0, byte(w)}
	}
	if err := os.WriteFile(filepath.Join(dir, "train-images-idx3-ubyte"), header(1000, 8, 8), 0o644); err != nil {
		t.Fatal(err)
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(header(200, 8, 8))
	zw.Close()
	if err := os.WriteFile(filepath.Join(dir, "t10k-images-idx3-ubyte.gz"), gz.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	if n, px := dataSize(dir); n != 1200 || px != 64 {
		t.Errorf("dataSize(dir) = %d images of %d pixels, want 1200 of 64", n, px)
	}
	if n, px := dataSize(filepath.Join(dir, "missing")); n != 70000 || px != 784 {
		t.Errorf("dataSize(missing) = %d, %d; want MNIST's 70000, 784", n, px)
	}
}
