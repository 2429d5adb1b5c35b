package plan

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/driftless/driftless/model"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func rel(id string) *model.Release {
	return &model.Release{ID: id, Commit: "c-" + id, Run: model.RunSpec{Droplet: "d-" + id, MemoryMB: 256, DiskMB: 1024}}
}

func inst(guid, app string, idx int, release string, state model.InstanceState, cell string) Instance {
	return model.InstanceStatus{Cell: cell,
		InstanceRef: model.InstanceRef{GUID: guid, Space: "dev", App: app, Index: idx, ReleaseID: release},
		State:       state, MemoryMB: 256, DiskMB: 1024, Since: t0,
	}
}

func cell(id, zone string, memMB int64) Cell {
	return Cell{ID: id, Zone: zone, Capacity: model.Resources{MemoryMB: memMB, DiskMB: 100000, Instances: 100}}
}

// summary renders actions as "start hello/0 on a (reason)" / "stop g1 on a (reason)".
func summary(p Plan) []string {
	var out []string
	for _, a := range p.Actions {
		switch a.Kind {
		case Start:
			out = append(out, fmt.Sprintf("start %s/%d@%s on %s (%s)", a.Instance.App, a.Instance.Index, a.Instance.ReleaseID, a.Cell, a.Reason))
		case Stop:
			out = append(out, fmt.Sprintf("stop %s on %s (%s)", a.Instance.GUID, a.Cell, a.Reason))
		}
	}
	for _, u := range p.Unplaced {
		out = append(out, fmt.Sprintf("unplaced %s/%d: %s", u.App.Name, u.Index, u.Reason))
	}
	for _, w := range p.Waiting {
		out = append(out, fmt.Sprintf("wait %s/%d until +%s", w.App.Name, w.Index, w.Until.Sub(t0)))
	}
	for _, r := range p.Rollbacks {
		out = append(out, fmt.Sprintf("rollback %s %s to %s: %s", r.App.Name, r.Release, r.To, r.Reason))
	}
	return out
}

func crashed(guid, app string, idx int, release string, wasHealthy bool, reason string) Instance {
	in := inst(guid, app, idx, release, model.StateCrashed, "a")
	in.WasHealthy, in.Reason = wasHealthy, reason
	return in
}

