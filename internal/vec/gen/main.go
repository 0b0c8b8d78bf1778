//go:build ignore

// Command gen writes the AVX-512 and AVX2 kernels of package vec in Go
// assembly (../kernels_amd64.s) and their Go declarations
// (../kernels_amd64.go): the optimizer updates, the element-wise
// activations and the batch-normalisation passes (float32 rows, float64
// lanes; see bnKernels below for how they differ). Run it from
// internal/vec:
//
//	go run gen/main.go
//
// Both instruction sets get the same kernels (adam, sgd, relu, leakyReLU,
// reluGrad, leakyReLUGrad, sigmoidPair, and the batch-normalisation kernels
// of bnKernels), emitted from one description (the
// body functions below) so that the 512-bit and the 256-bit code cannot
// drift apart; where the two instruction sets differ (AVX-512 compares into
// opmask registers and has no VANDPS without AVX512DQ), small helpers
// (cmp, sel, andMask, or, xor, floor, scale) emit the right form. Each
// kernel
//
//   - for the optimizers only (ftz), saves MXCSR and sets FTZ|DAZ,
//     restoring the saved value before RET; the activation kernels leave
//     MXCSR as Go keeps it (round to nearest, no FTZ/DAZ), so they are exact
//     on subnormals too;
//   - loads the float32 coefficients broadcast into vector registers, then
//     as many of its constants (the consts table) as registers remain; the
//     others are read from 64-byte memory vectors;
//   - runs its body once per full vector, then once more on the remaining
//     n mod width elements with masked loads and stores (AVX-512 opmask K1,
//     AVX VMASKMOVPS with a mask from tailMask), so every element of the
//     slice goes through the same instructions;
//   - evaluates the Go expressions of optim/adam.go and optim/sgd.go
//     operation by operation (separate VMULPS/VADDPS/VSUBPS/VDIVPS/VSQRTPS,
//     never FMA), which makes it bit-identical to the Go loop whenever no
//     value or intermediate is subnormal;
//   - branches on the flags argument inside the loop for the optional terms
//     (weight decay, momentum, first step, Nesterov): the branches go the
//     same way for the whole call and cost nothing next to the memory
//     traffic and the divider.
package main

import (
	"bytes"
	"fmt"
	"go/format"
	"math"
	"os"
	"sort"
	"strings"
)

// isa describes one vector instruction set.
type isa struct {
	suffix string // Go function name suffix
	reg    string // "Z" or "Y"
	width  int    // float32 lanes per vector
	konst  int    // first register of the broadcast coefficients
	last   int    // last vector register
	mask   string // the tail mask register (opmask or vector)
}

var isas = []isa{
	{suffix: "AVX512", reg: "Z", width: 16, konst: 16, last: 31, mask: "K1"},
	{suffix: "AVX2", reg: "Y", width: 8, konst: 8, last: 15, mask: "Y7"},
}

// Comparison predicates of VCMPPS (ordered, quiet: false when either
// operand is NaN, except unord).
const (
	cmpEQ    = 0x00 // a == b
	cmpUnord = 0x03 // a or b is NaN
	cmpLT    = 0x11 // a < b
	cmpGE    = 0x1d // a >= b
	cmpGT    = 0x1e // a > b
)

// consts are the named float32 constants the kernels may use, as bit
// patterns; each used one becomes a 64-byte vector (16 copies) in the
// object file. The values repeat the Go constants of exp.go
// (same literals, same rounding to float32).
var consts = map[string]uint32{
	"zero":    0,
	"one":     math.Float32bits(1),
	"half":    math.Float32bits(0.5),
	"sign":    1 << 31, // the sign bit
	"quiet":   1 << 22, // the quiet bit of a NaN
	"log2e":   math.Float32bits(float32(1.4426950408889634)),
	"ln2Hi":   math.Float32bits(float32(0.693145751953125)),
	"ln2Lo":   math.Float32bits(float32(1.4286068203094172e-06)),
	"expMin":  math.Float32bits(float32(-103.97208)),
	"p3":      math.Float32bits(float32(1.0 / 6)),
	"p4":      math.Float32bits(float32(1.0 / 24)),
	"p5":      math.Float32bits(float32(1.0 / 120)),
	"p6":      math.Float32bits(float32(1.0 / 720)),
	"p7":      math.Float32bits(float32(1.0 / 5040)),
	"m126":    math.Float32bits(-126),
	"c64":     math.Float32bits(64),
	"c127":    math.Float32bits(127),
	"two23":   math.Float32bits(1 << 23),
	"pow2m64": math.Float32bits(float32(math.Ldexp(1, -64))),
}

// Flag bits of the flags argument; the same constants are declared in Go
// (vec.go).
const (
	flagWD       = 1 // weight decay λ ≠ 0: d ← d + λ·θ
	flagMomentum = 2 // SGD with a momentum buffer
	flagFirst    = 4 // SGD's first momentum step: b ← d
	flagNesterov = 8 // SGD's Nesterov momentum
)

// kernel is one assembly function.
type kernel struct {
	name    string   // without the ISA suffix
	ptrs    []string // slice arguments, in order; each gets a pointer register
	coeffs  []string // float32 arguments, broadcast in this order
	flags   bool     // takes a flags int argument (in R8)
	ftz     bool     // runs with MXCSR's FTZ and DAZ set
	consts  []string // constants of the consts table, most used (or needed in a register) first
	comment string
	body    func(e *emitter)
}

var ptrRegs = []string{"DI", "SI", "DX", "BX"}

const (
	rN     = "CX" // element count, then tail length
	rVecs  = "R9" // full vectors left
	rFlags = "R8"
)

