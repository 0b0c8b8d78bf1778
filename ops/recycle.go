package ops

import (
	"reflect"
	"sync"
)

// Recycling of op values. A training step builds the same ops step after
// step, one value per node; autograd.Release hands every released node's
// op to its Recycle method (autograd.Recycler), and the constructors of
// this package (BiasAdd, Unary, MatMul, NewBatchNormOp, …) draw on the
// values recycled, so that a training loop's steady state allocates no op
// values. Only values a constructor made are recycled: an op a caller
// builds itself (&MatMulOp{…}) is never handed to another node, since the
// caller may still hold it. A recycled op keeps the capacity of its
// scratch slices.

// maxFreeOps bounds each op type's free list.
const maxFreeOps = 1 << 10

// opFree is the free list of one op type.
type opFree[O any] struct {
	mu   sync.Mutex
	free []*O
}

// opFrees maps an op type (reflect.Type of O) to its *opFree[O].
var opFrees sync.Map

func freeList[O any]() *opFree[O] {
	k := reflect.TypeFor[O]()
	if f, ok := opFrees.Load(k); ok {
		return f.(*opFree[O])
	}
	f, _ := opFrees.LoadOrStore(k, new(opFree[O]))
	return f.(*opFree[O])
}

// newOp returns a recycled op value of type O (as its Recycle method left
// it) or a new zero one.
func newOp[O any]() *O {
	f := freeList[O]()
	f.mu.Lock()
	if n := len(f.free); n > 0 {
		o := f.free[n-1]
		f.free[n-1] = nil
		f.free = f.free[:n-1]
		f.mu.Unlock()
		return o
	}
	f.mu.Unlock()
	return new(O)
}

// putOp puts o on its type's free list unless that is full. o must have
// been reset, and nothing may use it until newOp hands it out again.
func putOp[O any](o *O) {
	f := freeList[O]()
	f.mu.Lock()
	if len(f.free) < maxFreeOps {
		f.free = append(f.free, o)
	}
	f.mu.Unlock()
}

// recyclable marks an op value made by a constructor of this package,
// which Recycle may hand to a later node.
type recyclable struct{ pooled bool }

// floats returns b resized to n zeros, reusing its storage when it is
// large enough.
func floats(b []float64, n int) []float64 {
	if cap(b) < n {
		return make([]float64, n)
	}
	b = b[:n]
	clear(b)
	return b
}
