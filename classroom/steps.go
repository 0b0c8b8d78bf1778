package classroom

import (
	"bytes"
	"regexp"
	"strings"

	"github.com/backprop-dev/backprop/trace"
)

// StepText is one step of the trace engine's worked solution, as the trace
// package renders it, split so the page can show each part on its own: the
// step's formula, one line per element (symbolic = numbers substituted =
// value), and the resulting tensor. Each part is given in LaTeX (for KaTeX)
// and the element lines also in plain text (for copying and for tests).
type StepText struct {
	Head      string   `json:"head"`      // LaTeX: target = whole-tensor formula
	HeadText  string   `json:"headText"`  // the same in plain text
	Note      string   `json:"note"`      // e.g. "h1 is used 2 times; the contributions add up"
	Lines     []string `json:"lines"`     // LaTeX, one per element, "target = … = value"
	LinesText []string `json:"linesText"` // plain text, one per element
	Result    string   `json:"result"`    // LaTeX: target = matrix
}

var mathBlock = regexp.MustCompile(`(?s)\$\$\n(.*?)\n\$\$`)

// renderStep renders one step through the trace package's own Markdown and
// text writers and cuts the output into its parts. Going through the
// writers (rather than re-implementing them) guarantees the page shows
// exactly the text that `backprop solve` prints.
func renderStep(s trace.Step, digits int) StepText {
	one := &trace.Trace{Forward: []trace.Step{s}}
	var md, txt bytes.Buffer
	_ = one.WriteMarkdown(&md, trace.Header{}, digits)
	_ = one.WriteText(&txt, trace.Header{}, digits)
	out := StepText{Note: s.Note}

	blocks := mathBlock.FindAllStringSubmatch(md.String(), -1)
	if len(blocks) > 0 {
		out.Head = blocks[0][1]
		out.Result = blocks[len(blocks)-1][1]
	}
	if len(s.Lines) > 0 && len(blocks) >= 3 {
		body := blocks[1][1]
		body = strings.TrimPrefix(body, "\\begin{aligned}\n")
		body = strings.TrimSuffix(body, "\\end{aligned}")
		for _, l := range strings.Split(body, "\\\\\n") {
			if l = strings.TrimSpace(l); l != "" {
				out.Lines = append(out.Lines, strings.Replace(l, " &= ", " = ", 1))
			}
		}
	}

	lines := strings.Split(txt.String(), "\n")
	for i, l := range lines {
		if !strings.HasPrefix(l, "[1] ") {
			continue
		}
		out.HeadText = strings.TrimPrefix(l, "[1] ")
		j := i + 1
		if s.Note != "" {
			j++
		}
		for k := 0; k < len(s.Lines) && j+k < len(lines); k++ {
			out.LinesText = append(out.LinesText, strings.TrimSpace(lines[j+k]))
		}
		break
	}
	return out
}
