package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/driftless/driftless/api"
	"github.com/driftless/driftless/forge"
	"github.com/driftless/driftless/internal/testenv"
	"github.com/driftless/driftless/model"
)

// previewSecret is the webhook secret of the preview tests' platforms.
const previewSecret = "e2e-preview-secret"

// anyRepo matches the repository paths the platforms of these tests may
// name: "e2e/repo" (the webhooks' full_name) or the last two segments of
// the platform's repository (ShortTempDir's dl-e2e-N/repo) when no webhook
// named it, or GitLab's project id 1 (the merge request deliveries').
var anyRepo = regexp.MustCompile(`^(e2e/repo|1|dl-e2e-[0-9]+/repo)$`)

// derivedRepo is the forge's name of p's repository no webhook named: the
// last two segments of its path.
func (p *platform) derivedRepo() string { return filepath.Base(p.dir) + "/repo" }

// previewHostOf is the route of hello's preview of pull request n.
func previewHostOf(n int) string { return fmt.Sprintf("hello-pr-%d.apps.localhost", n) }

// routerPort is the port of p's router.
func (p *platform) routerPort(t testing.TB) string {
	t.Helper()
	_, port, err := net.SplitHostPort(p.http)
	if err != nil {
		t.Fatal(err)
	}
	return port
}

// deployProduction commits hello greeting "Production" (from vars.yml) with one
// instance and waits until it serves; it returns the commit.
func (p *platform) deployProduction(t testing.TB) string {
	t.Helper()
	p.addHello("apps/hello")
	p.write(map[string]string{"apps/hello/manifest.yml": helloManifest(1, "((greeting))"), "apps/hello/vars.yml": "greeting: Production\n"})
	commit := p.commitAll("hello in production")
	_, _ = p.client.Sync(context.Background(), false, 0)
	p.waitApplied(t, commit, 30*time.Second)
	p.waitServing(t, 90*time.Second, 1, greetingIs("Production"))
	return commit
}

// pushPR commits files onto a clone of p's repository and pushes the
// commit to refs/pull/N/head for each of numbers, as GitHub keeps a pull
// request's head; the branch the platform follows does not move. It
// returns the commit.
func (p *platform) pushPR(t testing.TB, files map[string]string, numbers ...int) string {
	t.Helper()
	refs := make([]string, len(numbers))
	for i, n := range numbers {
		refs[i] = fmt.Sprintf("refs/pull/%d/head", n)
	}
	return p.pushRefs(t, files, refs...)
}

// pushRefs commits files onto a clone of p's repository (made once, at
// pr-clone) and pushes the commit to each of refs; it returns the commit.
func (p *platform) pushRefs(t testing.TB, files map[string]string, refs ...string) string {
	t.Helper()
	clone := filepath.Join(p.dir, "pr-clone")
	if _, err := os.Stat(clone); err != nil {
		testenv.Git(t, p.dir, "clone", "-q", p.repo, clone)
	}
	writeRepo(t, clone, files)
	testenv.Git(t, clone, "add", "-A")
	testenv.Git(t, clone, "commit", "-q", "--allow-empty", "-m", "pull request commit")
	head := testenv.Git(t, clone, "rev-parse", "HEAD")
	for _, ref := range refs {
		testenv.Git(t, clone, "push", "-q", "-f", "origin", "HEAD:"+ref)
	}
	return head
}

// previewFiles is a pull request changing only hello's greeting, through
// vars-preview.yml (the app's bits are production's: its droplet is
// reused).
var previewFiles = map[string]string{"apps/hello/vars-preview.yml": "greeting: Preview\n"}

// openPR posts GitHub's "opened" of pull request n at head and checks the
// webhook acted on its preview.
func (p *platform) openPR(t testing.TB, id string, n int, head string) {
	t.Helper()
	code, res := p.postGitHubPR(t, previewSecret, id, prOpened, n, head)
	if code != http.StatusAccepted || len(res.Previews) != 1 || res.Previews[0] != fmt.Sprintf("repo#pr-%d", n) {
		t.Fatalf("pull request %d opened: %d %+v", n, code, res)
	}
}

