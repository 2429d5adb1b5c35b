package agents

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/driftless/driftless/agents/runtime"
	"github.com/driftless/driftless/model"
)

// adopt takes over the containers a previous agent process left behind
// (found by their labels) instead of killing them: a running one is RUNNING
// again at once (its Consul registration was left in place), an exited one
// is reported CRASHED for the controller to replace. A container without an
// instance record, and network attachments or records without a container,
// are removed.
func (a *Agent) adopt(ctx context.Context) error {
	conts, err := a.rt.List(ctx)
	if err != nil {
		return fmt.Errorf("listing containers to adopt: %w", err)
	}
	now := time.Now().UTC()
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, c := range conts {
		guid := c.Labels[LabelGUID]
		if c.Labels[LabelStaging] != "" {
			// A compile step of a staging that died with the last agent.
			if err := a.rt.Stop(ctx, c.ID, time.Second); err != nil {
				a.log.Warn("removing a leftover compile container", "id", c.ID, "err", err)
			}
			continue
		}
		if guid == "" {
			continue
		}
		rec, err := a.readRecord(guid)
		if err != nil {
			a.log.Warn("container without a readable record: removing it", "guid", guid, "err", err)
			att, _ := a.net.Lookup(guid)
			port := 0
			if att != nil {
				port = att.HostPort
			}
			if err := a.removeContainer(ctx, guid, port); err != nil {
				a.log.Warn("removing orphan container", "guid", guid, "err", err)
			}
			continue
		}
		if err := a.ports.Reserve(rec.HostPort); err != nil {
			a.log.Warn("adopted instance's host port", "guid", guid, "port", rec.HostPort, "err", err)
		}
		ictx, cancel := context.WithCancel(a.ctx)
		in := &instance{
			status: model.InstanceStatus{InstanceRef: rec.Instance, HostPort: rec.HostPort,
				MemoryMB: rec.Run.MemoryMB, DiskMB: rec.Run.DiskMB, Since: now},
			run:    rec.Run,
			cancel: cancel,
		}
		a.insts[guid] = in
		if c.Status != runtime.StatusRunning {
			// Whether it ever passed its health check is not known: say it
			// did, so that this crash never counts as a failed rollout.
			in.status.WasHealthy = true
			in.status.ExitStatus = int(c.ExitStatus)
			in.status.LastOutput = runtime.TailLines(a.rt.LogPath(guid), 10)
			a.setState(in, model.StateCrashed, fmt.Sprintf("exited with status %d while the agent was away", c.ExitStatus))
			cancel()
			continue
		}
		exits, err := a.rt.Wait(ictx, guid)
		if err != nil {
			a.setState(in, model.StateCrashed, fmt.Sprintf("adopting the container: %v", err))
			cancel()
			continue
		}
		in.status.WasHealthy = true
		a.setState(in, model.StateRunning, "adopted after an agent restart")
		a.wg.Go(func() { a.watchExit(ictx, in, exits) })
		addr := net.JoinHostPort(a.cfg.Address, strconv.Itoa(rec.HostPort))
		a.wg.Go(func() { a.watchHealth(ictx, in, addr) })
		a.wg.Go(func() { a.shipLogs(ictx, rec.Instance, a.rt.LogPath(guid), true) })
	}
	a.cleanLeftovers(ctx)
	a.log.Info("adopted containers", "instances", len(a.insts))
	return nil
}

// cleanLeftovers removes network attachments and records that belong to no
// adopted instance (an agent that died half-way through a start or stop).
// Caller holds a.mu.
func (a *Agent) cleanLeftovers(ctx context.Context) {
	if atts, err := a.net.Attachments(); err == nil {
		for _, att := range atts {
			if _, ok := a.insts[att.ID]; !ok {
				if err := a.net.Detach(ctx, att.ID, att.HostPort, ContainerPort); err != nil {
					a.log.Warn("removing leftover network attachment", "id", att.ID, "err", err)
				}
			}
		}
	}
	records, _ := filepath.Glob(filepath.Join(a.cfg.DataDir, "instances", "*.json"))
	for _, p := range records {
		guid := strings.TrimSuffix(filepath.Base(p), ".json")
		if _, ok := a.insts[guid]; !ok {
			_ = os.Remove(p)
		}
	}
}
