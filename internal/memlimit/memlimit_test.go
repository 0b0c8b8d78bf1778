package memlimit

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// fakeSystem writes /proc and cgroup files under a temporary directory.
func fakeSystem(t *testing.T, meminfo, status, cgroup string, cgroupFiles map[string]string) files {
	t.Helper()
	dir := t.TempDir()
	fs := files{
		meminfo:    filepath.Join(dir, "meminfo"),
		status:     filepath.Join(dir, "status"),
		cgroup:     filepath.Join(dir, "cgroup"),
		cgroupRoot: filepath.Join(dir, "sys"),
	}
	for path, text := range map[string]string{fs.meminfo: meminfo, fs.status: status, fs.cgroup: cgroup} {
		if text == "" {
			continue
		}
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for name, text := range cgroupFiles {
		path := filepath.Join(fs.cgroupRoot, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return fs
}

// withRlimit makes getrlimitAS return lim for the test.
func withRlimit(t *testing.T, lim uint64) {
	old := getrlimitAS
	getrlimitAS = func() (uint64, error) { return lim, nil }
	t.Cleanup(func() { getrlimitAS = old })
}

const (
	meminfo8G = "MemTotal:       16000000 kB\nMemFree:         1000000 kB\nMemAvailable:    8388608 kB\n"
	status1G  = "Name:\tbackprop\nVmPeak:\t 1100000 kB\nVmSize:\t 1048576 kB\nVmRSS:\t   20000 kB\n"
)

func TestAvailableSmallestBound(t *testing.T) {
	const gib = 1 << 30
	for _, c := range []struct {
		name    string
		rlimit  uint64
		cgroup  string
		files   map[string]string
		want    uint64
		wantSrc string
	}{
		{"meminfo only", unix.RLIM_INFINITY, "", nil, 8 * gib, "MemAvailable"},
		{"ulimit -v below MemAvailable", 4 * gib, "", nil, 3 * gib, "ulimit -v 4194304 KiB, less 1.00 GiB"},
		{"ulimit -v above MemAvailable", 20 * gib, "", nil, 8 * gib, "MemAvailable"},
		{"cgroup v2", unix.RLIM_INFINITY, "0::/job\n", map[string]string{"job/memory.max": "2147483648\n", "job/memory.current": "536870912\n"}, 1.5 * gib, "control group"},
		{"cgroup v2 without limit", unix.RLIM_INFINITY, "0::/job\n", map[string]string{"job/memory.max": "max\n", "job/memory.current": "536870912\n"}, 8 * gib, "MemAvailable"},
		{"cgroup v1", unix.RLIM_INFINITY, "4:memory:/docker/abc\n3:cpu:/\n", map[string]string{"memory/docker/abc/memory.limit_in_bytes": "3221225472", "memory/docker/abc/memory.usage_in_bytes": "1073741824"}, 2 * gib, "memory.limit_in_bytes"},
		{"cgroup v1 at the mount root", unix.RLIM_INFINITY, "4:memory:/elsewhere\n", map[string]string{"memory/memory.limit_in_bytes": "3221225472", "memory/memory.usage_in_bytes": "1073741824"}, 2 * gib, "control group"},
		{"cgroup v1 unlimited", unix.RLIM_INFINITY, "4:memory:/\n", map[string]string{"memory/memory.limit_in_bytes": "9223372036854771712", "memory/memory.usage_in_bytes": "1073741824"}, 8 * gib, "MemAvailable"},
		{"usage above the cgroup limit", unix.RLIM_INFINITY, "0::/\n", map[string]string{"memory.max": "100", "memory.current": "200"}, 0, "control group"},
	} {
		t.Run(c.name, func(t *testing.T) {
			withRlimit(t, c.rlimit)
			fs := fakeSystem(t, meminfo8G, status1G, c.cgroup, c.files)
			got := fs.available()
			if !got.Known || got.Bytes != c.want || !strings.Contains(got.Source, c.wantSrc) {
				t.Errorf("available() = %+v, want %d bytes from a source naming %q", got, c.want, c.wantSrc)
			}
		})
	}
}

func TestAvailableUnknown(t *testing.T) {
	withRlimit(t, unix.RLIM_INFINITY)
	fs := fakeSystem(t, "", "", "", nil) // no files at all
	if got := fs.available(); got.Known {
		t.Fatalf("available() with no files = %+v, want unknown", got)
	}
	if err := check(Limit{}, "--n 5", math.MaxUint64, ""); err != nil {
		t.Errorf("check with nothing known = %v, want nil", err)
	}
}

func TestMalformedProcFiles(t *testing.T) {
	withRlimit(t, unix.RLIM_INFINITY)
	for _, text := range []string{"MemAvailable:\n", "MemAvailable: lots kB\n", "MemAvailable: 5 MB\n", "garbage"} {
		fs := fakeSystem(t, text, "", "", nil)
		if got := fs.available(); got.Known {
			t.Errorf("meminfo %q: available() = %+v, want unknown", text, got)
		}
	}
}

func TestCheckError(t *testing.T) {
	avail := Limit{Bytes: 4 << 30, Known: true, Source: "address-space limit, ulimit -v 6000000 KiB, less 1.57 GiB already in use"}
	if err := check(avail, "--batch 64", 1<<30, "x"); err != nil {
		t.Fatalf("1 GiB in 4 GiB: %v", err)
	}
	err := check(avail, "--hidden 1048576", 33<<30, "use a smaller --hidden")
	var me *Error
	if !errors.As(err, &me) {
		t.Fatalf("33 GiB in 4 GiB: error %v, want *Error", err)
	}
	want := "--hidden 1048576 needs about 33.0 GiB of memory, but only 4.00 GiB is available (address-space limit, ulimit -v 6000000 KiB, less 1.57 GiB already in use); use a smaller --hidden"
	if err.Error() != want {
		t.Errorf("message\n got %s\nwant %s", err, want)
	}
}

func TestFormatBytes(t *testing.T) {
	for n, want := range map[uint64]string{
		0: "0 B", 1023: "1023 B", 1024: "1.00 KiB", 1536: "1.50 KiB", 10 << 20: "10.0 MiB",
		300 << 20: "300 MiB", 33 << 30: "33.0 GiB", 5 << 40: "5.00 TiB", math.MaxUint64: "16.0 EiB",
	} {
		if got := FormatBytes(n); got != want {
			t.Errorf("FormatBytes(%d) = %q, want %q", n, got, want)
		}
	}
}

// TestAvailableUnderRlimit lowers this process's own address-space limit
// and checks that Available reports it, less what the process uses.
func TestAvailableUnderRlimit(t *testing.T) {
	var old unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_AS, &old); err != nil {
		t.Skipf("no RLIMIT_AS here: %v", err)
	}
	used, ok := readKB("/proc/self/status", "VmSize")
	if !ok {
		t.Skip("no /proc/self/status VmSize here")
	}
	lim := used*1024 + 1<<30 // 1 GiB above what is in use now
	if old.Cur != unix.RLIM_INFINITY && old.Cur < lim {
		t.Skipf("the address-space limit is already %d bytes", old.Cur)
	}
	if err := unix.Setrlimit(unix.RLIMIT_AS, &unix.Rlimit{Cur: lim, Max: old.Max}); err != nil {
		t.Skipf("cannot lower RLIMIT_AS: %v", err)
	}
	got := Available()
	if err := unix.Setrlimit(unix.RLIMIT_AS, &old); err != nil {
		t.Fatalf("restoring RLIMIT_AS: %v", err)
	}
	// VmSize moves a little between the two reads
	if !got.Known || got.Bytes > 1<<30 || got.Bytes < 1<<30-256<<20 || !strings.Contains(got.Source, "ulimit -v") {
		t.Errorf("Available() under a limit 1 GiB above VmSize = %v, want about 1 GiB from ulimit -v", got)
	}
}
