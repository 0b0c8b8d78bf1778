package optim

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"strings"
	"testing"

	"github.com/backprop-dev/backprop/autograd"
	"github.com/backprop-dev/backprop/nn"
	"github.com/backprop-dev/backprop/ops"
	"github.com/backprop-dev/backprop/tensor"
)

type refTensor struct {
	Shape []int     `json:"shape"`
	Data  []float64 `json:"data"`
}

// ordered is a JSON object of tensors with its key order kept.
type ordered struct {
	Names   []string
	Tensors []refTensor
}

func (o *ordered) UnmarshalJSON(b []byte) error {
	dec := json.NewDecoder(strings.NewReader(string(b)))
	if _, err := dec.Token(); err != nil {
		return err
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		var t refTensor
		if err := dec.Decode(&t); err != nil {
			return err
		}
		o.Names = append(o.Names, tok.(string))
		o.Tensors = append(o.Tensors, t)
	}
	_, err := dec.Token()
	return err
}

func (o ordered) get(name string) refTensor {
	for i, n := range o.Names {
		if n == name {
			return o.Tensors[i]
		}
	}
	panic("no reference tensor " + name)
}

type reference struct {
	Initial ordered   `json:"initial"`
	X       refTensor `json:"x"`
	Target  refTensor `json:"target"`
	Configs []struct {
		Name      string `json:"name"`
		Optimizer string `json:"optimizer"`
		Options   struct {
			LR          float64   `json:"lr"`
			Momentum    float64   `json:"momentum"`
			Dampening   float64   `json:"dampening"`
			WeightDecay float64   `json:"weight_decay"`
			Nesterov    bool      `json:"nesterov"`
			Betas       []float64 `json:"betas"`
			Eps         *float64  `json:"eps"`
			AMSGrad     bool      `json:"amsgrad"`
		} `json:"options"`
		Steps []struct {
			Loss   float64 `json:"loss"`
			Params ordered `json:"params"`
		} `json:"steps"`
		State ordered `json:"state"`
	} `json:"configs"`
}

func fromRef[T tensor.Float](r refTensor) *tensor.Tensor[T] {
	d := make([]T, len(r.Data))
	for i, v := range r.Data {
		d[i] = T(v)
	}
	return tensor.MustFromSlice(d, r.Shape...)
}

// problem is the reference problem: tanh(x Wᵀ + b) fitted to targets by
// Σ(y − t)²/5, plus a parameter that takes no part.
type problem[T tensor.Float] struct {
	lin    *nn.Linear[T]
	unused *autograd.Var[T]
	x, t   *autograd.Var[T]
}

func newProblem[T tensor.Float](ref *reference) *problem[T] {
	p := &problem[T]{
		lin:    nn.NewLinear[T](4, 3, true, nil),
		unused: autograd.Leaf("unused", fromRef[T](ref.Initial.get("unused")), true),
		x:      autograd.Leaf("x", fromRef[T](ref.X), false),
		t:      autograd.Leaf("t", fromRef[T](ref.Target), false),
	}
	copy(p.lin.Weight.Value.Data(), fromRef[T](ref.Initial.get("weight")).Data())
	copy(p.lin.Bias.Value.Data(), fromRef[T](ref.Initial.get("bias")).Data())
	return p
}

func (p *problem[T]) params() []nn.Parameter[T] {
	return append(p.lin.Parameters(), nn.Parameter[T]{Name: "unused", Var: p.unused})
}

// lossAndGrad runs forward and backward and returns the loss.
func (p *problem[T]) lossAndGrad(t testing.TB) float64 {
	y, err := p.lin.Forward(p.x)
	if err != nil {
		t.Fatal(err)
	}
	if y, err = ops.Tanh("y", y); err != nil {
		t.Fatal(err)
	}
	l, err := ops.SquaredError("loss", y, p.t, 5)
	if err != nil {
		t.Fatal(err)
	}
	if err := autograd.Backward(l); err != nil {
		t.Fatal(err)
	}
	return float64(l.Value.Data()[0])
}

func loadRef(t testing.TB) *reference {
	b, err := os.ReadFile("testdata/reference.json")
	if err != nil {
		t.Fatal(err)
	}
	var ref reference
	if err := json.Unmarshal(b, &ref); err != nil {
		t.Fatal(err)
	}
	return &ref
}

