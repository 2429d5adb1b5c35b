package reconciler

import (
	"context"
	"fmt"
	"time"

	"github.com/driftless/driftless/blobstore"
	"github.com/driftless/driftless/internal/ticks"
	"github.com/driftless/driftless/model"
	"github.com/driftless/driftless/reconciler/decide"
	"github.com/driftless/driftless/reconciler/executor"
	"github.com/driftless/driftless/reconciler/plan"
)

// Kick asks for a convergence as soon as possible.
func (c *Controller) Kick() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

func (c *Controller) convergeLoop(ctx context.Context) {
	ticks.EveryOrWhen(ctx, c.cfg.ConvergeInterval, c.kick, func() { c.converge(ctx) })
}

// converge plans once and applies the plan.
func (c *Controller) converge(ctx context.Context) {
	now := time.Now()
	c.mu.Lock()
	if now.Sub(c.started) < c.cfg.Warmup {
		c.mu.Unlock()
		return
	}
	c.mu.Unlock()

	defer func() { c.metrics.converged(time.Since(now)) }()
	insts, cells := c.actual.Snapshot(now)
	for _, cr := range c.crashes.Observe(insts, now) {
		c.recordCrash(cr)
	}
	c.noteCells(insts, cells)
	apps := c.planApps()
	c.keepLogsOf(ctx, apps)
	c.checkServing(insts)
	p := plan.Compute(plan.Input{Apps: apps, Instances: insts, Cells: cells, Now: now})
	c.recordUnplaced(p.Unplaced)
	for _, rb := range p.Rollbacks {
		c.rollBack(ctx, rb)
	}
	if !p.NextCheck.IsZero() {
		c.wakeAt(p.NextCheck)
	}
	if len(p.Actions) == 0 && len(p.Rollbacks) == 0 {
		return
	}
	accepted := len(p.Rollbacks) > 0
	for _, r := range c.exec.Apply(ctx, p.Actions) {
		c.metrics.applied(r)
		c.applied(r)
		accepted = accepted || r.Err == nil
	}
	if accepted {
		c.Kick() // look again soon: replies may allow the next rollout step
	}
	// When every action failed (cells refusing or unreachable), the next
	// try waits for the next change or tick instead of spinning.
}

// wakeAt asks for a convergence at t (the end of a crash backoff).
func (c *Controller) wakeAt(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.wake != nil {
		c.wake.Stop()
	}
	c.wake = time.AfterFunc(time.Until(t)+10*time.Millisecond, c.Kick)
}

// planApps turns the desired state into planner input.
func (c *Controller) planApps() []plan.App {
	apps := c.store.Apps()
	out := make([]plan.App, 0, len(apps))
	for _, a := range apps {
		key := a.Key()
		pa := plan.App{Space: key.Space, Name: key.Name, Instances: a.Instances,
			RestartAt: c.crashes.RestartAt(model.ProcessKey{AppKey: key, Process: model.ProcessWeb})}
		_, asleep := c.store.Sleeping(key)
		if asleep {
			pa.Instances = 0 // an idle preview's app (sleep.go)
		}
		rel := c.store.Release(key, a.CurrentID)
		if !rel.Staged() {
			out = append(out, pa)
			continue
		}
		pa.Release = rel // a copy
		// Cells fetch the droplet from this controller's blob store,
		// whichever controller staged it.
		pa.Release.Run.Droplet = blobstore.ImageRef(c.cfg.BlobStoreURL, rel.Space, rel.App, rel.DropletDigest)
		if len(rel.Run.Services) > 0 {
			c.withBindings(&pa) // bindings.go
		}
		out = append(out, pa)
		// The release's other process types run the same droplet, with
		// their own count, command, limits and health check.
		for _, p := range rel.Processes {
			pp := pa
			pp.Process = p.Type
			pp.Instances = a.InstancesOf(p.Type)
			if asleep {
				pp.Instances = 0
			}
			pp.RestartAt = c.crashes.RestartAt(model.ProcessKey{AppKey: key, Process: p.Type})
			r := *pa.Release
			r.Run, _ = pa.Release.RunFor(p.Type)
			pp.Release = &r
			out = append(out, pp)
		}
	}
	return out
}

// applied records the outcome of one action.
func (c *Controller) applied(r executor.Result) {
	a := r.Action
	ev := model.Event{Space: a.Instance.Space, App: a.Instance.App, Instance: a.Instance.GUID,
		Index: a.Instance.Index, Process: a.Instance.Process, Cell: a.Cell, Release: a.Instance.ReleaseID}
	if r.Err != nil {
		ev.Kind, ev.Message = model.EventActionFailed, r.Err.Error()
		c.events.Record(ev)
		return
	}
	switch a.Kind {
	case plan.Start:
		c.actual.Accepted(a.Cell, r.Reply, model.InstanceStatus{InstanceRef: a.Instance, State: model.StateStarting,
			MemoryMB: a.Run.MemoryMB, DiskMB: a.Run.DiskMB, Since: time.Now()})
		ev.Kind, ev.Message = model.EventPlaced, "placed on cell "+a.Cell+": "+a.Reason
		switch a.Cause {
		case plan.CauseEvacuate:
			ev.Kind = model.EventEvacuated
		case plan.CauseRestart:
			ev.Kind = model.EventRestarted
		}
	case plan.Stop:
		c.actual.Accepted(a.Cell, r.Reply, model.InstanceStatus{InstanceRef: a.Instance, State: model.StateStopping, Since: time.Now()})
		ev.Kind, ev.Message = model.EventStopped, "stopping instance: "+a.Reason
	}
	c.events.Record(ev)
}

