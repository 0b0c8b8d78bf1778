// Package examples ships the example specs inside the binary, so that
// `backprop solve` with no arguments solves Problem 1 as the problem set
// gives it, and the same files document the spec format under examples/.
package examples

import "embed"

// FS holds every *.yaml and *.json spec of this directory.
//
//go:embed *.yaml
var FS embed.FS

// File names of the seed's problems: the GAN of Problem 1 and a worked
// example of the auto-encoder of Problem 2.
const (
	Problem1    = "problem1.yaml"
	Autoencoder = "autoencoder.yaml"
)
