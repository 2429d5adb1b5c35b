package api

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/driftless/driftless/model"
	"github.com/driftless/driftless/reconciler"
)

// TestAppsCollector: apps counted by the state `driftless apps` shows,
// every state present (0 when none), and none counted by a standby.
func TestAppsCollector(t *testing.T) {
	rel := model.Release{ID: "r1", Space: "dev", State: model.ReleaseStaged, DropletDigest: "sha256:x"}
	app := func(name string, insts ...model.InstanceStatus) reconciler.AppState {
		r := rel
		r.App = name
		return reconciler.AppState{App: model.App{Space: "dev", Name: name, Instances: 1, ReleaseID: "r1", CurrentID: "r1"},
			Releases: []model.Release{r}, Instances: insts}
	}
	running := func(name string) model.InstanceStatus {
		return model.InstanceStatus{InstanceRef: model.InstanceRef{GUID: name + "-0", Space: "dev", App: name, ReleaseID: "r1"}, State: model.StateRunning}
	}
	b := &fakeBackend{apps: []reconciler.AppState{app("a", running("a")), app("b", running("b")), app("c"),
		{App: model.App{Space: "dev", Name: "d", Instances: 1, ReleaseID: "r9"}}}}
	tests := []struct {
		name  string
		leads bool
		want  map[string]float64
	}{
		{"leader", true, map[string]float64{AppRunning: 2, AppDegraded: 1, AppStaging: 1, AppStarting: 0, AppSleeping: 0}},
		{"standby", false, map[string]float64{AppRunning: 0, AppDegraded: 0, AppStaging: 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			reg.MustRegister(NewAppsCollector(b, func() bool { return tt.leads }))
			mfs, err := reg.Gather()
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]float64{}
			for _, mf := range mfs {
				for _, m := range mf.GetMetric() {
					got[m.GetLabel()[0].GetValue()] = m.GetGauge().GetValue()
				}
			}
			if len(got) != len(AppStates) {
				t.Fatalf("states %v, want every one of %v", got, AppStates)
			}
			for state, n := range tt.want {
				if got[state] != n {
					t.Errorf("driftless_controller_apps{state=%q} = %v, want %v", state, got[state], n)
				}
			}
		})
	}
}
