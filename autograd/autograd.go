// Package autograd records a graph of tensor operations and runs
// reverse-mode automatic differentiation over it. It is deliberately small
// (in the spirit of micrograd): a Var is a value with its gradient, the op
// that made it and that op's inputs; Backward walks the graph in reverse
// topological order and lets each op compute its vector-Jacobian product.
// The operations themselves live in package ops.
package autograd

import (
	"fmt"
	"sync"
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

// GradWriter is implemented by ops whose Backward can write its list of
// gradients into a slice the caller provides: grads has len(in) entries,
// all nil, and receives what Backward would return. Backward passes use
// it to spare the allocation of the list; the op must not keep grads.
type GradWriter[T tensor.Float] interface {
	BackwardInto(grads, in []*tensor.Tensor[T], out, gout *tensor.Tensor[T], need []bool)
}

// Recycler is implemented by ops that can be reused once their node is
// released: Release calls Recycle on the op of every node it recycles, and
// the op may then be handed to a later node (its constructor draws on the
// ops recycled). An op that was not made for recycling ignores the call.
type Recycler interface {
	Recycle()
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

	// Storage of the nodes Apply makes, so that a node of up to maxInline
	// operands costs one allocation, or none when Release recycled one:
	// Inputs and the operands' values handed to Op.Forward live here.
	inputsBuf [maxInline]*Var[T]
	valuesBuf [maxInline]*tensor.Tensor[T]
}

// maxInline is the number of operands whose storage a node holds itself.
const maxInline = 3

// Leaf makes an input or parameter node. Parameters need gradients, data
// usually does not.
func Leaf[T tensor.Float](name string, value *tensor.Tensor[T], requiresGrad bool) *Var[T] {
	return &Var[T]{Name: name, Value: value, RequiresGrad: requiresGrad}
}

// Apply runs op forward on the inputs' values and records the result as a
// new node named name. The error names the node, so shape mistakes point at
// the step of the network where they happen.
//
// The node keeps its own copy of the inputs slice (the caller's may be
// reused). Its storage comes from nodes Release recycled when there are.
func Apply[T tensor.Float](name string, op Op[T], inputs ...*Var[T]) (*Var[T], error) {
	v := newNode[T]()
	var in []*tensor.Tensor[T]
	if n := len(inputs); n <= maxInline {
		v.Inputs = v.inputsBuf[:n:n]
		in = v.valuesBuf[:n:n]
	} else {
		v.Inputs = make([]*Var[T], n)
		in = make([]*tensor.Tensor[T], n)
	}
	copy(v.Inputs, inputs)
	req := false
	for i, u := range inputs {
		in[i] = u.Value
		req = req || u.RequiresGrad
	}
	out, err := op.Forward(in)
	if err != nil {
		freeNode(v)
		if name != "" {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		return nil, err
	}
	v.Name, v.Value, v.Op, v.RequiresGrad = name, out, op, req
	return v, nil
}

// nodePool is the free list of one element type's graph nodes, filled by
// Release and drawn on by Apply.
type nodePool[T tensor.Float] struct {
	mu   sync.Mutex
	free []*Var[T]
}

// maxFreeNodes bounds each free list; nodes released beyond it are left
// to the garbage collector.
const maxFreeNodes = 1 << 12

var (
	nodes32 nodePool[float32]
	nodes64 nodePool[float64]
)

func nodePoolFor[T tensor.Float]() *nodePool[T] {
	var z T
	switch any(z).(type) {
	case float32:
		return any(&nodes32).(*nodePool[T])
	case float64:
		return any(&nodes64).(*nodePool[T])
	}
	return nil
}

// newNode returns a zeroed node, recycled if one is free.
func newNode[T tensor.Float]() *Var[T] {
	if p := nodePoolFor[T](); p != nil {
		p.mu.Lock()
		if n := len(p.free); n > 0 {
			v := p.free[n-1]
			p.free[n-1] = nil
			p.free = p.free[:n-1]
			p.mu.Unlock()
			*v = Var[T]{}
			return v
		}
		p.mu.Unlock()
	}
	return new(Var[T])
}

// freeNode puts v on the free list (unless that is full) and lets its op
// recycle itself (Recycler). v keeps its fields until newNode hands it out
// again, so that a released node reads as Release leaves it (emptied
// tensors) until then.
func freeNode[T tensor.Float](v *Var[T]) {
	if r, ok := v.Op.(Recycler); ok {
		r.Recycle()
	}
	p := nodePoolFor[T]()
	if p == nil {
		return
	}
	p.mu.Lock()
	if len(p.free) < maxFreeNodes {
		p.free = append(p.free, v)
	}
	p.mu.Unlock()
}

// walk is the scratch of one graph traversal (Backward, Release), kept for
// reuse so that a training step's traversals allocate nothing once the
// maps and slices have grown to the size of its graphs.
type walk[T tensor.Float] struct {
	seen  map[*Var[T]]bool
	uses  map[*Var[T]]int
	stack []topoFrame[T]
	order []*Var[T]
	in    []*tensor.Tensor[T]
	grads []*tensor.Tensor[T]
	need  []bool
	data  [][]T
	seed  *tensor.Tensor[T]
}

// topoFrame is one node of Topo's depth-first search and the index of its
// next input to visit.
type topoFrame[T tensor.Float] struct {
	v    *Var[T]
	next int
}

var walks32, walks64 sync.Pool

// getWalk returns an empty traversal scratch.
func getWalk[T tensor.Float]() *walk[T] {
	p := walkPoolFor[T]()
	if w, ok := p.Get().(*walk[T]); ok {
		return w
	}
	return &walk[T]{seen: map[*Var[T]]bool{}, uses: map[*Var[T]]int{}}
}

// putWalk clears w (dropping its references to nodes and tensors) and
// keeps it for the next traversal.
func putWalk[T tensor.Float](w *walk[T]) {
	clear(w.seen)
	clear(w.uses)
	clear(w.stack)
	clear(w.order)
	clear(w.in)
	clear(w.grads)
	clear(w.data)
	w.stack, w.order, w.in, w.grads, w.need, w.data = w.stack[:0], w.order[:0], w.in[:0], w.grads[:0], w.need[:0], w.data[:0]
	walkPoolFor[T]().Put(w)
}

func walkPoolFor[T tensor.Float]() *sync.Pool {
	var z T
	if _, ok := any(z).(float32); ok {
		return &walks32
	}
	return &walks64
}

// IsLeaf reports whether v was not produced by an op.
func (v *Var[T]) IsLeaf() bool { return v.Op == nil }

// Topo returns every node that out depends on, each after its inputs, out
// last.
func Topo[T tensor.Float](out *Var[T]) []*Var[T] {
	w := getWalk[T]()
	w.topo(out)
	order := append([]*Var[T](nil), w.order...)
	putWalk(w)
	return order
}

// topo appends to w.order every node out depends on not yet in w.seen,
// each after its inputs, out last (nothing if out was seen).
func (w *walk[T]) topo(out *Var[T]) {
	if w.seen[out] {
		return
	}
	// iterative DFS so that deep graphs do not exhaust the stack
	w.stack = append(w.stack[:0], topoFrame[T]{v: out})
	w.seen[out] = true
	for len(w.stack) > 0 {
		top := &w.stack[len(w.stack)-1]
		if top.next < len(top.v.Inputs) {
			in := top.v.Inputs[top.next]
			top.next++
			if !w.seen[in] {
				w.seen[in] = true
				w.stack = append(w.stack, topoFrame[T]{v: in})
			}
			continue
		}
		w.order = append(w.order, top.v)
		w.stack = w.stack[:len(w.stack)-1]
	}
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
	w := getWalk[T]()
	defer putWalk(w)
	// The seed is only read (accumulate copies it), so one per scratch
	// serves every call with the same shape.
	if w.seed == nil || !tensor.SameShape(w.seed.Shape(), out.Value.Shape()) {
		w.seed = tensor.New[T](out.Value.Shape()...)
		w.seed.Fill(1)
	}
	return backwardFrom(w, out, w.seed)
}

// BackwardFrom is Backward with an explicit upstream gradient for out, of
// out's shape.
func BackwardFrom[T tensor.Float](out *Var[T], seed *tensor.Tensor[T]) error {
	if !tensor.SameShape(seed.Shape(), out.Value.Shape()) {
		return &tensor.ShapeError{Op: "backward", Tensor: "seed gradient of " + out.Name, Want: tensor.FormatShape(out.Value.Shape()), Got: seed.Shape()}
	}
	w := getWalk[T]()
	defer putWalk(w)
	return backwardFrom(w, out, seed)
}

// backwardFrom is BackwardFrom on the traversal scratch w.
func backwardFrom[T tensor.Float](w *walk[T], out *Var[T], seed *tensor.Tensor[T]) error {
	w.topo(out)
	order, uses := w.order, w.uses
	// gradients of intermediate nodes are fresh each call; leaves accumulate
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
		// Ops read in and need during the call only; the scratch serves
		// every node.
		n := len(v.Inputs)
		w.in, w.need = append(w.in[:0], make([]*tensor.Tensor[T], n)...), append(w.need[:0], make([]bool, n)...)
		in, need := w.in, w.need
		any := false
		for j, u := range v.Inputs {
			in[j] = u.Value
			need[j] = u.RequiresGrad
			any = any || need[j]
		}
		if !any {
			continue
		}
		var grads []*tensor.Tensor[T]
		if gw, ok := v.Op.(GradWriter[T]); ok {
			w.grads = append(w.grads[:0], make([]*tensor.Tensor[T], n)...) // n nils, no allocation once grown
			gw.BackwardInto(w.grads, in, v.Value, v.Grad, need)
			grads = w.grads
		} else {
			grads = v.Op.Backward(in, v.Value, v.Grad, need)
		}
		for j, g := range grads {
			if need[j] && g != nil {
				u := v.Inputs[j]
				// An op may hand its upstream gradient straight on (bias
				// add: dx = g; reshape: a view of g). An intermediate node
				// with no other consumer can share that storage, as no
				// other contribution will be added into it.
				f := fresh(g, j, grads, in, v.Value, nil)
				apart := !overlap(g.Data(), v.Grad.Data())
				if !accumulate(u, g, f && (uses[u] == 1 && !u.IsLeaf() || apart)) && f && apart {
					// added into u's gradient: a tensor of the op's own
					// goes back to the pool
					tensor.Release(g)
				}
			}
		}
	}
	return nil
}

// accumulate adds g to v's gradient. The first contribution is adopted
// as v.Grad when own is set (the tensor then belongs to v: later
// contributions are added into it); otherwise it is copied. It reports
// whether g was adopted.
func accumulate[T tensor.Float](v *Var[T], g *tensor.Tensor[T], own bool) bool {
	if !v.RequiresGrad {
		return false
	}
	if v.Grad == nil {
		if own && tensor.SameShape(g.Shape(), v.Value.Shape()) {
			v.Grad = g
			return true
		}
		v.Grad = tensor.New[T](v.Value.Shape()...)
	}
	v.Grad.AddInPlace(g)
	return false
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
// used again (no second Backward through them, no second Release): Apply
// hands the released non-leaf nodes out again as new nodes, so that a
// training loop's steady state allocates no graph nodes.
func Release[T tensor.Float](roots ...*Var[T]) {
	w := getWalk[T]()
	defer putWalk(w)
	for _, r := range roots {
		if r != nil {
			w.topo(r)
		}
	}
	nodes := w.order
	leaves := w.data[:0]
	for _, v := range nodes {
		if v.IsLeaf() {
			if v.Value != nil {
				leaves = append(leaves, v.Value.Data())
			}
			if v.Grad != nil {
				leaves = append(leaves, v.Grad.Data())
			}
		}
	}
	w.data = leaves
	for _, v := range nodes {
		if v.IsLeaf() {
			continue
		}
		if t := v.Value; t != nil && !keptBy(t, leaves) {
			tensor.Release(t)
		}
		if t := v.Grad; t != nil && !keptBy(t, leaves) {
			tensor.Release(t)
		}
	}
	for _, v := range nodes {
		if !v.IsLeaf() {
			freeNode(v)
		}
	}
}

// keptBy reports whether t shares storage with any of leaves.
func keptBy[T tensor.Float](t *tensor.Tensor[T], leaves [][]T) bool {
	for _, l := range leaves {
		if overlap(t.Data(), l) {
			return true
		}
	}
	return false
}
