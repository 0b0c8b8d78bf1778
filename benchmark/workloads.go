package benchmark

import (
	"errors"
	"fmt"

	"github.com/backprop-dev/backprop/autoencoder"
	"github.com/backprop-dev/backprop/autograd"
	"github.com/backprop-dev/backprop/gan"
	"github.com/backprop-dev/backprop/internal/blas"
	"github.com/backprop-dev/backprop/ops"
	"github.com/backprop-dev/backprop/optim"
	"github.com/backprop-dev/backprop/tensor"
)

// Batch is the mini-batch size of every step and layer workload.
const Batch = 64

// ConvLayer is one convolution layer of the reference DCGAN (gan package)
// with its input shape at batch Batch.
type ConvLayer struct {
	Name       string // conv1, conv2 (discriminator), deconv1, deconv2 (generator)
	Transposed bool   // ConvTranspose2d rather than Conv2d
	In, Out    int    // channels
	H, W       int    // input height and width
	K, S, P    int    // kernel, stride, padding
}

// DCGANLayers returns the four convolution layers of gan.NewDiscriminator
// (conv1, conv2) and gan.NewGenerator (deconv1, deconv2).
func DCGANLayers() []ConvLayer {
	return []ConvLayer{
		{Name: "conv1", In: 1, Out: 64, H: 28, W: 28, K: 4, S: 2, P: 1},
		{Name: "conv2", In: 64, Out: 128, H: 14, W: 14, K: 4, S: 2, P: 1},
		{Name: "deconv1", Transposed: true, In: 128, Out: 64, H: 7, W: 7, K: 4, S: 2, P: 1},
		{Name: "deconv2", Transposed: true, In: 64, Out: 1, H: 14, W: 14, K: 4, S: 2, P: 1},
	}
}

// OutSize returns the output height and width of the layer.
func (l ConvLayer) OutSize() (int, int) {
	if l.Transposed {
		return (l.H-1)*l.S - 2*l.P + l.K, (l.W-1)*l.S - 2*l.P + l.K
	}
	return (l.H+2*l.P-l.K)/l.S + 1, (l.W+2*l.P-l.K)/l.S + 1
}

// ForwardFLOPs is 2 × the multiply-adds of the layer's forward pass at
// batch Batch: N·Cout·OH·OW·Cin·K² for a convolution, N·Cin·H·W·Cout·K²
// for a transposed one (every input pixel scatters a Cout×K×K kernel).
func (l ConvLayer) ForwardFLOPs() float64 {
	oh, ow := l.OutSize()
	if l.Transposed {
		return 2 * float64(Batch*l.In*l.H*l.W*l.Out*l.K*l.K)
	}
	return 2 * float64(Batch*l.Out*oh*ow*l.In*l.K*l.K)
}

// linearFLOPs is 2·N·in·out, one matrix product of a Linear layer.
func linearFLOPs(in, out int) float64 { return 2 * float64(Batch*in*out) }

// GANStepFLOPs is the FLOP count of one gan-step: 2 × the multiply-adds of
// every Linear and convolution product the step performs. A forward pass
// counts F, a backward pass F for the input gradient (when the input needs
// one) and F for the weight gradient. The step runs D forward three times
// (real, detached fake, fake for G), D backward twice without and once
// with the input gradient, G forward once and G backward once (no gradient
// for z). Element-wise work (BatchNorm, activations, Adam) is not counted.
func GANStepFLOPs() float64 {
	ls := DCGANLayers()
	c1, c2, dc1, dc2 := ls[0].ForwardFLOPs(), ls[1].ForwardFLOPs(), ls[2].ForwardFLOPs(), ls[3].ForwardFLOPs()
	lin1, lin2 := linearFLOPs(gan.ZDim, 128*7*7), linearFLOPs(128*7*7, 1)
	dFwd := c1 + c2 + lin2
	gFwd := lin1 + dc1 + dc2
	dBwdNoDX := c1 + 2*c2 + 2*lin2
	dBwdDX := 2*c1 + 2*c2 + 2*lin2
	gBwd := lin1 + 2*dc1 + 2*dc2
	return 3*dFwd + gFwd + 2*dBwdNoDX + dBwdDX + gBwd
}

// AEStepFLOPs is the FLOP count of one ae-step, counted as GANStepFLOPs:
// two Linear products forward (784→256→784), the encoder's weight gradient
// and the decoder's input and weight gradients, 5 × 2·64·784·256.
func AEStepFLOPs() float64 {
	return 5 * linearFLOPs(autoencoder.DefaultInput, autoencoder.DefaultHidden)
}

