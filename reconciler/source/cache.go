package source

import (
	"sync"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// Bounds of a source's object cache: small blobs only, and when a bound
// is passed the cache starts over (commits share most of their objects,
// so it fills again with what the next ones read).
const (
	maxCachedEntries   = 256 << 10 // tree entries, about 100 bytes each
	maxCachedBlob      = 64 << 10
	maxCachedBlobBytes = 16 << 20
)

// objectCache holds the git objects a source's snapshots decoded: trees
// (their valid entries, sorted) and small blobs, by hash. Objects are
// immutable, so every snapshot of the source shares it: a commit that
// changes one app of 1,000 reads the other 999 manifests and folders from
// memory (each snapshot used to look every path up from the root, decoding
// the 1,000-entry apps folder once per file it read).
type objectCache struct {
	trees bounded[object.TreeEntry] // bounded by their entries
	blobs bounded[byte]             // bounded by their bytes
}

func newObjectCache() *objectCache {
	return &objectCache{trees: bounded[object.TreeEntry]{max: maxCachedEntries}, blobs: bounded[byte]{max: maxCachedBlobBytes}}
}

// putBlob caches the content of blob h, if it is small.
func (c *objectCache) putBlob(h plumbing.Hash, data []byte) {
	if len(data) <= maxCachedBlob {
		c.blobs.put(h, data)
	}
}

// bounded maps hashes to slices of at most max elements in all; a put
// past the bound starts it over.
type bounded[E any] struct {
	mu  sync.Mutex
	m   map[plumbing.Hash][]E
	n   int // elements held
	max int
}

// get returns the slice of h; callers must not change it.
func (b *bounded[E]) get(h plumbing.Hash) ([]E, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	v, ok := b.m[h]
	return v, ok
}

func (b *bounded[E]) put(h plumbing.Hash, v []E) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.m[h]; ok {
		return
	}
	if b.m == nil || b.n+len(v) > b.max {
		b.m, b.n = map[plumbing.Hash][]E{}, 0
	}
	b.m[h] = v
	b.n += len(v)
}
