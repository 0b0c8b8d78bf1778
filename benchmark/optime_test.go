package benchmark

import (
	"syscall"
	"testing"
	"time"
)

// cpuNow is the CPU time (user + system) this process has used so far.
func cpuNow() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkWorkloadsCPU runs every workload of All and reports, besides the
// wall time per run, the CPU milliseconds per run (all threads together),
// which shows how much of a second core a workload actually uses:
//
//	go test ./benchmark -run '^$' -bench 'WorkloadsCPU/gan-step' -count 5
func BenchmarkWorkloadsCPU(b *testing.B) {
	for _, w := range All() {
		b.Run(w.Name, func(b *testing.B) {
			run, err := w.Setup()
			if err != nil {
				b.Fatal(err)
			}
			for range 2 { // warm-up: pools, optimizer state
				if err := run(); err != nil {
					b.Fatal(err)
				}
			}
			b.ResetTimer()
			c0 := cpuNow()
			for range b.N {
				if err := run(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64((cpuNow()-c0).Microseconds())/1000/float64(b.N), "cpu-ms/op")
		})
	}
}