// ganStep is one training step of the reference DCGAN through
// gan.Trainer.TrainStep, exactly what `backprop train gan` runs: D on a
// real batch and on a detached fake batch, Adam on D, G through the
// updated D, Adam on G. The "data set" is 32 batches of uniform noise in
// [−1, 1] (the speed does not depend on the pixels).
func ganStep() Workload {
	return Workload{
		Name: "gan-step", Step: true, FLOPs: GANStepFLOPs(),
		FLOPNote: "2×multiply-adds of all Linear/conv products of the step (3 D forwards, 1 G forward, their backwards); element-wise work not counted",
		Setup: func() (Run, error) {
			rng := newRand()
			imgs := tensor.New[float32](32*Batch, 1, gan.ImageSize, gan.ImageSize)
			fill(rng, imgs.Data(), -1, 1)
			tr, err := gan.NewTrainer(gan.Config{Seed: 1, Batch: Batch}, imgs)
			if err != nil {
				return nil, err
			}
			return func() error {
				_, err := tr.TrainStep()
				if errors.Is(err, gan.ErrNonFinite) { // never seen; restart rather than fail
					tr, err = gan.NewTrainer(gan.Config{Seed: 1, Batch: Batch}, imgs)
				}
				if h := &tr.History; len(h.DLoss) >= 1024 { // keep the loss history bounded, reusing its storage
					h.DLoss, h.GLoss, h.DX, h.DGZ = h.DLoss[:0], h.GLoss[:0], h.DX[:0], h.DGZ[:0]
				}
				return err
			}, nil
		},
	}
}

// aeStep is one training step of the default auto-encoder (784 → 256 ReLU
// → 784 sigmoid, the loss of autoencoder.Model.Loss) with Adam at batch
// 64, as autoencoder.Train runs it: loss, backward, Adam step, zero grad,
// then autograd.Release of the step's graph.
func aeStep() Workload {
	return Workload{
		Name: "ae-step", Step: true, FLOPs: AEStepFLOPs(),
		FLOPNote: "2×multiply-adds of the Linear products: 2 forward, encoder dW, decoder dX and dW (5×2·64·784·256)",
		Setup: func() (Run, error) {
			rng := newRand()
			m, err := autoencoder.New(autoencoder.Config{Input: autoencoder.DefaultInput, Hidden: autoencoder.DefaultHidden}, rng)
			if err != nil {
				return nil, err
			}
			opt, err := optim.NewAdam(m.Parameters(), optim.DefaultAdamOptions())
			if err != nil {
				return nil, err
			}
			x := tensor.New[float32](Batch, 1, 28, 28)
			fill(rng, x.Data(), 0, 1)
			return func() error {
				_, loss, err := m.Loss(x)
				if err != nil {
					return err
				}
				if err := autograd.Backward(loss); err != nil {
					return err
				}
				if err := opt.Step(); err != nil {
					return err
				}
				opt.ZeroGrad()
				// Recycle the step's activations and gradients (the
				// parameters and x are leaves and stay).
				autograd.Release(loss)
				return nil
			}, nil
		},
	}
}

// sgemm is C = A·B for n×n float32 matrices through blas.Gemm, the product
// every layer runs on (torch.mm on the PyTorch side).
func sgemm(n int) Workload {
	return Workload{
		Name: fmt.Sprintf("sgemm-%d", n), FLOPs: 2 * float64(n) * float64(n) * float64(n),
		FLOPNote: fmt.Sprintf("2·n³ with n = %d", n),
		Setup: func() (Run, error) {
			rng := newRand()
			a, b, c := make([]float32, n*n), make([]float32, n*n), make([]float32, n*n)
			fill(rng, a, -1, 1)
			fill(rng, b, -1, 1)
			return func() error {
				blas.Gemm(false, false, n, n, n, 1, a, n, b, n, 0, c, n)
				return nil
			}, nil
		},
	}
}

// ConvGemm is one of the matrix products the DCGAN's convolution layers
// reduce to in package internal/conv at batch Batch, as C = op(A)·op(B) with
// op(A) M×K and op(B) K×N (the "im2col shapes").
type ConvGemm struct {
	Name           string
	TransA, TransB bool
	M, N, K        int
	Note           string
}

