package agents

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/driftless/driftless/agents/network"
	"github.com/driftless/driftless/agents/runtime"
	"github.com/driftless/driftless/bus"
	"github.com/driftless/driftless/model"
)

// Instance settings every container gets.
const (
	// ContainerPort is the port an app listens on ($PORT).
	ContainerPort = 8080
	// PidsLimit bounds the processes of one instance.
	PidsLimit = 1024
)

// Container labels that identify driftless instances (for adoption).
const (
	LabelGUID    = "driftless.guid"
	LabelSpace   = "driftless.space"
	LabelApp     = "driftless.app"
	LabelIndex   = "driftless.index"
	LabelRelease = "driftless.release"
)

// instance is one instance on this cell. Fields are guarded by Agent.mu,
// but life, which its launch runs and then its stop undoes (never both at
// once).
type instance struct {
	status   model.InstanceStatus
	run      model.RunSpec
	stopping bool
	// drain says the instance was RUNNING (registered, routed to) when
	// its stop began: the stop waits Config.Drain after deregistering it.
	drain bool
	// life is the instance's steps on the cell (instanceLifecycle).
	life *lifecycle
	// cancel ends the instance's goroutines (health check, exit watch, logs).
	cancel context.CancelFunc
	// launched is closed when launch has returned; nil for an adopted
	// instance (never launched by this agent).
	launched chan struct{}
	// logs is the instance's log rate limit, shared by its app's and its
	// sidecars' log streams (lograte.go); set when it is made.
	logs *logLimiter
}

// record is what is kept on disk for each instance, to adopt it after an
// agent restart. The environment and the bindings are not kept: they may
// hold secrets (the bindings' files stay on the host for the instance).
type record struct {
	Instance model.InstanceRef `json:"instance"`
	Run      model.RunSpec     `json:"run"`
	HostPort int               `json:"host_port"`
}

// setState moves an instance to st and tells the controller at once.
// Caller holds a.mu.
func (a *Agent) setState(in *instance, st model.InstanceState, reason string) {
	a.gen++
	in.status.State, in.status.Since, in.status.Reason = st, time.Now().UTC(), reason
	ic := bus.InstanceChanged{CellID: a.cfg.CellID, BootID: a.bootID, Generation: a.gen, Instance: in.status}
	if err := a.pub.Publish(bus.InstancesSubject(a.cfg.CellID), ic); err != nil {
		a.log.Warn("reporting instance change", "err", err)
	}
	a.log.Info("instance "+string(st), "app", in.status.App, "index", in.status.Index, "guid", in.status.GUID, "reason", reason)
	a.kickPolicies()
}

// launch brings a STARTING instance up by running its lifecycle (host
// port, network, droplet, bindings, container, health check,
// registration), then makes it RUNNING. A failed step makes it CRASHED
// with the reason (the controller then replaces it) and what was done is
// undone at once; a
// launch cut short by a stop leaves the undoing to the stop, and one cut
// short by the agent stopping leaves it to the next agent process.
func (a *Agent) launch(ctx context.Context, in *instance) {
	a.mu.Lock()
	ref := in.status.InstanceRef
	a.mu.Unlock()
	a.publishCellLine(ref, fmt.Sprintf("creating the container of instance %s on cell %s (release %s)",
		model.IndexKey{Process: ref.Process, Index: ref.Index}, a.cfg.CellID, ref.ReleaseID))
	err := in.life.run(ctx)
	a.mu.Lock()
	stopping, guid := in.stopping, in.status.GUID
	if err == nil && !stopping && in.status.State == model.StateStarting {
		in.status.WasHealthy = true
		a.setState(in, model.StateRunning, "health check passed")
		kind := in.run.HealthCheck.Kind()
		defer a.publishSourceLine(ref, model.LogHealth, fmt.Sprintf("health check (%s) passed: instance is running", kind))
		addr := a.instanceAddr(in.status.HostPort)
		a.wg.Go(func() { a.watchHealth(ctx, in, addr, true) })
		a.wg.Go(func() { a.watchReadiness(ctx, in, addr, true) })
	}
	a.mu.Unlock()
	if err == nil || stopping || a.ctx.Err() != nil {
		return
	}
	if ctx.Err() == nil && !errors.Is(err, errNotStarting) {
		a.crash(in, -1, err.Error(), false)
	}
	// Crashed (now, or by its exit while it started): its process is
	// killed at once (after the crash is recorded, so its exit is not
	// taken for the reason), then what it holds is given back. What
	// cannot be given back now is left to its stop.
	uctx, cancel := context.WithTimeout(context.WithoutCancel(a.ctx), undoAttemptTimeout)
	defer cancel()
	_ = a.runner.Kill(uctx, guid)
	if err := in.life.undo(uctx); err != nil {
		a.log.Warn("undoing a failed start", "guid", guid, "err", err)
	}
}

