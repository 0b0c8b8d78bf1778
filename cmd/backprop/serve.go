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
	"github.com/backprop-dev/backprop/spec"
)

// serveCmd is `backprop serve`: the classroom page, with the training view
// of package live mounted at /train.
func serveCmd() *cobra.Command {
	var addr, specPath string
	var digits int
	cmd := &cobra.Command{
		Use:   "serve [--addr 127.0.0.1:8080] [--spec FILE]",
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
substituted. /train shows the progress of a training job that publishes to this
process.

With no --spec the first tab is Problem 1 of the problem set (the tiny GAN).
The server binds to the loopback interface (127.0.0.1) unless --addr says
otherwise; it has no authentication, so share it on a network only where that
is fine. Stop it with Ctrl+C.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkDigits(digits); err != nil {
				return err
			}
			var main *spec.Spec
			if specPath != "" {
				s, err := spec.ReadFile(specPath)
				if err != nil {
					return err
				}
				main = s
			}
			problems, err := classroom.DefaultProblems(main)
			if err != nil {
				return err
			}
			srv, err := classroom.New(classroom.Options{Problems: problems, Live: live.Default, Digits: digits})
			if err != nil {
				return err
			}
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
	f.StringVar(&specPath, "spec", "", "network spec file (JSON or YAML) for the first tab; default: Problem 1 of the problem set")
	f.IntVar(&digits, "digits", 6, "significant digits in the formulas, 1 to 17")
	completeFiles(cmd, "spec", "yaml", "yml", "json")
	return cmd
}
