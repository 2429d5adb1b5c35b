package agents

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/driftless/driftless/model"
)

func TestReadinessObserve(t *testing.T) {
	tests := []struct {
		name        string
		start       checkState
		probes      []error
		wantChanged []bool
		wantReady   bool
	}{
		{"unknown, first probe passes", checkState{}, []error{nil}, []bool{true}, true},
		{"unknown, first probe fails", checkState{}, []error{errBoom}, []bool{true}, false},
		{"ready stays ready", checkState{known: true, passing: true}, []error{nil, nil}, []bool{false, false}, true},
		{"ready, one failure is not ready", checkState{known: true, passing: true}, []error{errBoom}, []bool{true}, false},
		{"not ready stays out while failing", checkState{known: true}, []error{errBoom, errBoom}, []bool{false, false}, false},
		{"flips back and forth", checkState{known: true, passing: true}, []error{errBoom, nil, nil, errBoom, nil},
			[]bool{true, true, false, true, true}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.start
			for i, err := range tc.probes {
				if got := r.observe(err); got != tc.wantChanged[i] {
					t.Fatalf("probe %d (%v): changed = %v, want %v", i, err, got, tc.wantChanged[i])
				}
			}
			if !r.known || r.passing != tc.wantReady {
				t.Fatalf("state %+v, want ready=%v", r, tc.wantReady)
			}
		})
	}
}

// splitProber passes liveness probes and answers readiness probes (those
// of readyPath) as told.
type splitProber struct {
	fakeProber
	mu     sync.Mutex
	ready  error
	probes int
}

const readyPath = "/ready"

func (p *splitProber) Probe(ctx context.Context, hc model.HealthCheck, addr string) error {
	if hc.Endpoint != readyPath {
		return p.fakeProber.Probe(ctx, hc, addr)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.probes++
	return p.ready
}

func (p *splitProber) setReady(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.ready = err
}

// TestReadinessKeepsInstance runs the agent on fakes: an instance whose
// readiness check fails stays RUNNING and registered (not killed, not
// restarted) with its readiness check failed and NotReady reported, and
// is ready again once the check passes; an instance without a readiness
// check is never probed for it.
func TestReadinessKeepsInstance(t *testing.T) {
	tests := []struct {
		name      string
		readiness model.ReadinessCheck
		startFail bool
	}{
		{"ready at start", model.ReadinessCheck{Type: model.HealthHTTP, Endpoint: readyPath}, false},
		{"not ready at start", model.ReadinessCheck{Type: model.HealthHTTP, Endpoint: readyPath}, true},
		{"process: always ready", model.ReadinessCheck{Type: model.HealthProcess}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newTestCell(t)
			probe := &splitProber{}
			c.Agent.probe = probe
			if tc.startFail {
				probe.setReady(errBoom)
			}
			run := testRun()
			run.HealthCheck = model.HealthCheck{Type: model.HealthPort, Readiness: tc.readiness}
			c.mu.Lock()
			if err := c.acceptLocked(testRef("r1"), run); err != nil {
				c.mu.Unlock()
				t.Fatal(err)
			}
			c.mu.Unlock()
			c.waitState(t, "r1", model.StateRunning)
			if !tc.readiness.Probed() {
				time.Sleep(50 * time.Millisecond) // several check intervals
				probe.mu.Lock()
				n := probe.probes
				probe.mu.Unlock()
				c.reg.mu.Lock()
				_, set := c.reg.ready["r1"]
				c.reg.mu.Unlock()
				if n != 0 || set || c.notReady("r1") {
					t.Fatalf("a process readiness check was probed %d times (check set: %v)", n, set)
				}
				return
			}
			if got := c.notReady("r1"); got != tc.startFail {
				t.Fatalf("NotReady at start = %v, want %v", got, tc.startFail)
			}
			if !c.reg.registered("r1") {
				t.Fatal("instance not registered")
			}
			steps := []struct {
				err   error
				ready bool
			}{{errBoom, false}, {nil, true}, {errBoom, false}, {nil, true}}
			for _, s := range steps {
				probe.setReady(s.err)
				waitFor(t, "readiness check set", func() bool {
					c.reg.mu.Lock()
					defer c.reg.mu.Unlock()
					r, ok := c.reg.ready["r1"]
					return ok && r == s.ready
				})
				waitFor(t, "readiness reported", func() bool { return c.notReady("r1") == !s.ready && c.publishedNotReady("r1") == !s.ready })
				if st, reason := c.state("r1"); st != model.StateRunning {
					t.Fatalf("state %s (%s), want RUNNING", st, reason)
				}
				if !c.reg.registered("r1") || c.j.has("kill r1") || c.j.has("deregister r1") {
					t.Fatalf("readiness touched the instance: %v", c.j.all())
				}
			}
			if states := c.pub.states("r1"); states[len(states)-1] != model.StateRunning {
				t.Fatalf("states %v", states)
			}
		})
	}
}

// notReady is guid's NotReady on the cell.
func (c *testCell) notReady(guid string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	in := c.insts[guid]
	return in != nil && in.status.NotReady
}

// publishedNotReady is guid's NotReady in its last published change.
func (c *testCell) publishedNotReady(guid string) bool {
	c.pub.mu.Lock()
	defer c.pub.mu.Unlock()
	for i := len(c.pub.changes) - 1; i >= 0; i-- {
		if c.pub.changes[i].GUID == guid {
			return c.pub.changes[i].NotReady
		}
	}
	return false
}
