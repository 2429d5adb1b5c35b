package source

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"path"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// FS returns a read-only file system over the commit's tree, read straight
// from git objects. It implements fs.ReadDirFS, fs.ReadFileFS, fs.StatFS and
// fs.ReadLinkFS. Directories are listed in name order. Symlinks are not
// followed: Open, Stat and ReadFile of a symlink give a file whose Mode has
// fs.ModeSymlink and whose content is the link target (so Lstat is Stat).
// Modes are fs.ModeDir|0755 for directories, 0755 for executable files and
// 0644 for other files and symlinks; every ModTime is Epoch. Submodules
// (gitlinks) are left out. The returned FS is safe for concurrent use.
func (s *Snapshot) FS() fs.FS { return snapFS{s} }

type snapFS struct{ s *Snapshot }

var (
	_ fs.ReadDirFS  = snapFS{}
	_ fs.ReadFileFS = snapFS{}
	_ fs.StatFS     = snapFS{}
	_ fs.ReadLinkFS = snapFS{}
)

var errIsDir = errors.New("is a directory")

// find resolves name for operation op, hiding submodules.
func (f snapFS) find(op, name string) (entry, error) {
	if !fs.ValidPath(name) {
		return entry{}, &fs.PathError{Op: op, Path: name, Err: fs.ErrInvalid}
	}
	e, err := f.s.lookup(name)
	if err == nil && fileMode(e.Mode) == 0 {
		err = fs.ErrNotExist // submodule or unknown mode
	}
	if err != nil {
		return entry{}, &fs.PathError{Op: op, Path: name, Err: err}
	}
	return e, nil
}

// Open opens the named file or directory.
func (f snapFS) Open(name string) (fs.File, error) {
	e, err := f.find("open", name)
	if err != nil {
		return nil, err
	}
	info, err := f.info(e.TreeEntry)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	if e.Mode == filemode.Dir {
		return &dirFile{fsys: f, path: name, info: info}, nil
	}
	return &blobFile{fsys: f, path: name, info: info, hash: e.Hash}, nil
}

// Stat returns the FileInfo of the named file; a symlink is not followed.
func (f snapFS) Stat(name string) (fs.FileInfo, error) {
	e, err := f.find("stat", name)
	if err != nil {
		return nil, err
	}
	info, err := f.info(e.TreeEntry)
	if err != nil {
		return nil, &fs.PathError{Op: "stat", Path: name, Err: err}
	}
	return info, nil
}

// Lstat is Stat: symlinks are never followed.
func (f snapFS) Lstat(name string) (fs.FileInfo, error) {
	e, err := f.find("lstat", name)
	if err != nil {
		return nil, err
	}
	info, err := f.info(e.TreeEntry)
	if err != nil {
		return nil, &fs.PathError{Op: "lstat", Path: name, Err: err}
	}
	return info, nil
}

// ReadLink returns the target of the named symlink.
func (f snapFS) ReadLink(name string) (string, error) {
	e, err := f.find("readlink", name)
	if err != nil {
		return "", err
	}
	if e.Mode != filemode.Symlink {
		return "", &fs.PathError{Op: "readlink", Path: name, Err: fs.ErrInvalid}
	}
	target, err := f.s.obj.readAll(e.Hash)
	if err != nil {
		return "", &fs.PathError{Op: "readlink", Path: name, Err: err}
	}
	return string(target), nil
}

// ReadFile returns the content of the named file (a symlink's target).
func (f snapFS) ReadFile(name string) ([]byte, error) {
	e, err := f.find("read", name)
	if err != nil {
		return nil, err
	}
	if e.Mode == filemode.Dir {
		return nil, &fs.PathError{Op: "read", Path: name, Err: errIsDir}
	}
	data, err := f.s.obj.readAll(e.Hash)
	if err != nil {
		return nil, &fs.PathError{Op: "read", Path: name, Err: err}
	}
	return bytes.Clone(data), nil // the caller may change it; the cache's must not
}

// ReadDir returns the named directory's entries in name order.
func (f snapFS) ReadDir(name string) ([]fs.DirEntry, error) {
	e, err := f.find("readdir", name)
	if err != nil {
		return nil, err
	}
	if e.Mode != filemode.Dir {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: errors.New("not a directory")}
	}
	list, err := f.list(e.Hash)
	if err != nil {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: err}
	}
	return list, nil
}

