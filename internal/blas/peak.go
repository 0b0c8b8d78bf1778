package blas

import (
	"runtime"
	"sync"
	"time"
)

// Peak is the float32 fused-multiply-add throughput this machine reaches in
// a loop of independent FMAs on registers (no memory traffic): the ceiling
// no product can beat, against which package benchmark reports each
// workload's share.
type Peak struct {
	// Kernel names the loop: "avx512" (16 independent 512-bit FMAs per
	// iteration), "avx2" (14 independent 256-bit FMAs) or "go" (the
	// portable scalar loop, where there is no assembly).
	Kernel string `json:"kernel"`
	// Cores is the number of loops run at once for GFLOPS (GOMAXPROCS).
	Cores int `json:"cores"`
	// PerCoreGFLOPS is the best rate of one loop running alone.
	PerCoreGFLOPS float64 `json:"per_core_gflops"`
	// GFLOPS is the best combined rate of Cores loops running at once,
	// one per OS thread. On a machine other processes share it falls
	// below Total; on an idle one it is about equal.
	GFLOPS float64 `json:"gflops"`
}

// Total is the machine's peak, Cores × PerCoreGFLOPS: what the cores
// reach together when nothing else runs. Shares of the peak are of Total,
// which load from other processes lowers far less than GFLOPS (one loop
// alone gets a core to itself in the best of 10 repetitions much more
// often than all of them at once).
func (p Peak) Total() float64 { return p.PerCoreGFLOPS * float64(p.Cores) }

// peakKernel is one FMA-throughput loop: run performs n iterations, each
// adding mul·add to every element of acc (lanes elements) with one fused
// multiply-add per element, so one iteration is 2·lanes FLOPs.
type peakKernel struct {
	name  string
	lanes int
	run   func(n int, acc []float32, mul, add float32)
}

// fmaLoopGo is the portable twin of the assembly FMA loops: n iterations
// of acc[i] += mul·add. For operands whose products and sums are exact in
// float32 (the tests use mul = 1 and small integers) it gives the assembly
// loops' results bit for bit.
func fmaLoopGo(n int, acc []float32, mul, add float32) {
	for range n {
		for i := range acc {
			acc[i] += mul * add
		}
	}
}

// peakGo is the portable loop over as many floats as the AVX-512 loop.
var peakGo = &peakKernel{name: "go", lanes: 256, run: fmaLoopGo}

// MeasurePeak measures the float32 FMA peak with the fastest loop this CPU
// runs (see Peak), spending about budget in total: first one loop alone
// (the per-core rate), then one loop per GOMAXPROCS thread at once. Each is
// the best of 10 repetitions, so that load from other processes
// lowers the figure as little as possible.
func MeasurePeak(budget time.Duration) Peak {
	return measurePeak(pickPeakKernel(), budget)
}

func measurePeak(k *peakKernel, budget time.Duration) Peak {
	const reps = 10
	cores := runtime.GOMAXPROCS(0)
	flopsPerIter := 2 * float64(k.lanes)
	// Calibrate n so that one repetition takes about budget/(4·reps).
	acc := make([]float32, k.lanes)
	n := 1 << 10
	for {
		t0 := time.Now()
		k.run(n, acc, 1, 0)
		if d := time.Since(t0); d >= budget/(40*reps) || n >= 1<<30 {
			n = max(1, int(float64(n)*float64(budget/(4*reps))/float64(max(d, time.Microsecond))))
			break
		}
		n *= 4
	}
	p := Peak{Kernel: k.name, Cores: cores}
	runtime.LockOSThread()
	for range reps {
		t0 := time.Now()
		k.run(n, acc, 1, 0)
		if g := flopsPerIter * float64(n) / float64(time.Since(t0).Nanoseconds()); g > p.PerCoreGFLOPS {
			p.PerCoreGFLOPS = g
		}
	}
	runtime.UnlockOSThread()
	for range reps {
		var start, done sync.WaitGroup
		start.Add(1)
		ns := make([]int64, cores)
		for c := range cores {
			done.Add(1)
			go func() {
				defer done.Done()
				runtime.LockOSThread()
				defer runtime.UnlockOSThread()
				a := make([]float32, k.lanes)
				start.Wait()
				t0 := time.Now()
				k.run(n, a, 1, 0)
				ns[c] = time.Since(t0).Nanoseconds()
			}()
		}
		start.Done()
		done.Wait()
		var g float64
		for _, d := range ns {
			g += flopsPerIter * float64(n) / float64(d)
		}
		p.GFLOPS = max(p.GFLOPS, g)
	}
	return p
}
