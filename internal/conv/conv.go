// Package conv holds the raw-slice kernels behind the 2-D convolution ops:
// im2col, col2im and the three products of a convolution layer (forward,
// gradient with respect to the input, gradient with respect to the weight),
// all expressed as matrix products through blas.Gemm.
//
// Every function describes one cross-correlation in PyTorch's sense
// (torch.nn.functional.conv2d): an image of C channels and size H×W, zero
// padded by PH rows and PW columns on each side, is scanned by a KH×KW
// kernel with stride SH×SW, giving an OH×OW output per output channel:
//
//	y[n,o,i,j] = Σ_c Σ_a Σ_b w[o,c,a,b] · x[n,c, i·SH+a−PH, j·SW+b−PW]
//
// Out-of-range input positions read as zero. A transposed convolution is the
// same linear map read backwards, so its forward pass is BackwardInput and
// its input gradient is Forward; the ops package shares these kernels
// between both layers (TransposedBackward fuses the transposed layer's two
// gradients, Backward the plain layer's).
//
// The package knows nothing of tensors or autograd: callers pass dimensions
// and row-major slices for inputs and outputs. The column workspace may be
// passed in; otherwise one is taken from a pool and recycled, so repeated
// training steps do not allocate it anew. Images of a batch are unfolded in
// groups side by side so that each group is a single, wide matrix product,
// and the memory passes around the products are split across GOMAXPROCS
// goroutines when they are large.
package conv

import (
	"sync"

	"github.com/backprop-dev/backprop/internal/blas"
	"github.com/backprop-dev/backprop/internal/parallel"
)

// Float is the element type of the kernels (float32 or float64).
type Float interface {
	~float32 | ~float64
}

// Geom is the geometry of one cross-correlation, per image of the batch.
// The image (the correlation's input) has C channels of H×W; the kernel is
// KH×KW; strides and paddings are per axis; OH×OW is the output size, which
// the caller computes (for a plain convolution (H+2·PH−KH)/SH+1, floored) so
// that a transposed convolution can choose an image size that the formula
// would map to the same output.
type Geom struct {
	C, H, W int // image channels, height and width
	KH, KW  int // kernel height and width
	SH, SW  int // strides (at least 1)
	PH, PW  int // zero padding on each side
	OH, OW  int // output height and width
}

// OutSize returns the output extent of a correlation along one axis: the
// number of kernel placements that fit in an input of size n padded by p on
// both sides with stride s, (n+2p−k)/s + 1 floored. It is ≤ 0 when the
// kernel does not fit at all.
func OutSize(n, k, s, p int) int {
	span := n + 2*p - k
	if span < 0 {
		return 0
	}
	return span/s + 1
}

// ColRows is the number of rows of the column matrix, C·KH·KW: one row per
// (channel, kernel row, kernel column), the contraction length of the
// matrix product.
func (g Geom) ColRows() int { return g.C * g.KH * g.KW }

// ColCols is the number of columns of the column matrix, OH·OW: one column
// per output position.
func (g Geom) ColCols() int { return g.OH * g.OW }

// ColLen is the length of the column matrix of one image.
func (g Geom) ColLen() int { return g.ColRows() * g.ColCols() }

// ImageLen is the number of elements of one image, C·H·W.
func (g Geom) ImageLen() int { return g.C * g.H * g.W }

// validRange returns the output positions [lo, hi) along one axis whose
// input position o·s + k − p lies inside [0, n); outside that range the
// kernel tap reads padding.
func validRange(n, out, s, k, p int) (lo, hi int) {
	// o·s + k − p ≥ 0  ⇔  o ≥ ceil((p−k)/s)
	if d := p - k; d > 0 {
		lo = (d + s - 1) / s
	}
	// o·s + k − p ≤ n−1  ⇔  o ≤ floor((n−1+p−k)/s)
	if d := n - 1 + p - k; d < 0 {
		hi = 0
	} else {
		hi = d/s + 1
	}
	lo = min(lo, out)
	hi = min(hi, out)
	if hi < lo {
		hi = lo
	}
	return lo, hi
}

// maxTaps bounds the kernel sizes whose valid ranges validRanges keeps on
// the stack.
const maxTaps = 16

// validRanges returns validRange for every kernel row (rows[a]) and column
// (cols[b]), computed once per image instead of once per channel, in the
// caller's arrays (kernels larger than maxTaps get heap slices).
func (g Geom) validRanges(rbuf, cbuf *[maxTaps][2]int) (rows, cols [][2]int) {
	rows, cols = rbuf[:0], cbuf[:0]
	if g.KH > maxTaps {
		rows = make([][2]int, 0, g.KH)
	}
	if g.KW > maxTaps {
		cols = make([][2]int, 0, g.KW)
	}
	for a := 0; a < g.KH; a++ {
		lo, hi := validRange(g.H, g.OH, g.SH, a, g.PH)
		rows = append(rows, [2]int{lo, hi})
	}
	for b := 0; b < g.KW; b++ {
		lo, hi := validRange(g.W, g.OW, g.SW, b, g.PW)
		cols = append(cols, [2]int{lo, hi})
	}
	return rows, cols
}

// Im2col unfolds one image (C×H×W, row-major) into the column matrix col
// (ColRows × ColCols, row-major): col[(c·KH+a)·KW+b, i·OW+j] is the input
// value the kernel tap (a, b) of channel c sees at output position (i, j),
// or 0 where that falls in the padding. A correlation then becomes the
// matrix product W·col with W viewed as Cout × (C·KH·KW). Every element of
// col is written.
func Im2col[T Float](g Geom, img, col []T) { im2col(g, img, col, g.OH*g.OW) }