// optimizers builds every reference configuration over params.
func buildOptimizers[T tensor.Float](t testing.TB, ref *reference, params func() []nn.Parameter[T]) map[string]func() Optimizer[T] {
	out := map[string]func() Optimizer[T]{}
	for _, c := range ref.Configs {
		o := c.Options
		out[c.Name] = func() Optimizer[T] {
			var opt Optimizer[T]
			var err error
			if c.Optimizer == "sgd" {
				opt, err = NewSGD(params(), SGDOptions{LR: o.LR, Momentum: o.Momentum, Dampening: o.Dampening, WeightDecay: o.WeightDecay, Nesterov: o.Nesterov})
			} else {
				ao := DefaultAdamOptions()
				ao.LR, ao.WeightDecay, ao.AMSGrad = o.LR, o.WeightDecay, o.AMSGrad
				if o.Betas != nil {
					ao.Beta1, ao.Beta2 = o.Betas[0], o.Betas[1]
				}
				if o.Eps != nil {
					ao.Eps = *o.Eps
				}
				opt, err = NewAdam(params(), ao)
			}
			if err != nil {
				t.Fatal(err)
			}
			return opt
		}
	}
	return out
}

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-10*math.Max(1, math.Abs(b)) }

// TestReferencePyTorch runs each optimizer configuration of
// testdata/reference.json for 5 steps and compares the loss before every
// step, the parameters after it and the final optimizer state (names,
// order and values) with torch.optim's, to 1e-10.
func TestReferencePyTorch(t *testing.T) {
	ref := loadRef(t)
	if len(ref.Configs) < 8 {
		t.Fatalf("only %d configurations", len(ref.Configs))
	}
	for _, c := range ref.Configs {
		t.Run(c.Name, func(t *testing.T) {
			p := newProblem[float64](ref)
			opt := buildOptimizers(t, ref, p.params)[c.Name]()
			for si, st := range c.Steps {
				opt.ZeroGrad()
				if loss := p.lossAndGrad(t); !near(loss, st.Loss) {
					t.Fatalf("step %d: loss %.17g, PyTorch %.17g", si, loss, st.Loss)
				}
				if err := opt.Step(); err != nil {
					t.Fatal(err)
				}
				for _, prm := range p.params() {
					want := st.Params.get(prm.Name)
					for i, v := range prm.Var.Value.Data() {
						if !near(v, want.Data[i]) {
							t.Fatalf("after step %d: %s[%d] = %.17g, PyTorch %.17g", si+1, prm.Name, i, v, want.Data[i])
						}
					}
				}
			}
			state := opt.State()
			if len(state) != len(c.State.Names) {
				t.Fatalf("state has %d entries, PyTorch %d (%v)", len(state), len(c.State.Names), c.State.Names)
			}
			for i, e := range state {
				want := c.State.Tensors[i]
				if e.Name != c.State.Names[i] || !tensor.SameShape(e.Tensor.Shape(), want.Shape) {
					t.Fatalf("state entry %d: %s %v, PyTorch %s %v", i, e.Name, e.Tensor.Shape(), c.State.Names[i], want.Shape)
				}
				if e.Int != strings.HasSuffix(e.Name, ".step") {
					t.Errorf("%s: Int = %v", e.Name, e.Int)
				}
				for j, v := range e.Tensor.Data() {
					if !near(v, want.Data[j]) {
						t.Fatalf("state %s[%d] = %.17g, PyTorch %.17g", e.Name, j, v, want.Data[j])
					}
				}
			}
		})
	}
}

// TestResumeBitForBit checks that 3 steps, an export of the model and
// optimizer state, an import into a fresh model and optimizer and 3 more
// steps give exactly the bits of 6 uninterrupted steps, for every
// configuration in both precisions.
func TestResumeBitForBit(t *testing.T) {
	ref := loadRef(t)
	for _, c := range ref.Configs {
		t.Run(c.Name+"/float64", func(t *testing.T) { resume[float64](t, ref, c.Name) })
		t.Run(c.Name+"/float32", func(t *testing.T) { resume[float32](t, ref, c.Name) })
	}
}

