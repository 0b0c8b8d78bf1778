package parallel

import (
	"sync/atomic"
	"testing"
)

// TestForCoversOnce checks that every index is visited exactly once, for
// small (serial) and large (split) passes.
func TestForCoversOnce(t *testing.T) {
	for _, n := range []int{0, 1, 2, 3, 17, 1000} {
		for _, work := range []int{1, MinWork * 8} {
			seen := make([]int32, n)
			For(n, work, func(lo, hi int) {
				if lo >= hi {
					t.Errorf("n=%d: empty range [%d,%d)", n, lo, hi)
				}
				for i := lo; i < hi; i++ {
					atomic.AddInt32(&seen[i], 1)
				}
			})
			for i, c := range seen {
				if c != 1 {
					t.Fatalf("n=%d work=%d: index %d visited %d times", n, work, i, c)
				}
			}
		}
	}
}

// TestChunksCoversOnce checks Chunks' cache-line rounding.
func TestChunksCoversOnce(t *testing.T) {
	for _, n := range []int{0, 1, 15, 16, 17, 100003, 1 << 20} {
		seen := make([]int32, n)
		Chunks(n, func(lo, hi int) {
			if lo%16 != 0 {
				t.Errorf("n=%d: range starts at %d, not a multiple of 16", n, lo)
			}
			for i := lo; i < hi; i++ {
				atomic.AddInt32(&seen[i], 1)
			}
		})
		for i, c := range seen {
			if c != 1 {
				t.Fatalf("n=%d: index %d visited %d times", n, i, c)
			}
		}
	}
}