// closePR posts GitHub's "closed" of pull request n.
func (p *platform) closePR(t testing.TB, id string, n int, head string) {
	t.Helper()
	if code, res := p.postGitHubPR(t, previewSecret, id, prClosed, n, head); code != http.StatusAccepted {
		t.Fatalf("pull request %d closed: %d %+v", n, code, res)
	}
}

// closeOnCleanup closes pull requests numbers (head their head) when the
// test ends, before the platform stops, so that no preview's container
// outlives it whatever failed.
func (p *platform) closeOnCleanup(t testing.TB, head string, numbers ...int) {
	t.Cleanup(func() {
		if p.cmd.ProcessState != nil {
			return // stopped already
		}
		for _, n := range numbers {
			p.postGitHubPR(t, previewSecret, fmt.Sprintf("cleanup-%d-closed", n), prClosed, n, head)
		}
	})
}

// syncPR posts GitHub's "synchronize" of pull request n (new commits, head
// its new head).
func (p *platform) syncPR(t testing.TB, id string, n int, head string) api.WebhookResult {
	t.Helper()
	code, res := p.postGitHubPR(t, previewSecret, id, prPushed, n, head)
	if code != http.StatusAccepted || len(res.Previews) != 1 {
		t.Fatalf("pull request %d synchronized: %d %+v", n, code, res)
	}
	return res
}

// previewNamed is preview name in `driftless previews --json`, false when
// it is not listed.
func (p *platform) previewNamed(t testing.TB, name string) (api.Preview, bool, error) {
	t.Helper()
	var ps []api.Preview
	if err := p.cliJSON(&ps, "previews"); err != nil {
		return api.Preview{}, false, err
	}
	for _, pv := range ps {
		if pv.Name == name {
			return pv, true, nil
		}
	}
	return api.Preview{}, false, nil
}

// waitPreviewState waits until `driftless previews` shows preview n of
// source repo in state, and returns it.
func (p *platform) waitPreviewState(t testing.TB, timeout time.Duration, n int, state string) api.Preview {
	t.Helper()
	var got api.Preview
	testenv.Eventually(t, timeout, 200*time.Millisecond, fmt.Sprintf("preview %d is %s", n, state), func() error {
		pv, ok, err := p.previewNamed(t, fmt.Sprintf("repo#pr-%d", n))
		if err != nil {
			return err
		}
		if !ok || pv.State != state {
			return fmt.Errorf("preview %+v (listed: %v)", pv, ok)
		}
		got = pv
		return nil
	})
	return got
}

// waitPreviewServes waits until hello-pr-N answers from one instance of
// the pull request's code (greeting Preview, commit head).
func (p *platform) waitPreviewServes(t testing.TB, timeout time.Duration, n int, head string) {
	t.Helper()
	testenv.Eventually(t, timeout, 300*time.Millisecond, fmt.Sprintf("preview %d serves %s", n, model.ShortCommit(head)), func() error {
		seen, err := p.sample(previewHostOf(n), 4)
		if err != nil {
			return err
		}
		for _, in := range seen {
			if in.Greeting != "Preview" || in.Commit != head {
				return fmt.Errorf("the preview answers %+v", in)
			}
		}
		if len(seen) != 1 {
			return fmt.Errorf("%d instances answer, want 1", len(seen))
		}
		return nil
	})
}

// waitRoute404 waits until host answers 404 through the router.
func (p *platform) waitRoute404(t testing.TB, timeout time.Duration, host string) {
	t.Helper()
	testenv.Eventually(t, timeout, 200*time.Millisecond, host+" answers 404", func() error {
		code, body, err := p.get(host, "/info")
		if err != nil {
			return err
		}
		if code != http.StatusNotFound {
			return fmt.Errorf("%d %s", code, body)
		}
		return nil
	})
}

// checkProduction fails the test unless hello in production answers from
// commit with its own greeting.
func (p *platform) checkProduction(t testing.TB, commit string) {
	t.Helper()
	seen, err := p.sample(helloHost, 6)
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range seen {
		if in.Greeting != "Production" || in.Commit != commit {
			t.Fatalf("production answers %+v", in)
		}
	}
}

