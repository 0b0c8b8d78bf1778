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

// Bank lists the problem bank: one spec per classic problem of a
// deep-learning course, each worked in docs/bank/.
var Bank = []string{
	"mazur.yaml",              // the step-by-step backpropagation example, one SGD step
	"softmax-classifier.yaml", // softmax cross-entropy on a batch
	"convnet-pool.yaml",       // convolution, max pooling, cross-entropy
	"batchnorm.yaml",          // batch norm in training mode
	"layernorm.yaml",          // layer norm
	"residual.yaml",           // a residual block
	"dropout.yaml",            // dropout with a given mask
	"gated-concat.yaml",       // a product of activations and a concatenation
	"weight-decay.yaml",       // an L2 penalty in the objective
	"momentum.yaml",           // two SGD-with-momentum steps
	"adam.yaml",               // two Adam steps
	"rnn.yaml",                // backpropagation through time, an RNN over three steps
	"lstm.yaml",               // an LSTM cell over two steps, its gates
	"gru.yaml",                // a GRU step, reset and update gates
	"attention.yaml",          // one attention head, the softmax's Jacobian
	"transformer-block.yaml",  // a causal two-head pre-norm transformer block
	"next-token.yaml",         // a tiny transformer, next-token cross-entropy
}
