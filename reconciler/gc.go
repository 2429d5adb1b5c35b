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
// never the current, previous or target release.
func (c *Controller) pruneReleases(ctx context.Context, app model.App) error {
	rels := c.store.Releases(app.Key())
	if len(rels) <= KeepReleases {
		return nil
	}
	slices.SortFunc(rels, func(a, b model.Release) int {
		return cmp.Or(b.CreatedAt.Compare(a.CreatedAt), cmp.Compare(a.ID, b.ID))
	})
	var old []string
	for _, r := range rels[KeepReleases:] {
		if r.ID != app.CurrentID && r.ID != app.PreviousID && r.ID != app.ReleaseID {
			old = append(old, r.ID)
		}
	}
	return c.store.DeleteReleases(ctx, app.Key(), old)
}

// collectGarbage deletes the blobs that no kept release needs: every blob
// of a kept release's droplet (manifest, config, layers) is kept, and so
// is every blob younger than gcGrace; staging-cache entries whose droplet
// is gone are dropped. It returns how many blobs it deleted.
func (c *Controller) collectGarbage(ctx context.Context, now time.Time) (int, error) {
	c.applyMu.Lock()
	for _, app := range c.store.Apps() {
		if err := c.pruneReleases(ctx, app); err != nil {
			c.log.Warn("deleting old releases", "app", app.Key(), "err", err)
		}
	}
	droplets := c.store.Droplets()
	c.applyMu.Unlock()

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
	if err := c.store.ForgetCached(ctx, func(d string) bool { return !c.cfg.Blobs.Has(d) }); err != nil {
		return deleted, fmt.Errorf("collecting garbage: %w", err)
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

// forgetCells removes from the catalog the nodes, and the registrations,
// of cells gone for good (catalog.ForgetCells): cells that hold no key and
// that this controller does not hear either.
func (c *Controller) forgetCells(now time.Time) error {
	if c.cfg.Consul == nil {
		return nil
	}
	heard := map[string]bool{}
	for _, cell := range c.actual.Cells(now) {
		if !cell.Lost {
			heard[cell.ID] = true
		}
	}
	forgotten, err := catalog.ForgetCells(c.cfg.Consul, func(id string) bool { return heard[id] })
	for _, id := range forgotten {
		c.log.Info("cell gone for good: its registrations are removed from the catalog", "cell", id)
	}
	return err
}

// gcLoop collects garbage every interval while the controller leads: old
// releases, unused blobs, and the catalog nodes of cells gone for good.
func (c *Controller) gcLoop(ctx context.Context, every time.Duration) {
	ticks.Every(ctx, every, func() {
		if _, err := c.collectGarbage(ctx, time.Now()); err != nil {
			c.log.Warn("garbage collection", "err", err)
		}
		if err := c.forgetCells(time.Now()); err != nil {
			c.log.Warn("forgetting cells gone for good", "err", err)
		}
	})
}