// LivenessFailures is how many health checks in a row a RUNNING instance
// may fail before the cell kills it (Diego's liveness check); the
// controller then restarts it like any crash.
const LivenessFailures = 3

// watchHealth keeps checking a RUNNING instance as its health check says
// ("process" instances are watched by their exit alone) and crashes it
// after LivenessFailures failures in a row: an instance that stops
// answering is replaced, not left registered and unreachable. Its
// registration's health check follows the probes (setHealthy): critical
// from the first failure, passing again from the next success. known says
// the check passes already (the instance was just registered so); for an
// adopted instance the first probe sets it, as for readiness.
func (a *Agent) watchHealth(ctx context.Context, in *instance, addr string, known bool) {
	a.mu.Lock()
	hc, guid, ref := in.run.HealthCheck, in.status.GUID, in.status.InstanceRef
	a.mu.Unlock()
	if hc.Kind() == model.HealthProcess {
		return
	}
	fails := 0
	check := checkState{known: known, passing: true}
	a.whileRunning(ctx, in, hc.Interval(a.cfg.CheckInterval), func() bool {
		err := a.probe.Probe(ctx, hc, addr)
		if ctx.Err() == nil {
			a.metrics.checked("liveness", err)
		}
		if err == nil {
			if fails > 0 {
				a.publishSourceLine(ref, model.LogHealth, fmt.Sprintf("health check (%s) passed again", hc.Kind()))
			}
			fails = 0
			a.setHealthy(ref, &check, err)
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		fails++
		a.setHealthy(ref, &check, err)
		a.publishSourceLine(ref, model.LogHealth, fmt.Sprintf("health check (%s) failed (%d of %d before a restart): %v", hc.Kind(), fails, LivenessFailures, err))
		if fails < LivenessFailures {
			return true
		}
		a.crash(in, -1, fmt.Sprintf("health check (%s) failed %d times in a row: %v", hc.Kind(), fails, err), false)
		_ = a.runner.Kill(a.ctx, guid)
		return false
	})
}

// setHealthy records a liveness probe's result (nil: passed) in check and,
// when it changes the check, sets the instance's health check in the
// registry: failing after its first failed probe, so that the routers
// leave it at once, passing when one passes again. A write that fails
// leaves check unknown: the next probe writes again.
func (a *Agent) setHealthy(ref model.InstanceRef, check *checkState, probe error) {
	if !check.observe(probe) {
		return
	}
	if err := a.registry.SetHealthy(ref, check.passing); err != nil {
		a.log.Debug("setting the health check", "guid", ref.GUID, "err", err)
		check.known = false
	}
}

// whileRunning calls f every interval while in is RUNNING and not being
// stopped, until ctx ends or f returns false: the loop of the liveness
// and readiness probes.
func (a *Agent) whileRunning(ctx context.Context, in *instance, every time.Duration, f func() bool) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		a.mu.Lock()
		done := in.stopping || in.status.State != model.StateRunning
		a.mu.Unlock()
		if done || !f() {
			return
		}
	}
}

// watchExit reports an exit the cell did not ask for as a crash. A watch
// that breaks (containerd restarted, or is away) is not one: the process
// runs on under its shim, and is watched again once containerd answers.
func (a *Agent) watchExit(ctx context.Context, in *instance, exits <-chan runtime.Exit) {
	for exits != nil {
		select {
		case <-ctx.Done():
			return
		case e, ok := <-exits:
			if !ok {
				return
			}
			if e.Err == nil {
				a.crash(in, int(e.Status), fmt.Sprintf("exited with status %d", e.Status), true)
				return
			}
			if ctx.Err() != nil {
				return
			}
			exits = a.rewatch(ctx, in, e.Err)
		}
	}
}

// LostWatchGrace is how long an instance whose process can no longer be
// watched (containerd away) is given before it counts as crashed.
const LostWatchGrace = 2 * time.Minute

