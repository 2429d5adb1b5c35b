// Package archive reads an app's source given as an archive: a manifest's
// path naming a .jar, .war or .zip file (manifests.IsArchive), which Cloud
// Foundry unzips before staging. Check refuses an archive that is not a zip, holds an entry that
// would land outside the app's folder (../, an absolute name) or a
// symlink, or unpacks to more than MaxBytes or MaxEntries; WriteTar writes
// its contents as the tar staging sends to the buildpacks, so that they see
// the unpacked tree as if it were a folder. It reads plain bytes only (no
// git, no network): decide checks archives with it and the controller
// stages them with it.
package archive

import (
	"archive/tar"
	"archive/zip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
	"time"
)

// MaxBytes is the most an archive may unpack to (the sum of its files'
// sizes): 1 GiB.
const MaxBytes = 1 << 30

// MaxEntries is the most entries (files and folders) an archive may hold.
const MaxEntries = 100_000

// Epoch is the modification time of every entry WriteTar writes, as for a
// folder's source (1980-01-01 00:00:00 UTC), so the tar depends only on
// the archive's content.
var Epoch = time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC)

// ErrUnsafeEntry is wrapped by errors about an entry that is never
// unpacked: a symlink, a special file, or a name leaving the root.
var ErrUnsafeEntry = errors.New("unsafe archive entry")

// ErrTooLarge is wrapped by errors about an archive over MaxBytes or
// MaxEntries.
var ErrTooLarge = errors.New("archive too large")

// Check opens the zip archive r of size bytes, named name in errors, and
// refuses it if it is not a zip or holds an entry WriteTar would refuse.
// It reads only the archive's directory, not the files' content.
func Check(name string, r io.ReaderAt, size int64) error {
	_, err := open(name, r, size)
	return err
}

// entry is one checked entry of an archive.
type entry struct {
	f    *zip.File
	name string // cleaned, relative, without a trailing slash
	dir  bool
	mode int64
}

// open reads the archive's directory and checks every entry.
func open(name string, r io.ReaderAt, size int64) ([]entry, error) {
	zr, err := zip.NewReader(r, size)
	if err != nil {
		return nil, fmt.Errorf("archive %s: not a readable zip file: %w", name, err)
	}
	if len(zr.File) > MaxEntries {
		return nil, fmt.Errorf("archive %s: %d entries, more than %d: %w", name, len(zr.File), MaxEntries, ErrTooLarge)
	}
	var total uint64
	out := make([]entry, 0, len(zr.File))
	for _, f := range zr.File {
		e, err := check(f)
		if err != nil {
			return nil, fmt.Errorf("archive %s: entry %q: %w", name, f.Name, err)
		}
		if f.UncompressedSize64 > MaxBytes-total {
			return nil, fmt.Errorf("archive %s: unpacks to more than %d MiB: %w", name, MaxBytes>>20, ErrTooLarge)
		}
		total += f.UncompressedSize64
		if e.name != "" {
			out = append(out, e)
		}
	}
	return out, nil
}

// check refuses an entry that is a symlink or special file, or whose name
// is absolute or leaves the root, and returns its cleaned name and mode.
func check(f *zip.File) (entry, error) {
	raw := f.Name
	if strings.Contains(raw, "\\") {
		raw = strings.ReplaceAll(raw, "\\", "/") // written on Windows
	}
	if strings.HasPrefix(raw, "/") || len(raw) > 1 && raw[1] == ':' {
		return entry{}, fmt.Errorf("%w: absolute name", ErrUnsafeEntry)
	}
	clean := path.Clean(raw)
	if clean == ".." || strings.HasPrefix(clean, "../") {
		return entry{}, fmt.Errorf("%w: its name leaves the archive's root", ErrUnsafeEntry)
	}
	if strings.Contains(clean, "\x00") {
		return entry{}, fmt.Errorf("%w: its name holds a NUL character", ErrUnsafeEntry)
	}
	m := f.Mode()
	switch {
	case m&fs.ModeSymlink != 0:
		return entry{}, fmt.Errorf("%w: symlinks are not unpacked", ErrUnsafeEntry)
	case m&fs.ModeType&^fs.ModeDir != 0:
		return entry{}, fmt.Errorf("%w: %s is not a file or a folder", ErrUnsafeEntry, m.Type())
	}
	e := entry{f: f, name: clean, dir: m.IsDir() || strings.HasSuffix(raw, "/")}
	if clean == "." {
		e.name = "" // the root itself
	}
	e.mode = 0o644
	if e.dir {
		e.mode = 0o755
	}
	if hasUnixMode(f) {
		e.mode = int64(m.Perm())
		if e.dir {
			e.mode |= 0o700 // a folder the stager cannot enter is of no use
		}
	}
	return e, nil
}

