package main

import (
	"bytes"
	"os"
	"testing"
)

// TestDeriveDocsAreTheCommandsOutput runs `backprop derive` as a user
// would and compares its Markdown with the files under docs/, so that the
// documents stay what the command prints (Problem 2 in symbolic sizes).
func TestDeriveDocsAreTheCommandsOutput(t *testing.T) {
	for _, c := range []struct{ network, doc string }{
		{"autoencoder", "../../docs/autoencoder.md"},
		{"gan", "../../docs/gan-equations.md"},
	} {
		cmd := deriveCmd()
		var out bytes.Buffer
		cmd.SetOut(&out)
		cmd.SetArgs([]string{c.network, "--format", "markdown"})
		if err := cmd.Execute(); err != nil {
			t.Fatal(err)
		}
		want, err := os.ReadFile(c.doc)
		if err != nil {
			t.Fatal(err)
		}
		if out.String() != string(want) {
			t.Errorf("%s differs from `backprop derive %s --format markdown`; regenerate it", c.doc, c.network)
		}
	}
}
