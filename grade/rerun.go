package grade

import (
	"fmt"
	"strings"

	"github.com/backprop-dev/backprop/autograd"
	"github.com/backprop-dev/backprop/spec"
	"github.com/backprop-dev/backprop/tensor"
)

// gradPrefix starts the target of every backward step of a key (∂J/∂w0).
const gradPrefix = "∂J/∂"

// nodeKey names a node's value ("f:h0") or gradient ("b:w0") in the maps of
// a re-run; a key step's target gives it (see stepKey).
func nodeKey(pass, name string) string {
	if pass == "forward" {
		return "f:" + name
	}
	return "b:" + name
}

// stepKey is the nodeKey of a key step: its target h0 or ∂J/∂h0.
func stepKey(pass, target string) string {
	return nodeKey(pass, strings.TrimPrefix(target, gradPrefix))
}

// rerun computes, for every node of the key's network, the value that
// follows from the student's own earlier numbers: the network is run
// forward op by op, each node's value computed by the engine from the
// values of its inputs, where every input value the student gave replaces
// the engine's; then backward the same way, each gradient computed from the
// gradients downstream of it as the student gave them (when backward is
// set). given maps nodeKey → the student's numbers (nil where not given).
//
// The result maps nodeKey → expected values under follow-through: an
// answer equal to it but not to the key is wrong only because of an earlier
// wrong value that the student used consistently.
//
// A parameter gradient that an op hands on unchanged (∂J/∂b1 = ∂J/∂u2, the
// bias of a pre-activation) also stands for the node's gradient when the
// student gave the parameter's and not the node's: a student's ∂J/∂b1 is
// their δ2, from which they computed ∂J/∂w1 and everything below.
func rerun(s *spec.Spec, given map[string][]*float64, backward bool) (map[string][]float64, error) {
	return rerunAltered(s, given, backward, alteration{})
}

// alteration is a natural mistake made in the network itself rather than
// in one number: a re-run with it gives what a student who makes the
// mistake consistently computes.
type alteration struct {
	// truncated cuts backpropagation through time to one step: no
	// gradient flows from a value of time step t+1 back into a value of
	// step t (∂J/∂h_t keeps the read-out's term and loses W_hhᵀ·∂J/∂u_{t+1});
	// the shared weights still gather every step's own term.
	truncated bool
	// unscaled leaves out the 1/√d_k of attention's scores: S = Q·Kᵀ, and
	// the scaling's gradient with it.
	unscaled bool
}

