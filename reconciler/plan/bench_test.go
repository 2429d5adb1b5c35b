package plan

import (
	"fmt"
	"testing"
	"time"

	"github.com/driftless/driftless/model"
)

// BenchmarkPlace100kOver1000Cells plans 100,000 new instances (1,000 apps
// of 100 instances) over 1,000 cells in 10 zones and reports placements/s.
func BenchmarkPlace100kOver1000Cells(b *testing.B) {
	cells := make([]Cell, 1000)
	for i := range cells {
		cells[i] = Cell{ID: fmt.Sprintf("cell-%04d", i), Zone: fmt.Sprintf("z%d", i%10),
			Capacity: model.Resources{MemoryMB: 64 * 1024, DiskMB: 1 << 20, Instances: 250}}
	}
	apps := make([]App, 1000)
	for i := range apps {
		apps[i] = App{Space: "bench", Name: fmt.Sprintf("app-%04d", i), Instances: 100,
			Release: &model.Release{ID: "r1", Run: model.RunSpec{MemoryMB: 256, DiskMB: 512}}}
	}
	in := Input{Apps: apps, Cells: cells, Now: time.Now()}
	b.ResetTimer()
	var placed int
	for b.Loop() {
		p := Compute(in)
		if len(p.Unplaced) != 0 {
			b.Fatalf("%d unplaced: %s", len(p.Unplaced), p.Unplaced[0].Reason)
		}
		placed += len(p.Actions)
	}
	b.ReportMetric(float64(placed)/b.Elapsed().Seconds(), "placements/s")
}

// BenchmarkSteadyState plans 10,000 running instances that already match.
func BenchmarkSteadyState(b *testing.B) {
	cells := make([]Cell, 100)
	for i := range cells {
		cells[i] = Cell{ID: fmt.Sprintf("cell-%03d", i), Capacity: model.Resources{MemoryMB: 64 * 1024, Instances: 250}}
	}
	var apps []App
	var insts []Instance
	for a := range 1000 {
		app := App{Space: "bench", Name: fmt.Sprintf("app-%04d", a), Instances: 10, Release: &model.Release{ID: "r1", Run: model.RunSpec{MemoryMB: 256}}}
		apps = append(apps, app)
		for i := range 10 {
			insts = append(insts, model.InstanceStatus{Cell: cells[(a*10+i)%100].ID,
				InstanceRef: model.InstanceRef{GUID: fmt.Sprintf("%s-%d", app.Name, i), Space: "bench", App: app.Name, Index: i, ReleaseID: "r1"},
				State:       model.StateRunning, MemoryMB: 256})
		}
	}
	in := Input{Apps: apps, Instances: insts, Cells: cells, Now: time.Now()}
	for b.Loop() {
		if p := Compute(in); len(p.Actions) != 0 {
			b.Fatalf("steady state planned %d actions", len(p.Actions))
		}
	}
}