var kernels = []kernel{
	{
		name:   "adam",
		ptrs:   []string{"theta", "m", "v", "grad"},
		coeffs: []string{"b1", "b2", "c1", "c2", "wd", "eps", "stepSize", "bc2Sqrt"},
		flags:  true,
		ftz:    true,
		comment: `// Per element, as optim.Adam's Go loop:
//	d = g; if flags&flagWD { d = d + wd·θ }
//	m = m·b1 + c1·d
//	v = v·b2 + (c2·d)·d
//	θ = θ − (stepSize·m) / (√v / bc2Sqrt + eps)`,
		body: func(e *emitter) {
			d, th, t := e.v(0), e.v(1), e.v(2)
			e.load(d, "grad")
			e.load(th, "theta")
			e.ifFlag(flagWD, func() {
				e.op("VMULPS", th, e.k("wd"), t) // t = wd·θ
				e.op("VADDPS", t, d, d)          // d = d + t
			})
			m, t2 := e.v(3), e.v(4)
			e.load(m, "m")
			e.op("VMULPS", e.k("b1"), m, m) // m·b1
			e.op("VMULPS", d, e.k("c1"), t) // c1·d
			e.op("VADDPS", t, m, m)
			e.store(m, "m")
			v := e.v(5)
			e.load(v, "v")
			e.op("VMULPS", e.k("b2"), v, v)  // v·b2
			e.op("VMULPS", d, e.k("c2"), t2) // c2·d
			e.op("VMULPS", d, t2, t2)        // (c2·d)·d
			e.op("VADDPS", t2, v, v)
			e.store(v, "v")
			e.p("VSQRTPS %s, %s", v, v)          // √v
			e.op("VDIVPS", e.k("bc2Sqrt"), v, v) // √v / bc2Sqrt
			e.op("VADDPS", e.k("eps"), v, v)     // denom
			e.op("VMULPS", e.k("stepSize"), m, m)
			e.op("VDIVPS", v, m, m)   // (stepSize·m) / denom
			e.op("VSUBPS", m, th, th) // θ − …
			e.store(th, "theta")
		},
	},
	{
		name:   "sgd",
		ptrs:   []string{"theta", "buf", "grad"},
		coeffs: []string{"lr", "wd", "mu", "damp"},
		flags:  true,
		ftz:    true,
		comment: `// Per element, as optim.SGD's Go loop:
//	d = g; if flags&flagWD { d = d + wd·θ }
//	if flags&flagMomentum {
//		b = d (flags&flagFirst) or b·mu + damp·d
//		d = d + mu·b (flags&flagNesterov) or b
//	}
//	θ = θ − lr·d
// buf is not touched without flagMomentum (it may be nil).`,
		body: func(e *emitter) {
			d, th, t := e.v(0), e.v(1), e.v(2)
			e.load(d, "grad")
			e.load(th, "theta")
			e.ifFlag(flagWD, func() {
				e.op("VMULPS", th, e.k("wd"), t)
				e.op("VADDPS", t, d, d)
			})
			e.ifFlag(flagMomentum, func() {
				b := e.v(3)
				e.ifElse(flagFirst, func() {
					e.p("VMOVAPS %s, %s", d, b) // b = d
				}, func() {
					e.load(b, "buf")
					e.op("VMULPS", e.k("mu"), b, b)   // b·mu
					e.op("VMULPS", d, e.k("damp"), t) // damp·d
					e.op("VADDPS", t, b, b)
				})
				e.store(b, "buf")
				e.ifElse(flagNesterov, func() {
					e.op("VMULPS", b, e.k("mu"), t) // mu·b
					e.op("VADDPS", t, d, d)         // d + mu·b
				}, func() {
					e.p("VMOVAPS %s, %s", b, d) // d = b
				})
			})
			e.op("VMULPS", d, e.k("lr"), d) // lr·d
			e.op("VSUBPS", d, th, th)       // θ − lr·d
			e.store(th, "theta")
		},
	},
	{
		name:   "relu",
		ptrs:   []string{"x", "y"},
		consts: []string{"zero"},
		comment: `// Per element, as reluGo: y = x if x > 0, else +0 (also for −0 and NaN).
// MAXPS returns its second source unless the first is greater, which is
// exactly this with x first and +0 second.`,
		body: func(e *emitter) {
			x := e.v(0)
			e.load(x, "x")
			e.op("VMAXPS", e.c("zero"), x, x) // x > 0 ? x : +0
			e.store(x, "y")
		},
	},
	{
		name:    "leakyReLU",
		ptrs:    []string{"x", "y"},
		coeffs:  []string{"slope"},
		consts:  []string{"zero"},
		comment: `// Per element, as leakyReLUGo: y = x if x > 0, else x·slope.`,
		body: func(e *emitter) {
			x, t := e.v(0), e.v(1)
			m := e.mask(0, 2)
			e.load(x, "x")
			e.op("VMULPS", e.k("slope"), x, t) // x·slope
			e.cmp(cmpGT, e.c("zero"), x, m)    // x > 0
			e.sel(m, x, t, t)
			e.store(t, "y")
		},
	},
	{
		name:    "reluGrad",
		ptrs:    []string{"x", "up", "gd"},
		consts:  []string{"zero"},
		comment: `// Per element, as reluGradGo: gd = up if x > 0, else +0 (not up·0).`,
		body: func(e *emitter) {
			x, u := e.v(0), e.v(1)
			m := e.mask(0, 2)
			e.load(x, "x")
			e.load(u, "up")
			e.cmp(cmpGT, e.c("zero"), x, m) // x > 0
			e.andMask(m, u, u)
			e.store(u, "gd")
		},
	},
	{
		name:    "leakyReLUGrad",
		ptrs:    []string{"x", "up", "gd"},
		coeffs:  []string{"slope"},
		consts:  []string{"one", "zero"},
		comment: `// Per element, as leakyReLUGradGo: gd = up·(x > 0 ? 1 : slope).`,
		body: func(e *emitter) {
			x, u, f := e.v(0), e.v(1), e.v(2)
			m := e.mask(0, 3)
			e.load(x, "x")
			e.load(u, "up")
			e.cmp(cmpGT, e.c("zero"), x, m) // x > 0
			e.sel(m, e.c("one"), e.k("slope"), f)
			e.op("VMULPS", f, u, u)
			e.store(u, "gd")
		},
	},
	{
		name: "sigmoidPair",
		ptrs: []string{"x", "s", "c"},
		// one first: it is the dividend of 1/(1+e), which must be a
		// register; then by use.
		consts: []string{"one", "sign", "half", "log2e", "ln2Hi", "ln2Lo", "p7", "p6", "p5", "p4", "p3",
			"expMin", "zero", "quiet", "m126", "c64", "c127", "two23", "pow2m64"},
		comment: `// Per element, as sigmoidPairGo: with a = −|x| and e = Exp(a),
//	s, c = 1/(1+e), e/(1+e) for x ≥ 0; e/(1+e), 1/(1+e) for x < 0;
//	s, c = x, −x with the quiet bit set for NaN x.
// Exp(a) is Exp's computation for a ≤ 0, operation by operation:
//	n = ⌊a·log2e + 1/2⌋ (in float32: exact for a·log2e ≤ −1/2, and any
//	    rounding above keeps the sum in [0, 1) with floor 0, as in float64)
//	r = (a − n·ln2Hi) − n·ln2Lo
//	p = 1 + r·(1 + r·(1/2 + r·(1/6 + r·(1/24 + r·(1/120 + r·(1/720 + r·(1/5040)))))))
//	e = p·2ⁿ, 0 for a < expMin
// where p·2ⁿ is rounded once, as Exp's one or two multiplications round
// it (the first of two is exact): AVX-512 scales with VSCALEFPS, AVX builds
// 2ⁿ (or 2ⁿ⁺⁶⁴ and 2⁻⁶⁴ below the normal range) from exponent bits.`,
		body: func(e *emitter) {
			x, a, t, n, r := e.v(0), e.v(1), e.v(2), e.v(3), e.v(4)
			e.load(x, "x")
			e.or(e.c("sign"), x, a)            // a = −|x|
			e.op("VMULPS", e.c("log2e"), a, t) // a·log2e
			e.op("VADDPS", e.c("half"), t, n)  // + 1/2
			e.floor(n, n)                      // n
			e.op("VMULPS", e.c("ln2Hi"), n, t) // n·ln2Hi
			e.op("VSUBPS", t, a, r)            // a − n·ln2Hi
			e.op("VMULPS", e.c("ln2Lo"), n, t) // n·ln2Lo
			e.op("VSUBPS", t, r, r)            // r
			p := e.v(2)
			e.op("VMULPS", e.c("p7"), r, p) // r·(1/5040)
			for _, k := range []string{"p6", "p5", "p4", "p3", "half", "one"} {
				e.op("VADDPS", e.c(k), p, p) // k + …
				e.op("VMULPS", r, p, p)      // r·(…)
			}
			e.op("VADDPS", e.c("one"), p, p) // p = 1 + r·(…)
			e.scale(n, p, e.v(5), e.v(6))    // p·2ⁿ
			m := e.mask(0, 5)
			e.cmp(cmpGE, e.c("expMin"), a, m) // a ≥ expMin (false for NaN)
			e.andMask(m, p, p)                // e, 0 below expMin
			den, q1 := e.v(3), e.v(4)
			e.op("VADDPS", e.c("one"), p, den) // 1 + e
			e.op("VDIVPS", den, e.c("one"), q1)
			e.op("VDIVPS", den, p, p) // e/(1+e)
			e.cmp(cmpGE, e.c("zero"), x, m)
			s, c := e.v(6), e.v(3)
			e.sel(m, q1, p, s) // σ(x)
			e.sel(m, p, q1, c) // σ(−x)
			e.cmp(cmpUnord, x, x, m)
			q := e.v(4)
			e.or(e.c("quiet"), x, q) // NaN x: quiet x …
			e.sel(m, q, s, s)
			e.xor(e.c("sign"), q, q) // … and quiet −x
			e.sel(m, q, c, c)
			e.store(s, "s")
			e.store(c, "c")
		},
	},
}

