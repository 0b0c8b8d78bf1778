// Package benchmark holds the named workloads of `backprop bench` and of the
// side-by-side race against PyTorch (bench/run.sh): whole training steps of
// the reference models (gan-step, ae-step), single-precision matrix
// products (sgemm-N) and every convolution layer of the reference DCGAN,
// forward and backward, at batch 64. bench/torch_workloads.py mirrors each
// workload with the same shapes and the same FLOP count.
//
// A workload is set up once and then run many times; Measure times each
// run separately and reports the median, the GFLOPS that median gives for
// the stated FLOP count, the allocations per run and the peak memory. Go
// benchmarks (go test -bench) reuse the same workloads.
package benchmark

import (
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Run performs one repetition of a workload.
type Run func() error

// Workload is one named thing to time.
type Workload struct {
	// Name is the name on the command line and in reports, e.g. "gan-step".
	Name string
	// Step marks a whole training step (allocs/op are reported for it).
	Step bool
	// FLOPs is the floating-point operation count of one run, and FLOPNote
	// says what was counted.
	FLOPs    float64
	FLOPNote string
	// Setup builds the workload's state (models, tensors) and returns the
	// function that runs it once.
	Setup func() (Run, error)
}

// Result is the measurement of one workload.
type Result struct {
	Name      string    `json:"name"`
	Runs      int       `json:"runs"`      // timed repetitions
	MedianNs  float64   `json:"median_ns"` // median wall time of one run
	MinNs     float64   `json:"min_ns"`    // fastest run
	SamplesNs []float64 `json:"samples_ns"`
	FLOPs     float64   `json:"flops"`     // per run, see FLOPNote
	FLOPNote  string    `json:"flop_note"` // what FLOPs counts
	GFLOPS    float64   `json:"gflops"`    // FLOPs / median
	// AllocsPerOp and BytesPerOp are heap allocations per run, from
	// runtime.MemStats over the timed runs.
	AllocsPerOp float64 `json:"allocs_per_op"`
	BytesPerOp  float64 `json:"bytes_per_op"`
	// PeakRSS is the process's resident-set high-water mark (VmHWM of
	// /proc/self/status) over setup and runs, reset with
	// /proc/self/clear_refs before the workload starts; 0 where Linux's
	// /proc is not available.
	PeakRSS int64 `json:"peak_rss_bytes"`
	Step    bool  `json:"step"`
}

// All returns every workload in report order.
func All() []Workload {
	ws := []Workload{ganStep(), aeStep()}
	for _, n := range []int{128, 256, 512, 1024} {
		ws = append(ws, sgemm(n))
	}
	for _, g := range DCGANGemms() {
		ws = append(ws, convGemm(g))
	}
	for _, l := range DCGANLayers() {
		ws = append(ws, convWorkload(l, false), convWorkload(l, true))
	}
	return ws
}

// Names returns the names of All, in order.
func Names() []string {
	var ns []string
	for _, w := range All() {
		ns = append(ns, w.Name)
	}
	return ns
}

// Select returns the workloads named, in the order given; no names means
// all of them.
func Select(names []string) ([]Workload, error) {
	all := All()
	if len(names) == 0 {
		return all, nil
	}
	var out []Workload
	for _, n := range names {
		i := slices.IndexFunc(all, func(w Workload) bool { return w.Name == n })
		if i < 0 {
			return nil, fmt.Errorf("benchmark: unknown workload %q; known: %s", n, strings.Join(Names(), ", "))
		}
		out = append(out, all[i])
	}
	return out, nil
}

// Measure sets w up, runs it warmup times untimed and count times timed,
// and reports the median. It collects garbage and returns freed memory to
// the OS before it starts, so that the peak RSS belongs to this workload.
func Measure(w Workload, count, warmup int) (Result, error) {
	if count < 1 {
		return Result{}, fmt.Errorf("benchmark: count %d, want at least 1", count)
	}
	debug.FreeOSMemory()
	resetPeakRSS()
	run, err := w.Setup()
	if err != nil {
		return Result{}, fmt.Errorf("%s: %w", w.Name, err)
	}
	for range warmup {
		if err := run(); err != nil {
			return Result{}, fmt.Errorf("%s: %w", w.Name, err)
		}
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	samples := make([]float64, count)
	for i := range samples {
		t0 := time.Now()
		if err := run(); err != nil {
			return Result{}, fmt.Errorf("%s: %w", w.Name, err)
		}
		samples[i] = float64(time.Since(t0).Nanoseconds())
	}
	runtime.ReadMemStats(&after)
	sorted := slices.Clone(samples)
	slices.Sort(sorted)
	r := Result{
		Name: w.Name, Runs: count, MedianNs: median(sorted), MinNs: sorted[0], SamplesNs: samples,
		FLOPs: w.FLOPs, FLOPNote: w.FLOPNote, Step: w.Step,
		AllocsPerOp: float64(after.Mallocs-before.Mallocs) / float64(count),
		BytesPerOp:  float64(after.TotalAlloc-before.TotalAlloc) / float64(count),
		PeakRSS:     peakRSS(),
	}
	if r.MedianNs > 0 {
		r.GFLOPS = w.FLOPs / r.MedianNs
	}
	return r, nil
}

// median of sorted values.
func median(s []float64) float64 {
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// resetPeakRSS resets the kernel's RSS high-water mark to the current RSS
// (writing 5 to /proc/self/clear_refs, Linux ≥ 4.0); errors are ignored.
func resetPeakRSS() {
	_ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
}

// peakRSS returns VmHWM of /proc/self/status in bytes, or 0.
func peakRSS() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			f := strings.Fields(rest)
			if len(f) >= 1 {
				kb, err := strconv.ParseInt(f[0], 10, 64)
				if err == nil {
					return kb * 1024
				}
			}
		}
	}
	return 0
}

// newRand is the fixed random source of the workloads' data.
func newRand() *rand.Rand { return rand.New(rand.NewPCG(1, 2)) }

// fill sets d to uniform values in [lo, hi).
func fill(rng *rand.Rand, d []float32, lo, hi float32) {
	for i := range d {
		d[i] = lo + (hi-lo)*rng.Float32()
	}
}
