package agents

import (
	"context"
	"time"

	"github.com/driftless/driftless/bus"
	"github.com/driftless/driftless/internal/ticks"
	"github.com/driftless/driftless/model"
)

// heartbeatLoop reports every instance on the cell every interval.
func (a *Agent) heartbeatLoop(ctx context.Context) {
	ticks.NowAndEvery(ctx, a.cfg.HeartbeatInterval, a.sendHeartbeat)
}

// Heartbeat is the cell's current report.
func (a *Agent) Heartbeat() bus.CellHeartbeat {
	a.mu.Lock()
	defer a.mu.Unlock()
	hb := bus.CellHeartbeat{
		CellID: a.cfg.CellID, BootID: a.bootID, Generation: a.gen,
		Address: a.cfg.Address, Zone: a.cfg.Zone, Capacity: a.cfg.Capacity, StagingSlots: cap(a.stage),
		Instances: make([]model.InstanceStatus, 0, len(a.insts)),
		SentAt:    time.Now().UTC(),
	}
	for _, in := range a.insts {
		hb.Instances = append(hb.Instances, in.status)
	}
	return hb
}

func (a *Agent) sendHeartbeat() {
	if err := a.pub.Publish(bus.HeartbeatSubject(a.cfg.CellID), a.Heartbeat()); err != nil {
		a.log.Warn("sending heartbeat", "err", err)
	}
}
