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

// The batch-normalisation passes run their portable Go loops (bn.go).

func sum(x []float32) float64                  { return sumGo(x) }
func sumSqDev(x []float32, mu float64) float64 { return sumSqDevGo(x, mu) }
func sumGradDot(g, x []float32, mu, is float64) (float64, float64) {
	return sumGradDotGo(g, x, mu, is)
}
func accSum(acc []float64, x []float32)                 { accSumGo(acc, x) }
func accSqDev(acc []float64, x []float32, mu []float64) { accSqDevGo(acc, x, mu) }
func accGradDot(sg, sgx []float64, g, x []float32, mu, is []float64) {
	accGradDotGo(sg, sgx, g, x, mu, is)
}
func normalize(x, y []float32, mu, is, gamma, beta float64) { normalizeGo(x, y, mu, is, gamma, beta) }
func normalizeCh(x, y []float32, mu, is, gamma, beta []float64) {
	normalizeChGo(x, y, mu, is, gamma, beta)
}
func normGrad(x, g, dx []float32, mu, is, scale, mg, mgx float64) {
	normGradGo(x, g, dx, mu, is, scale, mg, mgx)
}
func normGradCh(x, g, dx []float32, mu, is, scale, mg, mgx []float64) {
	normGradChGo(x, g, dx, mu, is, scale, mg, mgx)
}
func scaleGrad(g, dx []float32, scale float64)     { scaleGradGo(g, dx, scale) }
func scaleGradCh(g, dx []float32, scale []float64) { scaleGradChGo(g, dx, scale) }
