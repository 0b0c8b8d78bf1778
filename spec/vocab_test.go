package spec

import (
	"strings"
	"testing"
)

// TestConventions: the one validation of the conventions fills defaults,
// accepts the allowed values, names the allowed set in its error, and Set
// keeps a value on "".
func TestConventions(t *testing.T) {
	var c Conventions
	if err := c.Validate(); err != nil || c.Reshape != string(RowMajor) || c.Kernel != string(KernelPyTorch) || c.Label != string(LabelY0) {
		t.Fatalf("defaults %+v, %v", c, err)
	}
	if err := c.Set(ReshapeField, "column-major"); err != nil || !c.ColumnMajor() {
		t.Errorf("set column-major: %+v, %v", c, err)
	}
	if err := c.Set(KernelField, ""); err != nil || c.Flipped() {
		t.Errorf("empty value changed the kernel: %+v, %v", c, err)
	}
	err := c.Set(LabelField, "y2")
	if err == nil || err.Error() != `want y0 or y1, got "y2"` || c.LabelY1() {
		t.Errorf("label y2: %v (%+v)", err, c)
	}
	for _, f := range ConventionFields {
		for _, v := range ConventionChoices(f) {
			if err := ParseConvention(f, v); err != nil {
				t.Errorf("%s %s: %v", f, v, err)
			}
		}
	}
	s := "layers:\n  - {type: linear, name: h, weight: w}\nparams:\n  w: [[1]]\ninput: {value: [1]}\nconventions: {kernel: rotated}\n"
	if _, err := Parse("k.yaml", []byte(s)); err == nil || !strings.Contains(err.Error(), `conventions.kernel: want pytorch or flipped, got "rotated"`) {
		t.Errorf("spec with kernel rotated: %v", err)
	}
}

// TestLayerTypesAndActivations: the layer types and the activations are
// checked against one list each; the activations are the engine's table.
func TestLayerTypesAndActivations(t *testing.T) {
	for _, lt := range LayerTypes {
		if _, err := ParseLayerType(lt); err != nil {
			t.Error(err)
		}
	}
	if _, err := ParseLayerType("dense"); err == nil || !strings.Contains(err.Error(), "linear, reshape") {
		t.Errorf("dense: %v", err)
	}
	for _, a := range []string{"relu", "leaky_relu", "sigmoid", "tanh", "gelu", "identity"} {
		if _, err := ParseActivation(a); err != nil {
			t.Error(err)
		}
	}
	if _, err := ParseActivation("log_sigmoid"); err == nil {
		t.Error("log_sigmoid is the logistic objective's, not a layer's")
	}
	if _, err := ParseActivation("swish"); err == nil || !strings.Contains(err.Error(), `got "swish"`) || !strings.Contains(err.Error(), "gelu") {
		t.Errorf("swish: %v", err)
	}
}
