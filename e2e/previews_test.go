package e2e

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/driftless/driftless/api"
	"github.com/driftless/driftless/internal/testenv"
	"github.com/driftless/driftless/model"
)

// prAction is what a test's pull request delivery says happened.
type prAction int

// The pull request actions a test delivers: opened, new commits pushed
// (GitHub synchronize, GitLab update with oldrev, Gitea synchronized),
// closed.
const (
	prOpened prAction = iota
	prPushed
	prClosed
)

// prForge is a forge whose pull request (GitLab: merge request) deliveries
// TestPreview sends.
type prForge struct {
	name string
	// forge is how the webhook's answer names it.
	forge api.Forge
	// number is the pull request's number (GitLab: its IID).
	number int
	// ref is where the forge keeps the pull request's head in the
	// repository.
	ref string
	// post posts the forge's delivery of the pull request's action with
	// head as its head commit, signed with secret as the forge signs, as
	// delivery id.
	post func(p *platform, t testing.TB, secret, id string, action prAction, number int, head string) (int, api.WebhookResult)
}

// prForges are the forges TestPreview runs for, each with its own pull
// request number so that the preview's names and route differ.
var prForges = []prForge{
	{name: "github", forge: api.GitHub, number: 1, ref: "refs/pull/1/head", post: (*platform).postGitHubPR},
	{name: "gitlab", forge: api.GitLab, number: 2, ref: "refs/merge-requests/2/head", post: (*platform).postGitLabMR},
	{name: "gitea", forge: api.Gitea, number: 3, ref: "refs/pull/3/head", post: (*platform).postGiteaPR},
}

// TestPreview, for each of GitHub, GitLab and Gitea: a signed pull request
// (merge request) "opened" delivery of the forge's payload shape, for the
// platform's repository, whose head (pushed to the ref the forge keeps it
// at: refs/pull/N/head, GitLab refs/merge-requests/N/head) changes hello's
// greeting (in a vars-preview.yml beside the manifest, which production
// does not read) and asks for 2 instances, deploys the preview: one
// instance serving the pull request's code at hello-pr-N.apps.localhost
// through the router, while production's hello keeps its code and route.
// New commits pushed to the pull request roll the preview to them; a
// delivery with a bad signature (GitLab: token) is refused with 401 and
// changes nothing. "closed" removes it: hello-pr-N answers 404,
// `driftless apps` no longer lists it, and both are events.
func TestPreview(t *testing.T) {
	for _, f := range prForges {
		t.Run(f.name, func(t *testing.T) { testPreview(t, f) })
	}
}

