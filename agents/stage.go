package agents

import (
	"context"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/driftless/driftless/bus"
)

// handleStage serves one request of the stagers queue group: it stages the
// release with agents/staging, streams every log line on the app's log
// subject (source STG), and replies with the droplet or the error.
func (a *Agent) handleStage(m *nats.Msg) {
	var req bus.StageRequest
	if err := bus.Decode(m, &req); err != nil {
		_ = bus.Respond(m, bus.StageResult{Error: err.Error()})
		return
	}
	a.wg.Go(func() {
		select {
		case a.stage <- struct{}{}:
			defer func() { <-a.stage }()
		case <-a.ctx.Done():
			return
		}
		timeout := time.Duration(req.TimeoutSec) * time.Second
		if timeout <= 0 {
			timeout = 15 * time.Minute
		}
		ctx, cancel := context.WithTimeout(a.ctx, timeout)
		defer cancel()
		subject := bus.Logs(req.Space, req.App)
		out := func(line string) {
			msg := bus.LogLine{Time: time.Now().UTC(), Space: req.Space, App: req.App, Source: bus.SourceStaging, Text: line}
			if err := bus.Publish(a.cfg.NATS, subject, msg); err != nil {
				a.log.Debug("shipping staging log", "err", err)
			}
		}
		a.log.Info("staging", "app", req.App, "space", req.Space, "release", req.ReleaseID)
		res, err := a.stager.Stage(ctx, req, out)
		if err != nil && res.Error == "" {
			res.Error = err.Error()
		}
		if err := bus.Respond(m, res); err != nil {
			a.log.Warn("replying to staging request", "err", err)
		}
	})
}
