package source

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"path"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/storer"
)

// ErrSubmodule is wrapped by errors about a path that is a git submodule,
// whose content is not part of the commit.
var ErrSubmodule = errors.New("git submodules are not supported")

// Epoch is the modification time of every tar entry and every file of
// [Snapshot.FS]: 1980-01-01 00:00:00 UTC.
var Epoch = time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC)

// Snapshot is a commit of a source's branch. Its files are read straight
// from git objects. A Snapshot is safe for concurrent use and stays valid
// after later fetches (git objects are never rewritten; if an outside
// `git gc` repacks a plain-path repository, reads retry once against the new
// packs). Snapshots are made by [Source.Fetch]; the zero value is not usable.
type Snapshot struct {
	// Commit is the full hex hash of the commit.
	Commit string
	// Branch is the branch the commit was read from; "" for a plain path's
	// detached HEAD.
	Branch string
	// Message is the commit message without trailing newlines.
	Message string
	// Author is "Name <email>" of the commit's author.
	Author string
	// Time is the author time of the commit.
	Time time.Time

	tree plumbing.Hash
	obj  *objects
}

// ID is the commit's full hex hash (Commit), as reconciler.Commit asks.
func (s *Snapshot) ID() string { return s.Commit }

// objects serializes reads of one repository handle, whose go-git storage is
// not safe for concurrent use. Each snapshot owns its handle: fetches never
// use it again.
type objects struct {
	mu  sync.Mutex
	s   storer.EncodedObjectStorer
	log *slog.Logger

	// cache is the source's, shared by its snapshots (cache.go).
	cache *objectCache
}

// newSnapshot reads commit h of r; cache is the source's object cache.
func newSnapshot(r *git.Repository, h plumbing.Hash, branch string, cache *objectCache, log *slog.Logger) (*Snapshot, error) {
	c, err := object.GetCommit(r.Storer, h)
	if err != nil {
		return nil, fmt.Errorf("read commit %s: %w", h, err)
	}
	return &Snapshot{
		Commit:  c.Hash.String(),
		Branch:  branch,
		Message: strings.TrimRight(c.Message, "\n"),
		Author:  fmt.Sprintf("%s <%s>", c.Author.Name, c.Author.Email),
		Time:    c.Author.When,
		tree:    c.TreeHash,
		obj:     &objects{s: r.Storer, cache: cache, log: log.With("commit", c.Hash.String())},
	}, nil
}

// retry runs f under the lock and, if an object is missing, once more after
// re-reading the pack index (an outside `git gc` may have moved objects).
func (o *objects) retry(f func() error) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	err := f()
	if errors.Is(err, plumbing.ErrObjectNotFound) {
		if ri, ok := o.s.(interface{ Reindex() }); ok {
			ri.Reindex()
			err = f()
		}
	}
	return err
}

// entries returns the valid entries of tree h sorted by name; callers
// must not change them (they are cached).
func (o *objects) entries(h plumbing.Hash) ([]object.TreeEntry, error) {
	if es, ok := o.cache.trees.get(h); ok {
		return es, nil
	}
	es, err := o.decodeTree(h)
	if err != nil {
		return nil, err
	}
	o.cache.trees.put(h, es)
	return es, nil
}

