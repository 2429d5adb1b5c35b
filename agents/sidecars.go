package agents

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/driftless/driftless/agents/runtime"
	"github.com/driftless/driftless/model"
)

// Sidecars (manifest `sidecars:`) run in the container of each instance
// of the process types they name, as processes of its task (containerd
// exec): the same user (2000), environment, working directory, limits and
// lock-down as the app, each with its output in the instance's logs as
// source APP/SIDECAR/<NAME>. A sidecar that exits crashes the instance
// (its main process is killed), which the controller restarts like any
// crash. After an agent restart, the adopted instance's sidecars are
// still running inside its container (they belong to its task): their
// watches and logs are taken up again (adoptSidecars).

// sidecarExecID names a sidecar's process in its instance's task.
func sidecarExecID(name string) string { return "sidecar-" + name }

// sidecarLogSource is the source of a sidecar's log lines.
func sidecarLogSource(name string) model.LogSource {
	return model.LogSource("APP/SIDECAR/" + strings.ToUpper(name))
}

// instanceSidecars are the sidecars an instance of run runs: those of its
// process type (run.Process, "" for web).
func instanceSidecars(run model.RunSpec) []model.Sidecar { return run.SidecarsOf(run.Process) }

// startSidecars starts the sidecars of instance in in its running
// container and watches them. It is the lifecycle's sidecars step.
func (a *Agent) startSidecars(ctx context.Context, in *instance) error {
	a.mu.Lock()
	ref, run := in.status.InstanceRef, in.run
	a.mu.Unlock()
	for _, sc := range instanceSidecars(run) {
		exits, err := a.runner.Exec(ctx, ref.GUID, runtime.ExecSpec{ID: sidecarExecID(sc.Name), Args: []string{"/bin/sh", "-c", sc.Command}})
		if err != nil {
			return fmt.Errorf("starting sidecar %s: %w", sc.Name, err)
		}
		a.followSidecar(ctx, in, ref, sc.Name, exits, false)
	}
	return nil
}

// adoptSidecars watches again the sidecars of an adopted instance; one
// that is gone crashes it.
func (a *Agent) adoptSidecars(ctx context.Context, in *instance) {
	a.mu.Lock()
	ref, run := in.status.InstanceRef, in.run
	a.mu.Unlock()
	for _, sc := range instanceSidecars(run) {
		exits, err := a.runner.WatchExec(ctx, ref.GUID, sidecarExecID(sc.Name))
		if err != nil {
			a.crash(in, -1, fmt.Sprintf("sidecar %s could not be watched again after an agent restart: %v", sc.Name, err), false)
			_ = a.runner.Kill(a.ctx, ref.GUID)
			return
		}
		a.followSidecar(ctx, in, ref, sc.Name, exits, true)
	}
}

// followSidecar watches a sidecar's exit and ships its output.
func (a *Agent) followSidecar(ctx context.Context, in *instance, ref model.InstanceRef, name string, exits <-chan runtime.Exit, fromEnd bool) {
	a.wg.Go(func() { a.watchSidecar(ctx, in, name, exits) })
	path := runtime.ExecLogPath(a.runner.LogPath(ref.GUID), sidecarExecID(name))
	a.mu.Lock()
	lim := in.logs // the instance's log rate limit, shared with its app's log
	a.mu.Unlock()
	a.wg.Go(func() {
		source := sidecarLogSource(name)
		err := followLines(ctx, path, fromEnd, func(text string) {
			a.shipLimited(ref, lim, model.LogLine{Space: ref.Space, App: ref.App, Source: source,
				Index: ref.Index, InstanceGUID: ref.GUID, Text: text})
		})
		if err != nil {
			a.log.Warn("following a sidecar's log", "guid", ref.GUID, "sidecar", name, "err", err)
		}
		a.flushLogMarker(ref, lim)
	})
}

// sidecarExitGrace is how long a sidecar's exit waits before it crashes
// the instance: when the app's own process ended (and took the sidecar
// with it), its exit is the reason, not the sidecar's.
const sidecarExitGrace = 300 * time.Millisecond

// watchSidecar crashes the instance when its sidecar exits (with any
// status), killing the app's process. A watch that breaks (containerd
// away) is taken up again, for up to LostWatchGrace.
func (a *Agent) watchSidecar(ctx context.Context, in *instance, name string, exits <-chan runtime.Exit) {
	a.mu.Lock()
	guid := in.status.GUID
	a.mu.Unlock()
	for exits != nil {
		select {
		case <-ctx.Done():
			return
		case e, ok := <-exits:
			if !ok {
				return
			}
			if e.Err == nil {
				select {
				case <-ctx.Done():
					return
				case <-time.After(sidecarExitGrace):
				}
				a.crash(in, int(e.Status), fmt.Sprintf("sidecar %s exited with status %d", name, e.Status), false)
				_ = a.runner.Kill(a.ctx, guid)
				return
			}
			exits = a.rewatchSidecar(ctx, guid, name, e.Err)
		}
	}
}

// rewatchSidecar watches a sidecar again once containerd answers; nil
// when ctx ends, the process is gone (the instance's own watch reports
// its container) or LostWatchGrace passed.
func (a *Agent) rewatchSidecar(ctx context.Context, guid, name string, lost error) <-chan runtime.Exit {
	a.log.Warn("lost the watch of a sidecar; watching it again", "guid", guid, "sidecar", name, "err", lost)
	giveUp := time.Now().Add(LostWatchGrace)
	for pause := 250 * time.Millisecond; time.Now().Before(giveUp); pause = min(2*pause, 5*time.Second) {
		exits, err := a.runner.WatchExec(ctx, guid, sidecarExecID(name))
		switch {
		case err == nil:
			return exits
		case ctx.Err() != nil || errors.Is(err, runtime.ErrNotFound):
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(pause):
		}
	}
	return nil
}
