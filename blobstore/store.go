// Package blobstore keeps content-addressed blobs (app source tars and the
// layers, configs and manifests of droplets) on disk, and serves them over
// HTTP: the read half of the OCI distribution API, which containerd pulls
// droplets with, and a small upload API for stagers (handler.go, client.go).
package blobstore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"
)

// digestRE matches the only digests the store accepts.
var digestRE = regexp.MustCompile(`^sha256:[a-f0-9]{64}$`)

// ErrBadDigest is returned for a malformed digest or content that does not
// match its digest.
var ErrBadDigest = errors.New("bad digest")

// ValidDigest reports whether d is a "sha256:<64 hex>" digest.
func ValidDigest(d string) bool { return digestRE.MatchString(d) }

// Store is a folder of blobs named by their sha256. Writes go to a temporary
// file and are renamed into place, so a blob is either whole or absent.
// Its methods are safe for concurrent use.
type Store struct {
	dir string
}

// Open opens (creating if needed) the store in dir.
func Open(dir string) (*Store, error) {
	for _, d := range []string{filepath.Join(dir, "sha256"), filepath.Join(dir, "tmp")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("creating blob store folder: %w", err)
		}
	}
	return &Store{dir: dir}, nil
}

func (s *Store) path(digest string) string {
	return filepath.Join(s.dir, "sha256", strings.TrimPrefix(digest, "sha256:"))
}

// Put stores the content of r and returns its digest and size. Storing a
// blob that is already there is harmless.
func (s *Store) Put(ctx context.Context, r io.Reader) (string, int64, error) {
	return s.put(ctx, "", r)
}

// PutDigest stores the content of r, which must have the given digest.
func (s *Store) PutDigest(ctx context.Context, digest string, r io.Reader) (int64, error) {
	if !ValidDigest(digest) {
		return 0, fmt.Errorf("%w: %q", ErrBadDigest, digest)
	}
	_, n, err := s.put(ctx, digest, r)
	return n, err
}

func (s *Store) put(ctx context.Context, want string, r io.Reader) (string, int64, error) {
	tmp, err := os.CreateTemp(filepath.Join(s.dir, "tmp"), "upload-")
	if err != nil {
		return "", 0, fmt.Errorf("creating blob upload: %w", err)
	}
	defer os.Remove(tmp.Name())
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(tmp, h), ctxReader{ctx, r})
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", 0, fmt.Errorf("writing blob: %w", err)
	}
	digest := "sha256:" + hex.EncodeToString(h.Sum(nil))
	if want != "" && digest != want {
		return "", 0, fmt.Errorf("%w: content is %s, not %s", ErrBadDigest, digest, want)
	}
	if err := os.Rename(tmp.Name(), s.path(digest)); err != nil {
		return "", 0, fmt.Errorf("storing blob %s: %w", digest, err)
	}
	return digest, n, nil
}

// Open returns the blob's content and size. A missing blob is an error
// wrapping fs.ErrNotExist.
func (s *Store) Open(digest string) (io.ReadCloser, int64, error) {
	if !ValidDigest(digest) {
		return nil, 0, fmt.Errorf("%w: %q", ErrBadDigest, digest)
	}
	f, err := os.Open(s.path(digest))
	if err != nil {
		return nil, 0, fmt.Errorf("opening blob %s: %w", digest, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, fmt.Errorf("opening blob %s: %w", digest, err)
	}
	return f, st.Size(), nil
}

// Has reports whether the blob is stored.
func (s *Store) Has(digest string) bool {
	if !ValidDigest(digest) {
		return false
	}
	_, err := os.Stat(s.path(digest))
	return err == nil
}

// Delete removes a blob; deleting a missing blob is not an error.
func (s *Store) Delete(digest string) error {
	if !ValidDigest(digest) {
		return fmt.Errorf("%w: %q", ErrBadDigest, digest)
	}
	if err := os.Remove(s.path(digest)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("deleting blob %s: %w", digest, err)
	}
	return nil
}

// Touch marks a blob as just used, so that garbage collection, which
// spares young blobs, spares it (a push that found it present is about to
// reference it).
func (s *Store) Touch(digest string) error {
	if !ValidDigest(digest) {
		return fmt.Errorf("%w: %q", ErrBadDigest, digest)
	}
	now := time.Now()
	return os.Chtimes(s.path(digest), now, now)
}

// ModTime is when a blob was stored or last touched.
func (s *Store) ModTime(digest string) (time.Time, error) {
	if !ValidDigest(digest) {
		return time.Time{}, fmt.Errorf("%w: %q", ErrBadDigest, digest)
	}
	st, err := os.Stat(s.path(digest))
	if err != nil {
		return time.Time{}, fmt.Errorf("blob %s: %w", digest, err)
	}
	return st.ModTime(), nil
}

// List returns the digests of every stored blob, sorted.
func (s *Store) List() ([]string, error) {
	entries, err := os.ReadDir(filepath.Join(s.dir, "sha256"))
	if err != nil {
		return nil, fmt.Errorf("listing blobs: %w", err)
	}
	var out []string
	for _, e := range entries {
		if d := "sha256:" + e.Name(); ValidDigest(d) {
			out = append(out, d)
		}
	}
	sort.Strings(out)
	return out, nil
}

// ctxReader stops a copy when its context ends.
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
