package gan

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/backprop-dev/backprop/autograd"
	"github.com/backprop-dev/backprop/data"
	"github.com/backprop-dev/backprop/safetensors"
	"github.com/backprop-dev/backprop/tensor"
	"github.com/backprop-dev/backprop/training"
)

// writeDataDir writes a small synthetic data set in the MNIST layout (n
// random 28×28 images with blobs, and labels) and returns its directory.
func writeDataDir(t testing.TB, n int) string {
	t.Helper()
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(7, 7))
	px := make([]uint8, n*ImageSize*ImageSize)
	for i := range n {
		cx, cy := 6+rng.IntN(16), 6+rng.IntN(16)
		for y := range ImageSize {
			for x := range ImageSize {
				d := (x-cx)*(x-cx) + (y-cy)*(y-cy)
				if d < 25 {
					px[i*ImageSize*ImageSize+y*ImageSize+x] = uint8(255 - 8*d)
				}
			}
		}
	}
	labels := make([]uint8, n)
	for i := range labels {
		labels[i] = uint8(i % 10)
	}
	if err := data.WriteIDX(filepath.Join(dir, "train-images-idx3-ubyte"), []int{n, ImageSize, ImageSize}, px); err != nil {
		t.Fatal(err)
	}
	if err := data.WriteIDX(filepath.Join(dir, "train-labels-idx1-ubyte"), []int{n}, labels); err != nil {
		t.Fatal(err)
	}
	return dir
}

