package agents

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/driftless/driftless/agents/network"
	"github.com/driftless/driftless/agents/runtime"
	"github.com/driftless/driftless/bus"
	"github.com/driftless/driftless/model"
)

// journal records the side effects of every fake, in order.
type journal struct {
	mu     sync.Mutex
	events []string
}

func (j *journal) add(format string, args ...any) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.events = append(j.events, fmt.Sprintf(format, args...))
}

func (j *journal) all() []string {
	j.mu.Lock()
	defer j.mu.Unlock()
	return slices.Clone(j.events)
}

// since is the events from index i on.
func (j *journal) since(i int) []string { return j.all()[i:] }

func (j *journal) has(event string) bool { return slices.Contains(j.all(), event) }

// fakeEngine is a container engine in memory.
type fakeEngine struct {
	j      *journal
	logDir string

	mu         sync.Mutex
	containers map[string]*runtime.Container
	exits      map[string]chan runtime.Exit
	// failures by operation ("pull", "start", "wait", "stop"): returned
	// (and dropped) by the next call.
	fail map[string][]error
	// startGate, when set, holds Start until it is closed.
	startGate chan struct{}
	// startEntered is closed when a Start has begun.
	startEntered chan struct{}
}

func newFakeEngine(j *journal, logDir string) *fakeEngine {
	return &fakeEngine{j: j, logDir: logDir, containers: map[string]*runtime.Container{},
		exits: map[string]chan runtime.Exit{}, fail: map[string][]error{}}
}

func (e *fakeEngine) failNext(op string, err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.fail[op] = append(e.fail[op], err)
}

func (e *fakeEngine) failure(op string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if errs := e.fail[op]; len(errs) > 0 {
		e.fail[op] = errs[1:]
		return errs[0]
	}
	return nil
}

// add puts a container in the engine as if another agent process made it.
func (e *fakeEngine) add(c runtime.Container) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.containers[c.ID] = &c
}

func (e *fakeEngine) has(id string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.containers[id] != nil
}

// exit ends container id's process, or breaks its watch (err set).
func (e *fakeEngine) exit(id string, ex runtime.Exit) {
	e.mu.Lock()
	ch := e.exits[id]
	delete(e.exits, id)
	if c := e.containers[id]; c != nil && ex.Err == nil {
		c.Status, c.ExitStatus = runtime.StatusStopped, ex.Status
	}
	e.mu.Unlock()
	if ch != nil {
		ch <- ex
		close(ch)
	}
}

func (e *fakeEngine) Pull(_ context.Context, ref string) error {
	e.j.add("pull %s", ref)
	return e.failure("pull")
}

func (e *fakeEngine) Start(_ context.Context, spec runtime.Spec) error {
	e.mu.Lock()
	gate, entered := e.startGate, e.startEntered
	e.mu.Unlock()
	if entered != nil {
		close(entered)
	}
	if gate != nil {
		<-gate // like Runtime.Start: not cut short by ctx
	}
	e.j.add("start %s", spec.ID)
	if err := e.failure("start"); err != nil {
		return err
	}
	e.add(runtime.Container{ID: spec.ID, Image: spec.Image, Labels: spec.Labels, Status: runtime.StatusRunning})
	return nil
}

