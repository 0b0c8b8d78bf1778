package gan

import (
	"context"
	"testing"

	"github.com/backprop-dev/backprop/training"
)

// BenchmarkRunEpoch times Run over one epoch of 8 steps (batch 32) on
// synthetic images, with its files; reported as ns/step.
func BenchmarkRunEpoch(b *testing.B) {
	dataDir := writeDataDir(b, 256)
	tr := newTestTrainer(b, dataDir)
	dir := b.TempDir()
	b.ResetTimer()
	for range b.N {
		if err := tr.Run(context.Background(), tr.Epoch+1, dir, training.Hooks{}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*tr.StepsPerEpoch()), "ns/step")
}
