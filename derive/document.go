package derive

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/backprop-dev/backprop/spec"
)

// Options choose what Write puts in a document.
type Options struct {
	// Symbolic writes sizes as symbols (x ∈ ℝ^d, h ∈ ℝ^k) instead of the
	// spec's numbers, for a network of linear layers whose sizes all
	// differ; other networks keep their numbers. It is how Problem 2,
	// which gives no sizes, is derived.
	Symbolic bool
	// Sample and Batched select the forms; both false means both.
	Sample, Batched bool
	// Title replaces the spec's title when set.
	Title string
}

// BatchSize is the number of samples the batched form is derived with;
// it prints as N.
const BatchSize = 3

// Write derives the equations of s and writes them as a document in
// format "text", "markdown" or "json": the conventions that apply, the
// derivative rules used, for a stack of linear layers trained on a
// squared error the scalar chain rule for one weight of each of the last
// two layers, then the equations per sample and batched. It is what
// `backprop derive` prints.
func Write(w io.Writer, s *spec.Spec, format string, opt Options) error {
	var forms []*Derivation
	batches := []int{0, BatchSize}
	if opt.Sample != opt.Batched {
		batches = []int{0}
		if opt.Batched {
			batches = []int{BatchSize}
		}
	}
	var sizes map[int]string
	var declined string
	for _, n := range batches {
		d, _, err := Spec(s, n)
		var why *DeclinedError
		if errors.As(err, &why) {
			declined = why.Reason
			if len(forms) > 0 {
				continue
			}
			// only the batched form was asked for: the spec's own form
			// stands for it
			d, _, err = Spec(s, 0)
		}
		if err != nil {
			return err
		}
		if opt.Symbolic && sizes == nil {
			sizes = symbols(s)
		}
		d.sizes = sizes
		forms = append(forms, d)
	}
	title := opt.Title
	if title == "" {
		title = s.Title
	}
	if title == "" {
		title = s.File()
	}
	if declined != "" {
		forms[len(forms)-1].declined = declined
	}
	return WriteDocument(w, title, format, forms)
}

// Textbook writes the derivation of s as a course hands it out, with the
// sizes the spec fixes: conventions, derivative rules, the scalar chain
// rule for one weight (for a stack of linear layers with a squared-error
// objective, such as Problem 2), then the vector equations per sample and
// the batched matrix equations with their broadcasts written out. format
// is "text", "markdown" or "json". Variant keys use it for the symbolic
// part of an auto-encoder's answer.
func Textbook(s *spec.Spec, format string, w io.Writer) error {
	return Write(w, s, format, Options{})
}

// WriteDocument writes the derivations of one network (typically per
// sample and batched) as a whole document in format "text", "markdown" or
// "json". Derivations made by Spec also carry their network's
// conventions, derivative rules and scalar chain rule into the document.
func WriteDocument(w io.Writer, title, format string, forms []*Derivation) error {
	var pre *preamble
	if len(forms) > 0 && forms[0].spec != nil {
		pre = newPreamble(forms[0])
	}
	if format == "json" {
		docs := make([]map[string]any, len(forms))
		for i, d := range forms {
			docs[i] = d.JSON()
		}
		out := map[string]any{"title": title, "forms": docs}
		if pre != nil {
			pre.json(out)
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		return enc.Encode(out)
	}
	switch format {
	case "text":
		fmt.Fprintf(w, "Gradient equations of %s\n(derived by walking the network's graph backwards; vectors are columns, ⊙ is the element-wise product, 1[·] is 1 where the condition holds and 0 elsewhere)\n\n", title)
		if pre != nil {
			pre.text(w)
		}
	case "markdown", "md":
		fmt.Fprintf(w, "# Gradient equations: %s\n\n", title)
		fmt.Fprintf(w, "Derived by `backprop derive`, which walks the network's graph backwards and asks each op for\nits symbolic backward rule. Vectors are columns, $\\odot$ is the element-wise product,\n$\\mathbb{1}[\\cdot]$ is 1 where the condition holds and 0 elsewhere.\n\n")
		if pre != nil {
			pre.markdown(w)
		}
	default:
		return fmt.Errorf("--format: want text, markdown or json, got %q", format)
	}
	for i, d := range forms {
		var err error
		switch format {
		case "text":
			if i > 0 {
				fmt.Fprintln(w)
			}
			err = d.WriteText(w)
		default:
			if d.Batched {
				fmt.Fprintf(w, "## Batched over N samples\n\nThe rows of each matrix are the N samples.\n\n")
			} else {
				fmt.Fprintf(w, "## Per sample\n\n")
			}
			err = d.WriteMarkdown(w)
		}
		if err != nil {
			return err
		}
		if d.declined != "" {
			if format == "text" {
				fmt.Fprintf(w, "\n%s\n", d.declined)
			} else {
				fmt.Fprintf(w, "%s\n\n", d.declined)
			}
		}
	}
	return nil
}

// symbols names the sizes of a stack of linear layers: the input's d, the
// hidden layers' k (k1, k2, … when there are several), an output of
// another size than the input m. It returns nil when the network is not
// such a stack or two sizes coincide, so that every symbol stands for one
// number.
func symbols(s *spec.Spec) map[int]string {
	d, _, err := Spec(s, 0)
	if err != nil {
		return nil
	}
	in := d.nodes[s.Input.Name]
	if in == nil || in.Value.Rank() != 1 {
		return nil
	}
	out := map[int]string{in.Value.Len(): "d"}
	add := func(n int, sym string) bool {
		if _, dup := out[n]; dup {
			return false
		}
		out[n] = sym
		return true
	}
	for i, l := range s.Layers {
		p := s.Params[l.Weight]
		if l.Type != "linear" || p == nil || p.Tensor.Rank() != 2 {
			return nil
		}
		n := p.Tensor.Dim(0)
		if l.Transpose {
			n = p.Tensor.Dim(1)
		}
		sym := "k"
		switch {
		case i == len(s.Layers)-1:
			if n == in.Value.Len() {
				continue
			}
			sym = "m"
		case len(s.Layers) > 2:
			sym = fmt.Sprintf("k%d", i+1)
		}
		if !add(n, sym) {
			return nil
		}
	}
	return out
}
