package main

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"

	"github.com/backprop-dev/backprop/internal/blas"
	"github.com/backprop-dev/backprop/internal/vec"
)

// version describes the binary from its build information: the module
// version (a tag such as v1.2.0 when installed with go install …@v1.2.0,
// "(devel)" or a pseudo-version for a build from a checkout), the
// version-control revision and time it was built from and whether the
// checkout had local changes, the Go version and the platform.
func version() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return fmt.Sprintf("backprop (no build information) %s %s/%s; kernels: matrix products %s, element-wise %s", runtime.Version(), runtime.GOOS, runtime.GOARCH, blas.Kernel(), vec.Kernel())
	}
	return versionOf(info)
}

// versionOf renders build information as version's one line.
func versionOf(info *debug.BuildInfo) string {
	v := info.Main.Version
	if v == "" {
		v = "(devel)"
	}
	settings := map[string]string{}
	for _, s := range info.Settings {
		settings[s.Key] = s.Value
	}
	var vcs []string
	if rev := settings["vcs.revision"]; rev != "" {
		vcs = append(vcs, "revision "+rev)
		if t := settings["vcs.time"]; t != "" {
			vcs = append(vcs, "committed "+t)
		}
		if settings["vcs.modified"] == "true" {
			vcs = append(vcs, "with local changes")
		}
	} else {
		vcs = append(vcs, "revision unknown (built without version control information, e.g. with -buildvcs=false)")
	}
	goVersion := info.GoVersion
	if goVersion == "" {
		goVersion = runtime.Version()
	}
	return fmt.Sprintf("backprop %s, %s; %s %s/%s; kernels: matrix products %s, element-wise %s", v, strings.Join(vcs, ", "), goVersion, runtime.GOOS, runtime.GOARCH, blas.Kernel(), vec.Kernel())
}

// versionCmd is `backprop version`, the same line as `backprop --version`.
func versionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version, the revision it was built from and the Go version",
		Long: `version prints the module version of this binary (a release tag when it was
installed with 'go install …@vX.Y.Z', otherwise "(devel)" or a pseudo-version),
the git revision and commit time it was built from, "with local changes" when
the checkout had uncommitted changes, the Go version and the platform. The
same line as 'backprop --version'.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			_, err := fmt.Fprintln(cmd.OutOrStdout(), version())
			return err
		},
	}
}

// helpCmd replaces cobra's help command so that help for a command that
// does not exist is a usage error (status 2), not a message with status 0.
func helpCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "help [command]",
		Short: "Help about any command",
		Long:  "help prints the help of a command: backprop help train gan is backprop train gan --help.",
		ValidArgsFunction: func(c *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
			target, _, err := c.Root().Find(args)
			if err != nil || target == nil {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			var names []cobra.Completion
			for _, sub := range target.Commands() {
				if sub.IsAvailableCommand() && strings.HasPrefix(sub.Name(), toComplete) {
					names = append(names, cobra.CompletionWithDesc(sub.Name(), sub.Short))
				}
			}
			return names, cobra.ShellCompDirectiveNoFileComp
		},
		RunE: func(c *cobra.Command, args []string) error {
			target, rest, err := c.Root().Find(args)
			if err != nil || target == nil || len(rest) > 0 {
				return usageError{fmt.Errorf("help: no command %q; 'backprop help' lists them", strings.Join(args, " "))}
			}
			target.InitDefaultHelpFlag()
			target.InitDefaultVersionFlag()
			return target.Help()
		},
	}
}
