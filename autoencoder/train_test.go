package autoencoder

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/backprop-dev/backprop/tensor"
	"github.com/backprop-dev/backprop/training"
)

// firstLast returns the mean loss of the first and of the last k steps.
func firstLast(loss []float64, k int) (first, last float64) {
	k = min(k, len(loss)/2)
	for i := range k {
		first += loss[i]
		last += loss[len(loss)-1-i]
	}
	return first / float64(k), last / float64(k)
}

func TestTrainDecreasesLossSynthetic(t *testing.T) {
	train, test := barsTrainTest()
	for _, optName := range []string{Adam, SGD} {
		t.Run(optName, func(t *testing.T) {
			o := quickOptions(t.TempDir())
			o.Optimizer, o.Epochs, o.Batch = optName, 8, 16
			if optName == SGD {
				o.Momentum = DefaultMomentum
			}
			res, err := Train(context.Background(), train, test, o)
			if err != nil {
				t.Fatal(err)
			}
			first, last := firstLast(res.StepLoss, 5)
			t.Logf("%s: loss %.3f → %.3f, test error %.3f → %.3f", optName, first, last, res.Epochs[0].TestError, res.Epochs[7].TestError)
			if !(last < 0.6*first) {
				t.Errorf("loss went from %.4f to %.4f, want a clear decrease", first, last)
			}
			if !(res.Epochs[2].TestError < res.Epochs[0].TestError) {
				t.Errorf("test error %.4f after epoch 1, %.4f after epoch 3: want a decrease", res.Epochs[0].TestError, res.Epochs[7].TestError)
			}
			for _, f := range []string{"recon-epoch1.png", "recon-epoch3.png", "loss.png", CheckpointFile} {
				if st, err := os.Stat(filepath.Join(o.OutDir, f)); err != nil || st.Size() == 0 {
					t.Errorf("%s not written: %v", f, err)
				}
			}
			checkHistory(t, filepath.Join(o.OutDir, HistoryFile), res)
		})
	}
}

// TestTrainMNISTTiny is the brief's tiny real run: 256 MNIST images, one
// epoch, 16 hidden units.
func TestTrainMNISTTiny(t *testing.T) {
	train, test := realMNIST(t)
	test, _ = Subset(test, 1000)
	o := DefaultOptions()
	o.Hidden, o.Limit, o.Epochs, o.Dataset, o.OutDir = 16, 256, 1, "mnist", t.TempDir()
	var reports []training.EpochReport
	o.Hooks.Epoch = func(r training.EpochReport) { reports = append(reports, r) }
	res, err := Train(context.Background(), train, test, o)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.StepLoss) != 4 {
		t.Fatalf("%d steps, want 256/64 = 4", len(res.StepLoss))
	}
	// Before training the outputs are near 0.5 everywhere, an SSE near
	// 784/4 ≈ 190 on mostly black images; four Adam steps lower it.
	if l := res.StepLoss; !(l[3] < l[0]) {
		t.Errorf("losses %v: want the last below the first", l)
	}
	if len(reports) != 1 || reports[0].Epoch != 1 || reports[0].Steps != 4 || len(reports[0].Metrics) != 2 ||
		reports[0].Metrics[1] != (training.Metric{Name: "test error", Value: res.Epochs[0].TestError}) || reports[0].Image == nil {
		t.Errorf("epoch reports %+v", reports)
	}
	ck, err := Load(res.Checkpoint)
	if err != nil {
		t.Fatal(err)
	}
	if ck.Meta.Config.Input != 784 || ck.Meta.Config.Hidden != 16 || ck.Meta.Dataset != "mnist" || ck.Meta.TrainImages != 256 || ck.Meta.Epoch != 1 {
		t.Errorf("metadata %+v", ck.Meta)
	}
}