// im2col is Im2col into a column block of a wider matrix whose rows are ld
// elements apart, so that several images can sit side by side.
func im2col[T Float](g Geom, img, col []T, ld int) {
	ncol := g.OH * g.OW
	var rbuf, cbuf [maxTaps][2]int
	rows, cols := g.validRanges(&rbuf, &cbuf)
	row := 0
	for c := 0; c < g.C; c++ {
		plane := img[c*g.H*g.W : (c+1)*g.H*g.W]
		for a := 0; a < g.KH; a++ {
			ilo, ihi := rows[a][0], rows[a][1]
			for b := 0; b < g.KW; b++ {
				jlo, jhi := cols[b][0], cols[b][1]
				dst := col[row*ld : row*ld+ncol]
				row++
				clear(dst[:ilo*g.OW])
				clear(dst[ihi*g.OW:])
				if jlo >= jhi {
					clear(dst[ilo*g.OW : ihi*g.OW])
					continue
				}
				n := jhi - jlo
				x0 := jlo*g.SW + b - g.PW
				for i := ilo; i < ihi; i++ {
					drow := dst[i*g.OW : (i+1)*g.OW]
					// The padding margins are a few elements: plain
					// stores beat calls to clear.
					for j := range jlo {
						drow[j] = 0
					}
					for j := jhi; j < len(drow); j++ {
						drow[j] = 0
					}
					o := (i*g.SH+a-g.PH)*g.W + x0
					d := drow[jlo:jhi]
					switch g.SW {
					case 1:
						copy(d, plane[o:o+n])
					case 2:
						src := plane[o : o+2*n-1]
						for j := range d {
							d[j] = src[2*j]
						}
					default:
						src := plane[o : o+(n-1)*g.SW+1]
						for j, x := 0, 0; j < len(d); j, x = j+1, x+g.SW {
							d[j] = src[x]
						}
					}
				}
			}
		}
	}
}

// im2row unfolds one image into the row matrix rows (OH·OW × C·KH·KW,
// row-major), the transpose of Im2col's column matrix: row i·OW+j holds,
// in the order (c, a, b), the input values the kernel sees at output
// position (i, j), 0 where they fall in the padding. Writing whole rows
// keeps the stores sequential, and the product with the weight then reads
// the rows in place.
//
// With padding, the image is first copied into pad (at least PaddedLen
// elements) with zero margins, so that every kernel row is one plain copy
// of KW values with no bounds checks: the unfolding is the largest memory
// pass of a convolution layer and runs on every forward pass.
func im2row[T Float](g Geom, img, rows, pad []T) {
	k := g.ColRows()
	src, hp, wp := img, g.H, g.W
	if g.PH > 0 || g.PW > 0 {
		hp, wp = g.H+2*g.PH, g.W+2*g.PW
		src = pad[:g.C*hp*wp]
		padImage(g, img, src)
	}
	plane := hp * wp
	if s32, ok := any(src).([]float32); ok && g.KH == 4 && g.KW == 4 && haveK4 && g.C > 0 {
		// The DCGAN kernels in AVX-512: one 16-value row segment per
		// channel, gathered from the window's four image rows.
		r32 := any(rows).([]float32)
		for i := 0; i < g.OH; i++ {
			for j := 0; j < g.OW; j++ {
				row := r32[(i*g.OW+j)*k : (i*g.OW+j+1)*k]
				base := i*g.SH*wp + j*g.SW
				_ = s32[(g.C-1)*plane+base+3*wp+3] // the kernel reads up to here
				im2rowK4(&row[0], &s32[base], g.C, plane, wp)
			}
		}
		return
	}
	for i := 0; i < g.OH; i++ {
		for j := 0; j < g.OW; j++ {
			row := rows[(i*g.OW+j)*k : (i*g.OW+j+1)*k]
			base := i*g.SH*wp + j*g.SW
			r := 0
			if g.KW == 4 { // the DCGAN kernels: one 4-element move per kernel row
				for c := 0; c < g.C; c++ {
					o := c*plane + base
					for a := 0; a < g.KH; a++ {
						*(*[4]T)(row[r : r+4]) = *(*[4]T)(src[o : o+4])
						r += 4
						o += wp
					}
				}
				continue
			}
			for c := 0; c < g.C; c++ {
				o := c*plane + base
				for a := 0; a < g.KH; a++ {
					copy(row[r:r+g.KW], src[o:o+g.KW])
					r += g.KW
					o += wp
				}
			}
		}
	}
}

// PaddedLen is the length of the scratch buffer im2row needs for one
// image: its C planes with the zero margins added.
func (g Geom) PaddedLen() int { return g.C * (g.H + 2*g.PH) * (g.W + 2*g.PW) }

// padImage copies img (C×H×W) into dst (C×(H+2PH)×(W+2PW)) with zero
// margins.
func padImage[T Float](g Geom, img, dst []T) {
	hp, wp := g.H+2*g.PH, g.W+2*g.PW
	for c := 0; c < g.C; c++ {
		p := dst[c*hp*wp : (c+1)*hp*wp]
		clear(p[:g.PH*wp])
		clear(p[(g.PH+g.H)*wp:])
		for y := 0; y < g.H; y++ {
			d := p[(g.PH+y)*wp : (g.PH+y+1)*wp]
			// The margins are a pixel or two: plain stores beat calls
			// to clear.
			for x := 0; x < g.PW; x++ {
				d[x], d[g.PW+g.W+x] = 0, 0
			}
			copy(d[g.PW:g.PW+g.W], img[(c*g.H+y)*g.W:(c*g.H+y+1)*g.W])
		}
	}
}

