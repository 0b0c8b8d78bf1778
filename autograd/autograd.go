// Package autograd records a graph of tensor operations and runs
// reverse-mode automatic differentiation over it. It is deliberately small
// (in the spirit of micrograd): a Var is a value with its gradient, the op
// that made it and that op's inputs; Backward walks the graph in reverse
// topological order and lets each op compute its vector-Jacobian product.
// The operations themselves live in package ops.
package autograd

import (
	"fmt"
	"unsafe"

	"github.com/backprop-dev/backprop/tensor"
)

// Op is one differentiable operation. An Op value belongs to one node of the
// graph, so it may remember what its Forward saw (shapes, masks) for its
// Backward and for the trace.
type Op[T tensor.Float] interface {
	// Name is a short identifier for the operation, e.g. "matmul".
	Name() string
	// Forward computes the output from the inputs, or explains why the
	// inputs' shapes do not fit.
	Forward(in []*tensor.Tensor[T]) (*tensor.Tensor[T], error)
	// Backward returns, for every input i with need[i], the gradient of the
	// objective with respect to in[i], given gout, the gradient with respect
	// to the output out. Entries not needed may be nil.
	Backward(in []*tensor.Tensor[T], out, gout *tensor.Tensor[T], need []bool) []*tensor.Tensor[T]
}

// Var is a node of the graph: a tensor value, its gradient once Backward has
// run, and how it was made.
type Var[T tensor.Float] struct {
	Name         string            // name used in traces and errors
	Value        *tensor.Tensor[T] // the forward value
	Grad         *tensor.Tensor[T] // gradient of the objective; nil until Backward reaches it
	Op           Op[T]             // nil for leaves (inputs and parameters)
	Inputs       []*Var[T]         // operands of Op
	RequiresGrad bool              // whether Backward computes Grad for this node
	// Inline asks the trace to show this node's formula inside its
	// consumer's line rather than as a step of its own (for pre-activations
	// such as w0 z + b0 under a ReLU).
	Inline bool
}

// Leaf makes an input or parameter node. Parameters need gradients, data
// usually does not.
func Leaf[T tensor.Float](name string, value *tensor.Tensor[T], requiresGrad bool) *Var[T] {
	return &Var[T]{Name: name, Value: value, RequiresGrad: requiresGrad}
}

