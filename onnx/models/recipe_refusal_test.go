package models

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/backprop-dev/backprop/safetensors"
	"github.com/backprop-dev/backprop/tensor"
)

// TestRecipeModelsRefusedByName: a conditional DCGAN, or the
// discriminator of a spectral-norm run, is refused with a sentence naming
// the recipe, not with a state-dict mismatch.
func TestRecipeModelsRefusedByName(t *testing.T) {
	dir := t.TempDir()
	tensors := map[string]*tensor.Tensor[float32]{"G.0.weight": tensor.New[float32](2, 2), "D.0.weight": tensor.New[float32](2, 2)}
	for _, c := range []struct {
		meta map[string]string
		kind Kind
		want string
	}{
		{map[string]string{"recipe.conditional": "true"}, Generator, "class-conditional"},
		{map[string]string{"recipe.conditional": "true"}, Discriminator, "class-conditional"},
		{map[string]string{"recipe.spectral_norm": "true"}, Discriminator, "--spectral-norm"},
	} {
		path := filepath.Join(dir, "ck.safetensors")
		if err := safetensors.Write(path, tensors, c.meta); err != nil {
			t.Fatal(err)
		}
		_, err := Load(path, c.kind)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v %s: got %v, want an error naming %q", c.meta, c.kind, err, c.want)
		}
	}
}
