package vec

import (
	"runtime"

	"github.com/backprop-dev/backprop/internal/parallel"
)

// ParallelMin is the number of elements a batch must hold before Run
// splits it across goroutines: below it one core finishes the update in a
// few tens of microseconds, about what handing work to another goroutine
// costs. Each extra goroutine gets at least ParallelMin/2 elements.
const ParallelMin = 1 << 16

// maxWorkers bounds the goroutines one Run fans out to.
const maxWorkers = 64

// line is the split granularity: 16 float32, one 64-byte cache line, so
// that two workers never write the same line of a contiguous slice.
const line = 16

// AdamTensor is one parameter tensor's Adam update: Theta, M, V and Grad
// of one length, with its own coefficients (each parameter has its own
// step count, so its own bias corrections).
type AdamTensor struct {
	Theta, M, V, Grad []float32
	Coeffs            AdamCoeffs
}

// AdamBatch runs the Adam updates of a parameter list with one fork/join.
// Keep one per optimizer and reuse it: after the first Run, Add and Run
// allocate nothing. A batch must not be used by two goroutines at once.
type AdamBatch struct {
	tensors []AdamTensor
	fork    fork
}

// Add queues one tensor's update; it panics if the slices' lengths differ.
// The slices are used in place when Run runs.
func (b *AdamBatch) Add(t AdamTensor) {
	n := len(t.Theta)
	if len(t.M) != n || len(t.V) != n || len(t.Grad) != n {
		panic("vec: Adam slices of different lengths")
	}
	b.tensors = append(b.tensors, t)
}

// Run applies every queued update, in parallel when the batch is large,
// and empties the batch. The result does not depend on the split.
func (b *AdamBatch) Run() {
	b.fork.run(b)
	clear(b.tensors) // drop the references to the slices
	b.tensors = b.tensors[:0]
}

func (b *AdamBatch) count() int       { return len(b.tensors) }
func (b *AdamBatch) length(i int) int { return len(b.tensors[i].Grad) }
func (b *AdamBatch) span(i, lo, hi int) {
	t := &b.tensors[i]
	if lo < hi {
		adam(t.Theta[lo:hi], t.M[lo:hi], t.V[lo:hi], t.Grad[lo:hi], &t.Coeffs)
	}
}

// SGDTensor is one parameter tensor's SGD update: Theta and Grad of one
// length, and Buf of the same length when Coeffs.HasMomentum.
type SGDTensor struct {
	Theta, Buf, Grad []float32
	Coeffs           SGDCoeffs
}

// SGDBatch runs the SGD updates of a parameter list with one fork/join.
// Keep one per optimizer and reuse it: after the first Run, Add and Run
// allocate nothing. A batch must not be used by two goroutines at once.
type SGDBatch struct {
	tensors []SGDTensor
	fork    fork
}

// Add queues one tensor's update; it panics if the slices' lengths differ.
// The slices are used in place when Run runs.
func (b *SGDBatch) Add(t SGDTensor) {
	n := len(t.Theta)
	if len(t.Grad) != n || (t.Coeffs.HasMomentum && len(t.Buf) != n) {
		panic("vec: SGD slices of different lengths")
	}
	if !t.Coeffs.HasMomentum {
		t.Buf = nil
	}
	b.tensors = append(b.tensors, t)
}

// Run applies every queued update, in parallel when the batch is large,
// and empties the batch. The result does not depend on the split.
func (b *SGDBatch) Run() {
	b.fork.run(b)
	clear(b.tensors)
	b.tensors = b.tensors[:0]
}

func (b *SGDBatch) count() int       { return len(b.tensors) }
func (b *SGDBatch) length(i int) int { return len(b.tensors[i].Grad) }
func (b *SGDBatch) span(i, lo, hi int) {
	t := &b.tensors[i]
	if lo >= hi {
		return
	}
	var buf []float32
	if t.Buf != nil {
		buf = t.Buf[lo:hi]
	}
	sgd(t.Theta[lo:hi], buf, t.Grad[lo:hi], &t.Coeffs)
}

// work is a list of tensors updated element by element: span(i, lo, hi)
// updates elements [lo, hi) of tensor i.
type work interface {
	count() int
	length(i int) int
	span(i, lo, hi int)
}

// pos is a position in a work list: element off of tensor i.
type pos struct{ i, off int }

// runRange updates every element from a up to b.
func runRange(w work, a, b pos) {
	for i := a.i; i <= b.i && i < w.count(); i++ {
		lo, hi := 0, w.length(i)
		if i == a.i {
			lo = a.off
		}
		if i == b.i {
			hi = b.off
		}
		w.span(i, lo, hi)
	}
}

// fork is the reusable fork/join state of a batch.
type fork struct {
	tasks   [maxWorkers]task
	helpers [maxWorkers]*parallel.Helper
	grp     parallel.Group
}

// task is one worker's share of a Run.
type task struct {
	w    work
	a, b pos
	grp  *parallel.Group
}

// Run implements parallel.Task.
func (t *task) Run() { runRange(t.w, t.a, t.b) }

// Done implements parallel.Task.
func (t *task) Done() { t.grp.Done() }

// run updates all of w, splitting it into about equal ranges (cut at
// cache-line multiples inside a tensor) over as many idle helpers as the
// size warrants.
func (f *fork) run(w work) {
	total := 0
	for i := range w.count() {
		total += w.length(i)
	}
	nw := 1
	if total >= ParallelMin {
		nw = min(runtime.GOMAXPROCS(0), maxWorkers, total/(ParallelMin/2))
	}
	helpers := f.helpers[:0]
	if nw > 1 {
		helpers = parallel.Claim(helpers, nw-1)
	}
	if len(helpers) == 0 {
		runRange(w, pos{}, pos{w.count(), 0})
		return
	}
	// Part k is [cut(k), cut(k+1)); the caller runs part 0, helper k−1
	// part k; cutAt(w, total) is end.
	parts := len(helpers) + 1
	f.grp.Add(len(helpers))
	for k, h := range helpers {
		t := &f.tasks[k]
		*t = task{w: w, a: cutAt(w, total*(k+1)/parts), b: cutAt(w, total*(k+2)/parts), grp: &f.grp}
		h.Go(t)
	}
	runRange(w, pos{}, cutAt(w, total/parts))
	f.grp.Wait()
	clear(f.tasks[:len(helpers)])
	clear(helpers)
}

// cutAt returns the position of global element e of w, rounded down to a
// multiple of line inside its tensor.
func cutAt(w work, e int) pos {
	for i := range w.count() {
		n := w.length(i)
		if e < n {
			return pos{i, e &^ (line - 1)}
		}
		e -= n
	}
	return pos{w.count(), 0}
}