func (e *fakeEngine) Wait(_ context.Context, id string) (<-chan runtime.Exit, error) {
	if err := e.failure("wait"); err != nil {
		return nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.containers[id] == nil {
		return nil, fmt.Errorf("waiting for %s: %w", id, runtime.ErrNotFound)
	}
	ch := make(chan runtime.Exit, 1)
	e.exits[id] = ch
	return ch, nil
}

func (e *fakeEngine) Kill(_ context.Context, id string) error {
	e.j.add("kill %s", id)
	if !e.has(id) {
		return fmt.Errorf("killing %s: %w", id, runtime.ErrNotFound)
	}
	return nil
}

func (e *fakeEngine) Stop(_ context.Context, id string, _ time.Duration) error {
	if err := e.failure("stop"); err != nil {
		e.j.add("stop %s failed", id)
		return err
	}
	e.j.add("stop %s", id)
	e.mu.Lock()
	delete(e.containers, id)
	ch := e.exits[id]
	delete(e.exits, id)
	e.mu.Unlock()
	if ch != nil {
		close(ch)
	}
	return nil
}

// Reap has nothing to flush: the fake's logs are written by the tests.
func (e *fakeEngine) Reap(context.Context, string) error { return nil }

func (e *fakeEngine) List(context.Context) ([]runtime.Container, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []runtime.Container
	for _, c := range e.containers {
		out = append(out, *c)
	}
	return out, nil
}

func (e *fakeEngine) LogPath(id string) string { return filepath.Join(e.logDir, id+".log") }

func (e *fakeEngine) RemoveLog(id string) error {
	e.j.add("remove log %s", id)
	return nil
}

// Exec records a process started in a container; exit("ID/EXECID", …)
// ends it.
func (e *fakeEngine) Exec(_ context.Context, id string, spec runtime.ExecSpec) (<-chan runtime.Exit, error) {
	e.j.add("exec %s in %s", spec.ID, id)
	if err := e.failure("exec"); err != nil {
		return nil, err
	}
	return e.WatchExec(context.Background(), id, spec.ID)
}

func (e *fakeEngine) WatchExec(_ context.Context, id, execID string) (<-chan runtime.Exit, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.containers[id] == nil {
		return nil, fmt.Errorf("watching %s in %s: %w", execID, id, runtime.ErrNotFound)
	}
	ch := make(chan runtime.Exit, 1)
	e.exits[id+"/"+execID] = ch
	return ch, nil
}

// fakeNet is container networking in memory.
type fakeNet struct {
	j    *journal
	mu   sync.Mutex
	atts map[string]*network.Attachment
	fail error
	// rules are the policy rules last set; ruleWrites counts the writes.
	rules      []network.PolicyRule
	ruleWrites int
	next       int // attachments made
}

func (n *fakeNet) Attach(_ context.Context, id string, hostPort, containerPort int) (*network.Attachment, error) {
	n.j.add("attach %s %d", id, hostPort)
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.fail != nil {
		return nil, n.fail
	}
	if n.atts == nil {
		n.atts = map[string]*network.Attachment{}
	}
	n.next++ // 10.0.0.2, 10.0.0.3, …
	att := &network.Attachment{ID: id, NetNSPath: "/var/run/netns/" + id, IP: fmt.Sprintf("10.0.0.%d", 1+n.next), HostPort: hostPort, ContainerPort: containerPort}
	n.atts[id] = att
	return att, nil
}

func (n *fakeNet) Detach(_ context.Context, id string, hostPort, _ int) error {
	n.j.add("detach %s %d", id, hostPort)
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.atts, id)
	return nil
}

func (n *fakeNet) Lookup(id string) (*network.Attachment, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	att, ok := n.atts[id]
	return att, ok
}

func (n *fakeNet) Attachments() ([]*network.Attachment, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []*network.Attachment
	for _, att := range n.atts {
		out = append(out, att)
	}
	return out, nil
}

func (n *fakeNet) SetPolicyRules(_ context.Context, rules []network.PolicyRule) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.rules = slices.Clone(rules)
	n.ruleWrites++
	return nil
}

func (n *fakeNet) policyRules() []network.PolicyRule {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Clone(n.rules)
}

func (n *fakeNet) attached(id string) bool {
	_, ok := n.Lookup(id)
	return ok
}

// fakePorts hands out ports from 61000.
type fakePorts struct {
	j    *journal
	mu   sync.Mutex
	next int
	held map[int]bool
	fail error
}

