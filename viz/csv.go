package viz

import (
	"encoding/csv"
	"fmt"
	"io"
	"slices"
	"strconv"

	"github.com/backprop-dev/backprop/internal/atomicfile"
)

// SaveCSV writes the numbers behind a chart as a CSV table to path,
// atomically, for spreadsheets, pandas and scripts that compare runs: a
// header of xName and the series' names, then one row per distinct x in
// increasing order, each series' value at that x or an empty cell where it
// has none (a per-epoch test error beside a per-step loss). X nil numbers
// a series' points 0, 1, 2, … as for the plots. Values are written in the
// shortest form that reads back to the same float64.
func SaveCSV(path, xName string, series []Series) error {
	cells := map[float64][]string{}
	for i, s := range series {
		if s.X != nil && len(s.X) != len(s.Y) {
			return fmt.Errorf("viz: SaveCSV %s: series %q has %d x values and %d y values", path, s.Name, len(s.X), len(s.Y))
		}
		for j, y := range s.Y {
			x := float64(j)
			if s.X != nil {
				x = s.X[j]
			}
			row, ok := cells[x]
			if !ok {
				row = make([]string, len(series))
				cells[x] = row
			}
			row[i] = strconv.FormatFloat(y, 'g', -1, 64)
		}
	}
	xs := make([]float64, 0, len(cells))
	for x := range cells {
		xs = append(xs, x)
	}
	slices.Sort(xs)
	return atomicfile.WriteFile(path, func(w io.Writer) error {
		cw := csv.NewWriter(w)
		header := []string{xName}
		for _, s := range series {
			header = append(header, s.Name)
		}
		if err := cw.Write(header); err != nil {
			return err
		}
		for _, x := range xs {
			if err := cw.Write(append([]string{strconv.FormatFloat(x, 'g', -1, 64)}, cells[x]...)); err != nil {
				return err
			}
		}
		cw.Flush()
		return cw.Error()
	})
}
