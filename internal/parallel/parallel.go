// Package parallel splits the element-wise passes of a training step
// (activations, batch normalisation, bias, folding) across the machine's
// cores. The matrix products parallelise inside package blas; without this
// the passes between them would run on one core while the others idle.
package parallel

import (
	"runtime"
	"sync"
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
func For(n, work int, f func(lo, hi int)) {
	if n <= 0 {
		return
	}
	workers := min(n, runtime.GOMAXPROCS(0), max(1, work/MinWork))
	if workers <= 1 {
		f(0, n)
		return
	}
	var wg sync.WaitGroup
	for w := 1; w < workers; w++ {
		wg.Go(func() { f(w*n/workers, (w+1)*n/workers) })
	}
	f(0, n/workers)
	wg.Wait()
}

// Chunks is For over a flat range of n elements, the split rounded to
// multiples of 16 elements (one 64-byte cache line of float32) so that no
// two workers write the same cache line.
func Chunks(n int, f func(lo, hi int)) {
	const line = 16
	lines := (n + line - 1) / line
	For(lines, n, func(lo, hi int) { f(lo*line, min(hi*line, n)) })
}
