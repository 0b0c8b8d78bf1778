package grade

import (
	"fmt"
	"math"
	"sort"
	"strings"

	"github.com/backprop-dev/backprop/tensor"
)

// graded holds what marking needs: the key, the student's numbers per key
// step, and the values re-run from them.
type graded struct {
	k       *Key
	o       Options
	got     [][]*float64     // per key step, per element; nil where not given
	swapped map[string][]int // answers given in the transposed shape
	// follow is what the student's own numbers give, forward and backward
	// (rerun with backward set); base only re-runs the forward pass from
	// them, so that it holds the right gradients for their forward values.
	follow, base map[string][]float64
	marks        [][]*Wrong            // per step and element: the mark of every given number
	wrong        [][2]int              // step, element of every wrong number
	explained    map[[2]int]string     // numbers a global mistake accounts for → its kind
	given        map[string][]*float64 // the student's numbers by nodeKey, for re-runs
}

// stepName is where a step's numbers are reported: its answer name, or
// elements.<target> for an intermediate step.
func stepName(answer, target string) string {
	if answer != "" {
		return answer
	}
	return "elements." + target
}

func scaleOf(v []float64) float64 {
	s := 0.0
	for _, x := range v {
		s = max(s, math.Abs(x))
	}
	return s
}

// expected is a step's values in the key.
func (g *graded) expected(si int) []float64 {
	st := g.k.Steps[si]
	out := make([]float64, len(st.Elements))
	for i, e := range st.Elements {
		out[i] = e.Value
	}
	return out
}

// rerunOf is a step's values from a re-run, nil when it has none of the
// step's length.
func rerunOf(m map[string][]float64, pass, target string, n int) []float64 {
	v := m[stepKey(pass, target)]
	if len(v) != n {
		return nil
	}
	return v
}

// judge marks every given number: right when it is the key's, else
// follow-through when it is what the student's own earlier numbers give,
// else wrong.
func (g *graded) judge(r *Report) {
	g.marks = make([][]*Wrong, len(g.k.Steps))
	for si, st := range g.k.Steps {
		row := g.got[si]
		want := g.expected(si)
		scale := scaleOf(want)
		follow := rerunOf(g.follow, st.Pass, st.Target, len(want))
		g.marks[si] = make([]*Wrong, len(st.Elements))
		for ei, e := range st.Elements {
			got := row[ei]
			if got == nil {
				continue
			}
			w := &Wrong{Name: stepName(st.Answer, st.Target), Label: e.Label, Expected: e.Value, Got: *got, Mark: MarkRight}
			g.marks[si][ei] = w
			if within(*got, e.Value, scale, g.o) {
				continue
			}
			w.Mark = MarkWrong
			if follow != nil && !within(follow[ei], e.Value, scale, g.o) {
				c := follow[ei]
				w.Consistent = &c
				if within(*got, c, max(scale, scaleOf(follow)), g.o) {
					w.Mark = MarkFollowThrough
				}
			}
		}
	}
}

// blame marks wrong the follow-through numbers that a recognised global
// mistake accounts for: a number that repeats the mistake is not method
// credit, even where it follows from an earlier number with the same
// mistake (every gradient of the opposite sign follows from ∂J/∂a).
func (g *graded) blame() {
	for p, kind := range g.explained {
		if w := g.marks[p[0]][p[1]]; w != nil && w.Mark != MarkRight {
			w.Mark = MarkWrong
			w.Mistake = kind
		}
	}
}

