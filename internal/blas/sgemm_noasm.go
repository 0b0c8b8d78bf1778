//go:build !amd64 || purego

package blas

// pickKernel32 returns the portable float32 micro-kernel: there is no
// assembly for this platform or build (purego).
func pickKernel32(n int) *kernel32 { return kernGo32 }

// kernelAvailable reports whether the named kernel family can run here.
func kernelAvailable(name string) bool { return name == "go" }