func testPreview(t *testing.T, f prForge) {
	const secret = "e2e-preview-secret"
	n := f.number
	previewHost := fmt.Sprintf("hello-pr-%d.apps.localhost", n)
	source, space := fmt.Sprintf("repo#pr-%d", n), fmt.Sprintf("dev-pr-%d", n)
	p := startDev(t, "--webhook-secret", secret)
	p.addHello("apps/hello")
	p.write(map[string]string{"apps/hello/manifest.yml": helloManifest(1, "((greeting))"), "apps/hello/vars.yml": "greeting: Production\n"})
	first := p.commitAll("hello in production")
	p.waitApplied(t, first, 30*time.Second)
	p.waitServing(t, 90*time.Second, 1, greetingIs("Production"))

	// The pull request: a commit of a clone pushed to the forge's ref of
	// it, as the forge keeps it; the branch the platform follows does not
	// move.
	clone := filepath.Join(p.dir, "pr-clone")
	testenv.Git(t, p.dir, "clone", "-q", p.repo, clone)
	writeRepo(t, clone, map[string]string{"apps/hello/manifest.yml": helloManifest(2, "((greeting))"), "apps/hello/vars-preview.yml": "greeting: Preview\n"})
	testenv.Git(t, clone, "add", "-A")
	testenv.Git(t, clone, "commit", "-q", "-m", "a new greeting, for the preview")
	head := testenv.Git(t, clone, "rev-parse", "HEAD")
	testenv.Git(t, clone, "push", "-q", "origin", "HEAD:"+f.ref)

	sent := time.Now()
	code, res := f.post(p, t, secret, fmt.Sprintf("%s-pr-%d-opened", f.name, n), prOpened, n, head)
	if code != http.StatusAccepted || res.Forge != f.forge || len(res.Previews) != 1 || res.Previews[0] != source {
		t.Fatalf("pull request opened: %d %+v", code, res)
	}
	testenv.Eventually(t, 90*time.Second, 300*time.Millisecond, "the preview serves the pull request's code", func() error {
		seen, err := p.sample(previewHost, 8)
		if err != nil {
			return err
		}
		for _, in := range seen {
			if in.Greeting != "Preview" || in.Commit != head {
				return fmt.Errorf("the preview answers %+v", in)
			}
		}
		if len(seen) != 1 {
			return fmt.Errorf("%d instances of the preview answer, want 1", len(seen))
		}
		return nil
	})
	t.Logf("preview serving %s after the webhook", time.Since(sent).Round(time.Millisecond))
	seen, err := p.sample(helloHost, 8)
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range seen {
		if in.Greeting != "Production" || in.Commit != first {
			t.Fatalf("production answers %+v while the preview runs", in)
		}
	}
	if s, err := p.source(t); err != nil || s.LastApplied != first || len(s.Errors) != 0 {
		t.Fatalf("production's source %+v, %v", s, err)
	}
	apps := p.appsBySpace(t)
	if a, ok := apps[space+"/hello"]; !ok || a.Desired != 1 || a.Commit != head {
		t.Fatalf("the preview in `driftless apps`: %+v", apps)
	}
	testenv.Eventually(t, 10*time.Second, 200*time.Millisecond, "`driftless previews` shows it serving", func() error {
		var ps []api.Preview
		if err := p.cliJSON(&ps, "previews"); err != nil {
			return err
		}
		if len(ps) != 1 || ps[0].Name != source || ps[0].Number != n || ps[0].Head != head || ps[0].State != api.PreviewServing ||
			!slices.Contains(ps[0].URLs, "http://"+previewHost) {
			return fmt.Errorf("previews %+v", ps)
		}
		return nil
	})

	// New commits on the pull request roll the preview; production stays.
	writeRepo(t, clone, map[string]string{"apps/hello/vars-preview.yml": "greeting: Preview again\n"})
	testenv.Git(t, clone, "commit", "-q", "-am", "another greeting, for the preview")
	head = testenv.Git(t, clone, "rev-parse", "HEAD")
	testenv.Git(t, clone, "push", "-q", "-f", "origin", "HEAD:"+f.ref)
	code, res = f.post(p, t, secret, fmt.Sprintf("%s-pr-%d-pushed", f.name, n), prPushed, n, head)
	if code != http.StatusAccepted || len(res.Previews) != 1 || res.Previews[0] != source {
		t.Fatalf("pull request pushed: %d %+v", code, res)
	}
	testenv.Eventually(t, 90*time.Second, 300*time.Millisecond, "the preview rolls to the new commit", func() error {
		seen, err := p.sample(previewHost, 8)
		if err != nil {
			return err
		}
		for _, in := range seen {
			if in.Greeting != "Preview again" || in.Commit != head {
				return fmt.Errorf("the preview answers %+v", in)
			}
		}
		return nil
	})
	p.waitServing(t, 10*time.Second, 1, greetingIs("Production"))

	// A delivery with a bad signature (or token) is refused and changes
	// nothing: the preview keeps serving.
	code, res = f.post(p, t, secret+"-wrong", fmt.Sprintf("%s-pr-%d-forged", f.name, n), prClosed, n, head)
	if code != http.StatusUnauthorized || len(res.Previews) != 0 {
		t.Fatalf("a badly signed close: %d %+v", code, res)
	}
	if seen, err := p.sample(previewHost, 4); err != nil || len(seen) != 1 {
		t.Fatalf("the preview after a badly signed close: %+v %v", seen, err)
	}

	// Closed: its route answers 404 and it is no longer listed.
	sent = time.Now()
	code, res = f.post(p, t, secret, fmt.Sprintf("%s-pr-%d-closed", f.name, n), prClosed, n, head)
	if code != http.StatusAccepted || res.Forge != f.forge || len(res.Previews) != 1 || res.Previews[0] != source ||
		!strings.Contains(res.Status, "removed") {
		t.Fatalf("pull request closed: %d %+v", code, res)
	}
	testenv.Eventually(t, 10*time.Second, 100*time.Millisecond, "the preview's route answers 404", func() error {
		code, body, err := p.get(previewHost, "/info")
		if err != nil {
			return err
		}
		if code != http.StatusNotFound {
			return fmt.Errorf("%d %s", code, body)
		}
		return nil
	})
	t.Logf("preview gone %s after the webhook", time.Since(sent).Round(time.Millisecond))
	if apps := p.appsBySpace(t); len(apps) != 1 || apps["dev/hello"].Name != "hello" {
		t.Fatalf("`driftless apps` after the pull request closed: %+v", apps)
	}
	var left []api.Preview
	if err := p.cliJSON(&left, "previews"); err != nil || len(left) != 0 {
		t.Fatalf("`driftless previews` after the pull request closed: %+v (%v)", left, err)
	}
	p.waitServing(t, 10*time.Second, 1, greetingIs("Production"))
	evs, err := p.client.Events(context.Background(), space, "")
	if err != nil {
		t.Fatal(err)
	}
	for kind, want := range map[model.EventKind]int{model.EventPreviewDeployed: 2, model.EventPreviewRemoved: 1} { // opened and pushed; closed
		k := 0
		for _, e := range evs {
			if e.Kind == kind && strings.Contains(e.Message, source) {
				k++
			}
		}
		if k != want {
			t.Errorf("%d %s events of the preview's space, want %d: %+v", k, kind, want, evs)
		}
	}
}

