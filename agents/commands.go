package agents

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/driftless/driftless/bus"
	"github.com/driftless/driftless/model"
)

// handleStart serves bus.VerbStart: it accepts the instance at once
// (STARTING) and brings it up in the background, so the controller never
// waits for a pull or a health check.
func (a *Agent) handleStart(m *nats.Msg) {
	var req bus.StartInstance
	if err := bus.Decode(m, &req); err != nil {
		a.reply(m, err)
		return
	}
	a.trust(req.Run.Droplet)
	a.mu.Lock()
	defer a.mu.Unlock()
	a.replyLocked(m, a.acceptLocked(req.Instance, req.Run))
}

// acceptLocked accepts an instance to start: STARTING at once, launched in
// the background. A retried request (the instance is known) is accepted
// again. Caller holds a.mu.
func (a *Agent) acceptLocked(ref model.InstanceRef, run model.RunSpec) error {
	if ref.GUID == "" || ref.App == "" || ref.Space == "" || run.Droplet == "" {
		return fmt.Errorf("start needs an instance guid, app, space and droplet")
	}
	if _, exists := a.insts[ref.GUID]; exists {
		return nil // a retried request: already accepted
	}
	if free := a.freeMemoryLocked(); a.cfg.Capacity.MemoryMB > 0 && run.MemoryMB > free {
		return fmt.Errorf("cell %s has %d MB free, instance needs %d MB", a.cfg.CellID, free, run.MemoryMB)
	}
	ctx, cancel := context.WithCancel(a.ctx)
	in := &instance{
		status:   model.InstanceStatus{InstanceRef: ref, MemoryMB: run.MemoryMB, DiskMB: run.DiskMB},
		run:      run,
		cancel:   cancel,
		launched: make(chan struct{}),
		logs:     a.instanceLogLimiter(run),
	}
	in.life = a.instanceLifecycleLocked(in)
	a.insts[ref.GUID] = in
	a.metrics.started(ref, time.Now())
	a.setState(in, model.StateStarting, "accepted")
	a.wg.Go(func() {
		defer close(in.launched)
		a.launch(ctx, in)
	})
	return nil
}

// handleStop serves bus.VerbStop. Stopping an instance the cell does not
// have succeeds: the request may be a retry.
func (a *Agent) handleStop(m *nats.Msg) {
	var req bus.StopInstance
	if err := bus.Decode(m, &req); err != nil {
		a.reply(m, err)
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.stopLocked(req.GUID, req.Reason)
	a.replyLocked(m, nil)
}

// stopLocked makes an instance STOPPING and stops it in the background;
// an unknown or already stopping instance is left as it is. Caller holds
// a.mu.
func (a *Agent) stopLocked(guid, reason string) {
	in := a.insts[guid]
	if in == nil || in.stopping {
		return
	}
	// Whether it was RUNNING is read before it becomes STOPPING: stop
	// drains a running instance only.
	in.stopping, in.drain = true, in.status.State == model.StateRunning
	a.setState(in, model.StateStopping, reason)
	a.wg.Go(func() { a.stop(in) })
}

// freeMemoryLocked is the memory not promised to instances. Caller holds a.mu.
func (a *Agent) freeMemoryLocked() int64 {
	used := int64(0)
	for _, in := range a.insts {
		if in.status.State != model.StateCrashed {
			used += in.status.MemoryMB
		}
	}
	return a.cfg.Capacity.MemoryMB - used
}

func (a *Agent) reply(m *nats.Msg, err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.replyLocked(m, err)
}

// replyLocked answers a command with the cell's generation. Caller holds a.mu.
func (a *Agent) replyLocked(m *nats.Msg, err error) {
	r := bus.Reply{OK: err == nil, BootID: a.bootID, Generation: a.gen}
	if err != nil {
		r.Error = err.Error()
		a.log.Warn("command refused", "subject", m.Subject, "err", err)
	}
	if err := bus.Respond(m, r); err != nil {
		a.log.Warn("replying to command", "err", err)
	}
}
