// Package memlimit tells how much memory the process can still allocate,
// so that a command can refuse a job that cannot fit with a message
// instead of dying in the middle with the Go runtime's "fatal error: out
// of memory".
//
// The memory available is the smallest of three bounds, each only where
// the system has it:
//
//   - the memory the kernel reports available for new allocations
//     (MemAvailable in /proc/meminfo);
//   - the address-space limit (RLIMIT_AS, `ulimit -v`) less the address
//     space the process already uses (VmSize in /proc/self/status);
//   - the memory limit of the process's control group (cgroup v2
//     memory.max, or v1 memory.limit_in_bytes) less its current usage.
//
// Where none of them is known (another operating system) Available
// reports that it knows nothing and Check refuses nothing.
package memlimit

import (
	"bufio"
	"bytes"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Limit is the memory a process can still allocate and the bound that
// sets it.
type Limit struct {
	// Bytes is the memory available, in bytes; meaningful only when Known.
	Bytes uint64
	// Known is false when no bound could be read.
	Known bool
	// Source names the bound in words, for messages: "memory available
	// (MemAvailable in /proc/meminfo)", "address-space limit (ulimit -v
	// 6000000 KiB) less 1.6 GiB in use", ….
	Source string
}

// String renders the limit as "4.2 GiB (address-space limit …)".
func (l Limit) String() string {
	if !l.Known {
		return "unknown"
	}
	return FormatBytes(l.Bytes) + " (" + l.Source + ")"
}

// files are the paths Available reads; tests point them elsewhere.
type files struct {
	meminfo, status, cgroup, cgroupRoot string
}

var system = files{
	meminfo:    "/proc/meminfo",
	status:     "/proc/self/status",
	cgroup:     "/proc/self/cgroup",
	cgroupRoot: "/sys/fs/cgroup",
}

// getrlimitAS returns the soft address-space limit in bytes (math.MaxUint64
// when unlimited); a variable so that tests can set it.
var getrlimitAS = func() (uint64, error) {
	var r unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_AS, &r); err != nil {
		return 0, err
	}
	return r.Cur, nil
}

// Available returns the memory the process can still allocate: the
// smallest of the bounds described in the package documentation.
func Available() Limit {
	return system.available()
}

func (fs files) available() Limit {
	best := Limit{}
	consider := func(bytes uint64, source string) {
		if !best.Known || bytes < best.Bytes {
			best = Limit{Bytes: bytes, Known: true, Source: source}
		}
	}
	if kb, ok := readKB(fs.meminfo, "MemAvailable"); ok {
		consider(kb*1024, "memory available, MemAvailable in /proc/meminfo")
	}
	if lim, err := getrlimitAS(); err == nil && lim != unix.RLIM_INFINITY && lim < math.MaxInt64 {
		used := uint64(0)
		if kb, ok := readKB(fs.status, "VmSize"); ok {
			used = kb * 1024
		}
		free := uint64(0)
		if lim > used {
			free = lim - used
		}
		consider(free, fmt.Sprintf("address-space limit, ulimit -v %d KiB, less %s already in use", lim/1024, FormatBytes(used)))
	}
	if max, cur, where, ok := fs.cgroupLimit(); ok {
		free := uint64(0)
		if max > cur {
			free = max - cur
		}
		consider(free, fmt.Sprintf("memory limit of the control group, %s in %s, less %s in use", FormatBytes(max), where, FormatBytes(cur)))
	}
	return best
}

// readKB reads "Key:   1234 kB" from a /proc file.
func readKB(path, key string) (uint64, bool) {
	f, err := os.Open(path)
	if err != nil {
		return 0, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || k != key {
			continue
		}
		fields := strings.Fields(v)
		if len(fields) == 0 {
			return 0, false
		}
		n, err := strconv.ParseUint(fields[0], 10, 64)
		if err != nil {
			return 0, false
		}
		if len(fields) > 1 && !strings.EqualFold(fields[1], "kB") {
			return 0, false
		}
		return n, true
	}
	return 0, false
}

