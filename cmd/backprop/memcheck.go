package main

import (
	"compress/gzip"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/backprop-dev/backprop/internal/memlimit"
)

// A job's memory is estimated from its flags before anything is loaded
// or allocated, and a job that cannot fit is refused (exit status 1) with
// the flag, the estimate and the memory available, instead of ending in
// the Go runtime's "fatal error: out of memory" and a goroutine dump
// minutes later.
//
// The estimates are sums of the sizes the jobs allocate, with factors
// measured as the peak address space (VmPeak less the VmSize at start) of
// runs on linux/amd64 with GOGC=20 (train's setting); they come out 0–30 %
// above the measured peaks (TestMemoryEstimatesMatchMeasurements):
//
//	train autoencoder --hidden 256/16384/32768 (batch 64):  353/1250/2347 MiB measured
//	train gan --batch 64/512/2048/3400/4096:                353/802/2539/4146/4591 MiB measured
//	sample --n 200000 --out s.idx, --n 20000 --out s.png:   471/471 MiB measured
//
// (the VmSize at start, about 1.6 GiB of reserved address space, is
// already counted as in use by memlimit). sample's peak does not depend on
// --n: it is reached while the checkpoint is loaded and the first chunk
// generated, and varies from run to run by the runtime's 64 MiB heap
// arenas (1.82 to 1.97 GiB of VmPeak against 1.51 GiB in use at the
// check); 471 MiB is the largest of eight runs.
const (
	// runtimeBytes covers the Go runtime, stacks, buffers and the
	// collector's headroom.
	runtimeBytes = 80 << 20
	// bytesPerDataPixel: the data sets are held as float32 (4 bytes a
	// pixel) after being read as bytes (1).
	bytesPerDataPixel = 5
	// bytesPerParam: a float32 parameter, its gradient, Adam's two
	// moments, and the copies a checkpoint holds while it is written.
	bytesPerParam = 41
	// ganBytesPerSample: the DCGAN's activations, their gradients and the
	// convolutions' unfolded inputs for one image of a batch (both models,
	// real and fake batches).
	ganBytesPerSample = 1_250_000
	// ganParams is the parameter count of the reference DCGAN (generator
	// and discriminator).
	ganParams = 910_000
	// sampleGeneratorBytes is the generator with the activations of one
	// chunk of images (gan.SampleChunk), which `backprop sample` recycles
	// chunk after chunk, and the heap the runtime reserves around them.
	// Nothing is held per image: the images are written as they are
	// generated (gan.WriteSampleFile).
	sampleGeneratorBytes = 400 << 20
	// samplePNGBytes is the PNG encoder (zlib's state, its buffers);
	// samplePNGBytesPerColumn the row of tiles a grid holds (one float32
	// image per column) and the encoder's rows of pixels (a few bytes per
	// pixel of a row), per column of the ⌈√n⌉.
	samplePNGBytes          = 24 << 20
	samplePNGBytesPerColumn = 4 << 10
	// aeEvalBatch is how many images the auto-encoder's test error
	// reconstructs at once (autoencoder.evalBatch).
	aeEvalBatch = 500
)

// memoryNeed is a job's estimated memory and the flag that sets it.
type memoryNeed struct {
	what  string // "--hidden 1048576" or "training"
	bytes uint64
	hint  string
}

// memoryEstimates estimate the memory of the commands that can ask for
// more than a machine has, by command path; nil means "no estimate" (a flag
// the command itself will refuse, a run resumed from a checkpoint whose
// sizes are not known yet).
var memoryEstimates = map[string]func(*cobra.Command) *memoryNeed{
	"backprop train autoencoder": autoencoderMemory,
	"backprop train gan":         ganMemory,
	"backprop sample":            sampleMemory,
}

