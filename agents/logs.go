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
// so it outlives agent restarts) and publishes every line on
// bus.Logs(space, app). fromEnd skips what was already there (adoption).
func (a *Agent) shipLogs(ctx context.Context, ref model.InstanceRef, path string, fromEnd bool) {
	a.shipLogsFrom(ctx, ref, nil, path, fromEnd)
}

// shipLogsFrom is shipLogs from f, the log file already open (nil: open
// it at path once it appears).
func (a *Agent) shipLogsFrom(ctx context.Context, ref model.InstanceRef, f *os.File, path string, fromEnd bool) {
	subject := bus.Logs(ref.Space, ref.App)
	err := followFile(ctx, f, path, fromEnd, func(text string) {
		a.metrics.logLine()
		msg := model.LogLine{Time: time.Now().UTC(), Space: ref.Space, App: ref.App, Source: model.LogApp,
			Index: ref.Index, Process: ref.Process, InstanceGUID: ref.GUID, Text: text}
		if err := a.pub.Publish(subject, msg); err != nil {
			a.metrics.logDropped(1)
			a.log.Debug("shipping log line", "err", err)
		}
	})
	if err != nil {
		a.log.Warn("following instance log", "guid", ref.GUID, "err", err)
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
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// publishCellLine puts a line from the cell (source CELL) into an
// instance's log, as Cloud Foundry's "[CELL/0]" lines. text must hold no
// secret.
func (a *Agent) publishCellLine(ref model.InstanceRef, text string) {
	msg := model.LogLine{Time: time.Now().UTC(), Space: ref.Space, App: ref.App, Source: model.LogCell,
		Index: ref.Index, Process: ref.Process, InstanceGUID: ref.GUID, Text: text}
	if err := a.pub.Publish(bus.Logs(ref.Space, ref.App), msg); err != nil {
		a.log.Debug("shipping a cell log line", "err", err)
	}
}
