package blas

import (
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/backprop-dev/backprop/internal/parallel"
)

// Tunables of the blocked driver, measured on a 2-core AVX-512 Xeon (48 KiB
// L1d, 2 MiB L2 per core) with BenchmarkSgemm and TestTuneReport. They are
// variables so tests can shrink them to reach every driver branch.
var (
	blockKC = 256  // depth of a k block: C is updated once per KC
	blockMC = 192  // rows of A packed per block (MC×KC floats stay in L2)
	blockNC = 4096 // columns of B packed per panel (KC×NC floats stay in L2)

	// directAMaxN: when op(B) has at most this many columns and A is not
	// transposed, each strip of A feeds so few tiles that packing it costs
	// more than it saves, so the kernel reads A in place (the tall-skinny
	// im2col products).
	directAMaxN = 128
	// directBMaxM: when op(A) has at most this many rows and B is not
	// transposed, the kernel reads B in place instead of packing it: B's
	// panels are then reused by at most 128/MR row tiles, too few to repay
	// a copy of all of B (a weight gradient's 3136×1024 unfolded input).
	directBMaxM = 128
	// directBMaxK: a product this shallow (the one-channel convolution's
	// k = 16) does too little work per packed value for packing B to pay,
	// however many rows op(A) has.
	directBMaxK = 32

	// smallMNK: below this m·n·k the plain loops beat any setup cost.
	smallMNK = 200
	// parallelFlops: products below this many flops (2·m·n·k) run serially.
	parallelFlops = 2e6
	// flopsPerWorker: each extra goroutine needs at least this much work.
	flopsPerWorker = 1e6
)

// forceKernel is a test hook: "avx512", "avx2" or "go" pins the float32
// micro-kernel regardless of CPU detection and BACKPROP_NOSIMD; "" means
// automatic. Tests check kernelAvailable first: forcing a kernel the CPU
// lacks faults.
var forceKernel string

// noSIMD is set from BACKPROP_NOSIMD=1 at start-up and makes the float32
// path use the portable Go kernel.
var noSIMD = os.Getenv("BACKPROP_NOSIMD") == "1"

// maxWorkers bounds the goroutines one call fans out to.
const maxWorkers = 64

// gemmPlan is one blocked product, shared read-only by its workers.
type gemmPlan[T Float] struct {
	transA, transB bool
	m, n, k        int
	alpha, beta    T
	a, b, c        []T
	lda, ldb, ldc  int

	kern             *microKernel[T]
	mc, kc, nc       int
	directA, directB bool
	wsPool           *sync.Pool

	// srcA, srcB supply A or B instead of a and b (float32 only; see
	// GemmSrcA, GemmSrcB): they are always packed.
	srcA, srcB Source
}

// workspace holds one worker's pack buffers; it is recycled through a
// sync.Pool so steady-state calls do not allocate.
type workspace[T Float] struct {
	ap, bp, ea, eb, tile []T
}

// grow returns buf resized to n elements, reallocating (64-byte aligned)
// only when the capacity is too small.
func grow[T Float](buf []T, n int) []T {
	if cap(buf) >= n {
		return buf[:n]
	}
	var z T
	per := int(64 / unsafe.Sizeof(z))
	s := make([]T, n+per)
	off := 0
	for uintptr(unsafe.Pointer(&s[off]))%64 != 0 {
		off++
	}
	return s[off : off+n : off+n]
}

func roundUp(x, m int) int { return (x + m - 1) / m * m }