// rewatch watches an instance's process again once containerd answers,
// retrying with a growing pause for up to LostWatchGrace; nil when the
// instance crashed meanwhile (its container or task is gone, or containerd
// did not come back) or ctx ended.
func (a *Agent) rewatch(ctx context.Context, in *instance, lost error) <-chan runtime.Exit {
	a.mu.Lock()
	guid := in.status.GUID
	a.mu.Unlock()
	a.log.Warn("lost the watch of an instance's process; watching it again", "guid", guid, "err", lost)
	giveUp := time.Now().Add(LostWatchGrace)
	pause := 250 * time.Millisecond
	for {
		exits, err := a.runner.Watch(ctx, guid)
		switch {
		case err == nil:
			a.log.Info("watching an instance's process again", "guid", guid)
			return exits
		case ctx.Err() != nil:
			return nil
		case errors.Is(err, runtime.ErrNotFound):
			a.crash(in, -1, fmt.Sprintf("its container went away while containerd was unreachable (%v)", lost), false)
			return nil
		case time.Now().After(giveUp):
			a.crash(in, -1, fmt.Sprintf("lost track of the process for %s: %v", LostWatchGrace, err), false)
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(pause):
		}
		pause = min(2*pause, 5*time.Second)
	}
}

// crash marks an instance CRASHED (once), takes it out of Consul and keeps
// its last output for `driftless app`. exited says the instance's own
// process has ended: its task is reaped first, which waits for the last
// of its output to reach the log. Otherwise (or if reaping fails) the log
// is read once it stops growing.
func (a *Agent) crash(in *instance, status int, reason string, exited bool) {
	a.mu.Lock()
	if in.stopping || in.status.State == model.StateCrashed {
		a.mu.Unlock()
		return
	}
	guid, ref := in.status.GUID, in.status.InstanceRef
	a.mu.Unlock()
	a.deregister(ref)
	reaped := false
	if exited {
		rctx, cancel := context.WithTimeout(a.ctx, undoAttemptTimeout)
		err := a.runner.Reap(rctx, guid)
		cancel()
		if reaped = err == nil; !reaped {
			a.log.Warn("reaping a crashed instance's process", "guid", guid, "err", err)
		}
	}
	var last []string
	if reaped {
		last = runtime.TailLines(a.runner.LogPath(guid), 10)
	} else {
		last = runtime.SettledTail(a.runner.LogPath(guid), 10, 100*time.Millisecond, time.Second)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if in.stopping || in.status.State == model.StateCrashed {
		return
	}
	in.status.ExitStatus, in.status.LastOutput = status, last
	a.setState(in, model.StateCrashed, reason)
	defer a.publishCellLine(ref, fmt.Sprintf("instance crashed (exit status %d): %s; its last lines are kept: driftless logs %s --instance %d --recent",
		status, reason, ref.App, ref.Index))
	if in.cancel != nil {
		in.cancel()
	}
}

// stop takes an instance out of Consul, lets routers notice, then undoes
// its lifecycle in reverse: container, network, host port. It retries
// (bounded) while an engine does not answer.
func (a *Agent) stop(in *instance) {
	a.mu.Lock()
	guid, drain, ref := in.status.GUID, in.drain, in.status.InstanceRef
	a.mu.Unlock()
	a.publishCellLine(ref, fmt.Sprintf("stopping instance %s", model.IndexKey{Process: ref.Process, Index: ref.Index}))
	a.deregister(ref)
	if drain {
		select {
		case <-time.After(a.cfg.Drain):
		case <-a.ctx.Done():
			return
		}
	}
	if in.cancel != nil {
		in.cancel()
	}
	if in.launched != nil {
		// A launch in flight stops at its next step; what it did is
		// undone below, once it has returned. Undoing under it would race
		// its container creation (a task created after its container was
		// deleted leaves a shim running for ever). It may have registered
		// the instance after the deregistration above (it passed its
		// health check as the stop came): its registration step, entered,
		// is undone too.
		<-in.launched
	}
	if err := a.undoRetrying(in.life, guid); err != nil && a.ctx.Err() != nil {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.insts, guid)
	a.setState(in, model.StateStopped, "stopped")
}

// teardown removes what an instance the cell does not run left behind
// (container, log, network, host port, record); each part is optional.
func (a *Agent) teardown(ctx context.Context, guid string, port int) error {
	in := &instance{status: model.InstanceStatus{InstanceRef: model.InstanceRef{GUID: guid}, HostPort: port}}
	a.mu.Lock()
	l := a.instanceLifecycleLocked(in)
	a.mu.Unlock()
	return l.done().undo(ctx)
}

// spec is the container of one instance: non-root, limited, with the
// Cloud Foundry environment, services (VCAP_SERVICES) included unless the
// environment would then be larger than model.MaxEnvBytes (false), and
// its bindings' folder read-only at BindingsRoot.
func (a *Agent) spec(ref model.InstanceRef, run model.RunSpec, port int, att *network.Attachment, services []byte) (runtime.Spec, bool) {
	vcap, _ := json.Marshal(map[string]any{
		"application_id":      ref.Space + "-" + ref.App,
		"application_name":    ref.App,
		"application_uris":    run.Routes,
		"application_version": ref.ReleaseID,
		"instance_id":         ref.GUID,
		"instance_index":      ref.Index,
		"limits":              map[string]any{"mem": run.MemoryMB, "disk": run.DiskMB, "fds": 16384},
		"name":                ref.App,
		"space_name":          ref.Space,
		"uris":                run.Routes,
		"host":                "0.0.0.0",
		"port":                ContainerPort,
		"process_type":        model.ProcessOf(run.Process),
	})
	env := make([]string, 0, len(run.Env)+20)
	for _, k := range slices.Sorted(maps.Keys(run.Env)) {
		env = append(env, k+"="+run.Env[k])
	}
	// Platform variables come last so an app's env cannot override them.
	env = append(env,
		"PORT="+strconv.Itoa(ContainerPort),
		"INSTANCE_INDEX="+strconv.Itoa(ref.Index),
		"INSTANCE_GUID="+ref.GUID,
		"CF_INSTANCE_INDEX="+strconv.Itoa(ref.Index),
		"CF_INSTANCE_GUID="+ref.GUID,
		"CF_INSTANCE_IP="+a.cfg.Address,
		"CF_INSTANCE_PORT="+strconv.Itoa(port),
		"CF_INSTANCE_ADDR="+net.JoinHostPort(a.cfg.Address, strconv.Itoa(port)),
		"CF_INSTANCE_INTERNAL_IP="+att.IP,
		"VCAP_APPLICATION="+string(vcap),
		"SERVICE_BINDING_ROOT="+BindingsRoot,
		"MEMORY_LIMIT="+strconv.FormatInt(run.MemoryMB, 10)+"m",
		"HOME=/home/vcap",
		"TMPDIR=/tmp",
		"DRIFTLESS_SPACE="+ref.Space,
		"DRIFTLESS_APP="+ref.App,
		"DRIFTLESS_RELEASE="+ref.ReleaseID,
		"DRIFTLESS_COMMIT="+ref.Commit,
		"DRIFTLESS_PROCESS="+model.ProcessOf(run.Process),
	)
	// VCAP_SERVICES comes last: it is left out if the rest leaves it no room.
	env, withServices := withVcapServices(env, services)
	var args []string
	if run.Command != "" {
		args = []string{"/bin/sh", "-c", run.Command}
	}
	return runtime.Spec{
		ID: ref.GUID, Image: run.Droplet, Args: args, Env: env,
		UID: model.VcapUID, GID: model.VcapUID,
		MemoryMB:  run.MemoryMB,
		CPUShares: cpuShares(run.MemoryMB),
		PidsLimit: PidsLimit,
		NetNSPath: att.NetNSPath,
		Hostname:  ref.GUID[:min(len(ref.GUID), 8)],
		Labels: map[string]string{
			LabelGUID: ref.GUID, LabelSpace: ref.Space, LabelApp: ref.App,
			LabelIndex: strconv.Itoa(ref.Index), LabelRelease: ref.ReleaseID,
		},
		Mounts: []runtime.Mount{{Source: a.bindingsDir(ref.GUID), Destination: BindingsRoot, ReadOnly: true}},
	}, withServices
}

// cpuShares gives CPU weight in proportion to memory, as Cloud Foundry
// does: 1024 shares per GB (one per MB), at least 10.
func cpuShares(memoryMB int64) uint64 {
	return uint64(max(memoryMB, 10))
}

// withoutEnv is run as an instance's record keeps it: without its
// environment and its bindings, which hold secrets.
func withoutEnv(run model.RunSpec) model.RunSpec {
	run.Env, run.Bindings = nil, nil
	return run
}

func (a *Agent) recordPath(guid string) string {
	return filepath.Join(a.cfg.DataDir, "instances", guid+".json")
}

func (a *Agent) writeRecord(r record) error {
	data, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encoding instance record: %w", err)
	}
	tmp := a.recordPath(r.Instance.GUID) + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return fmt.Errorf("writing instance record: %w", err)
	}
	if err := os.Rename(tmp, a.recordPath(r.Instance.GUID)); err != nil {
		return fmt.Errorf("writing instance record: %w", err)
	}
	return nil
}

func (a *Agent) readRecord(guid string) (record, error) {
	var r record
	data, err := os.ReadFile(a.recordPath(guid))
	if err != nil {
		return r, fmt.Errorf("reading instance record: %w", err)
	}
	if err := json.Unmarshal(data, &r); err != nil {
		return r, fmt.Errorf("decoding instance record: %w", err)
	}
	return r, nil
}
