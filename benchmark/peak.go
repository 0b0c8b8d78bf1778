package benchmark

import (
	"time"

	"github.com/backprop-dev/backprop/internal/blas"
)

// Peak is the machine's float32 FMA peak as blas.MeasurePeak measures it:
// a register-only loop of independent fused multiply-adds (512-bit on
// AVX-512, 256-bit on AVX2), alone on one core and on every GOMAXPROCS
// thread at once.
type Peak = blas.Peak

// MeasurePeak measures the float32 FMA peak in about budget of time.
func MeasurePeak(budget time.Duration) Peak { return blas.MeasurePeak(budget) }

// Share is the fraction of the machine's peak p.Total() (cores × the
// per-core peak) that gflops reaches, 0 when p is unknown: every workload
// runs on all GOMAXPROCS threads.
func Share(gflops float64, p Peak) float64 {
	if p.Total() <= 0 {
		return 0
	}
	return gflops / p.Total()
}

// StepPart is one layer pass inside a training step: the layer workload
// that times it alone and how many times a step runs it, counted in the
// workload's FLOPs (a pass that computes only one of the two gradients
// counts one half of the -bwd workload).
type StepPart struct {
	Workload string  // e.g. "conv2-bwd"
	PerStep  float64 // FLOP-equivalent runs of Workload per step
	Note     string  // which passes of the step these are
}

// StepParts returns the layer passes of a step workload that have
// workloads of their own, for the per-layer breakdown; nil for the others.
// For gan-step they are the DCGAN's convolutions, as GANStepFLOPs counts
// them: conv1 and conv2 forward in each of D's three forward passes, their
// backward in each of D's three backward passes (conv1's input gradient
// only in the pass that trains G, so 3 weight gradients and 1 input
// gradient, two -bwd workloads' worth), the generator's transposed
// convolutions once forward and once backward. The Linear products (2·64·
// 100·6272 FLOPs forward in G, 2·64·6272 in D) are left in the rest.
func StepParts(step string) []StepPart {
	if step != "gan-step" {
		return nil
	}
	return []StepPart{
		{"conv1-fwd", 3, "D forward ×3"},
		{"conv2-fwd", 3, "D forward ×3"},
		{"deconv1-fwd", 1, "G forward"},
		{"deconv2-fwd", 1, "G forward"},
		{"conv1-bwd", 2, "D backward: dW ×3, dX ×1"},
		{"conv2-bwd", 3, "D backward ×3"},
		{"deconv1-bwd", 1, "G backward"},
		{"deconv2-bwd", 1, "G backward"},
	}
}

// BreakdownRow is one layer pass of a step, timed by its own workload.
type BreakdownRow struct {
	Workload   string  `json:"workload"`
	PerStep    float64 `json:"per_step"`
	Note       string  `json:"note"`
	FLOPs      float64 `json:"flops"`       // per step: PerStep × the workload's FLOPs
	Ns         float64 `json:"ns"`          // per step: PerStep × the workload's median
	GFLOPS     float64 `json:"gflops"`      // the workload's own rate
	PeakShare  float64 `json:"peak_share"`  // GFLOPS / the machine's peak (Share)
	StepShare  float64 `json:"step_share"`  // Ns / the step's median
	FLOPsShare float64 `json:"flops_share"` // FLOPs / the step's FLOPs
}

// Breakdown is a step's time split into its layer passes (each timed alone
// by its workload) and the rest: element-wise work (BatchNorm,
// activations, losses), the Linear products, the optimizer and the
// per-op overhead of the graph.
type Breakdown struct {
	Step   string         `json:"step"`
	Rows   []BreakdownRow `json:"rows"`
	RestNs float64        `json:"rest_ns"` // step median − Σ rows' Ns (may be negative under load)
	// RestFLOPs are the counted FLOPs outside the rows (Linear products).
	RestFLOPs float64 `json:"rest_flops"`
}

// BreakdownOf returns the breakdown of the step result step from results,
// which must hold every StepParts workload of it; ok is false otherwise.
func BreakdownOf(step Result, results []Result, p Peak) (b Breakdown, ok bool) {
	parts := StepParts(step.Name)
	if len(parts) == 0 {
		return b, false
	}
	by := make(map[string]Result, len(results))
	for _, r := range results {
		by[r.Name] = r
	}
	b = Breakdown{Step: step.Name, RestNs: step.MedianNs, RestFLOPs: step.FLOPs}
	for _, part := range parts {
		r, found := by[part.Workload]
		if !found {
			return Breakdown{}, false
		}
		row := BreakdownRow{Workload: part.Workload, PerStep: part.PerStep, Note: part.Note,
			FLOPs: part.PerStep * r.FLOPs, Ns: part.PerStep * r.MedianNs, GFLOPS: r.GFLOPS, PeakShare: Share(r.GFLOPS, p)}
		if step.MedianNs > 0 {
			row.StepShare = row.Ns / step.MedianNs
		}
		if step.FLOPs > 0 {
			row.FLOPsShare = row.FLOPs / step.FLOPs
		}
		b.Rows = append(b.Rows, row)
		b.RestNs -= row.Ns
		b.RestFLOPs -= row.FLOPs
	}
	return b, true
}
