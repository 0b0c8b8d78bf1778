package tensor

import "testing"

// TestEmptyReusesWithoutClearing: Empty hands out released storage as it
// is (that is its point), New clears it, and both panic on a negative
// dimension.
func TestEmptyReusesWithoutClearing(t *testing.T) {
	const m = 4096
	const n = m * 3
	a := New[float32](n)
	a.Data()[5] = 42
	Release(a)
	b := Empty[float32](3, m)
	if b.Len() != n || b.Dim(0) != 3 {
		t.Fatalf("Empty(3, %d) has shape %v", m, b.Shape())
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

// TestReleaseRecyclesHeaders checks that Release empties the tensors New
// made, that New hands their headers and storage (of any size, a scalar's
// too) out again, zeroed, and that views, FromSlice wrappers and a second
// release are left alone.
func TestReleaseRecyclesHeaders(t *testing.T) {
	a := New[float64](2, 3)
	a.Data()[4] = 7
	v, err := a.Reshape(6)
	if err != nil {
		t.Fatal(err)
	}
	w := MustFromSlice([]float64{1, 2}, 2)
	Release(v, w) // the view is emptied, its storage (a's) and w left alone
	if v.Len() != 0 || w.Len() != 2 || a.Len() != 6 || a.Data()[4] != 7 {
		t.Fatal("Release of a view or a FromSlice wrapper touched storage not its own")
	}
	if v2, _ := a.Reshape(3, 2); v2 != v || v2.Data()[4] != 7 || v2.Dim(0) != 3 {
		t.Error("Reshape did not reuse the released view's header")
	}
	data := a.Data()
	Release(a, a) // twice in a row: harmless
	if a.Len() != 0 || a.Rank() != 0 {
		t.Fatalf("released tensor has shape %v", a.Shape())
	}
	b := New[float64](3, 2)
	if b != a || &b.Data()[0] != &data[0] {
		t.Error("New did not reuse the released header and storage")
	}
	if b.Data()[4] != 0 || b.Dim(0) != 3 || b.Dim(1) != 2 {
		t.Fatalf("reused tensor %v", b)
	}
	s := New[float32]()
	Release(s)
	if n := testing.AllocsPerRun(10, func() {
		Release(New[float32](), Empty[float32](4, 5, 6, 7))
	}); n != 0 {
		t.Errorf("New and Release of released sizes allocate %v objects, want 0", n)
	}
	if r := New[float32](1, 2, 3, 4, 5); r.Rank() != 5 || r.Dim(4) != 5 || r.Len() != 120 {
		t.Fatalf("rank-5 tensor has shape %v", r.Shape())
	}
}