// checkMemory is the root's persistent pre-run hook: it refuses a job
// whose estimated memory (or, for sample's IDX files, disk space) exceeds
// what is available, before the command loads or allocates anything.
func checkMemory(cmd *cobra.Command, _ []string) error {
	estimate := memoryEstimates[cmd.CommandPath()]
	if estimate == nil {
		return nil
	}
	if need := estimate(cmd); need != nil {
		if err := memlimit.Check(need.what, need.bytes, need.hint); err != nil {
			return ranError{err}
		}
	}
	if cmd.CommandPath() == "backprop sample" {
		if err := checkSampleDisk(cmd); err != nil {
			return ranError{err}
		}
	}
	return nil
}

// intFlag reads an int flag, reporting false when the command has none.
func intFlag(cmd *cobra.Command, name string) (int, bool) {
	v, err := cmd.Flags().GetInt(name)
	return v, err == nil
}

// stringFlag reads a string flag, reporting false when the command has none.
func stringFlag(cmd *cobra.Command, name string) (string, bool) {
	v, err := cmd.Flags().GetString(name)
	return v, err == nil
}

// resuming reports a run continued from a checkpoint: its sizes are the
// checkpoint's, which the command reads and checks itself.
func resuming(cmd *cobra.Command) bool {
	r, ok := stringFlag(cmd, "resume")
	return ok && r != ""
}

// autoencoderMemory: the data set, the model with its gradients, Adam's
// state and the checkpoint being written, and the activations of a
// training batch and of an evaluation batch.
func autoencoderMemory(cmd *cobra.Command) *memoryNeed {
	hidden, ok1 := intFlag(cmd, "hidden")
	batch, ok2 := intFlag(cmd, "batch")
	if !ok1 || !ok2 || hidden <= 0 || batch <= 0 || resuming(cmd) {
		return nil
	}
	name, _ := stringFlag(cmd, "data")
	images, pixels := dataSize(name)
	in, h, b := uint64(pixels), uint64(hidden), uint64(batch)
	params := sat(mul(2*in, h), sat(in, h))
	perImage := mul(sat(2*in, mul(2, h)), 4) // input, pre-activations, outputs
	need := sat(runtimeBytes, sat(mul(uint64(images)*in, bytesPerDataPixel), sat(mul(params, bytesPerParam), sat(mul(b, mul(perImage, 3)), mul(aeEvalBatch, mul(perImage, 2))))))
	what, hint := fmt.Sprintf("--hidden %d", hidden), "use a smaller --hidden"
	if cmd.Flags().Changed("batch") && mul(b, mul(perImage, 3)) > mul(params, bytesPerParam) {
		what, hint = fmt.Sprintf("--batch %d", batch), "use a smaller --batch"
	}
	return &memoryNeed{what: "train autoencoder " + what + " (" + describeData(name, images) + ")", bytes: need, hint: hint}
}

// ganMemory: the data set, both models with gradients and Adam's state,
// and the activations of a batch, which dominate.
func ganMemory(cmd *cobra.Command) *memoryNeed {
	batch, ok := intFlag(cmd, "batch")
	if !ok || batch < 2 || resuming(cmd) {
		return nil
	}
	name, _ := stringFlag(cmd, "data")
	if name == "" {
		name = "mnist"
	}
	images, pixels := dataSize(name)
	need := sat(runtimeBytes, sat(mul(uint64(images)*uint64(pixels), bytesPerDataPixel), sat(ganParams*bytesPerParam, mul(uint64(batch), ganBytesPerSample))))
	return &memoryNeed{what: fmt.Sprintf("train gan --batch %d (%s)", batch, describeData(name, images)), bytes: need, hint: "use a smaller --batch"}
}

// sampleMemory: the generator and one chunk of images, whatever --n (the
// disk check covers an IDX file's size); a PNG grid also holds one row of
// tiles and the encoder's rows, which grow with √n.
func sampleMemory(cmd *cobra.Command) *memoryNeed {
	n, ok := intFlag(cmd, "n")
	if !ok || n <= 0 {
		return nil
	}
	out, _ := stringFlag(cmd, "out")
	if !isPNG(out) {
		return &memoryNeed{what: fmt.Sprintf("sample --n %d", n), bytes: runtimeBytes + sampleGeneratorBytes,
			hint: "this much is needed for any --n, as the images are written 256 at a time"}
	}
	cols := uint64(math.Ceil(math.Sqrt(float64(n))))
	need := sat(runtimeBytes+sampleGeneratorBytes+samplePNGBytes, mul(cols, samplePNGBytesPerColumn))
	return &memoryNeed{what: fmt.Sprintf("sample --n %d (a PNG grid)", n), bytes: need,
		hint: "use a smaller --n, or an IDX file (--out FILE.idx), which needs no more memory for more images"}
}

