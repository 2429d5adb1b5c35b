package reconciler

import (
	"context"
)

// load reads the desired state stored in Consul KV by a previous run, so a
// restarted controller keeps every app's current release (and its droplet)
// before it has fetched anything, and each source's last seen and applied
// commits.
func (c *Controller) load(ctx context.Context) error {
	warnings, err := c.store.Load(ctx)
	if err != nil {
		return err
	}
	for _, w := range warnings {
		c.log.Warn("loading desired state", "err", w)
	}
	for _, se := range c.sources {
		st, found, err := c.store.SourceStatus(ctx, se.name)
		if err != nil {
			return err
		}
		if !found {
			continue
		}
		// Keep what was seen and applied; the configuration wins for the rest.
		c.mu.Lock()
		se.status.LastSeen, se.status.LastSeenAt = st.LastSeen, st.LastSeenAt
		se.status.LastApplied, se.status.LastAppliedAt = st.LastApplied, st.LastAppliedAt
		se.status.Errors, se.status.Warnings = st.Errors, st.Warnings
		c.mu.Unlock()
	}
	c.log.Info("desired state loaded", "apps", len(c.store.Apps()))
	return nil
}