// tally fills the report's counts, lists, scores and first wrong step from
// the marks.
func (g *graded) tally(r *Report) {
	tasks := map[string]*Score{}
	taskOrder := []string{"forward", "gradients", "elements"}
	taskLabel := map[string]string{"forward": "forward values", "gradients": "gradients", "elements": "intermediate elements"}
	for _, t := range taskOrder {
		tasks[t] = &Score{Name: t, Label: taskLabel[t], Asked: true}
	}
	r.Checked, r.Right, r.Unanswered = 0, 0, 0
	r.Wrong, r.FollowThrough, r.Tensors, r.Tasks, r.First = nil, nil, nil, nil, nil
	g.wrong = nil
	for si, st := range g.k.Steps {
		task := "elements"
		if i := strings.IndexByte(st.Answer, '.'); i > 0 {
			task = st.Answer[:i]
		}
		asked := st.Answer != "" && g.k.asked(st.Answer)
		sc := Score{Name: stepName(st.Answer, st.Target), Label: st.Target, Asked: asked}
		if asked {
			sc.Total = len(st.Elements)
		}
		for ei, e := range st.Elements {
			w := g.marks[si][ei]
			if w == nil {
				if asked {
					r.Unanswered++
				}
				continue
			}
			r.Checked++
			sc.Answered++
			if !asked {
				sc.Total++
			}
			switch w.Mark {
			case MarkRight:
				r.Right++
				sc.Right++
			case MarkFollowThrough:
				r.FollowThrough = append(r.FollowThrough, *w)
				sc.FollowThrough++
			default:
				r.Wrong = append(r.Wrong, *w)
				g.wrong = append(g.wrong, [2]int{si, ei})
				sc.Wrong++
				if r.First == nil {
					r.First = &FirstStep{Pass: st.Pass, Step: st.Step, Target: st.Target, Formula: st.Formula, Label: e.Label, Got: w.Got, Line: e.Line}
				}
			}
		}
		if sc.Answered == 0 && !asked {
			continue
		}
		sc.finish()
		r.Tensors = append(r.Tensors, sc)
		if !asked && st.Answer != "" {
			continue // graded, but a number the sheet does not ask for is not scored
		}
		t := tasks[task]
		t.Total += sc.Total
		t.Answered += sc.Answered
		t.Right += sc.Right
		t.FollowThrough += sc.FollowThrough
		t.Wrong += sc.Wrong
	}
	for _, name := range taskOrder {
		t := tasks[name]
		if t.Total == 0 {
			continue
		}
		t.finish()
		r.Tasks = append(r.Tasks, *t)
	}
}

func (s *Score) finish() {
	s.Credit = s.Right + s.FollowThrough
	if s.Total > 0 {
		s.Percent = math.Round(1000*float64(s.Credit)/float64(s.Total)) / 10
	}
}

// answeredStep is one key step with numbers given: what a global mistake
// is tested on.
type answeredStep struct {
	si    int
	name  string     // stepName
	got   []*float64 // the student's numbers
	base  []float64  // the right values for the student's forward values
	scale float64
}

