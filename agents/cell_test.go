package agents

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/driftless/driftless/agents/runtime"
	"github.com/driftless/driftless/agents/staging"
	"github.com/driftless/driftless/model"
)

// TestAdopt: after an agent restart, a running container with a record is
// RUNNING again without being restarted, an exited one (its task kept or
// reaped) is CRASHED, and a container without a record, an attachment
// without a container and a compile step's container are removed; the
// adopted instance's health check is set by its first probe.
func TestAdopt(t *testing.T) {
	c := newTestCell(t)
	for _, guid := range []string{"running", "exited", "reaped"} {
		if err := c.writeRecord(record{Instance: testRef(guid), Run: testRun(), HostPort: map[string]int{"running": 61005, "exited": 61006, "reaped": 61009}[guid]}); err != nil {
			t.Fatal(err)
		}
	}
	labels := func(guid string) map[string]string { return map[string]string{LabelGUID: guid, LabelApp: "hello"} }
	c.engine.add(runtime.Container{ID: "running", Labels: labels("running"), Status: runtime.StatusRunning})
	c.engine.add(runtime.Container{ID: "exited", Labels: labels("exited"), Status: runtime.StatusStopped, ExitStatus: 2})
	c.engine.add(runtime.Container{ID: "reaped", Labels: labels("reaped"), Status: runtime.StatusAbsent}) // crashed, its task reaped
	c.engine.add(runtime.Container{ID: "orphan", Labels: labels("orphan"), Status: runtime.StatusRunning})
	c.engine.add(runtime.Container{ID: "stage-r1", Labels: map[string]string{LabelStaging: "stage-r1"}, Status: runtime.StatusRunning})
	if _, err := c.net.Attach(context.Background(), "orphan", 61007, ContainerPort); err != nil {
		t.Fatal(err)
	}
	if _, err := c.net.Attach(context.Background(), "left", 61008, ContainerPort); err != nil {
		t.Fatal(err)
	}
	if err := c.adopt(context.Background()); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		guid   string
		want   model.InstanceState
		reason string
	}{
		{guid: "running", want: model.StateRunning, reason: "adopted"},
		{guid: "exited", want: model.StateCrashed, reason: "exited with status 2 while the agent was away"},
		{guid: "reaped", want: model.StateCrashed, reason: "its process had ended before the agent restarted"},
		{guid: "orphan"},
	}
	for _, tt := range tests {
		st, reason := c.state(tt.guid)
		if st != tt.want || !strings.Contains(reason, tt.reason) {
			t.Errorf("%s: %s (%s), want %s (%s)", tt.guid, st, reason, tt.want, tt.reason)
		}
	}
	for _, e := range c.j.all() {
		if strings.HasPrefix(e, "start ") || strings.HasPrefix(e, "pull ") {
			t.Fatalf("adoption started something: %v", c.j.all())
		}
	}
	if c.engine.has("orphan") || c.net.attached("orphan") || c.net.attached("left") || c.engine.has("stage-r1") {
		t.Fatalf("leftovers not removed: %v", c.j.all())
	}
	if !c.engine.has("running") || !c.j.has("reserve 61005") {
		t.Fatalf("adopted instance not kept with its port: %v", c.j.all())
	}
	// Its health check, as the previous agent left it, is set again by
	// its first probe.
	waitFor(t, "the adopted instance's health check set", func() bool { return c.j.has("healthy running true") })
	// Its stop undoes the adopted lifecycle.
	c.stop("running")
	waitFor(t, "running forgotten", func() bool { st, _ := c.state("running"); return st == "" })
	if c.engine.has("running") || !c.j.has("release 61005") || !c.j.has("detach running 61005") {
		t.Fatalf("adopted instance not torn down: %v", c.j.all())
	}
}

// TestSyncRegistry: RUNNING instances missing from the registry are
// registered again and registrations without a RUNNING instance removed.
func TestSyncRegistry(t *testing.T) {
	c := newTestCell(t)
	c.start(t, "i1")
	c.waitState(t, "i1", model.StateRunning)
	tests := []struct {
		name  string
		setup func()
		check func() bool
	}{
		{name: "missing registration", setup: func() { _ = c.reg.Deregister(testRef("i1")) },
			check: func() bool { return c.reg.registered("i1") }},
		{name: "orphan registration", setup: func() { _ = c.reg.Register(model.Endpoint{InstanceRef: testRef("gone")}, model.HealthCheck{}) },
			check: func() bool { return !c.reg.registered("gone") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.setup()
			if err := c.syncRegistry(); err != nil {
				t.Fatal(err)
			}
			if !tt.check() {
				t.Fatalf("not repaired: %v", c.j.all())
			}
		})
	}
}