// row2im folds one image's row matrix (as im2row writes it) back onto the
// image, the adjoint of im2row: every entry is added to the input position
// it was read from and entries that came from padding are dropped. img is
// overwritten. pad is scratch of PaddedLen elements: the sums are formed
// in the padded image, where every kernel row adds KW contiguous values
// without bounds checks, and the interior is then copied out.
func row2im[T Float](g Geom, rows, img, pad []T) {
	k := g.ColRows()
	dst, hp, wp := img, g.H, g.W
	if g.PH > 0 || g.PW > 0 {
		hp, wp = g.H+2*g.PH, g.W+2*g.PW
		dst = pad[:g.C*hp*wp]
	}
	clear(dst)
	plane := hp * wp
	if d32, ok := any(dst).([]float32); ok && g.KH == 4 && g.KW == 4 && haveK4 && g.C > 0 {
		r32 := any(rows).([]float32)
		for i := 0; i < g.OH; i++ {
			for j := 0; j < g.OW; j++ {
				row := r32[(i*g.OW+j)*k : (i*g.OW+j+1)*k]
				base := i*g.SH*wp + j*g.SW
				_ = d32[(g.C-1)*plane+base+3*wp+3] // the kernel writes up to here
				row2imK4(&d32[base], &row[0], g.C, plane, wp)
			}
		}
	} else {
		row2imGo(g, rows, dst, k, plane, wp)
	}
	if len(dst) == len(img) && &dst[0] == &img[0] {
		return
	}
	for c := 0; c < g.C; c++ {
		for y := 0; y < g.H; y++ {
			o := (c*hp+g.PH+y)*wp + g.PW
			copy(img[(c*g.H+y)*g.W:(c*g.H+y+1)*g.W], dst[o:o+g.W])
		}
	}
}

// row2imGo is row2im's accumulation in Go: every kernel row of every
// output position adds KW contiguous values into dst (the padded image,
// planes plane apart, rows wp apart).
func row2imGo[T Float](g Geom, rows, dst []T, k, plane, wp int) {
	for i := 0; i < g.OH; i++ {
		for j := 0; j < g.OW; j++ {
			row := rows[(i*g.OW+j)*k : (i*g.OW+j+1)*k]
			base := i*g.SH*wp + j*g.SW
			r := 0
			if g.KW == 4 {
				for c := 0; c < g.C; c++ {
					o := c*plane + base
					for a := 0; a < g.KH; a++ {
						d, v := (*[4]T)(dst[o:o+4]), (*[4]T)(row[r:r+4])
						d[0] += v[0]
						d[1] += v[1]
						d[2] += v[2]
						d[3] += v[3]
						r += 4
						o += wp
					}
				}
				continue
			}
			for c := 0; c < g.C; c++ {
				o := c*plane + base
				for a := 0; a < g.KH; a++ {
					d := dst[o : o+g.KW]
					for b, v := range row[r : r+g.KW] {
						d[b] += v
					}
					r += g.KW
					o += wp
				}
			}
		}
	}
}

// Col2im folds a column matrix back onto an image, the adjoint of Im2col:
// every entry col[(c·KH+a)·KW+b, i·OW+j] is added to the image position it
// was read from, and entries that came from padding are dropped. It
// accumulates into img, so zero img first for a plain fold.
func Col2im[T Float](g Geom, col, img []T) { col2im(g, col, img, g.OH*g.OW) }

// col2im is Col2im from a column block of a wider matrix with row stride ld.
func col2im[T Float](g Geom, col, img []T, ld int) {
	ncol := g.OH * g.OW
	var rbuf, cbuf [maxTaps][2]int
	rows, cols := g.validRanges(&rbuf, &cbuf)
	row := 0
	for c := 0; c < g.C; c++ {
		plane := img[c*g.H*g.W : (c+1)*g.H*g.W]
		for a := 0; a < g.KH; a++ {
			ilo, ihi := rows[a][0], rows[a][1]
			for b := 0; b < g.KW; b++ {
				jlo, jhi := cols[b][0], cols[b][1]
				src := col[row*ld : row*ld+ncol]
				row++
				if jlo >= jhi {
					continue
				}
				for i := ilo; i < ihi; i++ {
					srow := src[i*g.OW+jlo : i*g.OW+jhi]
					dst := plane[(i*g.SH+a-g.PH)*g.W:]
					x := jlo*g.SW + b - g.PW
					if g.SW == 1 {
						dst = dst[x : x+len(srow)]
						for j, v := range srow {
							dst[j] += v
						}
						continue
					}
					for _, v := range srow {
						dst[x] += v
						x += g.SW
					}
				}
			}
		}
	}
}

// maxColElems bounds the column matrix of one group of images (4 MiB of
// float32): large enough that the matrix products of small feature maps
// (7×7 has only 49 output positions per image) are wide enough to run at
// full speed, small enough to stay a modest, cache-friendly buffer.
const maxColElems = 1 << 22

