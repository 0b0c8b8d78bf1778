package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/backprop-dev/backprop/benchmark"
)

// benchReport is the JSON output of `backprop bench --json`, read by
// bench/race.py.
type benchReport struct {
	Engine     string `json:"engine"`
	GoVersion  string `json:"go_version"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	CPU        string `json:"cpu"`
	PeakMemory string `json:"peak_memory"`
	// Peak is the float32 FMA peak measured before the workloads (absent
	// with --peak 0); each result's peak_share is its GFLOPS over
	// cores × per_core_gflops.
	Peak       *benchmark.Peak       `json:"fma_peak,omitempty"`
	Results    []benchResult         `json:"results"`
	Breakdowns []benchmark.Breakdown `json:"breakdowns,omitempty"`
}

// benchResult is a workload's result with its share of the FMA peak.
type benchResult struct {
	benchmark.Result
	PeakShare float64 `json:"peak_share,omitempty"`
}

// benchCmd is `backprop bench`: times the named workloads of package
// benchmark (training steps, sgemm, the DCGAN's convolution layers).
func benchCmd() *cobra.Command {
	var (
		asJSON        bool
		count, warmup int
		peakBudget    time.Duration
	)
	cmd := &cobra.Command{
		Use:   "bench [workload...]",
		Short: "Time training steps, sgemm and the DCGAN's convolution layers",
		Long: `Time named workloads (all of them without arguments) and print, for each, the median
wall time of --count runs (after --warmup untimed ones), the GFLOPS that median gives for the
stated FLOP count and its share of the machine's float32 FMA peak, the peak memory (the
process's resident-set high-water mark, VmHWM, reset before each workload) and, for training
steps, the heap allocations per step.

The FMA peak is measured first (--peak of time): a loop of independent fused multiply-adds on
registers (16 × 512-bit per iteration with AVX-512, 14 × 256-bit with AVX2, scalar Go without
either), alone on one core and on all GOMAXPROCS threads at once, best of 10; shares are of the
machine's peak, GOMAXPROCS × the one-core figure (the all-threads figure is printed too: it falls
below that when other processes share the cores). When a step and the layer workloads it is made of are both measured (as
without arguments), the step's time is split per layer, forward and backward: each layer pass
timed alone, its count per step, GFLOPS and share of the peak, and the rest (element-wise work,
Linear products, optimizer, per-op overhead).

Workloads: ` + strings.Join(benchmark.Names(), ", ") + `.

