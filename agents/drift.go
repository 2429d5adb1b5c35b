package agents

import (
	"context"
	"fmt"
	"time"

	"github.com/driftless/driftless/internal/ticks"
)

// driftLoop repairs drift between the cell and containerd every interval
// (syncContainers). It runs apart from the Consul sync: one engine away
// does not hold up the other's repairs.
func (a *Agent) driftLoop(ctx context.Context) {
	ticks.Every(ctx, a.cfg.SyncInterval, func() {
		if err := a.syncContainers(ctx); err != nil {
			a.log.Warn("comparing containers with instances", "err", err)
		}
	})
}

// syncContainers removes the containers labelled as driftless instances
// that are not instances of this cell (started by hand, or left by a
// failed removal). Instances are added to the cell's table before their
// container is created and removed from it after, so a container never in
// the table was not made by this agent process or the one it adopted from.
func (a *Agent) syncContainers(ctx context.Context) error {
	conts, err := a.runner.List(ctx)
	if err != nil {
		return fmt.Errorf("comparing containers with instances: %w", err)
	}
	for _, c := range conts {
		guid := c.Labels[LabelGUID]
		if guid == "" {
			continue
		}
		a.mu.Lock()
		_, known := a.insts[guid]
		a.mu.Unlock()
		if known {
			continue
		}
		a.log.Warn("container that is no instance of this cell: removing it", "container", guid, "app", c.Labels[LabelApp])
		if err := a.runner.Engine.Stop(ctx, guid, time.Second); err != nil {
			a.log.Warn("removing a foreign container", "container", guid, "err", err)
		}
	}
	return nil
}
