package agents

import (
	"context"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/driftless/driftless/agents/runtime"
	"github.com/driftless/driftless/model"
)

func TestLifecycleRunAndUndo(t *testing.T) {
	tests := []struct {
		name     string
		failDo   string // the step whose do fails
		failUndo string // the step whose undo fails once
		wantRun  []string
		// wantUndo is the first undo's events; wantLeft the steps left
		// entered after it.
		wantUndo []string
		wantLeft int
	}{
		{name: "all pass", wantRun: []string{"do a", "do b", "do c"},
			wantUndo: []string{"undo c", "undo b", "undo a"}},
		{name: "a failed step is undone too", failDo: "b", wantRun: []string{"do a", "do b"},
			wantUndo: []string{"undo b", "undo a"}},
		{name: "a failed undo stops the undo", failUndo: "b", wantRun: []string{"do a", "do b", "do c"},
			wantUndo: []string{"undo c", "undo b"}, wantLeft: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var events []string
			failedUndo := false
			mk := func(name string) step {
				return step{name: name,
					do: func(context.Context) error {
						events = append(events, "do "+name)
						if name == tt.failDo {
							return errBoom
						}
						return nil
					},
					undo: func(context.Context) error {
						events = append(events, "undo "+name)
						if name == tt.failUndo && !failedUndo {
							failedUndo = true
							return errBoom
						}
						return nil
					}}
			}
			l := &lifecycle{steps: []step{mk("a"), mk("b"), mk("c")}}
			err := l.run(context.Background())
			if (err != nil) != (tt.failDo != "") {
				t.Fatalf("run = %v", err)
			}
			if !slices.Equal(events, tt.wantRun) {
				t.Fatalf("run did %v, want %v", events, tt.wantRun)
			}
			events = nil
			err = l.undo(context.Background())
			if (err != nil) != (tt.failUndo != "") {
				t.Fatalf("undo = %v", err)
			}
			if !slices.Equal(events, tt.wantUndo) || l.entered != tt.wantLeft {
				t.Fatalf("undo did %v leaving %d, want %v leaving %d", events, l.entered, tt.wantUndo, tt.wantLeft)
			}
			if tt.wantLeft > 0 {
				events = nil
				if err := l.undo(context.Background()); err != nil || l.entered != 0 {
					t.Fatalf("second undo = %v, left %d", err, l.entered)
				}
				if want := []string{"undo b", "undo a"}; !slices.Equal(events, want) {
					t.Fatalf("second undo did %v, want %v", events, want)
				}
			}
		})
	}
}

func TestLifecycleStopsWhenCtxEnds(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	ran := 0
	l := &lifecycle{steps: []step{
		{name: "a", do: func(context.Context) error { ran++; cancel(); return nil }},
		{name: "b", do: func(context.Context) error { ran++; return nil }},
	}}
	if err := l.run(ctx); !errors.Is(err, context.Canceled) || ran != 1 || l.entered != 1 {
		t.Fatalf("run = %v after %d steps (%d entered), want canceled after 1", err, ran, l.entered)
	}
}

