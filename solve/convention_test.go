package solve_test

// The deconv convention line printed at the top of every solution states an
// index formula. This test does not trust the text: it parses the formula
// out of the printed line, evaluates it as integer arithmetic with 1-based
// indices, scatters the input through it, and compares the result with the
// values the solution computes, for both kernel readings, with stride and
// padding.

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"

	"github.com/backprop-dev/backprop/solve"
	"github.com/backprop-dev/backprop/spec"
)

// formulaOf returns the index formula in the deconv line of ConventionText.
func formulaOf(t *testing.T, lines []string) string {
	t.Helper()
	for _, l := range lines {
		if !strings.HasPrefix(l, "deconv kernel:") {
			continue
		}
		i := strings.Index(l, "out[")
		if i < 0 {
			t.Fatalf("deconv line has no index formula: %s", l)
		}
		f := l[i:]
		// the formula ends at the weight's closing bracket
		j := strings.Index(f, "w[")
		k := strings.Index(f[j:], "]")
		return f[:j+k+1]
	}
	t.Fatalf("no deconv line in %q", lines)
	return ""
}

// indexExprs splits "name[e1, e2, ...]" into its index expressions, in Go
// syntax (· → *, − → -, c' → cp, k_h → kh).
func indexExprs(t *testing.T, s string) (string, []ast.Expr) {
	t.Helper()
	s = strings.NewReplacer("·", "*", "−", "-", "c'", "cp", "k_h", "kh", "k_w", "kw").Replace(strings.TrimSpace(s))
	open := strings.Index(s, "[")
	if open < 0 || !strings.HasSuffix(s, "]") {
		t.Fatalf("not an indexed name: %q", s)
	}
	var out []ast.Expr
	for _, part := range strings.Split(s[open+1:len(s)-1], ",") {
		e, err := parser.ParseExpr(part)
		if err != nil {
			t.Fatalf("index %q of %q: %v", part, s, err)
		}
		out = append(out, e)
	}
	return s[:open], out
}

func evalInt(t *testing.T, e ast.Expr, env map[string]int) int {
	t.Helper()
	switch e := e.(type) {
	case *ast.Ident:
		v, ok := env[e.Name]
		if !ok {
			t.Fatalf("unknown index variable %q", e.Name)
		}
		return v
	case *ast.BasicLit:
		v, err := strconv.Atoi(e.Value)
		if err != nil {
			t.Fatal(err)
		}
		return v
	case *ast.ParenExpr:
		return evalInt(t, e.X, env)
	case *ast.BinaryExpr:
		a, b := evalInt(t, e.X, env), evalInt(t, e.Y, env)
		switch e.Op {
		case token.ADD:
			return a + b
		case token.SUB:
			return a - b
		case token.MUL:
			return a * b
		}
	}
	t.Fatalf("cannot evaluate %T", e)
	return 0
}

