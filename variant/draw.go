package variant

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"

	"github.com/backprop-dev/backprop/tensor"
)

// drawer draws numbers k/10^p, as text and value.
type drawer struct {
	r     *rand.Rand
	prec  int
	scale int
}

// num draws a number in [lo, hi] (in units of 10^-prec), never zero when
// nonzero is set.
func (d *drawer) num(lo, hi float64, nonzero bool) float64 {
	a, b := int(lo*float64(d.scale)), int(hi*float64(d.scale))
	for {
		k := a + d.r.IntN(b-a+1)
		if k != 0 || !nonzero {
			return float64(k) / float64(d.scale)
		}
	}
}

func (d *drawer) fill(n int, lo, hi float64, nonzero bool) []float64 {
	out := make([]float64, n)
	for i := range out {
		out[i] = d.num(lo, hi, nonzero)
	}
	return out
}

// format writes v with exactly the drawer's decimals.
func (d *drawer) format(v float64) string { return strconv.FormatFloat(v, 'f', d.prec, 64) }

// list writes a nested YAML/JSON list of data in shape.
func (d *drawer) list(data []float64, shape []int) string {
	if len(shape) == 0 {
		return d.format(data[0])
	}
	var b strings.Builder
	var rec func(off int, dims []int)
	rec = func(off int, dims []int) {
		b.WriteString("[")
		step := tensor.NumElements(dims[1:])
		for i := range dims[0] {
			if i > 0 {
				b.WriteString(", ")
			}
			if len(dims) == 1 {
				b.WriteString(d.format(data[off+i]))
			} else {
				rec(off+i*step, dims[1:])
			}
		}
		b.WriteString("]")
	}
	rec(0, shape)
	return b.String()
}

// matrixYAML writes a 2-D list one row per line, aligned under the key.
func (d *drawer) matrixYAML(key string, data []float64, rows, cols int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "  %s: [", key)
	pad := strings.Repeat(" ", len(key)+5)
	for i := range rows {
		if i > 0 {
			b.WriteString(",\n" + pad)
		}
		b.WriteString(d.list(data[i*cols:(i+1)*cols], []int{cols}))
	}
	b.WriteString("]\n")
	return b.String()
}

// kernelsYAML writes a [ch][1][k][k] deconv weight one kernel row per line.
func (d *drawer) kernelsYAML(key string, data []float64, ch, k int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "  %s: [", key)
	pad := strings.Repeat(" ", len(key)+4)
	for c := range ch {
		if c > 0 {
			b.WriteString(",\n" + pad + " ")
		}
		b.WriteString("[[")
		for i := range k {
			if i > 0 {
				b.WriteString(",\n" + pad + "    ")
			}
			b.WriteString(d.list(data[(c*k+i)*k:(c*k+i+1)*k], []int{k}))
		}
		b.WriteString("]]")
	}
	b.WriteString("]\n")
	return b.String()
}

func texTuple(d *drawer, v []float64) string {
	parts := make([]string, len(v))
	for i, x := range v {
		parts[i] = d.format(x)
	}
	return "(" + strings.Join(parts, ", ") + ")"
}

func texMatrix(d *drawer, v []float64, rows, cols int) string {
	var b strings.Builder
	b.WriteString(`\begin{bmatrix} `)
	for i := range rows {
		if i > 0 {
			b.WriteString(` \\ `)
		}
		for j := range cols {
			if j > 0 {
				b.WriteString(" & ")
			}
			b.WriteString(d.format(v[i*cols+j]))
		}
	}
	b.WriteString(` \end{bmatrix}`)
	return b.String()
}

// command is the `backprop variant` flags that make o's numbers again.
func command(o Options) string {
	args := fmt.Sprintf("--seed %d --precision %d", o.Seed, o.Precision)
	if o.VarySizes {
		args += " --vary-sizes"
	}
	if o.Signed {
		args += " --signed"
	}
	if o.AnyDraws {
		args += " --any-draws"
	}
	return args
}