func TestCompute(t *testing.T) {
	hello := func(n int, r *model.Release) App { return App{Space: "dev", Name: "hello", Instances: n, Release: r} }
	tests := []struct {
		name  string
		in    Input
		want  []string
		match bool // compare by prefix only
	}{
		{
			name: "fresh app starts every index",
			in:   Input{Apps: []App{hello(2, rel("r1"))}, Cells: []Cell{cell("a", "", 4096)}},
			want: []string{"start hello/0@r1 on a (instance missing)", "start hello/1@r1 on a (instance missing)"},
		},
		{
			name: "matching state needs nothing",
			in: Input{Apps: []App{hello(2, rel("r1"))}, Cells: []Cell{cell("a", "", 4096)}, Instances: []Instance{
				inst("g0", "hello", 0, "r1", model.StateRunning, "a"), inst("g1", "hello", 1, "r1", model.StateStarting, "a")}},
			want: nil,
		},
		{
			name: "scale down stops the highest indexes",
			in: Input{Apps: []App{hello(1, rel("r1"))}, Cells: []Cell{cell("a", "", 4096)}, Instances: []Instance{
				inst("g0", "hello", 0, "r1", model.StateRunning, "a"), inst("g1", "hello", 1, "r1", model.StateRunning, "a"),
				inst("g2", "hello", 2, "r1", model.StateStarting, "a")}},
			want: []string{"stop g1 on a (scaled down to 1 instances)", "stop g2 on a (scaled down to 1 instances)"},
		},
		{
			name: "crashed instance is cleaned up and replaced",
			in: Input{Apps: []App{hello(1, rel("r1"))}, Cells: []Cell{cell("a", "", 4096)}, Instances: []Instance{
				inst("g0", "hello", 0, "r1", model.StateCrashed, "a")}},
			want: []string{"stop g0 on a (clean up crashed instance)", "start hello/0@r1 on a (replacing crashed instance)"},
		},
		{
			name: "crash backoff holds the index back and says until when",
			in: Input{Now: t0, Apps: []App{{Space: "dev", Name: "hello", Instances: 2, Release: rel("r1"),
				RestartAt: map[int]time.Time{0: t0.Add(30 * time.Second)}}},
				Cells: []Cell{cell("a", "", 4096)}, Instances: []Instance{
					crashed("g0", "hello", 0, "r1", true, "exited with status 1"), inst("g1", "hello", 1, "r1", model.StateRunning, "a")}},
			want: []string{"stop g0 on a (clean up crashed instance)", "wait hello/0 until +30s"},
		},
		{
			name: "an index whose backoff ended is restarted",
			in: Input{Now: t0, Apps: []App{{Space: "dev", Name: "hello", Instances: 1, Release: rel("r1"),
				RestartAt: map[int]time.Time{0: t0.Add(-time.Second)}}},
				Cells: []Cell{cell("a", "", 4096)}},
			want: []string{"start hello/0@r1 on a (replacing crashed instance)"},
		},
		{
			name: "a new release that never becomes healthy is rolled back",
			in: Input{Apps: []App{hello(2, rel("r2"))}, Cells: []Cell{cell("a", "", 4096)}, Instances: []Instance{
				inst("g0", "hello", 0, "r1", model.StateRunning, "a"), inst("g1", "hello", 1, "r1", model.StateRunning, "a"),
				crashed("n0", "hello", 0, "r2", false, "health check (http) did not pass within 5s")}},
			want: []string{"stop n0 on a (clean up crashed instance)",
				"rollback hello r2 to r1: instance 0 of release r2 never became healthy: health check (http) did not pass within 5s"},
		},
		{
			name: "a new instance that was healthy and then crashed is restarted, not rolled back",
			in: Input{Apps: []App{hello(2, rel("r2"))}, Cells: []Cell{cell("a", "", 4096)}, Instances: []Instance{
				inst("g0", "hello", 0, "r1", model.StateRunning, "a"), inst("g1", "hello", 1, "r1", model.StateRunning, "a"),
				crashed("n0", "hello", 0, "r2", true, "exited with status 2")}},
			want: []string{"stop n0 on a (clean up crashed instance)", "start hello/0@r2 on a (rolling out release r2)"},
		},
		{
			name: "a first release that never becomes healthy is not rolled back",
			in: Input{Apps: []App{hello(1, rel("r1"))}, Cells: []Cell{cell("a", "", 4096)}, Instances: []Instance{
				crashed("n0", "hello", 0, "r1", false, "exited with status 1")}},
			want: []string{"stop n0 on a (clean up crashed instance)", "start hello/0@r1 on a (replacing crashed instance)"},
		},
		{
			name: "rollout replaces one index at a time",
			in: Input{Apps: []App{hello(2, rel("r2"))}, Cells: []Cell{cell("a", "", 4096)}, Instances: []Instance{
				inst("g0", "hello", 0, "r1", model.StateRunning, "a"), inst("g1", "hello", 1, "r1", model.StateRunning, "a")}},
			want: []string{"start hello/0@r2 on a (rolling out release r2)"},
		},
		{
			name: "rollout waits while the new instance starts",
			in: Input{Apps: []App{hello(2, rel("r2"))}, Cells: []Cell{cell("a", "", 4096)}, Instances: []Instance{
				inst("g0", "hello", 0, "r1", model.StateRunning, "a"), inst("g1", "hello", 1, "r1", model.StateRunning, "a"),
				inst("n0", "hello", 0, "r2", model.StateStarting, "a")}},
			want: nil,
		},
		{
			name: "rollout moves on once the new instance runs",
			in: Input{Apps: []App{hello(2, rel("r2"))}, Cells: []Cell{cell("a", "", 4096)}, Instances: []Instance{
				inst("g0", "hello", 0, "r1", model.StateRunning, "a"), inst("g1", "hello", 1, "r1", model.StateRunning, "a"),
				inst("n0", "hello", 0, "r2", model.StateRunning, "a")}},
			want: []string{"stop g0 on a (replaced by release r2)", "start hello/1@r2 on a (rolling out release r2)"},
		},
		{
			name: "max in flight 2 replaces two at once",
			in: Input{Apps: []App{{Space: "dev", Name: "hello", Instances: 3, Release: rel("r2"), MaxInFlight: 2}}, Cells: []Cell{cell("a", "", 4096)}, Instances: []Instance{
				inst("g0", "hello", 0, "r1", model.StateRunning, "a"), inst("g1", "hello", 1, "r1", model.StateRunning, "a"),
				inst("g2", "hello", 2, "r1", model.StateRunning, "a")}},
			want: []string{"start hello/0@r2 on a (rolling out release r2)", "start hello/1@r2 on a (rolling out release r2)"},
		},
		{
			name: "an old instance that never served is stopped at once",
			in: Input{Apps: []App{hello(1, rel("r2"))}, Cells: []Cell{cell("a", "", 4096)}, Instances: []Instance{
				inst("g0", "hello", 0, "r1", model.StateStarting, "a"), inst("n0", "hello", 0, "r2", model.StateStarting, "a")}},
			want: []string{"stop g0 on a (replaced by release r2)"},
		},
		{
			name: "removed app is stopped",
			in: Input{Cells: []Cell{cell("a", "", 4096)}, Instances: []Instance{
				inst("g0", "gone", 0, "r1", model.StateRunning, "a"), inst("g1", "gone", 1, "r1", model.StateCrashed, "a")}},
			want: []string{"stop g0 on a (app is no longer in any source)", "stop g1 on a (app is no longer in any source)"},
		},
		{
			name: "nothing runnable yet leaves instances alone",
			in: Input{Apps: []App{hello(3, nil)}, Cells: []Cell{cell("a", "", 4096)}, Instances: []Instance{
				inst("g0", "hello", 0, "r1", model.StateRunning, "a")}},
			want: nil,
		},
		{
			name: "instances on a lost cell are replaced elsewhere and not touched",
			in: Input{Apps: []App{hello(2, rel("r1"))}, Cells: []Cell{{ID: "a", Lost: true, Capacity: model.Resources{MemoryMB: 4096}}, cell("b", "", 4096)},
				Instances: []Instance{inst("g0", "hello", 0, "r1", model.StateRunning, "a"), inst("g1", "hello", 1, "r1", model.StateRunning, "b")}},
			want: []string{"start hello/0@r1 on b (replacing an instance on a lost cell)"},
		},
		{
			name: "duplicates after a cell returns are stopped, the oldest running one stays",
			in: Input{Apps: []App{hello(1, rel("r1"))}, Cells: []Cell{cell("a", "", 4096), cell("b", "", 4096)}, Instances: []Instance{
				inst("g0", "hello", 0, "r1", model.StateRunning, "a"),
				func() Instance {
					i := inst("g9", "hello", 0, "r1", model.StateRunning, "b")
					i.Since = t0.Add(time.Minute)
					return i
				}()}},
			want: []string{"stop g9 on b (duplicate instance)"},
		},
		{
			name: "no room gives an unplaced instance with the reason",
			in:   Input{Apps: []App{hello(2, rel("r1"))}, Cells: []Cell{cell("a", "", 300)}},
			want: []string{"start hello/0@r1 on a (instance missing)", "unplaced hello/1: no cell has 256 MB of memory free (most free: 44 MB on a)"},
		},
		{
			name: "no cells at all",
			in:   Input{Apps: []App{hello(1, rel("r1"))}},
			want: []string{"unplaced hello/0: no cell is available (none has sent a heartbeat recently)"},
		},
		{
			name: "instances spread over cells",
			in:   Input{Apps: []App{hello(4, rel("r1"))}, Cells: []Cell{cell("a", "", 4096), cell("b", "", 2048)}},
			want: []string{"start hello/0@r1 on a (instance missing)", "start hello/1@r1 on b (instance missing)",
				"start hello/2@r1 on a (instance missing)", "start hello/3@r1 on b (instance missing)"},
		},
		{
			name: "zones first, then cells",
			in:   Input{Apps: []App{hello(2, rel("r1"))}, Cells: []Cell{cell("a", "z1", 8192), cell("b", "z1", 8192), cell("c", "z2", 1024)}},
			want: []string{"start hello/0@r1 on a (instance missing)", "start hello/1@r1 on c (instance missing)"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.in.Now = t0
			got := summary(Compute(tc.in))
			if !slices.Equal(got, tc.want) {
				t.Fatalf("plan:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(tc.want, "\n  "))
			}
		})
	}
}

// world is a simulated platform: it applies plans the way the executor and
// the agents would (starts become STARTING, then RUNNING on the next step;
// stops remove instances).
type world struct {
	insts []Instance
	next  int
}

func (w *world) starting() bool {
	return slices.ContainsFunc(w.insts, func(i Instance) bool { return i.State == model.StateStarting })
}

func (w *world) apply(p Plan) {
	for i := range w.insts {
		if w.insts[i].State == model.StateStarting {
			w.insts[i].State = model.StateRunning
		}
	}
	for _, a := range p.Actions {
		switch a.Kind {
		case Start:
			w.next++
			ref := a.Instance
			ref.GUID = fmt.Sprintf("n%03d", w.next)
			w.insts = append(w.insts, model.InstanceStatus{Cell: a.Cell,
				InstanceRef: ref, State: model.StateStarting, MemoryMB: a.Run.MemoryMB, DiskMB: a.Run.DiskMB, Since: t0})
		case Stop:
			w.insts = slices.DeleteFunc(w.insts, func(i Instance) bool { return i.GUID == a.Instance.GUID })
		}
	}
}

// TestConvergesToDesired runs plans against a simulated world until no
// actions remain and checks the result is exactly the desired state.
func TestConvergesToDesired(t *testing.T) {
	cells := []Cell{cell("a", "z1", 4096), cell("b", "z2", 4096), cell("c", "z2", 4096)}
	w := &world{insts: []Instance{
		inst("o1", "web", 0, "r1", model.StateRunning, "a"), inst("o2", "web", 1, "r1", model.StateRunning, "b"),
		inst("o3", "web", 2, "r1", model.StateCrashed, "c"), inst("o4", "web", 7, "r1", model.StateRunning, "c"),
		inst("o5", "old", 0, "r9", model.StateRunning, "a"),
	}}
	apps := []App{
		{Space: "dev", Name: "web", Instances: 4, Release: rel("r2")},
		{Space: "dev", Name: "api", Instances: 3, Release: rel("r5")},
	}
	for step := 0; step < 20; step++ {
		p := Compute(Input{Apps: apps, Instances: w.insts, Cells: cells, Now: t0})
		if len(p.Actions) == 0 && !w.starting() {
			running := map[string][]int{}
			for _, i := range w.insts {
				if i.State != model.StateRunning {
					t.Fatalf("converged with a non-running instance %+v", i)
				}
				running[i.App+"@"+i.ReleaseID] = append(running[i.App+"@"+i.ReleaseID], i.Index)
			}
			for k := range running {
				slices.Sort(running[k])
			}
			want := map[string][]int{"web@r2": {0, 1, 2, 3}, "api@r5": {0, 1, 2}}
			if fmt.Sprint(running) != fmt.Sprint(want) {
				t.Fatalf("converged to %v, want %v", running, want)
			}
			return
		}
		w.apply(p)
	}
	t.Fatal("no fixed point after 20 steps")
}

// TestNeverBelowServing checks that during a rollout every index that was
// serving keeps at least one RUNNING instance at every step.
func TestNeverBelowServing(t *testing.T) {
	cells := []Cell{cell("a", "", 8192)}
	w := &world{}
	for i := range 3 {
		w.insts = append(w.insts, inst(fmt.Sprintf("o%d", i), "web", i, "r1", model.StateRunning, "a"))
	}
	apps := []App{{Space: "dev", Name: "web", Instances: 3, Release: rel("r2")}}
	for step := 0; step < 30; step++ {
		p := Compute(Input{Apps: apps, Instances: w.insts, Cells: cells, Now: t0})
		if len(p.Actions) == 0 {
			return
		}
		w.apply(p)
		for idx := range 3 {
			if !slices.ContainsFunc(w.insts, func(i Instance) bool { return i.Index == idx && i.State == model.StateRunning }) {
				t.Fatalf("step %d: index %d has no running instance: %+v", step, idx, w.insts)
			}
		}
	}
	t.Fatal("rollout did not finish in 30 steps")
}

func TestCrashPolicyDelay(t *testing.T) {
	p := CrashPolicy{QuickRestarts: 3, Backoff: 30 * time.Second, MaxBackoff: 2 * time.Minute}
	tests := []struct {
		crashes int
		want    time.Duration
	}{
		{1, 0}, {2, 0}, {3, 0},
		{4, 30 * time.Second}, {5, time.Minute}, {6, 2 * time.Minute}, {7, 2 * time.Minute}, {60, 2 * time.Minute},
	}
	for _, tt := range tests {
		if got := p.Delay(tt.crashes); got != tt.want {
			t.Errorf("Delay(%d) = %s, want %s", tt.crashes, got, tt.want)
		}
	}
	d := CrashPolicy{}.WithDefaults()
	if d != DefaultCrashPolicy {
		t.Errorf("zero policy with defaults = %+v, want %+v", d, DefaultCrashPolicy)
	}
	if got := (CrashPolicy{Backoff: time.Hour}).WithDefaults().MaxBackoff; got != time.Hour {
		t.Errorf("a backoff above the default cap raises the cap: got %s", got)
	}
}
