package explain

import (
	"fmt"
	"slices"

	"github.com/backprop-dev/backprop/autograd"
	"github.com/backprop-dev/backprop/tensor"
)

// Graph is one reading of a recorded graph for the renderers: every node's
// name, its consumers, the gradient aliases of pass-through ops, the
// parameters each node depends on, and the order of the steps. It is
// computed once from the nodes and read-only after.
type Graph[T tensor.Float] struct {
	nodes     []*autograd.Var[T]
	names     map[*autograd.Var[T]]string
	byName    map[string]*autograd.Var[T]
	consumers map[*autograd.Var[T]][]*autograd.Var[T]
	alias     map[*autograd.Var[T]]*autograd.Var[T]
	deps      map[*autograd.Var[T]][]string
}

// NotExplainedError says that a node's op does not implement Explainer, so
// no renderer can describe the graph.
type NotExplainedError struct {
	Op, Node string
}

// Error implements error.
func (e *NotExplainedError) Error() string {
	return fmt.Sprintf("op %s of %s cannot explain itself", e.Op, e.Node)
}

// New reads the graph whose nodes are given in creation order (each after
// its inputs). Every computed node's op must be an Explainer.
func New[T tensor.Float](nodes []*autograd.Var[T]) (*Graph[T], error) {
	g := &Graph[T]{
		nodes:     nodes,
		names:     make(map[*autograd.Var[T]]string, len(nodes)),
		byName:    make(map[string]*autograd.Var[T], len(nodes)),
		consumers: map[*autograd.Var[T]][]*autograd.Var[T]{},
		alias:     map[*autograd.Var[T]]*autograd.Var[T]{},
		deps:      make(map[*autograd.Var[T]][]string, len(nodes)),
	}
	for i, v := range nodes {
		for _, u := range v.Inputs {
			// a node that takes u twice (h + h) is one consumer: the
			// renderers visit each of its uses of u
			if cs := g.consumers[u]; len(cs) == 0 || cs[len(cs)-1] != v {
				g.consumers[u] = append(cs, v)
			}
		}
		name := v.Name
		if name == "" {
			name = fmt.Sprintf("t%d", i+1)
		}
		g.names[v] = name
		g.byName[name] = v
		if !v.IsLeaf() {
			if _, ok := v.Op.(Explainer); !ok {
				return nil, &NotExplainedError{Op: v.Op.Name(), Node: name}
			}
		}
	}
	for _, v := range nodes {
		// an anonymous value whose only consumer hands its gradient on
		// unchanged shares that consumer's gradient name
		if cs := g.consumers[v]; len(cs) == 1 && v.Name == "" && !v.IsLeaf() {
			c := cs[0]
			if pt, ok := c.Op.(PassThrough); ok {
				for i, u := range c.Inputs {
					if u == v && pt.PassThrough(i) {
						g.alias[v] = c
					}
				}
			}
		}
	}
	for _, v := range nodes {
		var ds []string
		for _, u := range v.Inputs {
			if u.IsLeaf() && u.RequiresGrad && !slices.Contains(ds, g.names[u]) {
				ds = append(ds, g.names[u])
			}
			for _, d := range g.deps[u] {
				if !slices.Contains(ds, d) {
					ds = append(ds, d)
				}
			}
		}
		g.deps[v] = ds
	}
	return g, nil
}

// Nodes are the graph's nodes in creation order.
func (g *Graph[T]) Nodes() []*autograd.Var[T] { return g.nodes }

// Name is v's name in every rendering: its own, or t<n> for the n-th node
// (counted from 1) when it has none.
func (g *Graph[T]) Name(v *autograd.Var[T]) string { return g.names[v] }

// Node is the node of the given name, nil when there is none.
func (g *Graph[T]) Node(name string) *autograd.Var[T] { return g.byName[name] }

// Explainer is v's op as an Explainer (every computed node has one).
func (g *Graph[T]) Explainer(v *autograd.Var[T]) Explainer { return v.Op.(Explainer) }

// Consumers are the nodes that take v as an input, in creation order,
// each once however many of its inputs v is.
func (g *Graph[T]) Consumers(v *autograd.Var[T]) []*autograd.Var[T] { return g.consumers[v] }

// GradConsumers are the consumers through which v received its gradient:
// those that carry one themselves.
func (g *Graph[T]) GradConsumers(v *autograd.Var[T]) []*autograd.Var[T] {
	var cs []*autograd.Var[T]
	for _, c := range g.consumers[v] {
		if c.Grad != nil {
			cs = append(cs, c)
		}
	}
	return cs
}

// Aliased reports whether v's gradient is its consumer's, handed on by a
// pass-through op, so that v gets no gradient step of its own.
func (g *Graph[T]) Aliased(v *autograd.Var[T]) bool { return g.alias[v] != nil }

// GradNode is the node whose gradient name stands for v's: v itself, or the
// consumer its gradient passes through unchanged (transitively).
func (g *Graph[T]) GradNode(v *autograd.Var[T]) *autograd.Var[T] {
	for g.alias[v] != nil {
		v = g.alias[v]
	}
	return v
}

// DependsOn names the parameters (leaves that require a gradient) that v
// depends on, nearest first.
func (g *Graph[T]) DependsOn(v *autograd.Var[T]) []string { return g.deps[v] }

// Computed are the nodes made by an op, in creation order: the candidates
// of the forward steps (a renderer leaves out those it shows inline).
func (g *Graph[T]) Computed() []*autograd.Var[T] {
	var out []*autograd.Var[T]
	for _, v := range g.nodes {
		if !v.IsLeaf() {
			out = append(out, v)
		}
	}
	return out
}

// BackwardOrder are the nodes whose gradient gets a step, in the order of
// the backward pass: from the last computed node back, each computed node
// that received a gradient of its own (not an alias), and each parameter
// or input with a gradient right after its earliest consumer, once all its
// consumers are done.
func (g *Graph[T]) BackwardOrder() []*autograd.Var[T] {
	var out []*autograd.Var[T]
	done := map[*autograd.Var[T]]bool{}
	for i := len(g.nodes) - 1; i >= 0; i-- {
		v := g.nodes[i]
		if v.IsLeaf() {
			continue
		}
		if v.Grad != nil && g.alias[v] == nil && len(g.GradConsumers(v)) > 0 {
			out = append(out, v)
		}
		for _, u := range v.Inputs {
			if u.IsLeaf() && u.Grad != nil && !done[u] && g.consumers[u][0] == v {
				done[u] = true
				out = append(out, u)
			}
		}
	}
	return out
}
