package blas

import "unsafe"

// kernelFn is the micro-kernel contract shared by the assembly and Go
// kernels: it computes one mr×nr tile
//
//	C[i][j] = alpha·Σ_p A(i,p)·B(p,j) + beta·C[i][j]
//
// with A(i,p) at a[i·rsa + p·csa] (so one kernel reads packed, row-major and
// transposed A), row p of B at b[p·csb : p·csb+nr], and C rows ldc apart.
// beta == 0 overwrites C without reading it.
type kernelFn[T Float] func(k int, a *T, rsa, csa int, b *T, csb int, c *T, ldc int, alpha, beta T)

// Operand layouts a kernel variant may assume (index into microKernel.fns).
const (
	aRow     = 0 // csa == 1: A packed by rows or read in place
	aKMajor  = 1 // rsa == 1, csa == mr: A packed k-major (from transposed A)
	bPacked  = 0 // csb == nr: B packed into micro-panels
	bStrided = 1 // any csb: B read in place
)

// microKernel describes a kernel family member: its register-tile shape and
// one function per operand layout, fns[aMode][bMode].
type microKernel[T Float] struct {
	name   string
	mr, nr int
	fns    [2][2]kernelFn[T]
}

type kernel32 = microKernel[float32]

var (
	kernGo32 = goKernel[float32]()
	kernGo64 = goKernel[float64]()
)

func goKernel[T Float]() *microKernel[T] {
	f := kernelGo2x4[T]
	return &microKernel[T]{name: "go", mr: 2, nr: 4, fns: [2][2]kernelFn[T]{{f, f}, {f, f}}}
}

// at returns the element i positions after p. It is only called for
// positions inside the operand, so it never forms an out-of-range pointer.
func at[T Float](p *T, i int) T {
	return *(*T)(unsafe.Add(unsafe.Pointer(p), uintptr(i)*unsafe.Sizeof(*p)))
}

func ptr[T Float](p *T, i int) *T {
	return (*T)(unsafe.Add(unsafe.Pointer(p), uintptr(i)*unsafe.Sizeof(*p)))
}

func store4[T Float](c *T, alpha, beta T, v0, v1, v2, v3 T) {
	row := (*[4]T)(unsafe.Pointer(c))
	if beta == 0 {
		row[0], row[1], row[2], row[3] = alpha*v0, alpha*v1, alpha*v2, alpha*v3
		return
	}
	row[0] = alpha*v0 + beta*row[0]
	row[1] = alpha*v1 + beta*row[1]
	row[2] = alpha*v2 + beta*row[2]
	row[3] = alpha*v3 + beta*row[3]
}

// kernelGo2x4 is the portable micro-kernel: a 2×4 tile in eight scalar
// accumulators (small enough that the Go compiler keeps the loop in
// registers), used by purego builds, non-amd64 targets, CPUs without
// AVX2/FMA and the float64 path.
func kernelGo2x4[T Float](k int, a *T, rsa, csa int, b *T, csb int, c *T, ldc int, alpha, beta T) {
	var c00, c01, c02, c03, c10, c11, c12, c13 T
	ao, bo := 0, 0
	for p := 0; p < k; p++ {
		b0, b1, b2, b3 := at(b, bo), at(b, bo+1), at(b, bo+2), at(b, bo+3)
		a0 := at(a, ao)
		c00 += a0 * b0
		c01 += a0 * b1
		c02 += a0 * b2
		c03 += a0 * b3
		a1 := at(a, ao+rsa)
		c10 += a1 * b0
		c11 += a1 * b1
		c12 += a1 * b2
		c13 += a1 * b3
		ao += csa
		bo += csb
	}
	store4(ptr(c, 0), alpha, beta, c00, c01, c02, c03)
	store4(ptr(c, ldc), alpha, beta, c10, c11, c12, c13)
}
