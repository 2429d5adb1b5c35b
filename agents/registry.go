package agents

import (
	"context"
	"fmt"
	"time"

	"github.com/driftless/driftless/bus"
	"github.com/driftless/driftless/catalog"
)

// register makes a healthy instance routable: a Consul service with the
// app's routes and a health check Consul runs itself.
func (a *Agent) register(in *instance) error {
	a.mu.Lock()
	st, run := in.status, in.run
	a.mu.Unlock()
	reg := catalog.Registration(catalog.Instance{
		GUID: st.GUID, Space: st.Space, App: st.App, Index: st.Index,
		ReleaseID: st.ReleaseID, Commit: st.Commit, Cell: a.cfg.CellID,
		Address: a.cfg.Address, Port: st.HostPort, Routes: run.Routes,
	}, run.HealthCheck, a.cfg.CheckInterval)
	if err := a.cfg.Consul.Agent().ServiceRegister(reg); err != nil {
		return fmt.Errorf("registering %s/%d in consul: %w", st.App, st.Index, err)
	}
	return nil
}

// deregister takes an instance out of Consul (and so out of the routers).
func (a *Agent) deregister(guid string) {
	if err := a.cfg.Consul.Agent().ServiceDeregister(guid); err != nil {
		a.log.Debug("deregistering instance", "guid", guid, "err", err)
	}
}

// registrySyncLoop repairs drift between the cell and Consul every
// interval: a RUNNING instance missing from Consul (deleted by hand, or
// Consul restarted) is registered again, a registration of this cell with
// no RUNNING instance behind it is removed, and process-type checks (TTL)
// are kept passing while their process runs.
func (a *Agent) registrySyncLoop(ctx context.Context) {
	t := time.NewTicker(a.cfg.SyncInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := a.syncRegistry(); err != nil {
			a.log.Warn("comparing registrations with consul", "err", err)
		}
	}
}

func (a *Agent) syncRegistry() error {
	filter := fmt.Sprintf("Meta.%s == %q", catalog.MetaCell, a.cfg.CellID)
	services, err := a.cfg.Consul.Agent().ServicesWithFilter(filter)
	if err != nil {
		return fmt.Errorf("listing services: %w", err)
	}
	a.mu.Lock()
	running := make(map[string]*instance)
	for guid, in := range a.insts {
		if in.status.State == bus.StateRunning && !in.stopping {
			running[guid] = in
		}
	}
	a.mu.Unlock()
	for guid, in := range running {
		if _, ok := services[guid]; !ok {
			a.log.Info("instance missing from consul: registering it again", "guid", guid, "app", in.status.App)
			if err := a.register(in); err != nil {
				a.log.Warn("re-registering instance", "err", err)
			}
			continue
		}
		if in.run.HealthCheck.Type == "process" {
			if err := a.cfg.Consul.Agent().UpdateTTL(catalog.CheckID(guid), "process running", "pass"); err != nil {
				a.log.Warn("passing process check", "guid", guid, "err", err)
			}
		}
	}
	for guid, svc := range services {
		if _, ok := running[guid]; !ok && catalog.IsDriftless(svc.Tags) {
			a.log.Info("registration without a running instance: removing it", "guid", guid)
			a.deregister(guid)
		}
	}
	return nil
}
