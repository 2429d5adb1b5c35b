package reconciler

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/driftless/driftless/bus"
	"github.com/driftless/driftless/internal/testenv"
	"github.com/driftless/driftless/model"
	"github.com/driftless/driftless/policies"
)

// TestControllerMetrics drives a leading controller over fakes with a
// registry: a commit's policy decision, its staging, convergences and the
// start actions they take (then failed ones), an API authorisation, and
// the leader gauge.
func TestControllerMetrics(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t)
	reg := prometheus.NewRegistry()
	m, err := newControllerMetrics(reg, h.c)
	if err != nil {
		t.Fatal(err)
	}
	h.c.metrics = m

	h.c.apply(ctx, h.se, helloCommit("c1", helloManifest))
	h.eventually("staged", func() bool { a, _ := h.c.store.App(hello); return a.CurrentID != "" })
	h.c.actual.Heartbeat(bus.CellHeartbeat{CellID: "cell-a", BootID: "boot-1", Address: "127.0.0.1",
		Capacity: model.Resources{MemoryMB: 4096, DiskMB: 100000, Instances: 100}}, time.Now())
	h.c.converge(ctx)
	h.exec.mu.Lock()
	h.exec.err = errors.New("cell away")
	h.exec.mu.Unlock()
	h.c.actual.Reset()
	h.c.actual.Heartbeat(bus.CellHeartbeat{CellID: "cell-b", BootID: "boot-2", Address: "127.0.0.1",
		Capacity: model.Resources{MemoryMB: 4096, DiskMB: 100000, Instances: 100}}, time.Now())
	h.c.converge(ctx)
	if _, err := h.c.Authorize(ctx, policies.AuthzInput{}); err != nil {
		t.Logf("authorize: %v", err) // a decision all the same
	}

	got := testenv.Samples(t, reg)
	tests := []struct {
		series string
		want   func(float64) bool
	}{
		{"driftless_controller_policy_decision_duration_seconds_count{decision=deploy}", func(v float64) bool { return v == 1 }},
		{"driftless_controller_policy_decision_duration_seconds_count{decision=authz}", func(v float64) bool { return v == 1 }},
		{"driftless_controller_staging_duration_seconds_count{result=staged}", func(v float64) bool { return v == 1 }},
		{"driftless_controller_convergence_duration_seconds_count{}", func(v float64) bool { return v == 2 }},
		{"driftless_controller_actions_total{kind=start,result=ok}", func(v float64) bool { return v == 2 }},
		{"driftless_controller_actions_total{kind=start,result=failed}", func(v float64) bool { return v == 2 }},
		{"driftless_controller_leader{}", func(v float64) bool { return v == 1 }},
	}
	for _, tt := range tests {
		if v, ok := got[tt.series]; !ok || !tt.want(v) {
			t.Errorf("%s = %v (present %v)", tt.series, v, ok)
		}
	}
	h.c.setRole(RoleStandby)
	if v := testenv.Samples(t, reg)["driftless_controller_leader{}"]; v != 0 {
		t.Errorf("a standby's leader gauge is %v", v)
	}
	// Without a registry nothing is registered, and nothing breaks.
	if m, err := newControllerMetrics(nil, h.c); err != nil || m == nil {
		t.Fatalf("newControllerMetrics(nil) = %v, %v", m, err)
	}
	var none *controllerMetrics
	none.converged(time.Second)
	none.decided("deploy", time.Second)
	none.staged(&model.Release{}, time.Second)
}
