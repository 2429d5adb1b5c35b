package agents

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/driftless/driftless/agents/network"
	"github.com/driftless/driftless/model"
)

// step is one undoable step of a container's life on the cell.
type step struct {
	name string
	// do takes the step; its error says what failed, in words fit for
	// an instance's crash reason.
	do func(ctx context.Context) error
	// undo gives back what do took; nil when there is nothing to give
	// back. It must be idempotent: it may run after a do that failed
	// half-way, and again after an undo that failed.
	undo func(ctx context.Context) error
}

// lifecycle is a state machine of ordered, undoable steps (a saga with
// compensating steps): run takes the steps in order until one fails, undo
// gives back, in reverse, every step entered — the one that failed too,
// since it may have done part of its work. A step whose undo fails stays,
// with those before it, for the next undo to retry.
//
// A lifecycle is not safe for concurrent use: an instance's launch runs it
// and its stop undoes it only once the launch has returned.
type lifecycle struct {
	steps []step
	// observe, if set, is told how long each step run takes and how it
	// ended (the cell's metrics).
	observe func(step string, took time.Duration, err error)
	// entered counts the steps run began: steps[:entered] are (perhaps
	// partly) done.
	entered int
}

// errNotStarting ends a launch whose instance was stopped or crashed while
// it ran.
var errNotStarting = errors.New("the instance is no longer starting")