// group returns how many images of a batch of n to unfold into one column
// matrix: as many as fit the budget, spread evenly over the groups.
func (g Geom) group(n int) int {
	if n <= 1 {
		return 1
	}
	b := max(1, min(n, maxColElems/max(1, g.ColLen())))
	groups := (n + b - 1) / b
	return (n + groups - 1) / groups
}

// WorkLen is the workspace length the batch functions need for n images
// and cout channels on the correlation's output side: the column matrix of
// one group of images and, when a group holds more than one image, a
// cout × (group·OH·OW) matrix for regrouping the output side.
func (g Geom) WorkLen(n, cout int) int {
	b := g.group(n)
	if b == 1 && !useRows(g, cout) {
		return g.ColLen()
	}
	return b * (g.ColLen() + cout*g.ColCols())
}

// rowsMaxCout is the largest number of output channels for which Forward
// and the weight gradient of Backward use the row layout (see im2row): the
// product then has at most this many columns, few enough that the matrix
// product reads the unfolded rows in place instead of packing them (the
// blas driver's tall-skinny path), which saves a full copy of the largest
// matrix of the layer. A variable so that tests can reach both layouts.
var rowsMaxCout = 128

// rowsMinK is the shortest row (C·KH·KW) for which Forward uses the row
// layout: with short rows (a 1-channel input) im2row's per-row work
// outweighs the saved packing. The weight gradient, whose column layout
// needs a transposed packing, uses rows whenever cout ≤ rowsMaxCout.
var rowsMinK = 64

// useRows reports whether Forward of a layer with cout output channels
// uses the row layout.
func useRows(g Geom, cout int) bool { return cout <= rowsMaxCout && g.ColRows() >= rowsMinK }

// Workspaces are recycled between calls: a training step runs the same
// layers again and again, and a fresh multi-megabyte buffer would be
// zeroed (and often faulted in) every time.
var pool32, pool64 sync.Pool

func poolFor[T Float]() *sync.Pool {
	var z T
	switch any(z).(type) {
	case float32:
		return &pool32
	case float64:
		return &pool64
	}
	return nil // named float types get fresh buffers
}

// plan is one batch call's grouping and workspace. Plans are recycled
// (plans32, plans64), and each memory pass over a group of images runs as
// the plan's Range over its images (see pass), so that a layer's forward
// and backward passes allocate nothing once warm.
type plan[T Float] struct {
	g        Geom
	n, cout  int
	k, m     int  // column rows and columns of one image
	in, out  int  // elements of one image and of one output-side image
	bmax     int  // images per group
	col, tmp []T  // column matrix and cout × (group·m) regrouping matrix
	rows     bool // Forward and the input gradient use the row layout
	rowsW    bool // the weight gradient uses the row layout
	unfolded bool // col already holds the row matrix of the whole batch (see Saved)

	// The implicit layout (implicit.go): the row-layout products of
	// Forward, the weight gradient and TransposedBackward read the rows
	// through rs from the padded images in pad (bmax·PaddedLen elements;
	// col overlaps it and serves the input gradient only).
	imp    bool
	chunk  int // images per input-gradient product (implicit layout)
	pad    []T
	padded bool // pad already holds the padded images of the whole batch (see Saved)
	rs     rowSource
	pooled *[]T // workspace taken from pool, if any
	pool   *sync.Pool

	// The memory pass Range runs: which one, over images n0 … n0+bn−1,
	// reading src and writing dst (see the methods that set them).
	pass     passKind
	src, dst []T
	n0, bn   int
}

// passKind names the memory passes of a plan.
type passKind int

const (
	passUnfold passKind = iota
	passUnfoldRows
	passScatterRows
	passFold
	passFoldRows
	passGather
	passScatter
	passPad
)

var plans32, plans64, pads32, pads64 sync.Pool

// planPoolFor and padPoolFor return the recycled plans and padded-image
// buffers of element type T (nil for named float types, which get fresh
// ones).
func planPoolFor[T Float]() *sync.Pool {
	var z T
	switch any(z).(type) {
	case float32:
		return &plans32
	case float64:
		return &plans64
	}
	return nil
}

func padPoolFor[T Float]() *sync.Pool {
	var z T
	switch any(z).(type) {
	case float32:
		return &pads32
	case float64:
		return &pads64
	}
	return nil
}

// getPad returns a buffer of n elements for one padded image (contents
// unspecified: padImage overwrites all of it); putPad gives it back.
func getPad[T Float](n int) *[]T {
	if pl := padPoolFor[T](); pl != nil {
		if v, ok := pl.Get().(*[]T); ok && cap(*v) >= n {
			*v = (*v)[:n]
			return v
		}
	}
	b := make([]T, n)
	return &b
}

func putPad[T Float](b *[]T) {
	if pl := padPoolFor[T](); pl != nil {
		pl.Put(b)
	}
}

