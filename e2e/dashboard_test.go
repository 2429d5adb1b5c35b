package e2e

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/driftless/driftless/internal/testenv"
	"github.com/driftless/driftless/model"
)

// TestDashboard is issue 17's acceptance for the web dashboard, in
// headless chromium against `driftless dev`: the API's URL leads to the
// dashboard, which asks for a token; signed in with the admin token, every
// page loads without a console error or exception; a new commit appears
// in the app's timeline; live log lines arrive, filtered by source and
// instance; a pull request's preview shows while it is deployed; a policy
// denial shows with its file:line; and tokens without
// the right see the API's refusal, not the data.
func TestDashboard(t *testing.T) {
	const secret = "e2e-dashboard-secret"
	br := newBrowser(t)
	p := startDev(t, "--webhook-secret", secret)
	p.deployHello(t, 1, "Dashboard")
	first := testenv.Git(t, p.repo, "rev-parse", "HEAD")

	br.signIn(p.apiURL(), p.adminToken())
	br.wait(30*time.Second, "hello in the apps list", `document.querySelector('#apps-table tr[data-app="hello"]') ? "y" : ""`)
	if got := br.text(`#apps-table tr[data-app="hello"]`); !strings.Contains(got, "running") || !strings.Contains(got, model.ShortCommit(first)) {
		t.Errorf("hello's row in the apps list: %q, want running at %s", got, model.ShortCommit(first))
	}
	// The header is filled by its own request, which may answer after the
	// apps list's.
	br.wait(10*time.Second, "the header naming the token and its role", `document.querySelector("#who").textContent.includes("admin") ? "y" : ""`)

	// Every page loads.
	br.show("#/sources", "sources")
	br.wait(20*time.Second, "the source's last applied commit", fmt.Sprintf(`document.querySelector("#page-sources tr[data-source]") && document.querySelector("#page-sources").innerText.includes(%q) ? "y" : ""`, model.ShortCommit(first)))
	br.show("#/cells", "cells")
	br.wait(20*time.Second, "a cell", `document.querySelector("#page-cells tr[data-cell]") ? "y" : ""`)
	for _, pg := range []string{"denials", "previews", "services", "apps"} {
		br.show("#/"+pg, pg)
		if errs := br.text("#main .notice.error"); errs != "" {
			t.Errorf("page %s shows an error: %s", pg, errs)
		}
	}

	// The app: its instance, releases, timeline and live logs.
	br.show("#/apps/dev/hello", "app")
	br.wait(20*time.Second, "hello's instance", `document.querySelector('#instances tr[data-guid]') && document.querySelector('#instances').innerText.includes("RUNNING") ? "y" : ""`)
	br.wait(20*time.Second, "the first commit in the timeline", fmt.Sprintf(`document.getElementById("timeline").innerText.includes(%q) ? "y" : ""`, model.ShortCommit(first)))
	br.wait(20*time.Second, "the log stream", `document.getElementById("log-status").textContent === "following" ? "y" : ""`)

	// A new commit appears in the timeline, as its release and its events.
	p.write(map[string]string{"apps/hello/manifest.yml": helloManifest(1, "Dashboard again")})
	second := p.commitAll("hello, greeting changed")
	br.wait(90*time.Second, "the new commit in the timeline", fmt.Sprintf(`document.getElementById("timeline").innerText.includes(%q) ? "y" : ""`, model.ShortCommit(second)))
	br.wait(90*time.Second, "the commit's release staged", fmt.Sprintf(`[...document.querySelectorAll('#timeline li[data-kind="release"]')].some((li) => li.innerText.includes(%q) && /staged|running|current/i.test(li.innerText)) ? "y" : ""`, model.ShortCommit(second)))
	p.waitServing(t, 90*time.Second, 1, greetingIs("Dashboard again"))

	// Live logs: requests through the router make hello log lines.
	probe := func(what string) {
		t.Helper()
		path := fmt.Sprintf("/dashboard-%s-%d", what, rand.IntN(1<<30))
		deadline := time.Now().Add(60 * time.Second)
		for time.Now().Before(deadline) {
			_, _, _ = p.get(helloHost, path)
			if strings.Contains(br.text("#logs"), path) {
				return
			}
			time.Sleep(500 * time.Millisecond)
		}
		t.Fatalf("the log line of GET %s did not arrive in the dashboard; it shows:\n%s", path, br.text("#logs"))
	}
	probe("all")
	// Filtered: the app's own lines of instance 0 only.
	if _, err := br.eval(`(() => {
		const s = document.getElementById("log-source"); s.value = "APP"; s.dispatchEvent(new Event("change"));
		const i = document.getElementById("log-instance"); i.value = "web:0"; i.dispatchEvent(new Event("change"));
		return "";
	})()`); err != nil {
		t.Fatal(err)
	}
	probe("filtered")
	if other := br.wait(5*time.Second, "the filtered lines", `JSON.stringify([...document.querySelectorAll("#logs > div")].filter((d) => d.dataset.source !== "APP" || d.dataset.index !== "0").map((d) => d.innerText))`); other != "[]" {
		t.Errorf("lines of other sources or instances under the filter: %s", other)
	}
	if errs := br.problems(false); len(errs) > 0 {
		t.Errorf("console errors signed in as admin:\n%s", strings.Join(errs, "\n"))
	}

	// A pull request's preview: its number, branch and author, its state
	// and where it answers.
	clone := filepath.Join(p.dir, "pr-clone")
	testenv.Git(t, p.dir, "clone", "-q", p.repo, clone)
	writeRepo(t, clone, map[string]string{"apps/hello/manifest.yml": helloManifest(1, "Preview")})
	testenv.Git(t, clone, "add", "-A")
	testenv.Git(t, clone, "commit", "-q", "-m", "a preview")
	head := testenv.Git(t, clone, "rev-parse", "HEAD")
	testenv.Git(t, clone, "push", "-q", "origin", "HEAD:refs/pull/1/head")
	if code, res := p.postGitHubPR(t, secret, "dashboard-pr-1-opened", prOpened, 1, head); code != http.StatusAccepted || len(res.Previews) != 1 {
		t.Fatalf("pull request opened: %d %+v", code, res)
	}
	br.show("#/previews", "previews")
	row := br.wait(90*time.Second, "the preview serving", `(() => { const r = document.querySelector('#page-previews tr[data-preview="repo#pr-1"]'); return r && r.innerText.includes("serving") ? r.innerText : ""; })()`)
	for _, want := range []string{"repo #1", "feature by e2e", "dev-pr-1", model.ShortCommit(head), "http://hello-pr-1.apps.localhost"} {
		if !strings.Contains(row, want) {
			t.Errorf("the preview's row %q does not show %q", row, want)
		}
	}
	if code, _ := p.postGitHubPR(t, secret, "dashboard-pr-1-closed", prClosed, 1, head); code != http.StatusAccepted {
		t.Fatalf("pull request closed: %d", code)
	}
	br.wait(60*time.Second, "the preview removed", `document.querySelector('#page-previews tr[data-preview]') ? "" : "y"`)

	// A policy denial: an instance larger than the built-in quota allows.
	p.write(map[string]string{"apps/big/manifest.yml": "applications:\n- name: big\n  memory: 3G\n  buildpacks: [binary_buildpack]\n  command: ./hello\n"})
	p.addHello("apps/big")
	p.commitAll("too big")
	br.show("#/denials", "denials")
	br.wait(60*time.Second, "the denial in the history", `document.querySelector("#page-denials").innerText.includes("denied by policy") || document.querySelector("#page-denials").innerText.includes("held back by policy") ? "y" : ""`)
	br.wait(20*time.Second, "the denial at file:line", `document.querySelector("#page-denials").innerText.includes("apps/big/manifest.yml:") ? "y" : ""`)
	br.show("#/sources", "sources")
	br.wait(20*time.Second, "the source's error at file:line", `document.querySelector("#page-sources .problems") && document.querySelector("#page-sources").innerText.includes("apps/big/manifest.yml:") ? "y" : ""`)

	// Tokens without the right: an auditor of dev sees hello but not its
	// logs; a developer of another space does not see hello at all.
	auditor, err := p.cli("token", "create", "--name", "dash-audit", "--role", "space-auditor", "--space", "dev")
	if err != nil {
		t.Fatal(err)
	}
	other, err := p.cli("token", "create", "--name", "dash-other", "--role", "space-developer", "--space", "other")
	if err != nil {
		t.Fatal(err)
	}
	br.signOut()
	br.signIn(p.apiURL(), strings.TrimSpace(auditor))
	br.show("#/apps/dev/hello", "app")
	br.wait(20*time.Second, "the auditor's refusal of logs", `(document.querySelector('#logs-error[data-status="403"]') || {innerText: ""}).innerText`)
	if got := br.text("#logs-error"); !strings.Contains(got, "role space-auditor may not read logs") {
		t.Errorf("the auditor sees %q, want the API's reason", got)
	}
	if lines := br.text("#logs"); strings.TrimSpace(lines) != "" {
		t.Errorf("the auditor sees log lines:\n%s", lines)
	}
	br.signOut()
	br.signIn(p.apiURL(), strings.TrimSpace(other))
	br.wait(20*time.Second, "the apps list of another space", `document.querySelector("#page-apps[data-loaded]") ? document.querySelector("#page-apps").innerText : ""`)
	if got := br.text("#page-apps"); strings.Contains(got, "hello") || !strings.Contains(got, "No apps this token may read") {
		t.Errorf("a developer of space other sees: %q", got)
	}
	br.show("#/apps/dev/hello", "app")
	br.wait(20*time.Second, "the refusal of hello", `(document.querySelector('#app-head .notice.error') || {innerText: ""}).innerText`)
	if got := br.text("#app-head"); !strings.Contains(got, "403") && !strings.Contains(got, "404") {
		t.Errorf("a developer of space other opening hello sees %q, want the API's refusal", got)
	}
	if got := br.text("#instances"); strings.TrimSpace(got) != "" {
		t.Errorf("a developer of space other sees hello's instances: %q", got)
	}
	// A token the API does not know is asked for again.
	br.signOut()
	br.signIn(p.apiURL(), "dlt_000000000000_"+strings.Repeat("A", 43))
	br.wait(20*time.Second, "the refusal of an unknown token", `document.querySelector("#signin .notice.error") ? document.querySelector("#signin").innerText : ""`)
	if got := br.text("#signin"); !strings.Contains(got, "401") {
		t.Errorf("an unknown token sees %q, want the API's 401", got)
	}
	if errs := br.problems(true); len(errs) > 0 {
		t.Errorf("console errors:\n%s", strings.Join(errs, "\n"))
	}
}
