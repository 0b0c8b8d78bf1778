// Package atomicfile replaces a file's contents all at once: readers (and a
// crash or power cut part-way through) see either the old file or the complete
// new one, never a half-written mixture. Every artefact the engine writes —
// checkpoints, exported samples, plots — goes through it, so that an
// interrupted run never destroys the last good copy.
package atomicfile

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// defaultPerm is the permission of a newly created file (set explicitly with
// chmod, so the umask does not apply). An existing file keeps
// its own permission bits.
const defaultPerm fs.FileMode = 0o644

// wrapWriter, when non-nil, wraps the temporary file's writer. Tests use it to
// inject write failures such as a full disk (ENOSPC) below the buffering layer,
// exactly where a real device error would surface.
var wrapWriter func(io.Writer) io.Writer

// WriteFile atomically replaces the file at path with the bytes that write
// produces.
//
// It creates a temporary file in the same directory as path (so the final
// rename never crosses a file system), hands write a buffered writer on it,
// flushes and fsyncs the data, renames the temporary file over path and then
// fsyncs the directory so that the rename itself is durable.
//
// If write returns an error, panics, or any later step fails, the temporary
// file is removed and whatever was at path before is left untouched; the
// returned error names path and the step that failed. A file that already
// exists keeps its permission bits; a new one gets 0644.
func WriteFile(path string, write func(w io.Writer) error) (err error) {
	if path == "" {
		return errors.New("atomicfile: empty path")
	}
	if write == nil {
		return fmt.Errorf("atomicfile: %s: nil write function", path)
	}
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	perm := defaultPerm
	if st, statErr := os.Stat(path); statErr == nil {
		if st.IsDir() {
			return fmt.Errorf("atomicfile: %s is a directory, want a regular file path", path)
		}
		perm = st.Mode().Perm()
	}

	tmp, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return fmt.Errorf("atomicfile: %s: create temporary file: %w", path, err)
	}
	tmpName := tmp.Name()
	closed := false
	defer func() {
		// The half-written temporary file must never outlive a failed write.
		if err != nil {
			if !closed {
				tmp.Close()
			}
			os.Remove(tmpName)
		}
	}()
	// callWrite turns a panic in write into an error, so the cleanup above
	// also runs for a misbehaving write function.
	if err = callWrite(path, tmp, write); err != nil {
		return err
	}
	if err = tmp.Chmod(perm); err != nil {
		return fmt.Errorf("atomicfile: %s: chmod temporary file: %w", path, err)
	}
	if err = tmp.Sync(); err != nil {
		return fmt.Errorf("atomicfile: %s: fsync temporary file: %w", path, err)
	}
	closed = true
	if err = tmp.Close(); err != nil {
		return fmt.Errorf("atomicfile: %s: close temporary file: %w", path, err)
	}
	if err = os.Rename(tmpName, path); err != nil {
		return fmt.Errorf("atomicfile: %s: rename temporary file into place: %w", path, err)
	}
	if err = syncDir(dir); err != nil {
		// The new content is in place; only the durability of the rename is
		// in doubt. Report it, but do not try to undo the rename.
		return fmt.Errorf("atomicfile: %s: written, but fsync of directory %s failed: %w", path, dir, err)
	}
	return nil
}

// callWrite runs the user's write function on a buffered writer over the
// temporary file and flushes it, converting a panic into an error so that the
// caller's cleanup runs and the original file is left alone.
func callWrite(path string, f *os.File, write func(io.Writer) error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("atomicfile: %s: write function panicked: %v", path, r)
		}
	}()
	var w io.Writer = f
	if wrapWriter != nil {
		w = wrapWriter(w)
	}
	bw := bufio.NewWriterSize(w, 1<<16)
	if err := write(bw); err != nil {
		return fmt.Errorf("atomicfile: %s: %w", path, err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("atomicfile: %s: flush: %w", path, err)
	}
	return nil
}

// syncDir fsyncs a directory so that a rename inside it survives a crash.
// File systems that cannot fsync a directory (EINVAL, ENOTSUP) are accepted:
// there is nothing more a program can do on them.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		if errors.Is(err, syscall.EINVAL) || errors.Is(err, syscall.ENOTSUP) {
			return nil
		}
		return err
	}
	return nil
}
