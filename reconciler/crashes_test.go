package reconciler

import (
	"testing"
	"time"

	"github.com/driftless/driftless/model"
	"github.com/driftless/driftless/reconciler/plan"
)

func crashedInst(guid string, idx int) plan.Instance {
	return model.InstanceStatus{Cell: "a",
		InstanceRef: model.InstanceRef{GUID: guid, Space: "dev", App: "hello", Index: idx, ReleaseID: "r1"},
		State:       model.StateCrashed, ExitStatus: 3, Reason: "exited with status 3", LastOutput: []string{"boom"}}
}

func TestCrashTracker(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	key := model.AppKey{Space: "dev", Name: "hello"}
	tr := newCrashTracker(plan.CrashPolicy{QuickRestarts: 2, Backoff: 10 * time.Second, MaxBackoff: time.Minute, ResetAfter: time.Minute})

	steps := []struct {
		name      string
		insts     []plan.Instance
		at        time.Duration
		newCrash  int
		wantCount int
		wantDelay time.Duration
	}{
		{"first crash restarts at once", []plan.Instance{crashedInst("g1", 0)}, 0, 1, 1, 0},
		{"the same crash reported again is not counted", []plan.Instance{crashedInst("g1", 0)}, time.Second, 0, 1, 0},
		{"gone for a while, then reported again by a late heartbeat", nil, 1500 * time.Millisecond, 0, 1, 0},
		{"the late report is not counted", []plan.Instance{crashedInst("g1", 0)}, 1600 * time.Millisecond, 0, 1, 0},
		{"second crash restarts at once", []plan.Instance{crashedInst("g2", 0)}, 2 * time.Second, 1, 2, 0},
		{"third crash backs off", []plan.Instance{crashedInst("g3", 0)}, 3 * time.Second, 1, 3, 10 * time.Second},
		{"fourth crash backs off twice as long", []plan.Instance{crashedInst("g4", 0)}, 20 * time.Second, 1, 4, 20 * time.Second},
	}
	for _, st := range steps {
		got := tr.Observe(st.insts, t0.Add(st.at))
		if len(got) != st.newCrash {
			t.Fatalf("%s: %d new crashes, want %d", st.name, len(got), st.newCrash)
		}
		rec := tr.Records(key)[model.IndexKey{}]
		if rec.Count != st.wantCount {
			t.Fatalf("%s: count %d, want %d", st.name, rec.Count, st.wantCount)
		}
		if len(got) == 1 && got[0].Delay != st.wantDelay {
			t.Fatalf("%s: delay %s, want %s", st.name, got[0].Delay, st.wantDelay)
		}
		if rec.ExitStatus != 3 || rec.Reason != "exited with status 3" || len(rec.LastOutput) != 1 {
			t.Fatalf("%s: record lost the crash details: %+v", st.name, rec)
		}
	}
	if r := tr.RestartAt(model.ProcessKey{AppKey: key, Process: model.ProcessWeb}); !r[0].Equal(t0.Add(40 * time.Second)) {
		t.Fatalf("restart at = %v, want 40s after start", r)
	}

	// Running for less than ResetAfter keeps the count; longer clears it.
	running := model.InstanceStatus{Cell: "a",
		InstanceRef: model.InstanceRef{GUID: "g5", Space: "dev", App: "hello", Index: 0, ReleaseID: "r1"},
		State:       model.StateRunning, Since: t0.Add(45 * time.Second)}
	tr.Observe([]plan.Instance{running}, t0.Add(90*time.Second))
	if tr.Records(key)[model.IndexKey{}].Count != 4 {
		t.Fatal("count cleared before ResetAfter")
	}
	tr.Observe([]plan.Instance{running}, t0.Add(106*time.Second))
	if _, ok := tr.Records(key)[model.IndexKey{}]; ok {
		t.Fatal("count kept after running for ResetAfter")
	}
}
