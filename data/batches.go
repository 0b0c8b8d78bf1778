package data

import (
	"fmt"
	"math/bits"
	"math/rand/v2"
)

// Batches shuffles the indices 0…n-1 with rng and cuts them into batches of
// batchSize (the last one shorter when batchSize does not divide n). Call it
// once per epoch with the same rng: a run seeded the same way sees the same
// batches in every epoch, which makes training reproducible.
//
// The shuffle is a Fisher–Yates shuffle drawing only rng.Uint64, with its
// own unbiased bounded sampling, so the permutation for a given seed does
// not depend on how the standard library implements Perm or IntN.
func Batches(n int, rng *rand.Rand, batchSize int) ([][]int, error) {
	if rng == nil {
		return nil, fmt.Errorf("data: Batches: nil random generator")
	}
	if n < 0 {
		return nil, fmt.Errorf("data: Batches: example count %d, want ≥ 0", n)
	}
	if batchSize <= 0 {
		return nil, fmt.Errorf("data: Batches: batch size %d, want > 0", batchSize)
	}
	perm := make([]int, n)
	for i := range perm {
		perm[i] = i
	}
	for i := n - 1; i > 0; i-- {
		j := int(boundedUint64(rng, uint64(i)+1))
		perm[i], perm[j] = perm[j], perm[i]
	}
	out := make([][]int, 0, (n+batchSize-1)/batchSize)
	for lo := 0; lo < n; lo += batchSize {
		out = append(out, perm[lo:min(lo+batchSize, n):min(lo+batchSize, n)])
	}
	return out, nil
}

// Batches shuffles the data set's indices into batches; see the function
// Batches.
func (d *Dataset) Batches(rng *rand.Rand, batchSize int) ([][]int, error) {
	return Batches(d.Len(), rng, batchSize)
}

// boundedUint64 returns a uniform value in [0, bound) by Lemire's
// multiply-and-reject method.
func boundedUint64(rng *rand.Rand, bound uint64) uint64 {
	hi, lo := bits.Mul64(rng.Uint64(), bound)
	if lo < bound {
		threshold := -bound % bound
		for lo < threshold {
			hi, lo = bits.Mul64(rng.Uint64(), bound)
		}
	}
	return hi
}
