package reconciler

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/driftless/driftless/catalog"
	"github.com/driftless/driftless/model"
)

// load reads the desired state stored in Consul KV by a previous run, so a
// restarted controller keeps every app's current release (and its droplet)
// before it has fetched anything.
func (c *Controller) load(ctx context.Context) error {
	apps, err := c.kv.List(ctx, catalog.AppsPrefix)
	if err != nil {
		return fmt.Errorf("loading desired state: %w", err)
	}
	rels, err := c.kv.List(ctx, catalog.KVPrefix+"releases/")
	if err != nil {
		return fmt.Errorf("loading releases: %w", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for key, data := range apps {
		var a model.App
		if err := json.Unmarshal(data, &a); err != nil {
			c.log.Warn("ignoring unreadable app record", "key", key, "err", err)
			continue
		}
		c.apps[model.AppKey{Space: a.Space, Name: a.Name}] = &a
	}
	for key, data := range rels {
		var r model.Release
		if err := json.Unmarshal(data, &r); err != nil {
			c.log.Warn("ignoring unreadable release", "key", key, "err", err)
			continue
		}
		c.releases[releaseKey(r.Space, r.App, r.ID)] = &r
	}
	for _, se := range c.sources {
		var st = se.status
		if found, err := c.kv.Get(ctx, catalog.SourceKey(se.src.Name()), &st); err == nil && found {
			// Keep what was seen and applied; the configuration wins for the rest.
			se.status.LastSeen, se.status.LastSeenAt = st.LastSeen, st.LastSeenAt
			se.status.LastApplied, se.status.LastAppliedAt = st.LastApplied, st.LastAppliedAt
			se.status.Errors, se.status.Warnings = st.Errors, st.Warnings
		}
	}
	c.log.Info("desired state loaded", "apps", len(c.apps), "releases", len(c.releases))
	return nil
}

func (c *Controller) saveApp(ctx context.Context, a *model.App) {
	if err := c.kv.Put(ctx, catalog.AppKey(a.Space, a.Name), a); err != nil {
		c.log.Error("saving app", "app", a.Name, "err", err)
	}
}

func (c *Controller) saveRelease(ctx context.Context, r *model.Release) {
	if err := c.kv.Put(ctx, catalog.ReleaseKey(r.Space, r.App, r.ID), r); err != nil {
		c.log.Error("saving release", "app", r.App, "release", r.ID, "err", err)
	}
}

func (c *Controller) deleteApp(ctx context.Context, key model.AppKey) {
	if err := c.kv.Delete(ctx, catalog.AppKey(key.Space, key.Name)); err != nil {
		c.log.Error("deleting app", "app", key.Name, "err", err)
	}
	if err := c.kv.DeleteTree(ctx, catalog.ReleasesPrefix(key.Space, key.Name)); err != nil {
		c.log.Error("deleting releases", "app", key.Name, "err", err)
	}
	prefix := releaseKey(key.Space, key.Name, "")
	for k := range c.releases {
		if strings.HasPrefix(k, prefix) {
			delete(c.releases, k)
		}
	}
}

func (c *Controller) saveSource(ctx context.Context, se *sourceEntry) {
	if err := c.kv.Put(ctx, catalog.SourceKey(se.src.Name()), se.status); err != nil {
		c.log.Error("saving source status", "source", se.src.Name(), "err", err)
	}
}
