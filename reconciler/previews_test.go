package reconciler

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/driftless/driftless/bus"
	"github.com/driftless/driftless/model"
	"github.com/driftless/driftless/policies"
	"github.com/driftless/driftless/reconciler/decide"
	"github.com/driftless/driftless/reconciler/plan"
	"github.com/driftless/driftless/reconciler/source"
)

var helloPR7 = model.AppKey{Space: "dev-pr-7", Name: "hello"}

func pr7(labels ...string) model.PullRequest {
	return model.PullRequest{Number: 7, Action: model.PROpened, HeadRef: "feature", Author: "ada", Labels: labels}
}

// TestPreviewDeployAndTeardown: a pull request's commit is applied as its
// preview — its own space and source, one instance, DRIFTLESS_PREVIEW,
// hello-pr-7 routes — beside production, which it does not change; a new
// commit rolls it; an invalid one is refused without touching anything;
// closing it removes its apps and releases, stops its instances and is an
// event.
func TestPreviewDeployAndTeardown(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t)
	h.c.apply(ctx, h.se, helloCommit("c1", helloManifest))
	h.c.deployPreview(ctx, h.se, pr7(), helloCommit("p1", strings.Replace(helloManifest, "./hello", "./hello --pr", 1)))

	app, ok := h.c.store.App(helloPR7)
	if !ok || app.Instances != 1 || app.Source != "apps#pr-7" || app.Commit != "p1" {
		t.Fatalf("preview app %+v (found %v)", app, ok)
	}
	rel := h.c.store.Release(helloPR7, app.ReleaseID)
	if rel == nil || rel.Run.Env[decide.PreviewEnv] != "7" || !slices.Equal(rel.Run.Routes, []string{"hello-pr-7.apps.localhost"}) ||
		rel.Run.Command != "./hello --pr" {
		t.Fatalf("preview release %+v", rel)
	}
	prod, _ := h.c.store.App(hello)
	if prod.Instances != 2 || prod.Commit != "c1" || !slices.Equal(prod.Routes, []string{"hello.apps.localhost"}) {
		t.Fatalf("production app changed: %+v", prod)
	}
	if len(h.events(model.EventPreviewDeployed)) != 1 {
		t.Errorf("preview-deployed events: %+v", h.events(model.EventPreviewDeployed))
	}
	h.eventually("both staged and current", func() bool {
		a, _ := h.c.store.App(helloPR7)
		p, _ := h.c.store.App(hello)
		return a.CurrentID != "" && p.CurrentID != ""
	})

	// A new push to the pull request rolls the preview.
	h.c.deployPreview(ctx, h.se, pr7(), helloCommit("p2", strings.Replace(helloManifest, "./hello", "./hello --pr2", 1)))
	if next, _ := h.c.store.App(helloPR7); next.ReleaseID == app.ReleaseID || next.Commit != "p2" {
		t.Errorf("the preview did not move to the new commit: %+v", next)
	}
	// An invalid manifest in the pull request: refused, nothing changes.
	before, _ := h.c.store.App(helloPR7)
	h.c.deployPreview(ctx, h.se, pr7(), helloCommit("p3", "applications:\n- name: hello\n  instances: many\n"))
	if after, _ := h.c.store.App(helloPR7); after.ReleaseID != before.ReleaseID {
		t.Errorf("a refused commit changed the preview: %+v", after)
	}
	if p, _ := h.c.store.App(hello); p.ReleaseID != prod.ReleaseID || p.Commit != "c1" {
		t.Errorf("a refused pull request changed production: %+v", p)
	}
	if st := h.status(); st.LastApplied != "c1" || len(st.Errors) != 0 {
		t.Errorf("production's status changed: %+v", st)
	}
	if ps := h.c.Previews(context.Background()); len(ps) != 1 || ps[0].Status.Name != "apps#pr-7" || ps[0].Status.LastSeen != "p3" || len(ps[0].Status.Errors) == 0 || ps[0].Status.Preview == nil || ps[0].Status.Preview.Number != 7 {
		t.Errorf("previews %+v", ps)
	}

	// Instances of both run on a cell.
	h.eventually("the preview's new release is current", func() bool {
		a, _ := h.c.store.App(helloPR7)
		return a.CurrentID == a.ReleaseID
	})
	h.c.actual.Heartbeat(bus.CellHeartbeat{CellID: "cell-a", BootID: "boot-1", Address: "127.0.0.1",
		Capacity: model.Resources{MemoryMB: 4096, DiskMB: 100000, Instances: 100}}, time.Now())
	h.c.converge(ctx)
	if n := countActions(h.exec.taken(), plan.Start, helloPR7); n != 1 {
		t.Fatalf("%d starts of the preview, want 1: %+v", n, h.exec.taken())
	}

	// Closed: the apps and releases go, its instance is stopped.
	if err := h.c.removePreview(ctx, h.se, 7, "pull request 7 closed"); err != nil {
		t.Fatal(err)
	}
	if _, ok := h.c.store.App(helloPR7); ok || len(h.c.store.Releases(helloPR7)) != 0 {
		t.Errorf("the preview is still stored: %v releases", len(h.c.store.Releases(helloPR7)))
	}
	for _, prefix := range []string{"driftless/apps/dev-pr-7/", "driftless/releases/dev-pr-7/"} {
		if keys, _ := h.kv.List(ctx, prefix); len(keys) != 0 {
			t.Errorf("KV keys left under %s: %v", prefix, keys)
		}
	}
	if _, ok := h.c.store.App(hello); !ok {
		t.Error("closing the pull request removed production's app")
	}
	if len(h.events(model.EventPreviewRemoved)) != 1 || len(h.c.Previews(context.Background())) != 0 {
		t.Errorf("preview-removed events %+v, previews %+v", h.events(model.EventPreviewRemoved), h.c.Previews(context.Background()))
	}
	h.c.converge(ctx)
	if n := countActions(h.exec.taken(), plan.Stop, helloPR7); n != 1 {
		t.Errorf("%d stops of the preview's instance, want 1: %+v", n, h.exec.taken())
	}
	if n := countActions(h.exec.taken(), plan.Stop, hello); n != 0 {
		t.Errorf("%d stops of production's instances", n)
	}
}

