package tensor

import "testing"

// TestEmptyReusesWithoutClearing: Empty hands out released storage as it
// is (that is its point), New clears it, and both panic on a negative
// dimension.
func TestEmptyReusesWithoutClearing(t *testing.T) {
	const n = minPooled * 3
	a := New[float32](n)
	a.Data()[5] = 42
	Release(a)
	b := Empty[float32](3, minPooled)
	if b.Len() != n || b.Dim(0) != 3 {
		t.Fatalf("Empty(3, %d) has shape %v", minPooled, b.Shape())
	}
	if b.Data()[5] != 42 {
		t.Fatalf("Empty did not reuse the released buffer as it was (got %v at 5)", b.Data()[5])
	}
	Release(b)
	if c := New[float32](n); c.Data()[5] != 0 {
		t.Fatalf("New returned uncleared storage: %v at 5", c.Data()[5])
	}
	for _, f := range []func(){func() { Empty[float64](2, -1) }, func() { New[float64](-3) }} {
		func() {
			defer func() {
				if recover() == nil {
					t.Error("negative dimension did not panic")
				}
			}()
			f()
		}()
	}
}
