package optim

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/backprop-dev/backprop/autograd"
	"github.com/backprop-dev/backprop/internal/vec"
	"github.com/backprop-dev/backprop/nn"
	"github.com/backprop-dev/backprop/tensor"
)

// loopAdam is the float32 Adam update as Step's loop computes it for float64
// (every product rounded, as Go compiles it on amd64).
func loopAdam(theta, m, v, g []float32, step int64, opt AdamOptions) {
	b1, b2 := float32(opt.Beta1), float32(opt.Beta2)
	c1, c2 := float32(1-opt.Beta1), float32(1-opt.Beta2)
	wd, eps := float32(opt.WeightDecay), float32(opt.Eps)
	t := float64(step)
	stepSize := float32(opt.LR / (1 - math.Pow(opt.Beta1, t)))
	bc2Sqrt := float32(math.Sqrt(1 - math.Pow(opt.Beta2, t)))
	for j, d := range g {
		if wd != 0 {
			d += float32(wd * theta[j])
		}
		m[j] = float32(m[j]*b1) + float32(c1*d)
		v[j] = float32(v[j]*b2) + float32(float32(c2*d)*d)
		denom := float32(math.Sqrt(float64(v[j])))/bc2Sqrt + eps
		theta[j] -= float32(stepSize*m[j]) / denom
	}
}

// loopSGD is the float32 SGD update as Step's loops compute it.
func loopSGD(theta, b, g []float32, first bool, opt SGDOptions) {
	lr, wd, mu := float32(opt.LR), float32(opt.WeightDecay), float32(opt.Momentum)
	damp := float32(1 - opt.Dampening)
	for j, d := range g {
		if wd != 0 {
			d += float32(wd * theta[j])
		}
		if opt.Momentum != 0 {
			if first {
				b[j] = d
			} else {
				b[j] = float32(b[j]*mu) + float32(damp*d)
			}
			if opt.Nesterov {
				d += float32(mu * b[j])
			} else {
				d = b[j]
			}
		}
		theta[j] -= float32(lr * d)
	}
}

// vecProblem is a float32 parameter list large enough for Step to split it
// across goroutines, with one parameter that has no gradient.
func vecProblem(seed uint64) []nn.Parameter[float32] {
	r := rand.New(rand.NewPCG(seed, 7))
	var ps []nn.Parameter[float32]
	for i, size := range []int{vec.ParallelMin + 3, 5, 1000, 0, 17, 40000} {
		v := autograd.Leaf(fmt.Sprint(i), tensor.New[float32](size), true)
		if i != 4 {
			v.Grad = tensor.New[float32](size)
		}
		for j := range v.Value.Data() {
			v.Value.Data()[j] = float32(r.NormFloat64())
		}
		ps = append(ps, nn.Parameter[float32]{Name: fmt.Sprint("p", i), Var: v})
	}
	return ps
}

// newGrads fills the gradients with fresh values, bounded away from zero.
func newGrads(ps []nn.Parameter[float32], r *rand.Rand) {
	for _, p := range ps {
		if p.Var.Grad == nil {
			continue
		}
		for j := range p.Var.Grad.Data() {
			x := r.NormFloat64()
			p.Var.Grad.Data()[j] = float32(math.Copysign(0.01+math.Abs(x), x))
		}
	}
}

func cloneData(ps []nn.Parameter[float32]) [][]float32 {
	out := make([][]float32, len(ps))
	for i, p := range ps {
		out[i] = append([]float32(nil), p.Var.Value.Data()...)
	}
	return out
}

func checkBits(t *testing.T, step int, ps []nn.Parameter[float32], want [][]float32) {
	t.Helper()
	for i, p := range ps {
		for j, v := range p.Var.Value.Data() {
			if math.Float32bits(v) != math.Float32bits(want[i][j]) {
				t.Fatalf("step %d: %s[%d] = %v, loop %v", step, p.Name, j, v, want[i][j])
			}
		}
	}
}

