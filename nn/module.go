// Package nn builds networks out of the ops of package ops, in the shape of
// torch.nn: layers are Modules that own their parameters, containers give
// them PyTorch's state_dict names ("0.weight", "encoder.1.running_mean"),
// and a state dict can be saved and loaded with the errors a user needs
// when a checkpoint does not fit the model. Layers follow PyTorch's
// semantics and default initialization, so a model written here behaves
// like its torch.nn twin and can exchange weights with it.
//
// Everything is generic in the element type (float32 for training, float64
// for checking against references).
package nn

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/backprop-dev/backprop/autograd"
	"github.com/backprop-dev/backprop/tensor"
)

// Module is one layer or a container of layers. Modules start in training
// mode, as in PyTorch.
type Module[T tensor.Float] interface {
	// Forward records the module's computation on x in the graph and
	// returns its output.
	Forward(x *autograd.Var[T]) (*autograd.Var[T], error)
	// Parameters returns the trainable parameters with their state_dict
	// names relative to this module, in PyTorch's order
	// (named_parameters()).
	Parameters() []Parameter[T]
	// StateDict returns the parameters and buffers (running statistics)
	// with their names, in PyTorch's state_dict order: a module's own
	// parameters, then its own buffers, then its children's entries. The
	// tensors are the module's own storage, not copies: writing to them
	// changes the model (LoadStateDict relies on it), and a caller that
	// keeps a snapshot must Clone them.
	StateDict() []StateEntry[T]
	// SetTraining switches the module and its children between training
	// mode (true: batch statistics, dropout active) and evaluation mode
	// (false), PyTorch's model.train() and model.eval().
	SetTraining(training bool)
	// IsTraining reports the mode of the module itself.
	IsTraining() bool
}

// Container is a Module made of named child modules (Sequential,
// ModuleDict). Walks over a model (NamedModules, the init functions)
// descend through it.
type Container[T tensor.Float] interface {
	Module[T]
	// Children returns the direct submodules with their names, in order.
	Children() []Child[T]
}

// Child is a named submodule. The name becomes the prefix of its entries'
// state_dict names.
type Child[T tensor.Float] struct {
	Name   string    // "0", "encoder"; no dots
	Module Module[T] // the submodule
}

// Parameter is a trainable tensor with its state_dict name; Var.Grad holds
// its gradient after autograd.Backward.
type Parameter[T tensor.Float] struct {
	Name string           // dotted state_dict name, e.g. "0.weight"
	Var  *autograd.Var[T] // the leaf holding the value and, after Backward, the gradient
}

// StateEntry is one entry of a state dict.
type StateEntry[T tensor.Float] struct {
	Name   string            // dotted state_dict name, e.g. "1.running_mean"
	Tensor *tensor.Tensor[T] // the value
	// Buffer marks state that is not a trainable parameter (running_mean,
	// running_var, num_batches_tracked).
	Buffer bool
	// Int marks an entry that PyTorch stores as int64
	// (num_batches_tracked). Go keeps it in the float tensor with an exact
	// integer value (exact up to 2^24 in float32, 2^53 in float64); a
	// writer of PyTorch-compatible checkpoints must convert it.
	Int bool
}

// ParameterVars returns the Vars of m's parameters, for
// autograd.ZeroGrad and the like.
func ParameterVars[T tensor.Float](m Module[T]) []*autograd.Var[T] {
	ps := m.Parameters()
	vs := make([]*autograd.Var[T], len(ps))
	for i, p := range ps {
		vs[i] = p.Var
	}
	return vs
}

// NamedModules returns m and every module below it with its dotted name
// ("" for m itself), parents before their children, as PyTorch's
// named_modules().
func NamedModules[T tensor.Float](m Module[T]) []Child[T] {
	out := []Child[T]{{Name: "", Module: m}}
	if c, ok := m.(Container[T]); ok {
		for _, ch := range c.Children() {
			for _, sub := range NamedModules(ch.Module) {
				sub.Name = joinName(ch.Name, sub.Name)
				out = append(out, sub)
			}
		}
	}
	return out
}

