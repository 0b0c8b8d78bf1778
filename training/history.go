package training

import (
	"github.com/backprop-dev/backprop/viz"
)

// HistoryFile is the CSV record of a run written into its output directory
// after every epoch, beside LossPlotFile.
const HistoryFile = "history.csv"

// LossPlotFile is the loss curve written into a run's output directory
// after every epoch.
const LossPlotFile = "loss.png"

// History is the record of a run that history.csv and loss.png show: named
// series with one value per step, and named series with one value per
// completed epoch (a test error measured after it).
type History struct {
	StepsPerEpoch int
	Steps         []Series // one value per step, in step order
	Epochs        []Series // one value per completed epoch
}

// Series is one named record of a History: its CSV column name, its plot
// legend and its values.
type Series struct {
	Column string // CSV column: "train_loss"
	Legend string // plot legend: "training loss (per step)"; "" keeps it out of the plot
	Values []float64
}

// xs numbers the steps 1…n and places epoch values at the step that ends
// their epoch.
func (h History) xs(s Series, perEpoch bool) []float64 {
	x := make([]float64, len(s.Values))
	for i := range x {
		x[i] = float64(i + 1)
		if perEpoch {
			x[i] *= float64(h.StepsPerEpoch)
		}
	}
	return x
}

// WriteCSV writes the history to path, atomically, as a table with a row
// per step: step (1-based), epoch, each per-step series, then each
// per-epoch series in the row of the step that ended its epoch (empty
// elsewhere). Values are written in the shortest form that reads back to
// the same float64.
func (h History) WriteCSV(path string) error {
	n := 0
	if len(h.Steps) > 0 {
		n = len(h.Steps[0].Values)
	}
	steps, epochs := make([]float64, n), make([]float64, n)
	for i := range steps {
		steps[i], epochs[i] = float64(i+1), float64(i/h.StepsPerEpoch+1)
	}
	cols := []viz.Series{{Name: "epoch", X: steps, Y: epochs}}
	for _, s := range h.Steps {
		cols = append(cols, viz.Series{Name: s.Column, X: h.xs(s, false), Y: s.Values})
	}
	for _, s := range h.Epochs {
		cols = append(cols, viz.Series{Name: s.Column, X: h.xs(s, true), Y: s.Values})
	}
	return viz.SaveCSV(path, "step", cols)
}

// Plot draws the series that have a legend against the step, atomically
// into path as a PNG. Nothing is written before the first step.
func (h History) Plot(path, title string, opt viz.CurveOptions) error {
	var lines []viz.Series
	for i, group := range [][]Series{h.Steps, h.Epochs} {
		for _, s := range group {
			if s.Legend != "" && len(s.Values) > 0 {
				lines = append(lines, viz.Series{Name: s.Legend, X: h.xs(s, i == 1), Y: s.Values})
			}
		}
	}
	if len(lines) == 0 {
		return nil
	}
	return viz.LossCurveWith(path, title, lines, opt)
}