func TestDeconvConventionFormulaIsWhatIsComputed(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	cases := []struct{ cin, cout, h, w, k, s, p int }{
		{2, 1, 2, 2, 3, 1, 0}, // Problem 1's shapes
		{2, 3, 3, 2, 3, 2, 1},
		{1, 2, 2, 3, 2, 2, 0},
		{3, 2, 3, 3, 3, 3, 2},
	}
	for _, kernel := range []string{"pytorch", "flipped"} {
		for _, c := range cases {
			t.Run(fmt.Sprintf("%s/%+v", kernel, c), func(t *testing.T) {
				x := make([]float64, c.cin*c.h*c.w)
				wt := make([]float64, c.cin*c.cout*c.k*c.k)
				for i := range x {
					x[i] = float64(rng.IntN(19)-9) / 10
				}
				for i := range wt {
					wt[i] = float64(rng.IntN(19)-9) / 10
				}
				oh, ow := (c.h-1)*c.s+c.k-2*c.p, (c.w-1)*c.s+c.k-2*c.p
				w2 := make([]float64, c.cout*oh*ow)
				for i := range w2 {
					w2[i] = 0.1
				}
				src := fmt.Sprintf(`conventions: {kernel: %s}
input: {name: x, value: %s}
layers:
  - {type: deconv, name: y, weight: w, stride: %d, padding: %d}
  - {type: flatten, name: Y}
  - {type: logistic, name: p, weight: w2}
params:
  w: %s
  w2: %s
`, kernel, nested(x, c.cin, c.h, c.w), c.s, c.p, nested(wt, c.cin, c.cout, c.k, c.k), nested(w2, len(w2)))
				s, err := spec.Parse("deconv.yaml", []byte(src))
				if err != nil {
					t.Fatal(err)
				}
				sol, err := solve.Solve(s, solve.Options{})
				if err != nil {
					t.Fatal(err)
				}
				f := formulaOf(t, solve.ConventionText(s))
				lhs, rhs, ok := strings.Cut(f, "+=")
				if !ok {
					t.Fatalf("formula %q has no +=", f)
				}
				outName, outIdx := indexExprs(t, lhs)
				xPart, wPart, _ := strings.Cut(rhs, "·")
				xName, xIdx := indexExprs(t, xPart)
				wName, wIdx := indexExprs(t, wPart)
				if outName != "out" || xName != "x" || wName != "w" {
					t.Fatalf("formula %q: names %s, %s, %s", f, outName, xName, wName)
				}
				want := make([]float64, c.cout*oh*ow)
				for ci := 1; ci <= c.cin; ci++ {
					for co := 1; co <= c.cout; co++ {
						for i := 1; i <= c.h; i++ {
							for j := 1; j <= c.w; j++ {
								for a := 1; a <= c.k; a++ {
									for b := 1; b <= c.k; b++ {
										env := map[string]int{"c": ci, "cp": co, "i": i, "j": j, "a": a, "b": b, "s": c.s, "p": c.p, "kh": c.k, "kw": c.k}
										o := make([]int, 3)
										for n := range o {
											o[n] = evalInt(t, outIdx[n], env)
										}
										if o[1] < 1 || o[1] > oh || o[2] < 1 || o[2] > ow {
											continue // cropped by the padding
										}
										xi := make([]int, 3)
										for n := range xi {
											xi[n] = evalInt(t, xIdx[n], env)
										}
										wi := make([]int, 4)
										for n := range wi {
											wi[n] = evalInt(t, wIdx[n], env)
										}
										xv := x[((xi[0]-1)*c.h+xi[1]-1)*c.w+xi[2]-1]
										wv := wt[(((wi[0]-1)*c.cout+wi[1]-1)*c.k+wi[2]-1)*c.k+wi[3]-1]
										want[((o[0]-1)*oh+o[1]-1)*ow+o[2]-1] += xv * wv
									}
								}
							}
						}
					}
				}
				var got []float64
				for _, n := range sol.Forward {
					if n.Name == "y" {
						got = n.Value.Data
					}
				}
				if len(got) != len(want) {
					t.Fatalf("y has %d values, the formula gives %d", len(got), len(want))
				}
				for k := range want {
					if math.Abs(got[k]-want[k]) > 1e-12 {
						t.Fatalf("%s: y element %d: solution %v, the printed formula %q gives %v", kernel, k, got[k], f, want[k])
					}
				}
			})
		}
	}
}

// nested writes data of the given shape as a YAML flow list.
func nested(data []float64, shape ...int) string {
	if len(shape) == 1 {
		parts := make([]string, shape[0])
		for i := range parts {
			parts[i] = strconv.FormatFloat(data[i], 'g', -1, 64)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	}
	n := len(data) / shape[0]
	parts := make([]string, shape[0])
	for i := range parts {
		parts[i] = nested(data[i*n:(i+1)*n], shape[1:]...)
	}
	return "[" + strings.Join(parts, ", ") + "]"
}
