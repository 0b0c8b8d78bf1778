package viz

import (
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"io"
	"math"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	vgdraw "gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"

	"github.com/backprop-dev/backprop/internal/atomicfile"
)

// Series is one named curve of a plot, such as the training loss per step.
// X may be nil, in which case the points are numbered 0, 1, 2, …
type Series struct {
	Name string
	X, Y []float64
}

// CurveOptions tunes LossCurveWith. Zero fields take the defaults noted.
type CurveOptions struct {
	Width, Height int    // picture size in pixels; default 800×500
	XLabel        string // default "step"
	YLabel        string // default "loss"
	LogY          bool   // logarithmic y axis (all y must then be > 0)
}

// Default loss-curve size in pixels.
const (
	DefaultCurveWidth  = 800
	DefaultCurveHeight = 500
)

// curveDPI is the resolution at which plot lengths become pixels.
const curveDPI = 96

// LossCurve plots series as lines with a legend and writes the picture as a
// PNG of DefaultCurveWidth×DefaultCurveHeight pixels to path, atomically.
func LossCurve(path, title string, series []Series) error {
	return LossCurveWith(path, title, series, CurveOptions{})
}

// LossCurveWith is LossCurve with explicit size, axis labels and scale.
// Every point must be finite (and positive on a log axis); an error names
// the offending series and point rather than drawing a misleading plot.
func LossCurveWith(path, title string, series []Series, opt CurveOptions) error {
	img, err := RenderCurve(title, series, opt)
	if err != nil {
		return fmt.Errorf("viz: LossCurve %s: %w", path, err)
	}
	return atomicfile.WriteFile(path, func(w io.Writer) error { return png.Encode(w, img) })
}

// RenderCurve draws the plot LossCurveWith saves and returns it as an image,
// for callers that embed it elsewhere.
func RenderCurve(title string, series []Series, opt CurveOptions) (image.Image, error) {
	if opt.Width == 0 {
		opt.Width = DefaultCurveWidth
	}
	if opt.Height == 0 {
		opt.Height = DefaultCurveHeight
	}
	if opt.Width < 50 || opt.Height < 50 || opt.Width > 10000 || opt.Height > 10000 {
		return nil, fmt.Errorf("picture size %d×%d pixels, want each side in [50, 10000]", opt.Width, opt.Height)
	}
	if opt.XLabel == "" {
		opt.XLabel = "step"
	}
	if opt.YLabel == "" {
		opt.YLabel = "loss"
	}
	if len(series) == 0 {
		return nil, fmt.Errorf("no series to plot")
	}

	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = opt.XLabel
	p.Y.Label.Text = opt.YLabel
	p.Add(plotter.NewGrid())
	if opt.LogY {
		p.Y.Scale = plot.LogScale{}
		p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	}
	p.Legend.Top = true
	for i, s := range series {
		pts, err := seriesPoints(s, opt.LogY)
		if err != nil {
			return nil, err
		}
		line, err := plotter.NewLine(pts)
		if err != nil {
			return nil, fmt.Errorf("series %q: %w", s.Name, err)
		}
		line.Color = plotutil.Color(i)
		line.Width = 2
		line.Dashes = plotutil.Dashes(i)
		p.Add(line)
		p.Legend.Add(s.Name, line)
	}

	rgba := image.NewRGBA(image.Rect(0, 0, opt.Width, opt.Height))
	draw.Draw(rgba, rgba.Bounds(), image.NewUniform(color.White), image.Point{}, draw.Src)
	c := vgimg.NewWith(vgimg.UseImage(rgba), vgimg.UseDPI(curveDPI))
	p.Draw(vgdraw.New(c))
	return c.Image(), nil
}

// seriesPoints validates one series and converts it to plotter points.
func seriesPoints(s Series, logY bool) (plotter.XYs, error) {
	if len(s.Y) == 0 {
		return nil, fmt.Errorf("series %q has no points", s.Name)
	}
	if s.X != nil && len(s.X) != len(s.Y) {
		return nil, fmt.Errorf("series %q has %d x values and %d y values, want equal counts", s.Name, len(s.X), len(s.Y))
	}
	pts := make(plotter.XYs, len(s.Y))
	for i, y := range s.Y {
		x := float64(i)
		if s.X != nil {
			x = s.X[i]
		}
		if math.IsNaN(x) || math.IsInf(x, 0) || math.IsNaN(y) || math.IsInf(y, 0) {
			return nil, fmt.Errorf("series %q point %d is (%v, %v), want finite values", s.Name, i, x, y)
		}
		if logY && y <= 0 {
			return nil, fmt.Errorf("series %q point %d has y = %v, want > 0 on a log axis", s.Name, i, y)
		}
		pts[i].X, pts[i].Y = x, y
	}
	return pts, nil
}