// run computes the rows [i0,i1) × columns [j0,j1) block of C with the
// GotoBLAS loop nest: jc (NC) → pc (KC, pack B) → ic (MC, pack A) → jr (NR)
// → ir (MR) → micro-kernel.
func (g *gemmPlan[T]) run(t *gemmTask[T]) {
	i0, i1, j0, j1 := t.i0, t.i1, t.j0, t.j1
	c, ldc := t.c, t.ldc
	ws := g.wsPool.Get().(*workspace[T])
	defer g.wsPool.Put(ws)
	MR, NR := g.kern.mr, g.kern.nr
	kcp := roundUp(min(g.kc, t.p1-t.p0), 16) + 16 // padded row length of packed A
	mcStep := g.mc
	aMode := aRow
	if g.transA {
		aMode = aKMajor
	}
	if g.directA {
		mcStep = MR
	}
	fns := &g.kern.fns
	iter := 0 // k blocks done, selects the shared B buffer
	for jc := j0; jc < j1; jc += g.nc {
		nc := min(g.nc, j1-jc)
		for pc := t.p0; pc < t.p1; pc += g.kc {
			kc := min(g.kc, t.p1-pc)
			beta := t.beta
			if pc > t.p0 {
				beta = 1
			}
			var bpanel []T
			if sh := t.shared; sh != nil {
				// Pack this worker's share of the micro-panels, then wait
				// for the others' shares.
				bpanel = sh.buf[iter&1]
				iter++
				np := (nc + NR - 1) / NR
				lo, hi := t.id*np/int(sh.parts)*NR, (t.id+1)*np/int(sh.parts)*NR
				if hi > nc {
					hi = nc
				}
				if lo < hi {
					g.packB(bpanel[lo*kc:], pc, kc, jc+lo, hi-lo, NR)
				}
				sh.bar.wait()
			} else if !g.directB {
				ws.bp = grow(ws.bp, kc*roundUp(nc, NR))
				bpanel = ws.bp
				g.packB(bpanel, pc, kc, jc, nc, NR)
			} else if r := nc % NR; r != 0 {
				ws.eb = grow(ws.eb, kc*NR)
				g.packB(ws.eb, pc, kc, jc+nc-r, r, NR)
			}
			for ic := i0; ic < i1; ic += mcStep {
				mc := min(mcStep, i1-ic)
				packedA := !g.directA || mc < MR || g.srcA != nil
				var ap []T
				if packedA {
					if g.directA {
						ws.ea = grow(ws.ea, MR*kcp)
						ap = ws.ea
					} else {
						ws.ap = grow(ws.ap, roundUp(mc, MR)*kcp)
						ap = ws.ap
					}
					g.packA(ap, ic, mc, pc, kc, MR, kcp)
				}
				for jr := 0; jr < nc; jr += NR {
					nr := min(NR, nc-jr)
					var bp *T
					csb, bMode := NR, bPacked
					switch {
					case !g.directB:
						bp = &bpanel[jr*kc]
					case nr == NR:
						bp, csb, bMode = &g.b[pc*g.ldb+jc+jr], g.ldb, bStrided
					default:
						bp = &ws.eb[0]
					}
					for ir := 0; ir < mc; ir += MR {
						mr := min(MR, mc-ir)
						i := ic + ir
						var aptr *T
						var rsa, csa int
						switch {
						case !packedA: // directA implies !transA
							aptr, rsa, csa = &g.a[i*g.lda+pc], g.lda, 1
						case !g.transA:
							aptr, rsa, csa = &ap[ir*kcp], kcp, 1
						default:
							aptr, rsa, csa = &ap[ir*kcp], 1, MR
						}
						fn := fns[aMode][bMode]
						ci := i*ldc + jc + jr
						if mr == MR && nr == NR {
							fn(kc, aptr, rsa, csa, bp, csb, &c[ci], ldc, g.alpha, beta)
							continue
						}
						ws.tile = grow(ws.tile, MR*NR)
						fn(kc, aptr, rsa, csa, bp, csb, &ws.tile[0], NR, g.alpha, 0)
						mergeTile(c[ci:], ldc, ws.tile, NR, mr, nr, beta)
					}
				}
			}
		}
	}
}

// mergeTile folds an edge tile computed into a scratch buffer into C.
func mergeTile[T Float](c []T, ldc int, t []T, ldt, mr, nr int, beta T) {
	for i := 0; i < mr; i++ {
		crow := c[i*ldc : i*ldc+nr]
		trow := t[i*ldt : i*ldt+nr]
		if beta == 0 {
			copy(crow, trow)
			continue
		}
		for j, v := range trow {
			crow[j] = v + beta*crow[j]
		}
	}
}

