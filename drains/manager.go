package drains

import (
	"context"
	"log/slog"
	"sync"
)

// Manager runs a forwarder per target: Sync starts those of new targets
// and stops those of targets gone.
type Manager struct {
	src Source
	cfg Config
	log *slog.Logger

	mu      sync.Mutex
	running map[Target]*run
	refused map[Target]bool // targets whose URL is refused, warned once
}

type run struct {
	f      *Forwarder
	cancel context.CancelFunc
	done   chan struct{}
}

// NewManager returns a manager of forwarders reading from src.
func NewManager(src Source, cfg Config) *Manager {
	cfg.defaults()
	return &Manager{src: src, cfg: cfg, log: cfg.Log.With("component", "drains"),
		running: map[Target]*run{}, refused: map[Target]bool{}}
}

// Sync makes the running forwarders those of targets: it starts the new
// ones and stops (and waits for) those no longer there. A target whose
// URL is refused is logged once, without its URL.
func (m *Manager) Sync(targets []Target) {
	m.mu.Lock()
	want := make(map[Target]bool, len(targets))
	for _, t := range targets {
		want[t] = true
	}
	var stopping []*run
	for t, r := range m.running {
		if !want[t] {
			r.cancel()
			stopping = append(stopping, r)
			delete(m.running, t)
			m.log.Info("stopped forwarding to a syslog drain", "space", t.Space, "app", t.App, "service", t.Service, "drain", ID(t.URL))
		}
	}
	for t := range m.refused {
		if !want[t] {
			delete(m.refused, t)
		}
	}
	for t := range want {
		if m.running[t] != nil || m.refused[t] {
			continue
		}
		f, err := NewForwarder(m.src, t, m.cfg)
		if err != nil {
			m.refused[t] = true
			m.log.Warn("not forwarding to a syslog drain", "err", err)
			continue
		}
		ctx, cancel := context.WithCancel(context.Background())
		r := &run{f: f, cancel: cancel, done: make(chan struct{})}
		m.running[t] = r
		go func() {
			defer close(r.done)
			f.Run(ctx)
		}()
	}
	m.mu.Unlock()
	for _, r := range stopping {
		<-r.done
	}
}

// Targets are the targets forwarded to.
func (m *Manager) Targets() []Target {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Target, 0, len(m.running))
	for t := range m.running {
		out = append(out, t)
	}
	return out
}

// Stop stops every forwarder.
func (m *Manager) Stop() { m.Sync(nil) }
