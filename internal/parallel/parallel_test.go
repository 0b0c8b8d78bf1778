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

// counter is a Ranger counting the visits of each index.
type counter struct{ seen []int32 }

func (c *counter) Range(lo, hi int) {
	for i := lo; i < hi; i++ {
		atomic.AddInt32(&c.seen[i], 1)
	}
}

// TestForRangerCoversOnceWithoutAllocating checks ForRanger's split and
// that a parallel pass over a Ranger allocates nothing once warm.
func TestForRangerCoversOnceWithoutAllocating(t *testing.T) {
	const n = 1000
	c := &counter{seen: make([]int32, n)}
	ForRanger(n, MinWork*8, c)
	for i, v := range c.seen {
		if v != 1 {
			t.Fatalf("index %d visited %d times", i, v)
		}
	}
	if raceEnabled {
		return
	}
	if a := testing.AllocsPerRun(100, func() { ForRanger(n, MinWork*8, c) }); a != 0 {
		t.Errorf("ForRanger allocates %v objects per pass, want 0", a)
	}
}
