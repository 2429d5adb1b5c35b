package e2e

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/driftless/driftless/api"
	"github.com/driftless/driftless/internal/testenv"
	"github.com/driftless/driftless/model"
)

// previewHost is hello's route as pull request 1's preview serves it.
const previewHost = "hello-pr-1.apps.localhost"

// TestPreview: a signed GitHub pull_request "opened" delivery for the
// platform's repository, whose refs/pull/1/head changes hello's greeting
// (in a vars-preview.yml beside the manifest, which production does not
// read) and asks for 2 instances, deploys the preview: one instance
// serving the pull request's code at hello-pr-1.apps.localhost through the
// router, while production's hello keeps its code and route. "closed"
// removes it: hello-pr-1 answers 404, `driftless apps` no longer lists it,
// and both are events.
func TestPreview(t *testing.T) {
	const secret = "e2e-preview-secret"
	p := startDev(t, "--webhook-secret", secret)
	p.addHello("apps/hello")
	p.write(map[string]string{"apps/hello/manifest.yml": helloManifest(1, "((greeting))"), "apps/hello/vars.yml": "greeting: Production\n"})
	first := p.commitAll("hello in production")
	p.waitApplied(t, first, 30*time.Second)
	p.waitServing(t, 90*time.Second, 1, greetingIs("Production"))

	// The pull request: a commit of a clone pushed to refs/pull/1/head, as
	// a forge keeps it; the branch the platform follows does not move.
	clone := filepath.Join(p.dir, "pr-clone")
	testenv.Git(t, p.dir, "clone", "-q", p.repo, clone)
	writeRepo(t, clone, map[string]string{"apps/hello/manifest.yml": helloManifest(2, "((greeting))"), "apps/hello/vars-preview.yml": "greeting: Preview\n"})
	testenv.Git(t, clone, "add", "-A")
	testenv.Git(t, clone, "commit", "-q", "-m", "a new greeting, for the preview")
	head := testenv.Git(t, clone, "rev-parse", "HEAD")
	testenv.Git(t, clone, "push", "-q", "origin", "HEAD:refs/pull/1/head")

	sent := time.Now()
	code, res := p.postPullRequest(t, secret, "pr-1-opened", "opened", 1, head)
	if code != http.StatusAccepted || len(res.Previews) != 1 || res.Previews[0] != "repo#pr-1" {
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
	if a, ok := apps["dev-pr-1/hello"]; !ok || a.Desired != 1 || a.Commit != head {
		t.Fatalf("the preview in `driftless apps`: %+v", apps)
	}

	// Closed: its route answers 404 and it is no longer listed.
	sent = time.Now()
	code, res = p.postPullRequest(t, secret, "pr-1-closed", "closed", 1, head)
	if code != http.StatusAccepted || len(res.Previews) != 1 || !strings.Contains(res.Status, "removed") {
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
	p.waitServing(t, 10*time.Second, 1, greetingIs("Production"))
	evs, err := p.client.Events(context.Background(), "dev-pr-1", "")
	if err != nil {
		t.Fatal(err)
	}
	for _, kind := range []model.EventKind{model.EventPreviewDeployed, model.EventPreviewRemoved} {
		n := 0
		for _, e := range evs {
			if e.Kind == kind && strings.Contains(e.Message, "repo#pr-1") {
				n++
			}
		}
		if n != 1 {
			t.Errorf("%d %s events of the preview's space, want 1: %+v", n, kind, evs)
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

// postPullRequest posts a GitHub pull_request event of the platform's
// repository (by its file:// URL), signed with secret, as delivery id.
func (p *platform) postPullRequest(t testing.TB, secret, id, action string, number int, head string) (int, api.WebhookResult) {
	t.Helper()
	repo := map[string]string{"clone_url": "file://" + p.repo, "html_url": "file://" + p.repo}
	payload := map[string]any{"action": action, "number": number, "repository": repo,
		"pull_request": map[string]any{"number": number, "title": "a new greeting", "merged": false,
			"user": map[string]string{"login": "e2e"}, "labels": []any{},
			"head": map[string]any{"sha": head, "ref": "feature", "repo": repo},
			"base": map[string]any{"ref": "main"}}}
	return p.postGitHub(t, secret, id, "pull_request", payload)
}