// appsBySpace is `driftless apps --json` by "space/name".
func (p *platform) appsBySpace(t testing.TB) map[string]api.App {
	t.Helper()
	var apps []api.App
	if err := p.cliJSON(&apps, "apps"); err != nil {
		t.Fatal(err)
	}
	out := map[string]api.App{}
	for _, a := range apps {
		out[a.Space+"/"+a.Name] = a
	}
	return out
}

// postGitHubPR posts a GitHub pull_request event ("opened",
// "synchronize" or "closed") of the platform's repository (by its file://
// URL), signed with secret as GitHub signs, as delivery id.
func (p *platform) postGitHubPR(t testing.TB, secret, id string, act prAction, number int, head string) (int, api.WebhookResult) {
	t.Helper()
	action, state := []string{"opened", "synchronize", "closed"}[act], []string{"open", "open", "closed"}[act]
	url := "file://" + p.repo
	repo := map[string]any{"name": "repo", "full_name": "e2e/repo", "clone_url": url, "html_url": url}
	payload := map[string]any{"action": action, "number": number, "repository": repo, "sender": map[string]string{"login": "e2e"},
		"before": strings.Repeat("0", 40), "after": head,
		"pull_request": map[string]any{"number": number, "state": state, "title": "a new greeting", "merged": false,
			"user": map[string]string{"login": "e2e"}, "labels": []any{},
			"head": map[string]any{"label": "e2e:feature", "sha": head, "ref": "feature", "repo": repo},
			"base": map[string]any{"label": "e2e:main", "ref": "main", "repo": repo}}}
	return p.postGitHub(t, secret, id, "pull_request", payload)
}