// isScores reports whether v is an attention head's scaled scores S (or
// S_h of head h), the node the unscaled alteration changes.
func isScores(v *autograd.Var[float64]) bool {
	if v.IsLeaf() || v.Op.Name() != "scale" {
		return false
	}
	if v.Name == "S" {
		return true
	}
	rest, ok := strings.CutPrefix(v.Name, "S_")
	if !ok || rest == "" {
		return false
	}
	for _, r := range rest {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// timeSteps gives every node of a recurrent network its time step: a
// named node the model's Group, an unnamed one the step of the node that
// consumes it (the W_hh·h_{t−1} inside u_h_t belongs to step t); 0 for
// nodes outside the unrolled layer.
func timeSteps(m *spec.Model[float64]) map[*autograd.Var[float64]]int {
	out := map[*autograd.Var[float64]]int{}
	for i := len(m.Nodes) - 1; i >= 0; i-- {
		v := m.Nodes[i]
		if v.Name != "" {
			if g := m.Group[v.Name]; g > 0 {
				out[v] = g
			}
		}
		if out[v] == 0 {
			continue
		}
		for _, u := range v.Inputs {
			if u.Name == "" && out[u] == 0 {
				out[u] = out[v]
			}
		}
	}
	return out
}

// rerunAltered is rerun with the network altered by a natural mistake.
func rerunAltered(s *spec.Spec, given map[string][]*float64, backward bool, alt alteration) (map[string][]float64, error) {
	m, err := spec.Build[float64](s)
	if err != nil {
		return nil, err
	}
	var step map[*autograd.Var[float64]]int
	if alt.truncated {
		step = timeSteps(m)
	}
	names := map[*autograd.Var[float64]]string{}
	consumers := map[*autograd.Var[float64]]int{}
	for i, v := range m.Nodes {
		name := v.Name
		if name == "" {
			name = fmt.Sprintf("t%d", i+1) // as the trace names unnamed nodes
		}
		names[v] = name
		for _, u := range v.Inputs {
			consumers[u]++
		}
	}
	substitute := func(data []float64, key string) {
		for k, p := range given[key] {
			if p != nil && k < len(data) {
				data[k] = *p
			}
		}
	}
	out := map[string][]float64{}
	vals := map[*autograd.Var[float64]]*tensor.Tensor[float64]{}
	value := func(v *autograd.Var[float64]) *tensor.Tensor[float64] {
		if t, ok := vals[v]; ok {
			return t
		}
		return v.Value
	}
	for _, v := range m.Nodes {
		if v.IsLeaf() {
			continue
		}
		in := make([]*tensor.Tensor[float64], len(v.Inputs))
		for j, u := range v.Inputs {
			in[j] = value(u)
		}
		var y *tensor.Tensor[float64]
		var err error
		if alt.unscaled && isScores(v) {
			y = in[0].Clone()
		} else {
			y, err = v.Op.Forward(in)
		}
		if err != nil {
			return nil, fmt.Errorf("re-running %s: %w", names[v], err)
		}
		key := nodeKey("forward", names[v])
		out[key] = append([]float64(nil), y.Data()...)
		env := y.Clone()
		substitute(env.Data(), key)
		vals[v] = env
	}

	grads := map[*autograd.Var[float64]]*tensor.Tensor[float64]{}
	seed := tensor.New[float64](m.Objective.Value.Shape()...)
	seed.Fill(1)
	grads[m.Objective] = seed
	add := func(u *autograd.Var[float64], g *tensor.Tensor[float64]) {
		if g == nil || !u.RequiresGrad {
			return
		}
		if grads[u] == nil {
			grads[u] = tensor.New[float64](u.Value.Shape()...)
		}
		d := grads[u].Data()
		for k, x := range g.Data() {
			d[k] += x
		}
	}
	for i := len(m.Nodes) - 1; i >= 0; i-- {
		v := m.Nodes[i]
		g := grads[v]
		if g == nil {
			continue
		}
		key := nodeKey("backward", names[v])
		out[key] = append([]float64(nil), g.Data()...)
		if v.IsLeaf() || !v.RequiresGrad {
			continue
		}
		pre := g.Clone()
		if backward {
			substitute(pre.Data(), key)
		}
		in := make([]*tensor.Tensor[float64], len(v.Inputs))
		need := make([]bool, len(v.Inputs))
		for j, u := range v.Inputs {
			in[j] = value(u)
			need[j] = u.RequiresGrad
		}
		y := value(v)
		// the student's gradient of a parameter that is v's gradient handed
		// on stands for v's gradient where they did not give v's own
		post := pre
		inferred := make([]bool, len(v.Inputs))
		if backward {
			for j, u := range v.Inputs {
				pk := nodeKey("backward", names[u])
				if !u.IsLeaf() || !need[j] || consumers[u] != 1 || given[pk] == nil || !handsOn(v, j, in, y) {
					continue
				}
				inferred[j] = true
				if post == pre {
					post = pre.Clone()
				}
				for k, p := range given[pk] {
					if p != nil && k < post.Len() && (k >= len(given[key]) || given[key][k] == nil) {
						post.Data()[k] = *p
					}
				}
			}
		}
		back := v.Op.Backward
		if alt.unscaled && isScores(v) {
			back = func(_ []*tensor.Tensor[float64], _ *tensor.Tensor[float64], g *tensor.Tensor[float64], _ []bool) []*tensor.Tensor[float64] {
				return []*tensor.Tensor[float64]{g.Clone()}
			}
		}
		gPre := back(in, y, pre, need)
		gPost := gPre
		if post != pre {
			gPost = back(in, y, post, need)
		}
		for j, u := range v.Inputs {
			if !need[j] {
				continue
			}
			if alt.truncated && !u.IsLeaf() && step[u] > 0 && step[v] > step[u] {
				continue // the gradient from step t+1 left out
			}
			if inferred[j] {
				add(u, gPre[j])
			} else {
				add(u, gPost[j])
			}
		}
	}
	return out, nil
}

// handsOn reports whether v's op passes its upstream gradient to input j
// unchanged, element for element: probed with an upstream gradient whose
// elements are all different.
func handsOn(v *autograd.Var[float64], j int, in []*tensor.Tensor[float64], y *tensor.Tensor[float64]) bool {
	u := v.Inputs[j]
	if u.Value.Len() != v.Value.Len() {
		return false
	}
	probe := tensor.New[float64](v.Value.Shape()...)
	for k := range probe.Data() {
		probe.Data()[k] = float64(k + 1)
	}
	need := make([]bool, len(in))
	need[j] = true
	g := v.Op.Backward(in, y, probe, need)
	if j >= len(g) || g[j] == nil || g[j].Len() != probe.Len() {
		return false
	}
	for k, x := range g[j].Data() {
		if x != probe.Data()[k] {
			return false
		}
	}
	return true
}
