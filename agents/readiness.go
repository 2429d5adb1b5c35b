package agents

import (
	"context"
	"fmt"

	"github.com/driftless/driftless/bus"
	"github.com/driftless/driftless/model"
)

// Readiness (Cloud Foundry's readiness-health-check-*): a RUNNING instance
// with a port or http readiness check is probed every readiness interval.
// A probe that changes its readiness sets its registration's readiness
// check (a write to Consul only then): an instance that is not ready stays registered and
// running but Consul no longer lists it as passing, so the routers, which
// follow the passing instances, stop sending it requests; once it is ready
// again they send them again. A change is reported to the controller
// (InstanceStatus.NotReady). It is never a reason to restart: that is the
// liveness check's (watchHealth).

// checkState is a check the cell sets from its probes (readiness here,
// liveness in watchHealth), as last written: unknown until a first probe
// (an instance adopted after an agent restart, or a write that failed),
// then passing or not as the last probe said.
type checkState struct {
	known, passing bool
}

// observe records one probe's result (nil: passing) and reports whether
// the state changed: always on the first probe, then on every flip.
func (r *checkState) observe(err error) (changed bool) {
	passing := err == nil
	changed = !r.known || r.passing != passing
	r.known, r.passing = true, passing
	return changed
}

// firstReadiness probes a starting instance's readiness once before it is
// registered, so that it is registered ready or not (no check: ready).
func (a *Agent) firstReadiness(ctx context.Context, in *instance, addr string) {
	a.mu.Lock()
	rc := in.run.HealthCheck.Readiness
	a.mu.Unlock()
	if !rc.Probed() {
		return
	}
	err := a.probe.Probe(ctx, rc.Probe(), addr)
	a.mu.Lock()
	in.status.NotReady = err != nil
	a.mu.Unlock()
}

// watchReadiness probes a RUNNING instance's readiness every readiness
// interval until it stops running, and sets its registration's readiness
// check and reports on every change. known says whether
// the instance's readiness was probed already (firstReadiness; not for an
// adopted instance).
func (a *Agent) watchReadiness(ctx context.Context, in *instance, addr string, known bool) {
	a.mu.Lock()
	rc, guid, ref := in.run.HealthCheck.Readiness, in.status.GUID, in.status.InstanceRef
	st := checkState{known: known, passing: !in.status.NotReady}
	a.mu.Unlock()
	if !rc.Probed() {
		return
	}
	a.whileRunning(ctx, in, rc.Interval(a.cfg.CheckInterval), func() bool {
		err := a.probe.Probe(ctx, rc.Probe(), addr)
		if ctx.Err() != nil {
			return false
		}
		a.metrics.checked("readiness", err)
		if !st.observe(err) {
			return true
		}
		if serr := a.registry.SetReady(ref, st.passing); serr != nil {
			// Set it again after the next probe; the registry sync loop
			// registers a missing instance again.
			a.log.Debug("setting the readiness check", "guid", guid, "err", serr)
			st.known = false
		}
		if st.passing {
			a.publishSourceLine(ref, model.LogHealth, "readiness check passed: in the routers")
		} else {
			a.publishSourceLine(ref, model.LogHealth, fmt.Sprintf("readiness check failed: out of the routers: %v", err))
		}
		a.mu.Lock()
		if !in.stopping && in.status.State == model.StateRunning && in.status.NotReady == st.passing {
			in.status.NotReady = !st.passing
			a.reportLocked(in)
			if st.passing {
				a.log.Info("instance ready", "app", in.status.App, "index", in.status.Index, "guid", guid)
			} else {
				a.log.Info("instance not ready: out of the routers", "app", in.status.App, "index", in.status.Index, "guid", guid, "err", err)
			}
		}
		a.mu.Unlock()
		return true
	})
}

// reportLocked tells the controller an instance's status changed without
// a change of state (its readiness). Caller holds a.mu.
func (a *Agent) reportLocked(in *instance) {
	a.gen++
	ic := bus.InstanceChanged{CellID: a.cfg.CellID, BootID: a.bootID, Generation: a.gen, Instance: in.status}
	if err := a.pub.Publish(bus.InstancesSubject(a.cfg.CellID), ic); err != nil {
		a.log.Warn("reporting instance change", "err", err)
	}
}
