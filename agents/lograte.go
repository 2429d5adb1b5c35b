package agents

import (
	"fmt"
	"sync"
	"time"

	"github.com/driftless/driftless/model"
)

// logLimiter enforces an instance's log rate limit (manifest
// log-rate-limit-per-second, model.RunSpec.LogRateLimit) over all of its
// log streams (the app's and its sidecars'), as Cloud Foundry's cells do:
// fixed one-second windows, each allowing limit bytes of lines (a line
// counts its text and one byte for its newline). Once a line does not
// fit, the rest of the window's lines are dropped and counted; the first
// line allowed in a later window, or the end of shipping (flush), brings
// one marker line saying how many were dropped. Markers are the cell's
// (source CELL) and never count against the limit. A nil *logLimiter, or
// one whose limit is 0, allows everything. It is safe for concurrent use.
type logLimiter struct {
	limit int64 // bytes per window; <= 0: no limit
	// onDrop, when set, is told of every dropped line (lines is 1): the
	// cell's count of dropped log lines (a metric) hooks in here. It is
	// called with the limiter's lock held: it must not call back.
	onDrop func(lines int)

	mu       sync.Mutex
	window   time.Time // start of the current window
	used     int64     // bytes allowed in it
	exceeded bool      // a line of this window was dropped
	dropped  int       // lines dropped since the last marker
}

// instanceLogLimiter is the log rate limit of an instance of run, made
// with the instance and shared by all its log streams; its drops are
// counted in driftless_cell_log_lines_dropped_total.
func (a *Agent) instanceLogLimiter(run model.RunSpec) *logLimiter {
	return newLogLimiter(run.LogRateLimit, a.metrics.logDropped)
}

// newLogLimiter limits to bytesPerSec (<= 0: no limit); onDrop may be nil.
func newLogLimiter(bytesPerSec int64, onDrop func(lines int)) *logLimiter {
	return &logLimiter{limit: bytesPerSec, onDrop: onDrop}
}

// allow says whether a line of n bytes (its text, without newline) read
// at now is shipped. marker, when not empty, is a line to ship before it:
// how many lines the previous windows dropped.
func (l *logLimiter) allow(n int, now time.Time) (ok bool, marker string) {
	if l == nil || l.limit <= 0 {
		return true, ""
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if w := now.Truncate(time.Second); !w.Equal(l.window) {
		l.window, l.used, l.exceeded = w, 0, false
	}
	cost := int64(n) + 1
	if l.exceeded || l.used+cost > l.limit {
		l.exceeded = true
		l.dropped++
		if l.onDrop != nil {
			l.onDrop(1)
		}
		return false, ""
	}
	l.used += cost
	return true, l.markerLocked()
}

// flush returns the marker of the lines dropped since the last one ("" when
// none were): shipping ends, or nothing more was allowed since.
func (l *logLimiter) flush() string {
	if l == nil {
		return ""
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.markerLocked()
}

// markerLocked is the marker of the lines dropped so far, and starts a
// new count. Caller holds l.mu.
func (l *logLimiter) markerLocked() string {
	if l.dropped == 0 {
		return ""
	}
	m := logRateMarker(l.limit, l.dropped)
	l.dropped = 0
	return m
}

// logRateMarker is the line that says lines were dropped, in Cloud
// Foundry's words.
func logRateMarker(limit int64, dropped int) string {
	lines := "lines"
	if dropped == 1 {
		lines = "line"
	}
	return fmt.Sprintf("app instance exceeded log rate limit (%d bytes/sec): %d log %s dropped", limit, dropped, lines)
}