// mistakes recognises the global mistakes: every gradient (or every number
// of one gradient) with the opposite sign, twice or half the right value,
// and a weight gradient with its last two axes swapped. Gradients are
// compared with the right gradients for the student's own forward values,
// so that a forward slip does not hide them.
func (g *graded) mistakes(r *Report) {
	g.explained = map[[2]int]string{}
	var grads []answeredStep
	var objective *answeredStep
	last := -1
	for si, st := range g.k.Steps {
		if st.Pass == "forward" {
			last = si
		}
	}
	for si, st := range g.k.Steps {
		any := false
		for _, p := range g.got[si] {
			any = any || p != nil
		}
		if !any || (st.Pass != "backward" && si != last) {
			continue
		}
		want := g.expected(si)
		base := rerunOf(g.base, st.Pass, st.Target, len(want))
		if base == nil {
			base = want
		}
		a := answeredStep{si: si, name: stepName(st.Answer, st.Target), got: g.got[si], base: base, scale: max(scaleOf(want), scaleOf(base))}
		if st.Pass == "backward" {
			grads = append(grads, a)
		} else {
			objective = &a
		}
	}
	if len(grads) == 0 {
		return
	}
	// fit lists the numbers of a that equal f(base) and not base; ok is
	// false when one equals neither, full when every number that f
	// changes is among them
	fit := func(a answeredStep, f []float64) (explained []int, ok, full bool) {
		full = true
		for i, p := range a.got {
			if p == nil {
				continue
			}
			right := within(*p, a.base[i], a.scale, g.o)
			fits := within(*p, f[i], a.scale, g.o)
			if !fits && !right {
				return nil, false, false
			}
			if fits && !right {
				explained = append(explained, i)
			}
			if right && !within(f[i], a.base[i], a.scale, g.o) {
				full = false
			}
		}
		return explained, true, full
	}
	scaled := func(v []float64, c float64) []float64 {
		out := make([]float64, len(v))
		for i, x := range v {
			out[i] = c * x
		}
		return out
	}
	type candidate struct {
		kind   string
		factor float64
	}
	cands := []candidate{{"sign", -1}, {"factor-2", 2}, {"factor-1/2", 0.5}}
	if n := g.k.meanOver(); n > 1 {
		// the mean's 1/N forgotten: every gradient N times the right one
		// (for N = 2 the likelier reading of a factor 2)
		cands = append([]candidate{{MistakeMissingMean, float64(n)}}, cands...)
		if n == 2 {
			cands = append(cands[:2], cands[3:]...)
		}
	}
	for _, c := range cands {
		var fitting []answeredStep
		var expl [][]int
		n := 0
		all := true
		for _, a := range grads {
			e, ok, full := fit(a, scaled(a.base, c.factor))
			all = all && ok && full
			if ok && full && len(e) > 0 {
				fitting = append(fitting, a)
				expl = append(expl, e)
				n += len(e)
			}
		}
		if len(fitting) == 0 {
			continue
		}
		m := Mistake{Kind: c.kind}
		for i, a := range fitting {
			m.Tensors = append(m.Tensors, a.name)
			for _, e := range expl[i] {
				g.explained[[2]int{a.si, e}] = c.kind
			}
		}
		if all {
			// the objective's own value under the same mistake (½·Σ, −log p)
			if objective != nil {
				if e, ok, _ := fit(*objective, scaled(objective.base, c.factor)); ok && len(e) > 0 {
					for _, i := range e {
						g.explained[[2]int{objective.si, i}] = c.kind
					}
					n += len(e)
					m.Tensors = append(m.Tensors, objective.name)
				}
			}
			m.Text = g.globalText(c.kind, len(grads) > 1)
		} else {
			var names []string
			for _, a := range fitting {
				names = append(names, g.k.Steps[a.si].Target)
			}
			m.Text = tensorText(c.kind, names)
		}
		m.Explains = n
		r.Mistakes = append(r.Mistakes, m)
	}
	for _, a := range grads {
		st := g.k.Steps[a.si]
		if len(st.Shape) < 2 {
			continue
		}
		sw := swapLast(st.Shape)
		if st.Shape[len(st.Shape)-1] == 1 || st.Shape[len(st.Shape)-2] == 1 {
			continue
		}
		// the right gradient with its last two axes swapped, in flat order
		t := tensor.MustFromSlice(append([]float64(nil), a.base...), st.Shape...)
		f := make([]float64, len(a.base))
		rows, cols := st.Shape[len(st.Shape)-2], st.Shape[len(st.Shape)-1]
		plane := rows * cols
		for p := 0; p < len(f)/plane; p++ {
			for i := range rows {
				for j := range cols {
					f[p*plane+j*rows+i] = t.Data()[p*plane+i*cols+j]
				}
			}
		}
		e, ok, full := fit(a, f)
		if !ok || !full || len(e) == 0 {
			continue
		}
		for _, i := range e {
			g.explained[[2]int{a.si, i}] = "transposed"
		}
		text := fmt.Sprintf("%s is transposed: you have (%s)ᵀ, %s, where a weight's gradient has the weight's own shape %s (for example x·δᵀ where δ·xᵀ is meant)",
			st.Target, st.Target, dims(sw), dims(st.Shape))
		if len(st.Shape) > 2 {
			text = fmt.Sprintf("each %d×%d kernel of %s is transposed: row and column indices swapped (you have ∂J/∂w[c,c',b,a] where ∂J/∂w[c,c',a,b] is meant)", rows, cols, st.Target)
		}
		if gs, ok := g.swapped[a.name]; ok {
			text += fmt.Sprintf(", and you wrote it as %s", dims(gs))
		}
		r.Mistakes = append(r.Mistakes, Mistake{Kind: "transposed", Tensors: []string{a.name}, Explains: len(e), Text: text})
	}
}

// MistakeTruncatedBPTT is the Kind of backpropagation through time
// truncated to one step: ∂J/∂h_t without the gradient from step t+1.
const MistakeTruncatedBPTT = "truncated-bptt"

// MistakeMissingScale is the Kind of attention scores without their
// 1/√d_k: S = Q·Kᵀ.
const MistakeMissingScale = "missing-scale"