// DCGANGemms returns the distinct products behind the DCGAN layers: conv1's
// forward on the column matrix, and conv2's forward, weight gradient and
// input gradient on the row matrix (deconv1 runs conv2's input-gradient and
// weight-gradient shapes; the 1-channel layers the short-k shape).
func DCGANGemms() []ConvGemm {
	rows := Batch * 7 * 7 // conv2's output positions
	return []ConvGemm{
		{"gemm-conv1", false, false, 64, Batch * 14 * 14, 16, "conv1 forward: W (64×16) · im2col (16×12544)"},
		{"gemm-conv2-fwd", false, true, rows, 128, 1024, "conv2 forward: im2row (3136×1024) · Wᵀ"},
		{"gemm-conv2-dw", false, false, 128, 1024, rows, "conv2 weight gradient: dY (128×3136) · im2row; deconv1's too"},
		{"gemm-conv2-dx", true, false, rows, 1024, 128, "conv2 input gradient: dYᵀ · W (3136×1024 rows to fold); deconv1's forward"},
	}
}

// convGemm times one DCGANGemms product through blas.Gemm (torch.mm of the
// same, possibly transposed, operands on the PyTorch side).
func convGemm(g ConvGemm) Workload {
	return Workload{
		Name: g.Name, FLOPs: 2 * float64(g.M) * float64(g.N) * float64(g.K),
		FLOPNote: fmt.Sprintf("2·M·N·K with M×N×K = %d×%d×%d (%s)", g.M, g.N, g.K, g.Note),
		Setup: func() (Run, error) {
			rng := newRand()
			a, b, c := make([]float32, g.M*g.K), make([]float32, g.K*g.N), make([]float32, g.M*g.N)
			fill(rng, a, -1, 1)
			fill(rng, b, -1, 1)
			lda, ldb := g.K, g.N
			if g.TransA {
				lda = g.M
			}
			if g.TransB {
				ldb = g.K
			}
			return func() error {
				blas.Gemm(g.TransA, g.TransB, g.M, g.N, g.K, 1, a, lda, b, ldb, 0, c, g.N)
				return nil
			}, nil
		},
	}
}

// convWorkload is one DCGAN convolution layer through its op (ops.Conv2dOp
// or ops.ConvTranspose2dOp, without bias) at batch 64: the forward pass, or
// the backward pass computing both the input and the weight gradient from
// a fixed upstream gradient.
func convWorkload(l ConvLayer, backward bool) Workload {
	name, flops, note := l.Name+"-fwd", l.ForwardFLOPs(), "2×multiply-adds of the forward product"
	if backward {
		name, flops, note = l.Name+"-bwd", 2*l.ForwardFLOPs(), "2×multiply-adds of the input and the weight gradient (2×forward)"
	}
	return Workload{
		Name: name, FLOPs: flops, FLOPNote: note,
		Setup: func() (Run, error) {
			rng := newRand()
			opt := ops.ConvOptions{StrideH: l.S, StrideW: l.S, PadH: l.P, PadW: l.P}
			var op autograd.Op[float32]
			var w *tensor.Tensor[float32]
			if l.Transposed {
				op = &ops.ConvTranspose2dOp[float32]{Options: opt}
				w = tensor.New[float32](l.In, l.Out, l.K, l.K)
			} else {
				op = &ops.Conv2dOp[float32]{Options: opt}
				w = tensor.New[float32](l.Out, l.In, l.K, l.K)
			}
			x := tensor.New[float32](Batch, l.In, l.H, l.W)
			fill(rng, x.Data(), -1, 1)
			fill(rng, w.Data(), -0.05, 0.05)
			in := []*tensor.Tensor[float32]{x, w}
			out, err := op.Forward(in)
			if err != nil {
				return nil, err
			}
			tensor.Release(out)
			if !backward {
				// The output goes back to the pool after each run, as a
				// training step's activations do (and as PyTorch's caching
				// allocator keeps its blocks): the workload times the layer,
				// not the allocator zeroing a fresh multi-megabyte buffer.
				return func() error {
					out, err := op.Forward(in)
					tensor.Release(out)
					return err
				}, nil
			}
			if out, err = op.Forward(in); err != nil {
				return nil, err
			}
			gout := tensor.New[float32](out.Shape()...)
			fill(rng, gout.Data(), -1, 1)
			need := []bool{true, true}
			return func() error {
				tensor.Release(op.Backward(in, out, gout, need)...)
				return nil
			}, nil
		},
	}
}