// joinName is prefix.name, or either alone when the other is empty.
func joinName(prefix, name string) string {
	switch {
	case prefix == "":
		return name
	case name == "":
		return prefix
	}
	return prefix + "." + name
}

// trainMode holds a layer's training flag; the zero value is training
// mode, as a freshly built PyTorch module.
type trainMode struct{ eval bool }

// SetTraining switches between training (true) and evaluation mode.
func (m *trainMode) SetTraining(training bool) { m.eval = !training }

// IsTraining reports whether the layer is in training mode.
func (m *trainMode) IsTraining() bool { return !m.eval }

// stateless supplies the Module methods of a layer without parameters or
// buffers (activations, reshapes, dropout).
type stateless[T tensor.Float] struct{ trainMode }

// Parameters returns nil: the layer has no parameters.
func (stateless[T]) Parameters() []Parameter[T] { return nil }

// StateDict returns nil: the layer has no state.
func (stateless[T]) StateDict() []StateEntry[T] { return nil }

// checkChildName panics on a child name PyTorch would refuse too: empty,
// or containing a dot (which would make state_dict names ambiguous).
func checkChildName(name string) {
	if name == "" || strings.Contains(name, ".") {
		panic(fmt.Sprintf("nn: module name %q must be non-empty and contain no dot", name))
	}
}

// children is the shared part of the containers: named children in order.
type children[T tensor.Float] struct {
	trainMode
	list []Child[T]
	// names holds the joined names ([]string) of the last Parameters
	// call, reused while they match (see Parameters).
	names *atomic.Value
}

func newChildren[T tensor.Float](list []Child[T]) children[T] {
	seen := map[string]bool{}
	for _, c := range list {
		checkChildName(c.Name)
		if seen[c.Name] {
			panic(fmt.Sprintf("nn: two submodules are named %q", c.Name))
		}
		if c.Module == nil {
			panic(fmt.Sprintf("nn: submodule %q is nil", c.Name))
		}
		seen[c.Name] = true
	}
	return children[T]{list: slices.Clone(list), names: new(atomic.Value)}
}

// Children returns the submodules with their names, in order.
func (c *children[T]) Children() []Child[T] { return slices.Clone(c.list) }

// Parameters returns the children's parameters, each name prefixed with
// its child's name.
//
// The joined names are the same call after call (a training step asks for
// a model's parameters every step), so the previous call's strings are
// reused when they still match rather than concatenated anew.
func (c *children[T]) Parameters() []Parameter[T] {
	var out []Parameter[T]
	var prev, names []string
	if c.names != nil {
		prev, _ = c.names.Load().([]string)
	}
	for _, ch := range c.list {
		for _, p := range ch.Module.Parameters() {
			k := len(out)
			if k < len(prev) && isJoined(prev[k], ch.Name, p.Name) {
				p.Name = prev[k]
			} else {
				p.Name = joinName(ch.Name, p.Name)
				if names == nil {
					names = make([]string, 0, max(len(prev), 8))
					for _, q := range out {
						names = append(names, q.Name)
					}
				}
			}
			if names != nil {
				names = append(names, p.Name)
			}
			out = append(out, p)
		}
	}
	if c.names != nil && (names != nil || len(out) != len(prev)) {
		if names == nil {
			names = make([]string, len(out))
			for i, p := range out {
				names[i] = p.Name
			}
		}
		c.names.Store(names)
	}
	return out
}

// isJoined reports whether s is joinName(prefix, name), without building
// it.
func isJoined(s, prefix, name string) bool {
	switch {
	case prefix == "":
		return s == name
	case name == "":
		return s == prefix
	}
	return len(s) == len(prefix)+1+len(name) && s[:len(prefix)] == prefix && s[len(prefix)] == '.' && s[len(prefix)+1:] == name
}

// StateDict returns the children's entries, each name prefixed with its
// child's name.
func (c *children[T]) StateDict() []StateEntry[T] {
	var out []StateEntry[T]
	for _, ch := range c.list {
		for _, e := range ch.Module.StateDict() {
			e.Name = joinName(ch.Name, e.Name)
			out = append(out, e)
		}
	}
	return out
}

// SetTraining sets the mode of the container and of every child.
func (c *children[T]) SetTraining(training bool) {
	c.trainMode.SetTraining(training)
	for _, ch := range c.list {
		ch.Module.SetTraining(training)
	}
}

