package grade

// The RNN over three time steps and the attention head: their variants
// grade right, and each scripted mistake is named. A student's numbers
// are computed here by a reference implementation written out by hand
// (plain loops over float64, the formulas of the sheets), independent of
// the engine; it makes the mistake itself: a slip in h_1 carried forward,
// backpropagation through time truncated to one step, the scores without
// their 1/√d_k.

import (
	"math"
	"strings"
	"testing"

	"github.com/backprop-dev/backprop/spec"
)

// parsedKey is the network of a key.
func parsedKey(t *testing.T, k *Key) *spec.Spec {
	t.Helper()
	s, err := spec.Parse("key", []byte(k.Spec))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// matrix reads a parameter or input of s as rows.
func matrix(t *testing.T, s *spec.Spec, name string) [][]float64 {
	t.Helper()
	var data []float64
	var shape []int
	if p := s.Params[name]; p != nil {
		data, shape = p.Tensor.Data(), p.Tensor.Shape()
	} else if v, ok := s.InputValue(name); ok {
		data, shape = v.Data(), v.Shape()
	} else {
		t.Fatalf("no %s in the key's spec", name)
	}
	cols := 1
	if len(shape) == 2 {
		cols = shape[1]
	}
	if len(shape) == 1 {
		cols = shape[0]
	}
	var out [][]float64
	for i := 0; i < len(data); i += cols {
		out = append(out, append([]float64(nil), data[i:i+cols]...))
	}
	return out
}

func flatRows(m [][]float64) []float64 {
	var out []float64
	for _, r := range m {
		out = append(out, r...)
	}
	return out
}

func zeros(r, c int) [][]float64 {
	out := make([][]float64, r)
	for i := range out {
		out[i] = make([]float64, c)
	}
	return out
}

// rnnStudent is what a student computes for an RNN variant by hand:
// u_t = W_xh x_t + W_hh h_{t−1} + b_h, h_t = tanh(u_t) from h_0 = 0,
// y_t = W_hy h_t + b_y, E = ½Σ(y_t − t_t)², and backpropagation through
// time. slip, when set, changes h_1 after it is computed (the student
// carries the changed value forward); truncated leaves out the gradient
// from step t+1.
func rnnStudent(t *testing.T, s *spec.Spec, slip float64, truncated bool) map[string]map[string]any {
	x, tg := matrix(t, s, "x"), matrix(t, s, "t")
	wxh, whh, bh := matrix(t, s, "W_xh"), matrix(t, s, "W_hh"), matrix(t, s, "b_h")[0]
	why, by := matrix(t, s, "W_hy")[0], matrix(t, s, "b_y")[0][0]
	T, H := len(x), len(whh)
	hs := [][]float64{make([]float64, H)}
	y := make([]float64, T)
	E := 0.0
	for step := 1; step <= T; step++ {
		h := make([]float64, H)
		for i := range H {
			u := bh[i]
			for j := range x[step-1] {
				u += wxh[i][j] * x[step-1][j]
			}
			for j := range H {
				u += whh[i][j] * hs[step-1][j]
			}
			h[i] = math.Tanh(u)
		}
		if step == 1 {
			h[0] += slip
		}
		hs = append(hs, h)
		y[step-1] = by
		for i := range H {
			y[step-1] += why[i] * h[i]
		}
		E += 0.5 * (y[step-1] - tg[step-1][0]) * (y[step-1] - tg[step-1][0])
	}
	dwhy, dby := make([]float64, H), 0.0
	dwxh, dwhh, dbh := zeros(H, len(x[0])), zeros(H, H), make([]float64, H)
	next := make([]float64, H) // W_hhᵀ·∂E/∂u_{t+1}
	for step := T; step >= 1; step-- {
		e := y[step-1] - tg[step-1][0]
		dby += e
		du := make([]float64, H)
		for i := range H {
			dwhy[i] += e * hs[step][i]
			dh := why[i] * e
			if !truncated {
				dh += next[i]
			}
			du[i] = dh * (1 - hs[step][i]*hs[step][i])
		}
		for i := range H {
			dbh[i] += du[i]
			for j := range x[0] {
				dwxh[i][j] += du[i] * x[step-1][j]
			}
			for j := range H {
				dwhh[i][j] += du[i] * hs[step-1][j]
			}
		}
		next = make([]float64, H)
		for j := range H {
			for i := range H {
				next[j] += whh[i][j] * du[i]
			}
		}
	}
	fwd := map[string]any{"y": y, "E": E}
	for step := 1; step <= T; step++ {
		fwd["h_"+string(rune('0'+step))] = hs[step]
	}
	return map[string]map[string]any{
		"forward":   fwd,
		"gradients": {"W_hy": dwhy, "b_y": []float64{dby}, "W_hh": flatRows(dwhh), "W_xh": flatRows(dwxh), "b_h": dbh},
	}
}

// attentionStudent is what a student computes for an attention variant:
// Q = x Wqᵀ, K = x Wkᵀ, V = x Wvᵀ, S = c·Q Kᵀ, A = softmax(S) by rows,
// O = A V, y = O Woᵀ, L = ½Σ(y − t)², and the gradients, with the softmax's
// Jacobian (diag(a) − a aᵀ) per row. c is 1/√d_k, or 1 for a student who
// forgets the scale (in the forward pass and the backward pass alike).
func attentionStudent(t *testing.T, s *spec.Spec, unscaled bool) map[string]map[string]any {
	x, tg := matrix(t, s, "x"), matrix(t, s, "t")
	wq, wk, wv, wo := matrix(t, s, "Wq"), matrix(t, s, "Wk"), matrix(t, s, "Wv"), matrix(t, s, "Wo")
	T, dk, dm := len(x), len(wq), len(x[0])
	c := 1 / math.Sqrt(float64(dk))
	if unscaled {
		c = 1
	}
	// a·bᵀ for rows of a and rows of b
	abT := func(a, b [][]float64) [][]float64 {
		out := zeros(len(a), len(b))
		for i := range a {
			for j := range b {
				for k := range a[i] {
					out[i][j] += a[i][k] * b[j][k]
				}
			}
		}
		return out
	}
	// aᵀ·b
	aTb := func(a, b [][]float64) [][]float64 {
		out := zeros(len(a[0]), len(b[0]))
		for r := range a {
			for i := range a[r] {
				for j := range b[r] {
					out[i][j] += a[r][i] * b[r][j]
				}
			}
		}
		return out
	}
	// a·b
	ab := func(a, b [][]float64) [][]float64 {
		out := zeros(len(a), len(b[0]))
		for i := range a {
			for k := range b {
				for j := range b[k] {
					out[i][j] += a[i][k] * b[k][j]
				}
			}
		}
		return out
	}
	Q, K, V := abT(x, wq), abT(x, wk), abT(x, wv)
	S := abT(Q, K)
	A := zeros(T, T)
	for i := range T {
		S[i] = append([]float64(nil), S[i]...)
		m, z := math.Inf(-1), 0.0
		for j := range T {
			S[i][j] *= c
			m = math.Max(m, S[i][j])
		}
		for j := range T {
			A[i][j] = math.Exp(S[i][j] - m)
			z += A[i][j]
		}
		for j := range T {
			A[i][j] /= z
		}
	}
	O := ab(A, V)
	y := abT(O, wo)
	L := 0.0
	dy := zeros(T, dm)
	for i := range T {
		for j := range dm {
			dy[i][j] = y[i][j] - tg[i][j]
			L += 0.5 * dy[i][j] * dy[i][j]
		}
	}
	dWo := aTb(dy, O)
	dO := ab(dy, wo)
	dA := abT(dO, V)
	dV := aTb(A, dO)
	dQK := zeros(T, T)
	for i := range T {
		dot := 0.0
		for j := range T {
			dot += A[i][j] * dA[i][j]
		}
		for j := range T {
			dQK[i][j] = c * A[i][j] * (dA[i][j] - dot)
		}
	}
	dQ := ab(dQK, K)
	dK := aTb(dQK, Q)
	return map[string]map[string]any{
		"forward": {"Q": flatRows(Q), "K": flatRows(K), "V": flatRows(V), "S": flatRows(S), "A": flatRows(A), "O": flatRows(O), "y": flatRows(y), "L": L},
		"gradients": {
			"Wo": flatRows(dWo), "Wv": flatRows(aTb(dV, x)), "Wq": flatRows(aTb(dQ, x)), "Wk": flatRows(aTb(dK, x)),
		},
	}
}

// TestSequenceVariantsGradeRight: the reference implementation's numbers
// are the key's (the key checked against a computation by hand), and
// they grade right with no mistake named.
func TestSequenceVariantsGradeRight(t *testing.T) {
	for _, problem := range []string{"rnn", "attention"} {
		k, _ := setup(t, problem)
		s := parsedKey(t, k)
		var doc map[string]map[string]any
		if problem == "rnn" {
			doc = rnnStudent(t, s, 0, false)
		} else {
			doc = attentionStudent(t, s, false)
		}
		r := Grade(k, answers(t, doc), Options{Rel: 1e-9})
		if !r.OK() || len(r.Mistakes) != 0 || r.Unanswered != 0 {
			t.Errorf("%s: the numbers computed by hand: ok %v, wrong %+v, problems %v, mistakes %+v, %d unanswered", problem, r.OK(), r.Wrong, r.Problems, r.Mistakes, r.Unanswered)
		}
		if want := map[string]int{"rnn": 6 + 3 + 1 + 2 + 1 + 4 + 4 + 2, "attention": 6*3 + 9*2 + 6*2 + 1 + 4*4}[problem]; r.Checked != want {
			t.Errorf("%s: %d numbers checked, want %d", problem, r.Checked, want)
		}
	}
}

// TestRNNSlipCarriedForward: a slip in h_1[1] that the student carries
// through h_2, h_3, y, E and every gradient consistently is one wrong
// number; everything after it earns follow-through, and no global mistake
// is named.
func TestRNNSlipCarriedForward(t *testing.T) {
	k, _ := setup(t, "rnn")
	r := Grade(k, answers(t, rnnStudent(t, parsedKey(t, k), 0.1, false)), Options{})
	if len(r.Wrong) != 1 || r.Wrong[0].Label != "h_1[1]" {
		t.Fatalf("wrong %+v, want only h_1[1]", r.Wrong)
	}
	if len(r.FollowThrough) < 10 {
		t.Errorf("only %d follow-through numbers: %+v", len(r.FollowThrough), r.FollowThrough)
	}
	ft := map[string]bool{}
	for _, w := range r.FollowThrough {
		ft[tensorOf(w.Label)] = true
	}
	for _, n := range []string{"h_2", "h_3", "y", "E", "∂J/∂W_hh", "∂J/∂W_xh", "∂J/∂b_h", "∂J/∂W_hy"} {
		if !ft[n] {
			t.Errorf("%s earns no follow-through (follow-through: %v)", n, ft)
		}
	}
	if r.Cause != "" || len(r.Mistakes) != 0 {
		t.Errorf("a slip named as a global mistake: cause %q, mistakes %+v", r.Cause, r.Mistakes)
	}
	if r.First == nil || r.First.Target != "h_1" || r.First.Pass != "forward" {
		t.Errorf("first wrong step %+v, want h_1's", r.First)
	}
	// the credit: every asked number but one
	for _, task := range r.Tasks {
		if task.Credit != task.Total-map[string]int{"forward": 1, "gradients": 0}[task.Name] {
			t.Errorf("%s: credit %d of %d", task.Name, task.Credit, task.Total)
		}
	}
}

// TestRNNTruncatedBPTT: gradients computed with ∂E/∂h_t = W_hyᵀ(y_t − t_t)
// only, the gradient from step t+1 forgotten: the shared weights'
// gradients are wrong, the read-out's right, and the cause is named.
func TestRNNTruncatedBPTT(t *testing.T) {
	k, _ := setup(t, "rnn")
	r := Grade(k, answers(t, rnnStudent(t, parsedKey(t, k), 0, true)), Options{})
	checkCause(t, r, MistakeTruncatedBPTT, "backpropagation through time truncated to one step")
	bad := map[string]bool{}
	for _, w := range r.Wrong {
		bad[tensorOf(w.Label)] = true
	}
	for _, n := range []string{"∂J/∂W_hh", "∂J/∂W_xh", "∂J/∂b_h"} {
		if !bad[n] {
			t.Errorf("%s is not marked wrong: %v", n, bad)
		}
	}
	if bad["∂J/∂W_hy"] || bad["∂J/∂b_y"] || bad["h_1"] || bad["E"] {
		t.Errorf("a number the truncation does not change is marked wrong: %v", bad)
	}
	// the same student with a forward slip too: the slip is its own
	// mistake, the truncation still named for the gradients
	r = Grade(k, answers(t, rnnStudent(t, parsedKey(t, k), 0.1, true)), Options{})
	found := false
	for _, m := range r.Mistakes {
		found = found || m.Kind == MistakeTruncatedBPTT
	}
	if !found || r.Cause != "" {
		t.Errorf("slip and truncation: cause %q, mistakes %+v", r.Cause, r.Mistakes)
	}
}

// TestAttentionMissingScale: a student who forgets 1/√d_k computes S =
// QKᵀ and carries it through; S and the gradients through the scaling
// (Wq, Wk) are wrong, A, O, y, L, ∂J/∂Wo and ∂J/∂Wv follow from S (method
// credit), and the cause names the forgotten scale.
func TestAttentionMissingScale(t *testing.T) {
	k, _ := setup(t, "attention")
	r := Grade(k, answers(t, attentionStudent(t, parsedKey(t, k), true)), Options{})
	if !strings.Contains(r.Cause, "the scores were not scaled") || !strings.Contains(r.Cause, "√2") {
		t.Errorf("cause %q (mistakes %+v)", r.Cause, r.Mistakes)
	}
	bad, ft := map[string]bool{}, map[string]bool{}
	for _, w := range r.Wrong {
		bad[tensorOf(w.Label)] = true
		if w.Mistake != MistakeMissingScale {
			t.Errorf("%s wrong without the mistake named", w.Label)
		}
	}
	for _, w := range r.FollowThrough {
		ft[tensorOf(w.Label)] = true
	}
	for _, n := range []string{"S", "∂J/∂Wq", "∂J/∂Wk"} {
		if !bad[n] {
			t.Errorf("%s not marked wrong (wrong: %v)", n, bad)
		}
	}
	for _, n := range []string{"A", "O", "y", "L", "∂J/∂Wo", "∂J/∂Wv"} {
		if !ft[n] {
			t.Errorf("%s earns no follow-through (follow-through: %v, wrong: %v)", n, ft, bad)
		}
	}
	if bad["Q"] || bad["K"] || bad["V"] {
		t.Errorf("the projections are marked wrong: %v", bad)
	}
}
