// Package training is the runtime the trainers of backprop share (the
// auto-encoder, the DCGAN and eval's classifier): the epoch and step loop
// with hooks that a command line attaches its progress bar, its per-epoch
// lines and the live browser view to; interrupt handling (a cancelled
// context stops the loop between steps and saves a checkpoint); seeding of
// every random stream through SplitMix64; atomic checkpoints that carry a
// format version and refuse NaN and Inf on load; and the history CSV and
// loss plot written after every epoch.
//
// A trainer describes one run as a Loop: its position (epochs done, steps
// done in the next epoch), and the functions that run a step, finish an
// epoch (evaluation, files, checkpoint) and save an interrupted run. Run
// drives it and reports through Hooks; the trainer never prints.
package training

import (
	"context"
	"errors"
	"fmt"
	"image"
	"math"
	"os"
	"time"
)

// ErrInterrupted is wrapped by the error of a run whose context was
// cancelled (Ctrl-C): the loop stopped between two steps and saved what
// it had reached (see *InterruptedError). Commands exit with status 130 on
// it.
var ErrInterrupted = errors.New("training interrupted")

// ErrNonFinite is wrapped by the error of a run whose loss became NaN or
// infinite: training stops before anything of that step is written, so the
// latest checkpoint is the last good one.
var ErrNonFinite = errors.New("the loss is not finite")

// Metric is one named number a step or an epoch reports ("loss", "D",
// "test error"), in the order the trainer lists them.
type Metric struct {
	Name  string
	Value float64
}

// Plan is where a run starts and where it ends: what a progress bar needs
// before the first step.
type Plan struct {
	Epochs        int // epochs to reach, counting those already done
	StepsPerEpoch int // optimizer steps per epoch
	Epoch         int // epochs completed when the loop starts
	StepInEpoch   int // steps already done in epoch Epoch+1 (a run resumed mid-epoch)
}

// Done is the number of steps completed when the loop starts.
func (p Plan) Done() int { return p.Epoch*p.StepsPerEpoch + p.StepInEpoch }

// Total is the number of steps of the whole run.
func (p Plan) Total() int { return p.Epochs * p.StepsPerEpoch }

// StepReport describes a step just taken.
type StepReport struct {
	Epoch, Epochs int // the step's epoch (1-based) and the epochs of the run
	StepInEpoch   int // the step's number within its epoch, 1-based
	StepsPerEpoch int
	Step          int      // steps taken in the whole run, this one included
	Metrics       []Metric // what the step measured (its losses)
}

// EpochReport describes an epoch just completed, after its files were
// written.
type EpochReport struct {
	Epoch, Epochs int // the epoch (1-based) and the epochs of the run
	Step          int // steps taken in the whole run
	// Steps is the number of the epoch's steps this process ran: fewer
	// than StepsPerEpoch in the first epoch of a run resumed mid-epoch.
	Steps int
	// Train is the wall time of those steps, End that of finishing the
	// epoch (evaluation, pictures, checkpoint).
	Train, End time.Duration
	Metrics    []Metric    // what the epoch measured (mean losses, test error)
	Image      image.Image // the epoch's picture (samples, reconstructions); nil if none
	Files      []string    // the files written after the epoch
}

// StepsPerSecond is the training speed of the epoch, 0 when no step ran.
func (r EpochReport) StepsPerSecond() float64 {
	if r.Steps == 0 || r.Train <= 0 {
		return 0
	}
	return float64(r.Steps) / r.Train.Seconds()
}

// Hooks let a caller follow a run: a progress bar, per-epoch lines, the
// live browser view, tests. Every field may be nil.
type Hooks struct {
	Begin func(Plan)        // once, before the first step
	Step  func(StepReport)  // after every step
	Epoch func(EpochReport) // after every epoch, once its files are written
	End   func(err error)   // once, when the run returns, with its error (nil when it finished)
}

// Then returns hooks that call h's, then next's.
func (h Hooks) Then(next Hooks) Hooks {
	return Hooks{
		Begin: chain(h.Begin, next.Begin),
		Step:  chain(h.Step, next.Step),
		Epoch: chain(h.Epoch, next.Epoch),
		End:   chain(h.End, next.End),
	}
}

// chain calls a, then b, skipping nil ones.
func chain[T any](a, b func(T)) func(T) {
	switch {
	case a == nil:
		return b
	case b == nil:
		return a
	}
	return func(v T) { a(v); b(v) }
}

// EpochEnd is what a trainer's EndEpoch reports.
type EpochEnd struct {
	Metrics []Metric
	Image   image.Image
	Files   []string
}

// Loop is one training run as Run drives it. Epochs are numbered from 1,
// steps within an epoch from 0.
type Loop struct {
	Plan
	// BeginEpoch, if set, prepares epoch e before its first step: drawing
	// its shuffle, for instance. It is also called for the epoch a resumed
	// run continues, whose first Plan.StepInEpoch steps are then skipped.
	BeginEpoch func(e int) error
	// Step runs step s of epoch e and returns what it measured. An error
	// wrapping ErrNonFinite stops the run with the last good checkpoint
	// kept.
	Step func(e, s int) ([]Metric, error)
	// EndEpoch, if set, finishes epoch e after its last step: evaluation,
	// pictures, history, checkpoint.
	EndEpoch func(e int) (EpochEnd, error)
	// Interrupt, if set, saves the run stopped before step s of epoch e
	// (s steps of it done) and returns the checkpoint's path, also when
	// the save failed; "" when there is nowhere to save.
	Interrupt func(e, s int) (path string, err error)
	Hooks     Hooks
}

