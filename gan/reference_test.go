package gan

import (
	"encoding/json"
	"math"
	"os"
	"strings"
	"testing"

	"github.com/backprop-dev/backprop/nn"
	"github.com/backprop-dev/backprop/tensor"
)

// torchReference is what bench/gan/reference_steps.py recorded from
// PyTorch: three training steps of the reference models from fully
// determined weights, batches and noise.
type torchReference struct {
	Torch string `json:"torch"`
	Steps []struct {
		DLoss float64 `json:"d_loss"`
		GLoss float64 `json:"g_loss"`
		DX    float64 `json:"d_x"`
		DGZ   float64 `json:"d_g_z"`
	} `json:"steps"`
	State map[string]struct {
		Sum    float64 `json:"sum"`
		AbsSum float64 `json:"abs_sum"`
	} `json:"state"`
}

// TestMatchesPyTorchSteps runs the same three training steps as the
// PyTorch script and compares the losses, D's outputs and every
// state-dict entry afterwards (models and BatchNorm running statistics),
// which checks the models, the step's order of operations, the losses
// and Adam together against PyTorch.
func TestMatchesPyTorchSteps(t *testing.T) {
	raw, err := os.ReadFile("testdata/torch_reference_steps.json")
	if err != nil {
		t.Fatal(err)
	}
	var ref torchReference
	if err := json.Unmarshal(raw, &ref); err != nil {
		t.Fatal(err)
	}
	g, d := NewGenerator(nil), NewDiscriminator(nil)
	k := 0
	for _, m := range []*nn.Sequential[float32]{g, d} {
		for _, p := range m.Parameters() {
			base := 0.0
			if strings.HasSuffix(p.Name, "weight") && p.Var.Value.Rank() == 1 {
				base = 1 // BatchNorm γ
			}
			for i := range p.Var.Value.Data() {
				p.Var.Value.Data()[i] = float32(base + 0.02*math.Sin(0.1*float64(i)+float64(k)))
			}
			k++
		}
	}
	const n = 8
	tr, err := newTrainer(Config{Data: "formula", Batch: n}, tensor.New[float32](10*n, 1, 28, 28), g, d)
	if err != nil {
		t.Fatal(err)
	}
	for s, want := range ref.Steps {
		real := tensor.New[float32](n, 1, 28, 28)
		for b := range n {
			for h := range 28 {
				for w := range 28 {
					real.Set(float32(math.Sin(0.3*float64(b)+0.2*float64(h)+0.1*float64(w)+float64(s))), b, 0, h, w)
				}
			}
		}
		z := tensor.New[float32](n, ZDim)
		for b := range n {
			for j := range ZDim {
				z.Set(float32(1.5*math.Sin(0.7*float64(b)+1.3*float64(j)+0.5*float64(s))), b, j)
			}
		}
		got, err := tr.step(real, z)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			name      string
			got, want float64
		}{{"D loss", got.DLoss, want.DLoss}, {"G loss", got.GLoss, want.GLoss}, {"D(x)", got.DX, want.DX}, {"D(G(z))", got.DGZ, want.DGZ}} {
			if math.Abs(c.got-c.want) > 1e-5*math.Max(1, math.Abs(c.want)) {
				t.Errorf("step %d: %s = %.7g, PyTorch %.7g", s+1, c.name, c.got, c.want)
			}
		}
	}
	seen := 0
	for prefix, m := range map[string]*nn.Sequential[float32]{"G.": g, "D.": d} {
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
			// Adam's first steps move every weight by about ±lr, so a
			// gradient within rounding of zero may go either way: allow a
			// few such elements per tensor.
			tol := 1e-5*want.AbsSum + 4*3*LearningRate
			if math.Abs(sum-want.Sum) > tol || math.Abs(abs-want.AbsSum) > tol {
				t.Errorf("%s%s after 3 steps: sum %.8g, |sum| %.8g; PyTorch %.8g, %.8g", prefix, e.Name, sum, abs, want.Sum, want.AbsSum)
			}
		}
	}
	if seen != len(ref.State) {
		t.Errorf("compared %d entries, PyTorch recorded %d", seen, len(ref.State))
	}
}