// checkpointBytes trains with o and returns the checkpoint file's bytes.
func checkpointBytes(t *testing.T, o Options, trainTest func(*testing.T) (train, test *dataset)) []byte {
	t.Helper()
	train, test := trainTest(t)
	o.OutDir = t.TempDir()
	res, err := Train(context.Background(), train, test, o)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(res.Checkpoint)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestSameSeedSameCheckpointBytes(t *testing.T) {
	bars2 := func(*testing.T) (train, test *dataset) { return barsTrainTest() }
	cases := []struct {
		name string
		data func(*testing.T) (train, test *dataset)
		opt  func(Options) Options
	}{
		{"bars adam", bars2, func(o Options) Options { o.Epochs = 2; return o }},
		{"bars sgd", bars2, func(o Options) Options { o.Optimizer = SGD; o.Epochs = 2; return o }},
		{"mnist limit 256", func(t *testing.T) (train, test *dataset) {
			tr, te := realMNIST(t)
			te, _ = Subset(te, 200)
			return tr, te
		}, func(o Options) Options { o.Limit = 256; o.Batch = 64; return o }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := tc.opt(quickOptions(""))
			a := checkpointBytes(t, o, tc.data)
			b := checkpointBytes(t, o, tc.data)
			if !bytes.Equal(a, b) {
				t.Fatalf("two runs with seed %d wrote different checkpoints (%d and %d bytes)", o.Seed, len(a), len(b))
			}
			o.Seed++
			c := checkpointBytes(t, o, tc.data)
			if bytes.Equal(a, c) {
				t.Fatalf("seeds %d and %d wrote identical checkpoints", o.Seed-1, o.Seed)
			}
		})
	}
}

// failAfter is a writer that accepts n bytes, then fails.
type failAfter struct {
	w io.Writer
	n int
}

var errDiskGone = errors.New("simulated write failure")

func (f *failAfter) Write(p []byte) (int, error) {
	if len(p) <= f.n {
		f.n -= len(p)
		return f.w.Write(p)
	}
	k, _ := f.w.Write(p[:f.n])
	f.n = 0
	return k, errDiskGone
}

// TestFailedWriteKeepsCheckpoint checks that a checkpoint write failing
// part-way, directly or inside a training run, leaves the previous
// checkpoint byte for byte and no temporary file behind.
func TestFailedWriteKeepsCheckpoint(t *testing.T) {
	train, test := barsTrainTest()
	o := quickOptions(t.TempDir())
	if _, err := Train(context.Background(), train, test, o); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(o.OutDir, CheckpointFile)
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, limit := range []int{0, 7, 100, len(good) / 2, len(good) - 1} {
		wrapCheckpointWriter = func(w io.Writer) io.Writer { return &failAfter{w: w, n: limit} }
		o2 := o
		o2.Seed, o2.Epochs = 7, 2 // a different run into the same directory
		_, err := Train(context.Background(), train, test, o2)
		wrapCheckpointWriter = nil
		if !errors.Is(err, errDiskGone) {
			t.Fatalf("limit %d: err = %v, want the write failure", limit, err)
		}
		if !strings.Contains(err.Error(), path) {
			t.Errorf("error %q does not name %s", err, path)
		}
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, good) {
			t.Fatalf("limit %d: the checkpoint changed after a failed write", limit)
		}
		if _, err := Load(path); err != nil {
			t.Fatalf("limit %d: the kept checkpoint no longer loads: %v", limit, err)
		}
	}
	entries, _ := os.ReadDir(o.OutDir)
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tmp") {
			t.Errorf("temporary file %s left behind", e.Name())
		}
	}
}

// TestUnwritableOutputKeepsCheckpoint makes each file a run writes next to
// its checkpoint impossible to create (a directory stands at its path, which
// stops root as well as anyone else, unlike permission bits) and checks that
// the run fails naming that file and leaves the previous checkpoint byte for
// byte.
func TestUnwritableOutputKeepsCheckpoint(t *testing.T) {
	train, test := barsTrainTest()
	o := quickOptions(t.TempDir())
	if _, err := Train(context.Background(), train, test, o); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(o.OutDir, CheckpointFile)
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"recon-epoch1.png", "loss.png", HistoryFile} {
		blocked := filepath.Join(o.OutDir, name)
		if err := os.Remove(blocked); err != nil {
			t.Fatalf("%s: the first run did not write it: %v", name, err)
		}
		if err := os.Mkdir(blocked, 0o755); err != nil {
			t.Fatal(err)
		}
		o2 := o
		o2.Seed = 9
		_, err := Train(context.Background(), train, test, o2)
		if err == nil {
			t.Fatalf("%s: training succeeded with a directory at that path", name)
		}
		if !strings.Contains(err.Error(), name) {
			t.Errorf("%s blocked: error %q does not name it", name, err)
		}
		if got, _ := os.ReadFile(path); !bytes.Equal(got, good) {
			t.Fatalf("%s blocked: the checkpoint changed", name)
		}
		if err := os.Remove(blocked); err != nil {
			t.Fatal(err)
		}
		if _, err := Train(context.Background(), train, test, o); err != nil { // restore the file for the next case
			t.Fatal(err)
		}
	}
}

