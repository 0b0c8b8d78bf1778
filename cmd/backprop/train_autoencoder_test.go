package main

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/backprop-dev/backprop/autoencoder"
	"github.com/backprop-dev/backprop/data"
)

// envRunMain makes the test binary run the command itself: TestMain calls
// main with the binary's arguments, so the tests can start `backprop` as a
// real process (exit status, signals) without building it.
const envRunMain = "BACKPROP_TEST_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(envRunMain) == "1" {
		os.Args = append([]string{"backprop"}, os.Args[1:]...)
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// backprop returns the command `backprop args…` run by the test binary.
func backprop(args ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), envRunMain+"=1")
	return cmd
}

// aeDataDir writes a small data set of 8×8 images (a bright bar each) in
// the MNIST file layout: n training and 40 test images.
func aeDataDir(t *testing.T, n int) string {
	t.Helper()
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(11, 12))
	for _, split := range []struct {
		prefix string
		n      int
	}{{"train", n}, {"t10k", 40}} {
		px := make([]uint8, split.n*64)
		labels := make([]uint8, split.n)
		for i := range split.n {
			row, col := rng.IntN(8), rng.IntN(8)
			for k := range 8 {
				px[i*64+row*8+k] = 200
				px[i*64+k*8+col] = 255
			}
			labels[i] = uint8(row)
		}
		if err := data.WriteIDX(filepath.Join(dir, split.prefix+"-images-idx3-ubyte"), []int{split.n, 8, 8}, px); err != nil {
			t.Fatal(err)
		}
		if err := data.WriteIDX(filepath.Join(dir, split.prefix+"-labels-idx1-ubyte"), []int{split.n}, labels); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// exitCode is the exit status of a finished command (0 for success).
func exitCode(t *testing.T, err error) int {
	t.Helper()
	var ee *exec.ExitError
	if err == nil {
		return 0
	}
	if !errors.As(err, &ee) {
		t.Fatal(err)
	}
	return ee.ExitCode()
}

// waitFile waits until path exists while cmd runs.
func waitFile(t *testing.T, cmd *exec.Cmd, done <-chan error, path string) {
	t.Helper()
	deadline := time.After(2 * time.Minute)
	for {
		if _, err := os.Stat(path); err == nil {
			return
		}
		select {
		case err := <-done:
			t.Fatalf("the run ended before %s appeared: %v", path, err)
		case <-deadline:
			cmd.Process.Kill()
			t.Fatalf("no %s within 2 minutes", path)
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// TestCLIAutoencoderInterruptResume interrupts `backprop train
// autoencoder` with SIGINT in the middle of a long run, checks the exit
// status 130, the message and the checkpoint, resumes it with --resume,
// and checks that the result is byte for byte the checkpoint of a run that
// was never interrupted. Then it checks the errors of --resume: a flag
// that contradicts the checkpoint (status 2), a damaged checkpoint and a
// directory without one (status 1, no panic).
func TestCLIAutoencoderInterruptResume(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the command as a process for about a second")
	}
	if runtime.GOOS == "windows" {
		t.Skip("no SIGINT on Windows")
	}
	dataDir := aeDataDir(t, 2000)
	tmp := t.TempDir()
	run := filepath.Join(tmp, "run")
	common := []string{"--hidden", "8", "--batch", "2", "--seed", "5", "--quiet"}

	// 1000 steps per epoch; SIGINT soon after the first epoch, most likely
	// in the middle of the second.
	cmd := backprop(append([]string{"train", "autoencoder", "--data", dataDir, "--epochs", "100000", "--out", run}, common...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	waitFile(t, cmd, done, filepath.Join(run, autoencoder.CheckpointFile)) // written last in an epoch
	time.Sleep(3 * time.Millisecond)
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	var err error
	select {
	case err = <-done:
	case <-time.After(time.Minute):
		cmd.Process.Kill()
		t.Fatal("no exit within a minute of SIGINT")
	}
	if code := exitCode(t, err); code != 130 {
		t.Fatalf("exit status %d, want 130\nstdout: %s\nstderr: %s", code, stdout.String(), stderr.String())
	}
	resumeHint := "resume with: backprop train autoencoder --resume " + run + " --epochs 100000"
	if !strings.Contains(stderr.String(), "interrupted") || !strings.Contains(stderr.String(), resumeHint) {
		t.Errorf("stderr should say the run was interrupted and how to resume:\n%s", stderr.String())
	}
	ck, err := autoencoder.Load(filepath.Join(run, autoencoder.CheckpointFile))
	if err != nil {
		t.Fatal(err)
	}
	if ck.Progress == nil || ck.Meta.Step < 1000 || ck.Meta.Epochs != 100000 {
		t.Fatalf("checkpoint %+v after SIGINT", ck.Meta)
	}
	t.Logf("interrupted at epoch %d + %d steps (step %d)", ck.Meta.Epoch, ck.Meta.StepInEpoch, ck.Meta.Step)
	epochs := strconv.Itoa(ck.Meta.Epoch + 1)

	// Resumed to the end of the next epoch, it is the uninterrupted run.
	out, err := backprop("train", "autoencoder", "--resume", run, "--epochs", epochs, "--quiet").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "resuming "+filepath.Join(run, autoencoder.CheckpointFile)) {
		t.Fatalf("resume: %v\n%s", err, out)
	}
	straight := filepath.Join(tmp, "straight")
	if out, err := backprop(append([]string{"train", "autoencoder", "--data", dataDir, "--epochs", epochs, "--out", straight}, common...)...).CombinedOutput(); err != nil {
		t.Fatalf("straight run: %v\n%s", err, out)
	}
	for _, name := range []string{autoencoder.CheckpointFile, "loss.png", autoencoder.HistoryFile} {
		a, _ := os.ReadFile(filepath.Join(straight, name))
		b, _ := os.ReadFile(filepath.Join(run, name))
		if len(a) == 0 || !bytes.Equal(a, b) {
			t.Errorf("%s of the interrupted and resumed run differs from the uninterrupted run's", name)
		}
	}
	out, err = backprop("train", "autoencoder", "--resume", run, "--epochs", epochs).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "nothing to do") {
		t.Errorf("resuming a finished run: %v\n%s", err, out)
	}

	// A flag that contradicts the checkpoint is a usage error naming it.
	out, err = backprop("train", "autoencoder", "--resume", run, "--epochs", "99", "--hidden", "16").CombinedOutput()
	if code := exitCode(t, err); code != 2 || !strings.Contains(string(out), "--hidden 16 differs from the checkpoint's 8") {
		t.Errorf("--hidden on resume: status %d\n%s", code, out)
	}
	out, err = backprop("train", "autoencoder", "--resume", run, "--epochs", "99", "--data", "mnist").CombinedOutput()
	if code := exitCode(t, err); code != 2 || !strings.Contains(string(out), `--data "mnist" differs from the checkpoint's "`+dataDir+`"`) {
		t.Errorf("--data on resume: status %d\n%s", code, out)
	}

	// A damaged checkpoint and a directory without one.
	bad := filepath.Join(tmp, "bad")
	os.MkdirAll(bad, 0o755)
	good, _ := os.ReadFile(filepath.Join(run, autoencoder.CheckpointFile))
	os.WriteFile(filepath.Join(bad, autoencoder.CheckpointFile), good[:len(good)/2], 0o644)
	for _, dir := range []string{bad, t.TempDir()} {
		out, err = backprop("train", "autoencoder", "--resume", dir).CombinedOutput()
		if code := exitCode(t, err); code != 1 || !strings.Contains(string(out), filepath.Join(dir, autoencoder.CheckpointFile)) || strings.Contains(string(out), "panic") {
			t.Errorf("--resume %s: status %d\n%s", dir, code, out)
		}
	}
}

// TestCLIAutoencoderSigkill kills training runs with SIGKILL at moments
// spread over their checkpoint writes (short epochs, so checkpoints are
// written all the time) and checks each time that the latest checkpoint
// loads and resumes.
func TestCLIAutoencoderSigkill(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the command as a process for about a second")
	}
	if runtime.GOOS == "windows" {
		t.Skip("no SIGKILL on Windows")
	}
	dataDir := aeDataDir(t, 48)
	run := filepath.Join(t.TempDir(), "run")
	path := filepath.Join(run, autoencoder.CheckpointFile)
	var last int
	for i, delay := range []time.Duration{0, 3 * time.Millisecond, 11 * time.Millisecond, 29 * time.Millisecond, 53 * time.Millisecond} {
		args := []string{"train", "autoencoder", "--epochs", "100000", "--quiet"}
		if i == 0 {
			args = append(args, "--data", dataDir, "--hidden", "4", "--batch", "16", "--out", run)
		} else {
			args = append(args, "--resume", run)
		}
		cmd := backprop(args...)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		if i == 0 {
			waitFile(t, cmd, done, path)
		} else {
			time.Sleep(100 * time.Millisecond) // loading and the first steps
		}
		time.Sleep(delay)
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		<-done
		ck, err := autoencoder.Load(path)
		if err != nil {
			t.Fatalf("after SIGKILL %d: %v", i, err)
		}
		if _, err := ck.ResumeOptions(autoencoder.DefaultOptions(), nil); err != nil {
			t.Fatalf("after SIGKILL %d: %v", i, err)
		}
		if ck.Meta.Step < last {
			t.Fatalf("after SIGKILL %d the checkpoint went back from step %d to %d", i, last, ck.Meta.Step)
		}
		last = ck.Meta.Step
		entries, _ := os.ReadDir(run)
		for _, e := range entries {
			if strings.Contains(e.Name(), ".tmp") {
				os.Remove(filepath.Join(run, e.Name())) // a kill mid-write may leave one; it is never read
			}
		}
	}
	t.Logf("last checkpoint at step %d", last)
}

// TestCLITrainOutputAndSharedFlags runs both training commands with their
// output redirected, as a script would: no progress bar on stderr, one
// plain line per epoch on stdout; train gan takes the flags of train
// autoencoder (-q, --data, --out, --epochs defaults) and resumes to the
// run's own epochs without --epochs.
func TestCLITrainOutputAndSharedFlags(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the command as a process for a few seconds")
	}
	dataDir := aeDataDir(t, 200)
	run := filepath.Join(t.TempDir(), "ae")
	cmd := backprop("train", "autoencoder", "--data", dataDir, "--hidden", "4", "--batch", "50", "--epochs", "2", "--out", run)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%v\n%s\n%s", err, stdout.String(), stderr.String())
	}
	if stderr.Len() != 0 {
		t.Errorf("stderr is not a terminal, yet it got %q", stderr.String())
	}
	var epochLines []string
	for _, line := range strings.Split(stdout.String(), "\n") {
		if strings.HasPrefix(line, "epoch ") {
			epochLines = append(epochLines, line)
		}
	}
	if len(epochLines) != 2 || !strings.HasPrefix(epochLines[1], "epoch 2/2: 4 steps in ") || !strings.Contains(epochLines[1], "test error ") {
		t.Errorf("epoch lines %q in\n%s", epochLines, stdout.String())
	}

	// train gan: 28×28 images, -q, the default --epochs (3) recorded and
	// reached again by --resume without --epochs
	ganData := t.TempDir()
	px := make([]uint8, 64*28*28)
	for i := range px {
		px[i] = uint8(i * 7)
	}
	if err := data.WriteIDX(filepath.Join(ganData, "train-images-idx3-ubyte"), []int{64, 28, 28}, px); err != nil {
		t.Fatal(err)
	}
	if err := data.WriteIDX(filepath.Join(ganData, "train-labels-idx1-ubyte"), []int{64}, make([]uint8, 64)); err != nil {
		t.Fatal(err)
	}
	gout := filepath.Join(t.TempDir(), "gan")
	out, err := backprop("train", "gan", "-q", "--data", ganData, "--batch", "32", "--out", gout).CombinedOutput()
	if err != nil || strings.Count(string(out), "\nepoch ") != 3 || !strings.Contains(string(out), "epoch 3/3: 2 steps in ") {
		t.Fatalf("train gan: %v\n%s", err, out)
	}
	out, err = backprop("train", "gan", "--resume", gout).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "nothing to do: 3 epoch(s) are already done") {
		t.Errorf("resume without --epochs: %v\n%s", err, out)
	}
	out, err = backprop("train", "gan", "--resume", gout, "--batch", "16").CombinedOutput()
	if code := exitCode(t, err); code != 2 || !strings.Contains(string(out), "--batch 16 differs from the checkpoint's 32") {
		t.Errorf("--batch on resume: status %d\n%s", code, out)
	}
}
