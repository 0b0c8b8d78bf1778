package autoencoder

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/backprop-dev/backprop/data"
	"github.com/backprop-dev/backprop/safetensors"
	"github.com/backprop-dev/backprop/tensor"
	"github.com/backprop-dev/backprop/training"
)

// resumeData is the training set of the resume tests: 276 bar images, 9
// batches of 32 per epoch, the last one of 20.
func resumeData() (train, test *data.Dataset) {
	return bars(276, 5, data.Train), bars(48, 6, data.Test)
}

// resumeOptions are the options of the resume tests' runs.
func resumeOptions(dir, optimizer string) Options {
	o := quickOptions(dir)
	o.Optimizer, o.Epochs, o.Hidden = optimizer, 3, 8
	return o
}

// runUntil trains with o, cancelling the run after stopAt steps in all
// (before it starts if stopAt is 0, never if stopAt < 0), and returns the
// result and error.
func runUntil(t *testing.T, o Options, stopAt int) (*Result, error) {
	t.Helper()
	train, test := resumeData()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if stopAt == 0 {
		cancel()
	}
	o.Hooks.Step = func(r training.StepReport) {
		if r.Step == stopAt {
			cancel()
		}
	}
	return Train(ctx, train, test, o)
}

// loadResume opens dir's checkpoint and returns the options that resume
// it, with o's output settings and the checkpoint's run settings.
func loadResume(t *testing.T, dir string, o Options) Options {
	t.Helper()
	ck, err := Load(ResumeFile(dir))
	if err != nil {
		t.Fatal(err)
	}
	ro, err := ck.ResumeOptions(o, nil)
	if err != nil {
		t.Fatal(err)
	}
	return ro
}

// TestResumeBitForBit trains 3 epochs straight, then the same run stopped
// and resumed five times: before its first step, twice in the middle of
// epoch 1 (after steps 4 and 6), at the end of epoch 2 (step 18) and once
// more as soon as it resumed, before any step. The stopped run must end with exactly the
// straight run's checkpoint (weights, optimizer state, shuffling state,
// loss history, metadata), losses, test errors and pictures.
func TestResumeBitForBit(t *testing.T) {
	for _, optName := range []string{Adam, SGD} {
		t.Run(optName, func(t *testing.T) {
			straight := t.TempDir()
			want, err := runUntil(t, resumeOptions(straight, optName), -1)
			if err != nil {
				t.Fatal(err)
			}
			if len(want.StepLoss) != 27 {
				t.Fatalf("%d steps, want 3 epochs of 9", len(want.StepLoss))
			}

			dir := t.TempDir()
			var got *Result
			for i, stop := range []struct{ at, step int }{{0, 0}, {4, 4}, {6, 6}, {18, 18}, {0, 18}, {-1, 27}} {
				stopAt := stop.at
				o := resumeOptions(dir, optName)
				if i > 0 {
					o = loadResume(t, dir, o)
				}
				got, err = runUntil(t, o, stopAt)
				if stopAt < 0 {
					if err != nil {
						t.Fatal(err)
					}
					break
				}
				if !errors.Is(err, ErrInterrupted) {
					t.Fatalf("stop at step %d: err = %v, want ErrInterrupted", stopAt, err)
				}
				ck, err := Load(filepath.Join(dir, CheckpointFile))
				if err != nil {
					t.Fatal(err)
				}
				if s := stop.step; ck.Meta.Step != s || ck.Meta.Epoch != s/9 || ck.Meta.StepInEpoch != s%9 {
					t.Fatalf("stopped after step %d, the checkpoint says epoch %d + %d steps = step %d", s, ck.Meta.Epoch, ck.Meta.StepInEpoch, ck.Meta.Step)
				}
				if !slices.Equal(ck.Progress.StepLoss, want.StepLoss[:stop.step]) {
					t.Fatalf("loss history saved after step %d differs from the straight run's", stop.step)
				}
			}
			sameFiles(t, straight, dir, CheckpointFile, "loss.png", "recon-epoch3.png")
			if !slices.Equal(got.StepLoss, want.StepLoss) {
				t.Error("the step losses differ")
			}
			if len(got.Epochs) != 3 {
				t.Fatalf("%d epochs in the resumed result, want 3", len(got.Epochs))
			}
			for i, e := range got.Epochs {
				w := want.Epochs[i]
				if e.Epoch != w.Epoch || e.Steps != w.Steps || e.TrainLoss != w.TrainLoss || e.TestError != w.TestError {
					t.Errorf("epoch %d: %+v, want %+v", i+1, e, w)
				}
			}
			if !sameStateDict(got.Model.StateDict(), want.Model.StateDict()) {
				t.Error("the final weights differ")
			}

			// A finished run resumed with more epochs is the longer run.
			longer := t.TempDir()
			o4 := resumeOptions(longer, optName)
			o4.Epochs = 4
			if _, err := runUntil(t, o4, -1); err != nil {
				t.Fatal(err)
			}
			o := loadResume(t, dir, resumeOptions(dir, optName))
			o.Epochs = 4
			if _, err := runUntil(t, o, -1); err != nil {
				t.Fatal(err)
			}
			sameFiles(t, longer, dir, CheckpointFile, "loss.png")

			// Resumed at its end, a run has nothing left to do.
			before, _ := os.ReadFile(filepath.Join(dir, CheckpointFile))
			res, err := runUntil(t, loadResume(t, dir, resumeOptions(dir, optName)), -1)
			if err != nil || len(res.StepLoss) != 36 || len(res.Epochs) != 4 {
				t.Fatalf("resuming a finished run: err %v", err)
			}
			if after, _ := os.ReadFile(filepath.Join(dir, CheckpointFile)); !bytes.Equal(before, after) {
				t.Error("resuming a finished run rewrote its checkpoint")
			}
		})
	}
}

