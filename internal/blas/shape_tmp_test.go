package blas

import (
	"fmt"
	"testing"
)

func BenchmarkConvShapes(b *testing.B) {
	for _, s := range []struct {
		ta, tb  bool
		m, n, k int
	}{
		{false, true, 64, 256, 784},
		{false, true, 64, 784, 256},
		{false, false, 64, 256, 784},
		{true, false, 784, 256, 64},
		{true, false, 256, 784, 64},
	} {
		a := make([]float32, s.m*s.k)
		bb := make([]float32, s.k*s.n)
		c := make([]float32, s.m*s.n)
		for i := range a {
			a[i] = float32(i%7) * 0.1
		}
		for i := range bb {
			bb[i] = float32(i%5) * 0.1
		}
		lda, ldb := s.k, s.n
		if s.ta {
			lda = s.m
		}
		if s.tb {
			ldb = s.k
		}
		b.Run(fmt.Sprintf("%v%v_%dx%dx%d", s.ta, s.tb, s.m, s.n, s.k), func(b *testing.B) {
			for range b.N {
				Gemm(s.ta, s.tb, s.m, s.n, s.k, 1, a, lda, bb, ldb, 0, c, s.n)
			}
			b.ReportMetric(2*float64(s.m*s.n*s.k)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOPS")
		})
	}
}
