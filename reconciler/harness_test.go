package reconciler

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/driftless/driftless/blobstore"
	"github.com/driftless/driftless/bus"
	"github.com/driftless/driftless/model"
	"github.com/driftless/driftless/policies"
	"github.com/driftless/driftless/reconciler/executor"
	"github.com/driftless/driftless/reconciler/plan"
	"github.com/driftless/driftless/reconciler/store"
	"github.com/driftless/driftless/reconciler/store/storetest"
)

// The harness runs the controller's decisions and their application
// without NATS, Consul, git or cells (the shape of Nomad's scheduler
// Harness): a fake key-value store under the real store, a fake executor,
// fake stagers and in-memory commits. The end-to-end tests prove the same
// flows against the real engines.

// fakeExec records the actions it is given and accepts them all, or
// refuses them all with err.
type fakeExec struct {
	mu      sync.Mutex
	actions []plan.Action
	gen     uint64
	err     error
}

func (f *fakeExec) Apply(_ context.Context, actions []plan.Action) []executor.Result {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]executor.Result, len(actions))
	for i, a := range actions {
		if a.Kind == plan.Start && a.Instance.GUID == "" {
			a.Instance.GUID = executor.NewGUID()
		}
		f.gen++
		f.actions = append(f.actions, a)
		out[i] = executor.Result{Action: a, Reply: bus.Reply{OK: true, BootID: "boot-1", Generation: f.gen}}
		if f.err != nil {
			out[i] = executor.Result{Action: a, Err: f.err}
		}
	}
	return out
}

func (f *fakeExec) taken() []plan.Action {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.actions)
}

// fakeStaging answers every staging request with a droplet named after
// the release.
type fakeStaging struct{}

func (fakeStaging) Stage(_ context.Context, req bus.StageRequest, _ time.Duration) (bus.StageResult, error) {
	return bus.StageResult{Droplet: "sha256:" + req.ReleaseID, Buildpack: "binary"}, nil
}

// commit is an in-memory Commit whose tree hash of a folder hashes the
// files under it.
type commit struct {
	id    string
	files fstest.MapFS
}

func newCommit(id string, files map[string]string) commit {
	c := commit{id: id, files: fstest.MapFS{}}
	for name, body := range files {
		c.files[name] = &fstest.MapFile{Data: []byte(body), Mode: 0o644}
	}
	return c
}

