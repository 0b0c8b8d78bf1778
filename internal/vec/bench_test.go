package vec

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// adamBench is a 400K-element Adam problem (the size of the auto-encoder's
// parameters); subnormal puts the moments deep in the subnormal range with
// a zero gradient, as for a unit dead for ~900 steps, and β1 = β2 = 0.99999
// keeps them there for the whole run (β changes values, not the cost).
func adamBench(subnormal bool) (theta, m, v, g []float32, c AdamCoeffs) {
	const n = 400_000
	r := rand.New(rand.NewPCG(1, 2))
	theta, m, v, g = make([]float32, n), make([]float32, n), make([]float32, n), make([]float32, n)
	c = adamConfigs()[2] // lr 1e-3, β (0.9, 0.999), step 1000
	for j := range n {
		theta[j], g[j] = normal(r, 1), normal(r, 1)
		m[j], v[j] = normal(r, 0.01), float32(math.Abs(float64(normal(r, 1e-4))))
	}
	if subnormal {
		for j := range n {
			m[j], v[j], g[j] = 1e-39*float32(1+j%7), 1e-39*float32(1+j%5), 0
		}
		c.B1, c.B2 = 0.99999, 0.99999
	}
	return
}

// BenchmarkAdam measures the Adam update of 400K float32 elements on one
// goroutine, per kernel path, with normal and with subnormal moments. MB/s
// counts the memory traffic: θ, m and v read and written, the gradient
// read, 28 bytes per element. (The Go path on subnormals takes ~70 ms per
// op here: run it with -benchtime 20x.)
func BenchmarkAdam(b *testing.B) {
	for _, name := range kernelNames {
		for _, state := range []string{"normal", "subnormal"} {
			b.Run(name+"/"+state, func(b *testing.B) {
				if !kernelAvailable(name) {
					b.Skipf("kernel %s not available", name)
				}
				old := forceKernel
				forceKernel = name
				defer func() { forceKernel = old }()
				theta, m, v, g, c := adamBench(state == "subnormal")
				b.SetBytes(28 * int64(len(g)))
				for b.Loop() {
					Adam(theta, m, v, g, &c)
				}
			})
		}
	}
}

// BenchmarkAdamBatch is BenchmarkAdam through AdamBatch, split across
// GOMAXPROCS goroutines, with the automatic kernel choice.
func BenchmarkAdamBatch(b *testing.B) {
	for _, state := range []string{"normal", "subnormal"} {
		b.Run(state, func(b *testing.B) {
			theta, m, v, g, c := adamBench(state == "subnormal")
			var ab AdamBatch
			b.SetBytes(28 * int64(len(g)))
			b.ReportAllocs()
			for b.Loop() {
				ab.Add(AdamTensor{Theta: theta, M: m, V: v, Grad: g, Coeffs: c})
				ab.Run()
			}
		})
	}
}

// BenchmarkSGD measures the momentum SGD update (Nesterov, weight decay)
// of 400K float32 elements on one goroutine, per kernel path. MB/s counts
// θ and the buffer read and written and the gradient read, 20 bytes per
// element.
func BenchmarkSGD(b *testing.B) {
	for _, name := range kernelNames {
		b.Run(name, func(b *testing.B) {
			if !kernelAvailable(name) {
				b.Skipf("kernel %s not available", name)
			}
			old := forceKernel
			forceKernel = name
			defer func() { forceKernel = old }()
			theta, buf, g, _, _ := adamBench(false)
			c := SGDCoeffs{LR: 0.01, WeightDecay: 1e-4, Momentum: 0.9, Damp: 1, HasMomentum: true, Nesterov: true}
			b.SetBytes(20 * int64(len(g)))
			for b.Loop() {
				SGD(theta, buf, g, &c)
			}
		})
	}
}

// BenchmarkActivations measures each activation kernel over 800K float32
// elements (3.2 MB per slice: past L2, as a GAN activation) on one
// goroutine, per kernel path, on normal values of scale 3 (the sign
// changes at random). GB/s counts the slices read and written: 8 bytes per
// element for ReLU and LeakyReLU, 12 for the gradients and SigmoidPair.
func BenchmarkActivations(b *testing.B) {
	const n = 800_000
	r := rand.New(rand.NewPCG(1, 2))
	x, up, y, c := make([]float32, n), make([]float32, n), make([]float32, n), make([]float32, n)
	for i := range x {
		x[i], up[i] = float32(3*r.NormFloat64()), float32(r.NormFloat64())
	}
	kernels := []struct {
		name  string
		bytes int
		run   func()
	}{
		{"ReLU", 8, func() { ReLU(x, y) }},
		{"LeakyReLU", 8, func() { LeakyReLU(x, y, 0.2) }},
		{"ReLUGrad", 12, func() { ReLUGrad(x, up, y) }},
		{"LeakyReLUGrad", 12, func() { LeakyReLUGrad(x, up, y, 0.2) }},
		{"SigmoidPair", 12, func() { SigmoidPair(x, y, c) }},
	}
	for _, k := range kernels {
		for _, name := range kernelNames {
			b.Run(k.name+"/"+name, func(b *testing.B) {
				if !kernelAvailable(name) {
					b.Skipf("kernel %s not available", name)
				}
				old := forceKernel
				forceKernel = name
				defer func() { forceKernel = old }()
				for b.Loop() {
					k.run()
				}
				b.ReportMetric(float64(k.bytes*n)*float64(b.N)/float64(b.Elapsed().Nanoseconds()), "GB/s")
			})
		}
	}
}