// decodeTree reads tree h: its valid entries sorted by name.
func (o *objects) decodeTree(h plumbing.Hash) ([]object.TreeEntry, error) {
	var t *object.Tree
	err := o.retry(func() (err error) {
		t, err = object.GetTree(o.s, h)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("read tree %s: %w", h, err)
	}
	es := make([]object.TreeEntry, 0, len(t.Entries))
	for _, e := range t.Entries {
		if validName(e.Name) {
			es = append(es, e)
		}
	}
	sort.SliceStable(es, func(i, j int) bool { return es[i].Name < es[j].Name })
	return es, nil
}

// blob returns the blob h, whose content is read by opening it.
func (o *objects) blob(h plumbing.Hash) (*object.Blob, error) {
	var b *object.Blob
	err := o.retry(func() (err error) {
		b, err = object.GetBlob(o.s, h)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("read blob %s: %w", h, err)
	}
	return b, nil
}

// open returns a reader of blob b whose every call holds the lock.
func (o *objects) open(b *object.Blob) (io.ReadCloser, error) {
	var rc io.ReadCloser
	err := o.retry(func() (err error) {
		rc, err = b.Reader()
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("read blob %s: %w", b.Hash, err)
	}
	return &lockedReader{mu: &o.mu, rc: rc}, nil
}

// readAll returns the content of blob h; callers must not change it
// (small blobs are cached).
func (o *objects) readAll(h plumbing.Hash) ([]byte, error) {
	if data, ok := o.cache.blobs.get(h); ok {
		return data, nil
	}
	b, err := o.blob(h)
	if err != nil {
		return nil, err
	}
	rc, err := o.open(b)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		return nil, fmt.Errorf("read blob %s: %w", h, err)
	}
	o.cache.putBlob(h, data)
	return data, nil
}

type lockedReader struct {
	mu *sync.Mutex
	rc io.ReadCloser
}

func (l *lockedReader) Read(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.rc.Read(p)
}

func (l *lockedReader) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.rc.Close()
}

// entry is a resolved path: a tree entry, or the root tree with Name ".".
type entry struct {
	object.TreeEntry
}

// lookup resolves a clean, valid slash path ("." is the root).
func (s *Snapshot) lookup(name string) (entry, error) {
	e := entry{object.TreeEntry{Name: ".", Mode: filemode.Dir, Hash: s.tree}}
	if name == "." {
		return e, nil
	}
	for _, elem := range strings.Split(name, "/") {
		if e.Mode != filemode.Dir {
			return entry{}, fs.ErrNotExist
		}
		es, err := s.obj.entries(e.Hash)
		if err != nil {
			return entry{}, err
		}
		i := sort.Search(len(es), func(i int) bool { return es[i].Name >= elem })
		if i == len(es) || es[i].Name != elem {
			return entry{}, fs.ErrNotExist
		}
		e = entry{es[i]}
	}
	return e, nil
}

// cleanPath turns a manifest-style path ("", ".", "./app", "app/", "a//b")
// into a valid fs path; it refuses absolute paths and paths leaving the root.
func cleanPath(p string) (string, error) {
	if p == "" {
		return ".", nil
	}
	c := path.Clean(p)
	if !fs.ValidPath(c) {
		return "", fs.ErrInvalid
	}
	return c, nil
}

// TreeHash returns the git object hash (hex) of the tree at slash path p in
// the commit, or of the blob if p is a file; "" and "." name the root tree.
// It equals `git rev-parse <commit>:<p>` and changes exactly when something
// under p changes, so it identifies an app folder's content. An absent path
// yields an error wrapping fs.ErrNotExist; a submodule one wrapping
// ErrSubmodule. Names in exclude are left out of a folder's top level
// (an app's manifest.yml, so that scaling does not change its source); the
// hash is then a content hash of what is left, not a git object hash.
func (s *Snapshot) TreeHash(p string, exclude ...string) (string, error) {
	name, err := cleanPath(p)
	if err != nil {
		return "", &fs.PathError{Op: "treehash", Path: p, Err: err}
	}
	e, err := s.lookup(name)
	if err != nil {
		return "", &fs.PathError{Op: "treehash", Path: p, Err: fmt.Errorf("commit %s: %w", s.Commit, err)}
	}
	if e.Mode == filemode.Submodule {
		return "", &fs.PathError{Op: "treehash", Path: p, Err: ErrSubmodule}
	}
	if e.Mode != filemode.Dir || len(exclude) == 0 {
		return e.Hash.String(), nil
	}
	es, err := s.obj.entries(e.Hash)
	if err != nil {
		return "", &fs.PathError{Op: "treehash", Path: p, Err: err}
	}
	kept := slices.DeleteFunc(slices.Clone(es), func(te object.TreeEntry) bool { return slices.Contains(exclude, te.Name) })
	if len(kept) == len(es) {
		return e.Hash.String(), nil
	}
	// The folder without the excluded entries: hash what is left the way
	// git hashes a tree's entries, with a prefix so it never equals a git
	// tree hash.
	h := sha256.New()
	for _, te := range kept {
		fmt.Fprintf(h, "%o %s\x00%s\n", uint32(te.Mode), te.Name, te.Hash)
	}
	return "x" + hex.EncodeToString(h.Sum(nil))[:39], nil
}

// WriteTar writes to w a tar of the subtree at slash path p ("" or "." for
// the whole commit), its entry names relative to p; if p is a file, the tar
// holds that one file under its base name. The output is byte-for-byte
// reproducible: it depends only on the subtree's content, so two commits with
// an identical subtree give identical bytes. Entries come depth-first, each
// directory's entries in name order, a directory ("name/") before its
// content; every entry has mtime Epoch, uid/gid 0 and empty user/group names;
// mode 0755 for executable files and directories, 0644 for everything else
// (symlinks included). Names in exclude are left out of the top level. Symlinks are kept as symlinks; submodules are skipped
// with a logged warning. The tar is complete (trailer written) when WriteTar
// returns nil; w is not closed.
func (s *Snapshot) WriteTar(ctx context.Context, p string, w io.Writer, exclude ...string) error {
	name, err := cleanPath(p)
	if err != nil {
		return fmt.Errorf("tar %q of commit %s: %w", p, s.Commit, err)
	}
	e, err := s.lookup(name)
	if err != nil {
		return fmt.Errorf("tar %q of commit %s: %w", p, s.Commit, err)
	}
	tw := tar.NewWriter(w)
	if e.Mode == filemode.Dir {
		err = s.tarTree(ctx, tw, "", e.Hash, exclude)
	} else {
		e.Name = path.Base(name)
		if e.Mode == filemode.Submodule {
			err = ErrSubmodule
		} else {
			err = s.tarEntry(ctx, tw, "", e.TreeEntry)
		}
	}
	if err == nil {
		err = tw.Close()
	}
	if err != nil {
		return fmt.Errorf("tar %q of commit %s: %w", p, s.Commit, err)
	}
	return nil
}

func (s *Snapshot) tarTree(ctx context.Context, tw *tar.Writer, prefix string, h plumbing.Hash, exclude []string) error {
	es, err := s.obj.entries(h)
	if err != nil {
		return err
	}
	for _, e := range es {
		if slices.Contains(exclude, e.Name) {
			continue
		}
		if err := s.tarEntry(ctx, tw, prefix, e); err != nil {
			return err
		}
	}
	return nil
}

func (s *Snapshot) tarEntry(ctx context.Context, tw *tar.Writer, prefix string, e object.TreeEntry) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	name := prefix + e.Name
	hdr := &tar.Header{Name: name, Mode: 0o644, ModTime: Epoch}
	switch e.Mode {
	case filemode.Dir:
		hdr.Typeflag, hdr.Name, hdr.Mode = tar.TypeDir, name+"/", 0o755
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("write %s: %w", hdr.Name, err)
		}
		return s.tarTree(ctx, tw, name+"/", e.Hash, nil)
	case filemode.Symlink:
		target, err := s.obj.readAll(e.Hash)
		if err != nil {
			return fmt.Errorf("read symlink %s: %w", name, err)
		}
		hdr.Typeflag, hdr.Linkname = tar.TypeSymlink, string(target)
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("write %s: %w", name, err)
		}
		return nil
	case filemode.Regular, filemode.Deprecated, filemode.Executable:
		b, err := s.obj.blob(e.Hash)
		if err != nil {
			return fmt.Errorf("read %s: %w", name, err)
		}
		hdr.Typeflag, hdr.Size = tar.TypeReg, b.Size
		if e.Mode == filemode.Executable {
			hdr.Mode = 0o755
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("write %s: %w", name, err)
		}
		rc, err := s.obj.open(b)
		if err != nil {
			return fmt.Errorf("read %s: %w", name, err)
		}
		defer rc.Close()
		if _, err := io.Copy(tw, ctxReader{ctx, rc}); err != nil {
			return fmt.Errorf("write %s: %w", name, err)
		}
		return nil
	case filemode.Submodule:
		s.obj.log.Warn("skipping git submodule in tar: its content is not part of the commit", "path", name)
		return nil
	default:
		s.obj.log.Warn("skipping tree entry of unknown mode in tar", "path", name, "mode", e.Mode.String())
		return nil
	}
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