// newPlan splits ws (or a pooled buffer if ws is shorter than WorkLen).
// cols says whether the call needs the column or row matrix itself: in the
// implicit layout only the input gradient does, and the workspace then
// holds the padded images instead (PaddedLen per image, about 1/16 of the
// rows of a 4×4 kernel at stride 2), col overlapping them.
func newPlan[T Float](g Geom, n, cout int, ws []T, cols bool) *plan[T] {
	var p *plan[T]
	if pl := planPoolFor[T](); pl != nil {
		p, _ = pl.Get().(*plan[T])
	}
	if p == nil {
		p = new(plan[T])
	}
	*p = plan[T]{g: g, n: n, cout: cout, k: g.ColRows(), m: g.ColCols(), in: g.ImageLen(), bmax: g.group(n)}
	p.out = cout * p.m
	p.rows = useRows(g, cout)
	p.rowsW = cout <= rowsMaxCout
	p.imp = useImplicit[T](g, cout)
	need := g.WorkLen(n, cout)
	colLen := p.bmax * p.k * p.m
	if p.imp {
		colLen = 0
		if g.PH > 0 || g.PW > 0 {
			colLen = p.bmax * g.PaddedLen()
		}
		if cols {
			p.chunk = p.bmax
			if dxChunked {
				p.chunk = max(1, min(p.bmax, p.bmax*g.PaddedLen()/(p.k*p.m)))
			}
			colLen = max(colLen, p.chunk*p.k*p.m)
		}
		need = colLen + p.bmax*cout*p.m
	}
	if len(ws) < need {
		pl := poolFor[T]()
		if pl != nil {
			if v, ok := pl.Get().(*[]T); ok && cap(*v) >= need {
				p.pooled = v
			}
		}
		if p.pooled == nil {
			buf := make([]T, need)
			p.pooled = &buf
		}
		p.pool = pl
		ws = (*p.pooled)[:need]
	}
	p.col = ws[:colLen]
	p.tmp = ws[colLen:need]
	if p.imp {
		p.pad = ws[:min(colLen, p.bmax*g.PaddedLen())]
	}
	return p
}

// release returns a pooled workspace and recycles the plan.
func (p *plan[T]) release() {
	if p.pooled != nil && p.pool != nil {
		p.pool.Put(p.pooled)
	}
	p.recycle()
}

// recycle drops the plan's references and keeps it for the next newPlan
// (its workspace, if any, belongs to someone else by now).
func (p *plan[T]) recycle() {
	*p = plan[T]{}
	if pl := planPoolFor[T](); pl != nil {
		pl.Put(p)
	}
}

// minParallel is the number of elements a memory pass (unfolding, folding,
// regrouping) must touch before it is split across goroutines; below it
// the start-up cost outweighs the gain.
const minParallel = 1 << 16

// run runs the memory pass kind over the images [0, bn) of the current
// group, reading src and writing dst, split into one contiguous range per
// available CPU when the pass touches at least minParallel elements (elems
// per image). The matrix products parallelise inside blas.Gemm; this
// spreads the passes between them the same way.
func (p *plan[T]) run(kind passKind, src, dst []T, n0, bn, elems int) {
	p.pass, p.src, p.dst, p.n0, p.bn = kind, src, dst, n0, bn
	if bn*elems < minParallel {
		p.Range(0, bn)
	} else {
		parallel.ForRanger(bn, bn*elems, p)
	}
	p.src, p.dst = nil, nil
}

// Range runs the current memory pass (see run) over the images [b0, b1)
// of the group.
func (p *plan[T]) Range(b0, b1 int) {
	n0, bn, m, cout := p.n0, p.bn, p.m, p.cout
	switch p.pass {
	case passUnfold: // im2col side by side, row stride bn·m
		for b := b0; b < b1; b++ {
			im2col(p.g, p.src[(n0+b)*p.in:(n0+b+1)*p.in], p.col[b*m:], bn*m)
		}
	case passUnfoldRows: // im2row one below the other
		pad := getPad[T](p.g.PaddedLen())
		for b := b0; b < b1; b++ {
			im2row(p.g, p.src[(n0+b)*p.in:(n0+b+1)*p.in], p.col[b*m*p.k:(b+1)*m*p.k], *pad)
		}
		putPad(pad)
	case passScatterRows: // (bn·m) × cout in tmp → cout × m images
		for b := b0; b < b1; b++ {
			src := p.tmp[b*m*cout : (b+1)*m*cout]
			dst := p.dst[(n0+b)*p.out : (n0+b+1)*p.out]
			for o := 0; o < cout; o++ {
				d := dst[o*m : (o+1)*m]
				for q := range d {
					d[q] = src[q*cout+o]
				}
			}
		}
	case passFold: // col2im, overwriting
		for b := b0; b < b1; b++ {
			img := p.dst[(n0+b)*p.in : (n0+b+1)*p.in]
			clear(img)
			col2im(p.g, p.col[b*m:], img, bn*m)
		}
	case passFoldRows: // row2im, overwriting
		pad := getPad[T](p.g.PaddedLen())
		for b := b0; b < b1; b++ {
			row2im(p.g, p.col[b*m*p.k:(b+1)*m*p.k], p.dst[(n0+b)*p.in:(n0+b+1)*p.in], *pad)
		}
		putPad(pad)
	case passGather: // images of src (from n0) → cout × (bn·m) in dst
		for b := b0; b < b1; b++ {
			for o := 0; o < cout; o++ {
				copy(p.dst[o*bn*m+b*m:o*bn*m+(b+1)*m], p.src[(b*cout+o)*m:(b*cout+o+1)*m])
			}
		}
	case passScatter: // cout × (bn·m) in src → images of dst (from n0)
		for b := b0; b < b1; b++ {
			for o := 0; o < cout; o++ {
				copy(p.dst[(b*cout+o)*m:(b*cout+o+1)*m], p.src[o*bn*m+b*m:o*bn*m+(b+1)*m])
			}
		}
	case passPad: // images of src (from n0) → padded images in pad
		pl := p.g.PaddedLen()
		for b := b0; b < b1; b++ {
			padImage(p.g, p.src[(n0+b)*p.in:(n0+b+1)*p.in], p.pad[b*pl:(b+1)*pl])
		}
	}
}

