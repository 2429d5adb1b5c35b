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
	mu        sync.Mutex
	trees     map[plumbing.Hash][]object.TreeEntry
	entries   int
	blobs     map[plumbing.Hash][]byte
	blobBytes int
}

func newObjectCache() *objectCache {
	return &objectCache{trees: map[plumbing.Hash][]object.TreeEntry{}, blobs: map[plumbing.Hash][]byte{}}
}

// tree returns the cached entries of tree h; callers must not change them.
func (c *objectCache) tree(h plumbing.Hash) ([]object.TreeEntry, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	es, ok := c.trees[h]
	return es, ok
}

func (c *objectCache) putTree(h plumbing.Hash, es []object.TreeEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.trees[h]; ok {
		return
	}
	if c.entries+len(es) > maxCachedEntries {
		clear(c.trees)
		c.entries = 0
	}
	c.trees[h] = es
	c.entries += len(es)
}

// blob returns the cached content of blob h; callers must not change it.
func (c *objectCache) blob(h plumbing.Hash) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	b, ok := c.blobs[h]
	return b, ok
}

func (c *objectCache) putBlob(h plumbing.Hash, data []byte) {
	if len(data) > maxCachedBlob {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.blobs[h]; ok {
		return
	}
	if c.blobBytes+len(data) > maxCachedBlobBytes {
		clear(c.blobs)
		c.blobBytes = 0
	}
	c.blobs[h] = data
	c.blobBytes += len(data)
}