// TestInterruptSavesCheckpoint cancels a run as the first epoch is
// reported, that is before the first step of epoch 2, and checks that the
// checkpoint saved then is the end of epoch 1 and says so.
func TestInterruptSavesCheckpoint(t *testing.T) {
	train, test := barsTrainTest()
	o := quickOptions(t.TempDir())
	o.Epochs = 3
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	o.Hooks.Epoch = func(training.EpochReport) { cancel() }
	res, err := Train(ctx, train, test, o)
	if !errors.Is(err, context.Canceled) || !errors.Is(err, ErrInterrupted) {
		t.Fatalf("err = %v, want ErrInterrupted and context.Canceled", err)
	}
	if !strings.Contains(err.Error(), "in epoch 2 after 0 of its 8 steps") || !strings.Contains(err.Error(), "checkpoint saved to "+res.Checkpoint) {
		t.Errorf("error %q does not say where it stopped and what was saved", err)
	}
	ck, err := Load(res.Checkpoint)
	if err != nil {
		t.Fatal(err)
	}
	if ck.Meta.Epoch != 1 || ck.Meta.StepInEpoch != 0 || ck.Meta.Step != 8 || ck.Meta.TestError != res.Epochs[0].TestError {
		t.Errorf("saved checkpoint %+v, want the end of epoch 1", ck.Meta)
	}
}

func TestDivergenceStops(t *testing.T) {
	train, test := barsTrainTest()
	o := quickOptions(t.TempDir())
	bad := *train
	bad.Images = train.Images.Clone()
	bad.Images.Data()[100] = float32(math.NaN()) // a corrupt pixel poisons the loss
	_, err := Train(context.Background(), &bad, test, o)
	if err == nil || !strings.Contains(err.Error(), "diverged") {
		t.Fatalf("err = %v, want a divergence error", err)
	}
	if _, statErr := os.Stat(filepath.Join(o.OutDir, CheckpointFile)); statErr == nil {
		t.Error("a diverged epoch wrote a checkpoint")
	}
}

func TestOptionsValidate(t *testing.T) {
	for _, tc := range []struct {
		mod  func(*Options)
		want string
	}{
		{func(o *Options) { o.Hidden = 0 }, "--hidden"},
		{func(o *Options) { o.Optimizer = "rmsprop" }, "--optimizer"},
		{func(o *Options) { o.LR = -1 }, "--lr"},
		{func(o *Options) { o.LR = math.NaN() }, "--lr"},
		{func(o *Options) { o.Momentum = 1.5 }, "--momentum"},
		{func(o *Options) { o.Batch = 0 }, "--batch"},
		{func(o *Options) { o.Epochs = 0 }, "--epochs"},
		{func(o *Options) { o.Limit = -3 }, "--limit"},
	} {
		o := DefaultOptions()
		tc.mod(&o)
		err := o.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v", tc.want, err)
		}
		train, test := barsTrainTest()
		if _, err := Train(context.Background(), train, test, o); err == nil {
			t.Errorf("%s: Train accepted the bad option", tc.want)
		}
	}
	o := DefaultOptions()
	o.LR = 0
	if got := o.LearningRate(); got != DefaultAdamLR {
		t.Errorf("Adam default lr %g", got)
	}
	o.Optimizer = SGD
	if got := o.LearningRate(); got != DefaultSGDLR {
		t.Errorf("SGD default lr %g", got)
	}
}