// natural recognises the natural mistakes of recurrent networks and
// attention, each a network altered the way a student who makes the
// mistake computes it (see alteration): the network is re-run altered
// from the student's own forward values, and a step's wrong numbers are
// the mistake when every one of them is the altered network's value and
// none of the step's right numbers is where the altered value differs.
// Follow-through numbers keep their credit: a later value computed
// correctly from a wrong one does not repeat the mistake.
func (g *graded) natural(r *Report) {
	s := g.k.parseSpec()
	if s == nil {
		return
	}
	recurrent, dk := false, 0
	for _, l := range s.Layers {
		switch l.Type {
		case "rnn", "lstm", "gru":
			recurrent = true
		case "attention":
			if p := s.Params[l.WQ]; p != nil && l.Heads > 0 && dk == 0 {
				dk = p.Tensor.Dim(0) / l.Heads
			}
		}
	}
	type candidate struct {
		kind string
		alt  alteration
		text string
	}
	var cands []candidate
	if recurrent {
		cands = append(cands, candidate{MistakeTruncatedBPTT, alteration{truncated: true},
			"backpropagation through time truncated to one step: ∂J/∂h_t has only the read-out's term, the gradient from step t+1 (W_hhᵀ·∂J/∂u_{t+1}) is left out, " +
				"so the shared weights' gradients miss every term that reaches back in time; ∂J/∂h_t = W_hyᵀ·∂J/∂y_t + W_hhᵀ·∂J/∂u_{t+1}"})
	}
	if dk > 0 {
		cands = append(cands, candidate{MistakeMissingScale, alteration{unscaled: true},
			fmt.Sprintf("the scores were not scaled: S = Q·Kᵀ where S = Q·Kᵀ/√d_k = Q·Kᵀ/√%d is meant, and the scaling's factor 1/√%d is missing from the gradients through it (∂J/∂(Q·Kᵀ) = ∂J/∂S/√%d)", dk, dk, dk)})
	}
	for _, c := range cands {
		alt, err := rerunAltered(s, g.given, false, c.alt)
		if err != nil {
			continue
		}
		m := Mistake{Kind: c.kind, Text: c.text}
		for si, st := range g.k.Steps {
			want := g.expected(si)
			av := rerunOf(alt, st.Pass, st.Target, len(want))
			if av == nil {
				continue
			}
			scale := max(scaleOf(want), scaleOf(av))
			var expl []int
			ok := true
			for ei, p := range g.got[si] {
				w := g.marks[si][ei]
				if p == nil || w == nil {
					continue
				}
				fits := within(*p, av[ei], scale, g.o)
				switch w.Mark {
				case MarkRight:
					ok = ok && within(av[ei], want[ei], scale, g.o)
				case MarkWrong:
					if fits {
						expl = append(expl, ei)
					} else {
						ok = false
					}
				}
			}
			if !ok || len(expl) == 0 {
				continue
			}
			for _, ei := range expl {
				g.explained[[2]int{si, ei}] = c.kind
			}
			m.Tensors = append(m.Tensors, stepName(st.Answer, st.Target))
			m.Explains += len(expl)
		}
		if m.Explains > 0 {
			r.Mistakes = append(r.Mistakes, m)
		}
	}
}

// reading records another reading of the problem under which all the
// numbers are right: it explains every number that is not.
func (g *graded) reading(r *Report, hint string, student map[string][]*float64) {
	if g.explained == nil {
		g.explained = map[[2]int]string{}
	}
	m := Mistake{Kind: "reading", Text: hint, Explains: len(r.Wrong) + len(r.FollowThrough)}
	for name := range student {
		m.Tensors = append(m.Tensors, name)
	}
	sort.Strings(m.Tensors)
	for si, row := range g.marks {
		for ei, w := range row {
			if w != nil && w.Mark != MarkRight {
				g.explained[[2]int{si, ei}] = "reading"
			}
		}
	}
	r.Mistakes = append(r.Mistakes, m)
}

// cause names the mistakes that account for every wrong number.
func (g *graded) cause(r *Report) {
	if len(g.wrong) == 0 || len(r.Mistakes) == 0 {
		return
	}
	kinds := map[string]bool{}
	for _, p := range g.wrong {
		k, ok := g.explained[p]
		if !ok {
			return
		}
		kinds[k] = true
	}
	var texts []string
	for _, m := range r.Mistakes {
		if kinds[m.Kind] {
			texts = append(texts, m.Text)
			kinds[m.Kind] = false
		}
	}
	r.Cause = strings.Join(texts, "; and ")
}