// waitStatuses waits until the forge's statuses of context ctx on sha end
// in state last, and returns them all.
func (f *fakeForge) waitStatuses(t testing.TB, timeout time.Duration, sha, ctx, last string) []postedStatus {
	t.Helper()
	var got []postedStatus
	testenv.Eventually(t, timeout, 100*time.Millisecond, fmt.Sprintf("%s %s on %s", ctx, last, model.ShortCommit(sha)), func() error {
		got = f.posted(sha, ctx)
		if len(got) == 0 || got[len(got)-1].State != last {
			return fmt.Errorf("statuses %v", states(got))
		}
		return nil
	})
	return got
}

// statusForge is a forge TestPreviewStatuses runs against: how the
// platform hears of its pull requests, and how its API names things.
type statusForge struct {
	name string
	kind forge.Kind
	// ref is where the forge keeps pull request n's head.
	ref func(n int) string
	// webhookRepo is the repository in the status paths once a webhook
	// named it (GitHub: its full_name; GitLab: its project's id).
	webhookRepo string
	// statusPath is the path of a status on commit sha of repo (as the
	// path has it: GitLab's project path escaped).
	statusPath func(repo, sha string) string
	// auth is the Authorization header a status comes with, the token
	// redacted.
	auth string
	// failure is the forge's word for a failed check.
	failure string
	// apiRoot is the path of the forge's API under its host.
	apiRoot string
	// deliver posts the forge's delivery of pull request n: opened,
	// updated (new commits; before the previous head) or closed.
	deliver func(p *platform, t testing.TB, id, action string, n int, head, before string)
}

// statusForges are the forges TestPreviewStatuses runs for.
var statusForges = []statusForge{
	{name: "github", kind: forge.GitHub, ref: func(n int) string { return fmt.Sprintf("refs/pull/%d/head", n) }, webhookRepo: "e2e/repo",
		statusPath: func(repo, sha string) string { return "/repos/" + repo + "/statuses/" + sha }, auth: "Bearer <token>", failure: "failure",
		deliver: func(p *platform, t testing.TB, id, action string, n int, head, _ string) {
			switch action {
			case "update":
				p.syncPR(t, id, n, head)
			case "open":
				p.openPR(t, id, n, head)
			default:
				p.closePR(t, id, n, head)
			}
		}},
	{name: "gitlab", kind: forge.GitLab, ref: func(n int) string { return fmt.Sprintf("refs/merge-requests/%d/head", n) }, webhookRepo: "1",
		statusPath: func(repo, sha string) string { return "/projects/" + url.PathEscape(repo) + "/statuses/" + sha }, auth: "", failure: "failed",
		deliver: func(p *platform, t testing.TB, id, action string, n int, head, before string) {
			var code int
			var res api.WebhookResult
			act := map[string]prAction{"open": prOpened, "update": prPushed, "close": prClosed}[action]
			code, res = p.postGitLabMR(t, previewSecret, id, act, n, head)
			if code != http.StatusAccepted || len(res.Previews) != 1 {
				t.Fatalf("merge request %d %s: %d %+v", n, action, code, res)
			}
		}},
	{name: "gitea", kind: forge.Gitea, ref: func(n int) string { return fmt.Sprintf("refs/pull/%d/head", n) }, webhookRepo: "e2e/repo",
		statusPath: func(repo, sha string) string { return "/api/v1/repos/" + repo + "/statuses/" + sha }, auth: "token <token>", failure: "failure",
		apiRoot: "/api/v1",
		deliver: func(p *platform, t testing.TB, id, action string, n int, head, _ string) {
			act := map[string]prAction{"open": prOpened, "update": prPushed, "close": prClosed}[action]
			if code, res := p.postGiteaPR(t, previewSecret, id, act, n, head); code != http.StatusAccepted || len(res.Previews) != 1 {
				t.Fatalf("pull request %d %s: %d %+v", n, action, code, res)
			}
		}},
}

// TestPreviewStatuses, for GitHub, GitLab and Gitea: with a forge configured (a
// fake of its API on loopback, the platform real), a production commit
// gets driftless/deploy pending then success (linking to its route through
// the router) on the repository named by its path; a pull request (merge
// request) opened by webhook gets driftless/preview pending then success
// linking to http://hello-pr-N.apps.localhost:<router port>/ on the
// repository the webhook named (GitHub: full_name; GitLab: the project's
// id); new commits whose manifest is invalid get a failure with the
// manifest's file:line (and the preview is refused, its previous commit
// still serving). Every call carries the token as the forge wants it; the
// token is in neither the platform's output nor its events.
func TestPreviewStatuses(t *testing.T) {
	for _, sf := range statusForges {
		t.Run(sf.name, func(t *testing.T) { testPreviewStatuses(t, sf) })
	}
}