// run takes the steps not yet entered, in order, until one fails (its
// error) or ctx ends (before the next step).
func (l *lifecycle) run(ctx context.Context) error {
	for l.entered < len(l.steps) {
		s := l.steps[l.entered]
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("before %s: %w", s.name, err)
		}
		l.entered++
		start := time.Now()
		err := s.do(ctx)
		if l.observe != nil {
			l.observe(s.name, time.Since(start), err)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// undo gives back the steps entered, last first, and stops at the first
// undo that fails (the later steps depend on it: e.g. a network is not
// removed under a container still in it).
func (l *lifecycle) undo(ctx context.Context) error {
	for l.entered > 0 {
		s := l.steps[l.entered-1]
		if s.undo != nil {
			if err := s.undo(ctx); err != nil {
				return fmt.Errorf("undoing %s: %w", s.name, err)
			}
		}
		l.entered--
	}
	return nil
}

// done marks every step done: the lifecycle of an instance adopted from
// an earlier agent process, which only its undo is left to.
func (l *lifecycle) done() *lifecycle {
	l.entered = len(l.steps)
	return l
}

// Names of the steps of an instance's lifecycle, in order.
const (
	StepHostPort     = "host port"
	StepNetwork      = "network"
	StepDroplet      = "droplet"
	StepBindings     = "bindings"
	StepContainer    = "container"
	StepSidecars     = "sidecars"
	StepHealthCheck  = "health check"
	StepRegistration = "registration"
)

// instanceLifecycle is the life of instance in on this cell: host port
// (held, with the instance's record on disk) → network (namespace, address,
// port mapping) → droplet (pulled) → bindings (its service bindings
// folder on the host, bindings.go) → container (started, its exit and
// output followed) → sidecars (started in it, watched: sidecars.go) →
// health check (passed) → registration (routable).
// Stopping it undoes the same steps in reverse. The steps read the
// instance's host port under a.mu when they run.
// Caller holds a.mu.
func (a *Agent) instanceLifecycleLocked(in *instance) *lifecycle {
	ref, run, logs := in.status.InstanceRef, in.run, in.logs
	guid := ref.GUID
	hostPort := func() int {
		a.mu.Lock()
		defer a.mu.Unlock()
		return in.status.HostPort
	}
	var att *network.Attachment
	// services is VCAP_SERVICES, made by the bindings step.
	var services []byte
	return &lifecycle{observe: a.metrics.stepTook, steps: []step{
		{name: StepHostPort,
			do: func(ctx context.Context) error {
				port, err := a.ports.Allocate(ctx)
				if err != nil {
					return fmt.Errorf("no host port free: %w", err)
				}
				a.mu.Lock()
				in.status.HostPort = port
				a.mu.Unlock()
				return a.writeRecord(record{Instance: ref, Run: withoutEnv(run), HostPort: port})
			},
			undo: func(context.Context) error {
				if port := hostPort(); port > 0 {
					a.ports.Release(port)
				}
				if err := os.Remove(a.recordPath(guid)); err != nil && !errors.Is(err, os.ErrNotExist) {
					return fmt.Errorf("removing the instance record: %w", err)
				}
				return nil
			}},
		{name: StepNetwork,
			do: func(ctx context.Context) error {
				var err error
				if att, err = a.net.Attach(ctx, guid, hostPort(), ContainerPort); err != nil {
					return fmt.Errorf("setting up the network: %w", err)
				}
				return nil
			},
			undo: func(ctx context.Context) error {
				if port := hostPort(); port > 0 {
					return a.net.Detach(ctx, guid, port, ContainerPort)
				}
				return nil
			}},
		{name: StepDroplet,
			do: func(ctx context.Context) error {
				if err := a.runner.Fetch(ctx, run.Droplet); err != nil {
					return fmt.Errorf("fetching the droplet: %w", err)
				}
				return nil
			}},
		{name: StepBindings,
			do: func(context.Context) error {
				if !safeFileName(guid) {
					return fmt.Errorf("giving the instance its bindings: its guid %q is no safe folder name", guid)
				}
				var err error
				if services, err = vcapServices(run.Bindings); err != nil {
					return fmt.Errorf("giving the instance its bindings: %w", err)
				}
				warnings, err := writeBindings(a.bindingsDir(guid), run.Bindings, model.VcapUID)
				for _, w := range warnings {
					a.instanceWarning(ref, w)
				}
				if err != nil {
					return fmt.Errorf("writing the instance's bindings: %w", err)
				}
				return nil
			},
			undo: func(context.Context) error { return a.removeBindings(guid) }},
		{name: StepContainer,
			do: func(ctx context.Context) error {
				spec, withServices := a.spec(ref, run, hostPort(), att, services)
				if !withServices {
					a.instanceWarning(ref, fmt.Sprintf("VCAP_SERVICES (%d bytes) would make the environment larger than %d bytes: "+
						"it is left out; read the bindings from the files under $SERVICE_BINDING_ROOT (%s)",
						len(services), model.MaxEnvBytes, BindingsRoot))
				}
				exits, err := a.runner.Run(ctx, spec)
				if err != nil {
					return fmt.Errorf("starting the container: %w", err)
				}
				// The log is opened before anything can remove it: an
				// instance that crashes at once still shows why.
				logPath := a.runner.LogPath(guid)
				logFile, _ := os.Open(logPath) // nil: followed once it appears
				a.wg.Go(func() { a.watchExit(ctx, in, exits) })
				a.wg.Go(func() { a.shipLogsFrom(ctx, ref, logs, logFile, logPath, false) })
				return nil
			},
			undo: func(ctx context.Context) error { return a.runner.Remove(ctx, guid, a.cfg.StopGrace) }},
		// Removing the container ends them: nothing to undo (sidecars.go).
		{name: StepSidecars, do: func(ctx context.Context) error { return a.startSidecars(ctx, in) }},
		{name: StepHealthCheck,
			do: func(ctx context.Context) error {
				timeout := run.HealthCheck.StartTimeout()
				hctx, cancel := context.WithTimeout(ctx, timeout)
				defer cancel()
				err := a.probe.WaitHealthy(hctx, run.HealthCheck, a.instanceAddr(hostPort()), a.cfg.ProbeInterval)
				if ctx.Err() == nil {
					a.metrics.checked("startup", err)
				}
				if err != nil {
					return fmt.Errorf("health check (%s) did not pass within %s: %w", run.HealthCheck.Kind(), timeout, err)
				}
				return nil
			}},
		{name: StepRegistration,
			do: func(ctx context.Context) error {
				a.mu.Lock()
				starting := !in.stopping && in.status.State == model.StateStarting
				a.mu.Unlock()
				if !starting {
					return errNotStarting
				}
				a.firstReadiness(ctx, in, a.instanceAddr(hostPort()))
				if err := a.register(in); err != nil {
					// The registry sync loop retries; the instance is healthy.
					a.log.Warn("registering instance in consul", "guid", guid, "err", err)
				}
				return nil
			},
			undo: func(context.Context) error {
				a.deregister(ref)
				return nil
			}},
	}}
}

// instanceAddr is where an instance mapped on port is reached.
func (a *Agent) instanceAddr(port int) string {
	return net.JoinHostPort(a.cfg.Address, strconv.Itoa(port))
}

// undoAttempts bounds the undo of a stop: thirty attempts two seconds
// apart, three once the agent is stopping.
const (
	undoAttempts        = 30
	undoAttemptsStopped = 3
	undoAttemptTimeout  = time.Minute
)

// undoRetrying undoes l, retrying (bounded) while an engine does not
// answer. It is not cut short when the agent stops (Run waits for it): an
// undo abandoned half-way leaves an instance's namespace, address and port
// mapping on the host, held for nothing. Once the agent is stopping, three
// attempts, not thirty.
func (a *Agent) undoRetrying(l *lifecycle, guid string) error {
	var err error
	for attempt := 0; attempt < undoAttempts; attempt++ {
		actx, cancel := context.WithTimeout(context.WithoutCancel(a.ctx), undoAttemptTimeout)
		err = l.undo(actx)
		cancel()
		if err == nil {
			return nil
		}
		a.log.Warn("stopping instance", "guid", guid, "attempt", attempt, "err", err)
		if a.ctx.Err() != nil && attempt >= undoAttemptsStopped-1 {
			return err
		}
		time.Sleep(a.retryPause)
	}
	return err
}
