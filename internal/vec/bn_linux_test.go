//go:build linux

package vec

import (
	"syscall"
	"testing"
	"unsafe"
)

// pageEnd returns a slice of n elements of size bytes each whose last
// element ends at a page followed by an inaccessible page, so that a kernel
// reading or writing past the end faults; free releases the mapping.
func pageEnd(t *testing.T, n, size int) (p unsafe.Pointer, free func()) {
	t.Helper()
	ps := syscall.Getpagesize()
	bytes := (n*size + ps - 1) / ps * ps
	m, err := syscall.Mmap(-1, 0, bytes+ps, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		t.Skipf("mmap: %v", err)
	}
	if err := syscall.Mprotect(m[bytes:], syscall.PROT_NONE); err != nil {
		t.Skipf("mprotect: %v", err)
	}
	return unsafe.Pointer(&m[bytes-n*size]), func() { syscall.Munmap(m) }
}

// TestBNPageEnd runs every batch-normalisation kernel on every path with
// each slice ending right before an inaccessible page: the masked tails
// must not touch memory past the last element.
func TestBNPageEnd(t *testing.T) {
	for _, name := range kernelNames {
		withKernel(t, name, func(t *testing.T) {
			for _, n := range bnLengths[1:] {
				var frees []func()
				f32s := func() []float32 {
					p, free := pageEnd(t, n, 4)
					frees = append(frees, free)
					s := unsafe.Slice((*float32)(p), n)
					for i := range s {
						s[i] = float32(i%7) - 3
					}
					return s
				}
				f64s := func() []float64 {
					p, free := pageEnd(t, n, 8)
					frees = append(frees, free)
					s := unsafe.Slice((*float64)(p), n)
					for i := range s {
						s[i] = 0.5
					}
					return s
				}
				x, g, y := f32s(), f32s(), f32s()
				a, b, c, d, e := f64s(), f64s(), f64s(), f64s(), f64s()
				Sum(x)
				SumSqDev(x, 1)
				SumGradDot(g, x, 1, 2)
				AccSum(a, x)
				AccSqDev(a, x, b)
				AccGradDot(a, b, g, x, c, d)
				Normalize(x, y, 1, 2, 3, 4)
				NormalizeCh(x, y, a, b, c, d)
				NormGrad(x, g, y, 1, 2, 3, 4, 5)
				NormGradCh(x, g, y, a, b, c, d, e)
				ScaleGrad(g, y, 2)
				ScaleGradCh(g, y, a)
				for _, free := range frees {
					free()
				}
			}
		})
	}
}
