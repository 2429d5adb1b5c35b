package agents

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/driftless/driftless/agents/network"
	"github.com/driftless/driftless/agents/runtime"
	"github.com/driftless/driftless/agents/staging"
	"github.com/driftless/driftless/bus"
	"github.com/driftless/driftless/model"
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
	a.trust(req.BlobStore)
	a.wg.Go(func() {
		select {
		case a.stage <- struct{}{}:
			defer func() { <-a.stage }()
		case <-a.ctx.Done():
			return
		}
		timeout := time.Duration(req.TimeoutSec) * time.Second
		if timeout <= 0 {
			timeout = model.DefaultStagingTimeout
		}
		ctx, cancel := context.WithTimeout(a.ctx, timeout)
		defer cancel()
		out := func(line string) {
			a.publishLine(model.LogLine{Time: time.Now().UTC(), Space: req.Space, App: req.App, Source: model.LogStaging, Text: line})
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

// LabelStaging marks the containers of compile steps.
const LabelStaging = "driftless.staging"

// compileRunner runs buildpack compile steps in containers on this cell
// (staging.Runner), through the same runner and network as instances: the
// stack image from the blob store, vcap, memory, CPU and pids limits, no
// capabilities, its own network namespace with outbound access only
// (module proxies, npm), and the output streamed line by line.
type compileRunner struct{ a *Agent }

// compileLifecycle is a compile step's life: network (a namespace, no
// port mapping) → image (the stack's, pulled) → container (started); undone
// in reverse once the step has ended.
func (a *Agent) compileLifecycle(job staging.CompileJob, exits *<-chan runtime.Exit) *lifecycle {
	id := job.ID
	var att *network.Attachment
	return &lifecycle{steps: []step{
		{name: StepNetwork,
			do: func(ctx context.Context) error {
				var err error
				if att, err = a.net.Attach(ctx, id, 0, 0); err != nil {
					return fmt.Errorf("network for the compile step: %w", err)
				}
				return nil
			},
			undo: func(ctx context.Context) error { return a.net.Detach(ctx, id, 0, 0) }},
		{name: "image",
			do: func(ctx context.Context) error {
				if err := a.runner.Fetch(ctx, job.Image); err != nil {
					return fmt.Errorf("fetching the stack image: %w", err)
				}
				return nil
			}},
		{name: StepContainer,
			do: func(ctx context.Context) error {
				mounts := make([]runtime.Mount, 0, len(job.Mounts))
				for _, m := range job.Mounts {
					mounts = append(mounts, runtime.Mount{Source: m.Source, Destination: m.Destination, ReadOnly: m.ReadOnly})
				}
				spec := runtime.Spec{
					ID: id, Image: job.Image, Args: []string{"/bin/sh", "-c", job.Script}, Env: job.Env,
					WorkingDir: staging.AppDir, UID: model.VcapUID, GID: model.VcapUID,
					MemoryMB: job.MemoryMB, CPUShares: 1024, PidsLimit: PidsLimit,
					NetNSPath: att.NetNSPath, Hostname: "staging",
					Labels: map[string]string{LabelStaging: id}, Mounts: mounts,
				}
				var err error
				if *exits, err = a.runner.Run(ctx, spec); err != nil {
					return fmt.Errorf("starting the compile step: %w", err)
				}
				return nil
			},
			undo: func(ctx context.Context) error { return a.runner.Remove(ctx, id, time.Second) }},
	}}
}

// Compile implements staging.Runner.
func (r compileRunner) Compile(ctx context.Context, job staging.CompileJob, out func(string)) error {
	a := r.a
	var exits <-chan runtime.Exit
	life := a.compileLifecycle(job, &exits)
	undo := func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if err := life.undo(cctx); err != nil {
			a.log.Warn("removing a compile step", "id", job.ID, "err", err)
		}
	}
	life.done()
	undo() // what an agent that died mid-staging left
	life.entered = 0
	defer undo()
	if err := life.run(ctx); err != nil {
		return err
	}
	fctx, stopFollow := context.WithCancel(context.WithoutCancel(ctx))
	followed := make(chan struct{})
	go func() {
		defer close(followed)
		_ = followLines(fctx, a.runner.LogPath(job.ID), false, func(line string) { out("       " + line) })
	}()
	var exit runtime.Exit
	select {
	case exit = <-exits:
	case <-ctx.Done():
		exit.Err = ctx.Err()
	}
	stopFollow()
	<-followed
	switch {
	case exit.Err != nil && ctx.Err() != nil:
		return fmt.Errorf("compile step stopped: %w", ctx.Err())
	case exit.Err != nil:
		return fmt.Errorf("compile step: %w", exit.Err)
	case exit.Status != 0:
		return fmt.Errorf("compile step exited with status %d", exit.Status)
	}
	return nil
}