func testPreviewStatuses(t *testing.T, sf statusForge) {
	token := randomToken(t)
	f := newFakeForge(t, sf.kind, token, anyRepo)
	p := startDev(t, "--webhook-secret", previewSecret, "--forge-api", f.URL()+sf.apiRoot, "--forge-token", token, "--forge", string(sf.kind))
	port := p.routerPort(t)

	first := p.deployProduction(t)
	deploy := f.waitStatuses(t, 30*time.Second, first, model.StatusContextDeploy, "success")
	if s := states(deploy); s[0] != "pending" || slices.Index(s, "success") != len(s)-1 {
		t.Errorf("deploy statuses of %s: %v, want pending … success", model.ShortCommit(first), s)
	}
	for _, st := range deploy {
		if want := sf.statusPath(p.derivedRepo(), first); st.Repo != p.derivedRepo() || st.Method != http.MethodPost || st.Path != want || st.Auth != sf.auth {
			t.Errorf("deploy status %+v, want POST %s with the token", st, want)
		}
	}
	if got, want := deploy[len(deploy)-1].TargetURL, "http://"+helloHost+":"+port+"/"; got != want {
		t.Errorf("deploy success links to %q, want %q", got, want)
	}

	// The pull request: the forge lists it open from now on (a forge's
	// own consistency: the platform's poll must not remove it).
	const n = 5
	head := p.pushRefs(t, previewFiles, sf.ref(n))
	t.Cleanup(func() { sf.deliver(p, t, "cleanup-closed", "close", n, head, "") })
	f.setOpen(fakePR{Number: n, Head: head, Branch: "feature", CloneURL: "file://" + p.repo})
	sf.deliver(p, t, "statuses-opened", "open", n, head, "")
	p.waitPreviewServes(t, 90*time.Second, n, head)
	preview := f.waitStatuses(t, 30*time.Second, head, model.StatusContextPreview, "success")
	if s := states(preview); s[0] != "pending" || slices.Index(s, "success") != len(s)-1 {
		t.Errorf("preview statuses of %s: %v, want pending … success", model.ShortCommit(head), s)
	}
	for _, st := range preview {
		if want := sf.statusPath(sf.webhookRepo, head); st.Repo != sf.webhookRepo || st.Path != want || st.Auth != sf.auth {
			t.Errorf("preview status %+v, want POST %s (the repository the webhook named)", st, want)
		}
	}
	if got, want := preview[len(preview)-1].TargetURL, fmt.Sprintf("http://%s:%s/", previewHostOf(n), port); got != want {
		t.Errorf("preview success links to %q, want %q", got, want)
	}

	// New commits whose manifest is invalid: a failure at the manifest's
	// line; the preview is refused and its previous commit serves on.
	bad := strings.Replace(helloManifest(1, "((greeting))"), "instances: 1", "instances: many", 1)
	if !strings.Contains(strings.Split(bad, "\n")[2], "instances: many") {
		t.Fatalf("the invalid manifest's line 3 is not its instances:\n%s", bad)
	}
	broken := p.pushRefs(t, map[string]string{"apps/hello/manifest.yml": bad}, sf.ref(n))
	f.setOpen(fakePR{Number: n, Head: broken, Branch: "feature", CloneURL: "file://" + p.repo})
	sf.deliver(p, t, "statuses-update", "update", n, broken, head)
	failed := f.waitStatuses(t, 30*time.Second, broken, model.StatusContextPreview, sf.failure)
	const at = "apps/hello/manifest.yml:3"
	if d := failed[len(failed)-1].Description; !strings.Contains(d, at) {
		t.Errorf("failure's description %q does not say %s", d, at)
	}
	if pv := p.waitPreviewState(t, 10*time.Second, n, api.PreviewRefused); !strings.Contains(pv.Reason, at) {
		t.Errorf("refused preview's reason %q does not say %s", pv.Reason, at)
	}
	p.waitPreviewServes(t, 5*time.Second, n, head)
	if got := f.posted(broken, model.StatusContextDeploy); len(got) != 0 {
		t.Errorf("a pull request's commit got deploy statuses: %+v", got)
	}
	for _, st := range f.posted("", "") {
		t.Logf("status: %s %s %s %q %s", st.Path, st.Context, st.State, st.Description, st.TargetURL)
	}

	// The token: in no output of the platform, in no event.
	evs, err := p.cli("events", "--json")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(evs, token) {
		t.Errorf("`driftless events --json` shows the forge token")
	}
	if !strings.Contains(evs, "preview-deployed") {
		t.Errorf("`driftless events --json` has no preview-deployed event: %.500s", evs)
	}
	if out, err := os.ReadFile(p.logPath); err != nil || len(out) == 0 || strings.Contains(string(out), token) {
		t.Errorf("the platform's output (%d bytes, %v) shows the forge token", len(out), err)
	}

	f.setOpen()
	sf.deliver(p, t, "statuses-closed", "close", n, broken, "")
	p.waitRoute404(t, 20*time.Second, previewHostOf(n))
}

