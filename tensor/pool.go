package tensor

import "sync"

// Storage recycling. A training step allocates the same large tensors
// (activations, their gradients) step after step; handing them back with
// Release after the step lets New reuse them instead of asking the Go
// allocator for fresh multi-megabyte buffers (which it zeroes and often
// faults in anew) and leaves the garbage collector less to do. Buffers are
// kept by exact length, since a step asks for the same sizes every time.

// minPooled is the smallest tensor (in elements) whose storage is
// recycled; smaller ones are cheap for the allocator.
const minPooled = 4096

// maxPooled bounds the elements the pool of one element type holds; storage
// released beyond it is left to the garbage collector.
const maxPooled = 1 << 27

// bufPool is the free storage of one element type, by length.
type bufPool[T Float] struct {
	mu   sync.Mutex
	free map[int][][]T
	held int // elements in free
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

// get returns a free buffer of exactly n elements (not zeroed), or nil.
func (p *bufPool[T]) get(n int) []T {
	if p == nil {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	list := p.free[n]
	if len(list) == 0 {
		return nil
	}
	b := list[len(list)-1]
	list[len(list)-1] = nil
	p.free[n] = list[:len(list)-1]
	p.held -= n
	return b
}

// put adds b to the free lists unless the pool is full.
func (p *bufPool[T]) put(b []T) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.held+len(b) > maxPooled {
		return
	}
	if p.free == nil {
		p.free = make(map[int][][]T)
	}
	p.free[len(b)] = append(p.free[len(b)], b)
	p.held += len(b)
}

// Release hands the storage of tensors allocated by New back for reuse by
// later calls to New, and leaves each released tensor empty (no elements,
// no shape), so that a use after release fails loudly instead of reading
// another tensor's values.
//
// The contract: nothing may use a released tensor's storage afterwards —
// neither the tensor nor any view of it (Reshape shares storage). Only
// storage New allocated is recycled: views, FromSlice wrappers, small
// tensors and tensors already released are left alone (a view is emptied
// neither), so releasing a tensor twice is harmless. Package autograd's
// Release applies this to the intermediate values and gradients of a
// finished computation graph.
func Release[T Float](ts ...*Tensor[T]) {
	for _, t := range ts {
		if t == nil || !t.owned || len(t.data) < minPooled || len(t.data) != cap(t.data) {
			continue
		}
		poolFor[T]().put(t.data)
		t.data, t.shape, t.owned = nil, nil, false
	}
}