// packA copies rows [ic, ic+mc) × depth [pc, pc+kc) of op(A) into strips of
// MR rows, each strip MR·kcp elements long and zero-padded past mc. Untransposed
// A keeps its rows (row stride kcp, a plain copy); transposed A is stored
// k-major with MR values per k step. Both are straight copies of memory runs.
func (g *gemmPlan[T]) packA(dst []T, ic, mc, pc, kc, MR, kcp int) {
	if g.srcA != nil {
		packSrcA(g.srcA, any(dst).([]float32), ic, mc, pc, kc, MR, kcp)
		return
	}
	if !g.transA {
		for s := 0; s < mc; s += MR {
			rows := min(MR, mc-s)
			strip := dst[s*kcp : s*kcp+MR*kcp]
			for r := 0; r < MR; r++ {
				d := strip[r*kcp : r*kcp+kc]
				if r < rows {
					o := (ic+s+r)*g.lda + pc
					copy(d, g.a[o:o+kc])
				} else {
					clear(d)
				}
			}
		}
		return
	}
	// Transposed A: each k step is a contiguous run of mc values, dealt out
	// MR at a time to the strips (unrolled element copies, no memmove calls).
	full := mc / MR * MR
	for p := 0; p < kc; p++ {
		o := (pc+p)*g.lda + ic
		src := g.a[o : o+mc]
		d := dst[p*MR:]
		switch MR {
		case 6:
			for s := 0; s < full; s += 6 {
				t, f := d[s*kcp:s*kcp+6], src[s:s+6]
				t[0], t[1], t[2], t[3], t[4], t[5] = f[0], f[1], f[2], f[3], f[4], f[5]
			}
		case 12:
			for s := 0; s < full; s += 12 {
				t, f := d[s*kcp:s*kcp+12], src[s:s+12]
				t[0], t[1], t[2], t[3], t[4], t[5] = f[0], f[1], f[2], f[3], f[4], f[5]
				t[6], t[7], t[8], t[9], t[10], t[11] = f[6], f[7], f[8], f[9], f[10], f[11]
			}
		case 2:
			for s := 0; s < full; s += 2 {
				t, f := d[s*kcp:s*kcp+2], src[s:s+2]
				t[0], t[1] = f[0], f[1]
			}
		default:
			for s := 0; s < full; s += MR {
				copy(d[s*kcp:s*kcp+MR], src[s:s+MR])
			}
		}
		if full < mc {
			t := d[full*kcp : full*kcp+MR]
			copy(t, src[full:])
			clear(t[mc-full:])
		}
	}
}

// packTB is the number of k steps transposed per block when packing a
// transposed B (see packB).
const packTB = 16

// packB copies depth [pc, pc+kc) × columns [j0, j0+nc) of op(B) into
// micro-panels of NR columns: panel q holds kc rows of NR contiguous values
// (zero-padded past nc), so the kernel streams it linearly.
func (g *gemmPlan[T]) packB(dst []T, pc, kc, j0, nc, NR int) {
	if g.srcB != nil {
		packSrcB(g.srcB, any(dst).([]float32), pc, kc, j0, nc, NR)
		return
	}
	for jr := 0; jr < nc; jr += NR {
		cols := min(NR, nc-jr)
		panel := dst[jr*kc : jr*kc+kc*NR]
		if !g.transB {
			for p := 0; p < kc; p++ {
				d := panel[p*NR : p*NR+NR]
				o := (pc+p)*g.ldb + j0 + jr
				copy(d, g.b[o:o+cols])
				if cols < NR {
					clear(d[cols:])
				}
			}
			continue
		}
		if cols < NR {
			clear(panel)
		}
		// Transpose in blocks of packTB rows of the panel, so that the
		// block being written (packTB·NR values) and the cols runs being
		// read stay in L1; column by column over all kc rows, the panel
		// (kc·NR values) would not fit and every store would miss.
		for p0 := 0; p0 < kc; p0 += packTB {
			pn := min(packTB, kc-p0)
			j := 0
			// Four columns at a time: four contiguous stores per k step.
			for ; j+4 <= cols; j += 4 {
				o := (j0+jr+j)*g.ldb + pc + p0
				s0 := g.b[o : o+pn]
				s1 := g.b[o+g.ldb : o+g.ldb+pn][:len(s0)]
				s2 := g.b[o+2*g.ldb : o+2*g.ldb+pn][:len(s0)]
				s3 := g.b[o+3*g.ldb : o+3*g.ldb+pn][:len(s0)]
				for q := range s0 {
					d := (*[4]T)(panel[(p0+q)*NR+j:])
					d[0], d[1], d[2], d[3] = s0[q], s1[q], s2[q], s3[q]
				}
			}
			for ; j < cols; j++ {
				o := (j0+jr+j)*g.ldb + pc + p0
				src := g.b[o : o+pn]
				d := panel[p0*NR+j:]
				for q, v := range src {
					d[q*NR] = v
				}
			}
		}
	}
}