// emitter writes one kernel body for one ISA, full-width or masked.
type emitter struct {
	w      *bytes.Buffer
	isa    isa
	k_     kernel
	masked bool
	labels int
	prefix string // label prefix: "full" or "tail"
}

func (e *emitter) p(format string, args ...any) { fmt.Fprintf(e.w, "\t"+format+"\n", args...) }

// v is work register i.
func (e *emitter) v(i int) string { return fmt.Sprintf("%s%d", e.isa.reg, i) }

// k is the register holding the broadcast coefficient name.
func (e *emitter) k(name string) string {
	for i, c := range e.k_.coeffs {
		if c == name {
			return fmt.Sprintf("%s%d", e.isa.reg, e.isa.konst+i)
		}
	}
	panic("no coefficient " + name)
}

// c is the register holding the constant name, or the 64-byte memory
// vector holding it when the registers after the coefficients have run
// out. A memory operand may stand only where the instruction takes r/m:
// the first Go operand of op, cmp, or, xor, floor and the true value of
// sel.
func (e *emitter) c(name string) string {
	for i, c := range e.k_.consts {
		if c == name {
			if r := e.isa.konst + len(e.k_.coeffs) + i; r <= e.isa.last {
				return fmt.Sprintf("%s%d", e.isa.reg, r)
			}
			return constSym(name)
		}
	}
	panic("no constant " + name)
}

// constSym is the memory vector of constant name.
func constSym(name string) string { return "const_" + name + "<>(SB)" }

// mask is a comparison mask: opmask K(2+i) on AVX-512, work register v on
// AVX.
func (e *emitter) mask(i, v int) string {
	if e.isa.reg == "Z" {
		return fmt.Sprintf("K%d", 2+i)
	}
	return e.v(v)
}

// cmp sets mask m to a pred b lane by lane (a cmpXX predicate).
func (e *emitter) cmp(pred int, b, a, m string) { e.p("VCMPPS $0x%02x, %s, %s, %s", pred, b, a, m) }

// sel sets dst to t where mask m is set, else f (t may be a memory operand).
func (e *emitter) sel(m, t, f, dst string) {
	if e.isa.reg == "Z" {
		e.p("VBLENDMPS %s, %s, %s, %s", t, f, m, dst)
		return
	}
	e.p("VBLENDVPS %s, %s, %s, %s", m, t, f, dst)
}

// andMask sets dst to src where mask m is set, else +0.
func (e *emitter) andMask(m, src, dst string) {
	if e.isa.reg == "Z" {
		e.p("VMOVUPS.Z %s, %s, %s", src, m, dst)
		return
	}
	e.p("VANDPS %s, %s, %s", m, src, dst)
}

// or and xor are the bitwise operations (VPORD/VPXORD on AVX-512F, which
// lacks the floating-point forms without AVX512DQ).
func (e *emitter) or(b, a, dst string) {
	if e.isa.reg == "Z" {
		e.op("VPORD", b, a, dst)
		return
	}
	e.op("VORPS", b, a, dst)
}

func (e *emitter) xor(b, a, dst string) {
	if e.isa.reg == "Z" {
		e.op("VPXORD", b, a, dst)
		return
	}
	e.op("VXORPS", b, a, dst)
}

// floor rounds src down to an integer (imm 9: toward −∞, no precision
// exception).
func (e *emitter) floor(src, dst string) {
	if e.isa.reg == "Z" {
		e.p("VRNDSCALEPS $9, %s, %s", src, dst)
		return
	}
	e.p("VROUNDPS $9, %s, %s", src, dst)
}

