package derive

import (
	"encoding/json"
	"fmt"
	"io"
)

// WriteDocument writes the derivations of one network (typically per
// sample and batched) as a whole document in format "text", "markdown" or
// "json". It is what `backprop derive` prints and what docs/autoencoder.md
// holds.
func WriteDocument(w io.Writer, title, format string, forms []*Derivation) error {
	if format == "json" {
		docs := make([]map[string]any, len(forms))
		for i, d := range forms {
			docs[i] = d.JSON()
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(map[string]any{"title": title, "forms": docs})
	}
	for i, d := range forms {
		var err error
		switch format {
		case "text":
			if i == 0 {
				fmt.Fprintf(w, "Gradient equations of %s\n(derived by walking the graph backwards; ⊙ is the element-wise product, 1[·] the indicator)\n\n", title)
			} else {
				fmt.Fprintln(w)
			}
			err = d.WriteText(w)
		case "markdown", "md":
			if i == 0 {
				fmt.Fprintf(w, "# Gradient equations: %s\n\nDerived by `backprop derive`, which walks the network's graph backwards and asks each op for its symbolic backward rule. $\\odot$ is the element-wise product, $\\mathbb{1}[\\cdot]$ the indicator, vectors are columns.\n\n", title)
			}
			if d.Batched {
				fmt.Fprintf(w, "## Batched over N samples\n\nThe rows of each matrix are the N samples.\n\n")
			} else {
				fmt.Fprintf(w, "## Per sample\n\n")
			}
			err = d.WriteMarkdown(w)
		default:
			return fmt.Errorf("--format: want text, markdown or json, got %q", format)
		}
		if err != nil {
			return err
		}
	}
	return nil
}
