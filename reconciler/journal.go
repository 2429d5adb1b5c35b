package reconciler

import (
	"context"
	"time"

	"github.com/driftless/driftless/reconciler/plan"
)

// Journal keeps the log lines of a space (journal.Journal): the stream
// must exist before the space's apps stage or start, or their lines are
// lost.
type Journal interface {
	EnsureSpace(ctx context.Context, space string) error
}

// keepLogs makes sure the journal keeps space's lines; a failure is
// logged (at most once a minute per space) and retried on the next call:
// the apps run without kept logs rather than not at all.
func (c *Controller) keepLogs(ctx context.Context, space string) {
	if c.cfg.Journal == nil {
		return
	}
	if err := c.cfg.Journal.EnsureSpace(ctx, space); err != nil {
		c.mu.Lock()
		last := c.journalWarned[space]
		now := time.Now()
		warn := now.Sub(last) > time.Minute
		if warn {
			c.journalWarned[space] = now
		}
		c.mu.Unlock()
		if warn {
			c.log.Warn("keeping the space's logs", "space", space, "err", err)
		}
	}
}

// keepLogsOf is keepLogs for the spaces of apps.
func (c *Controller) keepLogsOf(ctx context.Context, apps []plan.App) {
	seen := map[string]bool{}
	for _, a := range apps {
		if !seen[a.Space] {
			seen[a.Space] = true
			c.keepLogs(ctx, a.Space)
		}
	}
}