// Fork/join: the helper goroutines of package internal/parallel, shared
// with the engine's other parallel passes. A call claims idle helpers
// exclusively (never waiting for busy ones), so every task of a row-split
// call runs concurrently — which the shared-B barrier relies on — and
// concurrent calls simply get fewer helpers. A parallel call costs one
// channel send per helper and no allocation.

// gemmTask is one worker's share: rows [i0,i1) × columns [j0,j1) of C over
// depth [p0,p1), accumulated into c (row stride ldc) with the given beta.
// With a split over k, c is a private buffer that the caller sums up.
// With a shared B, the workers of a call pack B panels together.
type gemmTask[T Float] struct {
	g                      *gemmPlan[T]
	i0, i1, j0, j1, p0, p1 int
	c                      []T
	ldc                    int
	beta                   T
	shared                 *sharedB[T]
	id                     int // index among the workers sharing B
	grp                    *parallel.Group
}

// Run implements parallel.Task.
func (t *gemmTask[T]) Run() { t.g.run(t) }

// Done implements parallel.Task.
func (t *gemmTask[T]) Done() { t.grp.Done() }

// sharedB is the packed B panel the workers of a row-split call share: each
// packs 1/parts of the micro-panels, then all meet at the barrier. Two
// buffers alternate between k blocks, so one barrier per block suffices: a
// worker reaching block p's barrier has finished computing block p-1, whose
// buffer block p+1 overwrites.
type sharedB[T Float] struct {
	buf   [2][]T
	parts int32
	bar   barrier
}

// barrier is a reusable barrier for the (at most GOMAXPROCS) workers of one
// call. A worker that arrives early spins briefly — partners usually arrive
// within microseconds — and then sleeps on a condition variable instead of
// yielding in a loop: on a loaded machine the partner's thread may be
// descheduled by the OS, and a spinning or Gosched-looping waiter would only
// burn the CPU time that partner needs. The last worker to arrive opens the
// barrier and wakes the sleepers.
type barrier struct {
	n     int32
	count atomic.Int32
	gen   atomic.Uint32
	mu    sync.Mutex
	cond  sync.Cond // cond.L is &mu, set by init
}

// init prepares b for n workers.
func (b *barrier) init(n int) {
	b.n = int32(n)
	b.cond.L = &b.mu
}

func (b *barrier) wait() {
	g := b.gen.Load()
	if b.count.Add(1) == b.n {
		b.count.Store(0)
		b.mu.Lock()
		b.gen.Add(1)
		b.mu.Unlock()
		b.cond.Broadcast()
		return
	}
	var start time.Time
	for i := 0; ; i++ {
		if b.gen.Load() != g {
			return
		}
		if i&63 == 63 {
			if start.IsZero() {
				start = time.Now()
			} else if time.Since(start) > parallel.SpinWait {
				break
			}
		}
	}
	b.mu.Lock()
	for b.gen.Load() == g {
		b.cond.Wait()
	}
	b.mu.Unlock()
}

// callState is the per-call scratch (plan, tasks, helpers, wait group,
// shared B panel, split-k partial sums), pooled.
type callState[T Float] struct {
	plan    gemmPlan[T]
	tasks   [maxWorkers]gemmTask[T]
	helpers [maxWorkers]*parallel.Helper
	red     [maxWorkers][]T
	shared  sharedB[T]
	grp     parallel.Group
}

