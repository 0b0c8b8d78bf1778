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

// relu runs the portable ReLU loop.
func relu(x, y []float32) { reluGo(x, y) }

// leakyReLU runs the portable LeakyReLU loop.
func leakyReLU(x, y []float32, slope float32) { leakyReLUGo(x, y, slope) }

// reluGrad runs the portable ReLU gradient loop.
func reluGrad(x, up, g []float32) { reluGradGo(x, up, g) }

// leakyReLUGrad runs the portable LeakyReLU gradient loop.
func leakyReLUGrad(x, up, g []float32, slope float32) { leakyReLUGradGo(x, up, g, slope) }

// sigmoidPair runs the portable SigmoidPair loop.
func sigmoidPair(x, s, c []float32) { sigmoidPairGo(x, s, c) }
