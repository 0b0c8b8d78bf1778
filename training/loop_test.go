package training

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/backprop-dev/backprop/safetensors"
	"github.com/backprop-dev/backprop/tensor"
)

// TestLoopResumesMidEpoch runs a loop resumed after 1 epoch and 2 steps
// and checks the calls and reports, in order.
func TestLoopResumesMidEpoch(t *testing.T) {
	var calls []string
	l := Loop{Plan: Plan{Epochs: 3, StepsPerEpoch: 4, Epoch: 1, StepInEpoch: 2}}
	l.BeginEpoch = func(e int) error { calls = append(calls, "begin"+string(rune('0'+e))); return nil }
	l.Step = func(e, s int) ([]Metric, error) { return []Metric{{"loss", float64(10*e + s)}}, nil }
	l.EndEpoch = func(e int) (EpochEnd, error) { return EpochEnd{Metrics: []Metric{{"e", float64(e)}}}, nil }
	var steps []StepReport
	var epochs []EpochReport
	var plan Plan
	l.Hooks = Hooks{Begin: func(p Plan) { plan = p }, Step: func(r StepReport) { steps = append(steps, r) },
		Epoch: func(r EpochReport) { epochs = append(epochs, r) }}
	if err := l.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if plan.Done() != 6 || plan.Total() != 12 || strings.Join(calls, ",") != "begin2,begin3" {
		t.Fatalf("plan %+v, calls %v", plan, calls)
	}
	if len(steps) != 6 || steps[0].Step != 7 || steps[0].StepInEpoch != 3 || steps[0].Metrics[0].Value != 22 || steps[5].Step != 12 {
		t.Fatalf("steps %+v", steps)
	}
	if len(epochs) != 2 || epochs[0].Steps != 2 || epochs[1].Steps != 4 || epochs[1].Step != 12 || epochs[1].Metrics[0].Value != 3 {
		t.Fatalf("epochs %+v", epochs)
	}
}

// TestLoopInterrupt cancels the context after step 5 and checks that the
// loop saves the position and reports it in plain words.
func TestLoopInterrupt(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var savedAt [2]int
	var ended error
	l := Loop{Plan: Plan{Epochs: 3, StepsPerEpoch: 4}}
	l.Step = func(e, s int) ([]Metric, error) { return nil, nil }
	l.Interrupt = func(e, s int) (string, error) { savedAt = [2]int{e, s}; return "run/checkpoint.safetensors", nil }
	l.Hooks = Hooks{Step: func(r StepReport) {
		if r.Step == 5 {
			cancel()
		}
	}, End: func(err error) { ended = err }}
	err := l.Run(ctx)
	if !errors.Is(err, ErrInterrupted) || !errors.Is(err, context.Canceled) || ended != err || savedAt != [2]int{2, 1} {
		t.Fatalf("err %v, saved at %v", err, savedAt)
	}
	want := "training interrupted in epoch 2 after 1 of its 4 steps (5 steps in all); checkpoint saved to run/checkpoint.safetensors"
	if err.Error() != want {
		t.Errorf("message %q, want %q", err, want)
	}
	// a failed save says so, and keeps the error's identity
	disk := errors.New("no space left on device")
	l.Interrupt = func(e, s int) (string, error) { return filepath.Join(t.TempDir(), "none"), disk }
	ctx, cancel = context.WithCancel(context.Background())
	cancel()
	if err := l.Run(ctx); !errors.Is(err, disk) || !strings.Contains(err.Error(), "no checkpoint was saved") {
		t.Errorf("failed save: %v", err)
	}
}

// TestFormat checks the format values read and the messages of those
// refused.
func TestFormat(t *testing.T) {
	want := Format{Kind: "backprop-dcgan28", Version: 2}
	for _, tc := range []struct {
		got     string
		version int
		msg     string
	}{
		{"backprop-dcgan28/v2", 2, ""},
		{"backprop-dcgan28/v1", 1, ""},
		{"backprop-dcgan28/v3", 0, "written by a newer backprop (format backprop-dcgan28/v3); this version reads backprop-dcgan28/v1 to v2"},
		{"backprop-autoencoder/v2", 0, `its format is "backprop-autoencoder/v2", not backprop-dcgan28`},
		{"nonsense", 0, `its format is "nonsense"`},
	} {
		v, err := CheckFormat(map[string]string{MetaFormat: tc.got}, want, 1)
		if v != tc.version || (tc.msg == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%q: version %d, %v; want %d, %q", tc.got, v, err, tc.version, tc.msg)
		}
	}
	if v, err := CheckFormat(map[string]string{}, want, 1); v != 0 || err != nil {
		t.Errorf("no format: %d, %v", v, err)
	}
	old := (&FormatError{Got: "backprop-dcgan28/v1", Want: Format{Kind: "backprop-dcgan28", Version: 3}, Oldest: 2}).Error()
	if !strings.Contains(old, "older backprop (format backprop-dcgan28/v1)") {
		t.Errorf("older: %s", old)
	}
}

// TestCheckFinite plants NaN and −Inf and checks the tensor and element
// named.
func TestCheckFinite(t *testing.T) {
	f := safetensors.NewFile()
	w := tensor.New[float32](2, 3)
	f.AddF32("a.weight", w)
	f.AddI64("step", 3)
	if err := CheckFinite(f); err != nil {
		t.Fatal(err)
	}
	h := tensor.New[float64](4)
	h.Data()[2], h.Data()[3] = math.Inf(-1), math.NaN()
	f.AddF64("history", h)
	err := CheckFinite(f)
	var nf *NonFiniteError
	if !errors.As(err, &nf) || nf.Tensor != "history" || nf.Count != 2 || !strings.Contains(err.Error(), `tensor "history" holds -Inf at [2] (2 of its 4 values are not finite)`) {
		t.Fatalf("got %v", err)
	}
	g := safetensors.NewFile()
	w.Data()[4] = float32(math.NaN())
	g.AddF32("a.weight", w)
	if err := CheckFinite(g); err == nil || !strings.Contains(err.Error(), `"a.weight" holds NaN at [1,1]`) {
		t.Fatalf("got %v", err)
	}
}

// TestHistoryCSV checks the columns and the placement of epoch values.
func TestHistoryCSV(t *testing.T) {
	path := filepath.Join(t.TempDir(), HistoryFile)
	h := History{StepsPerEpoch: 2, Steps: []Series{{Column: "loss", Values: []float64{4, 3, 2, 1}}},
		Epochs: []Series{{Column: "test", Values: []float64{0.5, 0.25}}}}
	if err := h.WriteCSV(path); err != nil {
		t.Fatal(err)
	}
	f, _ := readText(path)
	if f != "step,epoch,loss,test\n1,1,4,\n2,1,3,0.5\n3,2,2,\n4,2,1,0.25\n" {
		t.Errorf("csv %q", f)
	}
}

// readText reads a text file.
func readText(path string) (string, error) {
	b, err := os.ReadFile(path)
	return string(b), err
}
