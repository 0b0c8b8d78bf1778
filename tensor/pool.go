package tensor

import "sync"

// Storage recycling. A training step allocates the same tensors
// (activations, their gradients, small statistics) step after step;
// handing them back with Release after the step lets New reuse them
// instead of asking the Go allocator for fresh buffers (which it zeroes
// and, for multi-megabyte ones, often faults in anew), so that a training
// loop's steady state allocates no tensors at all and leaves the garbage
// collector nothing to do. Buffers are kept by exact length, since a step
// asks for the same sizes every time; the tensors' headers are kept too.

// minPooled is the smallest tensor (in elements) whose storage is
// recycled (tests use it to make tensors the pool holds).
const minPooled = 1

// maxPooled bounds the elements the pool of one element type holds; storage
// released beyond it is left to the garbage collector.
const maxPooled = 1 << 27

// maxFreeHeaders bounds the released tensor headers kept for reuse.
const maxFreeHeaders = 1 << 14

// bufPool is the free storage of one element type, by length, and the
// headers of released tensors.
type bufPool[T Float] struct {
	mu      sync.Mutex
	free    map[int][][]T
	held    int          // elements in free
	headers []*Tensor[T] // released tensors, empty
}

var (
	pool32 bufPool[float32]
	pool64 bufPool[float64]
)

func poolFor[T Float]() *bufPool[T] {
	var z T
	switch any(z).(type) {
	case float32:
		return any(&pool32).(*bufPool[T])
	case float64:
		return any(&pool64).(*bufPool[T])
	}
	return nil
}

// get returns a free header (empty) and a free buffer of exactly n
// elements (not zeroed); either is nil when none is free.
func (p *bufPool[T]) get(n int) (*Tensor[T], []T) {
	if p == nil {
		return nil, nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	var t *Tensor[T]
	if k := len(p.headers); k > 0 {
		t = p.headers[k-1]
		p.headers[k-1] = nil
		p.headers = p.headers[:k-1]
	}
	if n < minPooled { // and n < 0: a header only
		return t, nil
	}
	list := p.free[n]
	if len(list) == 0 {
		return t, nil
	}
	b := list[len(list)-1]
	list[len(list)-1] = nil
	p.free[n] = list[:len(list)-1]
	p.held -= n
	return t, b
}

// put empties t and keeps its header and storage for reuse, each unless
// its free list is full.
func (p *bufPool[T]) put(t *Tensor[T]) {
	b := t.data
	if !t.owned {
		b = nil // a view's storage is not its own
	}
	t.data, t.shape, t.owned, t.view = nil, nil, false, false
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.headers) < maxFreeHeaders {
		p.headers = append(p.headers, t)
	}
	if b == nil || len(b) < minPooled || p.held+len(b) > maxPooled {
		return
	}
	if p.free == nil {
		p.free = make(map[int][][]T)
	}
	p.free[len(b)] = append(p.free[len(b)], b)
	p.held += len(b)
}

// Release hands tensors made by New or Empty back for reuse by later calls
// to New and Empty — their storage and the tensors themselves — and leaves
// each released tensor empty (no elements, no shape), so that a use after
// release fails loudly instead of reading another tensor's values, until
// New hands the same *Tensor out again as a new tensor.
//
// The contract: nothing may use a released tensor afterwards — neither
// the tensor (nor its Shape slice) nor any view of it (Reshape shares
// storage) — and nothing may release it again once a later New may have
// handed it out anew. Only tensors New or Empty made are recycled whole;
// of a view Reshape made, only the header is (the view is emptied, the
// storage it shares is left alone). FromSlice wrappers, clones and
// tensors already released are left alone, so releasing a tensor twice in
// a row is harmless. Package autograd's Release applies this to the
// intermediate values and gradients of a finished computation graph.
func Release[T Float](ts ...*Tensor[T]) {
	for _, t := range ts {
		if t == nil || !t.view && (!t.owned || len(t.data) != cap(t.data)) {
			continue
		}
		poolFor[T]().put(t)
	}
}
