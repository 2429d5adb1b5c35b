package agents

import (
	"context"
	"fmt"

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
	ref := req.Instance
	if ref.GUID == "" || ref.App == "" || ref.Space == "" || req.Run.Droplet == "" {
		a.reply(m, fmt.Errorf("start needs an instance guid, app, space and droplet"))
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, exists := a.insts[ref.GUID]; exists {
		a.replyLocked(m, nil) // a retried request: already accepted
		return
	}
	if free := a.freeMemoryLocked(); a.cfg.Capacity.MemoryMB > 0 && req.Run.MemoryMB > free {
		a.replyLocked(m, fmt.Errorf("cell %s has %d MB free, instance needs %d MB", a.cfg.CellID, free, req.Run.MemoryMB))
		return
	}
	ctx, cancel := context.WithCancel(a.ctx)
	in := &instance{
		status:   model.InstanceStatus{InstanceRef: ref, MemoryMB: req.Run.MemoryMB, DiskMB: req.Run.DiskMB},
		run:      req.Run,
		cancel:   cancel,
		launched: make(chan struct{}),
	}
	a.insts[ref.GUID] = in
	a.setState(in, model.StateStarting, "accepted")
	a.replyLocked(m, nil)
	a.wg.Go(func() {
		defer close(in.launched)
		a.launch(ctx, in)
	})
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
	in := a.insts[req.GUID]
	if in == nil || in.stopping {
		a.replyLocked(m, nil)
		return
	}
	in.stopping = true
	a.setState(in, model.StateStopping, req.Reason)
	a.replyLocked(m, nil)
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
