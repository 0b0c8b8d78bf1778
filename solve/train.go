package solve

import (
	"fmt"
	"io"
	"math"
	"strings"

	"github.com/backprop-dev/backprop/autograd"
	"github.com/backprop-dev/backprop/expr"
	"github.com/backprop-dev/backprop/spec"
	"github.com/backprop-dev/backprop/tensor"
	"github.com/backprop-dev/backprop/trace"
)

// TrainStep is one optimizer step of a worked solution: the objective at
// the parameters before the update, every parameter after it, and the
// update worked element by element.
type TrainStep struct {
	Step      int
	Objective float64 // J before this step's update
	Params    []Named // the values after the update, in params order
	Lines     []UpdateLine
}

// UpdateLine is one element's update: the rule with the numbers
// substituted and the result, e.g. w5 ← w5 − η·∂J/∂w5 = 0.4 − 0.5·0.0822 = 0.3589.
type UpdateLine struct {
	Param string
	Index []int
	Text  []string // the lines of the rule (moment updates, then θ)
	TeX   []string
	Value float64
}

// optimizer state for one parameter element
type moments struct{ m, v []float64 }

// train runs the spec's optimizer steps from its parameter values: each
// step builds the network at the current values, takes the gradient, and
// applies torch.optim's update rule (SGD, SGD with momentum, Adam;
// maximize=True for an objective that is maximized).
func train[T tensor.Float](s *spec.Spec, m0 *spec.Model[T], digits int) ([]TrainStep, float64, error) {
	tr := s.Train
	cur := map[string]*tensor.Tensor[float64]{}
	for _, p := range m0.Params {
		cur[p.Name] = toF64(p.Value)
	}
	state := map[string]*moments{}
	var out []TrainStep
	f := func(v float64) string { return expr.FormatNumber(v, digits) }
	tex := func(v float64) string { return expr.Num(v).Render(expr.Style{LaTeX: true, Digits: digits}) }
	sign, signTeX := "−", "-"
	if m0.Maximize {
		sign, signTeX = "+", "+"
	}
	for k := 1; k <= tr.Steps; k++ {
		m := m0
		if k > 1 {
			var err error
			m, err = spec.Build[T](s.WithValues(func(name string, old *tensor.Tensor[float64]) *tensor.Tensor[float64] {
				if c, ok := cur[name]; ok {
					return c
				}
				return old
			}))
			if err != nil {
				return nil, 0, err
			}
			if err := autograd.Backward(m.Objective); err != nil {
				return nil, 0, err
			}
		}
		st := TrainStep{Step: k, Objective: float64(m.Objective.Value.Data()[0])}
		for _, p := range m.Params {
			g := make([]float64, p.Value.Len())
			if p.Grad != nil {
				for i, v := range p.Grad.Data() {
					g[i] = float64(v)
				}
			}
			old := cur[p.Name].Data()
			nv := make([]T, len(old))
			ms := state[p.Name]
			if ms == nil {
				ms = &moments{m: make([]float64, len(old)), v: make([]float64, len(old))}
				state[p.Name] = ms
			}
			for i := range old {
				th := expr.Ref{Name: p.Name}
				if p.Value.Rank() > 0 {
					th.Index = tensor.Index(p.Value.Shape(), i)
				}
				name := expr.String(th)
				nameTeX := th.Render(expr.Style{LaTeX: true})
				gname := "∂J/∂" + name
				gTeX := expr.Grad{Of: "J", Wrt: th}.Render(expr.Style{LaTeX: true})
				gi := g[i]
				if m0.Maximize {
					gi = -gi // PyTorch's maximize=True steps along −(−g)
				}
				var val T
				line := UpdateLine{Param: p.Name, Index: th.Index}
				switch tr.Optimizer {
				case "sgd":
					val = T(old[i]) - T(tr.LR)*T(gi)
					line.Text = []string{fmt.Sprintf("%s ← %s %s η·%s = %s %s %s·%s = %s", name, name, sign, gname, f(old[i]), sign, f(tr.LR), f(g[i]), f(float64(val)))}
					line.TeX = []string{fmt.Sprintf(`%s &\leftarrow %s %s \eta\,%s = %s %s %s \cdot %s = %s`, nameTeX, nameTeX, signTeX, gTeX, tex(old[i]), signTeX, tex(tr.LR), tex(g[i]), tex(float64(val)))}
				case "momentum":
					prev := ms.m[i]
					var buf T
					if k == 1 {
						buf = T(gi)
					} else {
						buf = T(tr.Momentum)*T(prev) + T(gi)
					}
					ms.m[i] = float64(buf)
					val = T(old[i]) - T(tr.LR)*buf
					vname := "v[" + name + "]"
					shownG := gi
					if k == 1 {
						line.Text = append(line.Text, fmt.Sprintf("%s ← %s = %s (the first step starts the velocity at the gradient)", vname, gname, f(shownG)))
						line.TeX = append(line.TeX, fmt.Sprintf(`v_{%s} &\leftarrow %s = %s`, nameTeX, gTeX, tex(shownG)))
					} else {
						line.Text = append(line.Text, fmt.Sprintf("%s ← μ·%s + %s = %s·%s + %s = %s", vname, vname, gname, f(tr.Momentum), f(prev), f(shownG), f(ms.m[i])))
						line.TeX = append(line.TeX, fmt.Sprintf(`v_{%s} &\leftarrow \mu\,v_{%s} + %s = %s \cdot %s + %s = %s`, nameTeX, nameTeX, gTeX, tex(tr.Momentum), tex(prev), tex(shownG), tex(ms.m[i])))
					}
					if m0.Maximize {
						line.Text[len(line.Text)-1] += " (with −∂J/∂θ: J is maximized)"
					}
					line.Text = append(line.Text, fmt.Sprintf("%s ← %s − η·%s = %s − %s·%s = %s", name, name, vname, f(old[i]), f(tr.LR), f(ms.m[i]), f(float64(val))))
					line.TeX = append(line.TeX, fmt.Sprintf(`%s &\leftarrow %s - \eta\,v_{%s} = %s - %s \cdot %s = %s`, nameTeX, nameTeX, nameTeX, tex(old[i]), tex(tr.LR), tex(ms.m[i]), tex(float64(val))))
				case "adam":
					b1, b2 := tr.Betas[0], tr.Betas[1]
					pm, pv := ms.m[i], ms.v[i]
					mm := T(b1)*T(pm) + T(1-b1)*T(gi)
					vv := T(b2)*T(pv) + T(1-b2)*T(gi)*T(gi)
					ms.m[i], ms.v[i] = float64(mm), float64(vv)
					c1 := 1 - math.Pow(b1, float64(k))
					c2 := 1 - math.Pow(b2, float64(k))
					mh := float64(mm) / c1
					vh := float64(vv) / c2
					// torch.optim.Adam: θ − lr/c1 · m / (√v/√c2 + ε)
					step := T(tr.LR/c1) * mm / (T(math.Sqrt(float64(vv)))/T(math.Sqrt(c2)) + T(tr.Eps))
					val = T(old[i]) - step
					gs := "g"
					if m0.Maximize {
						gs = "−g"
					}
					line.Text = []string{
						fmt.Sprintf("m ← β1·m + (1−β1)·%s = %s·%s + %s·%s = %s", gs, f(b1), f(pm), f(1-b1), f(gi), f(float64(mm))),
						fmt.Sprintf("v ← β2·v + (1−β2)·%s² = %s·%s + %s·%s² = %s", gs, f(b2), f(pv), f(1-b2), f(gi), f(float64(vv))),
						fmt.Sprintf("m̂ = m/(1−β1^%d) = %s, v̂ = v/(1−β2^%d) = %s", k, f(mh), k, f(vh)),
						fmt.Sprintf("%s ← %s − η·m̂/(√v̂ + ε) = %s − %s·%s/(√%s + %s) = %s", name, name, f(old[i]), f(tr.LR), f(mh), f(vh), f(tr.Eps), f(float64(val))),
					}
					line.TeX = []string{
						fmt.Sprintf(`m &\leftarrow \beta_1 m + (1-\beta_1)\,g = %s \cdot %s + %s \cdot %s = %s`, tex(b1), tex(pm), tex(1-b1), tex(gi), tex(float64(mm))),
						fmt.Sprintf(`v &\leftarrow \beta_2 v + (1-\beta_2)\,g^2 = %s \cdot %s + %s \cdot (%s)^2 = %s`, tex(b2), tex(pv), tex(1-b2), tex(gi), tex(float64(vv))),
						fmt.Sprintf(`\hat m &= m/(1-\beta_1^{%d}) = %s,\quad \hat v = v/(1-\beta_2^{%d}) = %s`, k, tex(mh), k, tex(vh)),
						fmt.Sprintf(`%s &\leftarrow %s - \eta\,\hat m/(\sqrt{\hat v}+\epsilon) = %s = %s`, nameTeX, nameTeX, tex(old[i])+" - "+tex(tr.LR)+`\cdot`+tex(mh)+`/(\sqrt{`+tex(vh)+`}+`+tex(tr.Eps)+`)`, tex(float64(val))),
					}
				}
				nv[i] = val
				line.Value = float64(val)
				st.Lines = append(st.Lines, line)
			}
			t := tensor.MustFromSlice(nv, p.Value.Shape()...)
			cur[p.Name] = toF64(t)
			st.Params = append(st.Params, Named{p.Name, matrix(t)})
		}
		out = append(out, st)
	}
	// the objective after the last update
	m, err := spec.Build[T](s.WithValues(func(name string, old *tensor.Tensor[float64]) *tensor.Tensor[float64] {
		if c, ok := cur[name]; ok {
			return c
		}
		return old
	}))
	if err != nil {
		return nil, 0, err
	}
	return out, float64(m.Objective.Value.Data()[0]), nil
}

