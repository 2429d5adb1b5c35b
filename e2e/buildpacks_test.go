package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/driftless/driftless/api"
	"github.com/driftless/driftless/internal/testenv"
	"github.com/driftless/driftless/model"
)

// waitAnswer waits until the router answers host's / with 200 and a body
// containing want.
func (p *platform) waitAnswer(t testing.TB, timeout time.Duration, host, want string) {
	t.Helper()
	testenv.Eventually(t, timeout, 500*time.Millisecond, host+" answers "+want, func() error {
		code, body, err := p.get(host, "/")
		if err != nil {
			return err
		}
		if code != http.StatusOK || !strings.Contains(string(body), want) {
			a, _ := p.client.App(context.Background(), "dev", strings.Split(host, ".")[0])
			return fmt.Errorf("%d %q (app %s, problems %q)", code, body, a.State, a.Problems)
		}
		return nil
	})
}

// stagingLog returns the staging log of the app's release id.
func stagingLog(t testing.TB, d api.AppDetail, id string) string {
	t.Helper()
	for _, r := range d.Releases {
		if r.ID == id {
			return strings.Join(r.StagingLog, "\n")
		}
	}
	t.Fatalf("no release %s in %+v", id, d.Releases)
	return ""
}

// TestBuildpacksTiny deploys the Go example from source and the static
// site; a compile error leaves the running release serving and shows the
// compiler's lines; a manifest-only change reuses the droplet; a source
// change builds again with the build cache warm.
func TestBuildpacksTiny(t *testing.T) {
	p := startDev(t)
	p.addExample("go-hello")
	p.addExample("static-site")
	p.commitAll("go and static examples")
	_, _ = p.client.Sync(context.Background(), false, 0)
	p.waitAnswer(t, 3*time.Minute, "go-hello.apps.localhost", "Hello from Go")
	p.waitAnswer(t, time.Minute, "static-site.apps.localhost", "Hello from a static site")

	// The static server compresses and sets cache headers.
	req, _ := http.NewRequest(http.MethodGet, "http://"+p.http+"/", nil)
	req.Host = "static-site.apps.localhost"
	req.Header.Set("Accept-Encoding", "gzip")
	resp, err := (&http.Transport{DisableCompression: true}).RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Header.Get("Content-Encoding") != "gzip" || resp.Header.Get("ETag") == "" || !strings.Contains(resp.Header.Get("Cache-Control"), "max-age") {
		t.Errorf("static site headers %v", resp.Header)
	}

	ctx := context.Background()
	first, err := p.client.App(ctx, "dev", "go-hello")
	if err != nil {
		t.Fatal(err)
	}
	log1 := stagingLog(t, first, first.ReleaseID)
	if !strings.Contains(log1, "go buildpack (stack tiny)") || !strings.Contains(log1, "built bin/go-hello") {
		t.Errorf("first staging log:\n%s", log1)
	}

	// A compile error: the release fails, the running one keeps serving,
	// and the compiler's message is shown.
	mainGo := filepath.Join(p.repo, "apps", "go-hello", "main.go")
	good, err := os.ReadFile(mainGo)
	if err != nil {
		t.Fatal(err)
	}
	p.write(map[string]string{"apps/go-hello/main.go": strings.Replace(string(good), "log.Fatal(", "undefinedThing(); log.Fatal(", 1)})
	p.commitAll("a compile error")
	_, _ = p.client.Sync(ctx, false, 0)
	testenv.Eventually(t, 2*time.Minute, 500*time.Millisecond, "the broken release fails to stage", func() error {
		d, err := p.client.App(ctx, "dev", "go-hello")
		if err != nil {
			return err
		}
		if !slices.ContainsFunc(d.Problems, func(s string) bool { return strings.Contains(s, "failed to stage") }) {
			return fmt.Errorf("problems %q", d.Problems)
		}
		if d.ReleaseID != first.ReleaseID {
			return fmt.Errorf("current release moved to %s", d.ReleaseID)
		}
		log := stagingLog(t, d, d.Target)
		if !strings.Contains(log, "undefined: undefinedThing") {
			return fmt.Errorf("compiler lines missing from the staging log:\n%s", log)
		}
		return nil
	})
	p.waitAnswer(t, 10*time.Second, "go-hello.apps.localhost", "Hello from Go")
	evs, err := p.client.Events(ctx, "dev", "go-hello")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(evs, func(e model.Event) bool {
		return e.Kind == "staging-failed" && strings.Contains(e.Message, "undefined: undefinedThing")
	}) {
		t.Error("no staging-failed event with the compiler's lines")
	}
	var st api.Status
	if err := p.cliJSON(&st, "status"); err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(st.Problems, func(pr api.AppProblem) bool {
		return pr.App == "go-hello" && strings.Contains(pr.Message, "failed to stage")
	}) {
		t.Errorf("driftless status does not show the failed staging: %+v", st.Problems)
	}

	// A manifest-only change (env) reuses the droplet: nothing is built.
	p.write(map[string]string{"apps/go-hello/main.go": string(good)})
	manifest, _ := os.ReadFile(filepath.Join(p.repo, "apps", "go-hello", "manifest.yml"))
	p.write(map[string]string{"apps/go-hello/manifest.yml": string(manifest) + "  env:\n    COLOR: blue\n"})
	p.commitAll("env only")
	_, _ = p.client.Sync(ctx, false, 0)
	var second api.AppDetail
	testenv.Eventually(t, time.Minute, 500*time.Millisecond, "the env change runs", func() error {
		if second, err = p.client.App(ctx, "dev", "go-hello"); err != nil {
			return err
		}
		if second.ReleaseID == first.ReleaseID || second.Target != "" || second.State != api.AppRunning {
			return fmt.Errorf("release %s target %q state %s", second.ReleaseID, second.Target, second.State)
		}
		return nil
	})
	if !strings.Contains(stagingLog(t, second, second.ReleaseID), "droplet reused") {
		t.Errorf("the env change built again:\n%s", stagingLog(t, second, second.ReleaseID))
	}
	if droplet(second, second.ReleaseID) != droplet(first, first.ReleaseID) {
		t.Errorf("same source, different droplets")
	}

	// The same source built again (another name of the same buildpack
	// misses the staging cache) gives a byte-identical droplet.
	p.write(map[string]string{"apps/go-hello/manifest.yml": strings.Replace(string(manifest), "[go_buildpack]", "[go]", 1) + "  env:\n    COLOR: blue\n"})
	p.commitAll("same source, buildpack named go")
	_, _ = p.client.Sync(ctx, false, 0)
	testenv.Eventually(t, 2*time.Minute, 500*time.Millisecond, "the rebuilt release runs", func() error {
		d, err := p.client.App(ctx, "dev", "go-hello")
		if err != nil {
			return err
		}
		if d.ReleaseID == second.ReleaseID || d.Target != "" || d.State != api.AppRunning {
			return fmt.Errorf("release %s target %q state %s", d.ReleaseID, d.Target, d.State)
		}
		log := stagingLog(t, d, d.ReleaseID)
		if !strings.Contains(log, "built bin/go-hello") {
			return fmt.Errorf("not rebuilt:\n%s", log)
		}
		if got := droplet(d, d.ReleaseID); got != droplet(first, first.ReleaseID) {
			return fmt.Errorf("rebuilt droplet %s differs from %s", got, droplet(first, first.ReleaseID))
		}
		return nil
	})

	// A source change builds again, with a warm build cache.
	p.write(map[string]string{"apps/go-hello/main.go": strings.Replace(string(good), `"Hello from Go"`, `"Hi again from Go"`, 1)})
	p.commitAll("new greeting")
	// `driftless sync --wait` streams the staging output and the rollout.
	out, err := p.cliAll("sync", "--wait", "--timeout", "2m")
	if err != nil || !strings.Contains(out, "[go-hello]") || !strings.Contains(out, "built bin/go-hello") {
		t.Errorf("sync --wait (err %v) did not stream the staging:\n%s", err, out)
	}
	if !strings.Contains(out, "started") || !strings.Contains(out, "go-hello/0 instance is healthy") {
		t.Errorf("sync --wait did not show the rollout instance by instance:\n%s", out)
	}
	p.waitAnswer(t, 2*time.Minute, "go-hello.apps.localhost", "Hi again from Go")
	third, err := p.client.App(ctx, "dev", "go-hello")
	if err != nil {
		t.Fatal(err)
	}
	log3 := stagingLog(t, third, third.ReleaseID)
	if strings.Contains(log3, "build cache: 0 files") || !strings.Contains(log3, "build cache: ") {
		t.Errorf("the rebuild did not find the build cache warm:\n%s", log3)
	}
}