// TestPreviewBudget: a policy source holding only quotas.yml with
// previews.per_source 1 (the built-in rules apply to it): the first pull
// request's preview serves; the second's is refused — `driftless
// previews` names previews.per_source, its route answers 404, production
// is unchanged; closing the first deploys the second, which serves.
func TestPreviewBudget(t *testing.T) {
	pol := filepath.Join(testenv.ShortTempDir(t, "dl-pol-"), "policies")
	if err := os.MkdirAll(pol, 0o755); err != nil {
		t.Fatal(err)
	}
	testenv.Git(t, pol, "init", "-q", "-b", "main")
	writePolicy(t, pol, map[string]string{"quotas.yml": "previews:\n  per_source: 1\n"})
	commitPolicy(t, pol, "one preview per source")
	p := startDev(t, "--webhook-secret", previewSecret, "--policies", pol)
	first := p.deployProduction(t)

	const a, b = 11, 12
	head := p.pushPR(t, previewFiles, a, b)
	p.closeOnCleanup(t, head, a, b)
	p.openPR(t, "budget-a-opened", a, head)
	p.waitPreviewServes(t, 90*time.Second, a, head)
	p.waitPreviewState(t, 10*time.Second, a, api.PreviewServing)

	p.openPR(t, "budget-b-opened", b, head)
	refused := p.waitPreviewState(t, 30*time.Second, b, api.PreviewRefused)
	if !strings.Contains(refused.Reason, "previews.per_source") {
		t.Errorf("preview %d refused for %q, want previews.per_source", b, refused.Reason)
	}
	if code, body, err := p.get(previewHostOf(b), "/info"); err != nil || code != http.StatusNotFound {
		t.Errorf("the refused preview's route answers %d %s (%v), want 404", code, body, err)
	}
	p.checkProduction(t, first)
	p.waitPreviewServes(t, 5*time.Second, a, head)
	if s, err := p.source(t); err != nil || s.LastApplied != first || len(s.Errors) != 0 {
		t.Errorf("production's source %+v, %v", s, err)
	}

	// A closed: its place goes to B.
	p.closePR(t, "budget-a-closed", a, head)
	p.waitRoute404(t, 20*time.Second, previewHostOf(a))
	p.waitPreviewServes(t, 90*time.Second, b, head)
	p.waitPreviewState(t, 10*time.Second, b, api.PreviewServing)
	p.checkProduction(t, first)
	p.closePR(t, "budget-b-closed", b, head)
	p.waitRoute404(t, 20*time.Second, previewHostOf(b))
}

// previewContainers lists the containers of the apps of space.
func (p *platform) previewContainers(t testing.TB, space string) []string {
	var ids []string
	for _, labels := range p.containers(t) {
		if labels["driftless.space"] == space {
			ids = append(ids, labels["id"])
		}
	}
	return ids
}