// Sequential applies its children in order, torch.nn.Sequential. Children
// are named "0", "1", … unless built with NewNamedSequential (PyTorch's
// Sequential(OrderedDict(...))).
type Sequential[T tensor.Float] struct {
	children[T]
}

// NewSequential chains the modules, naming them "0", "1", ….
func NewSequential[T tensor.Float](mods ...Module[T]) *Sequential[T] {
	list := make([]Child[T], len(mods))
	for i, m := range mods {
		list[i] = Child[T]{Name: strconv.Itoa(i), Module: m}
	}
	return &Sequential[T]{newChildren(list)}
}

// NewNamedSequential chains the given named modules, so that their entries
// are named "encoder.…", "decoder.…". It panics on an empty, dotted or
// repeated name, a programming error.
func NewNamedSequential[T tensor.Float](mods ...Child[T]) *Sequential[T] {
	return &Sequential[T]{newChildren(mods)}
}

// Append adds m at the end, named by its position as in NewSequential.
func (s *Sequential[T]) Append(m Module[T]) {
	name := strconv.Itoa(len(s.list))
	for _, c := range s.list {
		if c.Name == name {
			panic(fmt.Sprintf("nn: Append: a submodule is already named %q", name))
		}
	}
	if m == nil {
		panic("nn: Append: nil module")
	}
	s.list = append(s.list, Child[T]{Name: name, Module: m})
}

// Len returns the number of children.
func (s *Sequential[T]) Len() int { return len(s.list) }

// At returns child i.
func (s *Sequential[T]) At(i int) Module[T] { return s.list[i].Module }

// Forward implements Module: each child's output is the next one's input.
// An error names the failing child by its dotted path.
func (s *Sequential[T]) Forward(x *autograd.Var[T]) (*autograd.Var[T], error) {
	for _, c := range s.list {
		y, err := c.Module.Forward(x)
		if err != nil {
			return nil, wrapForward(c.Name, err)
		}
		x = y
	}
	return x, nil
}

// ModuleDict holds named modules without chaining them, torch.nn.ModuleDict:
// a generator and a discriminator in one state dict ("G.0.weight",
// "D.0.weight"), for one checkpoint of a GAN.
type ModuleDict[T tensor.Float] struct {
	children[T]
}

// NewModuleDict groups the named modules. It panics on an empty, dotted or
// repeated name.
func NewModuleDict[T tensor.Float](mods ...Child[T]) *ModuleDict[T] {
	return &ModuleDict[T]{newChildren(mods)}
}

// Get returns the module named name, or nil.
func (d *ModuleDict[T]) Get(name string) Module[T] {
	for _, c := range d.list {
		if c.Name == name {
			return c.Module
		}
	}
	return nil
}

// Forward implements Module with an error: a ModuleDict has no forward
// computation of its own; call its modules.
func (d *ModuleDict[T]) Forward(x *autograd.Var[T]) (*autograd.Var[T], error) {
	return nil, errors.New("nn: a ModuleDict has no forward pass; call Get(name).Forward")
}

// ForwardError is an error inside a container, with the dotted path of the
// module that failed ("encoder.1").
type ForwardError struct {
	Path string // dotted name of the failing module
	Err  error  // what went wrong there
}

// Error implements error.
func (e *ForwardError) Error() string { return fmt.Sprintf("nn: module %s: %v", e.Path, e.Err) }

// Unwrap returns the underlying error.
func (e *ForwardError) Unwrap() error { return e.Err }

// wrapForward prefixes the path of a child's error with the child's name.
func wrapForward(name string, err error) error {
	var fe *ForwardError
	if errors.As(err, &fe) && fe == err {
		return &ForwardError{Path: name + "." + fe.Path, Err: fe.Err}
	}
	return &ForwardError{Path: name, Err: err}
}

// ShapeMismatch is a state-dict entry whose shape differs between the
// checkpoint and the model.
type ShapeMismatch struct {
	Key        string // the state_dict name
	Model      []int  // shape the model expects
	Checkpoint []int  // shape found in the state dict being loaded
}

