// Command backprop is a deep-learning engine whose forward and backward
// propagation you can read: it solves the problem set's worked problems step
// by step and trains real networks on real data.
//
// Exit status: 0 on success, 1 when a command fails (a file that cannot be
// read, a job that does not fit in memory, a wrong answer in grade), 2 for a
// mistake in the command line (an unknown command or flag, a missing or
// malformed value, a wrong number of arguments), 130 when Ctrl-C (SIGINT)
// or SIGTERM stopped a command that handles them.
package main

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
)

// Exit statuses of the command, set in one place: exitStatus.
const (
	statusOK          = 0
	statusFailure     = 1
	statusUsage       = 2
	statusInterrupted = 130 // 128 + SIGINT, as a shell reports a program stopped by Ctrl-C
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run executes the command line args and returns the exit status; it is
// the only place that turns an error into a message and a status.
func run(args []string, stdout, stderr io.Writer) int {
	root := newRoot(stdout, stderr)
	root.SetArgs(args)
	cmd, err := root.ExecuteC()
	if err == nil {
		return statusOK
	}
	status := exitStatus(err)
	// a command that already reported the outcome on stdout (grade)
	// only sets the exit status
	if !isQuiet(err) {
		msg := userMessage(err)
		if cmd != nil {
			// "backprop: backprop solve: …" says the command twice
			msg = strings.TrimPrefix(msg, cmd.CommandPath()+": ")
		}
		fmt.Fprintln(stderr, "backprop:", msg)
		if status == statusUsage && cmd != nil {
			fmt.Fprintf(stderr, "Run '%s --help' for usage.\n", cmd.CommandPath())
		}
	}
	return status
}

// newRoot builds the command tree writing to stdout and stderr, with the
// exit-status plumbing, the version, the help and completion commands and
// the memory checks attached to every command.
func newRoot(stdout, stderr io.Writer) *cobra.Command {
	// the root's memory check runs before train's own hook (tuneGC)
	cobra.EnableTraverseRunHooks = true
	root := &cobra.Command{
		Use:   "backprop",
		Short: "Forward and backward propagation you can read",
		Long: `backprop solves forward and backward propagation exactly and shows its work, derives gradient equations, and trains networks on real data.

Exit status: 0 on success, 1 when a command fails, 2 for a mistake in the
command line, 130 when Ctrl-C stopped it. Shell completion: see
'backprop completion --help'.`,
		Version:           version(),
		SilenceUsage:      true,
		SilenceErrors:     true,
		PersistentPreRunE: checkMemory,
	}
	root.SetVersionTemplate("{{.Version}}\n")
	// before the completion command, which keeps the writer it sees
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.AddCommand(solveCmd(), deriveCmd(), trainCmd(), reconstructCmd(), sampleCmd(), evalCmd(), serveCmd(), variantCmd(), gradeCmd(), benchCmd(), versionCmd())
	root.AddCommand(onnxCmds()...) // onnx.go
	root.SetHelpCommand(helpCmd())
	root.SetFlagErrorFunc(flagError)
	root.InitDefaultCompletionCmd()
	plumb(root)
	return root
}