func toF64[T tensor.Float](t *tensor.Tensor[T]) *tensor.Tensor[float64] {
	return tensor.Convert[float64](t)
}

// writeTrainText writes the optimizer steps: each step's objective, the
// update rule worked for the first elements of every parameter (every
// element with full detail) and the new values.
func (s *Solution) writeTrainText(w io.Writer) error {
	if len(s.Train) == 0 {
		return nil
	}
	var b strings.Builder
	tr := s.Spec.Train
	name := optimizerName(tr)
	fmt.Fprintf(&b, "\nOptimizer steps\n---------------\n%s, η = %g, %d step(s), as torch.optim\n", name, tr.LR, tr.Steps)
	for _, st := range s.Train {
		fmt.Fprintf(&b, "\nStep %d: J = %s before the update\n", st.Step, expr.FormatNumber(st.Objective, s.digits))
		shown := map[string]int{}
		for _, l := range st.Lines {
			if s.detail != "full" && shown[l.Param] >= 2 {
				continue
			}
			shown[l.Param]++
			for _, t := range l.Text {
				fmt.Fprintf(&b, "    %s\n", t)
			}
		}
		for _, p := range st.Params {
			fmt.Fprintf(&b, "    %s after step %d =\n%s", p.Name, st.Step, trace.MatrixBlock(p.Value, s.digits, "      "))
		}
	}
	fmt.Fprintf(&b, "\nJ after %d step(s) = %s\n", len(s.Train), expr.FormatNumber(s.FinalObjective, s.digits))
	_, err := io.WriteString(w, b.String())
	return err
}