bench/run.sh races the same workloads against PyTorch (bench/torch_workloads.py).`,
		Example: `  backprop bench gan-step ae-step --count 20
  backprop bench --json > go.json`,
		RunE: func(cmd *cobra.Command, args []string) error {
			tuneGC() // as `train` runs
			if count < 1 {
				return usageError{fmt.Errorf("--count must be at least 1, got %d", count)}
			}
			if peakBudget < 0 {
				return usageError{fmt.Errorf("--peak must not be negative, got %s", peakBudget)}
			}
			if warmup < 0 {
				return usageError{fmt.Errorf("--warmup must not be negative, got %d", warmup)}
			}
			ws, err := benchmark.Select(args)
			if err != nil {
				return usageError{err}
			}
			rep := benchReport{Engine: "backprop", GoVersion: runtime.Version(), GOMAXPROCS: runtime.GOMAXPROCS(0),
				CPU: cpuModel(), PeakMemory: "process RSS high-water mark (VmHWM), reset via /proc/self/clear_refs before each workload"}
			out := cmd.OutOrStdout()
			var peak benchmark.Peak
			if peakBudget > 0 {
				peak = benchmark.MeasurePeak(peakBudget)
				rep.Peak = &peak
			}
			var tw *tabwriter.Writer
			if !asJSON {
				fmt.Fprintf(out, "%s, GOMAXPROCS=%d, %s; median of %d runs; peak memory = process RSS high-water mark\n",
					rep.GoVersion, rep.GOMAXPROCS, rep.CPU, count)
				if rep.Peak != nil {
					fmt.Fprintf(out, "float32 FMA peak (%s FMA loop on registers, best of 10): %.1f GFLOPS on one core, %d cores: %.1f (%.1f measured on %d threads at once); %% peak is of %.1f\n",
						peak.Kernel, peak.PerCoreGFLOPS, peak.Cores, peak.Total(), peak.GFLOPS, peak.Cores, peak.Total())
				}
				tw = tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
				fmt.Fprintln(tw, "workload\tmedian ms\tmin ms\tGFLOPS\t% peak\tGFLOP/run\tpeak RSS MiB\tallocs/op\tMB alloc/op\t")
			}
			var results []benchmark.Result
			for _, w := range ws {
				r, err := benchmark.Measure(w, count, warmup)
				if err != nil {
					return err
				}
				results = append(results, r)
				rep.Results = append(rep.Results, benchResult{Result: r, PeakShare: benchmark.Share(r.GFLOPS, peak)})
				if tw != nil {
					allocs, mb := "", ""
					if r.Step {
						allocs, mb = fmt.Sprintf("%.0f", r.AllocsPerOp), fmt.Sprintf("%.1f", r.BytesPerOp/1e6)
					}
					fmt.Fprintf(tw, "%s\t%.3f\t%.3f\t%.1f\t%s\t%.4f\t%.1f\t%s\t%s\t\n", r.Name, r.MedianNs/1e6, r.MinNs/1e6,
						r.GFLOPS, percent(benchmark.Share(r.GFLOPS, peak)), r.FLOPs/1e9, float64(r.PeakRSS)/(1<<20), allocs, mb)
				}
			}
			var missing []string
			for _, r := range results {
				if !r.Step || benchmark.StepParts(r.Name) == nil {
					continue
				}
				if b, ok := benchmark.BreakdownOf(r, results, peak); ok {
					rep.Breakdowns = append(rep.Breakdowns, b)
				} else {
					missing = append(missing, r.Name)
				}
			}
			if asJSON {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				return enc.Encode(rep)
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			for _, b := range rep.Breakdowns {
				printBreakdown(out, b, results, peak)
			}
			for _, name := range missing {
				var ws []string
				for _, p := range benchmark.StepParts(name) {
					ws = append(ws, p.Workload)
				}
				fmt.Fprintf(out, "\n%s per layer: measure its layers too (backprop bench %s %s)\n", name, name, strings.Join(ws, " "))
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.BoolVar(&asJSON, "json", false, "print the results as JSON (for bench/race.py)")
	f.IntVar(&count, "count", 20, "timed runs per workload")
	f.IntVar(&warmup, "warmup", 3, "untimed runs per workload before timing")
	f.DurationVar(&peakBudget, "peak", 500*time.Millisecond, "time spent measuring the float32 FMA peak first (0: skip it and the shares)")
	cmd.ValidArgs = benchmark.Names()
	return cmd
}

// percent formats a share of the peak, or nothing without a peak.
func percent(share float64) string {
	if share == 0 {
		return ""
	}
	return fmt.Sprintf("%.1f", 100*share)
}

// printBreakdown prints a step's time per layer pass (see
// benchmark.Breakdown).
func printBreakdown(out io.Writer, b benchmark.Breakdown, results []benchmark.Result, peak benchmark.Peak) {
	var step benchmark.Result
	for _, r := range results {
		if r.Name == b.Step {
			step = r
		}
	}
	fmt.Fprintf(out, "\n%s per layer (each pass timed alone by its workload, times its count per step):\n", b.Step)
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "layer pass\tper step\tms/step\t% of step\tGFLOP/step\t% of FLOPs\tGFLOPS\t% peak\t\t")
	for _, r := range b.Rows {
		fmt.Fprintf(tw, "%s\t%g\t%.3f\t%.1f\t%.4f\t%.1f\t%.1f\t%s\t%s\t\n", r.Workload, r.PerStep, r.Ns/1e6, 100*r.StepShare,
			r.FLOPs/1e9, 100*r.FLOPsShare, r.GFLOPS, percent(r.PeakShare), r.Note)
	}
	restGFLOPS := 0.0
	if b.RestNs > 0 {
		restGFLOPS = b.RestFLOPs / b.RestNs
	}
	fmt.Fprintf(tw, "rest\t\t%.3f\t%.1f\t%.4f\t%.1f\t%.1f\t\t%s\t\n", b.RestNs/1e6, 100*b.RestNs/step.MedianNs,
		b.RestFLOPs/1e9, 100*b.RestFLOPs/step.FLOPs, restGFLOPS, "element-wise, Linear, optimizer, per-op overhead")
	fmt.Fprintf(tw, "%s\t1\t%.3f\t100.0\t%.4f\t100.0\t%.1f\t%s\t\t\n", b.Step, step.MedianNs/1e6, step.FLOPs/1e9, step.GFLOPS, percent(benchmark.Share(step.GFLOPS, peak)))
	tw.Flush()
}

// cpuModel is the first "model name" of /proc/cpuinfo, or GOARCH.
func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				return strings.TrimSpace(v)
			}
		}
	}
	return runtime.GOARCH
}
