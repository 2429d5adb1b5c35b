package api

import (
	"testing"
	"time"

	"github.com/driftless/driftless/model"
	"github.com/driftless/driftless/reconciler"
)

// TestInstanceReadiness: `driftless app` shows ready for RUNNING
// instances only, false while one fails its readiness check.
func TestInstanceReadiness(t *testing.T) {
	ref := model.InstanceRef{GUID: "g", Space: "dev", App: "hello", ReleaseID: "r1"}
	tests := []struct {
		name     string
		state    model.InstanceState
		notReady bool
		want     *bool
	}{
		{"running, ready", model.StateRunning, false, new(true)},
		{"running, not ready", model.StateRunning, true, new(false)},
		{"starting: no readiness", model.StateStarting, false, nil},
		{"crashed: no readiness", model.StateCrashed, true, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := reconciler.AppState{App: model.App{Space: "dev", Name: "hello", Instances: 1},
				Instances: []model.InstanceStatus{{InstanceRef: ref, State: tc.state, NotReady: tc.notReady}}}
			got := appDetail(s, time.Now()).Instances[0].Ready
			if (got == nil) != (tc.want == nil) || got != nil && *got != *tc.want {
				t.Fatalf("ready = %v, want %v", ptr(got), ptr(tc.want))
			}
		})
	}
}

func ptr(b *bool) any {
	if b == nil {
		return nil
	}
	return *b
}