// TestFloat32StepBitExact runs float32 Adam and SGD Steps (the vec kernels,
// split across goroutines) for several steps and configurations against
// the scalar loops, bit for bit.
func TestFloat32StepBitExact(t *testing.T) {
	if runtime.GOMAXPROCS(0) < 2 {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(2))
	}
	adams := []AdamOptions{DefaultAdamOptions(), {LR: 2e-4, Beta1: 0.5, Beta2: 0.999, Eps: 1e-8, WeightDecay: 1e-2}}
	for ci, ao := range adams {
		t.Run(fmt.Sprint("adam", ci), func(t *testing.T) {
			ps, r := vecProblem(uint64(ci)), rand.New(rand.NewPCG(9, uint64(ci)))
			opt, err := NewAdam(ps, ao)
			if err != nil {
				t.Fatal(err)
			}
			want := cloneData(ps)
			m, v := make([][]float32, len(ps)), make([][]float32, len(ps))
			for i := range ps {
				m[i], v[i] = make([]float32, len(want[i])), make([]float32, len(want[i]))
			}
			for step := int64(1); step <= 4; step++ {
				newGrads(ps, r)
				for i, p := range ps {
					if p.Var.Grad != nil {
						loopAdam(want[i], m[i], v[i], p.Var.Grad.Data(), step, ao)
					}
				}
				if err := opt.Step(); err != nil {
					t.Fatal(err)
				}
				checkBits(t, int(step), ps, want)
			}
		})
	}
	sgds := []SGDOptions{
		{LR: 0.1},
		{LR: 0.1, WeightDecay: 1e-3},
		{LR: 0.05, Momentum: 0.9, Dampening: 0.1},
		{LR: 0.05, Momentum: 0.9, WeightDecay: 1e-4, Nesterov: true},
	}
	for ci, so := range sgds {
		t.Run(fmt.Sprint("sgd", ci), func(t *testing.T) {
			ps, r := vecProblem(uint64(ci)), rand.New(rand.NewPCG(11, uint64(ci)))
			opt, err := NewSGD(ps, so)
			if err != nil {
				t.Fatal(err)
			}
			want := cloneData(ps)
			bufs := make([][]float32, len(ps))
			for i := range ps {
				bufs[i] = make([]float32, len(want[i]))
			}
			for step := 1; step <= 4; step++ {
				newGrads(ps, r)
				for i, p := range ps {
					if p.Var.Grad != nil {
						loopSGD(want[i], bufs[i], p.Var.Grad.Data(), step == 1, so)
					}
				}
				if err := opt.Step(); err != nil {
					t.Fatal(err)
				}
				checkBits(t, step, ps, want)
			}
		})
	}
}

// TestVecStepAllocations checks that float32 Steps on the vec path,
// serial and split across goroutines, allocate nothing after the first.
func TestVecStepAllocations(t *testing.T) {
	if runtime.GOMAXPROCS(0) < 2 {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(2))
	}
	for _, ps := range [][]nn.Parameter[float32]{benchProblem(4096), vecProblem(1)} {
		adam, err := NewAdam(ps, DefaultAdamOptions())
		if err != nil {
			t.Fatal(err)
		}
		sgd, err := NewSGD(ps, SGDOptions{LR: 0.01, Momentum: 0.9})
		if err != nil {
			t.Fatal(err)
		}
		for name, opt := range map[string]Optimizer[float32]{"Adam": adam, "SGD": sgd} {
			if err := opt.Step(); err != nil {
				t.Fatal(err)
			}
			if a := testing.AllocsPerRun(20, func() { _ = opt.Step() }); a != 0 {
				t.Errorf("%s over %d parameters: %v allocations per Step", name, len(ps), a)
			}
		}
	}
}

// BenchmarkAdam measures one float32 Adam Step over 400K parameters (one
// tensor) with normal moments, and with subnormal ones: a gradient that is
// zero for good (dead units, always-black pixels) decays m into the
// subnormal range, which costs the scalar loop a microcode assist per
// element. MB/s counts the memory traffic of the update: θ, m and v read
// and written, the gradient read, 28 bytes per element.
func BenchmarkAdam(b *testing.B) {
	const n = 400_000
	for _, state := range []string{"normal", "subnormal"} {
		b.Run(state, func(b *testing.B) {
			r := rand.New(rand.NewPCG(1, 2))
			v := autograd.Leaf("w", tensor.New[float32](n), true)
			v.Grad = tensor.New[float32](n)
			for j := range n {
				v.Value.Data()[j] = float32(r.NormFloat64())
				v.Grad.Data()[j] = float32(r.NormFloat64())
			}
			opt, err := NewAdam([]nn.Parameter[float32]{{Name: "w", Var: v}}, DefaultAdamOptions())
			if err != nil {
				b.Fatal(err)
			}
			_ = opt.Step()
			if state == "subnormal" {
				// Moments deep in the subnormal range and a zero
				// gradient, as for a unit that has been dead for ~900
				// steps; β1 = β2 = 0.99999 keeps them there for the
				// whole run (β only changes values, not the cost).
				st := opt.state[0]
				for j := range n {
					st.expAvg.Data()[j] = 1e-39 * float32(1+j%7)
					st.expAvgSq.Data()[j] = 1e-39 * float32(1+j%5)
				}
				v.Grad.Zero()
				opt.Options.Beta1, opt.Options.Beta2 = 0.99999, 0.99999
			}
			b.SetBytes(28 * n)
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				_ = opt.Step()
			}
		})
	}
}