// pools bundles the per-element-type sync.Pools.
type pools[T Float] struct {
	calls, ws sync.Pool
}

func newPools[T Float]() *pools[T] {
	p := &pools[T]{}
	p.calls.New = func() any { return new(callState[T]) }
	p.ws.New = func() any { return new(workspace[T]) }
	return p
}

var (
	pools32 = newPools[float32]()
	pools64 = newPools[float64]()
)

// split divides whole into at most nw tasks in cs.tasks and returns how
// many. With enough row tiles it splits M, the workers packing B together
// into a shared panel (or reading it in place). Otherwise it splits N (each
// worker packs its own B columns and all of the small A), and when neither
// side has enough tiles to go round but k is long (the weight gradient of a
// convolution) it splits k, the extra workers accumulating into private m×n
// buffers that the caller adds up.
// splitK splits whole along k into at most nw tasks when there are too few
// tiles to share out, or when the depth dwarfs the output (a weight
// gradient summed over a batch of positions, 128×1024×3136): then each
// worker packs and streams its own stretch of both operands with no
// barrier, and only the small C is added up at the end, where a row split
// would share every B panel. It returns the number of tasks, or 0 if the
// product is not split along k. Task 0 accumulates into C; the others write
// private partial products, which the caller adds in task order. The split
// depends only on the shape and nw, never on how many helpers are free, so
// the sums — and so the results — are the same from call to call.
func (cs *callState[T]) splitK(nw int, whole *gemmTask[T]) int {
	g := &cs.plan
	m, n, k := g.m, g.n, g.k
	tilesM, tilesN := (m+g.kern.mr-1)/g.kern.mr, (n+g.kern.nr-1)/g.kern.nr
	if !((max(tilesM, tilesN) < 2*nw || k >= 2*max(m, n)) && k >= 2*g.kc) {
		return 0
	}
	nw = min(nw, k/g.kc)
	chunk := roundUp((k+nw-1)/nw, g.kc)
	parts := 0
	for p := 0; p < k; p += chunk {
		t := &cs.tasks[parts]
		*t = *whole
		t.p0, t.p1 = p, min(k, p+chunk)
		if parts > 0 {
			cs.red[parts] = grow(cs.red[parts], m*n)
			t.c, t.ldc, t.beta = cs.red[parts], n, 0
		}
		parts++
	}
	return parts
}

// split divides whole into at most nw tasks by rows or by columns of C,
// each element of C computed whole by one task (so the results do not
// depend on nw), and returns the number of tasks.
func (cs *callState[T]) split(nw int, whole *gemmTask[T]) int {
	g := &cs.plan
	m, n, k := g.m, g.n, g.k
	MR, NR := g.kern.mr, g.kern.nr
	tilesM, tilesN := (m+MR-1)/MR, (n+NR-1)/NR
	splitM := tilesM >= 2*nw || tilesM >= tilesN
	var chunk int
	if splitM {
		chunk = roundUp((m+nw-1)/nw, MR)
	} else {
		chunk = roundUp((n+nw-1)/nw, NR)
	}
	parts := 0
	for lo := 0; parts < nw; lo += chunk {
		t := &cs.tasks[parts]
		*t = *whole
		t.id = parts
		if splitM {
			if lo >= m {
				break
			}
			t.i0, t.i1 = lo, min(m, lo+chunk)
		} else {
			if lo >= n {
				break
			}
			t.j0, t.j1 = lo, min(n, lo+chunk)
		}
		parts++
	}
	if splitM && !g.directB && parts > 1 {
		sh := &cs.shared
		size := min(g.kc, k) * roundUp(min(g.nc, n), NR)
		sh.buf[0], sh.buf[1] = grow(sh.buf[0], size), grow(sh.buf[1], size)
		sh.parts = int32(parts)
		sh.bar.init(parts)
		for w := range parts {
			cs.tasks[w].shared = sh
		}
	}
	return parts
}

