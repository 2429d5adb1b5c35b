package reconciler

import (
	"sync"
	"time"

	"github.com/driftless/driftless/bus"
	"github.com/driftless/driftless/model"
	"github.com/driftless/driftless/reconciler/plan"
)

// Actual is the controller's view of what runs where, rebuilt from cell
// heartbeats (bus.HeartbeatSubject), instance changes
// (bus.InstancesSubject) and replies to commands. Each cell reports a
// generation that grows with every change it makes; anything older than what
// was already seen from the cell is dropped, so messages arriving out of
// order never resurrect a stopped instance or forget a started one.
type Actual struct {
	mu    sync.Mutex
	cells map[string]*cellView
	// lostAfter is how long a cell may stay silent before it counts as lost.
	lostAfter time.Duration
}

type cellView struct {
	hb         bus.CellHeartbeat // without Instances
	generation uint64
	lastSeen   time.Time
	instances  map[string]model.InstanceStatus
}

// NewActual returns an empty view; a cell silent for lostAfter is lost.
func NewActual(lostAfter time.Duration) *Actual {
	return &Actual{cells: make(map[string]*cellView), lostAfter: lostAfter}
}

// Reset forgets every cell: a controller starting a term as leader
// rebuilds the view from fresh reports.
func (a *Actual) Reset() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.cells = make(map[string]*cellView)
}

// cell returns the view of a cell, starting over when the cell's agent
// restarted (new boot id) since its generation counts from zero again.
func (a *Actual) cell(id, bootID string) *cellView {
	c := a.cells[id]
	if c == nil || c.hb.BootID != bootID {
		c = &cellView{instances: make(map[string]model.InstanceStatus)}
		if old := a.cells[id]; old != nil {
			c.hb = old.hb
		}
		c.hb.CellID, c.hb.BootID = id, bootID
		a.cells[id] = c
	}
	return c
}

// Heartbeat records a cell's full report. It returns true when the set or
// states of the cell's instances changed (worth converging at once).
func (a *Actual) Heartbeat(hb bus.CellHeartbeat, now time.Time) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	c := a.cell(hb.CellID, hb.BootID)
	wasLost := !c.lastSeen.IsZero() && now.Sub(c.lastSeen) > a.lostAfter
	c.lastSeen = now
	insts := hb.Instances
	hb.Instances = nil
	c.hb = hb
	if hb.Generation < c.generation {
		return wasLost
	}
	c.generation = hb.Generation
	changed := wasLost || len(insts) != len(c.instances)
	fresh := make(map[string]model.InstanceStatus, len(insts))
	for _, in := range insts {
		if old, ok := c.instances[in.GUID]; !ok || old.State != in.State {
			changed = true
		}
		fresh[in.GUID] = in
	}
	c.instances = fresh
	return changed
}

// Changed records one instance's new state reported by its cell.
func (a *Actual) Changed(ic bus.InstanceChanged, now time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	c := a.cell(ic.CellID, ic.BootID)
	c.lastSeen = now
	if ic.Generation < c.generation {
		return
	}
	c.generation = ic.Generation
	if ic.Instance.State == model.StateStopped {
		delete(c.instances, ic.Instance.GUID)
		return
	}
	c.instances[ic.Instance.GUID] = ic.Instance
}

// Accepted records the state a cell replied with to a command for one
// instance (STARTING after a start, STOPPING after a stop), so the next plan
// sees it before the next heartbeat does.
func (a *Actual) Accepted(cellID string, r bus.Reply, inst model.InstanceStatus) {
	a.mu.Lock()
	defer a.mu.Unlock()
	c := a.cell(cellID, r.BootID)
	if r.Generation < c.generation {
		return
	}
	c.generation = r.Generation
	if prev, ok := c.instances[inst.GUID]; ok && inst.State == model.StateStopping {
		prev.State = model.StateStopping
		inst = prev
	}
	c.instances[inst.GUID] = inst
}

// Snapshot returns the instances and cells for planning at now.
func (a *Actual) Snapshot(now time.Time) ([]plan.Instance, []plan.Cell) {
	a.mu.Lock()
	defer a.mu.Unlock()
	var insts []plan.Instance
	cells := make([]plan.Cell, 0, len(a.cells))
	for id, c := range a.cells {
		cells = append(cells, plan.Cell{ID: id, Zone: c.hb.Zone, Capacity: c.hb.Capacity,
			Lost: now.Sub(c.lastSeen) > a.lostAfter})
		for _, in := range c.instances {
			in.Cell = id
			insts = append(insts, in)
		}
	}
	return insts, cells
}

// StagingSlots is the number of stagings the cells not lost run at once,
// as their heartbeats say.
func (a *Actual) StagingSlots(now time.Time) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := 0
	for _, c := range a.cells {
		if now.Sub(c.lastSeen) <= a.lostAfter {
			n += c.hb.StagingSlots
		}
	}
	return n
}

// Cells describes every known cell.
func (a *Actual) Cells(now time.Time) []model.CellStatus {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]model.CellStatus, 0, len(a.cells))
	for id, c := range a.cells {
		ci := model.CellStatus{ID: id, Address: c.hb.Address, Zone: c.hb.Zone, Capacity: c.hb.Capacity,
			LastHeartbeat: c.lastSeen, Lost: now.Sub(c.lastSeen) > a.lostAfter}
		for _, in := range c.instances {
			ci.Instances++
			if in.State == model.StateStarting || in.State == model.StateRunning {
				ci.MemoryUsedMB += in.MemoryMB
			}
		}
		out = append(out, ci)
	}
	return out
}

// Address is the advertised address of a cell ("" if unknown).
func (a *Actual) Address(cellID string) string {
	a.mu.Lock()
	defer a.mu.Unlock()
	if c := a.cells[cellID]; c != nil {
		return c.hb.Address
	}
	return ""
}
