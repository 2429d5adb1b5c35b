package reconciler

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/driftless/driftless/bus"
	"github.com/driftless/driftless/model"
	"github.com/driftless/driftless/policies"
	"github.com/driftless/driftless/reconciler/source"
	"github.com/driftless/driftless/reconciler/store"
)

// prN is pull request n opened.
func prN(n int) model.PullRequest {
	return model.PullRequest{Number: n, Action: model.PROpened, HeadRef: "feature", Author: "ada"}
}

// withQuotas puts a quotas-only policy set in force.
func withQuotas(t *testing.T, h *harness, quotas string) {
	t.Helper()
	set, err := policies.Load(context.Background(), fstest.MapFS{policies.QuotasFile: {Data: []byte(quotas)}})
	if err != nil {
		t.Fatal(err)
	}
	h.c.mu.Lock()
	h.c.policy = set
	h.c.mu.Unlock()
}

// TestPreviewBudgetPerSource: with previews.per_source 1, the second pull
// request's preview is refused with the budget's reason and production is
// untouched; when the first closes, the second is tried again and deploys.
// The budget's instances bound every preview app.
func TestPreviewBudgetPerSource(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t)
	withQuotas(t, h, "previews:\n  per_source: 1\n  instances: 2\n")
	h.c.apply(ctx, h.se, helloCommit("c1", helloManifest))
	h.c.deployPreview(ctx, h.se, prN(7), helloCommit("p7", helloManifest))
	h.c.deployPreview(ctx, h.se, prN(8), helloCommit("p8", helloManifest))

	if a, ok := h.c.store.App(helloPR7); !ok || a.Instances != 2 {
		t.Fatalf("the first preview: %+v (%v), want 2 instances (the budget's)", a, ok)
	}
	pr8 := model.AppKey{Space: "dev-pr-8", Name: "hello"}
	if _, ok := h.c.store.App(pr8); ok {
		t.Fatal("a preview over the budget was deployed")
	}
	ps := h.c.Previews(ctx)
	if len(ps) != 2 || ps[1].Status.Name != "apps#pr-8" || len(ps[1].Status.Errors) == 0 ||
		!strings.Contains(ps[1].Status.Errors[0].Message, "previews.per_source") {
		t.Fatalf("previews %+v: want apps#pr-8 refused for previews.per_source", ps)
	}
	if a, _ := h.c.store.App(hello); a.Commit != "c1" || a.Instances != 2 || len(h.status().Errors) != 0 {
		t.Fatalf("production changed: %+v %+v", a, h.status())
	}

	if err := h.c.removePreview(ctx, h.se, 7, "pull request 7 closed"); err != nil {
		t.Fatal(err)
	}
	if a, ok := h.c.store.App(pr8); !ok || a.Commit != "p8" {
		t.Fatalf("the refused preview was not deployed once the budget allowed it: %+v %+v", a, h.c.Previews(ctx))
	}
	if _, found := h.kv.Value("driftless/sources/apps#pr-7"); found {
		t.Error("the removed preview's status is still stored")
	}
}

// TestPreviewTTL: a preview whose pull request is quiet for longer than
// previews.ttl is removed, as an event naming why; a younger one stays.
func TestPreviewTTL(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t)
	withQuotas(t, h, "previews:\n  ttl: 1h\n")
	h.c.deployPreview(ctx, h.se, prN(7), helloCommit("p7", helloManifest))
	h.c.deployPreview(ctx, h.se, prN(8), helloCommit("p8", helloManifest))
	now := time.Now()
	h.c.mu.Lock()
	h.c.previews.entries["apps#pr-7"].status.Preview.LastActivity = now.Add(-2 * time.Hour)
	h.c.mu.Unlock()
	ps := h.c.Previews(ctx)
	if len(ps) != 2 || ps[0].Expires.After(now) || !ps[1].Expires.After(now.Add(59*time.Minute)) {
		t.Fatalf("expiry of the previews %+v", ps)
	}

	h.c.expirePreviews(ctx, now)
	if _, ok := h.c.store.App(helloPR7); ok {
		t.Fatal("an expired preview is still deployed")
	}
	if _, ok := h.c.store.App(model.AppKey{Space: "dev-pr-8", Name: "hello"}); !ok {
		t.Fatal("a young preview was removed")
	}
	evs := h.events(model.EventPreviewRemoved)
	if len(evs) != 1 || !strings.Contains(evs[0].Message, "longer than the preview TTL 1h0m0s") {
		t.Fatalf("preview-removed events %+v", evs)
	}
}

