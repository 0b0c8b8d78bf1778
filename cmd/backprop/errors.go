package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// usageError marks mistakes in the command line (exit status 2).
type usageError struct{ error }

// Unwrap returns the mistake.
func (e usageError) Unwrap() error { return e.error }

// ranError marks an error returned by a command's own code, after its
// command line was accepted (exit status 1, unless it wraps a usageError or
// an interruption). Errors cobra raises before a command runs (an unknown
// command or flag, a malformed value, a wrong number of arguments) are not
// marked and are usage errors.
type ranError struct{ error }

// Unwrap returns the command's error.
func (e ranError) Unwrap() error { return e.error }

// interruptedError is a command stopped by Ctrl-C (SIGINT) or SIGTERM
// (exit status 130). A command may also return any error with an
// Interrupted() bool method that reports true, or one wrapping
// context.Canceled.
type interruptedError struct{ error }

// Unwrap returns the error that stopped the command.
func (e interruptedError) Unwrap() error { return e.error }

// Interrupted marks the error as an interruption.
func (interruptedError) Interrupted() bool { return true }

// stoppedBySignal is a server stopped by Ctrl-C or SIGTERM as its help
// says to: status 130, no message.
type stoppedBySignal struct{}

func (stoppedBySignal) Error() string     { return "stopped by a signal" }
func (stoppedBySignal) Interrupted() bool { return true }
func (stoppedBySignal) Quiet() bool       { return true }

// exitStatus is the exit status for the error a command line ended with.
func exitStatus(err error) int {
	var ue usageError
	var ran ranError
	var intr interface{ Interrupted() bool }
	switch {
	case err == nil:
		return statusOK
	case errors.As(err, &ue):
		return statusUsage
	case errors.As(err, &intr) && intr.Interrupted(), errors.Is(err, context.Canceled):
		return statusInterrupted
	case errors.As(err, &ran):
		return statusFailure
	default:
		// raised by cobra before any command ran
		return statusUsage
	}
}

// isQuiet reports an error whose outcome the command has already printed
// (grade's report): only the exit status is set.
func isQuiet(err error) bool {
	var quiet interface{ Quiet() bool }
	return errors.As(err, &quiet) && quiet.Quiet()
}

// plumb attaches the exit-status plumbing to every command of the tree
// under c: errors from a command's own code are marked as such (ranError),
// argument-count errors become usage errors in plain words, and a command
// that only groups others (train) refuses an unknown subcommand instead of
// printing its help with status 0.
func plumb(c *cobra.Command) {
	if c.RunE != nil {
		runE := c.RunE
		c.RunE = func(cmd *cobra.Command, args []string) error { return markRan(runE(cmd, args)) }
	}
	if c.PreRunE != nil {
		pre := c.PreRunE
		c.PreRunE = func(cmd *cobra.Command, args []string) error { return markRan(pre(cmd, args)) }
	}
	if c.Args != nil {
		check := c.Args
		c.Args = func(cmd *cobra.Command, args []string) error {
			if err := check(cmd, args); err != nil {
				return argsError(cmd, args, err)
			}
			return nil
		}
	}
	if c.HasParent() && !c.Runnable() && c.HasSubCommands() {
		c.Args = cobra.ArbitraryArgs
		c.RunE = func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return unknownCommand(cmd, args[0])
			}
			return cmd.Help()
		}
	}
	for _, sub := range c.Commands() {
		plumb(sub)
	}
}

// markRan marks err as raised by a command's own code.
func markRan(err error) error {
	if err == nil {
		return nil
	}
	var ue usageError
	if errors.As(err, &ue) {
		return err
	}
	return ranError{err}
}

// argsError rewrites cobra's argument-count errors in the command's terms
// (cobra calls extra arguments to a command without subcommands an
// "unknown command").
func argsError(cmd *cobra.Command, args []string, err error) error {
	var ue usageError
	if errors.As(err, &ue) {
		return err
	}
	if !cmd.HasSubCommands() && strings.HasPrefix(err.Error(), "unknown command") {
		return usageError{fmt.Errorf("%s takes no arguments, got %s (flags start with --)", strings.TrimPrefix(cmd.CommandPath(), cmd.Root().Name()+" "), quoteAll(args))}
	}
	return usageError{fmt.Errorf("%s: %w", cmd.CommandPath(), err)}
}

// unknownCommand is the error for `backprop train foo`.
func unknownCommand(cmd *cobra.Command, name string) error {
	var names []string
	for _, c := range cmd.Commands() {
		if c.IsAvailableCommand() {
			names = append(names, c.Name())
		}
	}
	return usageError{fmt.Errorf("unknown command %q for %q: want %s", name, cmd.CommandPath(), orList(names))}
}

func quoteAll(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = strconv.Quote(a)
	}
	return strings.Join(q, " ")
}

// flagError makes a malformed or unknown flag a usage error in plain words
// (no strconv.ParseInt).
func flagError(cmd *cobra.Command, err error) error {
	return usageError{fmt.Errorf("%s: %s", cmd.CommandPath(), userMessage(err))}
}