// Apply runs op forward on the inputs' values and records the result as a
// new node named name. The error names the node, so shape mistakes point at
// the step of the network where they happen.
func Apply[T tensor.Float](name string, op Op[T], inputs ...*Var[T]) (*Var[T], error) {
	in := make([]*tensor.Tensor[T], len(inputs))
	req := false
	for i, v := range inputs {
		in[i] = v.Value
		req = req || v.RequiresGrad
	}
	out, err := op.Forward(in)
	if err != nil {
		if name != "" {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		return nil, err
	}
	return &Var[T]{Name: name, Value: out, Op: op, Inputs: inputs, RequiresGrad: req}, nil
}

// IsLeaf reports whether v was not produced by an op.
func (v *Var[T]) IsLeaf() bool { return v.Op == nil }

// Topo returns every node that out depends on, each after its inputs, out
// last.
func Topo[T tensor.Float](out *Var[T]) []*Var[T] {
	var order []*Var[T]
	seen := map[*Var[T]]bool{}
	// iterative DFS so that deep graphs do not exhaust the stack
	type frame struct {
		v    *Var[T]
		next int
	}
	stack := []frame{{v: out}}
	seen[out] = true
	for len(stack) > 0 {
		top := &stack[len(stack)-1]
		if top.next < len(top.v.Inputs) {
			in := top.v.Inputs[top.next]
			top.next++
			if !seen[in] {
				seen[in] = true
				stack = append(stack, frame{v: in})
			}
			continue
		}
		order = append(order, top.v)
		stack = stack[:len(stack)-1]
	}
	return order
}

// Backward computes the gradient of out with respect to every node that
// requires one. out must hold a single element (a scalar objective); its
// gradient is seeded with 1. Gradients accumulate: a value used twice
// receives the sum of both contributions, and calling Backward again adds to
// existing gradients (use ZeroGrad between steps).
func Backward[T tensor.Float](out *Var[T]) error {
	if out.Value.Len() != 1 {
		return fmt.Errorf("autograd: Backward needs a scalar objective, %s has shape %s", out.Name, tensor.FormatShape(out.Value.Shape()))
	}
	seed := tensor.New[T](out.Value.Shape()...)
	seed.Fill(1)
	return BackwardFrom(out, seed)
}

// BackwardFrom is Backward with an explicit upstream gradient for out, of
// out's shape.
func BackwardFrom[T tensor.Float](out *Var[T], seed *tensor.Tensor[T]) error {
	if !tensor.SameShape(seed.Shape(), out.Value.Shape()) {
		return &tensor.ShapeError{Op: "backward", Tensor: "seed gradient of " + out.Name, Want: tensor.FormatShape(out.Value.Shape()), Got: seed.Shape()}
	}
	order := Topo(out)
	// gradients of intermediate nodes are fresh each call; leaves accumulate
	uses := make(map[*Var[T]]int, len(order))
	for _, v := range order {
		if !v.IsLeaf() {
			v.Grad = nil
		}
		for _, u := range v.Inputs {
			uses[u]++
		}
	}
	accumulate(out, seed, false)
	for i := len(order) - 1; i >= 0; i-- {
		v := order[i]
		if v.IsLeaf() || v.Grad == nil || !v.RequiresGrad {
			continue
		}
		in := make([]*tensor.Tensor[T], len(v.Inputs))
		need := make([]bool, len(v.Inputs))
		any := false
		for j, u := range v.Inputs {
			in[j] = u.Value
			need[j] = u.RequiresGrad
			any = any || need[j]
		}
		if !any {
			continue
		}
		grads := v.Op.Backward(in, v.Value, v.Grad, need)
		for j, g := range grads {
			if need[j] && g != nil {
				u := v.Inputs[j]
				// An op may hand its upstream gradient straight on (bias
				// add: dx = g; reshape: a view of g). An intermediate node
				// with no other consumer can share that storage, as no
				// other contribution will be added into it.
				own := fresh(g, j, grads, in, v.Value, nil) && (uses[u] == 1 && !u.IsLeaf() || !overlap(g.Data(), v.Grad.Data()))
				accumulate(u, g, own)
			}
		}
	}
	return nil
}

// accumulate adds g to v's gradient. The first contribution is adopted
// as v.Grad when own is set (the tensor then belongs to v: later
// contributions are added into it); otherwise it is copied.
func accumulate[T tensor.Float](v *Var[T], g *tensor.Tensor[T], own bool) {
	if !v.RequiresGrad {
		return
	}
	if v.Grad == nil {
		if own && tensor.SameShape(g.Shape(), v.Value.Shape()) {
			v.Grad = g
			return
		}
		v.Grad = tensor.New[T](v.Value.Shape()...)
	}
	v.Grad.AddInPlace(g)
}

// fresh reports whether gradient grads[j] returned by an op's Backward can
// be adopted without a copy: its storage must not overlap anything the op
// was handed (its inputs, its output and, unless gout is nil, the upstream
// gradient) nor another gradient of the same call. The check keeps an op
// that returns a view of its arguments correct.
func fresh[T tensor.Float](g *tensor.Tensor[T], j int, grads, in []*tensor.Tensor[T], out, gout *tensor.Tensor[T]) bool {
	d := g.Data()
	if len(d) == 0 {
		return false
	}
	for _, t := range in {
		if t != nil && overlap(d, t.Data()) {
			return false
		}
	}
	if overlap(d, out.Data()) || gout != nil && overlap(d, gout.Data()) {
		return false
	}
	for k, o := range grads {
		if k != j && o != nil && overlap(d, o.Data()) {
			return false
		}
	}
	return true
}

// overlap reports whether a and b share any element (their full capacity
// is compared, so that views of one buffer count as overlapping).
func overlap[T tensor.Float](a, b []T) bool {
	if cap(a) == 0 || cap(b) == 0 {
		return false
	}
	var z T
	size := unsafe.Sizeof(z)
	a0 := uintptr(unsafe.Pointer(unsafe.SliceData(a)))
	b0 := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	a1, b1 := a0+uintptr(cap(a))*size, b0+uintptr(cap(b))*size
	return a0 < b1 && b0 < a1
}

// ZeroGrad clears the gradients of the given nodes (parameters between
// optimisation steps).
func ZeroGrad[T tensor.Float](vars ...*Var[T]) {
	for _, v := range vars {
		if v.Grad != nil {
			v.Grad.Zero()
		}
	}
}

// Release hands the storage of a finished step's intermediate tensors back
// to package tensor for reuse (see tensor.Release): the Value and Grad of
// every non-leaf node reachable from roots. Call it once per training step,
// after the optimizer step and after the last read of any of those values
// (read the loss first), passing every root of the step's graphs together.
// Leaves — parameters, inputs, detached copies — keep their Value and Grad,
// and so does any non-leaf tensor that shares storage with a leaf's. A
// released node's tensors are left empty; the nodes themselves must not be
// used again (no second Backward through them).
func Release[T tensor.Float](roots ...*Var[T]) {
	var nodes []*Var[T]
	seen := make(map[*Var[T]]bool)
	for _, r := range roots {
		if r == nil || seen[r] {
			continue
		}
		for _, v := range Topo(r) {
			if !seen[v] {
				seen[v] = true
				nodes = append(nodes, v)
			}
		}
	}
	var leaves [][]T
	for _, v := range nodes {
		if v.IsLeaf() {
			for _, t := range []*tensor.Tensor[T]{v.Value, v.Grad} {
				if t != nil {
					leaves = append(leaves, t.Data())
				}
			}
		}
	}
	keep := func(t *tensor.Tensor[T]) bool {
		for _, l := range leaves {
			if overlap(t.Data(), l) {
				return true
			}
		}
		return false
	}
	for _, v := range nodes {
		if v.IsLeaf() {
			continue
		}
		for _, t := range []*tensor.Tensor[T]{v.Value, v.Grad} {
			if t != nil && !keep(t) {
				tensor.Release(t)
			}
		}
	}
}
