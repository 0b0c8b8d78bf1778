package nn

import (
	"github.com/backprop-dev/backprop/autograd"
	"github.com/backprop-dev/backprop/ops"
	"github.com/backprop-dev/backprop/tensor"
)

// MaxPool2d is torch.nn.MaxPool2d: the maximum of each kernel-sized window
// of every channel, the usual down-sampling step of a classifier's conv
// stack. It has no parameters.
type MaxPool2d[T tensor.Float] struct {
	stateless[T]
	Options ops.PoolOptions // window, stride and padding (rectangular ones too)
}

// NewMaxPool2d returns a max-pooling layer with a square kernel, stride
// and padding; stride 0 means the kernel size, PyTorch's default.
func NewMaxPool2d[T tensor.Float](kernel, stride, pad int) *MaxPool2d[T] {
	return &MaxPool2d[T]{Options: squarePool(kernel, stride, pad)}
}

// Forward implements Module with ops.MaxPool2d.
func (m *MaxPool2d[T]) Forward(x *autograd.Var[T]) (*autograd.Var[T], error) {
	return ops.MaxPool2d("max_pool2d", x, m.Options)
}

// AvgPool2d is torch.nn.AvgPool2d: the mean of each kernel-sized window of
// every channel. Padding counts in the divisor unless Options.ExcludePad
// is set (PyTorch's count_include_pad=False). It has no parameters.
type AvgPool2d[T tensor.Float] struct {
	stateless[T]
	Options ops.PoolOptions
}

// NewAvgPool2d returns an average-pooling layer with a square kernel,
// stride and padding; stride 0 means the kernel size.
func NewAvgPool2d[T tensor.Float](kernel, stride, pad int) *AvgPool2d[T] {
	return &AvgPool2d[T]{Options: squarePool(kernel, stride, pad)}
}

// Forward implements Module with ops.AvgPool2d.
func (m *AvgPool2d[T]) Forward(x *autograd.Var[T]) (*autograd.Var[T], error) {
	return ops.AvgPool2d("avg_pool2d", x, m.Options)
}

func squarePool(kernel, stride, pad int) ops.PoolOptions {
	return ops.PoolOptions{KernelH: kernel, KernelW: kernel, StrideH: stride, StrideW: stride, PadH: pad, PadW: pad}
}
