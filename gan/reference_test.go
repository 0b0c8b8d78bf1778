package gan

import (
	"encoding/json"
	"math"
	"os"
	"strings"
	"testing"

	"github.com/backprop-dev/backprop/nn"
	"github.com/backprop-dev/backprop/safetensors"
	"github.com/backprop-dev/backprop/tensor"
)

// torchStep is one step's statistic recorded by bench/gan/reference_steps.py,
// with the tolerance the script measured for it.
type torchStep struct {
	DLoss float64            `json:"d_loss"`
	GLoss float64            `json:"g_loss"`
	DX    float64            `json:"d_x"`
	DGZ   float64            `json:"d_g_z"`
	Tol   map[string]float64 `json:"tol"`
}

// torchReference is what bench/gan/reference_steps.py recorded from a
// float64 PyTorch run: three training steps of the reference models from
// fully determined weights, batches and noise, each statistic with a
// tolerance set from the spread of float32 runs under one-rounding
// perturbations of the starting weights.
type torchReference struct {
	Versions map[string]any `json:"versions"`
	Adam     struct {
		LR  float64 `json:"lr"`
		Eps float64 `json:"eps"`
	} `json:"adam"`
	Steps []torchStep `json:"steps"`
	State map[string]struct {
		Sum    float64 `json:"sum"`
		AbsSum float64 `json:"abs_sum"`
		Tol    float64 `json:"tol"`
	} `json:"state"`
}

// step1Tol is the element-by-element tolerance of step 1, relative to each
// tensor's largest magnitude: a float32 PyTorch run lies within 2e-6 of the
// float64 reference (the script records the figure per tensor).
const step1Tol = 1e-5

// hash01 is the script's deterministic pseudo-random value in [−1, 1):
// 2·frac(43758.5453·sin(x)) − 1. Unlike a plain sinusoid it gives inputs
// without structure, so BatchNorm over a batch of 8 sees no near-constant
// feature that would amplify rounding.
func hash01(x float64) float64 {
	v := math.Sin(x) * 43758.5453
	return 2*(v-math.Floor(v)) - 1
}

// referenceInit sets every parameter (G's, then D's, numbered k = 0, 1, …)
// to base + 0.02·hash01(12.9898·i + 78.233·k), base 1 for BatchNorm γ, and
// returns the starting values for the step-1 update check.
func referenceInit(g, d *nn.Sequential[float32]) map[string][]float32 {
	start := map[string][]float32{}
	k := 0
	for mi, m := range []*nn.Sequential[float32]{g, d} {
		for _, p := range m.Parameters() {
			base := 0.0
			if strings.HasSuffix(p.Name, "weight") && p.Var.Value.Rank() == 1 {
				base = 1 // BatchNorm γ
			}
			data := p.Var.Value.Data()
			for i := range data {
				data[i] = float32(base + 0.02*hash01(12.9898*float64(i)+78.233*float64(k)))
			}
			start[[]string{"G.", "D."}[mi]+p.Name] = append([]float32(nil), data...)
			k++
		}
	}
	return start
}

// referenceBatch is step s's real batch hash01(0.37·(784n + 28h + w) + 5.1s)
// and noise 1.5·hash01(0.91·(100n + j) + 3.7s).
func referenceBatch(s, n int) (real, z *tensor.Tensor[float32]) {
	real = tensor.New[float32](n, 1, 28, 28)
	for b := range n {
		for h := range 28 {
			for w := range 28 {
				real.Set(float32(hash01(0.37*float64(b*784+h*28+w)+5.1*float64(s))), b, 0, h, w)
			}
		}
	}
	z = tensor.New[float32](n, ZDim)
	for b := range n {
		for j := range ZDim {
			z.Set(float32(1.5*hash01(0.91*float64(b*ZDim+j)+3.7*float64(s))), b, j)
		}
	}
	return real, z
}

// compareElements checks got against want element by element within
// tol·max|want| and reports the worst element.
func compareElements(t *testing.T, what string, got, want []float32, tol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d elements, PyTorch %d", what, len(got), len(want))
		return
	}
	scale := 0.0
	for _, v := range want {
		scale = math.Max(scale, math.Abs(float64(v)))
	}
	worst, at := 0.0, -1
	for i := range got {
		if d := math.Abs(float64(got[i]) - float64(want[i])); d > worst {
			worst, at = d, i
		}
	}
	if worst > tol*scale {
		t.Errorf("%s: element %d = %.8g, PyTorch %.8g: off by %.3g of the tensor's largest value %.4g (tolerance %g)",
			what, at, got[at], want[at], worst/scale, scale, tol)
	}
}

