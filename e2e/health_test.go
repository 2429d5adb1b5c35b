package e2e

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/driftless/driftless/api"
	"github.com/driftless/driftless/internal/testenv"
	"github.com/driftless/driftless/model"
)

// manifest of hello with extra env and attributes.
func helloWith(instances int, env map[string]string, extra string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `applications:
- name: hello
  instances: %d
  memory: 64M
  disk_quota: 128M
  buildpacks: [binary_buildpack]
  command: ./hello
  health-check-type: http
  health-check-http-endpoint: /health
  routes:
  - route: %s
%s  env:
`, instances, helloHost, extra)
	for _, k := range slices.Sorted(func(yield func(string) bool) {
		for k := range env {
			if !yield(k) {
				return
			}
		}
	}) {
		fmt.Fprintf(&b, "    %s: %q\n", k, env[k])
	}
	return b.String()
}

// eventsOf returns the events of hello of the given kind.
func eventsOf(t testing.TB, c *api.Client, kind model.EventKind) []model.Event {
	t.Helper()
	evs, err := c.Events(context.Background(), "dev", "hello")
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

// TestCrashLoopBacksOff deploys an app that exits 1 s after it became
// healthy: the first crashes restart at once, then restarts wait (backoff),
// and the count, exit status and last output are visible.
func TestCrashLoopBacksOff(t *testing.T) {
	p := startDev(t, "--crash-quick-restarts", "2", "--crash-backoff", "4s", "--crash-backoff-max", "8s")
	p.addHello("apps/hello")
	p.write(map[string]string{"apps/hello/manifest.yml": helloWith(2, map[string]string{"CRASH_AFTER": "1s"}, "")})
	p.commitAll("a crashing app")
	_, _ = p.client.Sync(context.Background(), false, 0)

	var d api.AppDetail
	testenv.Eventually(t, 90*time.Second, 300*time.Millisecond, "hello backs off", func() error {
		var err error
		if d, err = p.client.App(context.Background(), "dev", "hello"); err != nil {
			return err
		}
		for _, cr := range d.Crashes {
			if cr.Count >= 3 && !cr.RestartAt.IsZero() {
				return nil
			}
		}
		return fmt.Errorf("crashes: %+v", d.Crashes)
	})
	cr := d.Crashes[0]
	if cr.ExitStatus != 3 || !strings.Contains(cr.Reason, "status 3") {
		t.Errorf("crash record %+v: want exit status 3", cr)
	}
	if !slices.ContainsFunc(cr.LastOutput, func(l string) bool { return strings.Contains(l, "crashing as asked") }) {
		t.Errorf("last output %q lacks the app's last words", cr.LastOutput)
	}
	if !slices.ContainsFunc(d.Problems, func(s string) bool { return strings.Contains(s, "next restart in") }) {
		t.Errorf("problems %q do not mention the backoff", d.Problems)
	}
	out, err := p.cli("app", "hello")
	if err != nil || !strings.Contains(out, "CRASHES") || !strings.Contains(out, "crashing as asked") {
		t.Errorf("driftless app hello shows no crash history (err %v):\n%s", err, out)
	}

	// Restarts after a backoff event wait for it.
	testenv.Eventually(t, 60*time.Second, 300*time.Millisecond, "a restart after a backoff", func() error {
		backoffs := eventsOf(t, p.client, "backoff")
		restarts := eventsOf(t, p.client, "restarted")
		for _, b := range backoffs {
			for _, r := range restarts {
				if r.Index == b.Index && r.Time.After(b.Time) {
					if gap := r.Time.Sub(b.Time); gap < 3500*time.Millisecond {
						return fmt.Errorf("index %d restarted %s after its backoff of 4s or more", b.Index, gap)
					}
					return nil
				}
			}
		}
		return fmt.Errorf("%d backoff and %d restart events so far", len(backoffs), len(restarts))
	})
	// The first crashes of an index restarted at once.
	crashes := eventsOf(t, p.client, "crashed")
	restarts := eventsOf(t, p.client, "restarted")
	quick := 0
	for _, c := range crashes {
		for _, r := range restarts {
			if r.Index == c.Index && r.Time.After(c.Time) && r.Time.Sub(c.Time) < 2*time.Second {
				quick++
				break
			}
		}
	}
	if quick < 2 {
		t.Errorf("want the first crashes restarted at once; %d of %d were", quick, len(crashes))
	}
}

// load sends requests through the router until stopped (at most limit),
// counting answers that are not 200 and transport errors.
type load struct {
	ok, bad atomic.Int64
	mu      sync.Mutex
	samples []string
	stop    chan struct{}
	done    chan struct{}
}

func startLoad(get func(host, path string) (int, []byte, error), limit time.Duration) *load {
	l := &load{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(l.done)
		deadline := time.After(limit)
		for {
			select {
			case <-l.stop:
				return
			case <-deadline:
				return
			default:
			}
			code, body, err := get(helloHost, "/info")
			switch {
			case err != nil:
				l.note(err.Error())
			case code != http.StatusOK:
				l.note(fmt.Sprintf("%d %s", code, body))
			default:
				l.ok.Add(1)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	return l
}

func (l *load) note(s string) {
	l.bad.Add(1)
	l.mu.Lock()
	if len(l.samples) < 5 {
		l.samples = append(l.samples, s)
	}
	l.mu.Unlock()
}

// finish stops the load and fails t if any request failed.
func (l *load) finish(t testing.TB, what string) {
	t.Helper()
	close(l.stop)
	<-l.done
	t.Logf("%s: %d requests answered 200, %d failed", what, l.ok.Load(), l.bad.Load())
	if l.bad.Load() > 0 {
		t.Errorf("%s: %d failed requests, e.g. %q", what, l.bad.Load(), l.samples)
	}
	if l.ok.Load() == 0 {
		t.Errorf("%s: no request succeeded", what)
	}
}

// TestRolloutWithoutErrorsAndRollback changes the release of a 3-instance
// app under load: no request fails. Then a release whose health check never
// passes is rolled back; the old instances keep serving without a failed
// request, and the failure shows in status and events.
func TestRolloutWithoutErrorsAndRollback(t *testing.T) {
	p := startDev(t)
	p.addHello("apps/hello")
	p.write(map[string]string{"apps/hello/manifest.yml": helloWith(3, map[string]string{"GREETING": "One"}, "")})
	p.commitAll("three instances")
	_, _ = p.client.Sync(context.Background(), false, 0)
	p.waitServing(t, 90*time.Second, 3, greetingIs("One"))

	l := startLoad(p.get, 3*time.Minute)
	p.write(map[string]string{"apps/hello/manifest.yml": helloWith(3, map[string]string{"GREETING": "Two"}, "")})
	p.commitAll("new release")
	_, _ = p.client.Sync(context.Background(), false, 0)
	p.waitServing(t, 90*time.Second, 3, greetingIs("Two"))
	testenv.Eventually(t, 30*time.Second, 200*time.Millisecond, "only new instances remain", func() error {
		d, err := p.client.App(context.Background(), "dev", "hello")
		if err != nil {
			return err
		}
		if len(d.Instances) != 3 || d.State != api.AppRunning {
			return fmt.Errorf("%d instances, state %s", len(d.Instances), d.State)
		}
		return nil
	})
	l.finish(t, "rollout")
	good, err := p.client.App(context.Background(), "dev", "hello")
	if err != nil {
		t.Fatal(err)
	}

	l = startLoad(p.get, 3*time.Minute)
	p.write(map[string]string{"apps/hello/manifest.yml": helloWith(3, map[string]string{"GREETING": "Broken", "HEALTH": "fail"}, "  timeout: 3\n")})
	p.commitAll("a release that never becomes healthy")
	_, _ = p.client.Sync(context.Background(), false, 0)
	testenv.Eventually(t, 90*time.Second, 300*time.Millisecond, "the broken release is rolled back", func() error {
		if len(eventsOf(t, p.client, "rolled-back")) == 0 {
			return errors.New("no rolled-back event yet")
		}
		return nil
	})
	// Old instances keep serving: same three, old greeting.
	testenv.Eventually(t, 30*time.Second, 300*time.Millisecond, "only the good release runs", func() error {
		d, err := p.client.App(context.Background(), "dev", "hello")
		if err != nil {
			return err
		}
		if d.ReleaseID != good.ReleaseID || len(d.Instances) != 3 {
			return fmt.Errorf("release %s with %d instances", d.ReleaseID, len(d.Instances))
		}
		for _, in := range d.Instances {
			if in.ReleaseID != good.ReleaseID || in.State != model.StateRunning {
				return fmt.Errorf("instance %d: %s %s", in.Index, in.ReleaseID, in.State)
			}
		}
		return nil
	})
	seen, err := p.sample(helloHost, 30)
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range seen {
		if in.Greeting != "Two" {
			t.Fatalf("answer from release %s greeting %q after the rollback", in.Release, in.Greeting)
		}
	}
	l.finish(t, "failed rollout")
	var st api.Status
	if err := p.cliJSON(&st, "status"); err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(st.Problems, func(pr api.AppProblem) bool {
		return pr.App == "hello" && strings.Contains(pr.Message, "rolled back")
	}) {
		t.Errorf("status problems %+v do not show the rollback", st.Problems)
	}
	// Git still asks for the broken release; nothing retries it.
	time.Sleep(3 * time.Second)
	if n := len(eventsOf(t, p.client, "rolled-back")); n != 1 {
		t.Errorf("%d rollbacks, want 1", n)
	}
}

// greetingIs accepts answers with greeting g.
func greetingIs(g string) func(info) error {
	return func(in info) error {
		if in.Greeting != g {
			return fmt.Errorf("instance %s greets %q, want %q", in.Index, in.Greeting, g)
		}
		return nil
	}
}

// TestLivenessCheck deploys an instance whose health check starts failing
// after it became healthy while its process keeps running: the cell kills
// it after three failed checks in a row and the controller restarts it.
func TestLivenessCheck(t *testing.T) {
	p := startDev(t)
	p.addHello("apps/hello")
	p.write(map[string]string{"apps/hello/manifest.yml": helloWith(1, map[string]string{"HEALTH_FAIL_AFTER": "2s"}, "")})
	p.commitAll("an instance that falls sick")
	_, _ = p.client.Sync(context.Background(), false, 0)
	testenv.Eventually(t, 90*time.Second, 300*time.Millisecond, "the sick instance is crashed and restarted", func() error {
		crashed := eventsOf(t, p.client, "crashed")
		if !slices.ContainsFunc(crashed, func(e model.Event) bool { return strings.Contains(e.Message, "failed 3 times in a row") }) {
			return fmt.Errorf("%d crash events, none from the liveness check", len(crashed))
		}
		if len(eventsOf(t, p.client, "restarted")) == 0 {
			return errors.New("not restarted")
		}
		return nil
	})
}
