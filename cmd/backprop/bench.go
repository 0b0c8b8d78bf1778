package main

import (
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/backprop-dev/backprop/benchmark"
)

// benchReport is the JSON output of `backprop bench --json`, read by
// bench/race.py.
type benchReport struct {
	Engine     string             `json:"engine"`
	GoVersion  string             `json:"go_version"`
	GOMAXPROCS int                `json:"gomaxprocs"`
	CPU        string             `json:"cpu"`
	PeakMemory string             `json:"peak_memory"`
	Results    []benchmark.Result `json:"results"`
}

// benchCmd is `backprop bench`: times the named workloads of package
// benchmark (training steps, sgemm, the DCGAN's convolution layers).
func benchCmd() *cobra.Command {
	var (
		asJSON        bool
		count, warmup int
	)
	cmd := &cobra.Command{
		Use:   "bench [workload...]",
		Short: "Time training steps, sgemm and the DCGAN's convolution layers",
		Long: `Time named workloads (all of them without arguments) and print, for each, the median
wall time of --count runs (after --warmup untimed ones), the GFLOPS that median gives for the
stated FLOP count, the peak memory (the process's resident-set high-water mark, VmHWM, reset
before each workload) and, for training steps, the heap allocations per step.

Workloads: ` + strings.Join(benchmark.Names(), ", ") + `.

bench/run.sh races the same workloads against PyTorch (bench/torch_workloads.py).`,
		Example: `  backprop bench gan-step ae-step --count 20
  backprop bench --json > go.json`,
		RunE: func(cmd *cobra.Command, args []string) error {
			tuneGC() // as `train` runs
			if count < 1 {
				return usageError{fmt.Errorf("--count must be at least 1, got %d", count)}
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
			var tw *tabwriter.Writer
			if !asJSON {
				fmt.Fprintf(out, "%s, GOMAXPROCS=%d, %s; median of %d runs; peak memory = process RSS high-water mark\n",
					rep.GoVersion, rep.GOMAXPROCS, rep.CPU, count)
				tw = tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
				fmt.Fprintln(tw, "workload\tmedian ms\tmin ms\tGFLOPS\tGFLOP/run\tpeak RSS MiB\tallocs/op\tMB alloc/op\t")
			}
			for _, w := range ws {
				r, err := benchmark.Measure(w, count, warmup)
				if err != nil {
					return err
				}
				rep.Results = append(rep.Results, r)
				if tw != nil {
					allocs, mb := "", ""
					if r.Step {
						allocs, mb = fmt.Sprintf("%.0f", r.AllocsPerOp), fmt.Sprintf("%.1f", r.BytesPerOp/1e6)
					}
					fmt.Fprintf(tw, "%s\t%.3f\t%.3f\t%.1f\t%.4f\t%.1f\t%s\t%s\t\n", r.Name, r.MedianNs/1e6, r.MinNs/1e6,
						r.GFLOPS, r.FLOPs/1e9, float64(r.PeakRSS)/(1<<20), allocs, mb)
				}
			}
			if asJSON {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				return enc.Encode(rep)
			}
			return tw.Flush()
		},
	}
	f := cmd.Flags()
	f.BoolVar(&asJSON, "json", false, "print the results as JSON (for bench/race.py)")
	f.IntVar(&count, "count", 20, "timed runs per workload")
	f.IntVar(&warmup, "warmup", 3, "untimed runs per workload before timing")
	cmd.ValidArgs = benchmark.Names()
	return cmd
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
