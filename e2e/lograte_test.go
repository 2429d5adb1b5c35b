package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/driftless/driftless/internal/testenv"
	"github.com/driftless/driftless/model"
)

// floodManifest is hello (serving, so that its health check passes) with
// a shell loop beside it that writes about 400 lines a second (8 KB/s),
// instances of it, and the given log-rate-limit-per-second.
func floodManifest(instances int, limit string) string {
	return fmt.Sprintf(`applications:
- name: hello
  instances: %d
  memory: 64M
  disk_quota: 128M
  buildpacks: [binary_buildpack]
  command: '(while true; do for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do echo flood-line-0123456789; done; sleep 0.05; done) & exec ./hello'
  log-rate-limit-per-second: %s
  health-check-type: http
  health-check-http-endpoint: /health
  routes:
  - route: %s
  env:
    GREETING: Flood
`, instances, limit, helloHost)
}

// quotasRepo makes a policy repository that holds only quotas.yml: the
// built-in rules (policies/bundle/quota.rego) apply to it.
func quotasRepo(t *testing.T, quotas string) string {
	t.Helper()
	dir := filepath.Join(testenv.ShortTempDir(t, "dl-pol-"), "policies")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	writePolicy(t, dir, map[string]string{"quotas.yml": quotas})
	testenv.Git(t, dir, "init", "-q", "-b", "main")
	commitPolicy(t, dir, "quotas")
	return dir
}

// recentLines are hello's kept lines of one source, as
// `driftless logs hello --recent --source SOURCE --json` prints them.
func (p *platform) recentLines(source model.LogSource) ([]model.LogLine, error) {
	out, err := p.cli("logs", "hello", "--recent", "--source", string(source), "-n", "20000", "--json")
	if err != nil {
		return nil, err
	}
	var lines []model.LogLine
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var l model.LogLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			return nil, fmt.Errorf("a line of driftless logs --json: %w: %q", err, sc.Text())
		}
		lines = append(lines, l)
	}
	return lines, sc.Err()
}

// TestLogRateLimit is issue 17's log rate limits end to end: an instance
// flooding its output with log-rate-limit-per-second 1K keeps at most
// 1024 bytes of lines (each counted with its newline) a second, the cell
// says how many lines it dropped in a CELL line, and the app keeps
// serving; under quotas.yml's log_rate_limit of 4K for the space, a
// commit asking for 5 × 1K, or for no limit, is refused at the app's
// file:line while the running app keeps running.
func TestLogRateLimit(t *testing.T) {
	pol := quotasRepo(t, "default:\n  log_rate_limit: 4K\n")
	metrics := freeAddr(t)
	p := startDev(t, "--policies", pol, "--metrics", metrics)
	p.addHello("apps/hello")
	p.write(map[string]string{"apps/hello/manifest.yml": floodManifest(1, "1K")})
	p.commitAll("hello flooding its log, 1K a second")
	_, _ = p.client.Sync(context.Background(), false, 0)
	served := p.waitServing(t, 2*time.Minute, 1, greetingIs("Flood"))

	// Kept lines: at most 1024 bytes in any second; markers say how many
	// were dropped.
	var perSecond map[int64]int
	var markers []string
	testenv.Eventually(t, time.Minute, time.Second, "6 seconds of kept lines and a marker", func() error {
		app, err := p.recentLines(model.LogApp)
		if err != nil {
			return err
		}
		perSecond = map[int64]int{}
		for _, l := range app {
			if strings.HasPrefix(l.Text, "flood-line-") {
				perSecond[l.Time.Unix()] += len(l.Text) + 1
			}
		}
		cell, err := p.recentLines(model.LogCell)
		if err != nil {
			return err
		}
		markers = markers[:0]
		for _, l := range cell {
			if strings.Contains(l.Text, "log lines dropped") || strings.Contains(l.Text, "log line dropped") {
				markers = append(markers, l.Text)
			}
		}
		if len(perSecond) < 6 || len(markers) < 3 {
			return fmt.Errorf("flood lines in %d seconds, %d markers", len(perSecond), len(markers))
		}
		return nil
	})
	busiest := 0
	for sec, n := range perSecond {
		if n > 1024 {
			t.Errorf("%d bytes of lines kept in second %s, over the limit of 1024", n, time.Unix(sec, 0).UTC().Format(time.TimeOnly))
		}
		busiest = max(busiest, n)
	}
	if busiest < 512 {
		t.Errorf("at most %d bytes of lines kept in a second: the flood is not shipped up to the limit (%v)", busiest, perSecond)
	}
	for _, m := range markers {
		var limit, dropped int
		if _, err := fmt.Sscanf(m, "app instance exceeded log rate limit (%d bytes/sec): %d log", &limit, &dropped); err != nil || limit != 1024 || dropped < 1 {
			t.Errorf("marker %q: want \"app instance exceeded log rate limit (1024 bytes/sec): N log lines dropped\" (%v)", m, err)
		}
	}
	t.Logf("kept bytes per second %v; markers e.g. %q", perSecond, markers[0])
	// The drops are counted: the cell's metric.
	fams, err := scrape("http://"+metrics+"/metrics", "")
	if err != nil {
		t.Fatal(err)
	}
	if n, ok := sample(fams, "driftless_cell_log_lines_dropped_total", nil); !ok || n < 1 {
		t.Errorf("driftless_cell_log_lines_dropped_total = %v (present %v), want the dropped lines counted", n, ok)
	}
	a, err := p.app("hello")
	if err != nil {
		t.Fatal(err)
	}
	if a.State != "running" {
		t.Fatalf("hello is %s while flooding, want running", a.State)
	}

	// Over the space's log_rate_limit quota: refused at the app's
	// manifest, the running instance untouched.
	tests := []struct {
		name, manifest, want string
	}{
		{"5 × 1K over 4K", floodManifest(5, "1K"),
			"policy quota: space dev would log up to 5120 bytes/sec (instances × log-rate-limit-per-second), over its log_rate_limit quota of 4096 bytes/sec"},
		{"no limit", floodManifest(1, "-1"),
			"policy quota: app hello has no log rate limit, but space dev has a log_rate_limit quota of 4096 bytes/sec"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p.write(map[string]string{"apps/hello/manifest.yml": tt.manifest})
			p.commitAll(tt.name)
			_, _ = p.client.Sync(context.Background(), false, 0)
			testenv.Eventually(t, 30*time.Second, 300*time.Millisecond, "the commit is refused at the app's file:line", func() error {
				st, err := p.client.Status(context.Background())
				if err != nil {
					return err
				}
				if !slices.ContainsFunc(st.Sources[0].Errors, func(pr model.Problem) bool {
					return strings.HasPrefix(pr.Message, tt.want) && pr.File == "apps/hello/manifest.yml" && pr.Line == 2
				}) {
					return fmt.Errorf("source errors %+v", st.Sources[0].Errors)
				}
				return nil
			})
			out, err := p.cli("status")
			if err != nil || !strings.Contains(out, "apps/hello/manifest.yml:2") {
				t.Errorf("driftless status does not locate the violation (err %v):\n%s", err, out)
			}
			now := p.waitServing(t, 10*time.Second, 1, greetingIs("Flood"))
			for guid := range now {
				if _, ok := served[guid]; !ok {
					t.Fatalf("instance %s answers, not the one running before the refused commit (%v)", guid, served)
				}
			}
		})
	}
}
