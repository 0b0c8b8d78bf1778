// Package parallel splits the element-wise passes of a training step
// (activations, batch normalisation, bias, folding) across the machine's
// cores. The matrix products parallelise inside package blas; without this
// the passes between them would run on one core while the others idle.
package parallel

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// MinWork is the number of elements a pass must touch before For splits
// it: below it, starting and joining goroutines (a few microseconds) costs
// more than the second core saves.
const MinWork = 1 << 15

// For calls f over [0, n) split into one contiguous range per available
// CPU, at most one per item, and returns when every call has returned.
// work is the number of elements the whole pass touches; passes below
// MinWork run as a single call f(0, n) on the calling goroutine. Each
// range is handed to exactly one call, so f may write its own range
// without locking, and results do not depend on the split when the
// ranges are independent (per-channel sums, element-wise maps).
func For(n, work int, f func(lo, hi int)) { forRanges(n, work, rangeFunc(f), 1, n) }

// Ranger is work over ranges of items for ForRanger: Range handles the
// items [lo, hi). A pointer to a long-lived value implementing it (a
// layer's plan, say) makes a parallel pass that allocates nothing, where
// a closure handed to For is allocated on each call.
type Ranger interface{ Range(lo, hi int) }

// ForRanger is For calling r.Range instead of a function.
func ForRanger(n, work int, r Ranger) { forRanges(n, work, r, 1, n) }

// rangeFunc makes a function a Ranger (a func value converts to an
// interface without allocating).
type rangeFunc func(lo, hi int)

func (f rangeFunc) Range(lo, hi int) { f(lo, hi) }

// forRanges is For over [0, n) in units of scale elements: each range
// [lo, hi) of units is handed on as r.Range(lo·scale, min(hi·scale,
// limit)).
func forRanges(n, work int, r Ranger, scale, limit int) {
	if n <= 0 {
		return
	}
	workers := min(n, runtime.GOMAXPROCS(0), max(1, work/MinWork))
	var hs []*Helper
	if workers > 1 {
		var buf [8]*Helper
		hs = Claim(buf[:0], min(workers-1, len(buf)))
	}
	if len(hs) == 0 {
		r.Range(0, min(n*scale, limit))
		return
	}
	parts := len(hs) + 1
	fs := forStates.Get().(*forState)
	fs.r, fs.scale, fs.limit = r, scale, limit
	fs.g.Add(len(hs))
	for w, h := range hs {
		fs.tasks[w] = forTask{s: fs, lo: (w + 1) * n / parts, hi: (w + 2) * n / parts}
		h.Go(&fs.tasks[w])
	}
	fs.call(0, n/parts)
	fs.g.Wait()
	fs.r = nil
	forStates.Put(fs)
}

// forState is one For call's tasks and their Group, recycled through
// forStates once every task is done.
type forState struct {
	r            Ranger
	scale, limit int
	g            Group
	tasks        [8]forTask
}

var forStates = sync.Pool{New: func() any { return new(forState) }}

// call hands the units [lo, hi) on to the Ranger.
func (s *forState) call(lo, hi int) { s.r.Range(lo*s.scale, min(hi*s.scale, s.limit)) }

// forTask is one helper's range of a For call.
type forTask struct {
	s      *forState
	lo, hi int
}

func (t *forTask) Run()  { t.s.call(t.lo, t.hi) }
func (t *forTask) Done() { t.s.g.Done() }

// Chunks is For over a flat range of n elements, the split rounded to
// multiples of 16 elements (one 64-byte cache line of float32) so that no
// two workers write the same cache line.
func Chunks(n int, f func(lo, hi int)) { ChunksRanger(n, rangeFunc(f)) }

// ChunksRanger is Chunks calling r.Range instead of a function.
func ChunksRanger(n int, r Ranger) {
	const line = 16
	forRanges((n+line-1)/line, n, r, line, n)
}

// The helper pool: a fixed set of goroutines, one per CPU but the caller's,
// shared by every parallel pass of the engine (matrix products, optimizer
// updates, element-wise passes). A call claims idle helpers without waiting
// for busy ones, so concurrent calls simply get fewer, and never two pools
// compete for the cores. An idle helper polls for its next task for
// SpinWait before it parks: handing work to a parked goroutine costs tens
// of microseconds on a virtual machine (the sleeping thread is woken through
// the kernel and must steal the task), as much as a whole small product,
// while a training step issues parallel passes every few hundred
// microseconds.

// SpinWait is how long an idle helper, a Group's Wait and package blas's
// barriers poll before they park.
const SpinWait = 100 * time.Microsecond

// Task is work handed to a helper: Run does it; Done, called after the
// helper is idle again (so that the caller's next pass finds it), signals
// completion (usually Group.Done).
type Task interface {
	Run()
	Done()
}

// Helper is one goroutine of the pool, held by the caller that claimed it
// until it hands it a task (after which the helper returns to the pool by
// itself) or gives it back with Release.
type Helper struct{ ch chan Task }

var (
	idleHelpers chan *Helper
	helpersOnce sync.Once
)

func startHelpers() {
	n := max(runtime.NumCPU()-1, 1)
	idleHelpers = make(chan *Helper, n)
	for range n {
		h := &Helper{ch: make(chan Task, 1)}
		go h.loop()
		idleHelpers <- h
	}
}

// Claim appends to dst up to n idle helpers, without waiting for busy ones.
func Claim(dst []*Helper, n int) []*Helper {
	if n <= 0 {
		return dst
	}
	helpersOnce.Do(startHelpers)
	for range n {
		select {
		case h := <-idleHelpers:
			dst = append(dst, h)
		default:
			return dst
		}
	}
	return dst
}

// Go hands t to the claimed helper h; h runs it, returns to the pool and
// then calls t.Done.
func (h *Helper) Go(t Task) { h.ch <- t }

// Release gives an unused claimed helper back to the pool.
func (h *Helper) Release() { idleHelpers <- h }

func (h *Helper) loop() {
	for {
		t := h.next()
		t.Run()
		idleHelpers <- h
		t.Done()
	}
}

// next receives the helper's next task, polling for SpinWait first.
func (h *Helper) next() Task {
	var start time.Time
	for i := 0; ; i++ {
		select {
		case t := <-h.ch:
			return t
		default:
		}
		if i&63 == 63 {
			if start.IsZero() {
				start = time.Now()
			} else if time.Since(start) > SpinWait {
				return <-h.ch
			}
		}
	}
}

// Group waits for the tasks of one parallel pass: Add before handing them
// out, Done from each, Wait polls for SpinWait before it parks.
type Group struct {
	wg      sync.WaitGroup
	pending atomic.Int32
}

// Add adds n tasks to wait for.
func (g *Group) Add(n int) {
	g.pending.Add(int32(n))
	g.wg.Add(n)
}

// Done marks one task finished.
func (g *Group) Done() {
	g.pending.Add(-1)
	g.wg.Done()
}

// Wait returns when every added task is done.
func (g *Group) Wait() {
	var start time.Time
	for i := 0; g.pending.Load() > 0; i++ {
		if i&63 == 63 {
			if start.IsZero() {
				start = time.Now()
			} else if time.Since(start) > SpinWait {
				break
			}
		}
	}
	g.wg.Wait()
}