// writeTrainMarkdown is writeTrainText in Markdown with LaTeX.
func (s *Solution) writeTrainMarkdown(w io.Writer) error {
	if len(s.Train) == 0 {
		return nil
	}
	var b strings.Builder
	tr := s.Spec.Train
	fmt.Fprintf(&b, "\n## Optimizer steps\n\n%s, $\\eta = %g$, %d step(s), as `torch.optim`.\n", optimizerName(tr), tr.LR, tr.Steps)
	for _, st := range s.Train {
		fmt.Fprintf(&b, "\n**Step %d:** $J = %s$ before the update.\n\n$$\n\\begin{aligned}\n", st.Step, expr.Num(st.Objective).Render(expr.Style{LaTeX: true, Digits: s.digits}))
		shown := map[string]int{}
		var rows []string
		for _, l := range st.Lines {
			if s.detail != "full" && shown[l.Param] >= 2 {
				continue
			}
			shown[l.Param]++
			rows = append(rows, l.TeX...)
		}
		b.WriteString(strings.Join(rows, "\\\\\n"))
		b.WriteString("\n\\end{aligned}\n$$\n")
	}
	fmt.Fprintf(&b, "\n$J$ after %d step(s) $= %s$.\n", len(s.Train), expr.Num(s.FinalObjective).Render(expr.Style{LaTeX: true, Digits: s.digits}))
	_, err := io.WriteString(w, b.String())
	return err
}

// optimizerName describes the optimizer and its settings.
func optimizerName(tr *spec.Train) string {
	switch tr.Optimizer {
	case "momentum":
		return fmt.Sprintf("SGD with momentum μ = %g", tr.Momentum)
	case "adam":
		return fmt.Sprintf("Adam (β1 = %g, β2 = %g, ε = %g)", tr.Betas[0], tr.Betas[1], tr.Eps)
	}
	return "SGD"
}