// serial reports whether an m×n×k product runs on one goroutine (see
// parallelFlops). With helpers that poll for work and barriers that poll
// before sleeping, even a Linear layer's 64×256×784 products gain from a
// split (ae-step 1.29-1.43 -> 1.21-1.23 ms), so the cut-off is low.
func serial(m, n, k int) bool { return 2*float64(m)*float64(n)*float64(k) < parallelFlops }

// gemmBlocked runs C = alpha·op(A)·op(B) + beta·C with the packed, blocked
// driver and kernel kern, fanning out over goroutines for large products.
// A non-nil sa or sb (float32 only) supplies A or B in place of a or b.
func gemmBlocked[T Float](pl *pools[T], kern *microKernel[T], transA, transB bool, m, n, k int, alpha T, a []T, lda int, b []T, ldb int, beta T, c []T, ldc int, sa, sb Source) {
	cs := pl.calls.Get().(*callState[T])
	g := &cs.plan
	*g = gemmPlan[T]{
		transA: transA, transB: transB, m: m, n: n, k: k,
		alpha: alpha, beta: beta, a: a, b: b, c: c, lda: lda, ldb: ldb, ldc: ldc,
		kern: kern, mc: roundUp(blockMC, kern.mr), kc: blockKC, nc: roundUp(blockNC, kern.nr),
		wsPool: &pl.ws, srcA: sa, srcB: sb,
	}
	g.directA = !transA && n <= directAMaxN // with srcA: packed, but one MR strip at a time
	g.directB = sb == nil && !transB && (m <= directBMaxM || k <= directBMaxK)

	flops := 2 * float64(m) * float64(n) * float64(k)
	nw := 1
	if !serial(m, n, k) {
		nw = min(runtime.GOMAXPROCS(0), maxWorkers, int(flops/flopsPerWorker))
	}
	whole := gemmTask[T]{g: g, i0: 0, i1: m, j0: 0, j1: n, p0: 0, p1: k, c: c, ldc: ldc, beta: beta, grp: &cs.grp}
	kparts := 0
	if nw > 1 {
		kparts = cs.splitK(nw, &whole)
		if kparts == 0 && k <= g.kc && k >= 256 {
			// A single k block leaves the workers of a row split nothing
			// to overlap: each must pack its share of B and wait for the
			// other's before any arithmetic. Two blocks let one worker
			// compute on the first while the second is packed
			// (256×256×256: 226 -> 144 µs).
			g.kc = roundUp((k+1)/2, 16)
		}
	}
	helpers := cs.helpers[:0]
	if want := max(nw, kparts) - 1; want > 0 {
		helpers = parallel.Claim(helpers, want)
	}
	switch {
	case kparts > 1:
		// Helpers take what they can; the caller computes the rest, so
		// that the partition (and the order of the sums) stays fixed.
		h := min(len(helpers), kparts-1)
		for _, x := range helpers[h:] {
			x.Release()
		}
		cs.grp.Add(h)
		for w := 1; w <= h; w++ {
			helpers[w-1].Go(&cs.tasks[w])
		}
		g.run(&cs.tasks[0])
		for w := h + 1; w < kparts; w++ {
			g.run(&cs.tasks[w])
		}
		cs.grp.Wait()
		for w := 1; w < kparts; w++ {
			t := &cs.tasks[w]
			for i := 0; i < m; i++ {
				crow := c[i*ldc : i*ldc+n]
				for j, v := range t.c[i*n : i*n+n] {
					crow[j] += v
				}
			}
		}
		for w := range kparts {
			cs.tasks[w] = gemmTask[T]{}
		}
		clear(helpers)
	case len(helpers) == 0:
		g.run(&whole)
	default:
		parts := cs.split(len(helpers)+1, &whole)
		for _, h := range helpers[parts-1:] {
			h.Release() // not needed after all
		}
		cs.grp.Add(parts - 1)
		for w := 1; w < parts; w++ {
			helpers[w-1].Go(&cs.tasks[w])
		}
		g.run(&cs.tasks[0])
		cs.grp.Wait()
		for w := range parts {
			cs.tasks[w] = gemmTask[T]{}
		}
		clear(helpers)
	}
	*g = gemmPlan[T]{}
	pl.calls.Put(cs)
}
