package main

import (
	"bytes"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/backprop-dev/backprop/gan"
	"github.com/backprop-dev/backprop/tensor"
)

// ganCheckpoint writes the checkpoint of a DCGAN trained for one step on
// two blank images (all sample needs is a generator) and returns its path.
func ganCheckpoint(t *testing.T) string {
	t.Helper()
	tr, err := gan.NewTrainer(gan.Config{Data: "blank", Seed: 3, Batch: 2}, tensor.New[float32](2, 1, gan.ImageSize, gan.ImageSize))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tr.TrainStep(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), gan.CheckpointFile)
	if err := tr.Save(path); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestSampleMatchesAllAtOnce: `backprop sample` streams its output, and
// the files are byte for byte those written from all the images generated
// at once (gan.Sample, gan.WriteSamples) with the same seed.
func TestSampleMatchesAllAtOnce(t *testing.T) {
	ck := ganCheckpoint(t)
	c, err := gan.OpenCheckpoint(ck)
	if err != nil {
		t.Fatal(err)
	}
	g, err := c.Generator()
	if err != nil {
		t.Fatal(err)
	}
	const n = 2*gan.SampleChunk + 33
	all, err := gan.Sample(g, n, 7)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, name := range []string{"s.idx", "s.idx.gz", "grid.png"} {
		ref, out := filepath.Join(dir, "ref-"+name), filepath.Join(dir, name)
		if err := gan.WriteSamples(ref, all); err != nil {
			t.Fatal(err)
		}
		status, stdout, stderr := runCLI(t, "sample", "--checkpoint", ck, "--n", strconv.Itoa(n), "--seed", "7", "--out", out)
		if status != 0 {
			t.Fatalf("sample --out %s: status %d\n%s", name, status, stderr)
		}
		if !strings.Contains(stdout, "wrote "+strconv.Itoa(n)+" samples") {
			t.Errorf("sample --out %s: stdout %q", name, stdout)
		}
		a, _ := os.ReadFile(ref)
		b, _ := os.ReadFile(out)
		if len(a) == 0 || !bytes.Equal(a, b) {
			t.Errorf("%s: sample's file (%d bytes) differs from the one written at once (%d bytes)", name, len(b), len(a))
		}
	}
}

// sampleUnderLimit runs `backprop sample` as a process under ulimit -v
// limitKiB (0: no limit) and returns its exit status, stderr and peak
// resident memory (VmHWM, from the kernel's accounting of the process).
func sampleUnderLimit(t *testing.T, limitKiB int, args ...string) (status int, stderr string, peakKiB int64) {
	t.Helper()
	script := `exec "$0" "$@"`
	if limitKiB > 0 {
		script = "ulimit -v " + strconv.Itoa(limitKiB) + " && " + script
	}
	cmd := exec.Command("sh", append([]string{"-c", script, os.Args[0], "sample"}, args...)...)
	cmd.Env = append(os.Environ(), envRunMain+"=1")
	var errOut bytes.Buffer
	cmd.Stderr = &errOut
	err := cmd.Run()
	status = exitCode(t, err)
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		peakKiB = ru.Maxrss // KiB on Linux: the high-water mark of the resident set
	}
	return status, errOut.String(), peakKiB
}