// sameFiles fails unless each named file is byte for byte the same in
// the directories a and b.
func sameFiles(t *testing.T, a, b string, names ...string) {
	t.Helper()
	for _, name := range names {
		fa, err := os.ReadFile(filepath.Join(a, name))
		if err != nil {
			t.Fatal(err)
		}
		fb, err := os.ReadFile(filepath.Join(b, name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(fa, fb) {
			t.Errorf("%s differs between the straight and the resumed run", name)
			if strings.HasSuffix(name, ".safetensors") {
				diffTensors(t, filepath.Join(a, name), filepath.Join(b, name))
			}
		}
	}
}

// diffTensors logs which tensors and metadata of two checkpoints differ.
func diffTensors(t *testing.T, a, b string) {
	t.Helper()
	fa, err := safetensors.Read(a)
	if err != nil {
		t.Fatal(err)
	}
	fb, err := safetensors.Read(b)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(fa.Names(), fb.Names()) {
		t.Errorf("tensors %v vs %v", fa.Names(), fb.Names())
	}
	for _, name := range fa.Names() {
		ta, _ := fa.Get(name)
		if tb, ok := fb.Get(name); !ok || !bytes.Equal(ta.Data, tb.Data) || !slices.Equal(ta.Shape, tb.Shape) {
			t.Errorf("tensor %q differs", name)
		}
	}
	for k, v := range fa.Metadata {
		if fb.Metadata[k] != v {
			t.Errorf("metadata %s: %q vs %q", k, v, fb.Metadata[k])
		}
	}
}

// interruptedCheckpoint trains the resume tests' run until step stopAt and
// returns the directory holding its checkpoint.
func interruptedCheckpoint(t *testing.T, optName string, stopAt int) string {
	t.Helper()
	dir := t.TempDir()
	if _, err := runUntil(t, resumeOptions(dir, optName), stopAt); !errors.Is(err, ErrInterrupted) {
		t.Fatalf("err = %v, want ErrInterrupted", err)
	}
	return dir
}

func TestResumeFlagMismatch(t *testing.T) {
	dir := interruptedCheckpoint(t, SGD, 13)
	ck, err := Load(ResumeFile(dir))
	if err != nil {
		t.Fatal(err)
	}
	path := ck.Path
	for _, tc := range []struct {
		flag      string
		set       func(*Options)
		ckpt, got string
	}{
		{"hidden", func(o *Options) { o.Hidden = 32 }, "8", "32"},
		{"optimizer", func(o *Options) { o.Optimizer = Adam }, "sgd", "adam"},
		{"lr", func(o *Options) { o.LR = 0.5 }, "0.01", "0.5"},
		{"momentum", func(o *Options) { o.Momentum = 0.5 }, "0.9", "0.5"},
		{"batch", func(o *Options) { o.Batch = 16 }, "32", "16"},
		{"seed", func(o *Options) { o.Seed = 9 }, "1", "9"},
		{"data", func(o *Options) { o.Dataset = "fashion-mnist" }, `"bars"`, `"fashion-mnist"`},
	} {
		t.Run(tc.flag, func(t *testing.T) {
			o := resumeOptions(dir, SGD)
			tc.set(&o)
			_, err := ck.ResumeOptions(o, func(f string) bool { return f == tc.flag })
			var me *MismatchError
			if !errors.As(err, &me) || me.Flag != "--"+tc.flag || me.Checkpoint != tc.ckpt || me.Given != tc.got {
				t.Fatalf("err = %v (%+v), want a mismatch of --%s: checkpoint %s, given %s", err, me, tc.flag, tc.ckpt, tc.got)
			}
			for _, w := range []string{"--" + tc.flag + " " + tc.got, "the checkpoint's " + tc.ckpt, path} {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("message lacks %q: %v", w, err)
				}
			}
			// The library call refuses the same options.
			train, test := resumeData()
			o.Resume = ck
			if _, err := Train(context.Background(), train, test, o); !errors.As(err, &me) {
				t.Errorf("Train: err = %v, want a *MismatchError", err)
			}
		})
	}
	// Flags equal to the checkpoint's are accepted, other flags come from
	// it, and --epochs (the total to reach) may change.
	o := DefaultOptions()
	o.Seed, o.Epochs, o.OutDir = 1, 7, t.TempDir()
	ro, err := ck.ResumeOptions(o, func(f string) bool { return f == "seed" || f == "epochs" })
	if err != nil {
		t.Fatal(err)
	}
	if ro.Hidden != 8 || ro.Optimizer != SGD || ro.LR != DefaultSGDLR || ro.Momentum != DefaultMomentum || ro.Batch != 32 ||
		ro.Limit != 276 || ro.Dataset != "bars" || ro.Epochs != 7 || ro.Resume != ck || ro.OutDir != o.OutDir {
		t.Errorf("resume options %+v", ro)
	}
	// Without --epochs the run goes on to the epochs it was started with.
	if ro, _ := ck.ResumeOptions(o, nil); ro.Epochs != 3 {
		t.Errorf("epochs %d, want the checkpoint's 3", ro.Epochs)
	}

	// Other training data: fewer images (--limit), or another image size.
	train, test := resumeData()
	ro, _ = ck.ResumeOptions(o, nil)
	ro.Limit = 200
	_, err = Train(context.Background(), train, test, ro)
	var me *MismatchError
	if !errors.As(err, &me) || me.Flag != "--limit" || !strings.Contains(err.Error(), "--limit 200 differs from the checkpoint's 276 (it selects 200 training images of bars, the run used 276)") {
		t.Errorf("--limit: err = %v", err)
	}
	ro.Limit = 0
	wide := bars(276, 5, data.Train)
	wide.Images, _ = wide.Images.Reshape(276, 1, 4, 16)
	if _, err := Train(context.Background(), wide, test, ro); err == nil || !strings.Contains(err.Error(), "4×16") || !strings.Contains(err.Error(), "8×8") {
		t.Errorf("other image size: err = %v", err)
	}
}

// rewrite copies the checkpoint src into a new file, letting edit change
// its tensors and metadata, and returns the new file's path.
func rewrite(t *testing.T, src string, edit func(name string, raw *safetensors.Tensor, meta map[string]string) *safetensors.Tensor) string {
	t.Helper()
	f, err := safetensors.Read(src)
	if err != nil {
		t.Fatal(err)
	}
	out := safetensors.NewFile()
	for k, v := range f.Metadata {
		out.Metadata[k] = v
	}
	for _, name := range f.Names() {
		raw, _ := f.Get(name)
		if raw = edit(name, raw, out.Metadata); raw != nil {
			if err := out.Add(name, raw); err != nil {
				t.Fatal(err)
			}
		}
	}
	path := filepath.Join(t.TempDir(), CheckpointFile)
	if err := out.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestResumeBadCheckpoint resumes from checkpoints that are damaged, of
// an older version, or of another architecture: each is a clear error
// naming the file, never a panic and never a silently different run.
func TestResumeBadCheckpoint(t *testing.T) {
	src := filepath.Join(interruptedCheckpoint(t, Adam, 13), CheckpointFile)
	keep := func(_ string, raw *safetensors.Tensor, _ map[string]string) *safetensors.Tensor { return raw }
	drop := func(names ...string) func(string, *safetensors.Tensor, map[string]string) *safetensors.Tensor {
		return func(name string, raw *safetensors.Tensor, _ map[string]string) *safetensors.Tensor {
			if slices.Contains(names, name) {
				return nil
			}
			return raw
		}
	}
	f64 := func(n int) *safetensors.Tensor {
		return &safetensors.Tensor{DType: safetensors.F64, Shape: []int{n}, Data: make([]byte, 8*n)}
	}
	for _, tc := range []struct {
		name string
		edit func(string, *safetensors.Tensor, map[string]string) *safetensors.Tensor
		want string // in the error of Load, or else of resuming
	}{
		{"intact", keep, ""},
		{"older version", drop(TensorShuffle, TensorStepLoss, TensorTestError), "can be evaluated but not resumed"},
		{"no loss history", drop(TensorStepLoss), `incomplete training state: it has "train.shuffle_rng", "train.test_error" but lacks "train.step_loss"`},
		{"short loss history", func(name string, raw *safetensors.Tensor, _ map[string]string) *safetensors.Tensor {
			if name == TensorStepLoss {
				return f64(12)
			}
			return raw
		}, `"train.step_loss" has shape [12], want [13]`},
		{"step beyond the epoch", func(name string, raw *safetensors.Tensor, md map[string]string) *safetensors.Tensor {
			md[MetaInEpoch] = "11"
			return raw
		}, "do not fit epochs of 9 steps"},
		{"shuffle state of 3 words", func(name string, raw *safetensors.Tensor, _ map[string]string) *safetensors.Tensor {
			if name == TensorShuffle {
				return &safetensors.Tensor{DType: safetensors.I64, Shape: []int{3}, Data: make([]byte, 24)}
			}
			return raw
		}, `"train.shuffle_rng" has 3 values`},
		{"shuffle state of another dtype", func(name string, raw *safetensors.Tensor, _ map[string]string) *safetensors.Tensor {
			if name == TensorShuffle {
				return &safetensors.Tensor{DType: safetensors.F64, Shape: []int{2}, Data: make([]byte, 16)}
			}
			return raw
		}, `"train.shuffle_rng" has dtype F64, want I64`},
		{"no optimizer state", func(name string, raw *safetensors.Tensor, _ map[string]string) *safetensors.Tensor {
			if strings.HasPrefix(name, OptimizerPrefix) {
				return nil
			}
			return raw
		}, "holds 0 optimizer-state tensors"},
		{"optimizer state of another architecture", func(name string, raw *safetensors.Tensor, _ map[string]string) *safetensors.Tensor {
			if name == OptimizerPrefix+"encoder.weight.exp_avg" {
				return &safetensors.Tensor{DType: safetensors.F32, Shape: []int{16, 64}, Data: make([]byte, 4*16*64)}
			}
			return raw
		}, `entry "encoder.weight.exp_avg" has shape [16×64], want [8×64]`},
		{"optimizer state missing an entry", func(name string, raw *safetensors.Tensor, _ map[string]string) *safetensors.Tensor {
			if name == OptimizerPrefix+"encoder.weight.exp_avg" {
				return nil
			}
			return raw
		}, "holds 11 optimizer-state tensors"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := rewrite(t, src, tc.edit)
			err := func() error {
				ck, err := Load(path)
				if err != nil {
					return err
				}
				o, err := ck.ResumeOptions(resumeOptions(t.TempDir(), Adam), nil)
				if err != nil {
					return err
				}
				train, test := resumeData()
				_, err = Train(context.Background(), train, test, o)
				return err
			}()
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var ce *CheckpointError
			if !errors.As(err, &ce) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), path) {
				t.Errorf("err = %v, want a *CheckpointError naming %s and saying %q", err, path, tc.want)
			}
		})
	}

	// A training-state tensor this version does not know.
	f, err := safetensors.Read(src)
	if err != nil {
		t.Fatal(err)
	}
	f.AddF64(ProgressPrefix+"lr_schedule", tensor.New[float64](3))
	extra := filepath.Join(t.TempDir(), "extra.safetensors")
	if err := f.WriteFile(extra); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(extra); err == nil || !strings.Contains(err.Error(), `unexpected tensor "train.lr_schedule"`) {
		t.Errorf("unknown training-state tensor: err = %v", err)
	}

	// Every truncation of a checkpoint with training state is refused.
	good, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, n := range []int{0, 9, len(good) / 3, len(good) / 2, len(good) - 8, len(good) - 1} {
		p := filepath.Join(dir, "cut.safetensors")
		os.WriteFile(p, good[:n], 0o644)
		var ce *CheckpointError
		if _, err := Load(p); !errors.As(err, &ce) {
			t.Errorf("cut at %d of %d bytes: err = %v", n, len(good), err)
		}
	}
}

