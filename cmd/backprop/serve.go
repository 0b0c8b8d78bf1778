package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/backprop-dev/backprop/classroom"
	"github.com/backprop-dev/backprop/live"
	"github.com/backprop-dev/backprop/solve"
	"github.com/backprop-dev/backprop/spec"
)

// serveCmd is `backprop serve`: the classroom page, with the training view
// of package live mounted at /train, where the page can start and stop a
// small training job (on loopback, or with --allow-training).
func serveCmd() *cobra.Command {
	var addr, specPath, trainData string
	var digits int
	var allowTraining bool
	var onnxFlags onnxSpecFlags
	cmd := &cobra.Command{
		Use:   "serve [--addr 127.0.0.1:8080] [--spec FILE | --spec MODEL.onnx --input FILE]",
		Short: "Interactive classroom page: the network as a graph, editable numbers, worked formulas",
		Long: `serve starts a local web server with the classroom page: the network of a
spec drawn as a graph whose nodes show their values (or gradients); click a
node for its forward and backward step (the general index formula, the
gradient as chain-rule factors, every element with the numbers substituted),
click a number of an input or weight to change it and every value and gradient
updates at once. Below the graph the worked solution is the handout that
'backprop solve' prints, with a switch to every element of every step
('--detail full'). The conventions the network uses (reshape order; deconv
kernel: pytorch = ConvTranspose2d = the textbook full convolution, or flipped =
the kernel slid unrotated, a full cross-correlation; which class σ(a) is) are
switches on the page. A second tab shows the auto-encoder of Problem 2 with its
derived gradient equations and worked numbers; beside the tabs a menu offers the
problem bank (Mazur's example, a softmax classifier, a conv net with pooling,
batch norm, layer norm, a residual block, dropout, a gated concatenation, weight
decay, momentum and Adam). Any graph spec is drawn as it is (several inputs,
layers with inputs: [...], shared weights, batches), wrapped onto rows or zoomed
to fit the window; a spec with train: shows its optimizer steps with the numbers
substituted.

The training view (/train, "training view" at the top right) starts, watches
and stops a small training job: the auto-encoder of Problem 2 or the DCGAN on
the first images of --train-data (64 to 4096 images, 1 or 2 epochs, one job at
a time, stopped after 5 minutes at the latest), with its loss chart and its
latest grid of samples or reconstructions, the same numbers 'backprop train'
reports; nothing is saved. Since the page has no login, starting jobs is
allowed only when the server listens on the loopback interface, or with
--allow-training.

A .onnx --spec (a model exported by torch.onnx.export, say) is drawn as its
imported graph: its named values as nodes, its initializers as parameters,
each node's worked forward and backward step and the worked solution of
'backprop solve --spec MODEL.onnx', for the input of --input (a JSON nested
list or a TensorProto .pb) and, for a model without a loss, --objective sum or
--objective cross_entropy --label K. Its numbers come from the files and
cannot be edited on the page.

With no --spec the first tab is Problem 1 of the problem set (the tiny GAN).
The server binds to the loopback interface (127.0.0.1) unless --addr says
otherwise; it has no authentication, so share it on a network only where that
is fine. Stop it with Ctrl+C.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkDigits(digits); err != nil {
				return err
			}
			problems, err := serveProblems(specPath, onnxFlags)
			if err != nil {
				return err
			}
			jobs := pageTraining(addr, allowTraining, trainData)
			srv, err := classroom.New(classroom.Options{Problems: problems, Live: live.Default, Digits: digits, Training: jobs})
			if err != nil {
				return err
			}
			defer srv.Close() // a job started from the page stops with the server
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			if err := classroom.ListenAndServe(ctx, addr, srv, cmd.OutOrStdout()); err != nil {
				return fmt.Errorf("--addr %s: %w", addr, err)
			}
			if ctx.Err() != nil {
				// stopped by Ctrl-C or SIGTERM: status 130, as documented
				return stoppedBySignal{}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&addr, "addr", "127.0.0.1:8080", "address to listen on (host:port; port 0 picks a free one)")
	f.StringVar(&specPath, "spec", "", "network spec file (JSON or YAML) or ONNX model (.onnx, with --input) for the first tab; default: Problem 1 of the problem set")
	f.IntVar(&digits, "digits", 6, "significant digits in the formulas, 1 to 17")
	f.BoolVar(&allowTraining, "allow-training", false, "let the page start training jobs even when --addr is not loopback (the page has no login)")
	f.StringVar(&trainData, "train-data", "mnist", "data set of the jobs the page starts: mnist, fashion-mnist or a directory of IDX files")
	onnxFlags.add(cmd)
	f.StringVar(&onnxFlags.label, "label", "", "with a .onnx --spec and --objective cross_entropy: the class index K (from 0; comma-separated, one per row)")
	completeFiles(cmd, "spec", "yaml", "yml", "json", "onnx")
	return cmd
}

// serveProblems are the page's problems for --spec: a spec file or an
// ONNX model (with its --input, --objective and --label) as the first
// tab, Problem 1 when --spec is empty.
func serveProblems(specPath string, onnxFlags onnxSpecFlags) ([]classroom.Problem, error) {
	if isONNXSpec(specPath) {
		o, err := onnxFlags.options(solve.Options{})
		if err != nil {
			return nil, err
		}
		return classroom.ONNXProblems(classroom.ONNXModel{Path: specPath, Options: o})
	}
	if len(onnxFlags.inputs) > 0 || onnxFlags.objective != "" || onnxFlags.label != "" {
		return nil, usageError{fmt.Errorf("--input, --objective and --label apply to a .onnx --spec")}
	}
	var main *spec.Spec
	if specPath != "" {
		s, err := spec.ReadFile(specPath)
		if err != nil {
			return nil, err
		}
		main = s
	}
	return classroom.DefaultProblems(main)
}

// pageTraining configures the training jobs of `backprop serve`: on the
// data set trainData, and off (saying why) unless the server listens on
// the loopback interface or allow (--allow-training) is set, since the
// page has no login.
func pageTraining(addr string, allow bool, trainData string) *classroom.TrainingJobs {
	jobs := &classroom.TrainingJobs{Data: trainData}
	if !allow && !classroom.IsLoopback(addr) {
		jobs.Off = fmt.Sprintf("Starting training jobs from this page is off: the server listens on %s, which other machines can reach, and the page has no login. Restart backprop serve on 127.0.0.1, or with --allow-training to allow it; a job started with 'backprop train … --serve ADDR' shows on its own page.", addr)
	}
	return jobs
}