// flagValueMessage says what a flag of a pflag value type wants.
func flagValueMessage(e *pflag.InvalidValueError) string {
	f := e.GetFlag()
	name := "--" + f.Name
	if f.Shorthand != "" {
		name = "-" + f.Shorthand + "/" + name
	}
	want := map[string]string{
		"int": "a whole number", "int8": "a whole number", "int16": "a whole number", "int32": "a whole number", "int64": "a whole number",
		"uint": "a whole number ≥ 0", "uint8": "a whole number ≥ 0", "uint16": "a whole number ≥ 0", "uint32": "a whole number ≥ 0", "uint64": "a whole number ≥ 0",
		"float32": "a number", "float64": "a number", "bool": "true or false", "duration": "a duration such as 30s or 5m",
		"count": "a whole number",
	}[f.Value.Type()]
	if want == "" {
		want = "a " + f.Value.Type()
	}
	var ne *strconv.NumError
	if errors.As(e, &ne) && errors.Is(ne.Err, strconv.ErrRange) {
		return fmt.Sprintf("%s: %s is out of range (want %s that fits in %s)", name, e.GetValue(), want, f.Value.Type())
	}
	return fmt.Sprintf("%s: want %s, got %q", name, want, e.GetValue())
}

// tempName matches the temporary files of internal/atomicfile
// (".name.tmp-123456").
var tempName = regexp.MustCompile(`^\..+\.tmp-[0-9]+$`)

// atomicSteps are internal/atomicfile's step names, in the user's words.
var atomicSteps = strings.NewReplacer(
	"atomicfile: ", "",
	": create temporary file: ", ": cannot create it: ",
	": chmod temporary file: ", ": cannot set its permissions: ",
	": fsync temporary file: ", ": cannot save it: ",
	": close temporary file: ", ": cannot save it: ",
	": rename temporary file into place: ", ": cannot put it in place: ",
	": write function panicked: ", ": internal error while writing: ",
)

// userMessage is err's text in the user's words: the Go internals that
// errors of the standard library and of the packages below carry (strconv
// and encoding/json type names, temporary file names, "context canceled",
// atomicfile: prefixes) are replaced where they can be recognised by
// type; the rest of the text is kept.
func userMessage(err error) string {
	msg := err.Error()
	replace := func(old, new string) {
		if old != "" && old != new {
			msg = strings.ReplaceAll(msg, old, new)
		}
	}
	walk(err, func(e error) {
		switch e := e.(type) {
		case *pflag.InvalidValueError:
			replace(e.Error(), flagValueMessage(e))
		case *strconv.NumError:
			if errors.Is(e.Err, strconv.ErrRange) {
				replace(e.Error(), fmt.Sprintf("%q is out of range", e.Num))
			} else {
				replace(e.Error(), fmt.Sprintf("%q is not a number", e.Num))
			}
		case *json.UnmarshalTypeError:
			replace(e.Error(), jsonTypeMessage(e))
		case *fs.PathError:
			if tempName.MatchString(filepath.Base(e.Path)) {
				// the file the user named is in the message already
				replace(e.Error(), e.Err.Error())
			}
		}
	})
	msg = atomicSteps.Replace(msg)
	replace("context canceled", "interrupted")
	replace("context deadline exceeded", "timed out")
	return msg
}

// walk calls f on err and every error it wraps.
func walk(err error, f func(error)) {
	if err == nil {
		return
	}
	f(err)
	switch u := err.(type) {
	case interface{ Unwrap() []error }:
		for _, e := range u.Unwrap() {
			walk(e, f)
		}
	case interface{ Unwrap() error }:
		walk(u.Unwrap(), f)
	}
}

// jsonTypeMessage is a json.UnmarshalTypeError without Go type names:
// "want a number, got a string", "number 1e309 is too large".
func jsonTypeMessage(e *json.UnmarshalTypeError) string {
	where := ""
	if e.Field != "" {
		where = e.Field + ": "
	}
	want := "a value of another kind"
	if e.Type != nil {
		switch e.Type.Kind().String() {
		case "float32", "float64":
			want = "a number"
		case "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64":
			want = "a whole number"
		case "string":
			want = "a string"
		case "bool":
			want = "true or false"
		case "slice", "array":
			want = "a list"
		case "map", "struct":
			want = "an object"
		}
	}
	if num, ok := strings.CutPrefix(e.Value, "number "); ok && want == "a number" {
		return fmt.Sprintf("%snumber %s is out of range (the largest is about ±1.8e308)", where, num)
	}
	if num, ok := strings.CutPrefix(e.Value, "number "); ok && want == "a whole number" {
		return fmt.Sprintf("%swant a whole number in range, got %s", where, num)
	}
	got := e.Value
	switch got {
	case "string", "array", "object", "bool", "number":
		got = map[string]string{"string": "a string", "array": "a list", "object": "an object", "bool": "true or false", "number": "a number"}[got]
	}
	return fmt.Sprintf("%swant %s, got %s", where, want, got)
}
