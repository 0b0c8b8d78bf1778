//go:build ignore

// Command gen writes the AVX-512 and AVX2 optimizer kernels in Go assembly
// (../kernels_amd64.s) and their Go declarations (../kernels_amd64.go). Run
// it from internal/vec:
//
//	go run gen/main.go
//
// Both instruction sets get the same two kernels, adam and sgd, emitted from
// one description (the body functions below) so that the 512-bit and the
// 256-bit code cannot drift apart. Each kernel
//
//   - saves MXCSR and sets FTZ|DAZ, restoring the saved value before RET;
//   - loads the float32 coefficients broadcast into vector registers;
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
	"os"
	"strings"
)

// isa describes one vector instruction set.
type isa struct {
	suffix string // Go function name suffix
	reg    string // "Z" or "Y"
	width  int    // float32 lanes per vector
	konst  int    // first register of the broadcast coefficients
	mask   string // the tail mask register (opmask or vector)
}

var isas = []isa{
	{suffix: "AVX512", reg: "Z", width: 16, konst: 16, mask: "K1"},
	{suffix: "AVX2", reg: "Y", width: 8, konst: 8, mask: "Y7"},
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
	return strings.Join(k.ptrs, ", ") + " *float32, n int, " + strings.Join(k.coeffs, ", ") + " float32, flags int"
}

func argsSize(k kernel) int { return 8*len(k.ptrs) + 8 + 4*len(k.coeffs) + 8 }

func emit(w *bytes.Buffer, k kernel, is isa) {
	name := k.name + is.suffix
	p := func(format string, args ...any) { fmt.Fprintf(w, "\t"+format+"\n", args...) }
	fmt.Fprintf(w, "\n// func %s(%s)\n", name, signature(k))
	fmt.Fprintf(w, "%s\n", k.comment)
	fmt.Fprintf(w, "TEXT ·%s(SB), NOSPLIT, $8-%d\n", name, argsSize(k))
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
	p("MOVQ flags+%d(FP), %s", off, rFlags)
	// MXCSR: save, then set FTZ|DAZ (see the comment at the top of the .s).
	p("STMXCSR saved-8(SP)")
	p("MOVL saved-8(SP), AX")
	p("ORL $0x8040, AX") // FTZ | DAZ
	p("MOVL AX, ftzdaz-4(SP)")
	p("LDMXCSR ftzdaz-4(SP)")
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
	p("LDMXCSR saved-8(SP)")
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
	fmt.Fprint(&w, `// Every kernel saves MXCSR, sets FTZ (bit 15) and DAZ (bit 6) so that
// subnormal m, v and gradient values read as zero and subnormal results
// flush to zero instead of taking a microcode assist each, and restores the
// saved MXCSR before RET. This is safe: the Go runtime never preempts an
// assembly function asynchronously (it is not an async safe point) and the
// kernels call nothing, so no other Go code runs on the thread while the
// bits are set; a signal handler that interrupts the kernel gets the
// register state saved and restored by the operating system.

`)
	fmt.Fprintf(&w, "// tailMask is 8 all-ones lanes then 8 zero lanes: the 8 lanes at byte\n")
	fmt.Fprintf(&w, "// offset 32−4·t enable the first t elements (AVX2 tails).\n")
	for i := 0; i < 16; i++ {
		v := "$0xffffffff"
		if i >= 8 {
			v = "$0"
		}
		fmt.Fprintf(&w, "DATA tailMask<>+%d(SB)/4, %s\n", 4*i, v)
	}
	fmt.Fprintf(&w, "GLOBL tailMask<>(SB), RODATA|NOPTR, $64\n")
	for _, is := range isas {
		for _, k := range kernels {
			emit(&w, k, is)
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
