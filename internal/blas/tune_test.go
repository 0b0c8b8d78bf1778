package blas

import (
	"fmt"
	"os"
	"runtime"
	"sort"
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
//	T_REPORT=1 [T_ONLY=substr]    TestTuneReport prints best-of-N and
//	                              25th-percentile GFLOPS at 1 and 2 threads
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

func TestTuneReport(t *testing.T) {
	if os.Getenv("T_REPORT") == "" {
		t.Skip("set T_REPORT=1 to print a GFLOPS table")
	}
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
		old := runtime.GOMAXPROCS(procs)
		for _, s := range shapes {
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
			reps := int(4e10/flops) + 5
			var ts []float64
			for r := 0; r < reps; r++ {
				t0 := time.Now()
				Gemm(s.tA, s.tB, s.m, s.n, s.k, 1, x, lda, y, ldb, 0, z, s.n)
				ts = append(ts, time.Since(t0).Seconds())
			}
			sort.Float64s(ts)
			fmt.Printf("%-32s procs=%d best %6.1f  p25 %6.1f GFLOPS\n", s.name, procs, flops/ts[0]/1e9, flops/ts[len(ts)/4]/1e9)
		}
		runtime.GOMAXPROCS(old)
	}
}
