//go:build amd64 && !purego

package conv

import (
	"os"

	"golang.org/x/sys/cpu"
)

// haveK4 reports whether the AVX-512 kernels for 4×4 convolution kernels
// run: the CPU has AVX-512F and BACKPROP_NOSIMD=1 is not set (the same
// switch as packages blas and vec). A variable so tests can compare both
// paths.
var haveK4 = cpu.X86.HasAVX512F && os.Getenv("BACKPROP_NOSIMD") != "1"

// im2rowK4 writes the row of one output position for a 4×4 kernel: for
// each of c channels, the 4×4 window whose top-left value is at
// src[ch·plane], rows wp apart, as 16 contiguous values of dst (one
// 512-bit store per channel instead of four 128-bit ones).
//
//go:noescape
func im2rowK4(dst, src *float32, c, plane, wp int)

// row2imK4 is the adjoint of im2rowK4: it adds each channel's 16 values
// of the row back onto the 4×4 window at dst[ch·plane], rows wp apart.
//
//go:noescape
func row2imK4(dst, row *float32, c, plane, wp int)

// packK4 is im2rowK4 writing the channels in groups: after every group
// channels (group·16 values) dst skips skip more values, so that one call
// fills one row of each of several NR-wide panels of a packed operand.
//
//go:noescape
func packK4(dst, src *float32, c, plane, wp, group, skip int)