// Run trains from l.Plan's position to l.Epochs epochs. Between two steps
// it checks ctx: once cancelled it calls l.Interrupt and returns an
// *InterruptedError (wrapping ErrInterrupted and the context's error).
// Any other error of the trainer's functions ends the run and is returned
// as it is.
func (l *Loop) Run(ctx context.Context) (err error) {
	if l.StepsPerEpoch <= 0 {
		return fmt.Errorf("training: %d steps per epoch, want at least 1", l.StepsPerEpoch)
	}
	if l.StepInEpoch < 0 || l.StepInEpoch >= l.StepsPerEpoch {
		return fmt.Errorf("training: resuming at step %d of an epoch of %d steps", l.StepInEpoch, l.StepsPerEpoch)
	}
	if l.Hooks.End != nil {
		defer func() { l.Hooks.End(err) }()
	}
	if l.Hooks.Begin != nil {
		l.Hooks.Begin(l.Plan)
	}
	step := l.Done()
	skip := l.StepInEpoch
	for e := l.Epoch + 1; e <= l.Epochs; e++ {
		if l.BeginEpoch != nil {
			if err := l.BeginEpoch(e); err != nil {
				return err
			}
		}
		start := time.Now()
		for s := skip; s < l.StepsPerEpoch; s++ {
			if cause := ctx.Err(); cause != nil {
				return l.interrupted(cause, e, s, step)
			}
			m, err := l.Step(e, s)
			if err != nil {
				return err
			}
			step++
			if l.Hooks.Step != nil {
				l.Hooks.Step(StepReport{Epoch: e, Epochs: l.Epochs, StepInEpoch: s + 1, StepsPerEpoch: l.StepsPerEpoch, Step: step, Metrics: m})
			}
		}
		r := EpochReport{Epoch: e, Epochs: l.Epochs, Step: step, Steps: l.StepsPerEpoch - skip, Train: time.Since(start)}
		skip = 0
		if l.EndEpoch != nil {
			start = time.Now()
			end, err := l.EndEpoch(e)
			if err != nil {
				return err
			}
			r.End, r.Metrics, r.Image, r.Files = time.Since(start), end.Metrics, end.Image, end.Files
		}
		if l.Hooks.Epoch != nil {
			l.Hooks.Epoch(r)
		}
	}
	return nil
}

// interrupted saves the run stopped before step s of epoch e and returns
// the error that says where it stopped and how it was kept.
func (l *Loop) interrupted(cause error, e, s, step int) error {
	ie := &InterruptedError{Cause: cause, Epoch: e, StepInEpoch: s, StepsPerEpoch: l.StepsPerEpoch, Step: step}
	if l.Interrupt != nil {
		ie.Path, ie.SaveErr = l.Interrupt(e, s)
		if ie.SaveErr != nil && ie.Path != "" {
			_, statErr := os.Stat(ie.Path)
			ie.Kept = statErr == nil
		}
	}
	return ie
}

// InterruptedError is the error of a run stopped by its context: where it
// stopped and what became of its checkpoint.
type InterruptedError struct {
	Cause         error // the context's error
	Epoch         int   // the epoch in progress, 1-based
	StepInEpoch   int   // its steps done
	StepsPerEpoch int
	Step          int    // steps done in the whole run
	Path          string // the checkpoint written (or attempted); "" when nothing was to be saved
	SaveErr       error  // why the checkpoint could not be written; nil when it was
	Kept          bool   // with SaveErr: an earlier checkpoint is still at Path
}

// Error says where the run stopped and where its checkpoint is, in the
// user's words (no context error).
func (e *InterruptedError) Error() string {
	where := fmt.Sprintf("%v in epoch %d after %d of its %d steps (%d steps in all)", ErrInterrupted, e.Epoch, e.StepInEpoch, e.StepsPerEpoch, e.Step)
	if errors.Is(e.Cause, context.DeadlineExceeded) {
		where += " at its time limit"
	}
	switch {
	case e.Path == "":
		return where + "; no output directory, nothing saved"
	case e.SaveErr == nil:
		return where + "; checkpoint saved to " + e.Path
	case e.Kept:
		return fmt.Sprintf("%s, and saving the checkpoint failed: %v; the previous checkpoint is kept", where, e.SaveErr)
	}
	return fmt.Sprintf("%s, and saving the checkpoint failed: %v; no checkpoint was saved", where, e.SaveErr)
}

// Unwrap returns ErrInterrupted, the context's error and the save's error,
// if any.
func (e *InterruptedError) Unwrap() []error {
	errs := []error{ErrInterrupted, e.Cause}
	if e.SaveErr != nil {
		errs = append(errs, e.SaveErr)
	}
	return errs
}

// Finite reports whether every v is neither NaN nor infinite.
func Finite(vs ...float64) bool {
	for _, v := range vs {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return false
		}
	}
	return true
}