// source returns the row matrix of images n0 … n0+bn−1 of x as a
// blas.Source (implicit layout): the images themselves when there is no
// padding, else their padded copies, which it writes into pad unless pad
// already holds them (padded).
func (p *plan[T]) source(x []T, n0, bn int) *rowSource {
	img := x[n0*p.in : (n0+bn)*p.in]
	if p.g.PH > 0 || p.g.PW > 0 {
		if !p.padded {
			p.run(passPad, x, nil, n0, bn, p.in)
		}
		img = p.pad[:bn*p.g.PaddedLen()]
	}
	p.rs.set(p.g, any(img).([]float32))
	return &p.rs
}

// f32 views a slice of the implicit layout's element type, float32, as one.
func f32[T Float](x []T) []float32 { return any(x).([]float32) }

// unfold writes im2col of images n0 … n0+bn−1 of x side by side into the
// column matrix, whose row stride is bn·m.
func (p *plan[T]) unfold(x []T, n0, bn int) []T {
	p.run(passUnfold, x, nil, n0, bn, p.k*p.m)
	return p.col[:p.k*bn*p.m]
}

// unfoldRows writes im2row of images n0 … n0+bn−1 of x one below the
// other into the workspace, a (bn·m) × k row matrix.
func (p *plan[T]) unfoldRows(x []T, n0, bn int) []T {
	if p.unfolded {
		return p.col[:bn*p.m*p.k]
	}
	p.run(passUnfoldRows, x, nil, n0, bn, p.k*p.m)
	return p.col[:bn*p.m*p.k]
}

// scatterRows transposes the (bn·m) × cout product in tmp into images
// n0 … n0+bn−1 of y (cout × m each).
func (p *plan[T]) scatterRows(y []T, n0, bn int) {
	p.run(passScatterRows, nil, y, n0, bn, p.out)
}

// fold overwrites images n0 … n0+bn−1 of dx with col2im of their blocks.
func (p *plan[T]) fold(dx []T, n0, bn int) {
	p.run(passFold, nil, dx, n0, bn, p.k*p.m)
}

// foldRows overwrites images n0 … n0+bn−1 of dx with row2im of their
// blocks of the (bn·m) × k row matrix in col.
func (p *plan[T]) foldRows(dx []T, n0, bn int) {
	p.run(passFoldRows, nil, dx, n0, bn, p.k*p.m)
}

// gather returns output-side images n0 … n0+bn−1 of y as one
// cout × (bn·m) matrix: y itself for a single image, else a copy in tmp.
func (p *plan[T]) gather(y []T, n0, bn int) []T {
	src := y[n0*p.out : (n0+bn)*p.out]
	if bn == 1 {
		return src
	}
	dst := p.tmp[:p.cout*bn*p.m]
	p.run(passGather, src, dst, n0, bn, p.out)
	return dst
}

// target returns where a product for output-side images n0 … n0+bn−1 of y
// should be written: straight into y for one image, else into tmp, to be
// passed to scatter.
func (p *plan[T]) target(y []T, n0, bn int) []T {
	if bn == 1 {
		return y[n0*p.out : (n0+1)*p.out]
	}
	return p.tmp[:p.cout*bn*p.m]
}

// scatter copies a cout × (bn·m) matrix from tmp to images n0 … of y (a
// no-op for a single image, which target already placed).
func (p *plan[T]) scatter(y []T, n0, bn int) {
	if bn == 1 {
		return
	}
	p.run(passScatter, p.tmp, y[n0*p.out:(n0+bn)*p.out], n0, bn, p.out)
}

// groups calls f for each group of images [n0, n0+bn).
func (p *plan[T]) groups(f func(n0, bn int)) {
	for n0 := 0; n0 < p.n; n0 += p.bmax {
		f(n0, min(p.bmax, p.n-n0))
	}
}

// Forward computes the correlation of a batch of n images x (n × C×H×W)
// with the weight w (cout × C × KH × KW) into y (n × cout × OH×OW),
// overwriting y: y_n = W · im2col(x_n). Images are processed in groups
// whose columns sit side by side, so that each group is one matrix product.
// ws is the workspace (WorkLen elements); if it is shorter, a recycled one
// is used.
func Forward[T Float](g Geom, n, cout int, x, w, y, ws []T) {
	p := newPlan(g, n, cout, ws, false)
	defer p.release()
	p.forward(x, w, y)
}

// forward is Forward on a plan.
func (p *plan[T]) forward(x, w, y []T) {
	cout := p.cout
	if p.imp {
		// The same product with the rows packed from the padded images.
		p.groups(func(n0, bn int) {
			blas.GemmSrcA(bn*p.m, cout, p.k, 1, p.source(x, n0, bn), true, f32(w), p.k, 0, f32(p.tmp[:bn*p.m*cout]), cout)
			p.scatterRows(y, n0, bn)
		})
		return
	}
	if p.rows {
		// yᵀ = rows · Wᵀ, one (bn·m) × cout product per group.
		p.groups(func(n0, bn int) {
			rows := p.unfoldRows(x, n0, bn)
			blas.Gemm(false, true, bn*p.m, cout, p.k, 1, rows, p.k, w, p.k, 0, p.tmp[:bn*p.m*cout], cout)
			p.scatterRows(y, n0, bn)
		})
		return
	}
	p.groups(func(n0, bn int) {
		col, ld := p.unfold(x, n0, bn), bn*p.m
		blas.Gemm(false, false, cout, ld, p.k, 1, w, p.k, col, ld, 0, p.target(y, n0, bn), ld)
		p.scatter(y, n0, bn)
	})
}

