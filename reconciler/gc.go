package reconciler

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"slices"
	"strings"
	"time"

	"github.com/driftless/driftless/catalog"
	"github.com/driftless/driftless/internal/ticks"
	"github.com/driftless/driftless/model"
)

// Garbage collection of releases and blobs.
const (
	// KeepReleases is how many releases of an app are kept (for rollbacks
	// and reverts); the current, previous and target ones always are.
	KeepReleases = 5
	// gcGrace spares blobs younger than this: sources of stagings in
	// flight, images being pushed.
	gcGrace = time.Hour
)

// pruneReleases forgets the oldest releases of an app past KeepReleases,
// never the current, previous or target release. Caller holds c.mu.
func (c *Controller) pruneReleases(ctx context.Context, key model.AppKey) {
	app := c.apps[key]
	if app == nil {
		return
	}
	var rels []*model.Release
	prefix := releaseKey(key.Space, key.Name, "")
	for k, r := range c.releases {
		if strings.HasPrefix(k, prefix) {
			rels = append(rels, r)
		}
	}
	if len(rels) <= KeepReleases {
		return
	}
	slices.SortFunc(rels, func(a, b *model.Release) int {
		return cmp.Or(b.CreatedAt.Compare(a.CreatedAt), cmp.Compare(a.ID, b.ID))
	})
	for _, r := range rels[KeepReleases:] {
		if r.ID == app.CurrentID || r.ID == app.PreviousID || r.ID == app.ReleaseID {
			continue
		}
		delete(c.releases, releaseKey(r.Space, r.App, r.ID))
		if err := c.kv.Delete(ctx, catalog.ReleaseKey(r.Space, r.App, r.ID)); err != nil {
			c.log.Warn("deleting an old release", "app", r.App, "release", r.ID, "err", err)
		}
	}
}

// collectGarbage deletes the blobs that no kept release needs: every blob
// of a kept release's droplet (manifest, config, layers) is kept, and so
// is every blob younger than gcGrace; staging-cache entries whose droplet
// is gone are dropped. It returns how many blobs it deleted.
func (c *Controller) collectGarbage(ctx context.Context, now time.Time) (int, error) {
	c.mu.Lock()
	for key := range c.apps {
		c.pruneReleases(ctx, key)
	}
	var droplets []string
	for _, r := range c.releases {
		if r.DropletDigest != "" {
			droplets = append(droplets, r.DropletDigest)
		}
	}
	c.mu.Unlock()

	keep := map[string]bool{}
	for _, d := range droplets {
		blobs, err := c.imageBlobs(d)
		if err != nil {
			return 0, fmt.Errorf("collecting garbage: droplet %s: %w", d, err)
		}
		for _, b := range blobs {
			keep[b] = true
		}
	}
	all, err := c.cfg.Blobs.List()
	if err != nil {
		return 0, fmt.Errorf("collecting garbage: %w", err)
	}
	deleted := 0
	for _, d := range all {
		if keep[d] {
			continue
		}
		if t, err := c.cfg.Blobs.ModTime(d); err != nil || now.Sub(t) < gcGrace {
			continue
		}
		if err := c.cfg.Blobs.Delete(d); err != nil {
			return deleted, fmt.Errorf("collecting garbage: %w", err)
		}
		deleted++
	}
	cache, err := c.kv.List(ctx, catalog.KVPrefix+"droplets/")
	if err != nil {
		return deleted, fmt.Errorf("collecting garbage: staging cache: %w", err)
	}
	for k, data := range cache {
		var entry struct {
			Droplet string `json:"droplet"`
		}
		if json.Unmarshal(data, &entry) == nil && !c.cfg.Blobs.Has(entry.Droplet) {
			_ = c.kv.Delete(ctx, k)
		}
	}
	if deleted > 0 {
		c.events.Record(model.Event{Kind: model.EventGarbage, Message: fmt.Sprintf("deleted %d blob(s) no kept release uses", deleted)})
	}
	return deleted, nil
}

// imageBlobs lists the blobs of an image manifest in the blob store: the
// manifest, its config and its layers (a missing manifest has none).
func (c *Controller) imageBlobs(manifest string) ([]string, error) {
	rc, _, err := c.cfg.Blobs.Open(manifest)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil // already gone: nothing to keep
	}
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(rc, 4<<20))
	if err != nil {
		return nil, err
	}
	var m struct {
		Config struct {
			Digest string `json:"digest"`
		} `json:"config"`
		Layers []struct {
			Digest string `json:"digest"`
		} `json:"layers"`
	}
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("reading the image manifest: %w", err)
	}
	out := []string{manifest, m.Config.Digest}
	for _, l := range m.Layers {
		out = append(out, l.Digest)
	}
	return out, nil
}

// gcLoop collects garbage every interval while the controller leads.
func (c *Controller) gcLoop(ctx context.Context, every time.Duration) {
	ticks.Every(ctx, every, func() {
		if _, err := c.collectGarbage(ctx, time.Now()); err != nil {
			c.log.Warn("garbage collection", "err", err)
		}
	})
}