// cgroupLimit reads the memory limit and usage of the process's control
// group: cgroup v2 (memory.max, memory.current) or v1
// (memory.limit_in_bytes, memory.usage_in_bytes). A limit of "max" or v1's
// huge "no limit" value is no limit.
func (fs files) cgroupLimit() (max, cur uint64, where string, ok bool) {
	data, err := os.ReadFile(fs.cgroup)
	if err != nil {
		return 0, 0, "", false
	}
	type candidate struct{ dir, maxFile, curFile string }
	var cands []candidate
	for _, line := range strings.Split(string(bytes.TrimSpace(data)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		path := parts[2]
		switch {
		case parts[0] == "0" && parts[1] == "":
			// v2: the unified hierarchy, mounted at the root or under unified/
			for _, root := range []string{fs.cgroupRoot, filepath.Join(fs.cgroupRoot, "unified")} {
				cands = append(cands,
					candidate{filepath.Join(root, path), "memory.max", "memory.current"},
					candidate{root, "memory.max", "memory.current"})
			}
		case hasController(parts[1], "memory"):
			root := filepath.Join(fs.cgroupRoot, "memory")
			cands = append(cands,
				candidate{filepath.Join(root, path), "memory.limit_in_bytes", "memory.usage_in_bytes"},
				// in a container the group is often the mount's root
				candidate{root, "memory.limit_in_bytes", "memory.usage_in_bytes"})
		}
	}
	for _, c := range cands {
		m, okMax := readNumber(filepath.Join(c.dir, c.maxFile))
		u, okCur := readNumber(filepath.Join(c.dir, c.curFile))
		if !okMax || !okCur {
			continue
		}
		// v1 reports "no limit" as a page-rounded MaxInt64
		if m >= 1<<62 {
			continue
		}
		return m, u, filepath.Join(c.dir, c.maxFile), true
	}
	return 0, 0, "", false
}

func hasController(list, name string) bool {
	for _, c := range strings.Split(list, ",") {
		if c == name {
			return true
		}
	}
	return false
}

// readNumber reads a file holding one unsigned number ("max" is not one).
func readNumber(path string) (uint64, bool) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, false
	}
	n, err := strconv.ParseUint(strings.TrimSpace(string(data)), 10, 64)
	return n, err == nil
}

// Error is a job refused because its estimated memory exceeds the memory
// available.
type Error struct {
	// What the estimate is for, in the user's words: the flag and its
	// value ("--hidden 1048576"), or the job ("training").
	What string
	// Need is the estimated memory in bytes.
	Need uint64
	// Available is the memory available when the job was refused.
	Available Limit
	// Hint says how to make the job fit ("use a smaller --hidden"); may be
	// empty.
	Hint string
}

// Error says what was refused: the job, its estimate, the memory available
// and its source, and the hint.
func (e *Error) Error() string {
	msg := fmt.Sprintf("%s needs about %s of memory, but only %s is available (%s)", e.What, FormatBytes(e.Need), FormatBytes(e.Available.Bytes), e.Available.Source)
	if e.Hint != "" {
		msg += "; " + e.Hint
	}
	return msg
}

// Check returns an *Error when need bytes do not fit in the memory
// available now, and nil when they fit or nothing is known about the
// memory. what and hint go into the error as Error describes them.
func Check(what string, need uint64, hint string) error {
	return check(Available(), what, need, hint)
}

func check(avail Limit, what string, need uint64, hint string) error {
	if !avail.Known || need <= avail.Bytes {
		return nil
	}
	return &Error{What: what, Need: need, Available: avail, Hint: hint}
}

// FormatBytes renders a byte count in binary units with three significant
// digits: "512 B", "1.50 KiB", "33.1 GiB", "2.00 TiB".
func FormatBytes(n uint64) string {
	if n < 1024 {
		return fmt.Sprintf("%d B", n)
	}
	units := []string{"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}
	v := float64(n) / 1024
	u := 0
	for v >= 1024 && u < len(units)-1 {
		v /= 1024
		u++
	}
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f %s", v, units[u])
	case v >= 10:
		return fmt.Sprintf("%.1f %s", v, units[u])
	default:
		return fmt.Sprintf("%.2f %s", v, units[u])
	}
}
