package agents

import (
	"bufio"
	"context"
	"errors"
	"io"
	"os"
	"strings"
	"time"

	"github.com/driftless/driftless/bus"
	"github.com/driftless/driftless/model"
)

// maxLogLine bounds one shipped line; longer lines are cut.
const maxLogLine = 16 << 10

// shipLogs follows an instance's log file (written by containerd's shim,
// so it outlives agent restarts) and publishes every line on its
// bus.LogSubject, as lim (the instance's log rate limit) allows.
// fromEnd skips what was already there (adoption).
func (a *Agent) shipLogs(ctx context.Context, ref model.InstanceRef, lim *logLimiter, path string, fromEnd bool) {
	a.shipLogsFrom(ctx, ref, lim, nil, path, fromEnd)
}

// shipLogsFrom is shipLogs from f, the log file already open (nil: open
// it at path once it appears).
func (a *Agent) shipLogsFrom(ctx context.Context, ref model.InstanceRef, lim *logLimiter, f *os.File, path string, fromEnd bool) {
	err := followFile(ctx, f, path, fromEnd, func(text string) {
		a.metrics.logLine()
		a.shipLimited(ref, lim, model.LogLine{Space: ref.Space, App: ref.App, Source: model.LogApp,
			Index: ref.Index, Process: ref.Process, InstanceGUID: ref.GUID, Text: text})
	})
	if err != nil {
		a.log.Warn("following instance log", "guid", ref.GUID, "err", err)
	}
	a.flushLogMarker(ref, lim)
}

// shipLimited publishes an instance's line l (its Time set here) unless
// lim, the instance's log rate limit, drops it; the marker of lines
// dropped before goes first, as a CELL line.
func (a *Agent) shipLimited(ref model.InstanceRef, lim *logLimiter, l model.LogLine) {
	now := time.Now().UTC()
	ok, marker := lim.allow(len(l.Text), now)
	if marker != "" {
		a.publishLine(model.LogLine{Time: now, Space: ref.Space, App: ref.App, Source: model.LogCell,
			Index: ref.Index, Process: ref.Process, InstanceGUID: ref.GUID, Text: marker})
	}
	if ok {
		l.Time = now
		a.publishLine(l)
	}
}

// flushLogMarker publishes, as a CELL line, how many lines lim dropped
// that no marker told yet (a stream of the instance's ends).
func (a *Agent) flushLogMarker(ref model.InstanceRef, lim *logLimiter) {
	if marker := lim.flush(); marker != "" {
		a.publishCellLine(ref, marker)
	}
}

// followLines calls emit with every line of the file at path as it grows
// (waiting for the file to appear), until ctx ends; then it reads what is
// left and returns. fromEnd skips what the file already holds.
func followLines(ctx context.Context, path string, fromEnd bool, emit func(string)) error {
	return followFile(ctx, nil, path, fromEnd, emit)
}

// followFile is followLines from f, the file at path already open (nil:
// open it once it appears). A caller that opens the file before its
// writer can end makes sure no line is lost to a quick removal (an
// instance that crashes at once is removed with its log).
func followFile(ctx context.Context, f *os.File, path string, fromEnd bool, emit func(string)) error {
	for f == nil {
		var err error
		if f, err = os.Open(path); err == nil {
			break
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(200 * time.Millisecond):
		}
	}
	defer f.Close()
	if fromEnd {
		if _, err := f.Seek(0, io.SeekEnd); err != nil {
			return err
		}
	}
	wake, unwatch := logWatcher.watch(path)
	defer unwatch()
	r := bufio.NewReaderSize(f, 64<<10)
	var partial strings.Builder
	draining := false
	for {
		line, err := r.ReadString('\n')
		partial.WriteString(line)
		if err == nil || partial.Len() >= maxLogLine {
			text := strings.TrimRight(partial.String(), "\r\n")
			if len(text) > maxLogLine {
				text = text[:maxLogLine]
			}
			partial.Reset()
			emit(text)
			continue
		}
		if !errors.Is(err, io.EOF) {
			return err
		}
		if draining {
			if partial.Len() > 0 {
				emit(strings.TrimRight(partial.String(), "\r\n"))
			}
			return nil
		}
		select {
		case <-ctx.Done():
			draining = true // one more pass: what was written up to now
		case <-wake: // written (logwatch.go)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// publishCellLine puts a line from the cell (source CELL) into an
// instance's log, as Cloud Foundry's "[CELL/0]" lines. text must hold no
// secret.
func (a *Agent) publishCellLine(ref model.InstanceRef, text string) {
	a.publishSourceLine(ref, model.LogCell, text)
}

// publishSourceLine puts a line of the cell's (CELL, HEALTH) into an
// instance's log. text must hold no secret.
func (a *Agent) publishSourceLine(ref model.InstanceRef, source model.LogSource, text string) {
	a.publishLine(model.LogLine{Time: time.Now().UTC(), Space: ref.Space, App: ref.App, Source: source,
		Index: ref.Index, Process: ref.Process, InstanceGUID: ref.GUID, Text: text})
}

// publishLine sends one line on its subject, where the controller's
// journal keeps it.
func (a *Agent) publishLine(l model.LogLine) {
	if err := a.pub.Publish(bus.LogSubject(l), l); err != nil {
		a.log.Debug("shipping a log line", "source", l.Source, "err", err)
	}
}