// BenchmarkBN measures each batch-normalisation kernel over 400K float32
// elements (x, g and the output 1.6 MB each) cut into rows of 49 and of 196
// values (the 7×7 and 14×14 feature maps of the DCGAN), one call per row as
// ops.BatchNormOp makes them, on one goroutine, per kernel path. The
// per-channel kernels (…Ch, Acc…) get parameter slices of one row's length,
// reused for every row, as for an (N, C) input with C = 49 or 196.
func BenchmarkBN(b *testing.B) {
	const n = 400_000
	r := rand.New(rand.NewPCG(1, 2))
	x, g, y := make([]float32, n), make([]float32, n), make([]float32, n)
	for i := range x {
		x[i], g[i] = float32(0.3+2*r.NormFloat64()), float32(r.NormFloat64())
	}
	for _, rowLen := range []int{49, 196} {
		p := make([][]float64, 5)
		for i := range p {
			p[i] = make([]float64, rowLen)
			for j := range p[i] {
				p[i][j] = 0.5 + r.Float64()
			}
		}
		rows := func(f func(lo, hi int)) {
			for lo := 0; lo+rowLen <= n; lo += rowLen {
				f(lo, lo+rowLen)
			}
		}
		var sink float64
		kernels := []struct {
			name string
			run  func()
		}{
			{"Sum", func() { rows(func(lo, hi int) { sink += Sum(x[lo:hi]) }) }},
			{"SumSqDev", func() { rows(func(lo, hi int) { sink += SumSqDev(x[lo:hi], 0.3) }) }},
			{"SumGradDot", func() {
				rows(func(lo, hi int) { sg, sgx := SumGradDot(g[lo:hi], x[lo:hi], 0.3, 0.5); sink += sg + sgx })
			}},
			{"AccSum", func() { rows(func(lo, hi int) { AccSum(p[0], x[lo:hi]) }) }},
			{"AccSqDev", func() { rows(func(lo, hi int) { AccSqDev(p[0], x[lo:hi], p[1]) }) }},
			{"AccGradDot", func() { rows(func(lo, hi int) { AccGradDot(p[0], p[1], g[lo:hi], x[lo:hi], p[2], p[3]) }) }},
			{"Normalize", func() { rows(func(lo, hi int) { Normalize(x[lo:hi], y[lo:hi], 0.3, 0.5, 1.1, 0.1) }) }},
			{"NormalizeCh", func() { rows(func(lo, hi int) { NormalizeCh(x[lo:hi], y[lo:hi], p[0], p[1], p[2], p[3]) }) }},
			{"NormGrad", func() {
				rows(func(lo, hi int) { NormGrad(x[lo:hi], g[lo:hi], y[lo:hi], 0.3, 0.5, 0.55, 0.01, 0.02) })
			}},
			{"NormGradCh", func() {
				rows(func(lo, hi int) { NormGradCh(x[lo:hi], g[lo:hi], y[lo:hi], p[0], p[1], p[2], p[3], p[4]) })
			}},
			{"ScaleGrad", func() { rows(func(lo, hi int) { ScaleGrad(g[lo:hi], y[lo:hi], 0.55) }) }},
			{"ScaleGradCh", func() { rows(func(lo, hi int) { ScaleGradCh(g[lo:hi], y[lo:hi], p[0]) }) }},
		}
		for _, k := range kernels {
			for _, name := range kernelNames {
				b.Run(fmt.Sprintf("%s/row%d/%s", k.name, rowLen, name), func(b *testing.B) {
					if !kernelAvailable(name) {
						b.Skipf("kernel %s not available", name)
					}
					old := forceKernel
					forceKernel = name
					defer func() { forceKernel = old }()
					for b.Loop() {
						k.run()
					}
				})
			}
		}
		_ = sink
	}
}
