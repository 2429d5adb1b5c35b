package reconciler

import (
	"testing"
	"time"

	"github.com/driftless/driftless/bus"
	"github.com/driftless/driftless/model"
)

func status(guid string, st model.InstanceState) model.InstanceStatus {
	return model.InstanceStatus{InstanceRef: model.InstanceRef{GUID: guid, Space: "dev", App: "a"}, State: st, MemoryMB: 64}
}

func states(a *Actual, now time.Time) map[string]model.InstanceState {
	insts, _ := a.Snapshot(now)
	out := map[string]model.InstanceState{}
	for _, in := range insts {
		out[in.GUID] = in.State
	}
	return out
}

func TestActualOrdering(t *testing.T) {
	now := time.Now()
	a := NewActual(10 * time.Second)
	hb := func(gen uint64, boot string, insts ...model.InstanceStatus) bus.CellHeartbeat {
		return bus.CellHeartbeat{CellID: "c1", BootID: boot, Generation: gen, Instances: insts}
	}
	if !a.Heartbeat(hb(1, "b1", status("g1", model.StateRunning)), now) {
		t.Fatal("first heartbeat is a change")
	}
	// The controller starts g2; the cell replies with generation 3.
	a.Accepted("c1", bus.Reply{OK: true, BootID: "b1", Generation: 3}, status("g2", model.StateStarting))
	// A heartbeat sent before the start arrives late: it must not forget g2.
	a.Heartbeat(hb(2, "b1", status("g1", model.StateRunning)), now)
	if got := states(a, now); got["g2"] != model.StateStarting {
		t.Fatalf("stale heartbeat dropped the started instance: %v", got)
	}
	// A change report: g2 is running.
	a.Changed(bus.InstanceChanged{CellID: "c1", BootID: "b1", Generation: 4, Instance: status("g2", model.StateRunning)}, now)
	// An older change report arriving late is ignored.
	a.Changed(bus.InstanceChanged{CellID: "c1", BootID: "b1", Generation: 3, Instance: status("g2", model.StateStarting)}, now)
	if got := states(a, now); got["g2"] != model.StateRunning {
		t.Fatalf("old change report applied: %v", got)
	}
	// Stopped instances disappear.
	a.Changed(bus.InstanceChanged{CellID: "c1", BootID: "b1", Generation: 5, Instance: status("g1", model.StateStopped)}, now)
	if got := states(a, now); len(got) != 1 {
		t.Fatalf("stopped instance kept: %v", got)
	}
	// A fresh heartbeat replaces the cell's instances.
	if !a.Heartbeat(hb(6, "b1", status("g2", model.StateRunning), status("g3", model.StateStarting)), now) {
		t.Fatal("new instance is a change")
	}
	if a.Heartbeat(hb(7, "b1", status("g2", model.StateRunning), status("g3", model.StateStarting)), now) {
		t.Fatal("identical heartbeat is no change")
	}
	// The agent restarts: its generation starts over under a new boot id.
	a.Heartbeat(hb(1, "b2", status("g2", model.StateRunning)), now)
	if got := states(a, now); len(got) != 1 || got["g2"] != model.StateRunning {
		t.Fatalf("after agent restart: %v", got)
	}
}

func TestActualLostCells(t *testing.T) {
	now := time.Now()
	a := NewActual(10 * time.Second)
	a.Heartbeat(bus.CellHeartbeat{CellID: "c1", BootID: "b", Generation: 1, Capacity: model.Resources{MemoryMB: 1024},
		Instances: []model.InstanceStatus{status("g1", model.StateRunning)}}, now)
	_, cells := a.Snapshot(now.Add(5 * time.Second))
	if cells[0].Lost {
		t.Fatal("lost too early")
	}
	_, cells = a.Snapshot(now.Add(11 * time.Second))
	if !cells[0].Lost {
		t.Fatal("silent cell not lost")
	}
	if !a.Heartbeat(bus.CellHeartbeat{CellID: "c1", BootID: "b", Generation: 1,
		Instances: []model.InstanceStatus{status("g1", model.StateRunning)}}, now.Add(12*time.Second)) {
		t.Fatal("a lost cell coming back is a change")
	}
	if info := a.Cells(now.Add(12 * time.Second)); len(info) != 1 || info[0].Lost || info[0].MemoryUsedMB != 64 {
		t.Fatalf("cells: %+v", info)
	}
}