// TestPreviewSleepAndWake: a preview app with no request for the idle
// time sleeps — stored for the routers, planned with no instance — while
// production and a preview with recent requests keep theirs; a wake
// request (or a new commit) brings it back, and both are events.
func TestPreviewSleepAndWake(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t)
	h.c.cfg.PreviewIdle = time.Minute
	h.c.apply(ctx, h.se, helloCommit("c1", helloManifest))
	h.c.deployPreview(ctx, h.se, prN(7), helloCommit("p7", helloManifest))
	h.c.deployPreview(ctx, h.se, prN(8), helloCommit("p8", helloManifest))
	pr8 := model.AppKey{Space: "dev-pr-8", Name: "hello"}
	h.eventually("the previews are staged", func() bool {
		a, _ := h.c.store.App(helloPR7)
		b, _ := h.c.store.App(pr8)
		return a.CurrentID != "" && b.CurrentID != ""
	})
	now := time.Now().Add(2 * time.Minute)
	h.c.sawActivity(bus.RouterActivity{Router: "r1", Apps: []bus.AppRequests{{Space: "dev-pr-8", App: "hello", Requests: 3}}}, now.Add(-10*time.Second))

	h.c.sleepIdle(ctx, now)
	sl, asleep := h.c.store.Sleeping(helloPR7)
	if !asleep || !slices.Equal(sl.Routes, []string{"hello-pr-7.apps.localhost"}) || sl.WakeTimeout != model.DefaultStartTimeout*time.Second {
		t.Fatalf("the idle preview: %+v asleep %v", sl, asleep)
	}
	if _, asleep := h.c.store.Sleeping(pr8); asleep {
		t.Fatal("a preview with recent requests sleeps")
	}
	if _, asleep := h.c.store.Sleeping(hello); asleep {
		t.Fatal("production sleeps")
	}
	planned := map[model.AppKey]int{}
	for _, a := range h.c.planApps() {
		planned[model.AppKey{Space: a.Space, Name: a.Name}] = a.Instances
	}
	if planned[helloPR7] != 0 || planned[pr8] != 1 || planned[hello] != 2 {
		t.Fatalf("planned instances %v", planned)
	}
	if ps := h.c.Previews(ctx); !ps[0].Sleeping || ps[1].Sleeping {
		t.Fatalf("previews %+v: want the first sleeping", ps)
	}

	if err := h.c.Wake(ctx, helloPR7, "a request through router r1"); err != nil {
		t.Fatal(err)
	}
	if _, asleep := h.c.store.Sleeping(helloPR7); asleep {
		t.Fatal("still asleep after a wake")
	}
	if _, found := h.kv.Value("driftless/sleeping/dev-pr-7/hello"); found {
		t.Fatal("the sleeping record is still stored")
	}
	if len(h.events(model.EventAppSleeping)) != 1 || len(h.events(model.EventAppWoken)) != 1 {
		t.Fatalf("sleeping %+v woken %+v", h.events(model.EventAppSleeping), h.events(model.EventAppWoken))
	}
	// Just woken: not put to sleep again at once.
	h.c.sleepIdle(ctx, time.Now())
	if _, asleep := h.c.store.Sleeping(helloPR7); asleep {
		t.Fatal("put to sleep again right after waking")
	}

	// A new commit of the pull request wakes it too.
	h.c.sleepIdle(ctx, time.Now().Add(10*time.Minute))
	if _, asleep := h.c.store.Sleeping(helloPR7); !asleep {
		t.Fatal("not asleep after 10 idle minutes")
	}
	h.c.deployPreview(ctx, h.se, prN(7), helloCommit("p7b", helloManifest))
	if _, asleep := h.c.store.Sleeping(helloPR7); asleep {
		t.Fatal("a new commit did not wake the preview")
	}
}

// fakeForge records the statuses posted.
type fakeForge struct {
	mu       sync.Mutex
	statuses []string // "context sha state description target"
	repos    []model.RepoRef
	open     []model.PullRequest
}

func (f *fakeForge) PostStatus(repo model.RepoRef, sha string, st model.CommitStatus) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.repos = append(f.repos, repo)
	f.statuses = append(f.statuses, strings.Join([]string{st.Context, sha, string(st.State), st.Description, st.TargetURL}, " "))
}

func (f *fakeForge) OpenPullRequests(context.Context, model.RepoRef) ([]model.PullRequest, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.open), nil
}

func (f *fakeForge) posted() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.statuses)
}

