package benchmark

import (
	"testing"
)

// BenchmarkWorkloads runs every workload of All as a sub-benchmark, e.g.
//
//	go test ./benchmark -run '^$' -bench 'Workloads/gan-step' -benchmem -count 5
//
// reporting GFLOPS for the workload's stated FLOP count.
func BenchmarkWorkloads(b *testing.B) {
	for _, w := range All() {
		b.Run(w.Name, func(b *testing.B) {
			run, err := w.Setup()
			if err != nil {
				b.Fatal(err)
			}
			if err := run(); err != nil { // warm-up: pools, optimizer state
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if err := run(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(w.FLOPs*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOPS")
		})
	}
}

// TestWorkloadsRun checks that every workload sets up and runs, and that
// Measure reports sane numbers.
func TestWorkloadsRun(t *testing.T) {
	for _, w := range All() {
		if testing.Short() && w.Step {
			continue
		}
		r, err := Measure(w, 1, 1)
		if err != nil {
			t.Fatal(err)
		}
		if r.MedianNs <= 0 || r.FLOPs <= 0 || r.GFLOPS <= 0 {
			t.Errorf("%s: implausible result %+v", w.Name, r)
		}
	}
}

// TestSelect checks name lookup.
func TestSelect(t *testing.T) {
	ws, err := Select([]string{"sgemm-128", "gan-step"})
	if err != nil || len(ws) != 2 || ws[0].Name != "sgemm-128" || ws[1].Name != "gan-step" {
		t.Fatalf("Select = %v, %v", ws, err)
	}
	if _, err := Select([]string{"nope"}); err == nil {
		t.Fatal("Select accepted an unknown name")
	}
}
