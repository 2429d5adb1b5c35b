package e2e

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/driftless/driftless/api"
	"github.com/driftless/driftless/internal/testenv"
	"github.com/driftless/driftless/model"
)

// waitLogs waits until `driftless logs hello --recent` with args prints
// every one of want.
func (p *platform) waitLogs(t *testing.T, timeout time.Duration, app string, args []string, want ...string) string {
	t.Helper()
	var out string
	testenv.Eventually(t, timeout, 500*time.Millisecond, fmt.Sprintf("logs %s %v show %q", app, args, want), func() error {
		var err error
		if out, err = p.cli(append([]string{"logs", app, "--recent"}, args...)...); err != nil {
			return err
		}
		for _, w := range want {
			if !strings.Contains(out, w) {
				return fmt.Errorf("no %q in:\n%s", w, out)
			}
		}
		return nil
	})
	return out
}

// TestKeptLogs: an app's lines from every source are kept in JetStream
// (APP, STG, RTR for requests through the router, HEALTH, CELL, API), a
// follower joins the recent lines without a gap, the lines outlive a
// restart of the platform, and a crashed instance's last lines are
// readable by its index; the app's timeline has the commit.
func TestKeptLogs(t *testing.T) {
	p := startDev(t)
	p.addHello("apps/hello")
	p.write(map[string]string{"apps/hello/manifest.yml": helloWith(1, map[string]string{"KEPT": "logs"}, "")})
	commit := p.commitAll("hello")
	_, _ = p.client.Sync(context.Background(), false, 0)
	p.waitAnswer(t, 2*time.Minute, helloHost, "hello")

	if code, _, err := p.get(helloHost, "/kept-before-restart"); err != nil || code != 200 {
		t.Fatalf("GET /kept-before-restart: %d %v", code, err)
	}
	p.waitLogs(t, 20*time.Second, "hello", []string{"--source", "RTR"}, `"GET /kept-before-restart HTTP/1.1" 200`, "[RTR/0]")
	p.waitLogs(t, 20*time.Second, "hello", []string{"--source", "APP", "--instance", "0"}, "GET /kept-before-restart", "[APP/0]")
	all := p.waitLogs(t, 20*time.Second, "hello", nil, "[STG]", "[API]", "[HEALTH/0] health check (http) passed", "[CELL/0]")
	if strings.Contains(all, "[RTR") == false {
		t.Errorf("the recent lines of every source lack the RTR lines:\n%s", all)
	}

	// The timeline: the commit, staging, the placement and start, each
	// with its reason.
	testenv.Eventually(t, 20*time.Second, 500*time.Millisecond, "hello's timeline", func() error {
		out, err := p.cli("events", "--app", "hello")
		if err != nil {
			return err
		}
		for _, w := range []string{"commit-applied", model.ShortCommit(commit), "staging", "staged", "placed", "started"} {
			if !strings.Contains(out, w) {
				return fmt.Errorf("no %q in:\n%s", w, out)
			}
		}
		return nil
	})

	// A follower resuming after the last RTR line it saw gets every new
	// one, through one cursor: nothing lost, nothing twice, however soon
	// after the requests it connects.
	var after uint64
	if err := p.client.Logs(context.Background(), "hello", api.LogOptions{Recent: 1, Source: model.LogRouter}, func(l model.LogLine) { after = l.Seq }); err != nil || after == 0 {
		t.Fatalf("the last RTR line's seq: %d, %v", after, err)
	}
	for i := range 20 {
		if code, _, err := p.get(helloHost, fmt.Sprintf("/followed-%d", i)); err != nil || code != 200 {
			t.Fatalf("GET /followed-%d: %d %v", i, code, err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	var mu sync.Mutex
	var seen []model.LogLine
	done := make(chan error, 1)
	go func() {
		done <- p.client.Logs(ctx, "hello", api.LogOptions{Follow: true, After: after, Source: model.LogRouter}, func(l model.LogLine) {
			mu.Lock()
			seen = append(seen, l)
			mu.Unlock()
		})
	}()
	for i := 20; i < 30; i++ { // and new ones while it follows
		if code, _, err := p.get(helloHost, fmt.Sprintf("/followed-%d", i)); err != nil || code != 200 {
			t.Fatalf("GET /followed-%d: %d %v", i, code, err)
		}
	}
	testenv.Eventually(t, 20*time.Second, 200*time.Millisecond, "followed RTR lines", func() error {
		mu.Lock()
		defer mu.Unlock()
		if n := strings.Count(fmt.Sprint(seen), "/followed-"); n < 30 {
			return fmt.Errorf("%d of 30 followed lines", n)
		}
		return nil
	})
	cancel()
	<-done
	mu.Lock()
	if n := strings.Count(fmt.Sprint(seen), "/followed-"); n != 30 || len(seen) != 30 {
		t.Errorf("followed %d lines (%d of them /followed-), want exactly the 30 new ones", len(seen), n)
	}
	for i := 1; i < len(seen); i++ {
		if seen[i].Seq <= seen[i-1].Seq {
			t.Errorf("line %d has seq %d after %d: doubled or out of order", i, seen[i].Seq, seen[i-1].Seq)
		}
	}
	mu.Unlock()

	// Kept across a restart of the whole platform (dev's NATS keeps its
	// JetStream files in its data folder).
	p.restart()
	p.waitLogs(t, 30*time.Second, "hello", []string{"--source", "RTR"}, "/kept-before-restart", "/followed-29")
	p.waitLogs(t, 30*time.Second, "hello", []string{"--since", "1h", "--source", "APP"}, "GET /kept-before-restart")

	// A crash: the instance's last lines stay readable by its index after
	// it is replaced, with the cell's line saying why.
	p.waitAnswer(t, 2*time.Minute, helloHost, "hello")
	p.write(map[string]string{"apps/hello/manifest.yml": helloWith(1, map[string]string{"CRASH_AFTER": "3s"}, "")})
	p.commitAll("hello crashes")
	_, _ = p.client.Sync(context.Background(), false, 0)
	p.waitLogs(t, 2*time.Minute, "hello", []string{"--instance", "0"}, "crashing as asked", "[CELL/0] instance crashed (exit status 3)")
}