// postGitLabMR posts a GitLab Merge Request Hook (action "open", "update"
// with oldrev, or "close") of the platform's repository (its project's
// URLs are its file:// URL), with secret as its X-Gitlab-Token as GitLab
// sends it, as delivery id (X-Gitlab-Event-UUID and Idempotency-Key).
func (p *platform) postGitLabMR(t testing.TB, secret, id string, act prAction, iid int, head string) (int, api.WebhookResult) {
	t.Helper()
	action, state := []string{"open", "update", "close"}[act], []string{"opened", "opened", "closed"}[act]
	oldrev := ""
	if act == prPushed {
		oldrev = strings.Repeat("0", 40) // new commits: GitLab names the previous head
	}
	url := "file://" + p.repo
	project := map[string]any{"id": 1, "name": "repo", "path_with_namespace": "e2e/repo", "default_branch": "main",
		"web_url": url, "git_http_url": url, "git_ssh_url": url, "homepage": url, "url": url, "http_url": url, "ssh_url": url}
	payload := map[string]any{"object_kind": "merge_request", "event_type": "merge_request",
		"user":       map[string]any{"id": 1, "name": "E2E", "username": "e2e"},
		"project":    project,
		"repository": map[string]any{"name": "repo", "url": url, "homepage": url},
		"object_attributes": map[string]any{"id": 100 + iid, "iid": iid, "title": "a new greeting", "state": state, "action": action,
			"oldrev": oldrev, "source_branch": "feature", "target_branch": "main", "source_project_id": 1, "target_project_id": 1,
			"merge_status": "can_be_merged", "draft": false, "work_in_progress": false, "url": fmt.Sprintf("%s/-/merge_requests/%d", url, iid),
			"source": project, "target": project,
			"last_commit": map[string]any{"id": head, "message": "a new greeting, for the preview", "title": "a new greeting, for the preview",
				"author": map[string]string{"name": "E2E", "email": "e2e@example.com"}}},
		"labels": []any{}, "changes": map[string]any{}}
	h := http.Header{}
	h.Set("X-Gitlab-Event", "Merge Request Hook")
	h.Set("X-Gitlab-Token", secret)
	h.Set("X-Gitlab-Event-UUID", id)
	h.Set("X-Gitlab-Webhook-UUID", "e2e-hook")
	h.Set("Idempotency-Key", id)
	h.Set("X-Gitlab-Instance", "https://gitlab.example.com")
	h.Set("User-Agent", "GitLab/17.5.0")
	return p.post(t, secret, h, marshal(t, payload))
}

// postGiteaPR posts a Gitea pull_request event ("opened",
// "synchronized" or "closed") of the platform's repository (by its file:// URL), signed with secret as
// Gitea signs (X-Gitea-Signature, the hex HMAC-SHA256 of the body without
// a prefix), as delivery id, with the GitHub and Gogs headers Gitea sends
// beside its own.
func (p *platform) postGiteaPR(t testing.TB, secret, id string, act prAction, number int, head string) (int, api.WebhookResult) {
	t.Helper()
	action, state := []string{"opened", "synchronized", "closed"}[act], []string{"open", "open", "closed"}[act]
	url := "file://" + p.repo
	owner := map[string]any{"id": 1, "login": "e2e", "username": "e2e"}
	repo := map[string]any{"id": 1, "owner": owner, "name": "repo", "full_name": "e2e/repo", "default_branch": "main",
		"html_url": url, "clone_url": url}
	payload := map[string]any{"action": action, "number": number, "repository": repo, "sender": owner,
		"pull_request": map[string]any{"id": 100 + number, "number": number, "user": owner, "title": "a new greeting", "body": "",
			"labels": []any{}, "state": state, "merged": false, "mergeable": true,
			"html_url": fmt.Sprintf("%s/pulls/%d", url, number),
			"head":     map[string]any{"label": "feature", "ref": "feature", "sha": head, "repo_id": 1, "repo": repo},
			"base":     map[string]any{"label": "main", "ref": "main", "repo_id": 1, "repo": repo}}}
	body := marshal(t, payload)
	sig := hmacHex(secret, body)
	h := http.Header{}
	for _, prefix := range []string{"X-Gitea-", "X-GitHub-", "X-Gogs-"} {
		h.Set(prefix+"Event", "pull_request")
		h.Set(prefix+"Event-Type", "pull_request")
		h.Set(prefix+"Delivery", id)
	}
	h.Set("X-Gitea-Signature", sig)
	h.Set("X-Gogs-Signature", sig)
	h.Set("X-Hub-Signature-256", "sha256="+sig)
	h.Set("User-Agent", "Go-http-client/1.1")
	return p.post(t, secret, h, body)
}