// LoadError explains why a state dict does not fit a model. Nothing is
// loaded when it is returned.
type LoadError struct {
	Missing    []string        // model entries absent from the state dict
	Unexpected []string        // state-dict entries the model does not have
	Duplicate  []string        // names given more than once
	Mismatched []ShapeMismatch // entries present in both with different shapes
	NotInteger []string        // integer entries (num_batches_tracked) holding a fraction
}

// Error implements error, listing every problem.
func (e *LoadError) Error() string {
	var parts []string
	quote := func(ks []string) string {
		q := make([]string, len(ks))
		for i, k := range ks {
			q[i] = strconv.Quote(k)
		}
		return strings.Join(q, ", ")
	}
	if len(e.Missing) > 0 {
		parts = append(parts, "missing key(s) in state dict: "+quote(e.Missing))
	}
	if len(e.Unexpected) > 0 {
		parts = append(parts, "unexpected key(s) in state dict: "+quote(e.Unexpected))
	}
	if len(e.Duplicate) > 0 {
		parts = append(parts, "key(s) given more than once: "+quote(e.Duplicate))
	}
	for _, m := range e.Mismatched {
		parts = append(parts, fmt.Sprintf("size mismatch for %q: the checkpoint has shape %s, the model expects %s",
			m.Key, tensor.FormatShape(m.Checkpoint), tensor.FormatShape(m.Model)))
	}
	if len(e.NotInteger) > 0 {
		parts = append(parts, "integer entries holding a fraction: "+quote(e.NotInteger))
	}
	msg := "nn: cannot load state dict: " + strings.Join(parts, "; ")
	if len(e.Mismatched) > 0 || len(e.Missing) > 0 && len(e.Unexpected) > 0 {
		msg += " (is it a checkpoint of another architecture?)"
	}
	return msg
}

// LoadStateDict copies the entries of sd into m's parameters and buffers,
// matching them by name, like PyTorch's load_state_dict(strict=True). Every
// model entry must be present with its shape and no other entry may be
// given; otherwise a *LoadError lists all the problems and m is left
// unchanged. The values are copied, so sd may be reused afterwards.
func LoadStateDict[T tensor.Float](m Module[T], sd []StateEntry[T]) error {
	model := m.StateDict()
	byName := make(map[string]StateEntry[T], len(sd))
	e := &LoadError{}
	for _, s := range sd {
		if _, dup := byName[s.Name]; dup {
			e.Duplicate = append(e.Duplicate, s.Name)
			continue
		}
		byName[s.Name] = s
	}
	known := make(map[string]bool, len(model))
	for _, me := range model {
		known[me.Name] = true
		s, ok := byName[me.Name]
		switch {
		case !ok:
			e.Missing = append(e.Missing, me.Name)
		case s.Tensor == nil || !tensor.SameShape(s.Tensor.Shape(), me.Tensor.Shape()):
			var got []int
			if s.Tensor != nil {
				got = s.Tensor.Shape()
			}
			e.Mismatched = append(e.Mismatched, ShapeMismatch{Key: me.Name, Model: me.Tensor.Shape(), Checkpoint: got})
		case me.Int:
			for _, v := range s.Tensor.Data() {
				if v != T(int64(v)) {
					e.NotInteger = append(e.NotInteger, me.Name)
					break
				}
			}
		}
	}
	for _, s := range sd {
		if !known[s.Name] && !slices.Contains(e.Unexpected, s.Name) {
			e.Unexpected = append(e.Unexpected, s.Name)
		}
	}
	if len(e.Missing)+len(e.Unexpected)+len(e.Duplicate)+len(e.Mismatched)+len(e.NotInteger) > 0 {
		return e
	}
	for _, me := range model {
		copy(me.Tensor.Data(), byName[me.Name].Tensor.Data())
	}
	return nil
}

// CloneStateDict returns a deep copy of sd, a snapshot that later training
// steps do not change.
func CloneStateDict[T tensor.Float](sd []StateEntry[T]) []StateEntry[T] {
	out := make([]StateEntry[T], len(sd))
	for i, e := range sd {
		e.Tensor = e.Tensor.Clone()
		out[i] = e
	}
	return out
}