// TestInterruptedSaveKeepsCheckpoint makes the checkpoint write of an
// interrupted run fail part-way: the previous checkpoint must survive
// byte for byte and resume, and the error must say both what happened and
// what was kept.
func TestInterruptedSaveKeepsCheckpoint(t *testing.T) {
	dir := interruptedCheckpoint(t, Adam, 9) // the end of epoch 1
	path := filepath.Join(dir, CheckpointFile)
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, limit := range []int{0, 100, len(good) / 2, len(good) - 1} {
		o := loadResume(t, dir, resumeOptions(dir, Adam))
		train, test := resumeData()
		ctx, cancel := context.WithCancel(context.Background())
		o.Hooks.Step = func(r training.StepReport) {
			if r.Step == 13 {
				wrapCheckpointWriter = func(w io.Writer) io.Writer { return &failAfter{w: w, n: limit} }
				cancel()
			}
		}
		_, err := Train(ctx, train, test, o)
		wrapCheckpointWriter = nil
		cancel()
		if !errors.Is(err, ErrInterrupted) || !errors.Is(err, errDiskGone) || !strings.Contains(err.Error(), "previous checkpoint is kept") {
			t.Fatalf("limit %d: err = %v", limit, err)
		}
		if got, _ := os.ReadFile(path); !bytes.Equal(got, good) {
			t.Fatalf("limit %d: the checkpoint changed", limit)
		}
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			if strings.Contains(e.Name(), ".tmp") {
				t.Errorf("temporary file %s left behind", e.Name())
			}
		}
	}
	ck, err := Load(path)
	if err != nil || ck.Meta.Step != 9 {
		t.Fatalf("the kept checkpoint: %v", err)
	}
}