// newTestTrainer starts a run on a synthetic data set: 192 images in
// batches of 32, 6 steps per epoch.
func newTestTrainer(t testing.TB, dir string) *Trainer {
	t.Helper()
	cfg := Config{Data: dir, Seed: 42, Batch: 32}
	images, err := LoadImages(cfg)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := NewTrainer(cfg, images)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

// resume opens dir's latest checkpoint and rebuilds its trainer.
func resume(t testing.TB, dir string) *Trainer {
	t.Helper()
	ck, err := OpenCheckpoint(filepath.Join(dir, CheckpointFile))
	if err != nil {
		t.Fatal(err)
	}
	images, err := LoadImages(ck.Config)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := ck.Resume(images)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

// sameCheckpoints fails unless the two checkpoint files hold the same
// tensors, bit for bit, and the same metadata.
func sameCheckpoints(t *testing.T, a, b string) {
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
		t.Fatalf("%s and %s hold different tensors:\n%v\n%v", a, b, fa.Names(), fb.Names())
	}
	for _, name := range fa.Names() {
		ta, _ := fa.Get(name)
		tb, _ := fb.Get(name)
		if ta.DType != tb.DType || !slices.Equal(ta.Shape, tb.Shape) || !bytes.Equal(ta.Data, tb.Data) {
			t.Errorf("tensor %q differs between %s and %s", name, a, b)
		}
	}
	for k, v := range fa.Metadata {
		if fb.Metadata[k] != v {
			t.Errorf("metadata %q: %q vs %q", k, v, fb.Metadata[k])
		}
	}
}

func TestModelShapesAndNames(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	g, d := NewGenerator(rng), NewDiscriminator(rng)
	z := Noise(rng, 3)
	x, err := g.Forward(autograd.Leaf("z", z, false))
	if err != nil {
		t.Fatal(err)
	}
	if !tensor.SameShape(x.Value.Shape(), []int{3, 1, 28, 28}) {
		t.Fatalf("G output shape %v, want [3 1 28 28]", x.Value.Shape())
	}
	for _, v := range x.Value.Data() {
		if !(v >= -1 && v <= 1) {
			t.Fatalf("G output %v outside Tanh's range", v)
		}
	}
	y, err := d.Forward(x)
	if err != nil {
		t.Fatal(err)
	}
	if !tensor.SameShape(y.Value.Shape(), []int{3, 1}) {
		t.Fatalf("D output shape %v, want [3 1]", y.Value.Shape())
	}
	names := func(sd []string) string { return strings.Join(sd, " ") }
	var gn, dn []string
	for _, e := range g.StateDict() {
		gn = append(gn, e.Name)
	}
	for _, e := range d.StateDict() {
		dn = append(dn, e.Name)
	}
	// the state_dict keys of the PyTorch twins in bench/gan/train_torch.py
	wantG := "0.weight 1.weight 1.bias 1.running_mean 1.running_var 1.num_batches_tracked 4.weight 5.weight 5.bias 5.running_mean 5.running_var 5.num_batches_tracked 7.weight 7.bias"
	wantD := "0.weight 0.bias 2.weight 3.weight 3.bias 3.running_mean 3.running_var 3.num_batches_tracked 6.weight 6.bias"
	if names(gn) != wantG {
		t.Errorf("G state dict:\n got %s\nwant %s", names(gn), wantG)
	}
	if names(dn) != wantD {
		t.Errorf("D state dict:\n got %s\nwant %s", names(dn), wantD)
	}
	// DCGAN init: weights N(0, 0.02)
	w := g.StateDict()[0].Tensor.Data()
	var s, s2 float64
	for _, v := range w {
		s += float64(v)
		s2 += float64(v) * float64(v)
	}
	mean, std := s/float64(len(w)), math.Sqrt(s2/float64(len(w)))
	if math.Abs(mean) > 0.001 || math.Abs(std-0.02) > 0.001 {
		t.Errorf("G.0.weight mean %g std %g, want N(0, 0.02)", mean, std)
	}
}

// TestResumeBitForBit interrupts a run in the middle of an epoch and again
// at an epoch boundary, resumes it each time from its checkpoint, and
// checks that it ends with exactly the checkpoint of an uninterrupted run.
func TestResumeBitForBit(t *testing.T) {
	dataDir := writeDataDir(t, 192+17) // 6 steps per epoch and a dropped remainder
	const epochs = 3

	straight := t.TempDir()
	tr := newTestTrainer(t, dataDir)
	if err := tr.Run(context.Background(), epochs, straight, training.Hooks{}); err != nil {
		t.Fatal(err)
	}
	if tr.Step != epochs*6 {
		t.Fatalf("%d steps, want %d", tr.Step, epochs*6)
	}

	interrupted := t.TempDir()
	for _, stopAt := range []int64{4, 12, -1} { // mid-epoch 1, end of epoch 2, then to the end
		var tr *Trainer
		if stopAt == 4 {
			tr = newTestTrainer(t, dataDir)
		} else {
			tr = resume(t, interrupted)
		}
		ctx, cancel := context.WithCancel(context.Background())
		err := tr.Run(ctx, epochs, interrupted, training.Hooks{Step: func(r training.StepReport) {
			if int64(r.Step) == stopAt {
				cancel()
			}
		}})
		cancel()
		if stopAt < 0 {
			if err != nil {
				t.Fatal(err)
			}
			continue
		}
		if !errors.Is(err, ErrInterrupted) {
			t.Fatalf("stop at %d: got %v, want ErrInterrupted", stopAt, err)
		}
		ck, err := OpenCheckpoint(filepath.Join(interrupted, CheckpointFile))
		if err != nil {
			t.Fatal(err)
		}
		if ck.Step != stopAt {
			t.Fatalf("checkpoint after interrupting at step %d is at step %d", stopAt, ck.Step)
		}
	}
	sameCheckpoints(t, filepath.Join(straight, CheckpointFile), filepath.Join(interrupted, CheckpointFile))
	for e := 1; e <= epochs; e++ {
		sameCheckpoints(t, filepath.Join(straight, EpochCheckpointFile(e)), filepath.Join(interrupted, EpochCheckpointFile(e)))
		if _, err := os.Stat(filepath.Join(interrupted, "samples-epoch"+string(rune('0'+e))+".png")); err != nil {
			t.Error(err)
		}
	}
	if _, err := os.Stat(filepath.Join(interrupted, "loss.png")); err != nil {
		t.Error(err)
	}
	// the per-step CSV: one row per step, epochs numbered, identical after resuming
	a, err := os.ReadFile(filepath.Join(straight, HistoryFile))
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(interrupted, HistoryFile))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Errorf("%s differs between the uninterrupted and the resumed run", HistoryFile)
	}
	lines := strings.Split(strings.TrimSpace(string(a)), "\n")
	if len(lines) != 1+epochs*6 || lines[0] != "step,epoch,d_loss,g_loss,d_x,d_g_z" ||
		!strings.HasPrefix(lines[1], "1,1,") || !strings.HasPrefix(lines[7], "7,2,") || !strings.HasPrefix(lines[18], "18,3,") {
		t.Errorf("%s: %d lines, starting %q", HistoryFile, len(lines), lines[:min(3, len(lines))])
	}
}