func (p *fakePorts) Allocate(context.Context) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.fail != nil {
		return 0, p.fail
	}
	if p.held == nil {
		p.held = map[int]bool{}
	}
	port := 61000 + p.next
	p.next++
	p.held[port] = true
	p.j.add("allocate %d", port)
	return port, nil
}

func (p *fakePorts) Reserve(port int) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.held == nil {
		p.held = map[int]bool{}
	}
	p.held[port] = true
	p.j.add("reserve %d", port)
	return nil
}

func (p *fakePorts) Release(port int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.held, port)
	p.j.add("release %d", port)
}

func (p *fakePorts) inUse() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.held)
}

// fakeRegistry is Consul in memory.
type fakeRegistry struct {
	j    *journal
	mu   sync.Mutex
	regs map[string]model.Endpoint
	// onRegister, when set, runs before a registration is kept.
	onRegister func(guid string)
	// ready is the readiness check of each instance as last set (by
	// Register or SetReady), healthy its health check.
	ready, healthy map[string]bool
}

func (r *fakeRegistry) RegisterCell() error { return nil }
func (r *fakeRegistry) RenewCell() error    { return nil }

func (r *fakeRegistry) Register(ep model.Endpoint, hc model.HealthCheck) error {
	if r.onRegister != nil {
		r.onRegister(ep.GUID)
	}
	r.j.add("register %s", ep.GUID)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.regs == nil {
		r.regs = map[string]model.Endpoint{}
	}
	r.regs[ep.GUID] = ep
	if hc.Readiness.Probed() {
		r.setLocked(&r.ready, ep.GUID, !ep.NotReady)
	}
	if hc.Kind() != model.HealthProcess {
		r.setLocked(&r.healthy, ep.GUID, true)
	}
	return nil
}

// setLocked sets a check in m. Caller holds r.mu.
func (r *fakeRegistry) setLocked(m *map[string]bool, guid string, v bool) {
	if *m == nil {
		*m = map[string]bool{}
	}
	(*m)[guid] = v
}

func (r *fakeRegistry) Deregister(ref model.InstanceRef) error {
	r.j.add("deregister %s", ref.GUID)
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.regs, ref.GUID)
	return nil
}

func (r *fakeRegistry) SetReady(ref model.InstanceRef, ready bool) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.setLocked(&r.ready, ref.GUID, ready)
	return nil
}

func (r *fakeRegistry) SetHealthy(ref model.InstanceRef, healthy bool) error {
	r.j.add("healthy %s %v", ref.GUID, healthy)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.setLocked(&r.healthy, ref.GUID, healthy)
	return nil
}

func (r *fakeRegistry) Instances() (map[string]model.InstanceRef, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]model.InstanceRef{}
	for guid, ep := range r.regs {
		out[guid] = ep.InstanceRef
	}
	return out, nil
}

func (r *fakeRegistry) registered(guid string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.regs[guid]
	return ok
}

// fakePub keeps every instance change and log line published.
type fakePub struct {
	mu      sync.Mutex
	changes []model.InstanceStatus
	lines   []model.LogLine
}

func (p *fakePub) Publish(subject string, v any) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if ic, ok := v.(bus.InstanceChanged); ok && subject == bus.InstancesSubject(ic.CellID) {
		p.changes = append(p.changes, ic.Instance)
	}
	if l, ok := v.(model.LogLine); ok {
		p.lines = append(p.lines, l)
	}
	return nil
}

// logLines is the text of the log lines from source published.
func (p *fakePub) logLines(source model.LogSource) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for _, l := range p.lines {
		if l.Source == source {
			out = append(out, l.Text)
		}
	}
	return out
}

// states is the states guid was reported in, in order.
func (p *fakePub) states(guid string) []model.InstanceState {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []model.InstanceState
	for _, st := range p.changes {
		if st.GUID == guid {
			out = append(out, st.State)
		}
	}
	return out
}