// TestCheckpointProgressLayout checks the names, dtypes and shapes of the
// training state in the file, which hand-written readers (PyTorch's
// safetensors loader, bench/autoencoder's scripts) must handle: only F32,
// F64 and I64 tensors.
func TestCheckpointProgressLayout(t *testing.T) {
	dir := interruptedCheckpoint(t, Adam, 13)
	f, err := safetensors.Read(filepath.Join(dir, CheckpointFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range f.Names() {
		raw, _ := f.Get(name)
		if raw.DType != safetensors.F32 && raw.DType != safetensors.F64 && raw.DType != safetensors.I64 {
			t.Errorf("tensor %q has dtype %s", name, raw.DType)
		}
	}
	for name, want := range map[string][]int{TensorShuffle: {2}, TensorStepLoss: {13}, TensorTestError: {1}, "encoder.weight": {8, 64}} {
		if raw, ok := f.Get(name); !ok || !slices.Equal(raw.Shape, want) {
			t.Errorf("tensor %q: %v, want shape %v", name, raw, want)
		}
	}
	md := f.Metadata
	if md[MetaEpoch] != "1" || md[MetaInEpoch] != "4" || md[MetaStep] != "13" {
		t.Errorf("metadata %v", md)
	}
	if _, ok := md[MetaTestError]; ok {
		t.Errorf("a mid-epoch checkpoint records the test error %s of weights it no longer holds", md[MetaTestError])
	}
}