// TestNonFiniteLossStops poisons the discriminator after a good epoch and
// checks that training stops with ErrNonFinite and leaves the last good
// checkpoint untouched.
func TestNonFiniteLossStops(t *testing.T) {
	dir := t.TempDir()
	tr := newTestTrainer(t, writeDataDir(t, 64))
	if err := tr.Run(context.Background(), 1, dir, training.Hooks{}); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, CheckpointFile)
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	ps := tr.D.Parameters()
	ps[len(ps)-1].Var.Value.Data()[0] = float32(math.NaN()) // D's output bias: every logit NaN
	err = tr.Run(context.Background(), 2, dir, training.Hooks{})
	if !errors.Is(err, ErrNonFinite) {
		t.Fatalf("got %v, want ErrNonFinite", err)
	}
	if !strings.Contains(err.Error(), "last good") || !strings.Contains(err.Error(), "NaN") {
		t.Errorf("message %q should say which loss went NaN and that the checkpoint is the last good one", err)
	}
	after, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, after) {
		t.Fatal("the checkpoint changed after a NaN loss")
	}
	if _, err := os.Stat(filepath.Join(dir, EpochCheckpointFile(2))); !os.IsNotExist(err) {
		t.Fatalf("an epoch-2 checkpoint was written: %v", err)
	}
}

// failingWriter accepts limit bytes, then fails as a full disk does.
type failingWriter struct {
	w     io.Writer
	limit int
}

func (f *failingWriter) Write(p []byte) (int, error) {
	if len(p) > f.limit {
		n, _ := f.w.Write(p[:f.limit])
		f.limit = 0
		return n, &os.PathError{Op: "write", Path: "checkpoint", Err: syscall.ENOSPC}
	}
	f.limit -= len(p)
	return f.w.Write(p)
}

// TestFullDiskKeepsPreviousCheckpoint makes a checkpoint write fail half
// way and checks that the previous checkpoint survives, loadable, and
// that no temporary file is left behind.
func TestFullDiskKeepsPreviousCheckpoint(t *testing.T) {
	dir := t.TempDir()
	tr := newTestTrainer(t, writeDataDir(t, 64))
	path := filepath.Join(dir, CheckpointFile)
	if err := tr.Save(path); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(path)
	if _, err := tr.TrainStep(); err != nil {
		t.Fatal(err)
	}
	wrapCheckpointWriter = func(w io.Writer) io.Writer { return &failingWriter{w: w, limit: 1 << 20} }
	defer func() { wrapCheckpointWriter = nil }()
	err := tr.Save(path)
	if !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), path) {
		t.Fatalf("got %v, want an ENOSPC error naming %s", err, path)
	}
	after, _ := os.ReadFile(path)
	if !bytes.Equal(before, after) {
		t.Fatal("the previous checkpoint was damaged by the failed write")
	}
	if ck, err := OpenCheckpoint(path); err != nil || ck.Step != 0 {
		t.Fatalf("previous checkpoint: %v (step %v)", err, ck)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("directory holds %d entries after the failed write, want only the checkpoint", len(entries))
	}
}