func countActions(actions []plan.Action, kind plan.Kind, key model.AppKey) int {
	n := 0
	for _, a := range actions {
		if a.Kind == kind && a.Instance.Key() == key {
			n++
		}
	}
	return n
}

// previewPolicy denies a preview without the label "preview" and lets
// production through: input.preview is null for production.
const previewPolicy = `package driftless.previews

deny contains {"msg": "previews need the label preview"} if {
	input.preview != null
	not "preview" in input.preview.labels
}
`

// TestPreviewPolicyInput: the policies see input.preview (number, branch,
// author, labels) for a preview and null for production; a denied preview
// deploys nothing and production is untouched; once allowed it deploys.
func TestPreviewPolicyInput(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t)
	set, err := policies.Load(ctx, fstest.MapFS{"previews.rego": {Data: []byte(previewPolicy)}})
	if err != nil {
		t.Fatal(err)
	}
	h.c.policy = set
	h.c.apply(ctx, h.se, helloCommit("c1", helloManifest))
	if _, ok := h.c.store.App(hello); !ok {
		t.Fatalf("production denied by a preview policy: %+v", h.status().Errors)
	}
	h.c.deployPreview(ctx, h.se, pr7(), helloCommit("p1", helloManifest))
	if _, ok := h.c.store.App(helloPR7); ok {
		t.Fatal("a denied preview was deployed")
	}
	if len(h.events(model.EventCommitDenied)) != 1 {
		t.Errorf("commit-denied events: %+v", h.events(model.EventCommitDenied))
	}
	h.c.deployPreview(ctx, h.se, pr7("preview"), helloCommit("p1", helloManifest))
	if _, ok := h.c.store.App(helloPR7); !ok {
		t.Fatalf("an allowed preview was not deployed: %+v", h.c.Previews(context.Background()))
	}

	// Denied again by its labels, then allowed by a new policy commit:
	// the preview's last commit is applied again.
	h.c.deployPreview(ctx, h.se, pr7(), helloCommit("p2", strings.Replace(helloManifest, "./hello", "./hello --p2", 1)))
	if a, _ := h.c.store.App(helloPR7); a.Commit != "p1" {
		t.Fatalf("a denied commit changed the preview: %+v", a)
	}
	h.c.applyPolicies(ctx, newCommit("pol2", map[string]string{"quotas.yml": "default:\n  memory: 4G\n  instances: 40\n"}))
	if a, _ := h.c.store.App(helloPR7); a.Commit != "p2" {
		t.Fatalf("the preview was not applied again under the new policies: %+v, %+v", a, h.c.Previews(context.Background()))
	}
}

