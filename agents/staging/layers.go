package staging

import (
	"archive/tar"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/driftless/driftless/model"
)

// Epoch is the modification time of every file in a droplet, so that the
// same input always gives the same layers and the same droplet digest.
var Epoch = time.Unix(0, 0).UTC()

// tarWriter writes reproducible tar entries: PAX format, fixed times.
type tarWriter struct {
	tw *tar.Writer
}

func newTarWriter(w io.Writer) *tarWriter { return &tarWriter{tw: tar.NewWriter(w)} }

func (t *tarWriter) header(h *tar.Header) error {
	h.ModTime, h.AccessTime, h.ChangeTime = Epoch, time.Time{}, time.Time{}
	h.Format = tar.FormatPAX
	if err := t.tw.WriteHeader(h); err != nil {
		return fmt.Errorf("writing layer entry %s: %w", h.Name, err)
	}
	return nil
}

func (t *tarWriter) dir(name string, mode int64, uid int) error {
	return t.header(&tar.Header{Typeflag: tar.TypeDir, Name: name + "/", Mode: mode, Uid: uid, Gid: uid})
}

func (t *tarWriter) file(name string, mode int64, uid int, body []byte) error {
	if err := t.header(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Uid: uid, Gid: uid, Size: int64(len(body))}); err != nil {
		return err
	}
	if _, err := t.tw.Write(body); err != nil {
		return fmt.Errorf("writing layer file %s: %w", name, err)
	}
	return nil
}

func (t *tarWriter) symlink(name, target string) error {
	return t.header(&tar.Header{Typeflag: tar.TypeSymlink, Name: name, Linkname: target, Mode: 0o777})
}

func (t *tarWriter) close() error {
	if err := t.tw.Close(); err != nil {
		return fmt.Errorf("closing layer: %w", err)
	}
	return nil
}

// writeAppLayer writes dir as /home/vcap/app owned by vcap, in lexical
// order, with modes kept and times fixed.
func writeAppLayer(w io.Writer, dir string) error {
	t := newTarWriter(w)
	for _, d := range []string{"home", "home/vcap"} {
		uid := 0
		if d == "home/vcap" {
			uid = model.VcapUID
		}
		if err := t.dir(d, 0o755, uid); err != nil {
			return err
		}
	}
	err := filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		name := "home/vcap/app"
		if rel != "." {
			name += "/" + filepath.ToSlash(rel)
		}
		info, err := e.Info()
		if err != nil {
			return err
		}
		mode := int64(info.Mode().Perm())
		switch {
		case e.IsDir():
			return t.dir(name, mode|0o700, model.VcapUID)
		case info.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return t.symlink(name, target)
		case info.Mode().IsRegular():
			if err := t.header(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode | 0o400, Uid: model.VcapUID, Gid: model.VcapUID, Size: info.Size()}); err != nil {
				return err
			}
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			defer f.Close()
			if _, err := io.Copy(t.tw, f); err != nil {
				return fmt.Errorf("writing %s: %w", name, err)
			}
			return nil
		default:
			return nil // sockets, devices: not part of an app
		}
	})
	if err != nil {
		return fmt.Errorf("packing the app folder: %w", err)
	}
	return t.close()
}