// hasUnixMode reports whether the zip recorded the entry's Unix mode
// (made on Unix or macOS); other zips give every file 0644.
func hasUnixMode(f *zip.File) bool {
	switch f.CreatorVersion >> 8 {
	case 3, 19: // Unix, macOS
		return f.ExternalAttrs>>16 != 0
	}
	return false
}

// WriteTar writes to w a tar of the contents of the zip archive r of size
// bytes (named name in errors), after checking it as Check does: nothing is
// written for an archive Check refuses. Entries come in the archive's
// order, a folder missing from the archive written before the first entry
// under it; modes are the archive's where it recorded Unix modes, else
// 0755 for folders and 0644 for files; mtime Epoch, uid/gid 0. The tar is
// complete (trailer written) when WriteTar returns nil; w is not closed.
func WriteTar(ctx context.Context, name string, r io.ReaderAt, size int64, w io.Writer) error {
	es, err := open(name, r, size)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(w)
	dirs := map[string]bool{}
	var mkdirs func(dir string, mode int64) error
	mkdirs = func(dir string, mode int64) error {
		if dir == "." || dir == "" || dirs[dir] {
			return nil
		}
		if err := mkdirs(path.Dir(dir), 0o755); err != nil {
			return err
		}
		dirs[dir] = true
		return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: dir + "/", Mode: mode, ModTime: Epoch})
	}
	for _, e := range es {
		if err := ctx.Err(); err != nil {
			return err
		}
		if e.dir {
			if err := mkdirs(e.name, e.mode); err != nil {
				return fmt.Errorf("archive %s: entry %q: %w", name, e.f.Name, err)
			}
			continue
		}
		if err := mkdirs(path.Dir(e.name), 0o755); err != nil {
			return fmt.Errorf("archive %s: entry %q: %w", name, e.f.Name, err)
		}
		if err := writeFile(ctx, tw, e); err != nil {
			return fmt.Errorf("archive %s: entry %q: %w", name, e.f.Name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("archive %s: %w", name, err)
	}
	return nil
}

// writeFile writes one file entry's header and content.
func writeFile(ctx context.Context, tw *tar.Writer, e entry) error {
	hdr := &tar.Header{Typeflag: tar.TypeReg, Name: e.name, Mode: e.mode, Size: int64(e.f.UncompressedSize64), ModTime: Epoch}
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	rc, err := e.f.Open()
	if err != nil {
		return err
	}
	defer rc.Close()
	// zip's reader fails on more bytes than the entry declares, and on a
	// bad checksum at its end.
	if _, err := io.Copy(tw, ctxReader{ctx, rc}); err != nil {
		return err
	}
	return nil
}

// ctxReader stops a long copy when ctx ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// Open makes the archive at path p of fsys readable at random, as zip
// needs: the file itself when fsys gives an io.ReaderAt (os.DirFS does),
// else a temporary copy. Close releases it.
func Open(fsys fs.FS, p string) (*File, error) {
	f, err := fsys.Open(p)
	if err != nil {
		return nil, fmt.Errorf("archive %s: %w", p, err)
	}
	info, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("archive %s: %w", p, err)
	}
	if !info.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("archive %s: not a regular file (%s)", p, info.Mode().Type())
	}
	if info.Size() > MaxBytes {
		f.Close()
		return nil, fmt.Errorf("archive %s: %d MiB, more than %d MiB: %w", p, info.Size()>>20, MaxBytes>>20, ErrTooLarge)
	}
	if ra, ok := f.(io.ReaderAt); ok {
		return &File{ReaderAt: ra, Size: info.Size(), close: f.Close}, nil
	}
	defer f.Close()
	tmp, err := os.CreateTemp("", "driftless-archive-*")
	if err != nil {
		return nil, fmt.Errorf("archive %s: temporary copy: %w", p, err)
	}
	cleanup := func() error {
		err := tmp.Close()
		if rerr := os.Remove(tmp.Name()); err == nil {
			err = rerr
		}
		return err
	}
	n, err := io.Copy(tmp, f)
	if err != nil {
		_ = cleanup()
		return nil, fmt.Errorf("archive %s: temporary copy: %w", p, err)
	}
	return &File{ReaderAt: tmp, Size: n, close: cleanup}, nil
}

// File is an archive opened for reading at random (see Open).
type File struct {
	io.ReaderAt
	// Size is the archive's size in bytes.
	Size  int64
	close func() error
}

// Close releases the file (and removes a temporary copy).
func (f *File) Close() error { return f.close() }