// TestPullRequestFetchesTheRef: PullRequest matches the source by its
// repository, fetches refs/pull/<N>/head from it and deploys it; a
// repository with no source and an action that asks for nothing do
// nothing; closed removes the preview.
func TestPullRequestFetchesTheRef(t *testing.T) {
	ctx := context.Background()
	repo, head := pullRequestRepo(t)

	h := newHarness(t)
	src, err := source.New(source.Config{Name: "apps", URL: repo})
	if err != nil {
		t.Fatal(err)
	}
	h.se.src = src
	if got := h.c.PullRequest(ctx, pr7(), []string{"https://github.com/someone/else.git"}); got != nil {
		t.Errorf("another repository's pull request acted on %v", got)
	}
	other := pr7()
	other.Action = model.PROther
	if got := h.c.PullRequest(ctx, other, []string{"file://" + repo}); got != nil {
		t.Errorf("an edited pull request acted on %v", got)
	}
	if got := h.c.PullRequest(ctx, pr7(), []string{"file://" + repo}); !slices.Equal(got, []string{"apps#pr-7"}) {
		t.Fatalf("acted on %v", got)
	}
	app, ok := h.c.store.App(helloPR7)
	if !ok || app.Commit != head {
		t.Fatalf("preview app %+v (found %v), want commit %s", app, ok, head)
	}
	closed := pr7()
	closed.Action = model.PRClosed
	if got := h.c.PullRequest(ctx, closed, []string{"file://" + repo + "/"}); !slices.Equal(got, []string{"apps#pr-7"}) {
		t.Fatalf("closing acted on %v", got)
	}
	if _, ok := h.c.store.App(helloPR7); ok {
		t.Error("the preview is still stored after its pull request closed")
	}
}

// pullRequestRepo makes a repository whose main branch declares hello and
// whose refs/pull/7/head (head) runs it with --pr.
func pullRequestRepo(t *testing.T) (repo, head string) {
	t.Helper()
	repo = filepath.Join(t.TempDir(), "repo")
	git := func(args ...string) string {
		t.Helper()
		cmd := exec.Command("git", args...)
		cmd.Dir = repo
		cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@driftless.invalid",
			"GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@driftless.invalid", "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v\n%s (this test needs the git CLI: `make setup`)", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	if err := os.MkdirAll(filepath.Join(repo, "apps/hello"), 0o755); err != nil {
		t.Fatal(err)
	}
	git("init", "-q", "-b", "main")
	write := func(manifest string) {
		for name, body := range map[string]string{"apps/hello/manifest.yml": manifest, "apps/hello/hello": "binary"} {
			if err := os.WriteFile(filepath.Join(repo, name), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		git("add", "-A")
		git("commit", "-q", "-m", "commit")
	}
	write(helloManifest)
	write(strings.Replace(helloManifest, "./hello", "./hello --pr", 1))
	head = git("rev-parse", "HEAD")
	git("update-ref", "refs/pull/7/head", head)
	git("reset", "-q", "--hard", "HEAD~1")
	return repo, head
}