// recordCrash records a newly seen crash and, when its restart waits, the
// backoff.
func (c *Controller) recordCrash(cr Crash) {
	in := cr.Instance
	ev := model.Event{Kind: model.EventCrashed, Space: in.Space, App: in.App, Instance: in.GUID, Index: in.Index, Process: in.Process,
		Cell: cr.Cell, Release: in.ReleaseID,
		Message: fmt.Sprintf("instance crashed (exit status %d, crash %d in a row): %s", in.ExitStatus, cr.Record.Count, in.Reason)}
	c.events.Record(ev)
	if cr.Delay > 0 {
		ev.Kind, ev.Instance = model.EventBackoff, ""
		ev.Message = fmt.Sprintf("index %s crashed %d times in a row: next restart in %s", model.IndexKey{Process: in.Process, Index: in.Index}, cr.Record.Count, cr.Delay.Round(time.Second))
		c.events.Record(ev)
	}
}

// noteCells records cells that were lost or came back since the last look.
func (c *Controller) noteCells(insts []plan.Instance, cells []plan.Cell) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, cell := range cells {
		switch {
		case cell.Lost && !c.lostCells[cell.ID]:
			c.lostCells[cell.ID] = true
			n := 0
			for _, in := range insts {
				if in.Cell == cell.ID && (in.State == model.StateRunning || in.State == model.StateStarting) {
					n++
				}
			}
			c.events.Record(model.Event{Kind: model.EventCellLost, Cell: cell.ID,
				Message: fmt.Sprintf("no heartbeat from cell %s for %s: its %d instance(s) are placed elsewhere", cell.ID, c.cfg.LostAfter, n)})
		case !cell.Lost && c.lostCells[cell.ID]:
			delete(c.lostCells, cell.ID)
			c.events.Record(model.Event{Kind: model.EventCellBack, Cell: cell.ID,
				Message: "cell " + cell.ID + " reports again: duplicates of instances placed elsewhere are stopped"})
		}
	}
}

// rollBack abandons a release whose instances never became healthy: the
// release is marked failed (git asking for it again does nothing until a
// new commit changes it) and the app goes back to the release still serving
// (decide.Rollback). Nothing changes unless both writes succeed.
func (c *Controller) rollBack(ctx context.Context, rb plan.Rollback) {
	c.applyMu.Lock()
	defer c.applyMu.Unlock()
	u, ok, reason := decide.Rollback(rb, c.store.State())
	if !ok {
		if reason != "" && reason != decide.NothingToUndo {
			c.log.Warn("cannot roll back", "app", rb.App, "release", rb.Release, "reason", reason)
		}
		return
	}
	if u.Failed != nil {
		if err := c.store.PutRelease(ctx, *u.Failed); err != nil {
			c.storeFailed(rb.App, "rolling back", err)
			return
		}
	}
	if err := c.store.PutApp(ctx, u.App); err != nil {
		c.storeFailed(rb.App, "rolling back", err)
		return
	}
	c.crashes.Forget(rb.App)
	c.events.Record(model.Event{Kind: model.EventRolledBack, Space: rb.App.Space, App: rb.App.Name, Release: rb.Release,
		Message: fmt.Sprintf("release %s rolled back to %s: %s", rb.Release, u.To, rb.Reason)})
	c.Kick()
}

// storeFailed records a write of desired state that failed outside the
// application of a commit; the convergence that asked for it asks again.
func (c *Controller) storeFailed(key model.AppKey, doing string, err error) {
	c.events.Record(model.Event{Kind: model.EventStoreFailed, Space: key.Space, App: key.Name,
		Message: fmt.Sprintf("%s: %v", doing, err)})
}

// recordUnplaced remembers which instances fit nowhere, with an event the
// first time each does.
func (c *Controller) recordUnplaced(us []plan.Unplaced) {
	byApp := make(map[model.AppKey][]plan.Unplaced)
	for _, u := range us {
		byApp[u.App] = append(byApp[u.App], u)
	}
	c.mu.Lock()
	prev := c.unplaced
	c.unplaced = byApp
	c.mu.Unlock()
	for key, list := range byApp {
		if len(prev[key]) != len(list) {
			c.events.Record(model.Event{Kind: model.EventUnplaced, Space: key.Space, App: key.Name,
				Message: fmt.Sprintf("%d instance(s) cannot be placed: %s", len(list), list[0].Reason)})
		}
	}
}