// Saved is the row matrix of a batch that ForwardSave leaves behind for the
// weight gradient of the matching BackwardSaved: unfolding the input is
// the largest memory pass of a convolution layer, and a training step
// would otherwise run it twice on the same images.
type Saved[T Float] struct {
	buf     *[]T
	g       Geom
	n, cout int
	x       *T   // first element of the images that were unfolded
	imp     bool // buf holds the padded images (implicit layout), not the rows
}

// ForwardSave is Forward that keeps the unfolded batch when the layer uses
// the row layout and the whole batch fits one group of images; otherwise
// it returns nil. Hand the result to BackwardSaved, or drop it with
// Release (or leave it to the garbage collector).
func ForwardSave[T Float](g Geom, n, cout int, x, w, y []T) *Saved[T] {
	return ForwardSaveTo(nil, g, n, cout, x, w, y)
}

// ForwardSaveTo is ForwardSave keeping the rows in *dst (a new Saved if
// dst is nil), which it returns, or nil when it keeps none. A caller that
// runs layer after layer passes a Saved of its own, released or unused,
// so that the pass allocates nothing.
func ForwardSaveTo[T Float](dst *Saved[T], g Geom, n, cout int, x, w, y []T) *Saved[T] {
	p := newPlan(g, n, cout, []T(nil), false)
	if !p.rows || p.bmax < n || p.pooled == nil || len(x) == 0 {
		p.release()
		Forward(g, n, cout, x, w, y, nil)
		return nil
	}
	p.forward(x, w, y)
	if dst == nil {
		dst = new(Saved[T])
	}
	*dst = Saved[T]{buf: p.pooled, g: g, n: n, cout: cout, x: &x[0], imp: p.imp}
	p.recycle() // the workspace now belongs to dst
	return dst
}

// Release returns the saved rows' storage for reuse; s must not be used
// afterwards. It is safe on nil.
func (s *Saved[T]) Release() {
	if s == nil || s.buf == nil {
		return
	}
	if pl := poolFor[T](); pl != nil {
		pl.Put(s.buf)
	}
	s.buf = nil
}

// BackwardSaved is Backward reusing the rows that ForwardSave kept for the
// same images x, geometry and batch (s may be nil or stale, in which case
// it unfolds x again as Backward does). It releases s.
func BackwardSaved[T Float](g Geom, n, cout int, x, w, dy, dx, dw []T, s *Saved[T]) {
	if s == nil || s.buf == nil || s.g != g || s.n != n || s.cout != cout || len(x) == 0 || s.x != &x[0] ||
		s.imp != useImplicit[T](g, cout) {
		s.Release()
		Backward(g, n, cout, x, w, dy, dx, dw, nil)
		return
	}
	if s.imp {
		// The padded images head the saved workspace, which also holds the
		// input gradient's rows (a chunk of images at a time, after the
		// weight gradient has read the images) when it is long enough.
		backward(g, n, cout, x, w, dy, dx, dw, *s.buf, false, *s.buf)
	} else {
		backward(g, n, cout, x, w, dy, dx, dw, *s.buf, true, nil)
	}
	s.Release()
}

// BackwardInput computes the gradient with respect to the images, dx
// (n × C×H×W, overwritten), from the gradient dy (n × cout × OH×OW) and the
// weight w (cout × C × KH × KW): dx_n = col2im(Wᵀ · dy_n). Read the other
// way round it is the forward pass of a transposed convolution of dy with
// w. ws is the workspace, as for Forward.
func BackwardInput[T Float](g Geom, n, cout int, w, dy, dx, ws []T) {
	p := newPlan(g, n, cout, ws, true)
	defer p.release()
	p.groups(func(n0, bn int) { p.backwardInput(w, p.gather(dy, n0, bn), dx, n0, bn) })
}

// backwardInput computes images n0 … n0+bn−1 of dx from the regrouped
// output gradient d (cout × bn·m). In the row layout the product is
// rowsᵀ = dᵀ·W, (bn·m) × k, folded back row by row; otherwise
// col = Wᵀ·d, k × (bn·m), folded column by column.
func (p *plan[T]) backwardInput(w, d, dx []T, n0, bn int) {
	ld := bn * p.m
	if p.imp {
		// In chunks of images whose rows fit where the padded images were.
		for c0 := 0; c0 < bn; c0 += p.chunk {
			cb := min(p.chunk, bn-c0)
			blas.Gemm(true, false, cb*p.m, p.k, p.cout, 1, d[c0*p.m:], ld, w, p.k, 0, p.col[:cb*p.m*p.k], p.k)
			p.foldRows(dx, n0+c0, cb)
		}
		return
	}
	if p.rows {
		blas.Gemm(true, false, ld, p.k, p.cout, 1, d, ld, w, p.k, 0, p.col[:ld*p.k], p.k)
		p.foldRows(dx, n0, bn)
		return
	}
	blas.Gemm(true, false, p.k, ld, p.cout, 1, w, p.k, d, ld, 0, p.col, ld)
	p.fold(dx, n0, bn)
}

