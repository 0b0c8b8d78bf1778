package live

import (
	"bytes"
	"fmt"
	"image/png"
	"strings"

	"github.com/backprop-dev/backprop/training"
)

// Names of the step metrics Hooks draws as a GAN discriminator's scores
// (the D(x) and D(G(z)) chart) rather than as losses; gan.Stats.Metrics
// reports them under these names.
const (
	MetricDReal = "D(x)"
	MetricDFake = "D(G(z))"
)

// Hooks returns training hooks that publish a run into s: Begin starts a
// job of the given kind with the run's epochs and steps; every step
// publishes its metrics as losses (MetricDReal and MetricDFake, when both
// are reported, as the discriminator's scores instead); every epoch its
// metrics, a line saying what it measured and its picture as PNG; End
// finishes the job with the run's error.
func (s *Store) Hooks(kind string) training.Hooks {
	return training.Hooks{
		Begin: func(p training.Plan) { s.Start(kind, p.Epochs, p.Total()) },
		Step: func(r training.StepReport) {
			u := Update{Epoch: r.Epoch, Step: r.Step}
			u.Losses, u.D = split(r.Metrics)
			s.Publish(u)
		},
		Epoch: func(r training.EpochReport) {
			u := Update{Epoch: r.Epoch, Step: r.Step, Losses: map[string]float64{},
				Message: fmt.Sprintf("epoch %d of %d done in %.1f s", r.Epoch, r.Epochs, r.Train.Seconds())}
			var parts []string
			for _, m := range r.Metrics {
				u.Losses[m.Name] = m.Value
				parts = append(parts, fmt.Sprintf("%s %.4f", m.Name, m.Value))
			}
			if len(parts) > 0 {
				u.Message += ": " + strings.Join(parts, ", ")
			}
			s.Publish(u)
			if r.Image != nil {
				var buf bytes.Buffer
				if png.Encode(&buf, r.Image) == nil {
					s.PublishGrid(buf.Bytes())
				}
			}
		},
		End: s.Finish,
	}
}

// split separates a step's losses from a GAN discriminator's scores.
func split(ms []training.Metric) (map[string]float64, *DScores) {
	losses := make(map[string]float64, len(ms))
	var d DScores
	var real, fake bool
	for _, m := range ms {
		switch m.Name {
		case MetricDReal:
			d.Real, real = m.Value, true
		case MetricDFake:
			d.Fake, fake = m.Value, true
		default:
			losses[m.Name] = m.Value
		}
	}
	if real && fake {
		return losses, &d
	}
	if real {
		losses[MetricDReal] = d.Real
	}
	if fake {
		losses[MetricDFake] = d.Fake
	}
	return losses, nil
}
