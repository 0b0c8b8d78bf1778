package blas

import (
	"testing"
	"time"
)

// TestFMALoopsMatchGo compares every assembly FMA loop with its portable
// twin bit for bit, on operands whose sums are exact in float32.
func TestFMALoopsMatchGo(t *testing.T) {
	for _, k := range peakKernels() {
		for _, n := range []int{0, 1, 7, 1000} {
			got := make([]float32, k.lanes)
			want := make([]float32, k.lanes)
			for i := range got {
				got[i] = float32(i) - 50
				want[i] = got[i]
			}
			k.run(n, got, 1, 3)
			fmaLoopGo(n, want, 1, 3)
			for i := range got {
				if got[i] != want[i] {
					t.Fatalf("%s, n=%d: acc[%d] = %v, portable loop %v", k.name, n, i, got[i], want[i])
				}
			}
			if n == 1000 && got[0] != -50+3000 {
				t.Fatalf("%s: acc[0] = %v after 1000 iterations of +3, want 2950", k.name, got[0])
			}
		}
	}
}

// TestMeasurePeak checks that the measurement reports plausible figures for
// every loop (the values themselves depend on the machine and its load).
func TestMeasurePeak(t *testing.T) {
	for _, k := range peakKernels() {
		p := measurePeak(k, 20*time.Millisecond)
		t.Logf("%s: %.1f GFLOPS per core, %.1f on %d cores", k.name, p.PerCoreGFLOPS, p.GFLOPS, p.Cores)
		if p.Kernel != k.name || p.Cores < 1 || p.PerCoreGFLOPS <= 0 || p.GFLOPS <= 0 || p.Total() != p.PerCoreGFLOPS*float64(p.Cores) {
			t.Errorf("%s: implausible peak %+v", k.name, p)
		}
	}
	if p := MeasurePeak(10 * time.Millisecond); p.Kernel != pickPeakKernel().name {
		t.Errorf("MeasurePeak used %q, want %q", p.Kernel, pickPeakKernel().name)
	}
}
