package blas

// Source is a float32 matrix that is never stored whole: the blocked driver
// asks it for the blocks it packs, so a product can read an operand that is
// computed on the fly (a convolution's unfolded input, gathered from the
// image through per-row offsets) without the full matrix ever reaching
// memory.
type Source interface {
	// Pack writes rows [r0, r0+nr) × columns [c0, c0+nc) of the matrix into
	// dst in panels w columns wide: element (r0+i, c0+j) goes to
	// dst[(j/w)·nr·w + i·w + j%w]. With w ≥ nc that is one row-major block
	// whose rows are w apart. Positions of a panel past column nc are left
	// as they are (the driver zeroes them). The driver calls Pack from
	// several goroutines at once, on disjoint dst.
	Pack(dst []float32, r0, nr, c0, nc, w int)
}

// GemmSrcA computes C = alpha·A·op(B) + beta·C like Gemm(false, transB, …),
// with the m×k matrix A supplied by src (packed block by block, MR rows at a
// time when op(B) is narrow) instead of a slice. For the same values the
// result is bit for bit that of Gemm with the matrix stored and the
// transposed evaluation of short, wide products off (noSwap): the
// micro-kernels see the same packed panels in the same order.
func GemmSrcA(m, n, k int, alpha float32, src Source, transB bool, b []float32, ldb int, beta float32, c []float32, ldc int) {
	if m == 0 || n == 0 {
		return
	}
	checkArgs(false, transB, m, n, k, m*k, k, len(b), ldb, len(c), ldc)
	if k == 0 || alpha == 0 {
		scaleC(m, n, beta, c, ldc)
		return
	}
	gemmBlocked(pools32, pickKernel32(n), false, transB, m, n, k, alpha, nil, 0, b, ldb, beta, c, ldc, src, nil)
}

// GemmSrcB computes C = alpha·op(A)·B + beta·C like Gemm(transA, false, …),
// with the k×n matrix B supplied by src and always packed into
// micro-panels (where Gemm may read a stored B in place; the micro-kernels
// do the same arithmetic either way).
func GemmSrcB(transA bool, m, n, k int, alpha float32, a []float32, lda int, src Source, beta float32, c []float32, ldc int) {
	if m == 0 || n == 0 {
		return
	}
	checkArgs(transA, false, m, n, k, len(a), lda, k*n, n, len(c), ldc)
	if k == 0 || alpha == 0 {
		scaleC(m, n, beta, c, ldc)
		return
	}
	gemmBlocked(pools32, pickKernel32(n), transA, false, m, n, k, alpha, a, lda, nil, 0, beta, c, ldc, nil, src)
}

// packSrcA is packA for an A supplied by a Source: rows [ic, ic+mc) ×
// depth [pc, pc+kc) as rows kcp apart, strips of MR rows, the rows past mc
// up to the strip's end zeroed.
func packSrcA(src Source, dst []float32, ic, mc, pc, kc, MR, kcp int) {
	src.Pack(dst, ic, mc, pc, kc, kcp)
	for r := mc; r < roundUp(mc, MR); r++ {
		clear(dst[r*kcp : r*kcp+kc])
	}
}

// packSrcB is packB for a B supplied by a Source: micro-panels of NR
// columns, kc rows each, the last panel's columns past nc zeroed.
func packSrcB(src Source, dst []float32, pc, kc, j0, nc, NR int) {
	src.Pack(dst, pc, kc, j0, nc, NR)
	if r := nc % NR; r != 0 {
		panel := dst[(nc-r)*kc : (nc-r)*kc+kc*NR]
		for p := 0; p < kc; p++ {
			clear(panel[p*NR+r : p*NR+NR])
		}
	}
}