func TestTrainDataErrors(t *testing.T) {
	train, test := barsTrainTest()
	o := quickOptions("")
	small := bars(4, 3, "test")
	small.Images, _ = small.Images.Reshape(4, 1, 4, 16)
	if _, err := Train(context.Background(), train, small, o); err == nil || !strings.Contains(err.Error(), "8×8") {
		t.Errorf("mismatched image sizes: err = %v", err)
	}
	empty := &dataset{Name: "empty", Images: tensor.New[float32](0, 1, 8, 8)}
	if _, err := Train(context.Background(), train, empty, o); err == nil || !strings.Contains(err.Error(), "at least one") {
		t.Errorf("empty test set: err = %v", err)
	}
	if _, err := Train(context.Background(), train, nil, o); err == nil {
		t.Error("nil test set accepted")
	}
	_ = test
}

// TestHooks checks what a run reports to the command line's progress bar,
// epoch lines and live view: the plan, every step's loss in order, every
// epoch's train loss, test error and reconstruction grid, and the end.
func TestHooks(t *testing.T) {
	train, test := barsTrainTest()
	o := quickOptions(t.TempDir())
	var plan training.Plan
	var steps []training.StepReport
	var epochs []training.EpochReport
	ended := 0
	o.Hooks = training.Hooks{
		Begin: func(p training.Plan) { plan = p },
		Step:  func(r training.StepReport) { steps = append(steps, r) },
		Epoch: func(r training.EpochReport) { epochs = append(epochs, r) },
		End: func(err error) {
			if err != nil {
				t.Errorf("end: %v", err)
			}
			ended++
		},
	}
	res, err := Train(context.Background(), train, test, o)
	if err != nil {
		t.Fatal(err)
	}
	if plan.Epochs != o.Epochs || plan.Total() != len(res.StepLoss) || plan.Done() != 0 || ended != 1 {
		t.Fatalf("plan %+v, %d ends", plan, ended)
	}
	for i, r := range steps {
		if r.Step != i+1 || r.Metrics[0].Name != "loss" || r.Metrics[0].Value != res.StepLoss[i] {
			t.Fatalf("step report %d: %+v", i, r)
		}
	}
	if len(epochs) != o.Epochs {
		t.Fatalf("%d epoch reports", len(epochs))
	}
	for i, r := range epochs {
		st := res.Epochs[i]
		if r.Epoch != i+1 || r.Step != st.Steps || r.Metrics[0].Value != st.TrainLoss || r.Metrics[1].Value != st.TestError || r.Image == nil {
			t.Fatalf("epoch report %d: %+v, want %+v", i, r, st)
		}
		if !slices.Contains(r.Files, CheckpointFile) || !slices.Contains(r.Files, fmt.Sprintf("recon-epoch%d.png", i+1)) {
			t.Errorf("epoch %d files %v", i+1, r.Files)
		}
	}
}

// checkHistory reads history.csv back and compares it with the run's
// result: one row per step with its epoch and loss, the test error on the
// last step of each epoch only.
func checkHistory(t *testing.T, path string, res *Result) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1+len(res.StepLoss) || strings.Join(rows[0], ",") != "step,epoch,train_loss,test_error" {
		t.Fatalf("%s: %d rows, header %v; want %d steps", path, len(rows), rows[0], len(res.StepLoss))
	}
	spe := len(res.StepLoss) / len(res.Epochs)
	for i, row := range rows[1:] {
		loss, err := strconv.ParseFloat(row[2], 64)
		if err != nil || row[0] != strconv.Itoa(i+1) || row[1] != strconv.Itoa(i/spe+1) || loss != res.StepLoss[i] {
			t.Fatalf("%s row %d: %v, want step %d epoch %d loss %v", path, i+1, row, i+1, i/spe+1, res.StepLoss[i])
		}
		if (i+1)%spe != 0 {
			if row[3] != "" {
				t.Fatalf("%s row %d: test error %q in the middle of an epoch", path, i+1, row[3])
			}
			continue
		}
		if te, err := strconv.ParseFloat(row[3], 64); err != nil || te != res.Epochs[i/spe].TestError {
			t.Fatalf("%s row %d: test error %q, want %v", path, i+1, row[3], res.Epochs[i/spe].TestError)
		}
	}
}
