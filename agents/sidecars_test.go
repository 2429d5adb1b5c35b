package agents

import (
	"slices"
	"strings"
	"testing"

	"github.com/driftless/driftless/agents/runtime"
	"github.com/driftless/driftless/model"
)

// TestSidecars: an instance starts the sidecars of its process type (web)
// in its container once it has started; one that exits crashes the
// instance, killing its process, with a reason naming it; one that cannot
// start fails the launch.
func TestSidecars(t *testing.T) {
	run := testRun()
	run.Sidecars = []model.Sidecar{
		{Name: "cfg", ProcessTypes: []string{"web"}, Command: "./cfg"},
		{Name: "jobs", ProcessTypes: []string{"worker"}, Command: "./jobs"},
	}
	tests := []struct {
		name   string
		setup  func(c *testCell)
		then   func(c *testCell)
		reason string
	}{
		{name: "exits", then: func(c *testCell) { c.engine.exit("i1/sidecar-cfg", runtime.Exit{Status: 5}) },
			reason: "sidecar cfg exited with status 5"},
		{name: "cannot start", setup: func(c *testCell) { c.engine.failNext("exec", errBoom) },
			reason: "starting sidecar cfg"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newTestCell(t)
			if tt.setup != nil {
				tt.setup(c)
			}
			c.mu.Lock()
			err := c.acceptLocked(testRef("i1"), run)
			c.mu.Unlock()
			if err != nil {
				t.Fatal(err)
			}
			if tt.then != nil {
				c.waitState(t, "i1", model.StateRunning)
				steps := c.j.all()
				if s, e := slices.Index(steps, "start i1"), slices.Index(steps, "exec sidecar-cfg in i1"); s < 0 || e < s ||
					slices.Contains(steps, "exec sidecar-jobs in i1") {
					t.Fatalf("steps %v: want sidecar-cfg (web) started after the container, not sidecar-jobs (worker)", steps)
				}
				tt.then(c)
			}
			c.waitState(t, "i1", model.StateCrashed)
			if _, reason := c.state("i1"); !strings.Contains(reason, tt.reason) {
				t.Fatalf("reason %q, want %q", reason, tt.reason)
			}
			waitFor(t, "the instance's process killed", func() bool { return slices.Contains(c.j.all(), "kill i1") })
		})
	}
}