// checkSampleDisk refuses an uncompressed IDX file larger than the free
// space of the directory it goes to (a .gz file's size is not known in
// advance; a PNG grid is bounded by memory).
func checkSampleDisk(cmd *cobra.Command) error {
	n, ok := intFlag(cmd, "n")
	out, _ := stringFlag(cmd, "out")
	if !ok || n <= 0 || out == "" || isPNG(out) || strings.HasSuffix(out, ".gz") { // gzipped as data.WriteIDX decides
		return nil
	}
	need := sat(16, mul(uint64(n), 28*28))
	dir := filepath.Dir(out)
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return nil // the command reports a directory that does not exist
	}
	free := mul(st.Bavail, uint64(st.Bsize))
	if need <= free {
		return nil
	}
	return fmt.Errorf("sample --n %d: the IDX file %s would take %s of disk space, but only %s is available on %s; use a smaller --n, or --out FILE.gz to compress it",
		n, out, memlimit.FormatBytes(need), memlimit.FormatBytes(free), dir)
}

func isPNG(path string) bool { return strings.EqualFold(filepath.Ext(path), ".png") }

// dataSize is the number of images (training and test) and the pixels per
// image of a data set: MNIST's for "mnist" and "fashion-mnist" (and when a
// directory's headers cannot be read, in which case the command reports the
// problem), the IDX headers' for a directory.
func dataSize(name string) (images, pixels int) {
	const mnistImages, mnistPixels = 70000, 28 * 28
	switch strings.ToLower(name) {
	case "", "mnist", "fashion-mnist", "fashion_mnist", "fashionmnist":
		return mnistImages, mnistPixels
	}
	total := 0
	for _, prefix := range []string{"train", "t10k"} {
		n, px, err := idxImagesHeader(filepath.Join(name, prefix+"-images-idx3-ubyte"))
		if err != nil {
			return mnistImages, mnistPixels
		}
		total += n
		pixels = px
	}
	return total, pixels
}

// idxImagesHeader reads the image count and size from the header of an
// IDX3 file (path or path.gz).
func idxImagesHeader(path string) (n, pixels int, err error) {
	f, err := os.Open(path)
	var r io.Reader = f
	if err != nil {
		if f, err = os.Open(path + ".gz"); err != nil {
			return 0, 0, err
		}
		gz, err := gzip.NewReader(f)
		if err != nil {
			f.Close()
			return 0, 0, err
		}
		r = gz
	}
	defer f.Close()
	var hdr [16]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, 0, err
	}
	if hdr[0] != 0 || hdr[1] != 0 || hdr[3] != 3 {
		return 0, 0, fmt.Errorf("%s: not an IDX file of rank 3", path)
	}
	dims := [3]uint32{binary.BigEndian.Uint32(hdr[4:]), binary.BigEndian.Uint32(hdr[8:]), binary.BigEndian.Uint32(hdr[12:])}
	return int(dims[0]), int(dims[1]) * int(dims[2]), nil
}

func describeData(name string, images int) string {
	if name == "" {
		name = "mnist"
	}
	return fmt.Sprintf("%d images of %s", images, name)
}

// sat and mul add and multiply without wrapping around: an absurd flag
// gives an absurd estimate, never a small one.
func sat(a, b uint64) uint64 {
	if a+b < a {
		return ^uint64(0)
	}
	return a + b
}

func mul(a, b uint64) uint64 {
	if a != 0 && b > ^uint64(0)/a {
		return ^uint64(0)
	}
	return a * b
}