func resume[T tensor.Float](t *testing.T, ref *reference, name string) {
	train := func(p *problem[T], opt Optimizer[T], n int) {
		for range n {
			opt.ZeroGrad()
			p.lossAndGrad(t)
			if err := opt.Step(); err != nil {
				t.Fatal(err)
			}
		}
	}
	straight := newProblem[T](ref)
	opt := buildOptimizers(t, ref, straight.params)[name]()
	train(straight, opt, 6)

	first := newProblem[T](ref)
	opt1 := buildOptimizers(t, ref, first.params)[name]()
	train(first, opt1, 3)
	modelState := nn.CloneStateDict(first.lin.StateDict())
	optState := opt1.State()

	second := newProblem[T](ref) // fresh parameters, then the checkpoint
	for i := range second.lin.Weight.Value.Data() {
		second.lin.Weight.Value.Data()[i] = 0
	}
	if err := nn.LoadStateDict[T](second.lin, modelState); err != nil {
		t.Fatal(err)
	}
	opt2 := buildOptimizers(t, ref, second.params)[name]()
	if err := opt2.LoadState(optState); err != nil {
		t.Fatal(err)
	}
	train(second, opt2, 3)

	for i, p := range straight.params() {
		q := second.params()[i]
		for j, v := range p.Var.Value.Data() {
			if math.Float64bits(float64(v)) != math.Float64bits(float64(q.Var.Value.Data()[j])) {
				t.Fatalf("%s[%d]: 6 straight steps %v, 3+3 resumed %v", p.Name, j, v, q.Var.Value.Data()[j])
			}
		}
	}
	s1, s2 := opt.State(), opt2.State()
	if len(s1) != len(s2) {
		t.Fatalf("state sizes %d and %d", len(s1), len(s2))
	}
	for i := range s1 {
		for j, v := range s1[i].Tensor.Data() {
			if v != s2[i].Tensor.Data()[j] || s1[i].Name != s2[i].Name {
				t.Fatalf("state %s differs after resuming", s1[i].Name)
			}
		}
	}
}

func TestLoadStateErrors(t *testing.T) {
	ref := loadRef(t)
	p := newProblem[float64](ref)
	adam, err := NewAdam(p.params(), DefaultAdamOptions())
	if err != nil {
		t.Fatal(err)
	}
	p.lossAndGrad(t)
	if err := adam.Step(); err != nil {
		t.Fatal(err)
	}
	good := adam.State()
	before := adam.State()
	with := func(edit func([]nn.StateEntry[float64]) []nn.StateEntry[float64]) []nn.StateEntry[float64] {
		s := nn.CloneStateDict(good)
		return edit(s)
	}
	cases := []struct {
		name  string
		state []nn.StateEntry[float64]
		want  string
	}{
		{"unknown parameter", with(func(s []nn.StateEntry[float64]) []nn.StateEntry[float64] {
			s[0].Name = "encoder.weight.step"
			return s
		}), `entry "encoder.weight.step" belongs to no parameter of this optimizer (unknown parameter "encoder.weight")`},
		{"partial", with(func(s []nn.StateEntry[float64]) []nn.StateEntry[float64] { return s[1:] }),
			`parameter "weight" has exp_avg, exp_avg_sq but lacks step`},
		{"shape", with(func(s []nn.StateEntry[float64]) []nn.StateEntry[float64] {
			s[1].Tensor = tensor.New[float64](4, 3)
			return s
		}), `entry "weight.exp_avg" has shape [4×3], want [3×4]`},
		{"step", with(func(s []nn.StateEntry[float64]) []nn.StateEntry[float64] {
			s[0].Tensor.Data()[0] = 1.5
			return s
		}), `entry "weight.step" is 1.5, want a step count`},
		{"amsgrad", with(func(s []nn.StateEntry[float64]) []nn.StateEntry[float64] {
			return append(s, nn.StateEntry[float64]{Name: "bias.max_exp_avg_sq", Tensor: tensor.New[float64](3)})
		}), `unexpected entry "bias.max_exp_avg_sq": this optimizer keeps step, exp_avg and exp_avg_sq per parameter (AMSGrad is off)`},
		{"duplicate", with(func(s []nn.StateEntry[float64]) []nn.StateEntry[float64] { return append(s, s[2]) }),
			`entry "weight.exp_avg_sq" is given more than once`},
		{"unnamed", with(func(s []nn.StateEntry[float64]) []nn.StateEntry[float64] {
			s[0].Name = "step"
			return s
		}), `entry "step" is not named <parameter>.<field>`},
	}
	for _, c := range cases {
		err := adam.LoadState(c.state)
		var se *StateError
		if !errors.As(err, &se) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v\nwant it to contain %s", c.name, err, c.want)
		}
	}
	after := adam.State()
	for i := range before {
		for j, v := range before[i].Tensor.Data() {
			if after[i].Tensor.Data()[j] != v {
				t.Fatal("a failed LoadState changed the state")
			}
		}
	}
	// SGD: momentum buffers only with momentum
	sgd, _ := NewSGD(p.params(), SGDOptions{LR: 0.1})
	err = sgd.LoadState([]nn.StateEntry[float64]{{Name: "bias.momentum_buffer", Tensor: tensor.New[float64](3)}})
	if err == nil || !strings.Contains(err.Error(), "no state without momentum") {
		t.Errorf("got %v", err)
	}
	// an Adam state cannot be loaded into SGD
	sgdm, _ := NewSGD(p.params(), SGDOptions{LR: 0.1, Momentum: 0.9})
	if err := sgdm.LoadState(good); err == nil || !strings.Contains(err.Error(), `unexpected entry "weight.step"`) {
		t.Errorf("got %v", err)
	}
}