// droplet is the droplet digest of release id.
func droplet(d api.AppDetail, id string) string {
	for _, r := range d.Releases {
		if r.ID == id {
			return r.Droplet
		}
	}
	return ""
}

// TestBuildpacksBookworm deploys the Node example (one npm dependency) and
// the Python example on the bookworm stack; a change to the Node app
// builds again with npm's cache warm.
func TestBuildpacksBookworm(t *testing.T) {
	if _, err := os.Stat("/var/lib/driftless/stacks/bookworm/stamp"); err != nil {
		t.Fatal("the bookworm stack is not built: run `make setup` (scripts/build-stack.sh)")
	}
	p := startDev(t)
	p.addExample("node-hello")
	p.addExample("python-hello")
	p.commitAll("node and python examples")
	_, _ = p.client.Sync(context.Background(), false, 0)
	p.waitAnswer(t, 5*time.Minute, "node-hello.apps.localhost", "Hello from Node")
	p.waitAnswer(t, 2*time.Minute, "python-hello.apps.localhost", "Hello from Python 3")

	ctx := context.Background()
	first, err := p.client.App(ctx, "dev", "node-hello")
	if err != nil {
		t.Fatal(err)
	}
	log1 := stagingLog(t, first, first.ReleaseID)
	if !strings.Contains(log1, "node buildpack (stack bookworm)") || !strings.Contains(log1, "added 1 package") {
		t.Errorf("first node staging log:\n%s", log1)
	}
	server := filepath.Join(p.repo, "apps", "node-hello", "server.js")
	src, err := os.ReadFile(server)
	if err != nil {
		t.Fatal(err)
	}
	p.write(map[string]string{"apps/node-hello/server.js": strings.Replace(string(src), "Hello from Node", "Hi again from Node", 1)})
	p.commitAll("node: new greeting")
	_, _ = p.client.Sync(ctx, false, 0)
	p.waitAnswer(t, 3*time.Minute, "node-hello.apps.localhost", "Hi again from Node")
	second, err := p.client.App(ctx, "dev", "node-hello")
	if err != nil {
		t.Fatal(err)
	}
	log2 := stagingLog(t, second, second.ReleaseID)
	if !strings.Contains(log2, "npm cache: ") || strings.Contains(log2, "npm cache: 0 files") {
		t.Errorf("the rebuild did not find npm's cache warm:\n%s", log2)
	}
	out, err := p.cli("logs", "node-hello", "--staging", "--recent")
	if err != nil || !strings.Contains(out, "node buildpack") {
		t.Errorf("driftless logs --staging (err %v):\n%s", err, out)
	}
}
