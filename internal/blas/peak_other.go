//go:build !amd64 || purego

package blas

// pickPeakKernel returns the portable FMA loop: there is no assembly for
// this platform or build (purego).
func pickPeakKernel() *peakKernel { return peakGo }

// peakKernels returns every FMA loop this build can run (for the tests).
func peakKernels() []*peakKernel { return []*peakKernel{peakGo} }
