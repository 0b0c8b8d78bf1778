//go:build !amd64 || purego

package vec

// avx2Pair and avx512Pair do not exist without assembly (kernelAvailable
// reports false for them).
func avx2Pair(x, s, c []float32)   { panic("no AVX kernels in this build") }
func avx512Pair(x, s, c []float32) { panic("no AVX kernels in this build") }
