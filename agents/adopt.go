package agents

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/driftless/driftless/agents/runtime"
	"github.com/driftless/driftless/model"
)

// adopt takes over the containers a previous agent process left behind
// (found by their labels) instead of killing them: a running one is RUNNING
// again at once (its Consul registration was left in place), an exited one
// is reported CRASHED for the controller to replace. Either gets its
// lifecycle with every step done, for its stop to undo. A container
// without an instance record, and network attachments or records without
// a container, are removed.
func (a *Agent) adopt(ctx context.Context) error {
	conts, err := a.runner.List(ctx)
	if err != nil {
		return fmt.Errorf("adopting containers: %w", err)
	}
	for _, c := range conts {
		guid := c.Labels[LabelGUID]
		if c.Labels[LabelStaging] != "" {
			// A compile step of a staging that died with the last agent.
			if err := a.runner.Engine.Stop(ctx, c.ID, time.Second); err != nil {
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
			port := 0
			if att, ok := a.net.Lookup(guid); ok && att != nil {
				port = att.HostPort
			}
			if err := a.teardown(ctx, guid, port); err != nil {
				a.log.Warn("removing orphan container", "guid", guid, "err", err)
			}
			continue
		}
		a.adoptOne(ctx, c, rec)
	}
	a.cleanLeftovers(ctx)
	a.mu.Lock()
	n := len(a.insts)
	a.mu.Unlock()
	a.log.Info("adopted containers", "instances", n)
	return nil
}

// adoptOne takes over the instance of container c, whose record is rec.
func (a *Agent) adoptOne(ctx context.Context, c runtime.Container, rec record) {
	guid := rec.Instance.GUID
	if err := a.ports.Reserve(rec.HostPort); err != nil {
		a.log.Warn("adopted instance's host port", "guid", guid, "port", rec.HostPort, "err", err)
	}
	ictx, cancel := context.WithCancel(a.ctx)
	in := &instance{
		status: model.InstanceStatus{InstanceRef: rec.Instance, HostPort: rec.HostPort,
			MemoryMB: rec.Run.MemoryMB, DiskMB: rec.Run.DiskMB, Since: time.Now().UTC()},
		run:    rec.Run,
		cancel: cancel,
		logs:   a.instanceLogLimiter(rec.Run),
	}
	var exits <-chan runtime.Exit
	var watchErr error
	if c.Status == runtime.StatusRunning {
		exits, watchErr = a.runner.Watch(ictx, guid)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	in.life = a.instanceLifecycleLocked(in).done()
	a.insts[guid] = in
	switch {
	case c.Status != runtime.StatusRunning:
		// Whether it ever passed its health check is not known: say it
		// did, so that this crash never counts as a failed rollout.
		in.status.WasHealthy = true
		in.status.LastOutput = runtime.TailLines(a.runner.LogPath(guid), 10)
		reason := "its process had ended before the agent restarted" // reaped by crash: its status went with its task
		if c.Status != runtime.StatusAbsent {
			in.status.ExitStatus = int(c.ExitStatus)
			reason = fmt.Sprintf("exited with status %d while the agent was away", c.ExitStatus)
		}
		a.setState(in, model.StateCrashed, reason)
		cancel()
	case watchErr != nil:
		a.setState(in, model.StateCrashed, fmt.Sprintf("adopting the container: %v", watchErr))
		cancel()
	default:
		in.status.WasHealthy = true
		a.setState(in, model.StateRunning, "adopted after an agent restart")
		a.wg.Go(func() { a.watchExit(ictx, in, exits) })
		addr := a.instanceAddr(rec.HostPort)
		a.wg.Go(func() { a.watchHealth(ictx, in, addr, false) })
		a.wg.Go(func() { a.watchReadiness(ictx, in, addr, false) })
		a.wg.Go(func() { a.shipLogs(ictx, rec.Instance, in.logs, a.runner.LogPath(guid), true) })
		a.wg.Go(func() { a.adoptSidecars(ictx, in) }) // sidecars.go
	}
}

// cleanLeftovers removes network attachments, bindings folders and records
// that belong to no adopted instance (an agent that died half-way through
// a start or stop).
func (a *Agent) cleanLeftovers(ctx context.Context) {
	a.mu.Lock()
	known := make(map[string]bool, len(a.insts))
	for guid := range a.insts {
		known[guid] = true
	}
	a.mu.Unlock()
	if atts, err := a.net.Attachments(); err == nil {
		for _, att := range atts {
			if !known[att.ID] {
				if err := a.net.Detach(ctx, att.ID, att.HostPort, ContainerPort); err != nil {
					a.log.Warn("removing leftover network attachment", "id", att.ID, "err", err)
				}
			}
		}
	}
	dirs, _ := os.ReadDir(filepath.Join(a.cfg.DataDir, "bindings"))
	for _, d := range dirs {
		if !known[d.Name()] {
			if err := a.removeBindings(d.Name()); err != nil {
				a.log.Warn("removing leftover bindings", "guid", d.Name(), "err", err)
			}
		}
	}
	records, _ := filepath.Glob(filepath.Join(a.cfg.DataDir, "instances", "*.json"))
	for _, p := range records {
		guid := strings.TrimSuffix(filepath.Base(p), ".json")
		if !known[guid] {
			_ = os.Remove(p)
		}
	}
}
