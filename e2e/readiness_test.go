package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/driftless/driftless/api"
	"github.com/driftless/driftless/internal/children"
	"github.com/driftless/driftless/internal/testenv"
	"github.com/driftless/driftless/model"
)

// addReadyApp builds e2e/testdata/readyapp into dir of the platform's
// repository, for the binary buildpack.
func (p *platform) addReadyApp(dir string) {
	p.t.Helper()
	root, err := children.RepoRoot()
	if err != nil {
		p.t.Fatal(err)
	}
	out := filepath.Join(p.repo, dir, "readyapp")
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		p.t.Fatal(err)
	}
	cmd := exec.Command("go", "build", "-o", out, "./e2e/testdata/readyapp")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		p.t.Fatalf("building readyapp: %v\n%s", err, b)
	}
}

// appEvents are the events of app of the given kind.
func appEvents(t testing.TB, c *api.Client, app string, kind model.EventKind) []model.Event {
	t.Helper()
	evs, err := c.Events(context.Background(), "dev", app)
	if err != nil {
		t.Fatal(err)
	}
	var out []model.Event
	for _, e := range evs {
		if e.Kind == kind {
			out = append(out, e)
		}
	}
	return out
}

// answeredBy sends n requests for host through the router and counts the
// answers per instance index ("index=N" in the body).
func (p *platform) answeredBy(host string, n int) (map[string]int, error) {
	seen := map[string]int{}
	for range n {
		code, body, err := p.get(host, "/")
		if err != nil {
			return nil, err
		}
		if code != http.StatusOK {
			return nil, fmt.Errorf("%d %q", code, body)
		}
		_, rest, _ := strings.Cut(string(body), "index=")
		idx, _, _ := strings.Cut(rest, " ")
		seen[idx]++
	}
	return seen, nil
}

const readyHost = "ready.apps.localhost"

// TestReadiness deploys two instances with an http readiness check and
// makes one of them not ready (a request to the instance itself): the
// router stops sending it requests while it keeps running (same guid, no
// crash, no restart) and `driftless app` shows it not ready; once ready
// again it serves again.
func TestReadiness(t *testing.T) {
	p := startDev(t)
	p.addReadyApp("apps/ready")
	p.write(map[string]string{"apps/ready/manifest.yml": `applications:
- name: ready
  instances: 2
  memory: 64M
  disk_quota: 128M
  buildpacks: [binary_buildpack]
  command: ./readyapp
  health-check-type: http
  health-check-http-endpoint: /health
  health-check-interval: 1
  readiness-health-check-type: http
  readiness-health-check-http-endpoint: /ready
  readiness-health-check-interval: 1
  readiness-health-check-invocation-timeout: 1
  routes:
  - route: ` + readyHost + `
`})
	p.commitAll("an app with a readiness check")
	_, _ = p.client.Sync(context.Background(), false, 0)

	both := func(what string) {
		t.Helper()
		testenv.Eventually(t, 120*time.Second, 300*time.Millisecond, what, func() error {
			seen, err := p.answeredBy(readyHost, 8)
			if err != nil {
				return err
			}
			if seen["0"] == 0 || seen["1"] == 0 {
				return fmt.Errorf("answered by %v, want both indexes", seen)
			}
			return nil
		})
	}
	both("both instances serve")
	d, err := p.client.App(context.Background(), "dev", "ready")
	if err != nil {
		t.Fatal(err)
	}
	guids := map[int]string{}
	var addr1 string
	for _, in := range d.Instances {
		if in.State != model.StateRunning || in.Ready == nil || !*in.Ready {
			t.Fatalf("instance %d is %s, ready %v; want RUNNING and ready", in.Index, in.State, in.Ready)
		}
		guids[in.Index] = in.GUID
		if in.Index == 1 {
			addr1 = in.Address
		}
	}
	if len(guids) != 2 || addr1 == "" {
		t.Fatalf("instances %+v", d.Instances)
	}

	setReady := func(ready bool) {
		t.Helper()
		resp, err := (&http.Client{Timeout: 5 * time.Second}).Post(fmt.Sprintf("http://%s/ready?set=%v", addr1, ready), "text/plain", nil)
		if err != nil {
			t.Fatalf("flipping instance 1's readiness at %s: %v", addr1, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("flipping instance 1's readiness: %s", resp.Status)
		}
	}
	setReady(false)
	testenv.Eventually(t, 30*time.Second, 300*time.Millisecond, "instance 1 out of the router", func() error {
		seen, err := p.answeredBy(readyHost, 10)
		if err != nil {
			return err
		}
		if seen["1"] != 0 || seen["0"] != 10 {
			return fmt.Errorf("answered by %v, want only index 0", seen)
		}
		return nil
	})
	testenv.Eventually(t, 15*time.Second, 300*time.Millisecond, "driftless app shows instance 1 not ready", func() error {
		out, err := p.cli("app", "ready")
		if err != nil {
			return err
		}
		if !strings.Contains(out, "RUNNING (not ready)") {
			return fmt.Errorf("no instance not ready in:\n%s", out)
		}
		js, err := p.cli("app", "ready", "--json")
		if err != nil {
			return err
		}
		var jd api.AppDetail
		if err := json.Unmarshal([]byte(js), &jd); err != nil {
			return fmt.Errorf("decoding app --json: %w", err)
		}
		for _, in := range jd.Instances {
			want := in.Index != 1
			if in.State != model.StateRunning || in.Ready == nil || *in.Ready != want || in.GUID != guids[in.Index] {
				return fmt.Errorf("instance %d (%s) is %s, ready %v; want RUNNING, ready %v, guid %s", in.Index, in.GUID, in.State, in.Ready, want, guids[in.Index])
			}
		}
		return nil
	})
	// It stays out, and alive, for longer than the liveness check would
	// take to kill it (3 failures a second apart).
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		seen, err := p.answeredBy(readyHost, 4)
		if err != nil {
			t.Fatal(err)
		}
		if seen["1"] != 0 {
			t.Fatalf("the instance that is not ready got requests: %v", seen)
		}
	}

	setReady(true)
	both("instance 1 serves again once ready")
	d, err = p.client.App(context.Background(), "dev", "ready")
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Instances) != 2 {
		t.Fatalf("instances %+v", d.Instances)
	}
	for _, in := range d.Instances {
		if in.GUID != guids[in.Index] || in.State != model.StateRunning {
			t.Fatalf("instance %d is %s %s, want the same RUNNING instance %s (not restarted)", in.Index, in.GUID, in.State, guids[in.Index])
		}
	}
	for _, kind := range []model.EventKind{"crashed", "restarted"} {
		if evs := appEvents(t, p.client, "ready", kind); len(evs) > 0 {
			t.Fatalf("%s events: %+v", kind, evs)
		}
	}
}