// fakeProber passes or fails health checks as told; a nil gate passes at once.
type fakeProber struct {
	mu    sync.Mutex
	err   error
	gate  chan struct{}
	probe error
	// failures, while above zero, is how many more probes fail with
	// errBoom before probe answers again.
	failures int
}

func (p *fakeProber) WaitHealthy(ctx context.Context, _ model.HealthCheck, _ string, _ time.Duration) error {
	p.mu.Lock()
	err, gate := p.err, p.gate
	p.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return err
}

func (p *fakeProber) Probe(context.Context, model.HealthCheck, string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.failures > 0 {
		p.failures--
		return errBoom
	}
	return p.probe
}

// testCell is an agent on fakes.
type testCell struct {
	*Agent
	j      *journal
	engine *fakeEngine
	net    *fakeNet
	ports  *fakePorts
	reg    *fakeRegistry
	pub    *fakePub
	probe  *fakeProber
	cancel context.CancelFunc
}

func newTestCell(t *testing.T) *testCell {
	t.Helper()
	dir := t.TempDir()
	if err := makeDataDirs(dir); err != nil {
		t.Fatal(err)
	}
	j := &journal{}
	c := &testCell{j: j, engine: newFakeEngine(j, filepath.Join(dir, "logs")), net: &fakeNet{j: j},
		ports: &fakePorts{j: j}, reg: &fakeRegistry{j: j}, pub: &fakePub{}, probe: &fakeProber{}}
	cfg := Config{CellID: "cell-1", Address: "127.0.0.1", DataDir: dir, Drain: time.Millisecond,
		SyncInterval: time.Hour, CheckInterval: 10 * time.Millisecond,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	cfg.defaults()
	a, err := newAgent(cfg, parts{engine: c.engine, net: c.net, ports: c.ports, registry: c.reg, pub: c.pub, probe: c.probe})
	if err != nil {
		t.Fatal(err)
	}
	a.retryPause = time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	a.ctx, c.cancel = ctx, cancel
	c.Agent = a
	t.Cleanup(func() {
		cancel()
		a.wg.Wait()
	})
	return c
}

func testRef(guid string) model.InstanceRef {
	return model.InstanceRef{GUID: guid, Space: "dev", App: "hello", Index: 0, ReleaseID: "r1"}
}

func testRun() model.RunSpec {
	return model.RunSpec{Droplet: "10.0.0.1:7070/droplets/dev/hello@sha256:abc", MemoryMB: 64,
		Env: map[string]string{"SECRET": "s"}}
}

func (c *testCell) start(t *testing.T, guid string) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.acceptLocked(testRef(guid), testRun()); err != nil {
		t.Fatal(err)
	}
}

func (c *testCell) stop(guid string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stopLocked(guid, "test")
}

// state is guid's state on the cell ("" once forgotten).
func (c *testCell) state(guid string) (model.InstanceState, string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	in := c.insts[guid]
	if in == nil {
		return "", ""
	}
	return in.status.State, in.status.Reason
}

// waitFor polls cond for up to 5 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func (c *testCell) waitState(t *testing.T, guid string, want model.InstanceState) {
	t.Helper()
	waitFor(t, fmt.Sprintf("%s to be %q", guid, want), func() bool {
		st, _ := c.state(guid)
		return st == want
	})
}

// waitLaunched waits for guid's launch to return.
func (c *testCell) waitLaunched(t *testing.T, guid string) {
	t.Helper()
	c.mu.Lock()
	in := c.insts[guid]
	c.mu.Unlock()
	if in == nil || in.launched == nil {
		t.Fatalf("%s was not launched", guid)
	}
	select {
	case <-in.launched:
	case <-time.After(5 * time.Second):
		t.Fatalf("launch of %s did not return", guid)
	}
}

// indexOf is the index of the first event with prefix, -1 if none.
func indexOf(events []string, prefix string) int {
	return slices.IndexFunc(events, func(e string) bool { return strings.HasPrefix(e, prefix) })
}

var errBoom = errors.New("boom")
