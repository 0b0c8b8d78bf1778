package classroom

import (
	"strings"

	"github.com/backprop-dev/backprop/expr"
	"github.com/backprop-dev/backprop/trace"
)

// StepText is one step of the worked solution, split so the page can show
// each part on its own: the step's whole-tensor formula, its general index
// formula, the gradient's chain-rule factors, one line per element
// (symbolic = numbers substituted = value), and the resulting tensor.
// Each part is given in LaTeX (for KaTeX) and the formulas and element
// lines also in plain text (for copying and for tests). The parts are
// rendered from the trace's expressions, in the same styles as `backprop
// solve --detail full` uses, so the page shows the same text.
type StepText struct {
	Head     string `json:"head"`     // LaTeX: target = whole-tensor formula
	HeadText string `json:"headText"` // the same in plain text
	Note     string `json:"note"`     // e.g. "h1 is used 2 times; the contributions add up"
	// Rule is the general element with symbolic indices in LaTeX,
	// u_{0}[i] = \sum_{j} w_{0}[i,j] \cdot z[j] + b_{0}[i]; empty when the
	// operation has none. RuleText is the same in plain text, RuleNote
	// says which terms the rule's sum keeps or how an index maps.
	Rule     string `json:"rule,omitempty"`
	RuleText string `json:"ruleText,omitempty"`
	RuleNote string `json:"ruleNote,omitempty"`
	// Chain is a gradient step written as its chain-rule factors and then
	// as the whole-tensor formula, ∂J/∂u0 = ∂J/∂h0·∂h0/∂u0 = ∂J/∂h0 ⊙
	// 1[u0 > 0], in LaTeX; empty for forward steps and, as in the handout,
	// for a parameter's gradient, whose formula (∂J/∂u0·zᵀ) already reads
	// as the product. ChainText is the same in plain text.
	Chain     string `json:"chain,omitempty"`
	ChainText string `json:"chainText,omitempty"`
	// Local states the local derivative's convention where the operation
	// has one (ReLU′ at 0, the derivative of log σ).
	Local     string   `json:"local,omitempty"`
	Lines     []string `json:"lines"`     // LaTeX, one per element, "target = … = value"
	LinesText []string `json:"linesText"` // plain text, one per element
	Result    string   `json:"result"`    // LaTeX: target = matrix
}

// renderStep renders one step of a trace for the page directly from its
// expressions: LaTeX in expr's LaTeX style and plain text in its text
// style, with the given significant digits.
func renderStep(s trace.Step, digits int) StepText {
	tx := expr.Style{LaTeX: true, Digits: digits}
	pt := expr.Style{Digits: digits}
	out := StepText{
		Head:     s.Target.Render(tx) + " = " + s.Formula.Render(tx),
		HeadText: s.Target.Render(pt) + " = " + s.Formula.Render(pt),
		Note:     s.Note,
		Local:    s.Local,
		Result:   s.Target.Render(tx) + " = " + matrixLaTeX(s.Value, digits),
	}
	if s.RuleLHS != nil && s.Rule != nil {
		out.Rule = s.RuleLHS.Render(tx) + " = " + s.Rule.Render(tx)
		out.RuleText = s.RuleLHS.Render(pt) + " = " + s.Rule.Render(pt)
		out.RuleNote = s.RuleNote
	}
	if s.Chain != nil && !s.Param {
		out.Chain = strings.Join([]string{s.Target.Render(tx), s.Chain.Render(tx), s.Formula.Render(tx)}, " = ")
		out.ChainText = strings.Join([]string{s.Target.Render(pt), s.Chain.Render(pt), s.Formula.Render(pt)}, " = ")
	}
	for _, l := range s.Lines {
		out.Lines = append(out.Lines, strings.Join(lineParts(l, tx), " = "))
		out.LinesText = append(out.LinesText, strings.Join(lineParts(l, pt), " = "))
	}
	return out
}

// lineParts are the forms of one element line, as the trace prints them.
func lineParts(l trace.Line, st expr.Style) []string { return l.Parts(st) }

// matrixLaTeX is the trace's own matrix rendering.
func matrixLaTeX(m trace.Matrix, digits int) string { return trace.MatrixLaTeX(m, digits) }
