// Package journal keeps the platform's log lines and events in NATS
// JetStream and reads them back with one cursor: the lines an app printed
// (and its staging, router, health, cell and API lines) in one stream per
// space, the controller's events in one stream, each bounded by age and
// size. Writers publish on plain NATS subjects (bus.LogSubject,
// bus.EventSubject) and JetStream keeps what lands there; only the
// controller, which makes the streams, reads them (Logs, Events).
package journal

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/driftless/driftless/bus"
)

// Config bounds what is kept.
type Config struct {
	// MaxAge is how long a line or event is kept.
	MaxAge time.Duration
	// MaxBytes bounds each space's log stream, and the event stream.
	MaxBytes int64
	// Replicas is how many NATS servers keep each stream (1 with one
	// server; 3 in a cluster of three).
	Replicas int
}

// DefaultConfig keeps 7 days and 1 GiB per space on one server.
func DefaultConfig() Config {
	return Config{MaxAge: 7 * 24 * time.Hour, MaxBytes: 1 << 30, Replicas: 1}
}

// Validate says what is wrong with c.
func (c Config) Validate() error {
	switch {
	case c.MaxAge <= 0:
		return fmt.Errorf("log retention (--log-retention) must be positive, not %s", c.MaxAge)
	case c.MaxBytes <= 0:
		return fmt.Errorf("log size per space (--log-max-bytes) must be positive, not %d", c.MaxBytes)
	case c.Replicas < 1 || c.Replicas > 5:
		return fmt.Errorf("log replicas (--log-replicas) must be 1 to 5, not %d", c.Replicas)
	}
	return nil
}

// Journal makes the streams and reads them.
type Journal struct {
	js  jetstream.JetStream
	cfg Config
	log *slog.Logger

	mu      sync.Mutex
	ensured map[string]bool // stream names made (or updated) by this process
}

// New returns a journal over nc, whose JetStream must be on.
func New(nc *nats.Conn, cfg Config, log *slog.Logger) (*Journal, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("opening JetStream: %w", err)
	}
	if log == nil {
		log = slog.Default()
	}
	return &Journal{js: js, cfg: cfg, log: log, ensured: make(map[string]bool)}, nil
}

// EnsureSpace makes (or updates to the configured bounds) the stream
// keeping space's log lines. Lines published before it exists are lost,
// so the controller calls it before it stages or starts the space's
// apps. It is cheap once done.
func (j *Journal) EnsureSpace(ctx context.Context, space string) error {
	return j.ensure(ctx, jetstream.StreamConfig{
		Name:        bus.LogStream(space),
		Description: "driftless log lines of space " + space,
		Subjects:    []string{bus.LogStreamSubjects(space)},
	})
}

// EnsureEvents makes (or updates) the stream keeping the events.
func (j *Journal) EnsureEvents(ctx context.Context) error {
	return j.ensure(ctx, jetstream.StreamConfig{
		Name:        bus.EventStream,
		Description: "driftless events",
		Subjects:    []string{bus.EventsWildcard},
	})
}

func (j *Journal) ensure(ctx context.Context, sc jetstream.StreamConfig) error {
	j.mu.Lock()
	done := j.ensured[sc.Name]
	j.mu.Unlock()
	if done {
		return nil
	}
	sc.Retention, sc.Discard, sc.Storage = jetstream.LimitsPolicy, jetstream.DiscardOld, jetstream.FileStorage
	sc.MaxAge, sc.MaxBytes, sc.Replicas = j.cfg.MaxAge, j.cfg.MaxBytes, j.cfg.Replicas
	sc.MaxMsgSize = 64 << 10 // a line is at most 16 KiB of text
	if _, err := j.js.CreateOrUpdateStream(ctx, sc); err != nil {
		if errors.Is(err, jetstream.ErrJetStreamNotEnabled) || errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount) {
			return fmt.Errorf("making stream %s: JetStream is off on this NATS server (turn it on: logs and events are kept there): %w", sc.Name, err)
		}
		return fmt.Errorf("making stream %s: %w", sc.Name, err)
	}
	j.mu.Lock()
	j.ensured[sc.Name] = true
	j.mu.Unlock()
	return nil
}

// Forget makes the next Ensure of every stream ask the server again (a
// NATS server that lost its store).
func (j *Journal) Forget() {
	j.mu.Lock()
	clear(j.ensured)
	j.mu.Unlock()
}