// getHeld sends one request through the router and waits up to timeout
// for its answer (the router holds a sleeping app's request while it
// wakes).
func (p *platform) getHeld(host, path string, timeout time.Duration) (int, []byte, error) {
	req, err := http.NewRequest(http.MethodGet, "http://"+p.http+path, nil)
	if err != nil {
		return 0, nil, err
	}
	req.Host = host
	resp, err := (&http.Client{Timeout: timeout}).Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, body, err
}

// TestPreviewSleep: with --preview-idle 3s, a preview that serves and gets
// no request goes to sleep — `driftless previews` shows it sleeping and
// its container is gone — and one request to its route is held by the
// router while it wakes and answered 200 by the pull request's code; it
// then shows serving again.
func TestPreviewSleep(t *testing.T) {
	p := startDev(t, "--webhook-secret", previewSecret, "--preview-idle", "3s")
	p.deployProduction(t)
	const n = 21
	space := fmt.Sprintf("dev-pr-%d", n)
	head := p.pushPR(t, previewFiles, n)
	p.closeOnCleanup(t, head, n)
	p.openPR(t, "sleep-opened", n, head)
	p.waitPreviewServes(t, 90*time.Second, n, head)

	// No request: asleep, no container.
	waited := time.Now()
	p.waitPreviewState(t, 60*time.Second, n, api.PreviewSleeping)
	testenv.Eventually(t, 30*time.Second, 200*time.Millisecond, "the sleeping preview's container is gone", func() error {
		if ids := p.previewContainers(t, space); len(ids) > 0 {
			return fmt.Errorf("containers %v", ids)
		}
		return nil
	})

	// One request wakes it.
	start := time.Now()
	code, body, err := p.getHeld(previewHostOf(n), "/info", 60*time.Second)
	took := time.Since(start)
	if err != nil || code != http.StatusOK {
		t.Fatalf("the request to the sleeping preview: %d %s (%v) after %s", code, body, err, took)
	}
	var in info
	if err := json.Unmarshal(body, &in); err != nil || in.Greeting != "Preview" || in.Commit != head {
		t.Fatalf("the woken preview answers %s (%v)", body, err)
	}
	t.Logf("the sleeping preview answered its first request in %s (sent at +%s)", took.Round(time.Millisecond), start.Sub(waited).Round(time.Millisecond))
	p.logEvents(t, space, waited)
	p.waitPreviewState(t, 10*time.Second, n, api.PreviewServing)
	if ids := p.previewContainers(t, space); len(ids) != 1 {
		t.Errorf("containers of the woken preview: %v, want 1", ids)
	}
}

// TestPreviewPolling: no webhook at all; the forge (a fake GitHub API)
// lists pull request N open, its head at refs/pull/N/head of the
// repository, which the platform names by its path's last two segments:
// within --pr-poll 2s the preview is deployed and serves. Once the forge
// no longer lists it, the preview is removed and its route answers 404.
func TestPreviewPolling(t *testing.T) {
	token := randomToken(t)
	f := newFakeForge(t, forge.GitHub, token, anyRepo)
	p := startDev(t, "--forge-api", f.URL(), "--forge-token", token, "--pr-poll", "2s")
	first := p.deployProduction(t)
	f.setRepo(regexp.MustCompile("^" + regexp.QuoteMeta(p.derivedRepo()) + "$"))

	const n = 31
	head := p.pushPR(t, previewFiles, n)
	listed := f.listed()
	f.setOpen(fakePR{Number: n, Head: head, Branch: "feature", CloneURL: "file://" + p.repo})
	t.Cleanup(func() { f.setOpen() })
	p.waitPreviewServes(t, 90*time.Second, n, head)
	p.waitPreviewState(t, 10*time.Second, n, api.PreviewServing)
	if f.listed() <= listed {
		t.Errorf("the preview serves but the forge was not asked for the open pull requests")
	}
	p.checkProduction(t, first)

	f.setOpen()
	p.waitRoute404(t, 30*time.Second, previewHostOf(n))
	testenv.Eventually(t, 10*time.Second, 200*time.Millisecond, "the preview is no longer listed", func() error {
		if pv, ok, err := p.previewNamed(t, fmt.Sprintf("repo#pr-%d", n)); err != nil || ok {
			return fmt.Errorf("listed %+v (%v)", pv, err)
		}
		return nil
	})
	p.checkProduction(t, first)
}