func (c commit) ID() string                                                   { return c.id }
func (c commit) FS() fs.FS                                                    { return c.files }
func (c commit) WriteTar(context.Context, string, io.Writer, ...string) error { return nil }
func (c commit) TreeHash(p string, exclude ...string) (string, error) {
	h := sha256.New()
	found := false
	for _, name := range slices.Sorted(maps.Keys(c.files)) {
		rel, ok := strings.CutPrefix(name, p+"/")
		if p == "." {
			rel, ok = name, true
		}
		if !ok || slices.Contains(exclude, rel) {
			found = found || ok
			continue
		}
		found = true
		h.Write([]byte(rel + "\x00"))
		h.Write(c.files[name].Data)
	}
	if !found {
		return "", fs.ErrNotExist
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// harness is a leading controller over fakes.
type harness struct {
	t    *testing.T
	c    *Controller
	kv   *storetest.KV
	exec *fakeExec
	se   *sourceEntry
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	set, err := policies.Default(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	blobs, err := blobstore.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Domain: "apps.localhost", Policies: set, Blobs: blobs, BlobStoreURL: "http://127.0.0.1:7070",
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	cfg.Keys = storetest.Keys(t)
	cfg.defaults()
	h := &harness{t: t, kv: storetest.New(), exec: &fakeExec{}}
	st, err := store.New(h.kv, cfg.Keys)
	if err != nil {
		t.Fatal(err)
	}
	h.c = newController(cfg, st, h.exec, fakeStaging{})
	h.c.storeRetry = 50 * time.Millisecond
	h.c.role, h.c.started = RoleLeader, time.Now().Add(-time.Hour)
	h.se = &sourceEntry{name: "apps", space: "dev", status: model.SourceStatus{Name: "apps", Space: "dev"}}
	h.c.sources = []*sourceEntry{h.se}
	ctx, cancel := context.WithCancel(context.Background())
	worked := make(chan struct{})
	// The staging worker is waited for: a stage still writing into the
	// blob store's temporary directory would fail its removal.
	t.Cleanup(func() { cancel(); <-worked; h.c.stopRetries() })
	go func() {
		defer close(worked)
		h.c.stager.work(ctx)
	}()
	return h
}

func (h *harness) status() model.SourceStatus {
	h.t.Helper()
	for _, s := range h.c.Sources() {
		if s.Name == h.se.name {
			return s
		}
	}
	h.t.Fatal("no status of the source")
	return model.SourceStatus{}
}

func (h *harness) eventually(what string, cond func() bool) {
	h.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			h.t.Fatalf("timed out waiting: %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (h *harness) events(kind model.EventKind) []model.Event {
	var out []model.Event
	for _, e := range h.c.Events("", "") {
		if e.Kind == kind {
			out = append(out, e)
		}
	}
	return out
}

const helloManifest = `applications:
- name: hello
  instances: 2
  memory: 64M
  buildpacks: [binary_buildpack]
  command: ./hello
`

func helloCommit(id, manifest string) commit {
	return newCommit(id, map[string]string{"apps/hello/manifest.yml": manifest, "apps/hello/hello": "binary " + id})
}

var hello = model.AppKey{Space: "dev", Name: "hello"}

// TestApplyStagesAndPromotes: an accepted commit stores the app and its
// release, stages it, and the staged release becomes the current one.
func TestApplyStagesAndPromotes(t *testing.T) {
	h := newHarness(t)
	h.c.apply(context.Background(), h.se, helloCommit("c1", helloManifest))

	st := h.status()
	if st.LastApplied != "c1" || len(st.Errors) != 0 {
		t.Fatalf("status: applied %q, errors %v", st.LastApplied, st.Errors)
	}
	app, ok := h.c.store.App(hello)
	if !ok || app.Instances != 2 || app.Source != "apps" {
		t.Fatalf("stored app %+v (found %v)", app, ok)
	}
	h.eventually("the release staged and current", func() bool {
		a, _ := h.c.store.App(hello)
		return a.CurrentID == a.ReleaseID && h.c.store.Release(hello, a.CurrentID).Staged()
	})
	if _, found := h.kv.Value("driftless/apps/dev/hello"); !found {
		t.Error("the app is not in the KV store")
	}
	if len(h.events(model.EventCommitApplied)) != 1 || len(h.events(model.EventStaged)) != 1 {
		t.Errorf("events: %+v", h.c.Events("", ""))
	}
}

// TestApplyStoreFailure: a commit whose desired state cannot be stored is
// not applied, says so in the source's status and an event, and is applied
// once the store takes writes again.
func TestApplyStoreFailure(t *testing.T) {
	h := newHarness(t)
	broken := errors.New("consul: 500 internal error")
	h.kv.Refuse(func(key string) error {
		if strings.HasPrefix(key, "driftless/apps/") {
			return broken
		}
		return nil
	})
	h.c.apply(context.Background(), h.se, helloCommit("c1", helloManifest))

	st := h.status()
	if st.LastApplied != "" {
		t.Errorf("last applied %q after a failed write", st.LastApplied)
	}
	if len(st.Errors) != 1 || st.Errors[0].Kind != model.ProblemStore || !strings.Contains(st.Errors[0].Message, broken.Error()) {
		t.Fatalf("status errors %+v, want one store problem naming the cause", st.Errors)
	}
	if _, ok := h.c.store.App(hello); ok {
		t.Error("an app the store refused is in the desired state")
	}
	if len(h.events(model.EventStoreFailed)) == 0 {
		t.Error("no store-failed event")
	}
	if len(h.events(model.EventCommitApplied)) != 0 {
		t.Error("a commit-applied event for a commit that was not stored")
	}

	h.kv.Refuse(nil)
	h.eventually("the commit applied on retry", func() bool { return h.status().LastApplied == "c1" })
	if st := h.status(); len(st.Errors) != 0 {
		t.Errorf("errors after the retry: %+v", st.Errors)
	}
	if _, ok := h.c.store.App(hello); !ok {
		t.Error("the app is not stored after the retry")
	}
}

// TestApplyRefusesAndKeeps: a broken commit and a commit denied by policy
// change nothing stored; the first one's app keeps its release.
func TestApplyRefusesAndKeeps(t *testing.T) {
	tests := []struct {
		name     string
		manifest string
		kind     model.EventKind
		problem  string
	}{
		{"invalid manifest", "applications:\n- name: hello\n  instances: many\n", model.EventCommitRefused, "instances"},
		{"over the space's quota", strings.Replace(helloManifest, "instances: 2", "instances: 100", 1), model.EventCommitDenied, "policy"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			h.c.apply(context.Background(), h.se, helloCommit("c1", helloManifest))
			before, _ := h.c.store.App(hello)
			h.c.apply(context.Background(), h.se, helloCommit("c2", tt.manifest))
			st := h.status()
			if st.LastSeen != "c2" || st.LastApplied != "c1" {
				t.Errorf("seen %q applied %q, want c2 and c1", st.LastSeen, st.LastApplied)
			}
			if len(st.Errors) == 0 || !strings.Contains(st.Errors[0].Message, tt.problem) {
				t.Errorf("errors %+v, want one about %q", st.Errors, tt.problem)
			}
			if after, _ := h.c.store.App(hello); after.ReleaseID != before.ReleaseID || after.Instances != before.Instances {
				t.Errorf("stored app changed: %+v → %+v", before, after)
			}
			if len(h.events(tt.kind)) != 1 {
				t.Errorf("no %s event", tt.kind)
			}
		})
	}
}

// TestConvergeStartsInstances: with a staged release and a cell, the
// controller starts the desired instances on it and records them.
func TestConvergeStartsInstances(t *testing.T) {
	h := newHarness(t)
	h.c.apply(context.Background(), h.se, helloCommit("c1", helloManifest))
	h.eventually("staged", func() bool { a, _ := h.c.store.App(hello); return a.CurrentID != "" })
	h.c.actual.Heartbeat(bus.CellHeartbeat{CellID: "cell-a", BootID: "boot-1", Address: "127.0.0.1",
		Capacity: model.Resources{MemoryMB: 4096, DiskMB: 100000, Instances: 100}}, time.Now())

	h.c.converge(context.Background())
	starts := h.exec.taken()
	if len(starts) != 2 {
		t.Fatalf("%d actions, want 2 starts: %+v", len(starts), starts)
	}
	app, _ := h.c.store.App(hello)
	for _, a := range starts {
		if a.Kind != plan.Start || a.Cell != "cell-a" || a.Instance.ReleaseID != app.CurrentID || a.Run == nil ||
			a.Run.Droplet != "127.0.0.1:7070/droplets/dev/hello@sha256:"+app.CurrentID {
			t.Errorf("action %+v", a)
		}
	}
	// What was accepted counts: converging again starts nothing more.
	h.c.converge(context.Background())
	if n := len(h.exec.taken()); n != 2 {
		t.Errorf("%d actions after a second convergence, want still 2", n)
	}
	if len(h.events(model.EventPlaced)) != 2 {
		t.Errorf("placed events: %d", len(h.events(model.EventPlaced)))
	}
}

// TestFailedActionsDoNotSpin: when the cells refuse every action, the
// controller does not converge again at once (it waited for the next tick
// or change), and each failure is an event.
func TestFailedActionsDoNotSpin(t *testing.T) {
	h := newHarness(t)
	h.exec.err = errors.New("nats: maximum payload exceeded")
	h.c.apply(context.Background(), h.se, helloCommit("c1", helloManifest))
	h.eventually("staged", func() bool { a, _ := h.c.store.App(hello); return a.CurrentID != "" })
	h.c.actual.Heartbeat(bus.CellHeartbeat{CellID: "cell-a", BootID: "boot-1", Address: "127.0.0.1",
		Capacity: model.Resources{MemoryMB: 4096, DiskMB: 100000, Instances: 100}}, time.Now())
	select { // drain the kicks of the apply and the staging
	case <-h.c.kick:
	default:
	}
	h.c.converge(context.Background())
	select {
	case <-h.c.kick:
		t.Fatal("a convergence whose every action failed asked for another at once")
	default:
	}
	if n := len(h.events(model.EventActionFailed)); n != 2 {
		t.Errorf("%d action-failed events, want 2", n)
	}
}

// TestRollBack: a rollout whose instances never became healthy goes back
// to the release that still serves; a store that refuses the write leaves
// everything as it was.
func TestRollBack(t *testing.T) {
	ctx := context.Background()
	for _, failing := range []bool{false, true} {
		h := newHarness(t)
		for _, r := range []model.Release{
			{ID: "r1", Space: "dev", App: "hello", State: model.ReleaseStaged, DropletDigest: "sha256:1"},
			{ID: "r2", Space: "dev", App: "hello", State: model.ReleaseStaged, DropletDigest: "sha256:2"},
		} {
			if err := h.c.store.PutRelease(ctx, r); err != nil {
				t.Fatal(err)
			}
		}
		if err := h.c.store.PutApp(ctx, model.App{Space: "dev", Name: "hello", Instances: 1, ReleaseID: "r2", CurrentID: "r2", PreviousID: "r1"}); err != nil {
			t.Fatal(err)
		}
		if failing {
			h.kv.Refuse(func(string) error { return errors.New("consul down") })
		}
		h.c.rollBack(ctx, plan.Rollback{App: hello, Release: "r2", To: "r1", Reason: "crashed before healthy"})
		app, _ := h.c.store.App(hello)
		r2 := h.c.store.Release(hello, "r2")
		if failing {
			if app.CurrentID != "r2" || r2.State != model.ReleaseStaged || len(h.events(model.EventStoreFailed)) != 1 {
				t.Errorf("with a failing store: current %s, r2 %s, events %+v", app.CurrentID, r2.State, h.c.Events("", ""))
			}
			continue
		}
		if app.CurrentID != "r1" || app.PreviousID != "" || r2.State != model.ReleaseFailed || !strings.Contains(r2.Error, "crashed before healthy") {
			t.Errorf("after rollback: app %+v, r2 %+v", app, r2)
		}
		if len(h.events(model.EventRolledBack)) != 1 {
			t.Error("no rolled-back event")
		}
	}
}
