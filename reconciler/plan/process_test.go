package plan

import (
	"slices"
	"strconv"
	"testing"

	"github.com/driftless/driftless/model"
)

// TestComputeProcessTypes checks that each process type of an app is
// counted and indexed on its own: index 0 of web and of worker are two
// instances, scaling one type touches no instance of the other, and a
// type no longer desired is stopped.
func TestComputeProcessTypes(t *testing.T) {
	web := func(n int) App { return App{Space: "dev", Name: "app", Instances: n, Release: rel("r1")} }
	worker := func(n int) App {
		r := rel("r1")
		r.Run.Process, r.Run.MemoryMB = "worker", 64
		return App{Space: "dev", Name: "app", Process: "worker", Instances: n, Release: r}
	}
	winst := func(guid string, idx int) Instance {
		in := inst(guid, "app", idx, "r1", model.StateRunning, "a")
		in.Process = "worker"
		return in
	}
	tests := []struct {
		name string
		in   Input
		want []string
	}{
		{
			name: "both types start at index 0",
			in:   Input{Apps: []App{web(1), worker(2)}, Cells: []Cell{cell("a", "", 4096)}},
			want: []string{"start app/0@r1 on a (instance missing)", "start app:worker/0@r1 on a (instance missing)", "start app:worker/1@r1 on a (instance missing)"},
		},
		{
			name: "scaling the worker leaves web alone",
			in: Input{Apps: []App{web(1), worker(1)}, Cells: []Cell{cell("a", "", 4096)}, Instances: []Instance{
				inst("g0", "app", 0, "r1", model.StateRunning, "a"), winst("w0", 0), winst("w1", 1)}},
			want: []string{"stop w1 on a (scaled down to 1 instances)"},
		},
		{
			name: "a type that is gone is stopped",
			in: Input{Apps: []App{web(1)}, Cells: []Cell{cell("a", "", 4096)}, Instances: []Instance{
				inst("g0", "app", 0, "r1", model.StateRunning, "a"), winst("w0", 0)}},
			want: []string{"stop w0 on a (app is no longer in any source)"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := Compute(tt.in)
			var got []string
			for _, a := range p.Actions {
				switch a.Kind {
				case Start:
					name := a.Instance.App
					if a.Instance.Process != "" {
						name += ":" + a.Instance.Process
					}
					if a.Run.Process != a.Instance.Process {
						t.Errorf("start of %s runs process %q", name, a.Run.Process)
					}
					got = append(got, "start "+name+"/"+strconv.Itoa(a.Instance.Index)+"@"+a.Instance.ReleaseID+" on "+a.Cell+" ("+a.Reason+")")
				case Stop:
					got = append(got, "stop "+a.Instance.GUID+" on "+a.Cell+" ("+a.Reason+")")
				}
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
}

// TestRolloutWaitsForReadiness checks that an instance of the new release
// that runs but fails its readiness check does not replace the old one
// yet: the old one serves until the new one is ready.
func TestRolloutWaitsForReadiness(t *testing.T) {
	app := App{Space: "dev", Name: "app", Instances: 1, Release: rel("r2")}
	old := inst("g-old", "app", 0, "r1", model.StateRunning, "a")
	next := inst("g-new", "app", 0, "r2", model.StateRunning, "a")
	next.NotReady = true
	in := Input{Apps: []App{app}, Cells: []Cell{cell("a", "", 4096)}, Instances: []Instance{old, next}}
	if p := Compute(in); len(p.Actions) != 0 {
		t.Fatalf("not ready: %v, want nothing", summary(p))
	}
	next.NotReady = false
	in.Instances = []Instance{old, next}
	if got := summary(Compute(in)); !slices.Equal(got, []string{"stop g-old on a (replaced by release r2)"}) {
		t.Fatalf("ready: %v", got)
	}
}