// scale sets p to p·2ⁿ for integral n ≤ 0 with one rounding (exact unless
// the result is subnormal), using t1 and t2 as scratch on AVX. AVX-512:
// VSCALEFPS. AVX: 2ⁿ from exponent bits ((n+127)·2²³ converted to an
// integer), in two factors 2ⁿ⁺⁶⁴·2⁻⁶⁴ when 2ⁿ is subnormal (n < −126), as
// Exp does: p·2ⁿ⁺⁶⁴ is then exact and only the second product rounds.
// n is clobbered.
func (e *emitter) scale(n, p, t1, t2 string) {
	if e.isa.reg == "Z" {
		e.p("VSCALEFPS %s, %s, %s", n, p, p)
		return
	}
	e.cmp(cmpLT, e.c("m126"), n, t1)             // n < −126
	e.sel(t1, e.c("pow2m64"), e.c("one"), t2)    // second factor
	e.p("VANDPS %s, %s, %s", e.c("c64"), t1, t1) // 64 or 0
	e.op("VADDPS", t1, n, n)                     // n + 64 or n
	e.op("VADDPS", e.c("c127"), n, n)            // biased exponent
	e.op("VMULPS", e.c("two23"), n, n)           // … in the exponent field
	e.p("VCVTTPS2DQ %s, %s", n, n)               // 2ⁿ (or 2ⁿ⁺⁶⁴) as bits
	e.op("VMULPS", n, p, p)                      // exact
	e.op("VMULPS", t2, p, p)                     // rounds below the normal range
}

// op emits a three-operand instruction in Go operand order: for VSUBPS and
// VDIVPS, "op b, a, dst" computes dst = a − b, a / b.
func (e *emitter) op(ins, b, a, dst string) { e.p("%s %s, %s, %s", ins, b, a, dst) }

func (e *emitter) ptr(name string) string {
	for i, p := range e.k_.ptrs {
		if p == name {
			return "(" + ptrRegs[i] + ")"
		}
	}
	panic("no pointer " + name)
}

func (e *emitter) load(dst, from string) {
	switch {
	case !e.masked:
		e.p("VMOVUPS %s, %s", e.ptr(from), dst)
	case e.isa.reg == "Z":
		e.p("VMOVUPS.Z %s, %s, %s", e.ptr(from), e.isa.mask, dst)
	default:
		e.p("VMASKMOVPS %s, %s, %s", e.ptr(from), e.isa.mask, dst)
	}
}

func (e *emitter) store(src, to string) {
	switch {
	case !e.masked:
		e.p("VMOVUPS %s, %s", src, e.ptr(to))
	case e.isa.reg == "Z":
		e.p("VMOVUPS %s, %s, %s", src, e.isa.mask, e.ptr(to))
	default:
		e.p("VMASKMOVPS %s, %s, %s", src, e.isa.mask, e.ptr(to))
	}
}

func (e *emitter) label() string {
	e.labels++
	return fmt.Sprintf("%s%d", e.prefix, e.labels)
}

// ifFlag emits then() guarded by flags&bit != 0.
func (e *emitter) ifFlag(bit int, then func()) {
	skip := e.label()
	e.p("TESTQ $%d, %s", bit, rFlags)
	e.p("JZ %s", skip)
	then()
	fmt.Fprintf(e.w, "%s:\n", skip)
}

// ifElse emits then() when flags&bit != 0, otherwise els().
func (e *emitter) ifElse(bit int, then, els func()) {
	other, done := e.label(), e.label()
	e.p("TESTQ $%d, %s", bit, rFlags)
	e.p("JZ %s", other)
	then()
	e.p("JMP %s", done)
	fmt.Fprintf(e.w, "%s:\n", other)
	els()
	fmt.Fprintf(e.w, "%s:\n", done)
}

// signature returns the Go parameter list of k.
func signature(k kernel) string {
	s := strings.Join(k.ptrs, ", ") + " *float32, n int"
	if len(k.coeffs) > 0 {
		s += ", " + strings.Join(k.coeffs, ", ") + " float32"
	}
	if k.flags {
		s += ", flags int"
	}
	return s
}

// flagsOff is the frame offset of the flags argument (8-byte aligned).
func flagsOff(k kernel) int { return (8*len(k.ptrs) + 8 + 4*len(k.coeffs) + 7) &^ 7 }

func argsSize(k kernel) int {
	if k.flags {
		return flagsOff(k) + 8
	}
	return 8*len(k.ptrs) + 8 + 4*len(k.coeffs)
}

func emit(w *bytes.Buffer, k kernel, is isa) {
	name := k.name + is.suffix
	p := func(format string, args ...any) { fmt.Fprintf(w, "\t"+format+"\n", args...) }
	fmt.Fprintf(w, "\n// func %s(%s)\n", name, signature(k))
	fmt.Fprintf(w, "%s\n", k.comment)
	frame := 0
	if k.ftz {
		frame = 8
	}
	fmt.Fprintf(w, "TEXT ·%s(SB), NOSPLIT, $%d-%d\n", name, frame, argsSize(k))
	off := 0
	for i, ptr := range k.ptrs {
		p("MOVQ %s+%d(FP), %s", ptr, off, ptrRegs[i])
		off += 8
	}
	p("MOVQ n+%d(FP), %s", off, rN)
	off += 8
	for i, c := range k.coeffs {
		p("VBROADCASTSS %s+%d(FP), %s%d", c, off, is.reg, is.konst+i)
		off += 4
	}
	if k.flags {
		p("MOVQ flags+%d(FP), %s", flagsOff(k), rFlags)
	}
	for i, c := range k.consts {
		if r := is.konst + len(k.coeffs) + i; r <= is.last {
			p("VMOVUPS %s, %s%d", constSym(c), is.reg, r)
		}
	}
	if k.ftz {
		// MXCSR: save, then set FTZ|DAZ (see the comment at the top of the .s).
		p("STMXCSR saved-8(SP)")
		p("MOVL saved-8(SP), AX")
		p("ORL $0x8040, AX") // FTZ | DAZ
		p("MOVL AX, ftzdaz-4(SP)")
		p("LDMXCSR ftzdaz-4(SP)")
	}
	p("MOVQ %s, %s", rN, rVecs)
	p("SHRQ $%d, %s", log2(is.width), rVecs)
	p("JZ tail")
	fmt.Fprintf(w, "loop:\n")
	full := &emitter{w: w, isa: is, k_: k, prefix: "full"}
	k.body(full)
	for i := range k.ptrs {
		p("ADDQ $%d, %s", 4*is.width, ptrRegs[i])
	}
	p("DECQ %s", rVecs)
	p("JNZ loop")
	fmt.Fprintf(w, "tail:\n")
	p("ANDQ $%d, %s", is.width-1, rN)
	p("JZ done")
	if is.reg == "Z" {
		// K1 = (1<<tail) − 1: the first tail lanes.
		p("MOVL $1, AX")
		p("SHLL CX, AX")
		p("DECL AX")
		p("KMOVW AX, K1")
	} else {
		// tailMask+32−4·tail starts with tail all-ones lanes.
		p("LEAQ tailMask<>+32(SB), AX")
		p("SHLQ $2, %s", rN)
		p("SUBQ %s, AX", rN)
		p("VMOVDQU (AX), %s", is.mask)
	}
	tail := &emitter{w: w, isa: is, k_: k, masked: true, prefix: "tail"}
	k.body(tail)
	fmt.Fprintf(w, "done:\n")
	if k.ftz {
		p("LDMXCSR saved-8(SP)")
	}
	p("VZEROUPPER")
	p("RET")
}

