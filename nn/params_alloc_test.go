package nn

import (
	"math/rand/v2"
	"testing"
)

// TestParametersNamesReused checks that repeated Parameters calls give the
// same names and variables, reusing the joined strings of the last call.
func TestParametersNamesReused(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	m := NewSequential[float32](NewLinear[float32](3, 4, true, rng), NewLinear[float32](4, 2, false, rng))
	a, b := m.Parameters(), m.Parameters()
	want := []string{"0.weight", "0.bias", "1.weight"}
	if len(a) != len(want) || len(b) != len(want) {
		t.Fatalf("parameters %v, %v", a, b)
	}
	for i := range want {
		if a[i].Name != want[i] || b[i].Name != want[i] || a[i].Var != b[i].Var {
			t.Fatalf("parameter %d: %q/%q, want %q", i, a[i].Name, b[i].Name, want[i])
		}
	}
	if !isJoined("0.weight", "0", "weight") || isJoined("0.weight", "1", "weight") || !isJoined("w", "", "w") || !isJoined("p", "p", "") {
		t.Fatal("isJoined")
	}
}
