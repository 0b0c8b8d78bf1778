package expr

import (
	"math"
	"strings"
	"testing"
)

func TestRendering(t *testing.T) {
	e := Call{Fn: "ReLU", Args: []Expr{Sum{Product{Num(0.1), Num(0.4)}, Product{Num(-0.3), Num(0.8)}, Inline{X: Product{Num(0.5), Num(-2)}, Value: -1}}}}
	cases := []struct {
		s    Style
		want string
	}{
		{Style{}, "ReLU(0.1·0.4 - 0.3·0.8 + 0.5·(-2))"},
		{Style{Collapse: true}, "ReLU(0.1·0.4 - 0.3·0.8 - 1)"},
		{Style{LaTeX: true}, `\operatorname{ReLU}\left(0.1 \cdot 0.4 - 0.3 \cdot 0.8 + 0.5 \cdot \left(-2\right)\right)`},
	}
	for _, c := range cases {
		if got := e.Render(c.s); got != c.want {
			t.Errorf("got  %s\nwant %s", got, c.want)
		}
	}
	// functions are registered by the package that defines them (ops
	// registers its activations); the test registers its own
	Register("ReLU", "", func(a []float64) (float64, error) { return math.Max(a[0], 0), nil })
	if v, err := Eval(e); err != nil || v != 0 {
		t.Errorf("Eval = %v, %v; want ReLU(0.04 - 0.24 - 1) = 0", v, err)
	}
	for name, want := range map[string]string{"w0": "w_{0}", "x'": "x'", "log_p": `\log p`, "δ2": `\delta_{2}`, "H2": "H_{2}", "b": "b"} {
		if got := LaTeXName(name); got != want {
			t.Errorf("LaTeXName(%q) = %q, want %q", name, got, want)
		}
	}
	if got := String(Ref{Name: "h0", Index: []int{0, 1}}); got != "h0[1,2]" {
		t.Errorf("1-based index: %s", got)
	}
	if got := Simplify(Hadamard{Num(1), Hadamard{Ref{Name: "a"}, Ref{Name: "b"}}}); String(got) != "a ⊙ b" {
		t.Errorf("Simplify: %s", String(got))
	}
}

// TestRegister: a registered function evaluates and renders with its
// LaTeX operator; an unknown one is an error naming it.
func TestRegister(t *testing.T) {
	Register("twice", `\operatorname{tw}`, func(a []float64) (float64, error) { return 2 * a[0], nil })
	e := Call{Fn: "twice", Args: []Expr{Num(1.5)}}
	if v, err := Eval(e); err != nil || v != 3 {
		t.Errorf("twice(1.5) = %v, %v; want 3", v, err)
	}
	if got := e.Render(Style{LaTeX: true}); got != `\operatorname{tw}\left(1.5\right)` {
		t.Errorf("LaTeX %s", got)
	}
	if _, err := Eval(Call{Fn: "nosuch", Args: []Expr{Num(1)}}); err == nil || !strings.Contains(err.Error(), "nosuch") {
		t.Errorf("unknown function: %v", err)
	}
}