// TestCommitStatuses: a tracked branch's commit is pending, then success
// once its app serves; a preview's too, with its URL; a refused preview
// commit is a failure naming its manifest's file:line; the repository is
// named as the webhook told.
func TestCommitStatuses(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t)
	f := &fakeForge{}
	h.c.cfg.Forge, h.c.cfg.RoutesURL = f, "http://127.0.0.1:8080"
	h.se.status.URL = "https://github.com/octo/apps.git"
	h.c.SawRepository(model.RepoRef{URL: "https://github.com/octo/apps", Forge: "github", Path: "octo/apps"})

	h.c.apply(ctx, h.se, helloCommit("c1", helloManifest))
	h.c.deployPreview(ctx, h.se, prN(7), helloCommit("p7", helloManifest))
	h.eventually("both staged", func() bool {
		a, _ := h.c.store.App(helloPR7)
		b, _ := h.c.store.App(hello)
		return a.CurrentID != "" && b.CurrentID != ""
	})
	h.c.checkServing(nil)
	if got := f.posted(); len(got) != 2 {
		t.Fatalf("statuses before anything serves: %q", got)
	}
	running := func(key model.AppKey) model.InstanceStatus {
		a, _ := h.c.store.App(key)
		return model.InstanceStatus{InstanceRef: model.InstanceRef{GUID: key.String(), Space: key.Space, App: key.Name, ReleaseID: a.ReleaseID}, State: model.StateRunning}
	}
	h.c.checkServing([]model.InstanceStatus{running(hello), running(helloPR7)})
	h.c.deployPreview(ctx, h.se, prN(7), helloCommit("p8", "applications:\n- name: hello\n  instances: lots\n"))

	want := []string{
		"driftless/deploy c1 pending deploying ",
		"driftless/preview p7 pending deploying the preview ",
		"driftless/deploy c1 success 1 app(s) serving http://hello.apps.localhost:8080/",
		"driftless/preview p7 success 1 app(s) serving http://hello-pr-7.apps.localhost:8080/",
		"driftless/preview p8 pending deploying the preview ",
		"driftless/preview p8 failure apps/hello/manifest.yml:3:",
	}
	got := f.posted()
	slices.Sort(got[2:4]) // the two successes come in either order
	if len(got) != len(want) {
		t.Fatalf("statuses %q\nwant %q", got, want)
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Errorf("status %d: %q, want %q…", i, got[i], want[i])
		}
	}
	for _, r := range f.repos {
		if r.Path != "octo/apps" || r.Forge != "github" {
			t.Errorf("repository %+v, want github's octo/apps", r)
		}
	}
	h.c.checkServing([]model.InstanceStatus{running(hello), running(helloPR7)})
	if n := len(f.posted()); n != len(want) {
		t.Errorf("a status reported twice: %q", f.posted()[len(want):])
	}
}

// TestPollPullRequests: the forge's list of open pull requests is the
// safety net of lost webhooks — an open pull request without a preview is
// deployed from its ref, one listed again at the same head is left alone,
// and a preview whose pull request is no longer listed is removed.
func TestPollPullRequests(t *testing.T) {
	ctx := context.Background()
	repo, head := pullRequestRepo(t)
	h := newHarness(t)
	src, err := source.New(source.Config{Name: "apps", URL: repo})
	if err != nil {
		t.Fatal(err)
	}
	h.se.src, h.se.status.URL = src, src.URL()
	f := &fakeForge{open: []model.PullRequest{{Number: 7, HeadSHA: head, HeadRef: "feature", Ref: "refs/pull/7/head"}}}
	h.c.cfg.Forge = f

	h.c.pollPullRequests(ctx, h.se)
	if a, ok := h.c.store.App(helloPR7); !ok || a.Commit != head {
		t.Fatalf("the open pull request's preview: %+v (%v)", a, ok)
	}
	n := len(h.events(model.EventPreviewDeployed))
	h.c.pollPullRequests(ctx, h.se)
	if got := len(h.events(model.EventPreviewDeployed)); got != n {
		t.Fatalf("a preview at its head was deployed again (%d events, had %d)", got, n)
	}
	f.mu.Lock()
	f.open = nil
	f.mu.Unlock()
	h.c.pollPullRequests(ctx, h.se)
	if _, ok := h.c.store.App(helloPR7); ok {
		t.Fatal("the preview of a pull request no longer open is still deployed")
	}
	if evs := h.events(model.EventPreviewRemoved); len(evs) != 1 || !strings.Contains(evs[0].Message, "no longer open") {
		t.Fatalf("preview-removed events %+v", evs)
	}
}

// TestPreviewsRestored: a controller that starts over what another stored
// knows its previews (listed, expiring, removable) before any event.
func TestPreviewsRestored(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t)
	h.c.deployPreview(ctx, h.se, prN(7), helloCommit("p7", helloManifest))

	st, err := store.New(h.kv, h.c.cfg.Keys)
	if err != nil {
		t.Fatal(err)
	}
	again := newController(h.c.cfg, st, h.exec, fakeStaging{})
	again.sources = []*sourceEntry{{name: "apps", space: "dev", status: model.SourceStatus{Name: "apps", Space: "dev"}}}
	if err := again.load(ctx); err != nil {
		t.Fatal(err)
	}
	if err := again.restorePreviews(ctx); err != nil {
		t.Fatal(err)
	}
	ps := again.Previews(ctx)
	if len(ps) != 1 || ps[0].Status.Preview == nil || ps[0].Status.Preview.Number != 7 || ps[0].Status.LastApplied != "p7" || ps[0].Expires.IsZero() {
		t.Fatalf("restored previews %+v", ps)
	}
	if err := again.removePreview(ctx, again.sources[0], 7, "pull request 7 closed"); err != nil {
		t.Fatal(err)
	}
	if _, ok := again.store.App(helloPR7); ok || len(again.Previews(ctx)) != 0 {
		t.Fatal("a restored preview was not removed")
	}
}