// BackwardWeight computes the gradient with respect to the weight, dw
// (cout × C × KH × KW, overwritten), from the images x (n × C×H×W) and the
// gradient dy (n × cout × OH×OW): dW = Σ_n dy_n · im2col(x_n)ᵀ, the
// correlation of each input with the matching output gradient summed over
// the batch. ws is the workspace, as for Forward.
func BackwardWeight[T Float](g Geom, n, cout int, x, dy, dw, ws []T) {
	Backward(g, n, cout, x, nil, dy, nil, dw, ws)
}

// Backward computes both gradients of Forward in one pass over the batch,
// unfolding each group of images and regrouping dy only once: dx as
// BackwardInput (skipped if dx is nil; w is then unused) and dw as
// BackwardWeight (skipped if dw is nil).
func Backward[T Float](g Geom, n, cout int, x, w, dy, dx, dw, ws []T) {
	backward(g, n, cout, x, w, dy, dx, dw, ws, false, nil)
}

// backward is Backward; unfolded says that ws already holds the row
// matrix of the whole batch x, and a non-nil padded that it holds the
// padded images of the whole batch (implicit layout; see Saved).
func backward[T Float](g Geom, n, cout int, x, w, dy, dx, dw, ws []T, unfolded bool, padded []T) {
	if dw != nil {
		dw = dw[:cout*g.ColRows()]
		clear(dw)
	}
	p := newPlan(g, n, cout, ws, dx != nil)
	defer p.release()
	p.unfolded = unfolded && p.rowsW && p.bmax >= n
	if padded != nil && p.imp && p.bmax >= n && (g.PH > 0 || g.PW > 0) {
		p.pad, p.padded = padded[:n*g.PaddedLen()], true
	}
	p.groups(func(n0, bn int) {
		ld := bn * p.m
		d := p.gather(dy, n0, bn)
		switch {
		case dw == nil:
		case p.imp: // dW += dy · rows, the rows packed from the padded images
			blas.GemmSrcB(false, cout, p.k, ld, 1, f32(d), ld, p.source(x, n0, bn), 1, f32(dw), p.k)
		case p.rowsW: // dW += dy · rows, no transposed packing
			blas.Gemm(false, false, cout, p.k, ld, 1, d, ld, p.unfoldRows(x, n0, bn), p.k, 1, dw, p.k)
		default:
			blas.Gemm(false, true, cout, p.k, ld, 1, d, ld, p.unfold(x, n0, bn), ld, 1, dw, p.k)
		}
		if dx != nil {
			p.backwardInput(w, d, dx, n0, bn)
		}
	})
}

// TransposedBackward computes both gradients of a transposed convolution,
// the layer whose forward pass is BackwardInput(g, n, cin, w, x, y): from
// the output gradient dy (n × C×H×W, the correlation's image side) it
// computes dx = Forward(dy, w) (n × cin × OH×OW, skipped if dx is nil) and
// dw = Σ_n x_n · im2col(dy_n)ᵀ (cin × C × KH × KW, skipped if dw is nil),
// unfolding dy and regrouping x once per group of images.
func TransposedBackward[T Float](g Geom, n, cin int, x, w, dy, dx, dw, ws []T) {
	if dw != nil {
		dw = dw[:cin*g.ColRows()]
		clear(dw)
	}
	p := newPlan(g, n, cin, ws, false)
	defer p.release()
	p.groups(func(n0, bn int) {
		ld := bn * p.m
		if p.imp { // as Forward and the weight gradient of Backward, implicit
			src := p.source(dy, n0, bn)
			if dw != nil {
				blas.GemmSrcB(false, cin, p.k, ld, 1, f32(p.gather(x, n0, bn)), ld, src, 1, f32(dw), p.k)
			}
			if dx != nil {
				blas.GemmSrcA(ld, cin, p.k, 1, src, true, f32(w), p.k, 0, f32(p.tmp[:ld*cin]), cin)
				p.scatterRows(dx, n0, bn)
			}
			return
		}
		if p.rows { // as Forward and the weight gradient of Backward
			rows := p.unfoldRows(dy, n0, bn)
			if dw != nil {
				blas.Gemm(false, false, cin, p.k, ld, 1, p.gather(x, n0, bn), ld, rows, p.k, 1, dw, p.k)
			}
			if dx != nil {
				blas.Gemm(false, true, ld, cin, p.k, 1, rows, p.k, w, p.k, 0, p.tmp[:ld*cin], cin)
				p.scatterRows(dx, n0, bn)
			}
			return
		}
		col := p.unfold(dy, n0, bn)
		if dw != nil {
			blas.Gemm(false, true, cin, p.k, ld, 1, p.gather(x, n0, bn), ld, col, ld, 1, dw, p.k)
		}
		if dx != nil {
			blas.Gemm(false, false, cin, ld, p.k, 1, w, p.k, col, ld, 0, p.target(dx, n0, bn), ld)
			p.scatter(dx, n0, bn)
		}
	})
}

// Rot180 writes into dst the kernels of w rotated by 180° in their two
// spatial dimensions: dst[q,a,b] = w[q,kh−1−a,kw−1−b] for each of the
// len(w)/(kh·kw) kernels q. It turns a correlation into a true
// convolution and back (the rotation is its own inverse). dst and w must
// not overlap.
func Rot180[T Float](kh, kw int, w, dst []T) {
	kk := kh * kw
	if kk == 0 {
		return
	}
	for q := 0; q+kk <= len(w); q += kk {
		src, d := w[q:q+kk], dst[q:q+kk]
		for i, v := range src {
			d[kk-1-i] = v
		}
	}
}