func TestBadInputs(t *testing.T) {
	if _, err := LoadImages(Config{Data: "no-such-data-set"}); err == nil || !strings.Contains(err.Error(), "no-such-data-set") {
		t.Errorf("unknown data set: %v", err)
	}
	empty := t.TempDir()
	if _, err := LoadImages(Config{Data: empty}); err == nil || !strings.Contains(err.Error(), "train-images-idx3-ubyte") {
		t.Errorf("directory without IDX files: %v", err)
	}
	small := writeDataDir(t, 40)
	images, err := LoadImages(Config{Data: small})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewTrainer(Config{Data: small, Batch: 64}, images); err == nil || !strings.Contains(err.Error(), "fewer than one batch") {
		t.Errorf("too few images: %v", err)
	}
	if _, err := NewTrainer(Config{Data: small, Batch: 1}, images); err == nil {
		t.Error("batch 1 accepted")
	}

	dir := t.TempDir()
	// a safetensors file of another model
	other := filepath.Join(dir, "other.safetensors")
	if err := safetensors.Write(other, map[string]*tensor.Tensor[float32]{"0.weight": tensor.New[float32](3, 2)}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenCheckpoint(other); err == nil || !strings.Contains(err.Error(), "not a backprop DCGAN checkpoint") {
		t.Errorf("checkpoint of another model: %v", err)
	}
	// not a safetensors file at all
	junk := filepath.Join(dir, "junk.safetensors")
	os.WriteFile(junk, []byte("hello, world, this is not a checkpoint"), 0o644)
	if _, err := OpenCheckpoint(junk); err == nil || !strings.Contains(err.Error(), junk) {
		t.Errorf("junk file: %v", err)
	}
	if _, err := OpenCheckpoint(filepath.Join(dir, "missing.safetensors")); err == nil {
		t.Error("missing file accepted")
	}
	// a DCGAN checkpoint with a tensor removed and one reshaped
	tr := newTestTrainer(t, writeDataDir(t, 64))
	good := filepath.Join(dir, "good.safetensors")
	if err := tr.Save(good); err != nil {
		t.Fatal(err)
	}
	f, err := safetensors.Read(good)
	if err != nil {
		t.Fatal(err)
	}
	bad := safetensors.NewFile()
	for k, v := range f.Metadata {
		bad.Metadata[k] = v
	}
	for _, name := range f.Names() {
		raw, _ := f.Get(name)
		switch name {
		case "G.4.weight":
			continue
		case "G.7.bias":
			raw = &safetensors.Tensor{DType: raw.DType, Shape: []int{2}, Data: make([]byte, 8)}
		}
		if err := bad.Add(name, raw); err != nil {
			t.Fatal(err)
		}
	}
	badPath := filepath.Join(dir, "bad.safetensors")
	if err := bad.WriteFile(badPath); err != nil {
		t.Fatal(err)
	}
	ck, err := OpenCheckpoint(badPath)
	if err != nil {
		t.Fatal(err)
	}
	_, err = ck.Generator()
	if err == nil || !strings.Contains(err.Error(), `"4.weight"`) || !strings.Contains(err.Error(), `"7.bias"`) || !strings.Contains(err.Error(), badPath) {
		t.Errorf("damaged checkpoint: %v", err)
	}
	// resuming on other data
	ck, err = OpenCheckpoint(good)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ck.Resume(images); err == nil || !strings.Contains(err.Error(), "images") {
		t.Errorf("resume on other images: %v", err)
	}
}

func TestSample(t *testing.T) {
	dir := t.TempDir()
	tr := newTestTrainer(t, writeDataDir(t, 64))
	if err := tr.Save(filepath.Join(dir, CheckpointFile)); err != nil {
		t.Fatal(err)
	}
	ck, err := OpenCheckpoint(filepath.Join(dir, CheckpointFile))
	if err != nil {
		t.Fatal(err)
	}
	g, err := ck.Generator()
	if err != nil {
		t.Fatal(err)
	}
	a, err := Sample(g, 300, 5)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Sample(tr.G, 300, 5)
	if !slices.Equal(a.Data(), b.Data()) {
		t.Fatal("samples of the loaded generator differ from the trained one's")
	}
	if _, err := Sample(g, 0, 5); err == nil {
		t.Error("n = 0 accepted")
	}
	for _, name := range []string{"s.idx", "s.idx.gz", "s.png"} {
		p := filepath.Join(dir, name)
		if err := WriteSamples(p, a); err != nil {
			t.Fatal(err)
		}
		if name == "s.png" {
			continue
		}
		idx, err := data.ReadImages(p)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(idx.Dims, []int{300, 28, 28}) {
			t.Fatalf("%s: dims %v", name, idx.Dims)
		}
		if got, want := idx.Data[123], uint8(math.Round(float64(a.Data()[123])*255)); got != want {
			t.Errorf("%s: pixel 123 is %d, want %d", name, got, want)
		}
	}
}

// TestFormat1ResumesWithItsSeeding checks that a checkpoint of format 1
// (written before SplitMix64 seeding; a trainer set to format 1 writes
// one) opens, resumes with format 1's shuffles and ends bit for bit as the
// uninterrupted format-1 run; that a current run records format 2 and its
// epochs; and that a checkpoint holding NaN is refused naming the tensor.
func TestFormat1ResumesWithItsSeeding(t *testing.T) {
	dataDir := writeDataDir(t, 192)
	straight := t.TempDir()
	tr := newTestTrainer(t, dataDir)
	tr.format = 1
	if err := tr.Run(context.Background(), 2, straight, training.Hooks{}); err != nil {
		t.Fatal(err)
	}
	stopped := t.TempDir()
	tr = newTestTrainer(t, dataDir)
	tr.format = 1
	if err := tr.Run(context.Background(), 1, stopped, training.Hooks{}); err != nil {
		t.Fatal(err)
	}
	ck, err := OpenCheckpoint(filepath.Join(stopped, CheckpointFile))
	if err != nil || ck.Format != 1 {
		t.Fatalf("format 1: %v, %+v", err, ck)
	}
	tr = resume(t, stopped)
	if err := tr.Run(context.Background(), 2, stopped, training.Hooks{}); err != nil {
		t.Fatal(err)
	}
	sameCheckpoints(t, filepath.Join(straight, CheckpointFile), filepath.Join(stopped, CheckpointFile))

	current := t.TempDir()
	tr = newTestTrainer(t, dataDir)
	if err := tr.Run(context.Background(), 1, current, training.Hooks{}); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(current, CheckpointFile)
	ck, err = OpenCheckpoint(path)
	if err != nil || ck.Format != 2 || ck.Epochs != 1 {
		t.Fatalf("current format: %v, %+v", err, ck)
	}
	f, err := safetensors.Read(path)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := f.Get("G.7.bias")
	binary.LittleEndian.PutUint32(raw.Data, math.Float32bits(float32(math.Inf(1))))
	bad := filepath.Join(current, "bad.safetensors")
	if err := f.WriteFile(bad); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenCheckpoint(bad); err == nil || !strings.Contains(err.Error(), `tensor "G.7.bias" holds +Inf at [0]`) {
		t.Errorf("Inf checkpoint: %v", err)
	}
	f.Metadata["format"] = "backprop-dcgan28/v7"
	if err := f.WriteFile(bad); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenCheckpoint(bad); err == nil || !strings.Contains(err.Error(), "format backprop-dcgan28/v7") {
		t.Errorf("newer format: %v", err)
	}
}
