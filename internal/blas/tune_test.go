package blas

import (
	"fmt"
	"math"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Tuning aids, inert unless their environment variables are set:
//
//	T_KC, T_MC, T_NC, T_DA, T_DB  override blockKC, blockMC, blockNC,
//	                              directAMaxN, directBMaxM
//	T_FORCE=avx512|avx2|go        pins the kernel (forceKernel)
//	T_ONLY=substr                 restricts BenchmarkTuneReport, which
//	                              reports best and mean GFLOPS at 1 and 2
//	                              threads, to matching shapes
//
// Best-of-N is what the code can do when it has the cores to itself, which
// is the useful number on a shared, noisy machine.
func init() {
	geti := func(name string, p *int) {
		if v := os.Getenv(name); v != "" {
			*p, _ = strconv.Atoi(v)
		}
	}
	geti("T_KC", &blockKC)
	geti("T_MC", &blockMC)
	geti("T_NC", &blockNC)
	geti("T_DA", &directAMaxN)
	geti("T_DB", &directBMaxM)
	if v := os.Getenv("T_FORCE"); v != "" {
		forceKernel = v
	}
}

// BenchmarkTuneReport measures Gemm on square and im2col shapes at 1 and 2
// threads and reports the best single call's GFLOPS (what the code does
// with the cores to itself) as well as the mean, e.g.
//
//	go test ./internal/blas -run '^$' -bench TuneReport/procs=1 [T_ONLY=substr]
func BenchmarkTuneReport(b *testing.B) {
	shapes := []benchShape{{name: "n=128", m: 128, n: 128, k: 128}, {name: "n=256", m: 256, n: 256, k: 256},
		{name: "n=512", m: 512, n: 512, k: 512}, {name: "n=1024", m: 1024, n: 1024, k: 1024}}
	shapes = append(shapes, im2colShapes...)
	if f := os.Getenv("T_ONLY"); f != "" {
		var sel []benchShape
		for _, s := range shapes {
			if strings.Contains(s.name, f) {
				sel = append(sel, s)
			}
		}
		shapes = sel
	}
	for _, procs := range []int{1, 2} {
		for _, s := range shapes {
			b.Run(fmt.Sprintf("procs=%d/%s", procs, s.name), func(b *testing.B) {
				defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
				lda, ldb := s.k, s.n
				if s.tA {
					lda = s.m
				}
				if s.tB {
					ldb = s.k
				}
				x := make([]float32, s.m*s.k)
				y := make([]float32, s.k*s.n)
				z := make([]float32, s.m*s.n)
				for i := range x {
					x[i] = float32(i%7) - 3
				}
				for i := range y {
					y[i] = float32(i%5) - 2
				}
				flops := 2 * float64(s.m) * float64(s.n) * float64(s.k)
				best := time.Duration(math.MaxInt64)
				b.ResetTimer()
				for range b.N {
					t0 := time.Now()
					Gemm(s.tA, s.tB, s.m, s.n, s.k, 1, x, lda, y, ldb, 0, z, s.n)
					best = min(best, time.Since(t0))
				}
				b.ReportMetric(flops/best.Seconds()/1e9, "best-GFLOPS")
				b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOPS")
			})
		}
	}
}