// globalText describes a mistake in every gradient, for the key's
// objective.
func (g *graded) globalText(kind string, all bool) string {
	every := "every gradient"
	if !all {
		every = "the gradient"
	}
	switch kind {
	case "sign":
		switch g.k.Objective {
		case "cross_entropy":
			return every + " has the opposite sign: these are the gradients of −L, as if ∂L/∂z were onehot(y) − softmax(z); the problem's ∂L/∂z is softmax(z) − onehot(y) (over N for the mean), and gradient descent θ ← θ − η·∂L/∂θ lowers L"
		case "sse":
			return every + " has the opposite sign: these are the gradients of −L; the problem's gradients are ∂L/∂θ, with ∂L/∂x' = 2(x' − x), and gradient descent θ ← θ − η·∂L/∂θ lowers L"
		case "half_sse":
			return every + " has the opposite sign: these are the gradients of −J, as if ∂J/∂y were t − y; the problem's J = ½Σ(y − t)² has ∂J/∂y = y − t, and gradient descent θ ← θ − η·∂J/∂θ lowers J"
		case "bce":
			return every + " has the opposite sign: these are the gradients of log p, not of the loss J = −log p; gradient descent θ ← θ − η·∂J/∂θ lowers J"
		default:
			return every + " has the opposite sign: these are the gradients of −log p(y=0), the loss one would minimize; the problem maximizes J = log p(y=0), whose gradients are ∂J/∂θ (∂J/∂a = 1 − p(y=0) = σ(−a)), and gradient ascent θ ← θ + η·∂J/∂θ raises p(y=0)"
		}
	case "factor-1/2":
		if g.k.Objective == "sse" {
			return every + " is half the right one: the ½·Σ convention, L = ½Σ(xᵢ − x'ᵢ)², whose derivative loses the 2; the problem's L = Σ(xᵢ − x'ᵢ)² has ∂L/∂x' = 2(x' − x)"
		}
		return every + " is half the right one: a factor ½ that the objective does not have"
	case MistakeMissingMean:
		n := g.k.meanOver()
		return fmt.Sprintf("%s is N = %d times the right one: the 1/N of the mean was forgotten; L = (1/N)·Σₙ −log softmax(zₙ)[yₙ] averages the cross-entropy over the N = %d samples, so ∂L/∂z = (softmax(z) − onehot(y))/N", every, n, n)
	case "factor-2":
		if g.k.Objective == "half_sse" {
			return every + " is twice the right one: the ½ of J = ½Σ(y − t)² cancels the 2 of the square, so ∂J/∂y = y − t, not 2(y − t)"
		}
		if g.k.Objective == "sse" {
			return every + " is twice the right one: the 2 of ∂L/∂x' = 2(x' − x) counted twice"
		}
		return every + " is twice the right one: a factor 2 the objective does not have (a contribution counted twice)"
	}
	return kind
}

// MistakeMissingMean is the Kind of the mistake of a mean loss (mean
// cross-entropy over a batch) whose 1/N was forgotten: every gradient N
// times the right one, and the loss the batch's sum.
const MistakeMissingMean = "missing-1/N"

// meanOver is the N a mean cross-entropy of the key's network averages
// over (its batch's rows), or 0 when its objective is no such mean.
func (k *Key) meanOver() int {
	if k.Objective != "cross_entropy" {
		return 0
	}
	s := k.parseSpec()
	if s == nil || s.Objective.Reduction != "mean" || !s.Batched() {
		return 0
	}
	return s.InputTensor().Dim(0)
}

// tensorText describes a mistake confined to some gradients.
func tensorText(kind string, names []string) string {
	list := strings.Join(names, ", ")
	verb := "is"
	if len(names) > 1 {
		verb = "are"
	}
	switch kind {
	case "sign":
		if len(names) > 1 {
			return list + " have the opposite sign"
		}
		return list + " has the opposite sign"
	case "factor-2":
		return list + " " + verb + " twice the right value"
	case "factor-1/2":
		return list + " " + verb + " half the right value"
	case MistakeMissingMean:
		return list + " " + verb + " N times the right value: the 1/N of the mean forgotten"
	}
	return kind + ": " + list
}