// TestLaunch brings instances up with each step failing in turn: the
// instance is CRASHED with the step's reason and everything done is undone
// in reverse; with none failing it is RUNNING and registered.
func TestLaunch(t *testing.T) {
	tests := []struct {
		name   string
		fail   func(c *testCell)
		reason string
		// undone are the undo events expected, in order.
		undone []string
	}{
		{name: "healthy", reason: "health check passed"},
		{name: "no host port", fail: func(c *testCell) { c.ports.fail = errBoom },
			reason: "no host port free"},
		{name: "network", fail: func(c *testCell) { c.net.fail = errBoom },
			reason: "setting up the network", undone: []string{"detach i1 61000", "release 61000"}},
		{name: "droplet", fail: func(c *testCell) { c.engine.failNext("pull", errBoom) },
			reason: "fetching the droplet", undone: []string{"detach i1 61000", "release 61000"}},
		{name: "container", fail: func(c *testCell) { c.engine.failNext("start", errBoom) },
			reason: "starting the container", undone: []string{"stop i1", "remove log i1", "detach i1 61000", "release 61000"}},
		{name: "health check", fail: func(c *testCell) { c.probe.err = errBoom },
			reason: "health check (port) did not pass", undone: []string{"stop i1", "remove log i1", "detach i1 61000", "release 61000"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newTestCell(t)
			if tt.fail != nil {
				tt.fail(c)
			}
			c.start(t, "i1")
			c.waitLaunched(t, "i1")
			st, reason := c.state("i1")
			if !strings.Contains(reason, tt.reason) {
				t.Fatalf("state %s (%s), want reason %q", st, reason, tt.reason)
			}
			if tt.fail == nil {
				if st != model.StateRunning || !c.reg.registered("i1") {
					t.Fatalf("state %s, registered %v: want RUNNING and registered", st, c.reg.registered("i1"))
				}
				want := []string{"allocate 61000", "attach i1 61000", "pull " + testRun().Droplet, "start i1", "register i1"}
				if got := c.j.all(); !slices.Equal(got, want) {
					t.Fatalf("steps %v, want %v", got, want)
				}
				return
			}
			if st != model.StateCrashed {
				t.Fatalf("state %s, want CRASHED", st)
			}
			events := c.j.all()
			var undone []string
			for _, e := range events {
				if slices.Contains([]string{"kill", "stop", "remove", "detach", "release", "deregister"}, strings.Fields(e)[0]) {
					undone = append(undone, e)
				}
			}
			// The crash deregisters first and kills the process (if there
			// is one: at once, not after a grace period); the rest is the
			// undo.
			if k, s := slices.Index(undone, "kill i1"), slices.Index(undone, "stop i1"); k < 0 || (s >= 0 && k > s) {
				t.Fatalf("want a kill before the undo: %v", events)
			}
			undone = slices.DeleteFunc(undone, func(e string) bool { return e == "deregister i1" || e == "kill i1" })
			if !slices.Equal(undone, tt.undone) {
				t.Fatalf("undone %v, want %v (all: %v)", undone, tt.undone, events)
			}
			if c.ports.inUse() != 0 || c.net.attached("i1") || c.engine.has("i1") {
				t.Fatalf("left behind: %d ports, attached %v, container %v", c.ports.inUse(), c.net.attached("i1"), c.engine.has("i1"))
			}
			if _, err := os.Stat(c.recordPath("i1")); !os.IsNotExist(err) {
				t.Fatalf("instance record left: %v", err)
			}
			if _, err := os.Stat(c.bindingsDir("i1")); !os.IsNotExist(err) {
				t.Fatalf("instance bindings left: %v", err)
			}
			// The stop that follows finds nothing left to undo.
			n := len(c.j.all())
			c.stop("i1")
			waitFor(t, "i1 forgotten", func() bool { st, _ := c.state("i1"); return st == "" })
			if extra := c.j.since(n); !slices.Equal(extra, []string{"deregister i1"}) {
				t.Fatalf("stop of a crashed start did %v", extra)
			}
		})
	}
}

// TestStopUndoesInReverse: a stop deregisters, drains, then removes the
// container, the network and the host port, and reports STOPPED.
func TestStopUndoesInReverse(t *testing.T) {
	c := newTestCell(t)
	c.start(t, "i1")
	c.waitState(t, "i1", model.StateRunning)
	n := len(c.j.all())
	c.stop("i1")
	waitFor(t, "i1 forgotten", func() bool { st, _ := c.state("i1"); return st == "" })
	want := []string{"deregister i1", "deregister i1", "stop i1", "remove log i1", "detach i1 61000", "release 61000"}
	if got := c.j.since(n); !slices.Equal(got, want) {
		t.Fatalf("stop did %v, want %v", got, want)
	}
	if got, want := c.pub.states("i1"), []model.InstanceState{model.StateStarting, model.StateRunning, model.StateStopping, model.StateStopped}; !slices.Equal(got, want) {
		t.Fatalf("reported %v, want %v", got, want)
	}
	if _, err := os.Stat(c.recordPath("i1")); !os.IsNotExist(err) {
		t.Fatalf("instance record left: %v", err)
	}
}

// TestStopDrainsARunningInstance: a RUNNING instance told to stop is
// deregistered, then left serving for Config.Drain (routers take it out of
// their tables meanwhile; requests they sent it finish) before its
// container is stopped. (The state read for this was once read after the
// instance had become STOPPING, so no instance was ever drained.)
func TestStopDrainsARunningInstance(t *testing.T) {
	c := newTestCell(t)
	c.cfg.Drain = 300 * time.Millisecond
	c.start(t, "i1")
	c.waitState(t, "i1", model.StateRunning)
	begun := time.Now()
	c.stop("i1")
	waitFor(t, "i1's container stopped", func() bool { return c.j.has("stop i1") })
	if took := time.Since(begun); took < c.cfg.Drain {
		t.Fatalf("the container was stopped %s after the stop began, want at least the drain's %s", took, c.cfg.Drain)
	}
}

