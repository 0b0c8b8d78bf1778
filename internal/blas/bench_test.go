package blas

import (
	"fmt"
	"testing"
)

type benchShape struct {
	name    string
	tA, tB  bool
	m, n, k int
}

func benchGemm[T Float](b *testing.B, s benchShape) {
	lda, ldb := s.k, s.n
	if s.tA {
		lda = s.m
	}
	if s.tB {
		ldb = s.k
	}
	x := make([]T, s.m*s.k)
	y := make([]T, s.k*s.n)
	z := make([]T, s.m*s.n)
	for i := range x {
		x[i] = T(i%7) - 3
	}
	for i := range y {
		y[i] = T(i%5) - 2
	}
	Gemm(s.tA, s.tB, s.m, s.n, s.k, 1, x, lda, y, ldb, 0, z, s.n)
	b.ResetTimer()
	for b.Loop() {
		Gemm(s.tA, s.tB, s.m, s.n, s.k, 1, x, lda, y, ldb, 0, z, s.n)
	}
	flops := 2 * float64(s.m) * float64(s.n) * float64(s.k)
	b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOPS")
}

// im2colShapes are the convolution products of the DCGAN and a 5×5 conv:
// forward (col·W), and the two backward products (weights and input grads).
var im2colShapes = []benchShape{
	{name: "conv5x5_36864x32x25", m: 36864, n: 32, k: 25},
	{name: "conv1to64_12544x64x16", m: 12544, n: 64, k: 16},
	{name: "conv1to64_dW_16x64x12544", tA: true, m: 16, n: 64, k: 12544},
	{name: "conv1to64_dX_12544x16x64", tB: true, m: 12544, n: 16, k: 64},
	{name: "conv64to128_3136x128x1024", m: 3136, n: 128, k: 1024},
	{name: "conv64to128_dW_1024x128x3136", tA: true, m: 1024, n: 128, k: 3136},
	{name: "conv64to128_dX_3136x1024x128", tB: true, m: 3136, n: 1024, k: 128},
}

// BenchmarkSgemm reports float32 GFLOPS for square sizes and the im2col
// shapes; run with -cpu 1,2 to compare single-thread and parallel.
func BenchmarkSgemm(b *testing.B) {
	for _, n := range []int{128, 256, 512, 1024} {
		b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
			benchGemm[float32](b, benchShape{m: n, n: n, k: n})
		})
	}
	for _, s := range im2colShapes {
		b.Run(s.name, func(b *testing.B) { benchGemm[float32](b, s) })
	}
}

// BenchmarkSgemmTrans covers the transposed-operand packing paths at n=512.
func BenchmarkSgemmTrans(b *testing.B) {
	for tc := 0; tc < 4; tc++ {
		s := benchShape{tA: tc&1 != 0, tB: tc&2 != 0, m: 512, n: 512, k: 512}
		b.Run(fmt.Sprintf("tA=%v,tB=%v", s.tA, s.tB), func(b *testing.B) { benchGemm[float32](b, s) })
	}
}

// BenchmarkDgemm reports float64 GFLOPS of the portable blocked path.
func BenchmarkDgemm(b *testing.B) {
	b.Run("n=256", func(b *testing.B) { benchGemm[float64](b, benchShape{m: 256, n: 256, k: 256}) })
}

// BenchmarkSgemmSmall shows where the plain-loop small path (smallMNK) hands
// over to the blocked path.
func BenchmarkSgemmSmall(b *testing.B) {
	for _, s := range []int{2, 4, 6, 8, 16, 32} {
		for _, generic := range []bool{false, true} {
			b.Run(fmt.Sprintf("n=%d/generic=%v", s, generic), func(b *testing.B) {
				old := smallMNK
				if generic {
					smallMNK = 1 << 40
				} else {
					smallMNK = 0
				}
				defer func() { smallMNK = old }()
				benchGemm[float32](b, benchShape{m: s, n: s, k: s})
			})
		}
	}
}