// TestSampleMemoryIsFlat: sample writes a large IDX file under an
// address-space limit that holding its images would exceed (the
// estimate of the former all-at-once sample, 9000 bytes an image,
// refused --n 80000 under it, and 200000 images peaked at 1.6 GiB), and
// its peak resident memory does not grow with --n.
func TestSampleMemoryIsFlat(t *testing.T) {
	if testing.Short() {
		t.Skip("generates 80000 images; skipped with -short")
	}
	if runtime.GOOS != "linux" {
		t.Skip("ulimit -v and the peak resident set as Linux reports them")
	}
	ck := ganCheckpoint(t)
	dir := t.TempDir()
	// about 1.5 GiB of address space is in use when the check runs; this
	// leaves about 600 MiB, where sample needs 471 MiB at most
	const limitKiB = 2_200_000
	small, large := 2000, 80000
	status, stderr, peakSmall := sampleUnderLimit(t, 0, "--checkpoint", ck, "--n", strconv.Itoa(small), "--out", filepath.Join(dir, "small.idx"))
	if status != 0 {
		t.Fatalf("sample --n %d: status %d\n%s", small, status, stderr)
	}
	out := filepath.Join(dir, "large.idx")
	status, stderr, peakLarge := sampleUnderLimit(t, limitKiB, "--checkpoint", ck, "--n", strconv.Itoa(large), "--out", out)
	if status != 0 {
		t.Fatalf("sample --n %d under ulimit -v %d: status %d\n%s", large, limitKiB, status, stderr)
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	var hdr [16]byte
	if _, err := f.ReadAt(hdr[:], 0); err != nil {
		t.Fatal(err)
	}
	if want := int64(16 + large*28*28); st.Size() != want || binary.BigEndian.Uint32(hdr[4:]) != uint32(large) || binary.BigEndian.Uint32(hdr[0:]) != 0x803 {
		t.Errorf("%s: %d bytes, header % x; want %d bytes, an IDX header of %d images", out, st.Size(), hdr, want, large)
	}
	// holding the 78000 more images as float32 and bytes would add 300 MB
	t.Logf("peak resident memory: %d MiB for --n %d, %d MiB for --n %d", peakSmall>>10, small, peakLarge>>10, large)
	if peakSmall <= 0 || peakLarge > peakSmall+64<<10 {
		t.Errorf("peak resident memory %d MiB for --n %d, %d MiB for --n %d: want at most 64 MiB more", peakSmall>>10, small, peakLarge>>10, large)
	}
}

// TestSampleEstimateIsFlat: the memory estimate of an IDX output does not
// depend on --n; a PNG grid's grows with its row of ⌈√n⌉ tiles.
func TestSampleEstimateIsFlat(t *testing.T) {
	one, many := estimateFor(t, "sample", "--n", "1", "--out", "s.idx"), estimateFor(t, "sample", "--n", "1000000000000", "--out", "s.idx")
	if one == nil || many == nil || one.bytes != many.bytes {
		t.Errorf("IDX estimates for --n 1 and 10¹²: %+v, %+v; want the same", one, many)
	}
	one, many = estimateFor(t, "sample", "--n", "1", "--out", "s.png"), estimateFor(t, "sample", "--n", "1000000000000", "--out", "s.png")
	if one == nil || many == nil || many.bytes-one.bytes != (1_000_000-1)*samplePNGBytesPerColumn {
		t.Errorf("PNG estimates for --n 1 and 10¹²: %+v, %+v; want 10⁶−1 columns more", one, many)
	}
}

// TestSampleInterrupted: Ctrl-C in the middle of sample ends it with
// status 130 and a message, and leaves nothing behind: no partial file, no
// temporary file, and a file already at --out as it was.
func TestSampleInterrupted(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the command as a process")
	}
	if runtime.GOOS == "windows" {
		t.Skip("no SIGINT on Windows")
	}
	ck := ganCheckpoint(t)
	for _, name := range []string{"s.idx", "grid.png"} {
		dir := t.TempDir()
		out := filepath.Join(dir, name)
		old := []byte("the previous samples")
		if err := os.WriteFile(out, old, 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := backprop("sample", "--checkpoint", ck, "--n", "1000000", "--out", out)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		waitTemp(t, cmd, done, dir)
		time.Sleep(200 * time.Millisecond) // a few chunks in
		if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
			t.Fatal(err)
		}
		var err error
		select {
		case err = <-done:
		case <-time.After(time.Minute):
			cmd.Process.Kill()
			t.Fatalf("%s: no exit within a minute of SIGINT", name)
		}
		if code := exitCode(t, err); code != statusInterrupted {
			t.Errorf("%s: exit status %d after SIGINT, want %d; stderr:\n%s", name, code, statusInterrupted, stderr.String())
		}
		if want := "sample interrupted; nothing was written to " + out; !strings.Contains(stderr.String(), want) {
			t.Errorf("%s: stderr\n%s\nwant %q", name, stderr.String(), want)
		}
		checkNoLeaks(t, []string{"sample", name}, stderr.String())
		if got, _ := os.ReadFile(out); !bytes.Equal(got, old) {
			t.Errorf("%s: the file at --out changed (%d bytes)", name, len(got))
		}
		if entries, _ := os.ReadDir(dir); len(entries) != 1 {
			t.Errorf("%s: %v left in the directory, want only the previous file", name, entries)
		}
	}
}

// waitTemp waits until a temporary file of internal/atomicfile appears in
// dir while cmd runs: the output is being written.
func waitTemp(t *testing.T, cmd *exec.Cmd, done <-chan error, dir string) {
	t.Helper()
	deadline := time.After(2 * time.Minute)
	for {
		if m, _ := filepath.Glob(filepath.Join(dir, ".*.tmp-*")); len(m) > 0 {
			return
		}
		select {
		case err := <-done:
			t.Fatalf("sample ended before writing: %v", err)
		case <-deadline:
			cmd.Process.Kill()
			t.Fatal("no temporary file within 2 minutes")
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// TestTrainFlagErrors: train and reconstruct report a malformed flag
// through the root's flag-error function: status 2, the flag and what it
// wants in words, a pointer to the help.
func TestTrainFlagErrors(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"train", "autoencoder", "--epochs", "1.5"}, `--epochs: want a whole number, got "1.5"`},
		{[]string{"train", "gan", "--batch", "x"}, `--batch: want a whole number, got "x"`},
		{[]string{"train", "gan", "--seed", "-3"}, `--seed: want a whole number ≥ 0, got "-3"`},
		{[]string{"reconstruct", "--n", "many"}, `--n: want a whole number, got "many"`},
	} {
		status, _, stderr := runCLI(t, c.args...)
		if status != statusUsage || !strings.Contains(stderr, c.want) || !strings.Contains(stderr, "--help' for usage") {
			t.Errorf("%q: status %d, stderr\n%s\nwant status %d, %q and a pointer to --help", c.args, status, stderr, statusUsage, c.want)
		}
		checkNoLeaks(t, c.args, stderr)
	}
}
