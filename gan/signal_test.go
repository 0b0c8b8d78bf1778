package gan

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestCLISigintSavesCheckpoint builds the backprop command, starts a long
// training run, sends it SIGINT once the first epoch is written, and
// checks that it exits with status 130 after saving a checkpoint of the
// step it had reached, which then resumes.
func TestCLISigintSavesCheckpoint(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the command and trains for a few seconds")
	}
	if runtime.GOOS == "windows" {
		t.Skip("no SIGINT on Windows")
	}
	tmp := t.TempDir()
	bin := buildCLI(t, tmp)
	dataDir := writeDataDir(t, 64)
	out := filepath.Join(tmp, "run")
	cmd := exec.Command(bin, "train", "gan", "--data", dataDir, "--epochs", "100000", "--batch", "16", "--out", out, "--seed", "3")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	deadline := time.After(2 * time.Minute)
	for {
		if _, err := os.Stat(filepath.Join(out, "samples-epoch1.png")); err == nil {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("training ended before the signal: %v\n%s\n%s", err, stdout.String(), stderr.String())
		case <-deadline:
			cmd.Process.Kill()
			t.Fatal("no epoch finished within 2 minutes")
		case <-time.After(50 * time.Millisecond):
		}
	}
	time.Sleep(300 * time.Millisecond) // somewhere inside epoch 2 or later
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	var err2 error
	select {
	case err2 = <-done:
	case <-time.After(time.Minute):
		cmd.Process.Kill()
		t.Fatal("the run did not stop within a minute of SIGINT")
	}
	var exit *exec.ExitError
	if !errors.As(err2, &exit) || exit.ExitCode() != 130 {
		t.Fatalf("exit: %v, want status 130\nstderr: %s", err2, stderr.String())
	}
	if !strings.Contains(stderr.String(), "interrupted") || !strings.Contains(stderr.String(), "--resume") {
		t.Errorf("stderr should say the run was interrupted and how to resume:\n%s", stderr.String())
	}
	ck, err := OpenCheckpoint(filepath.Join(out, CheckpointFile))
	if err != nil {
		t.Fatal(err)
	}
	if ck.Step < 4 {
		t.Fatalf("checkpoint at step %d, want at least the 4 steps of epoch 1", ck.Step)
	}
	// the saved run continues
	res := exec.Command(bin, "train", "gan", "--resume", out, "--epochs", strconv.Itoa(ck.Epoch+1), "--quiet")
	if o, err := res.CombinedOutput(); err != nil || !strings.Contains(string(o), "resuming") {
		t.Fatalf("resume: %v\n%s", err, o)
	}
	after, err := OpenCheckpoint(filepath.Join(out, CheckpointFile))
	if err != nil {
		t.Fatal(err)
	}
	if after.Epoch != ck.Epoch+1 || after.StepInEpoch != 0 {
		t.Fatalf("after resuming: epoch %d step %d, want epoch %d step 0", after.Epoch, after.StepInEpoch, ck.Epoch+1)
	}
	// a conflicting flag on resume is a usage error (status 2)
	bad := exec.Command(bin, "train", "gan", "--resume", out, "--epochs", "9", "--seed", "4")
	o, err := bad.CombinedOutput()
	if !errors.As(err, &exit) || exit.ExitCode() != 2 || !strings.Contains(string(o), "--seed") {
		t.Fatalf("resume with another seed: %v\n%s", err, o)
	}
}

// buildCLI builds the backprop command into dir, skipping the test where
// there is no go command.
func buildCLI(t *testing.T, dir string) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command to build the CLI with")
	}
	bin := filepath.Join(dir, "backprop")
	build := exec.Command(goBin, "build", "-o", bin, "github.com/backprop-dev/backprop/cmd/backprop")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// TestCLISigkillLeavesLoadableCheckpoint kills training runs with SIGKILL
// at moments spread over their checkpoint writes (two steps per epoch, so
// checkpoints are written all the time) and checks each time that the
// latest checkpoint opens and resumes.
func TestCLISigkillLeavesLoadableCheckpoint(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the command and trains for a few seconds")
	}
	if runtime.GOOS == "windows" {
		t.Skip("no SIGKILL on Windows")
	}
	tmp := t.TempDir()
	bin := buildCLI(t, tmp)
	dataDir := writeDataDir(t, 32)
	out := filepath.Join(tmp, "run")
	for i, delay := range []time.Duration{0, 37 * time.Millisecond, 110 * time.Millisecond, 230 * time.Millisecond} {
		args := []string{"train", "gan", "--epochs", "100000", "--quiet"}
		if i == 0 {
			args = append(args, "--data", dataDir, "--batch", "16", "--out", out)
		} else {
			args = append(args, "--resume", out)
		}
		cmd := exec.Command(bin, args...)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// let it write a first checkpoint, then kill it somewhere later
		deadline := time.Now().Add(2 * time.Minute)
		for {
			if fi, err := os.Stat(filepath.Join(out, CheckpointFile)); err == nil && (i > 0 || fi.Size() > 0) {
				break
			}
			if time.Now().After(deadline) {
				cmd.Process.Kill()
				t.Fatal("no checkpoint within 2 minutes")
			}
			time.Sleep(20 * time.Millisecond)
		}
		time.Sleep(delay)
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		cmd.Wait()
		ck, err := OpenCheckpoint(filepath.Join(out, CheckpointFile))
		if err != nil {
			t.Fatalf("after SIGKILL %d: %v", i, err)
		}
		images, labels, err := LoadLabeled(ck.Config)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ck.ResumeLabeled(images, labels); err != nil {
			t.Fatalf("after SIGKILL %d: %v", i, err)
		}
	}
}
