package atomicfile

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// enospcWriter passes through the first n bytes and then fails every write
// with ENOSPC, the way a file on a full disk does.
type enospcWriter struct {
	w io.Writer
	n int
}

func (e *enospcWriter) Write(p []byte) (int, error) {
	if len(p) <= e.n {
		e.n -= len(p)
		return e.w.Write(p)
	}
	k, err := e.w.Write(p[:e.n])
	e.n = 0
	if err != nil {
		return k, err
	}
	return k, &os.PathError{Op: "write", Path: "disk", Err: syscall.ENOSPC}
}

// onlyFile asserts that dir holds exactly one entry, named name, with the
// given content: no temporary file was left behind.
func onlyFile(t *testing.T, dir, name, content string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != name {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Fatalf("directory holds %v, want only %s", names, name)
	}
	got, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != content {
		t.Fatalf("content = %q, want %q", got, content)
	}
}

func TestWriteFileCreatesAndReplaces(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "out.bin")
	for _, content := range []string{"first version", "second, longer version of the file"} {
		err := WriteFile(path, func(w io.Writer) error {
			_, err := io.WriteString(w, content)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		onlyFile(t, dir, "out.bin", content)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o644 {
		t.Errorf("new file mode = %v, want 0644", st.Mode().Perm())
	}
}

func TestWriteFileKeepsPermissions(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "secret")
	if err := os.WriteFile(path, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(path, func(w io.Writer) error { _, err := w.Write([]byte("new")); return err }); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("mode after replace = %v, want 0600", st.Mode().Perm())
	}
}

func TestFailingWriterKeepsOldContent(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "ckpt")
	if err := os.WriteFile(path, []byte("old good content"), 0o644); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("encoder failed half-way")
	err := WriteFile(path, func(w io.Writer) error {
		// Write more than the buffer size so some bytes really reach the
		// temporary file before the failure.
		if _, err := w.Write(bytes.Repeat([]byte("x"), 200000)); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want it to wrap %v", err, boom)
	}
	if !strings.Contains(err.Error(), path) {
		t.Errorf("error %q does not name the path", err)
	}
	onlyFile(t, dir, "ckpt", "old good content")
}

func TestPanickingWriterKeepsOldContent(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "ckpt")
	if err := os.WriteFile(path, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	err := WriteFile(path, func(w io.Writer) error {
		io.WriteString(w, "partial")
		panic("bug in encoder")
	})
	if err == nil || !strings.Contains(err.Error(), "panicked") {
		t.Fatalf("err = %v, want a panic report", err)
	}
	onlyFile(t, dir, "ckpt", "old")
}

func TestDiskFullKeepsOldContent(t *testing.T) {
	for _, tc := range []struct {
		name  string
		limit int // bytes the "disk" accepts
		size  int // bytes the writer tries to write
	}{
		{"fails during flush", 100, 5000},       // error surfaces at the final flush
		{"fails during writes", 70000, 1 << 20}, // error surfaces while writing
		{"fails at once", 0, 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "model.safetensors")
			if err := os.WriteFile(path, []byte("previous checkpoint"), 0o644); err != nil {
				t.Fatal(err)
			}
			wrapWriter = func(w io.Writer) io.Writer { return &enospcWriter{w: w, n: tc.limit} }
			defer func() { wrapWriter = nil }()
			err := WriteFile(path, func(w io.Writer) error {
				_, err := w.Write(bytes.Repeat([]byte{7}, tc.size))
				return err
			})
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("err = %v, want ENOSPC", err)
			}
			if !strings.Contains(err.Error(), path) {
				t.Errorf("error %q does not name the path", err)
			}
			onlyFile(t, dir, "model.safetensors", "previous checkpoint")
		})
	}
}

func TestWriteFileBadArguments(t *testing.T) {
	dir := t.TempDir()
	if err := WriteFile("", func(io.Writer) error { return nil }); err == nil {
		t.Error("empty path: no error")
	}
	if err := WriteFile(filepath.Join(dir, "x"), nil); err == nil {
		t.Error("nil write: no error")
	}
	if err := WriteFile(dir, func(io.Writer) error { return nil }); err == nil || !strings.Contains(err.Error(), "directory") {
		t.Errorf("path is a directory: err = %v", err)
	}
	if err := WriteFile(filepath.Join(dir, "missing", "x"), func(io.Writer) error { return nil }); err == nil {
		t.Error("missing parent directory: no error")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 0 {
		t.Errorf("left %d entries behind", len(entries))
	}
}
