//go:build !amd64 || purego

package conv

// haveK4 is false where there are no assembly kernels: im2row and row2im
// run their Go loops.
var haveK4 = false

func im2rowK4(dst, src *float32, c, plane, wp int) { panic("conv: no assembly kernels") }

func row2imK4(dst, row *float32, c, plane, wp int) { panic("conv: no assembly kernels") }

func packK4(dst, src *float32, c, plane, wp, group, skip int) { panic("conv: no assembly kernels") }