func log2(n int) int {
	l := 0
	for 1<<l < n {
		l++
	}
	return l
}

func main() {
	var w bytes.Buffer
	fmt.Fprintf(&w, "// Code generated by gen/main.go; DO NOT EDIT.\n\n")
	fmt.Fprintf(&w, "//go:build amd64 && !purego\n\n")
	fmt.Fprintf(&w, "#include \"textflag.h\"\n\n")
	fmt.Fprint(&w, `// The optimizer kernels (adam, sgd) save MXCSR, set FTZ (bit 15) and DAZ
// (bit 6) so that subnormal m, v and gradient values read as zero and
// subnormal results flush to zero instead of taking a microcode assist
// each, and restore the saved MXCSR before RET. This is safe: the Go
// runtime never preempts an assembly function asynchronously (it is not an
// async safe point) and the kernels call nothing, so no other Go code runs
// on the thread while the bits are set; a signal handler that interrupts
// the kernel gets the register state saved and restored by the operating
// system. The activation and batch-normalisation kernels leave MXCSR
// alone: with Go's setting (round to nearest, no FTZ/DAZ) they are exact on
// subnormals too.

`)
	fmt.Fprintf(&w, "// tailMask is 8 all-ones lanes then 8 zero lanes: the 8 lanes at byte\n")
	fmt.Fprintf(&w, "// offset 32−4·t enable the first t elements (AVX2 tails). Read as\n")
	fmt.Fprintf(&w, "// quadwords it is 4 all-ones then 4 zero lanes: the 4 float64 lanes at\n")
	fmt.Fprintf(&w, "// offset 32−8·t enable the first t of them (batch-normalisation tails).\n")
	for i := 0; i < 16; i++ {
		v := "$0xffffffff"
		if i >= 8 {
			v = "$0"
		}
		fmt.Fprintf(&w, "DATA tailMask<>+%d(SB)/4, %s\n", 4*i, v)
	}
	fmt.Fprintf(&w, "GLOBL tailMask<>(SB), RODATA|NOPTR, $64\n")
	used := map[string]bool{}
	for _, k := range kernels {
		for _, c := range k.consts {
			if _, ok := consts[c]; !ok {
				panic("unknown constant " + c)
			}
			used[c] = true
		}
	}
	var names []string
	for c := range used {
		names = append(names, c)
	}
	sort.Strings(names)
	fmt.Fprintf(&w, "\n// Constants of the activation kernels: 16 copies each, a full AVX-512\n")
	fmt.Fprintf(&w, "// vector (AVX reads the first 32 bytes).\n")
	for _, c := range names {
		for i := 0; i < 16; i++ {
			fmt.Fprintf(&w, "DATA const_%s<>+%d(SB)/4, $0x%08x\n", c, 4*i, consts[c])
		}
		fmt.Fprintf(&w, "GLOBL const_%s<>(SB), RODATA|NOPTR, $64\n", c)
	}
	for _, is := range isas {
		for _, k := range kernels {
			emit(&w, k, is)
		}
		for _, k := range bnKernels {
			emitBN(&w, k, is)
		}
	}
	write("kernels_amd64.s", w.Bytes())

	var g bytes.Buffer
	fmt.Fprintf(&g, "// Code generated by gen/main.go; DO NOT EDIT.\n\n")
	fmt.Fprintf(&g, "//go:build amd64 && !purego\n\npackage vec\n")
	for _, is := range isas {
		for _, k := range kernels {
			fmt.Fprintf(&g, "\n// %s%s is the %d-lane %s kernel (kernels_amd64.s).\n//\n//go:noescape\nfunc %s%s(%s)\n",
				k.name, is.suffix, is.width, k.name, k.name, is.suffix, signature(k))
		}
		for _, k := range bnKernels {
			fmt.Fprintf(&g, "\n// %s%s is the %s %s kernel (kernels_amd64.s).\n//\n//go:noescape\nfunc %s%s(%s)\n",
				k.name, is.suffix, bnLanes[is.reg], k.name, k.name, is.suffix, bnSignature(k))
		}
	}
	src, err := format.Source(g.Bytes())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	write("kernels_amd64.go", src)
}