func TestConstructorErrors(t *testing.T) {
	v := autograd.Leaf("w", tensor.New[float64](2), true)
	ps := []nn.Parameter[float64]{{Name: "w", Var: v}}
	bad := func(name string, err error, want string) {
		t.Helper()
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v, want %q", name, err, want)
		}
	}
	_, err := NewSGD(ps, SGDOptions{LR: -1})
	bad("lr", err, "invalid learning rate -1")
	_, err = NewSGD(ps, SGDOptions{LR: 0.1, Nesterov: true})
	bad("nesterov", err, "Nesterov momentum needs momentum > 0")
	_, err = NewSGD(append(ps, nn.Parameter[float64]{Name: "w2", Var: v}), SGDOptions{LR: 0.1})
	bad("same var", err, `parameters "w" and "w2" are the same variable`)
	_, err = NewSGD(append(ps, nn.Parameter[float64]{Name: "w", Var: autograd.Leaf("w", tensor.New[float64](1), true)}), SGDOptions{LR: 0.1})
	bad("same name", err, `two parameters are named "w"`)
	_, err = NewSGD[float64](nil, SGDOptions{LR: 0.1})
	bad("empty", err, "no parameters")
	o := DefaultAdamOptions()
	o.Beta2 = 1
	_, err = NewAdam(ps, o)
	bad("beta2", err, "invalid beta2 1: it must be in [0, 1)")
	o = DefaultAdamOptions()
	o.Eps = math.NaN()
	_, err = NewAdam(ps, o)
	bad("eps", err, "invalid epsilon")
}

// benchProblem is a float32 parameter set the size of a small DCGAN layer
// stack, with gradients filled in.
func benchProblem(n int) []nn.Parameter[float32] {
	r := rand.New(rand.NewPCG(1, 2))
	var ps []nn.Parameter[float32]
	for i, size := range []int{n, n / 4, 64, 1} {
		v := autograd.Leaf(fmt.Sprint(i), tensor.New[float32](size), true)
		v.Grad = tensor.New[float32](size)
		for j := range v.Grad.Data() {
			v.Value.Data()[j] = float32(r.NormFloat64())
			v.Grad.Data()[j] = float32(r.NormFloat64())
		}
		ps = append(ps, nn.Parameter[float32]{Name: fmt.Sprint("p", i), Var: v})
	}
	return ps
}

func float32Optimizers(t testing.TB, ps []nn.Parameter[float32]) map[string]Optimizer[float32] {
	sgd, err := NewSGD(ps, SGDOptions{LR: 0.01, Momentum: 0.9, WeightDecay: 1e-4, Nesterov: true})
	if err != nil {
		t.Fatal(err)
	}
	ao := DefaultAdamOptions()
	ao.AMSGrad, ao.WeightDecay = true, 1e-4
	adam, err := NewAdam(ps, ao)
	if err != nil {
		t.Fatal(err)
	}
	return map[string]Optimizer[float32]{"SGD": sgd, "Adam": adam}
}

// TestStepAllocations checks that a float32 Step allocates nothing once
// the state exists.
func TestStepAllocations(t *testing.T) {
	for name, opt := range float32Optimizers(t, benchProblem(4096)) {
		if err := opt.Step(); err != nil {
			t.Fatal(err)
		}
		if a := testing.AllocsPerRun(20, func() { _ = opt.Step() }); a != 0 {
			t.Errorf("%s: %v allocations per Step after the first", name, a)
		}
		if a := testing.AllocsPerRun(20, opt.ZeroGrad); a != 0 {
			t.Errorf("%s: %v allocations per ZeroGrad", name, a)
		}
	}
}

// BenchmarkStepFloat32 measures one Step over ~330k float32 parameters
// (allocs/op must be 0).
func BenchmarkStepFloat32(b *testing.B) {
	ps := benchProblem(1 << 18)
	for _, name := range []string{"SGD", "Adam"} {
		b.Run(name, func(b *testing.B) {
			opt := float32Optimizers(b, ps)[name]
			_ = opt.Step()
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				_ = opt.Step()
			}
		})
	}
}
