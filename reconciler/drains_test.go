package reconciler

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/driftless/driftless/drains"
	"github.com/driftless/driftless/secrets"
)

// fakeDrains records what the controller asks to forward.
type fakeDrains struct {
	mu    sync.Mutex
	syncs [][]drains.Target
}

func (f *fakeDrains) Sync(targets []drains.Target) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.syncs = append(f.syncs, targets)
}

func (f *fakeDrains) last() ([]drains.Target, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.syncs) == 0 {
		return nil, 0
	}
	return f.syncs[len(f.syncs)-1], len(f.syncs)
}

// drainsCommit binds hello to db (the broker's) and to logs, a
// user-provided service with a syslog drain, as services says.
func drainsCommit(id, services string, bound ...string) commit {
	m := helloManifest
	if len(bound) > 0 {
		m += "  services: ["
		for i, b := range bound {
			if i > 0 {
				m += ", "
			}
			m += b
		}
		m += "]\n"
	}
	return newCommit(id, map[string]string{"apps/hello/manifest.yml": m, "apps/hello/hello": "binary " + id, "apps/services.yml": services})
}

// TestDrainTargets: the drains of hello's ready bindings are forwarded —
// a user-provided service's syslog_drain_url as services.yml says it
// now, a broker binding's as the broker gave it — and none once hello
// stops binding them.
func TestDrainTargets(t *testing.T) {
	const upsDrain = "syslog://logs.example.com:514/?token=s3cret"
	const brokerDrain = "syslog-tls://broker-logs.example.com:6514"
	services := func(drain string) string {
		return "services:\n- {name: db, service: postgresql, plan: small}\nuser-provided:\n- name: logs\n  syslog_drain_url: " + drain + "\n"
	}
	tests := []struct {
		name     string
		commits  []commit
		broker   string // the broker's bindings' drain
		want     string
		wantNone bool
	}{
		{"user-provided", []commit{drainsCommit("c1", services(upsDrain), "logs")}, "",
			"dev/hello/logs=" + upsDrain, false},
		{"user-provided and broker", []commit{drainsCommit("c1", services(upsDrain), "db", "logs")}, brokerDrain,
			"dev/hello/db=" + brokerDrain + " dev/hello/logs=" + upsDrain, false},
		{"broker without a drain", []commit{drainsCommit("c1", services(upsDrain), "db")}, "", "", true},
		{"unbound", []commit{drainsCommit("c1", services(upsDrain), "logs"), drainsCommit("c2", services(upsDrain))}, "", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			h := newHarness(t)
			keys, err := secrets.LoadOrCreate(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			h.c.cfg.Brokers, h.c.cfg.Keys = []ServiceBroker{&fakeBroker{name: "pg", drain: tt.broker}}, keys
			for _, c := range tt.commits {
				h.c.apply(ctx, h.se, c)
				h.eventually("staged", func() bool { a, _ := h.c.store.App(hello); return a.CurrentID != "" && a.CurrentID == a.ReleaseID })
				h.convergeServices()
			}
			got := targetsString(h.c.drainTargets())
			if tt.wantNone {
				if got != "" {
					t.Fatalf("targets %v, want none", got)
				}
				return
			}
			if got != tt.want {
				t.Fatalf("targets %v, want %s", got, tt.want)
			}
		})
	}
}

// targetsString shows targets with their URLs (Target.String hides them).
func targetsString(ts []drains.Target) string {
	var out []string
	for _, t := range ts {
		out = append(out, t.Space+"/"+t.App+"/"+t.Service+"="+t.URL)
	}
	return strings.Join(out, " ")
}

// TestDrainLoop: while the controller leads, its drains follow the
// bindings; when the term ends every forwarder stops.
func TestDrainLoop(t *testing.T) {
	h := newHarness(t)
	keys, err := secrets.LoadOrCreate(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	fd := &fakeDrains{}
	h.c.cfg.Keys, h.c.cfg.Drains = keys, fd
	h.c.apply(context.Background(), h.se, drainsCommit("c1", "user-provided:\n- {name: logs, syslog_drain_url: 'syslog://127.0.0.1:5514'}\n", "logs"))
	h.eventually("staged", func() bool { a, _ := h.c.store.App(hello); return a.CurrentID != "" })
	h.convergeServices()

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); h.c.drainLoop(ctx) }()
	h.eventually("hello's drain forwarded", func() bool { got, _ := fd.last(); return len(got) == 1 && got[0].Service == "logs" })
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the drain loop did not stop")
	}
	if got, n := fd.last(); len(got) != 0 || n < 2 {
		t.Fatalf("after the term: %d syncs, the last %v; want every drain stopped", n, got)
	}
}