// TestMatchesPyTorchSteps runs the same three training steps as the
// PyTorch script. Step 1 is compared element by element: the gradient of
// every parameter (which checks both models' forward and backward passes
// and the losses), the BatchNorm running statistics, and every parameter
// after Adam's first step, which must be p − lr·g/(|g| + ε) (Adam's
// bias-corrected first step, m̂ = g and v̂ = g²) with PyTorch's g. Steps 2
// and 3 compare the losses and D's outputs, and the state afterwards is
// compared through per-tensor sums, with the tolerances the script
// measured.
func TestMatchesPyTorchSteps(t *testing.T) {
	raw, err := os.ReadFile("testdata/torch_reference_steps.json")
	if err != nil {
		t.Fatal(err)
	}
	var ref torchReference
	if err := json.Unmarshal(raw, &ref); err != nil {
		t.Fatalf("testdata/torch_reference_steps.json: %v", err)
	}
	if len(ref.Steps) != 3 || ref.Adam.LR != LearningRate || ref.Adam.Eps != 1e-8 {
		t.Fatalf("testdata/torch_reference_steps.json: %d steps, Adam lr %g eps %g; want 3 steps, lr %g, eps 1e-8",
			len(ref.Steps), ref.Adam.LR, ref.Adam.Eps, LearningRate)
	}
	step1, err := safetensors.Read("testdata/torch_reference_step1.safetensors")
	if err != nil {
		t.Fatal(err)
	}
	g, d := NewGenerator(nil), NewDiscriminator(nil)
	start := referenceInit(g, d)
	const n = 8
	tr, err := newTrainer(Config{Data: "formula", Batch: n}, tensor.New[float32](10*n, 1, 28, 28), nil, g, d)
	if err != nil {
		t.Fatal(err)
	}
	models := map[string]*nn.Sequential[float32]{"G.": g, "D.": d}
	for s, want := range ref.Steps {
		real, z := referenceBatch(s, n)
		got, err := tr.step(real, z, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			name, key string
			got, want float64
		}{{"D loss", "d_loss", got.DLoss, want.DLoss}, {"G loss", "g_loss", got.GLoss, want.GLoss},
			{"D(x)", "d_x", got.DX, want.DX}, {"D(G(z))", "d_g_z", got.DGZ, want.DGZ}} {
			tol, ok := want.Tol[c.key]
			if !ok || !(tol > 0) {
				t.Fatalf("testdata/torch_reference_steps.json: step %d has no tolerance for %s", s+1, c.key)
			}
			if math.Abs(c.got-c.want) > tol {
				t.Errorf("step %d: %s = %.9g, PyTorch %.9g (tolerance %.2g)", s+1, c.name, c.got, c.want, tol)
			}
		}
		if s > 0 {
			continue
		}
		compared := 0
		for prefix, m := range models {
			for _, p := range m.Parameters() {
				name := prefix + p.Name
				want, err := step1.F32("grad." + name)
				if err != nil {
					t.Fatal(err)
				}
				if p.Var.Grad == nil {
					t.Errorf("%s: no gradient after step 1", name)
					continue
				}
				compareElements(t, "step 1 ∂loss/∂"+name, p.Var.Grad.Data(), want.Data(), step1Tol)
				// Adam's first step moves each weight by lr·g/(|g| + ε):
				// ±lr unless g is within rounding of zero, where the sign
				// may go either way, so such elements may differ by 2·lr.
				wantG, scale := want.Data(), 0.0
				for _, v := range wantG {
					scale = math.Max(scale, math.Abs(float64(v)))
				}
				p0, p1 := start[name], p.Var.Value.Data()
				for i := range p1 {
					gi := float64(wantG[i])
					exp := float64(p0[i]) - ref.Adam.LR*gi/(math.Abs(gi)+ref.Adam.Eps)
					tol := 1e-6 * math.Max(1, math.Abs(exp))
					if math.Abs(gi) <= step1Tol*scale {
						tol += 2 * ref.Adam.LR
					}
					if diff := math.Abs(float64(p1[i]) - exp); diff > tol {
						t.Errorf("%s[%d] after step 1 = %.8g, want %.8g − lr·sign(%.4g) = %.8g", name, i, p1[i], p0[i], gi, exp)
						break
					}
				}
				compared++
			}
			for _, e := range m.StateDict() {
				if !strings.Contains(e.Name, "running") {
					continue
				}
				want, err := step1.F32("state." + prefix + e.Name)
				if err != nil {
					t.Fatal(err)
				}
				compareElements(t, "step 1 "+prefix+e.Name, e.Tensor.Data(), want.Data(), step1Tol)
				compared++
			}
		}
		if compared != step1.Len() {
			t.Errorf("compared %d step-1 tensors, testdata/torch_reference_step1.safetensors has %d", compared, step1.Len())
		}
	}
	seen := 0
	for prefix, m := range models {
		for _, e := range m.StateDict() {
			want, ok := ref.State[prefix+e.Name]
			if !ok {
				t.Errorf("PyTorch has no %s%s", prefix, e.Name)
				continue
			}
			seen++
			var sum, abs float64
			for _, v := range e.Tensor.Data() {
				sum += float64(v)
				abs += math.Abs(float64(v))
			}
			if math.Abs(sum-want.Sum) > want.Tol || math.Abs(abs-want.AbsSum) > want.Tol {
				t.Errorf("%s%s after 3 steps: sum %.9g, |sum| %.9g; PyTorch %.9g, %.9g (tolerance %.2g)",
					prefix, e.Name, sum, abs, want.Sum, want.AbsSum, want.Tol)
			}
		}
	}
	if seen != len(ref.State) {
		t.Errorf("compared %d entries, PyTorch recorded %d", seen, len(ref.State))
	}
}
