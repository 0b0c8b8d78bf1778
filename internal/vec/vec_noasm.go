//go:build !amd64 || purego

package vec

// kernel returns the kernel family to run: always the portable Go loop,
// as there is no assembly for this platform or build (purego).
func kernel() string { return "go" }

// kernelAvailable reports whether the named kernel family can run here.
func kernelAvailable(name string) bool { return name == "go" }

// adam runs the portable Adam loop.
func adam(theta, m, v, g []float32, c *AdamCoeffs) { adamGo(theta, m, v, g, c) }

// sgd runs the portable SGD loop.
func sgd(theta, buf, g []float32, c *SGDCoeffs) { sgdGo(theta, buf, g, c) }
