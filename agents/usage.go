package agents

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/driftless/driftless/agents/runtime"
	"github.com/driftless/driftless/internal/ticks"
	"github.com/driftless/driftless/model"
)

// UsageReader reads what a container uses (*runtime.Runtime; a fake in
// unit tests).
type UsageReader interface {
	// Stats reads the CPU time and memory of container id's processes.
	Stats(ctx context.Context, id string) (runtime.Stats, error)
	// DiskUsage reads the bytes container id's writable layer holds.
	DiskUsage(ctx context.Context, id string) (int64, error)
}

// Usage reads: every Config.UsageInterval for CPU and memory, at most
// every diskEvery for the disk (a walk of the writable layer's files).
const (
	DefaultUsageInterval = 5 * time.Second
	diskEvery            = 30 * time.Second
	usageReadTimeout     = 5 * time.Second
)

// usage is what reads the instances' usage, and when each one's disk
// was last read.
type usage struct {
	reader UsageReader
	mu     sync.Mutex
	diskAt map[string]time.Time
}

// usageLoop reads the usage of every instance every interval into its
// status (heartbeats carry it) until ctx ends.
func (a *Agent) usageLoop(ctx context.Context) {
	if a.usage == nil || a.usage.reader == nil {
		return
	}
	ticks.NowAndEvery(ctx, a.cfg.UsageInterval, func() { a.readUsage(ctx) })
}

// readUsage reads the usage of every STARTING or RUNNING instance once.
func (a *Agent) readUsage(ctx context.Context) {
	type target struct {
		guid string
		prev *model.InstanceUsage
	}
	a.mu.Lock()
	targets := make([]target, 0, len(a.insts))
	for guid, in := range a.insts {
		if !in.stopping && in.status.State.Active() {
			targets = append(targets, target{guid, in.status.Usage})
		}
	}
	a.mu.Unlock()
	u := a.usage
	u.mu.Lock()
	for guid := range u.diskAt { // instances gone
		if !a.has(guid) {
			delete(u.diskAt, guid)
		}
	}
	u.mu.Unlock()
	for _, t := range targets {
		if ctx.Err() != nil {
			return
		}
		rctx, cancel := context.WithTimeout(ctx, usageReadTimeout)
		st, err := u.reader.Stats(rctx, t.guid)
		if err != nil {
			cancel()
			if !errors.Is(err, runtime.ErrNotFound) && ctx.Err() == nil {
				a.log.Debug("reading an instance's usage", "guid", t.guid, "err", err)
			}
			continue // not started yet, or gone
		}
		now := time.Now().UTC()
		next := nextUsage(t.prev, st, now)
		u.mu.Lock()
		readDisk := now.Sub(u.diskAt[t.guid]) >= diskEvery
		u.mu.Unlock()
		if readDisk {
			if d, err := u.reader.DiskUsage(rctx, t.guid); err == nil {
				next.DiskBytes = d
				u.mu.Lock()
				u.diskAt[t.guid] = now
				u.mu.Unlock()
			} else if ctx.Err() == nil {
				a.log.Debug("reading an instance's disk usage", "guid", t.guid, "err", err)
			}
		}
		cancel()
		a.mu.Lock()
		if in := a.insts[t.guid]; in != nil {
			in.status.Usage = &next
		}
		a.mu.Unlock()
	}
}

// has reports whether the cell has instance guid.
func (a *Agent) has(guid string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.insts[guid] != nil
}

// nextUsage is the usage read at now (st), after prev (nil for the first
// read): CPU percent is the CPU time used between the two reads over the
// time between them; the disk is prev's until it is read again.
func nextUsage(prev *model.InstanceUsage, st runtime.Stats, now time.Time) model.InstanceUsage {
	u := model.InstanceUsage{At: now, CPUSeconds: st.CPU.Seconds(), MemoryBytes: st.MemoryBytes}
	if prev == nil {
		return u
	}
	u.DiskBytes = prev.DiskBytes
	if dt := now.Sub(prev.At).Seconds(); dt > 0 && u.CPUSeconds >= prev.CPUSeconds {
		u.CPUPercent = 100 * (u.CPUSeconds - prev.CPUSeconds) / dt
	}
	return u
}