// TestStopWaitsForLaunch: a stop that comes while the container is being
// created removes nothing until the creation has returned (a task created
// after its container was deleted leaves a shim running for ever).
func TestStopWaitsForLaunch(t *testing.T) {
	c := newTestCell(t)
	c.engine.startGate, c.engine.startEntered = make(chan struct{}), make(chan struct{})
	c.start(t, "i1")
	<-c.engine.startEntered
	c.stop("i1")
	c.waitState(t, "i1", model.StateStopping)
	for _, e := range c.j.all() {
		if strings.HasPrefix(e, "stop ") || strings.HasPrefix(e, "detach ") {
			t.Fatalf("%q while the container was being created: %v", e, c.j.all())
		}
	}
	close(c.engine.startGate)
	waitFor(t, "i1 forgotten", func() bool { st, _ := c.state("i1"); return st == "" })
	events := c.j.all()
	if s, st := indexOf(events, "start i1"), indexOf(events, "stop i1"); s < 0 || st < s {
		t.Fatalf("container removed before its creation returned: %v", events)
	}
	if c.engine.has("i1") || c.net.attached("i1") || c.ports.inUse() != 0 || c.reg.registered("i1") {
		t.Fatalf("left behind after the stop: %v", events)
	}
	if got := c.pub.states("i1"); slices.Contains(got, model.StateCrashed) || slices.Contains(got, model.StateRunning) {
		t.Fatalf("reported %v", got)
	}
}

// TestStopDeregistersAgainAfterLaunch: a launch that registers the
// instance as the stop deregisters it is undone: the registration does not
// outlive the stop.
func TestStopDeregistersAgainAfterLaunch(t *testing.T) {
	c := newTestCell(t)
	stopped := make(chan struct{})
	c.reg.onRegister = func(guid string) {
		c.stop(guid)
		waitFor(t, "the stop's first deregistration", func() bool { return c.j.has("deregister " + guid) })
		close(stopped)
	}
	c.start(t, "i1")
	<-stopped
	waitFor(t, "i1 forgotten", func() bool { st, _ := c.state("i1"); return st == "" })
	events := c.j.all()
	if reg, dereg := indexOf(events, "register i1"), slices.Index(events, "deregister i1"); reg < 0 || dereg > reg {
		t.Fatalf("want the registration after the stop's deregistration: %v", events)
	}
	if c.reg.registered("i1") {
		t.Fatalf("still registered after the stop: %v", events)
	}
}

// TestStopRetriesAndFinishesWhenAgentStops: a teardown whose engine fails
// is retried, and not cut short when the agent stops.
func TestStopRetriesAndFinishesWhenAgentStops(t *testing.T) {
	c := newTestCell(t)
	c.start(t, "i1")
	c.waitState(t, "i1", model.StateRunning)
	c.engine.failNext("stop", errBoom)
	c.engine.failNext("stop", errBoom)
	c.cancel() // the agent stops
	c.mu.Lock()
	in := c.insts["i1"]
	in.stopping = true
	in.status.State = model.StateCrashed // no drain
	c.mu.Unlock()
	c.Agent.stop(in)
	if c.engine.has("i1") || c.net.attached("i1") || c.ports.inUse() != 0 {
		t.Fatalf("teardown cut short: %v", c.j.all())
	}
	if failed := slices.DeleteFunc(c.j.all(), func(e string) bool { return e != "stop i1 failed" }); len(failed) != 2 {
		t.Fatalf("want 2 failed attempts before the third: %v", c.j.all())
	}
}

