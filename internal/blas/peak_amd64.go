//go:build amd64 && !purego

package blas

import "unsafe"

//go:noescape
func fmaLoopAVX512(n int, acc *float32, mul, add float32)

//go:noescape
func fmaLoopAVX2(n int, acc *float32, mul, add float32)

// The assembly FMA loops of peak_amd64.s: 16 zmm or 14 ymm accumulators,
// enough independent chains to cover the FMA latency on two ports.
var (
	peakAVX512 = &peakKernel{name: "avx512", lanes: 16 * 16, run: func(n int, acc []float32, mul, add float32) {
		_ = acc[16*16-1]
		fmaLoopAVX512(n, unsafe.SliceData(acc), mul, add)
	}}
	peakAVX2 = &peakKernel{name: "avx2", lanes: 14 * 8, run: func(n int, acc []float32, mul, add float32) {
		_ = acc[14*8-1]
		fmaLoopAVX2(n, unsafe.SliceData(acc), mul, add)
	}}
)

// pickPeakKernel returns the widest FMA loop this CPU runs, honouring
// BACKPROP_NOSIMD as the products do.
func pickPeakKernel() *peakKernel {
	switch {
	case noSIMD:
		return peakGo
	case haveAVX512:
		return peakAVX512
	case haveAVX2:
		return peakAVX2
	}
	return peakGo
}

// peakKernels returns every FMA loop this CPU can run (for the tests).
func peakKernels() []*peakKernel {
	ks := []*peakKernel{peakGo}
	if haveAVX2 {
		ks = append(ks, peakAVX2)
	}
	if haveAVX512 {
		ks = append(ks, peakAVX512)
	}
	return ks
}
