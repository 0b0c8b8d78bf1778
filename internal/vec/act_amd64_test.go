//go:build amd64 && !purego

package vec

// avx2Pair and avx512Pair call the SigmoidPair kernels directly (len(x) >
// 0), for tests that run several paths at once.
func avx2Pair(x, s, c []float32)   { sigmoidPairAVX2(&x[0], &s[0], &c[0], len(x)) }
func avx512Pair(x, s, c []float32) { sigmoidPairAVX512(&x[0], &s[0], &c[0], len(x)) }