// TestSyncContainers: a driftless container that is none of the cell's
// instances is removed; the cell's own are kept.
func TestSyncContainers(t *testing.T) {
	c := newTestCell(t)
	c.start(t, "i1")
	c.waitState(t, "i1", model.StateRunning)
	c.engine.add(runtime.Container{ID: "by-hand", Labels: map[string]string{LabelGUID: "by-hand"}, Status: runtime.StatusRunning})
	c.engine.add(runtime.Container{ID: "unlabelled", Status: runtime.StatusRunning})
	if err := c.syncContainers(context.Background()); err != nil {
		t.Fatal(err)
	}
	if c.engine.has("by-hand") || !c.engine.has("i1") || !c.engine.has("unlabelled") {
		t.Fatalf("containers after the sync: %v", c.j.all())
	}
}

// TestCompile runs compile steps through the instances' runner: what an
// earlier agent left is removed first, and the network, image and
// container are undone in reverse once the step ends.
func TestCompile(t *testing.T) {
	tests := []struct {
		name   string
		status uint32
		want   string
	}{
		{name: "success"},
		{name: "failure", status: 1, want: "exited with status 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newTestCell(t)
			job := staging.CompileJob{ID: "stage-r1", Image: "10.0.0.1:7070/stacks/tiny@sha256:abc", Script: "true", MemoryMB: 64}
			go func() {
				waitFor(t, "the compile step's watch", func() bool {
					c.engine.mu.Lock()
					defer c.engine.mu.Unlock()
					return c.engine.exits[job.ID] != nil
				})
				c.engine.exit(job.ID, runtime.Exit{Status: tt.status})
			}()
			err := compileRunner{c.Agent}.Compile(context.Background(), job, func(string) {})
			if (tt.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.want)) {
				t.Fatalf("compile = %v, want %q", err, tt.want)
			}
			want := []string{
				"stop stage-r1", "remove log stage-r1", "detach stage-r1 0", // leftovers
				"attach stage-r1 0", "pull " + job.Image, "start stage-r1",
				"stop stage-r1", "remove log stage-r1", "detach stage-r1 0",
			}
			if got := c.j.all(); !slices.Equal(got, want) {
				t.Fatalf("compile did %v, want %v", got, want)
			}
		})
	}
}

func TestPlainHTTPHosts(t *testing.T) {
	named := []string{"10.0.0.1:7070", "http://Blobs.example:8080/", ""}
	plain, tls := PlainHTTPHosts(named, true), PlainHTTPHosts(named, false)
	tests := []struct {
		host          string
		want, wantTLS bool
	}{
		{"10.0.0.1:7070", true, true},
		{"blobs.example:8080", true, true},
		{"127.0.0.1:7070", true, false}, // a cell given a CA pulls over HTTPS on loopback too
		{"localhost:5000", true, false},
		{"[::1]:7070", true, false},
		{"10.0.0.1:7071", false, false},
		{"10.0.0.2:7070", false, false},
		{"registry.example", false, false},
	}
	for _, tt := range tests {
		if got := plain(tt.host); got != tt.want {
			t.Errorf("plain(%q) = %v, want %v", tt.host, got, tt.want)
		}
		if got := tls(tt.host); got != tt.wantTLS {
			t.Errorf("without loopback, plain(%q) = %v, want %v", tt.host, got, tt.wantTLS)
		}
	}
}

// TestHeartbeat reports every instance of the cell.
func TestHeartbeat(t *testing.T) {
	c := newTestCell(t)
	c.start(t, "i1")
	c.start(t, "i2")
	c.waitState(t, "i2", model.StateRunning)
	hb := c.Heartbeat()
	if hb.CellID != "cell-1" || len(hb.Instances) != 2 || hb.Generation == 0 {
		t.Fatalf("heartbeat %+v", hb)
	}
}