// TestWatchExit: a broken watch (containerd restarted) is watched again,
// not a crash; an exit afterwards is one; a container gone meanwhile is one.
func TestWatchExit(t *testing.T) {
	tests := []struct {
		name   string
		then   func(c *testCell)
		reason string
	}{
		{name: "exit after a re-watch", then: func(c *testCell) { c.engine.exit("i1", runtime.Exit{Status: 3}) },
			reason: "exited with status 3"},
		{name: "gone meanwhile", then: func(c *testCell) {}, reason: "went away"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newTestCell(t)
			c.start(t, "i1")
			c.waitState(t, "i1", model.StateRunning)
			if tt.name == "gone meanwhile" {
				c.engine.mu.Lock()
				delete(c.engine.containers, "i1")
				c.engine.mu.Unlock()
			}
			c.engine.exit("i1", runtime.Exit{Err: errors.New("containerd went away")})
			if tt.name != "gone meanwhile" {
				waitFor(t, "a new watch", func() bool {
					c.engine.mu.Lock()
					defer c.engine.mu.Unlock()
					return c.engine.exits["i1"] != nil
				})
				if st, _ := c.state("i1"); st != model.StateRunning {
					t.Fatalf("state %s after a broken watch, want RUNNING", st)
				}
			}
			tt.then(c)
			c.waitState(t, "i1", model.StateCrashed)
			if _, reason := c.state("i1"); !strings.Contains(reason, tt.reason) {
				t.Fatalf("reason %q, want %q", reason, tt.reason)
			}
			if c.reg.registered("i1") {
				t.Fatal("a crashed instance is still registered")
			}
		})
	}
}

// TestLivenessCrash: a RUNNING instance failing LivenessFailures checks in
// a row is crashed and killed; its stop then removes it.
func TestLivenessCrash(t *testing.T) {
	c := newTestCell(t)
	c.start(t, "i1")
	c.waitState(t, "i1", model.StateRunning)
	c.probe.mu.Lock()
	c.probe.probe = errBoom
	c.probe.mu.Unlock()
	c.waitState(t, "i1", model.StateCrashed)
	if _, reason := c.state("i1"); !strings.Contains(reason, "failed 3 times in a row") {
		t.Fatalf("reason %q", reason)
	}
	waitFor(t, "the kill", func() bool { return c.j.has("kill i1") })
	c.stop("i1")
	waitFor(t, "i1 forgotten", func() bool { st, _ := c.state("i1"); return st == "" })
	if c.engine.has("i1") || c.ports.inUse() != 0 {
		t.Fatalf("left behind: %v", c.j.all())
	}
}

// TestLivenessFailureLeavesRouters: a failed liveness probe fails the
// instance's health check at once (out of the routers), a passing one
// passes it again, and the instance keeps running throughout.
func TestLivenessFailureLeavesRouters(t *testing.T) {
	c := newTestCell(t)
	c.start(t, "i1")
	c.waitState(t, "i1", model.StateRunning)
	c.probe.mu.Lock()
	c.probe.failures = LivenessFailures - 1
	c.probe.mu.Unlock()
	waitFor(t, "healthy again", func() bool { return c.j.has("healthy i1 true") })
	if !c.j.has("healthy i1 false") {
		t.Fatalf("the failed probe did not fail the check: %v", c.j.all())
	}
	if st, reason := c.state("i1"); st != model.StateRunning || c.j.has("kill i1") {
		t.Fatalf("state %s (%s) after %d failed probes: %v", st, reason, LivenessFailures-1, c.j.all())
	}
}

func TestAcceptRefuses(t *testing.T) {
	c := newTestCell(t)
	c.cfg.Capacity.MemoryMB = 100
	tests := []struct {
		name string
		ref  model.InstanceRef
		run  model.RunSpec
		want string
	}{
		{name: "no droplet", ref: testRef("i1"), want: "needs"},
		{name: "no guid", ref: model.InstanceRef{App: "a", Space: "s"}, run: testRun(), want: "needs"},
		{name: "no memory", ref: testRef("i2"), run: model.RunSpec{Droplet: "d", MemoryMB: 200}, want: "MB free"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c.mu.Lock()
			err := c.acceptLocked(tt.ref, tt.run)
			c.mu.Unlock()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("accept = %v, want %q", err, tt.want)
			}
		})
	}
}

// TestRecordHasNoEnv: the record kept for adoption never holds the env.
func TestRecordHasNoEnv(t *testing.T) {
	c := newTestCell(t)
	c.start(t, "i1")
	c.waitState(t, "i1", model.StateRunning)
	rec, err := c.readRecord("i1")
	if err != nil {
		t.Fatal(err)
	}
	if rec.Run.Env != nil || rec.HostPort != 61000 {
		t.Fatalf("record %+v", rec)
	}
}
