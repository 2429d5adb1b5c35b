package agents

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/driftless/driftless/model"
)

// TestLogLimiter runs lines through a limiter on a fake clock: each step
// is a line of n bytes read at ms milliseconds, whether it is shipped
// and the marker shipped before it; flush is the marker at the end.
func TestLogLimiter(t *testing.T) {
	type step struct {
		ms     int
		n      int
		ok     bool
		marker string
	}
	tests := []struct {
		name    string
		limit   int64
		steps   []step
		flush   string
		dropped int // lines told to onDrop
	}{
		{name: "no limit", limit: 0, steps: []step{{0, 1 << 20, true, ""}, {1, 1 << 20, true, ""}}},
		{name: "within the limit", limit: 100, steps: []step{{0, 49, true, ""}, {500, 49, true, ""}, {1000, 99, true, ""}}},
		{
			name: "a line that does not fit drops the rest of its window; the next window says how many",
			// 3 × (29+1) = 90 fit in 100; the 4th does not, nor the small
			// 5th after it (the window is exceeded).
			limit: 100,
			steps: []step{{0, 29, true, ""}, {10, 29, true, ""}, {20, 29, true, ""}, {30, 29, false, ""}, {40, 1, false, ""},
				{999, 29, false, ""}, {1000, 29, true, "app instance exceeded log rate limit (100 bytes/sec): 3 log lines dropped"},
				{1001, 29, true, ""}},
		},
		{
			name:  "drops in two windows: one marker each",
			limit: 10,
			steps: []step{{0, 9, true, ""}, {1, 0, false, ""}, {1200, 9, true, "app instance exceeded log rate limit (10 bytes/sec): 1 log line dropped"},
				{1300, 9, false, ""}, {1400, 9, false, ""}, {5000, 2, true, "app instance exceeded log rate limit (10 bytes/sec): 2 log lines dropped"}},
		},
		{
			name:    "what is dropped last comes out at the end",
			limit:   10,
			steps:   []step{{0, 9, true, ""}, {1, 9, false, ""}, {2, 9, false, ""}},
			flush:   "app instance exceeded log rate limit (10 bytes/sec): 2 log lines dropped",
			dropped: 2,
		},
		{name: "a line longer than the limit is always dropped", limit: 10, steps: []step{{0, 10, false, ""}, {1000, 10, false, ""}},
			flush: "app instance exceeded log rate limit (10 bytes/sec): 2 log lines dropped", dropped: 2},
		{name: "an empty line counts its newline", limit: 2, steps: []step{{0, 0, true, ""}, {1, 0, true, ""}, {2, 0, false, ""}},
			flush: "app instance exceeded log rate limit (2 bytes/sec): 1 log line dropped", dropped: 1},
	}
	base := time.Date(2026, 12, 1, 20, 0, 0, 0, time.UTC)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			told := 0
			l := newLogLimiter(tt.limit, func(lines int) { told += lines })
			wantDropped := 0
			for i, s := range tt.steps {
				ok, marker := l.allow(s.n, base.Add(time.Duration(s.ms)*time.Millisecond))
				if ok != s.ok || marker != s.marker {
					t.Fatalf("step %d (%d bytes at %d ms): %v %q, want %v %q", i, s.n, s.ms, ok, marker, s.ok, s.marker)
				}
				if !ok {
					wantDropped++
				}
			}
			if got := l.flush(); got != tt.flush {
				t.Errorf("flush %q, want %q", got, tt.flush)
			}
			if got := l.flush(); got != "" {
				t.Errorf("second flush %q, want none", got)
			}
			if told != wantDropped {
				t.Errorf("onDrop told %d lines, want %d", told, wantDropped)
			}
			if tt.dropped != 0 && told != tt.dropped {
				t.Errorf("onDrop told %d lines, want %d", told, tt.dropped)
			}
		})
	}
}

// TestLogLimiterNil: an instance without a limiter ships everything.
func TestLogLimiterNil(t *testing.T) {
	var l *logLimiter
	if ok, marker := l.allow(1<<20, time.Now()); !ok || marker != "" || l.flush() != "" {
		t.Errorf("nil limiter: %v %q", ok, marker)
	}
}

// TestLogLimiterShared: the streams of an instance (app, sidecars) share
// one window: together they never ship more than the limit in it.
func TestLogLimiterShared(t *testing.T) {
	l := newLogLimiter(1000, nil)
	now := time.Date(2026, 12, 1, 20, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	shipped := int64(0)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 100 {
				if ok, _ := l.allow(9, now); ok {
					mu.Lock()
					shipped += 10
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	if shipped != 1000 {
		t.Errorf("shipped %d bytes in one window, want 1000", shipped)
	}
	if got, want := l.flush(), logRateMarker(1000, 300); got != want {
		t.Errorf("flush %q, want %q", got, want)
	}
}

// TestShipLogsLimited ships a log file through a cell (its publisher a
// fake): lines past the limit are not published, and CELL markers tell
// how many were dropped.
func TestShipLogsLimited(t *testing.T) {
	tests := []struct {
		name  string
		limit int64
		// most is the most app lines that may be shipped: one window's
		// worth, or two when the reading crosses a second.
		least, most int
	}{
		{"no limit", 0, 100, 100},
		{"10 lines a second", 110, 10, 20},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newTestCell(t)
			path := filepath.Join(t.TempDir(), "log")
			if err := os.WriteFile(path, []byte(strings.Repeat("0123456789\n", 100)), 0o600); err != nil {
				t.Fatal(err)
			}
			dropped := 0
			lim := newLogLimiter(tt.limit, func(n int) { dropped += n })
			ctx, cancel := context.WithCancel(context.Background())
			cancel() // read what the file holds, then return
			c.shipLogs(ctx, testRef("g1"), lim, path, false)
			app, cell := c.pub.logLines(model.LogApp), c.pub.logLines(model.LogCell)
			if len(app) < tt.least || len(app) > tt.most || len(app)+dropped != 100 {
				t.Fatalf("%d lines shipped, %d dropped; want %d to %d of 100", len(app), dropped, tt.least, tt.most)
			}
			told := 0
			for _, m := range cell {
				var limit int64
				var n int
				if _, err := fmt.Sscanf(m, "app instance exceeded log rate limit (%d bytes/sec): %d log", &limit, &n); err != nil || limit != tt.limit {
					t.Fatalf("marker %q: %v", m, err)
				}
				told += n
			}
			if told != dropped {
				t.Errorf("markers %q tell %d dropped lines, want %d", cell, told, dropped)
			}
		})
	}
}