func write(name string, b []byte) {
	if err := os.WriteFile(name, b, 0o644); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// Batch-normalisation kernels. They read float32 rows, compute in float64
// and write float32 rows or float64 sums, eight float64 lanes at a time:
// one zmm on AVX-512 (VCVTPS2PD of eight float32), two ymm of four lanes
// ("parts" 0 and 1, elements i..i+3 and i+4..i+7) on AVX. Each block of
// eight elements runs the body once per part; the n mod 8 elements left run
// it once more with masked loads and stores (AVX-512: K1; AVX: VMASKMOVPS
// and VMASKMOVPD with masks from tailMask, min(t, 4) lanes in part 0 and
// the rest in part 1), so every element goes through the same
// instructions. The kernels keep Go's MXCSR and use separate VSUBPD,
// VMULPD and VADDPD (never FMA) in the order of the Go expressions, which
// makes every element-wise result bit-identical to the scalar float64 Go
// code; sums keep eight lane-wise partial sums (lane j adds the terms of
// elements j, j+8, j+16, … in order; the masked tail adds nothing to the
// lanes it leaves out) and reduce them at the end as
// ((s0+s4)+(s2+s6)) + ((s1+s5)+(s3+s7)), the order of the Go loops in
// bn.go (reduce8).

// bnKernel is one batch-normalisation kernel. Its Go signature is
// (rows *float32…, params *float64…, n int, scalars float64…) (sums
// float64…). (The gradient row is gr: g names a register in Go assembly.)
type bnKernel struct {
	name    string
	rows    []string // float32 slices: read (row) or written (storeRow)
	params  []string // float64 slices: per-element parameters, or accumulators
	scalars []string // float64 arguments, broadcast
	sums    []string // float64 results, lane-wise partial sums reduced at the end
	comment string
	body    func(e *bnEmitter)
}

// bnLanes describes the float64 lanes of an ISA, for the declarations.
var bnLanes = map[string]string{"Z": "8-lane float64 (one zmm)", "Y": "8-lane float64 (two ymm)"}

// Registers of the batch-normalisation kernels: one pointer per slice
// argument, the element index R9 (the same for float32 and float64 slices,
// scaled in the addressing mode), n in CX, the end of the full blocks in R8
// (AX, CX and R8 are scratch in the tail).
var bnPtrRegs = []string{"DI", "SI", "DX", "BX", "R10", "R11", "R12", "R13"}

const (
	bnIdx  = "R9"
	bnFull = "R8"
)

var bnKernels = []bnKernel{
	{
		name: "sum", rows: []string{"x"}, sums: []string{"s"},
		comment: "// s = Σ float64(x[i]), in the order of sumGo.",
		body: func(e *bnEmitter) {
			e.accumulate("s", e.row("x"))
		},
	},
	{
		name: "sumSqDev", rows: []string{"x"}, scalars: []string{"mu"}, sums: []string{"s"},
		comment: "// s = Σ d·d with d = float64(x[i]) − mu, in the order of sumGo.",
		body: func(e *bnEmitter) {
			d := e.row("x")
			e.op("VSUBPD", e.scalar("mu"), d, d)
			e.op("VMULPD", d, d, d)
			e.accumulate("s", d)
		},
	},
	{
		name: "sumGradDot", rows: []string{"gr", "x"}, scalars: []string{"mu", "is"}, sums: []string{"sg", "sgx"},
		comment: `// sg = Σ gv, sgx = Σ (gv·(float64(x[i]) − mu))·is with gv = float64(gr[i]),
// in the order of sumGo.`,
		body: func(e *bnEmitter) {
			g := e.row("gr")
			e.accumulate("sg", g)
			d := e.row("x")
			e.op("VSUBPD", e.scalar("mu"), d, d)
			e.op("VMULPD", d, g, d) // gv·(x − mu)
			e.op("VMULPD", e.scalar("is"), d, d)
			e.accumulate("sgx", d)
		},
	},
	{
		name: "accSum", rows: []string{"x"}, params: []string{"acc"},
		comment: "// acc[i] = acc[i] + float64(x[i]).",
		body: func(e *bnEmitter) {
			x, a := e.row("x"), e.tmp()
			e.loadParam(a, "acc")
			e.op("VADDPD", x, a, a)
			e.storeParam(a, "acc")
		},
	},
	{
		name: "accSqDev", rows: []string{"x"}, params: []string{"acc", "mu"},
		comment: "// acc[i] = acc[i] + d·d with d = float64(x[i]) − mu[i].",
		body: func(e *bnEmitter) {
			d := e.row("x")
			e.op("VSUBPD", e.param("mu"), d, d)
			e.op("VMULPD", d, d, d)
			a := e.tmp()
			e.loadParam(a, "acc")
			e.op("VADDPD", d, a, a)
			e.storeParam(a, "acc")
		},
	},
	{
		name: "accGradDot", rows: []string{"gr", "x"}, params: []string{"sg", "sgx", "mu", "is"},
		comment: `// sg[i] = sg[i] + gv, sgx[i] = sgx[i] + (gv·(float64(x[i]) − mu[i]))·is[i]
// with gv = float64(gr[i]).`,
		body: func(e *bnEmitter) {
			g, a := e.row("gr"), e.tmp()
			e.loadParam(a, "sg")
			e.op("VADDPD", g, a, a)
			e.storeParam(a, "sg")
			d := e.row("x")
			e.op("VSUBPD", e.param("mu"), d, d)
			e.op("VMULPD", d, g, d)
			e.op("VMULPD", e.param("is"), d, d)
			e.loadParam(a, "sgx")
			e.op("VADDPD", d, a, a)
			e.storeParam(a, "sgx")
		},
	},
	{
		name: "normalize", rows: []string{"x", "y"}, scalars: []string{"mu", "is", "gamma", "beta"},
		comment: "// y[i] = float32(((float64(x[i]) − mu)·is)·gamma + beta).",
		body: func(e *bnEmitter) {
			t := e.row("x")
			e.op("VSUBPD", e.scalar("mu"), t, t)
			e.op("VMULPD", e.scalar("is"), t, t)
			e.op("VMULPD", e.scalar("gamma"), t, t)
			e.op("VADDPD", e.scalar("beta"), t, t)
			e.storeRow(t, "y")
		},
	},
	{
		name: "normalizeCh", rows: []string{"x", "y"}, params: []string{"mu", "is", "gamma", "beta"},
		comment: "// y[i] = float32(((float64(x[i]) − mu[i])·is[i])·gamma[i] + beta[i]).",
		body: func(e *bnEmitter) {
			t := e.row("x")
			e.op("VSUBPD", e.param("mu"), t, t)
			e.op("VMULPD", e.param("is"), t, t)
			e.op("VMULPD", e.param("gamma"), t, t)
			e.op("VADDPD", e.param("beta"), t, t)
			e.storeRow(t, "y")
		},
	},
	{
		name: "normGrad", rows: []string{"x", "gr", "dx"}, scalars: []string{"mu", "is", "scale", "mg", "mgx"},
		comment: `// dx[i] = float32(scale·((gv − mg) − xh·mgx)) with gv = float64(gr[i]) and
// xh = (float64(x[i]) − mu)·is.`,
		body: func(e *bnEmitter) {
			xh := e.row("x")
			e.op("VSUBPD", e.scalar("mu"), xh, xh)
			e.op("VMULPD", e.scalar("is"), xh, xh)
			u := e.row("gr")
			e.op("VSUBPD", e.scalar("mg"), u, u)
			e.op("VMULPD", e.scalar("mgx"), xh, xh)
			e.op("VSUBPD", xh, u, u)
			e.op("VMULPD", u, e.scalar("scale"), u)
			e.storeRow(u, "dx")
		},
	},
	{
		name: "normGradCh", rows: []string{"x", "gr", "dx"}, params: []string{"mu", "is", "scale", "mg", "mgx"},
		comment: `// dx[i] = float32(scale[i]·((gv − mg[i]) − xh·mgx[i])) with
// gv = float64(gr[i]) and xh = (float64(x[i]) − mu[i])·is[i].`,
		body: func(e *bnEmitter) {
			xh := e.row("x")
			e.op("VSUBPD", e.param("mu"), xh, xh)
			e.op("VMULPD", e.param("is"), xh, xh)
			u := e.row("gr")
			e.op("VSUBPD", e.param("mg"), u, u)
			e.op("VMULPD", e.param("mgx"), xh, xh)
			e.op("VSUBPD", xh, u, u)
			s := e.tmp()
			e.loadParam(s, "scale")
			e.op("VMULPD", u, s, u) // scale first, as in the Go expression
			e.storeRow(u, "dx")
		},
	},
	{
		name: "scaleGrad", rows: []string{"gr", "dx"}, scalars: []string{"scale"},
		comment: "// dx[i] = float32(scale·float64(gr[i])).",
		body: func(e *bnEmitter) {
			t := e.row("gr")
			e.op("VMULPD", t, e.scalar("scale"), t)
			e.storeRow(t, "dx")
		},
	},
	{
		name: "scaleGradCh", rows: []string{"gr", "dx"}, params: []string{"scale"},
		comment: "// dx[i] = float32(scale[i]·float64(gr[i])).",
		body: func(e *bnEmitter) {
			t, s := e.row("gr"), e.tmp()
			e.loadParam(s, "scale")
			e.op("VMULPD", t, s, t)
			e.storeRow(t, "dx")
		},
	},
}

// bnEmitter writes one part of one kernel body for one ISA, full or
// masked.
type bnEmitter struct {
	w      *bytes.Buffer
	isa    isa
	k      bnKernel
	part   int // AVX: 0 for elements i..i+3, 1 for i+4..i+7; AVX-512: 0
	masked bool
	ntmp   int // work registers handed out in this part
}

func (e *bnEmitter) p(format string, args ...any) { fmt.Fprintf(e.w, "\t"+format+"\n", args...) }

func (e *bnEmitter) avx512() bool { return e.isa.reg == "Z" }

// bnWork is the number of work registers Z0…, Y0… of kernel k: Z0–Z7 on
// AVX-512; on AVX whatever Y0–Y11 the accumulators and scalars leave
// (Y12–Y15 hold the tail masks).
func bnWork(is isa, k bnKernel) int {
	if is.reg == "Z" {
		return 8
	}
	return 12 - 2*len(k.sums) - len(k.scalars)
}

// tmp hands out the next work register of the part.
func (e *bnEmitter) tmp() string {
	if e.ntmp == bnWork(e.isa, e.k) {
		panic(e.k.name + ": out of work registers")
	}
	e.ntmp++
	return fmt.Sprintf("%s%d", e.isa.reg, e.ntmp-1)
}

// half is the 128-bit (AVX) or 256-bit (AVX-512) register under vector
// register r: the float32 half of a converted value.
func (e *bnEmitter) half(r string) string {
	if e.avx512() {
		return "Y" + r[1:]
	}
	return "X" + r[1:]
}

// bnAcc is the accumulator of sum s (and, on AVX, of the part): Z8 and Z9
// on AVX-512, the two registers after the work registers per sum on AVX.
func bnAcc(is isa, k bnKernel, s string, part int) string {
	for i, name := range k.sums {
		if name == s {
			if is.reg == "Z" {
				return fmt.Sprintf("Z%d", 8+i)
			}
			return fmt.Sprintf("Y%d", bnWork(is, k)+2*i+part)
		}
	}
	panic("no sum " + s)
}

// bnScalar is the register holding the broadcast scalar s: Z16… on
// AVX-512, the registers after the accumulators on AVX.
func bnScalar(is isa, k bnKernel, s string) string {
	for i, name := range k.scalars {
		if name == s {
			if is.reg == "Z" {
				return fmt.Sprintf("Z%d", 16+i)
			}
			return fmt.Sprintf("Y%d", bnWork(is, k)+2*len(k.sums)+i)
		}
	}
	panic("no scalar " + s)
}

func (e *bnEmitter) scalar(s string) string { return bnScalar(e.isa, e.k, s) }

// AVX tail masks of part p: float32 lanes (X12, X14) and float64 lanes
// (Y13, Y15).
func (e *bnEmitter) mask32() string { return fmt.Sprintf("X%d", 12+2*e.part) }
func (e *bnEmitter) mask64() string { return fmt.Sprintf("Y%d", 13+2*e.part) }

// ptr is the memory operand of the part's elements of slice name.
func (e *bnEmitter) ptr(name string) string {
	for i, r := range e.k.rows {
		if r == name {
			return fmt.Sprintf("%d(%s)(%s*4)", 16*e.part, bnPtrRegs[i], bnIdx)
		}
	}
	for i, r := range e.k.params {
		if r == name {
			return fmt.Sprintf("%d(%s)(%s*8)", 32*e.part, bnPtrRegs[len(e.k.rows)+i], bnIdx)
		}
	}
	panic("no slice " + name)
}

// row loads the part's float32 elements of row name as float64 into a new
// work register.
func (e *bnEmitter) row(name string) string {
	r := e.tmp()
	switch {
	case !e.masked:
		e.p("VCVTPS2PD %s, %s", e.ptr(name), r)
	case e.avx512():
		e.p("VMOVUPS.Z %s, K1, %s", e.ptr(name), r)
		e.p("VCVTPS2PD %s, %s", e.half(r), r)
	default:
		e.p("VMASKMOVPS %s, %s, %s", e.ptr(name), e.mask32(), e.half(r))
		e.p("VCVTPS2PD %s, %s", e.half(r), r)
	}
	return r
}

// storeRow rounds the float64 lanes of src to float32 (clobbering src)
// and stores them into row name.
func (e *bnEmitter) storeRow(src, name string) {
	h := e.half(src)
	switch {
	case e.avx512():
		e.p("VCVTPD2PS %s, %s", src, h)
		if e.masked {
			e.p("VMOVUPS %s, K1, %s", src, e.ptr(name)) // 16 lanes, at most 8 enabled
		} else {
			e.p("VMOVUPS %s, %s", h, e.ptr(name))
		}
	default:
		e.p("VCVTPD2PSY %s, %s", src, h)
		if e.masked {
			e.p("VMASKMOVPS %s, %s, %s", h, e.mask32(), e.ptr(name))
		} else {
			e.p("VMOVUPS %s, %s", h, e.ptr(name))
		}
	}
}

// loadParam loads the part's elements of float64 slice name into dst.
func (e *bnEmitter) loadParam(dst, name string) {
	switch {
	case !e.masked:
		e.p("VMOVUPD %s, %s", e.ptr(name), dst)
	case e.avx512():
		e.p("VMOVUPD.Z %s, K1, %s", e.ptr(name), dst)
	default:
		e.p("VMASKMOVPD %s, %s, %s", e.ptr(name), e.mask64(), dst)
	}
}

// param is an operand holding the part's elements of float64 slice name:
// the memory operand itself in full blocks, a masked load into a new work
// register in the tail. (It may stand only as the first Go operand of op.)
func (e *bnEmitter) param(name string) string {
	if !e.masked {
		return e.ptr(name)
	}
	r := e.tmp()
	e.loadParam(r, name)
	return r
}

// storeParam stores src into the part's elements of float64 slice name.
func (e *bnEmitter) storeParam(src, name string) {
	switch {
	case !e.masked:
		e.p("VMOVUPD %s, %s", src, e.ptr(name))
	case e.avx512():
		e.p("VMOVUPD %s, K1, %s", src, e.ptr(name))
	default:
		e.p("VMASKMOVPD %s, %s, %s", src, e.mask64(), e.ptr(name))
	}
}

// accumulate adds the lanes of t to the accumulator of sum s, the
// accumulator as the first operand (acc = acc + t, as Go's s += t). In the
// tail only the enabled lanes: AVX-512 merge-masks the addition; AVX
// clears the other lanes of t (t is clobbered) and adds +0, which leaves
// them as they were (a partial sum is never −0: it starts at +0, and in
// round-to-nearest a sum is −0 only if both addends are).
func (e *bnEmitter) accumulate(s, t string) {
	acc := bnAcc(e.isa, e.k, s, e.part)
	switch {
	case !e.masked:
		e.op("VADDPD", t, acc, acc)
	case e.avx512():
		e.p("VADDPD %s, %s, K1, %s", t, acc, acc)
	default:
		e.p("VANDPD %s, %s, %s", e.mask64(), t, t)
		e.op("VADDPD", t, acc, acc)
	}
}

// op emits a three-operand instruction in Go operand order: "op b, a, dst"
// computes dst = a − b, a·b, a + b, a the first source (which decides
// which of two NaN operands' payloads the result carries).
func (e *bnEmitter) op(ins, b, a, dst string) { e.p("%s %s, %s, %s", ins, b, a, dst) }

// bnSignature returns the Go parameter and result lists of k.
func bnSignature(k bnKernel) string {
	var args []string
	if len(k.rows) > 0 {
		args = append(args, strings.Join(k.rows, ", ")+" *float32")
	}
	if len(k.params) > 0 {
		args = append(args, strings.Join(k.params, ", ")+" *float64")
	}
	args = append(args, "n int")
	if len(k.scalars) > 0 {
		args = append(args, strings.Join(k.scalars, ", ")+" float64")
	}
	s := strings.Join(args, ", ")
	if len(k.sums) > 0 {
		return s + ") (" + strings.Join(k.sums, ", ") + " float64"
	}
	return s
}

func emitBN(w *bytes.Buffer, k bnKernel, is isa) {
	name := k.name + is.suffix
	p := func(format string, args ...any) { fmt.Fprintf(w, "\t"+format+"\n", args...) }
	if len(k.rows)+len(k.params) > len(bnPtrRegs) {
		panic(k.name + ": too many slices")
	}
	if bnWork(is, k) < 2 {
		panic(k.name + ": out of AVX registers")
	}
	argSize := 8 * (len(k.rows) + len(k.params) + 1 + len(k.scalars))
	fmt.Fprintf(w, "\n// func %s(%s)\n", name, bnSignature(k))
	fmt.Fprintf(w, "%s\n", k.comment)
	fmt.Fprintf(w, "TEXT ·%s(SB), NOSPLIT, $0-%d\n", name, argSize+8*len(k.sums))
	off := 0
	for i, r := range append(append([]string(nil), k.rows...), k.params...) {
		p("MOVQ %s+%d(FP), %s", r, off, bnPtrRegs[i])
		off += 8
	}
	p("MOVQ n+%d(FP), CX", off)
	off += 8
	for _, s := range k.scalars {
		p("VBROADCASTSD %s+%d(FP), %s", s, off, bnScalar(is, k, s))
		off += 8
	}
	parts := 1
	if is.reg == "Y" {
		parts = 2
	}
	for _, s := range k.sums {
		for part := range parts {
			r := bnAcc(is, k, s, part)
			if is.reg == "Z" {
				p("VPXORQ %s, %s, %s", r, r, r)
			} else {
				p("VXORPD %s, %s, %s", r, r, r)
			}
		}
	}
	p("XORQ %s, %s", bnIdx, bnIdx)
	p("MOVQ CX, %s", bnFull)
	p("ANDQ $-8, %s", bnFull)
	p("JZ tail")
	fmt.Fprintf(w, "loop:\n")
	for part := range parts {
		k.body(&bnEmitter{w: w, isa: is, k: k, part: part})
	}
	p("ADDQ $8, %s", bnIdx)
	p("CMPQ %s, %s", bnIdx, bnFull)
	p("JLT loop")
	fmt.Fprintf(w, "tail:\n")
	p("MOVQ CX, AX")
	p("SUBQ %s, AX", bnIdx) // t = n mod 8 elements left
	p("JZ done")
	if is.reg == "Z" {
		// K1 = (1<<t) − 1: the first t lanes.
		p("MOVQ AX, CX")
		p("MOVL $1, AX")
		p("SHLL CX, AX")
		p("DECL AX")
		p("KMOVW AX, K1")
	} else {
		// Part 0 gets k0 = min(t, 4) lanes, part 1 the other t − k0:
		// tailMask+32−4k starts with k all-ones float32 lanes, and
		// tailMask+32−8k with k all-ones float64 lanes.
		p("MOVQ $4, CX")
		p("CMPQ AX, CX")
		p("CMOVQLT AX, CX") // k0
		p("SUBQ CX, AX")    // k1
		p("LEAQ tailMask<>+32(SB), %s", bnFull)
		p("NEGQ CX")
		p("NEGQ AX")
		p("VMOVDQU (%s)(CX*4), X12", bnFull)
		p("VMOVDQU (%s)(CX*8), Y13", bnFull)
		p("VMOVDQU (%s)(AX*4), X14", bnFull)
		p("VMOVDQU (%s)(AX*8), Y15", bnFull)
	}
	for part := range parts {
		k.body(&bnEmitter{w: w, isa: is, k: k, part: part, masked: true})
	}
	fmt.Fprintf(w, "done:\n")
	for _, s := range k.sums {
		acc := bnAcc(is, k, s, 0)
		y, x := "Y"+acc[1:], "X"+acc[1:]
		if is.reg == "Z" {
			p("VEXTRACTF64X4 $1, %s, Y1", acc)
			p("VADDPD Y1, %s, %s", y, y) // s[j] + s[j+4]
		} else {
			p("VADDPD %s, %s, %s", bnAcc(is, k, s, 1), y, y) // s[j] + s[j+4]
		}
		p("VEXTRACTF128 $1, %s, X1", y)
		p("VADDPD X1, %s, %s", x, x) // (s0+s4)+(s2+s6), (s1+s5)+(s3+s7)
		p("VPERMILPD $1, %s, X1", x)
		p("VADDSD X1, %s, %s", x, x)
		p("VMOVSD %s, %s+%d(FP)", x, s, off)
		off += 8
	}
	p("VZEROUPPER")
	p("RET")
}
