package benchmark

import (
	"math"
	"testing"
)

// TestStepPartsCountGANFLOPs checks that the layer passes of gan-step and
// the Linear products left in the rest add up to GANStepFLOPs.
func TestStepPartsCountGANFLOPs(t *testing.T) {
	flops := map[string]float64{}
	for _, w := range All() {
		flops[w.Name] = w.FLOPs
	}
	var sum float64
	for _, p := range StepParts("gan-step") {
		f, ok := flops[p.Workload]
		if !ok {
			t.Fatalf("gan-step part %q is no workload", p.Workload)
		}
		sum += p.PerStep * f
	}
	lin := 2*linearFLOPs(100, 128*7*7) + 9*linearFLOPs(128*7*7, 1)
	if got, want := sum+lin, GANStepFLOPs(); math.Abs(got-want) > 1e-9*want {
		t.Fatalf("layer passes + Linear = %g FLOPs, GANStepFLOPs = %g", got, want)
	}
	if StepParts("ae-step") != nil {
		t.Fatal("ae-step has layer parts")
	}
}

// TestBreakdownOf checks the arithmetic of a breakdown and that a missing
// layer workload yields none.
func TestBreakdownOf(t *testing.T) {
	step := Result{Name: "gan-step", MedianNs: 100e6, FLOPs: GANStepFLOPs()}
	var rs []Result
	for _, p := range StepParts("gan-step") {
		rs = append(rs, Result{Name: p.Workload, MedianNs: 1e6, FLOPs: 1e8, GFLOPS: 100})
	}
	b, ok := BreakdownOf(step, rs, Peak{PerCoreGFLOPS: 100, Cores: 2})
	if !ok {
		t.Fatal("no breakdown")
	}
	var per float64
	for _, r := range b.Rows {
		per += r.PerStep
		if r.PeakShare != 0.5 || r.StepShare != r.PerStep/100 {
			t.Fatalf("row %+v", r)
		}
	}
	if math.Abs(b.RestNs-(100e6-per*1e6)) > 1e-6 {
		t.Fatalf("rest %g ns, want %g", b.RestNs, 100e6-per*1e6)
	}
	if _, ok := BreakdownOf(step, rs[1:], Peak{}); ok {
		t.Fatal("breakdown without conv1-fwd")
	}
}