func (f snapFS) list(tree plumbing.Hash) ([]fs.DirEntry, error) {
	es, err := f.s.obj.entries(tree)
	if err != nil {
		return nil, err
	}
	list := make([]fs.DirEntry, 0, len(es))
	for _, e := range es {
		if fileMode(e.Mode) == 0 {
			continue // submodule or unknown mode
		}
		list = append(list, dirEntry{fsys: f, e: e})
	}
	return list, nil
}

// fileMode maps a git entry mode to an fs.FileMode type and permissions.
func fileMode(m filemode.FileMode) fs.FileMode {
	switch m {
	case filemode.Dir:
		return fs.ModeDir | 0o755
	case filemode.Executable:
		return 0o755
	case filemode.Symlink:
		return fs.ModeSymlink | 0o644
	case filemode.Regular, filemode.Deprecated:
		return 0o644
	}
	return 0
}

// info builds the FileInfo of an entry; files need their blob's size.
func (f snapFS) info(e object.TreeEntry) (fileInfo, error) {
	fi := fileInfo{name: path.Base(e.Name), mode: fileMode(e.Mode)}
	if e.Mode != filemode.Dir {
		b, err := f.s.obj.blob(e.Hash)
		if err != nil {
			return fileInfo{}, err
		}
		fi.size = b.Size
	}
	return fi, nil
}

type fileInfo struct {
	name string
	size int64
	mode fs.FileMode
}

func (i fileInfo) Name() string       { return i.name }
func (i fileInfo) Size() int64        { return i.size }
func (i fileInfo) Mode() fs.FileMode  { return i.mode }
func (i fileInfo) ModTime() time.Time { return Epoch }
func (i fileInfo) IsDir() bool        { return i.mode.IsDir() }
func (i fileInfo) Sys() any           { return nil }

type dirEntry struct {
	fsys snapFS
	e    object.TreeEntry
}

func (d dirEntry) Name() string               { return d.e.Name }
func (d dirEntry) IsDir() bool                { return d.e.Mode == filemode.Dir }
func (d dirEntry) Type() fs.FileMode          { return fileMode(d.e.Mode).Type() }
func (d dirEntry) Info() (fs.FileInfo, error) { return d.fsys.info(d.e) }
func (d dirEntry) String() string             { return fs.FormatDirEntry(d) }

// blobFile is an open file or symlink; its content is read on first Read.
type blobFile struct {
	fsys   snapFS
	path   string
	info   fileInfo
	hash   plumbing.Hash
	rc     io.ReadCloser
	closed bool
}

func (b *blobFile) Stat() (fs.FileInfo, error) { return b.info, nil }

func (b *blobFile) Read(p []byte) (int, error) {
	if b.closed {
		return 0, &fs.PathError{Op: "read", Path: b.path, Err: fs.ErrClosed}
	}
	if b.rc == nil {
		blob, err := b.fsys.s.obj.blob(b.hash)
		if err == nil {
			b.rc, err = b.fsys.s.obj.open(blob)
		}
		if err != nil {
			return 0, &fs.PathError{Op: "read", Path: b.path, Err: err}
		}
	}
	return b.rc.Read(p)
}

func (b *blobFile) Close() error {
	if b.closed {
		return &fs.PathError{Op: "close", Path: b.path, Err: fs.ErrClosed}
	}
	b.closed = true
	if b.rc != nil {
		return b.rc.Close()
	}
	return nil
}

// dirFile is an open directory.
type dirFile struct {
	fsys    snapFS
	path    string
	info    fileInfo
	entries []fs.DirEntry // nil until the first ReadDir
	offset  int
	closed  bool
}

func (d *dirFile) Stat() (fs.FileInfo, error) { return d.info, nil }

func (d *dirFile) Read([]byte) (int, error) {
	return 0, &fs.PathError{Op: "read", Path: d.path, Err: errIsDir}
}

func (d *dirFile) ReadDir(n int) ([]fs.DirEntry, error) {
	if d.closed {
		return nil, &fs.PathError{Op: "readdir", Path: d.path, Err: fs.ErrClosed}
	}
	if d.entries == nil {
		list, err := d.fsys.ReadDir(d.path)
		if err != nil {
			return nil, err
		}
		d.entries = list
	}
	rest := d.entries[d.offset:]
	if n <= 0 {
		d.offset = len(d.entries)
		return rest, nil
	}
	if len(rest) == 0 {
		return nil, io.EOF
	}
	if n > len(rest) {
		n = len(rest)
	}
	d.offset += n
	return rest[:n], nil
}

func (d *dirFile) Close() error {
	if d.closed {
		return &fs.PathError{Op: "close", Path: d.path, Err: fs.ErrClosed}
	}
	d.closed = true
	return nil
}