// unpackSource unpacks a source tar into dir, refusing entries that would
// land outside it. Only folders, regular files and symlinks are kept.
func unpackSource(r io.Reader, dir string) (files int, err error) {
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return files, nil
		}
		if err != nil {
			return files, fmt.Errorf("reading source tar: %w", err)
		}
		name := filepath.Clean(filepath.FromSlash(h.Name))
		if filepath.IsAbs(name) || name == ".." || strings.HasPrefix(name, ".."+string(filepath.Separator)) {
			return files, fmt.Errorf("source tar entry %q points outside the app folder", h.Name)
		}
		if name == "." {
			continue
		}
		target := filepath.Join(dir, name)
		if err := insideNoSymlinks(dir, filepath.Dir(target)); err != nil {
			return files, fmt.Errorf("source tar entry %q: %w", h.Name, err)
		}
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(target, 0o755); err != nil {
				return files, fmt.Errorf("unpacking source: %w", err)
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				return files, fmt.Errorf("unpacking source: %w", err)
			}
			f, err := os.OpenFile(target, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, fs.FileMode(h.Mode)&0o777)
			if err != nil {
				return files, fmt.Errorf("unpacking source: %w", err)
			}
			_, err = io.Copy(f, tr)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return files, fmt.Errorf("unpacking source file %s: %w", h.Name, err)
			}
			files++
		case tar.TypeSymlink:
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				return files, fmt.Errorf("unpacking source: %w", err)
			}
			if err := os.Symlink(h.Linkname, target); err != nil {
				return files, fmt.Errorf("unpacking source symlink %s: %w", h.Name, err)
			}
		}
	}
}

// insideNoSymlinks checks that the folder p under root is reached without
// following a symlink, so a tar cannot write through a link it planted.
func insideNoSymlinks(root, p string) error {
	rel, err := filepath.Rel(root, p)
	if err != nil {
		return err
	}
	cur := root
	for _, part := range strings.Split(rel, string(filepath.Separator)) {
		if part == "." || part == "" {
			continue
		}
		cur = filepath.Join(cur, part)
		st, err := os.Lstat(cur)
		if os.IsNotExist(err) {
			return nil
		}
		if err != nil {
			return err
		}
		if st.Mode()&fs.ModeSymlink != 0 {
			return fmt.Errorf("it would be written through the symlink %s", part)
		}
	}
	return nil
}

// writeTree writes the root file system under root as a layer: lexical
// order, fixed times, owners and modes (setuid included) kept, symlinks
// kept, hard links written as separate files, devices and sockets left out
// (the runtime provides /dev).
func writeTree(w io.Writer, root string) error {
	t := newTarWriter(w)
	err := filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil || rel == "." {
			return err
		}
		info, err := e.Info()
		if err != nil {
			return err
		}
		uid, gid := ownerOf(info)
		name := filepath.ToSlash(rel)
		mode := int64(info.Mode().Perm())
		if info.Mode()&fs.ModeSetuid != 0 {
			mode |= 0o4000
		}
		if info.Mode()&fs.ModeSetgid != 0 {
			mode |= 0o2000
		}
		if info.Mode()&fs.ModeSticky != 0 {
			mode |= 0o1000
		}
		switch {
		case e.IsDir():
			return t.header(&tar.Header{Typeflag: tar.TypeDir, Name: name + "/", Mode: mode, Uid: uid, Gid: gid})
		case info.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return t.header(&tar.Header{Typeflag: tar.TypeSymlink, Name: name, Linkname: target, Mode: 0o777, Uid: uid, Gid: gid})
		case info.Mode().IsRegular():
			if err := t.header(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Uid: uid, Gid: gid, Size: info.Size()}); err != nil {
				return err
			}
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			defer f.Close()
			if _, err := io.CopyN(t.tw, f, info.Size()); err != nil {
				return fmt.Errorf("writing %s: %w", name, err)
			}
			return nil
		default:
			return nil
		}
	})
	if err != nil {
		return fmt.Errorf("packing %s: %w", root, err)
	}
	return t.close()
}

// ownerOf is a file's uid and gid (0 where the platform does not say).
func ownerOf(info fs.FileInfo) (int, int) {
	if st, ok := info.Sys().(*syscall.Stat_t); ok {
		return int(st.Uid), int(st.Gid)
	}
	return 0, 0
}

// chownTree gives every file under dir to uid:gid (the app folder and
// build cache of a compile step, which runs as vcap).
func chownTree(dir string, uid, gid int) error {
	return filepath.WalkDir(dir, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, gid)
	})
}