// summary is a paragraph for the student's feedback.
func summary(r *Report) string {
	var b strings.Builder
	total, credit := 0, 0
	for _, t := range r.Tasks {
		total += t.Total
		credit += t.Credit
	}
	if r.Checked == 0 {
		b.WriteString("No numbers to grade were found in the answers.")
		if len(r.Problems) > 0 {
			fmt.Fprintf(&b, " %s.", capital(strings.Join(r.Problems, "; ")))
		}
		return b.String()
	}
	if total > 0 {
		fmt.Fprintf(&b, "Score: %d of %d numbers earn credit (%s %%)", credit, total, fmtPct(100*float64(credit)/float64(total)))
	} else {
		fmt.Fprintf(&b, "Score: %d of %d numbers earn credit", r.Right+len(r.FollowThrough), r.Checked)
	}
	var parts []string
	for _, t := range r.Tasks {
		parts = append(parts, fmt.Sprintf("%s %d/%d", t.Label, t.Credit, t.Total))
	}
	if len(parts) > 0 {
		fmt.Fprintf(&b, ": %s", strings.Join(parts, ", "))
	}
	b.WriteString(".")
	if r.Unanswered > 0 {
		fmt.Fprintf(&b, " %d not answered.", r.Unanswered)
	}
	if r.OK() {
		fmt.Fprintf(&b, " All %d numbers checked are right.", r.Checked)
		return b.String()
	}
	switch {
	case r.Cause != "":
		fmt.Fprintf(&b, " %s wrong, all from one cause: %s.", count(len(r.Wrong), "number is", "numbers are"), r.Cause)
	case r.First != nil:
		f := r.First
		fmt.Fprintf(&b, " The first mistake is in %s (%s step %d): %s should be %s, you have %s", f.Target, f.Pass, f.Step, f.Label, fmtNum(expectedOf(r, f.Label)), fmtNum(f.Got))
		if f.Line != "" && len([]rune(f.Line)) <= 160 { // a whole deconvolution's line is too long for feedback
			fmt.Fprintf(&b, " (%s)", f.Line)
		}
		b.WriteString(".")
		if n := len(r.Wrong); n > 1 {
			fmt.Fprintf(&b, " Wrong: %s.", wrongList(r.Wrong))
		}
	}
	if n := len(r.FollowThrough); n > 0 {
		fmt.Fprintf(&b, " %s from the key only because %s your earlier wrong value(s); %s right for your own numbers and %s method credit (follow-through).",
			count(n, "later number differs", "later numbers differ"), pick(n, "it uses", "they use"), pick(n, "it is", "they are"), pick(n, "earns", "earn"))
	}

	if len(r.Problems) > 0 {
		fmt.Fprintf(&b, " Not graded: %s.", strings.Join(r.Problems, "; "))
	}
	return b.String()
}

func expectedOf(r *Report, label string) float64 {
	for _, w := range r.Wrong {
		if w.Label == label {
			return w.Expected
		}
	}
	return math.NaN()
}

// wrongList names the wrong numbers per tensor: "h0[1], h0[3]; ∂J/∂w0 (all 16)".
func wrongList(ws []Wrong) string {
	var parts []string
	for _, grp := range byTensor(ws) {
		if len(grp) > 4 {
			parts = append(parts, fmt.Sprintf("%d numbers of %s", len(grp), tensorOf(grp[0].Label)))
			continue
		}
		var ls []string
		for _, w := range grp {
			ls = append(ls, w.Label)
		}
		parts = append(parts, strings.Join(ls, ", "))
	}
	return strings.Join(parts, "; ")
}

// byTensor splits numbers (in trace order) into runs of the same tensor.
func byTensor(ws []Wrong) [][]Wrong {
	var out [][]Wrong
	for i, w := range ws {
		if i == 0 || ws[i-1].Name != w.Name {
			out = append(out, nil)
		}
		out[len(out)-1] = append(out[len(out)-1], w)
	}
	return out
}

func capital(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

func fmtPct(p float64) string { return fmt.Sprintf("%.1f", p) }

// tensorOf is the tensor of an element label: ∂J/∂w0 of ∂J/∂w0[1,2].
func tensorOf(label string) string {
	if i := strings.IndexByte(label, '['); i > 0 {
		return label[:i]
	}
	return label
}

// dims writes a shape as 8×2.
func dims(shape []int) string { return strings.Trim(tensor.FormatShape(shape), "[]") }

// count is "1 number is" or "3 numbers are".
func count(n int, one, many string) string { return fmt.Sprintf("%d %s", n, pick(n, one, many)) }

func pick(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
