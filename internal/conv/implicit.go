package conv

// Implicit GEMM: the products that read the row matrix (Forward's
// rows·Wᵀ and the weight gradient dY·rows, and the same two products of
// TransposedBackward) can take it from a blas.Source instead of a stored
// matrix. The driver then asks for MR×kc strips of A or kc×NR panels of B
// as it packs them, and rowSource gathers each row of such a block from
// the zero-padded images through the row's base offset: the unfolded
// matrix (16× the input for the DCGAN's 4×4 kernels at stride 2) never
// reaches memory, only the padded copy of the input (1.1× it) does. The
// packed panels hold the same values in the same order as those packed
// from (or read in place in) the stored rows, so both layouts give the
// same bits (TestImplicitTwin).

// Which layout the row-matrix products use: implicitAuto picks the
// implicit one where the AVX-512 4×4 packer exists (useImplicit); the
// tests switch it off (the explicit im2row + blas.Gemm twin) or force it
// on for every float32 geometry of the row layout (with the Go packer).
const (
	implicitAuto = iota
	implicitOff
	implicitForce
)

var implicitMode = implicitAuto

// dxChunked: in the implicit layout the input gradient's product and fold
// run over chunks of images whose rows take no more room than the padded
// images (16 of the DCGAN's 64 at a time), so that the layer's workspace
// never holds the whole row matrix. A variable so that benchmarks can
// compare it with one product per group.
var dxChunked = true

// useImplicit reports whether the row-layout products of a layer with
// cout output channels read the rows through a rowSource.
func useImplicit[T Float](g Geom, cout int) bool {
	var z T
	if _, ok := any(z).(float32); !ok || !useRows(g, cout) {
		return false
	}
	switch implicitMode {
	case implicitOff:
		return false
	case implicitForce:
		return true
	}
	return haveK4 && g.KH == 4 && g.KW == 4
}

// rowSource is the row matrix of a group of images, as im2row would write
// it one image below the other ((images·OH·OW) × C·KH·KW), read from the
// images' padded copies (or the images themselves when there is no
// padding), plen elements apart.
type rowSource struct {
	g               Geom
	img             []float32
	m               int // output positions per image, OH·OW
	plen, plane, wp int // elements of one padded image, of one padded channel, of one padded row
	k4              bool
}

// set points s at the padded images img of geometry g.
func (s *rowSource) set(g Geom, img []float32) {
	hp, wp := g.H+2*g.PH, g.W+2*g.PW
	*s = rowSource{g: g, img: img, m: g.OH * g.OW, plen: g.C * hp * wp, plane: hp * wp, wp: wp,
		k4: haveK4 && g.KH == 4 && g.KW == 4}
}

// Pack implements blas.Source.
func (s *rowSource) Pack(dst []float32, r0, nr, c0, nc, w int) {
	if nr <= 0 || nc <= 0 {
		return
	}
	g := &s.g
	fast := s.k4 && c0%16 == 0 && nc%16 == 0 && w%16 == 0
	last := (nc-1)/w*nr*w + (nc-1)%w // the last value of row 0 the block writes
	b, q := r0/s.m, r0%s.m
	oi, oj := q/g.OW, q%g.OW
	for i := 0; i < nr; i++ {
		base := b*s.plen + oi*g.SH*s.wp + oj*g.SW
		if fast {
			c := nc / 16
			src := s.img[base+c0/16*s.plane : base+(c0/16+c-1)*s.plane+3*s.wp+4]
			d := dst[i*w : i*w+last+1]
			packK4(&d[0], &src[0], c, s.plane, s.wp, w/16, (nr-1)*w)
		} else {
			s.packRow(dst[i*w:], base, nr, c0, nc, w)
		}
		if oj++; oj == g.OW {
			oj = 0
			if oi++; oi == g.OH {
				oi = 0
				b++
			}
		}
	}
}

// packRow is Pack's portable loop for one row whose window starts at base.
func (s *rowSource) packRow(d []float32, base, nr, c0, nc, w int) {
	g := &s.g
	kk := g.KH * g.KW
	ch, rem := c0/kk, c0%kk
	a, kx := rem/g.KW, rem%g.KW
	o := base + ch*s.plane + a*s.wp // start of the current kernel row's window
	for j := 0; j < nc; j++ {
		d[j/w*nr*w+j%w] = s.img[o+kx]
		if kx++; kx == g.KW {
			kx = 0
			o += s.wp
			if a++; a == g.KH {
				a = 0
				o += s.plane - g.KH*s.wp
			}
		}
	}
}
