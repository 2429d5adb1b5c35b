package agents

import (
	"context"
	"fmt"
	"time"

	consul "github.com/hashicorp/consul/api"

	"github.com/driftless/driftless/catalog"
	"github.com/driftless/driftless/internal/ticks"
	"github.com/driftless/driftless/model"
)

// register makes a healthy instance routable: a Consul service with the
// app's routes and a health check Consul runs itself.
func (a *Agent) register(in *instance) error {
	a.mu.Lock()
	st, run := in.status, in.run
	a.mu.Unlock()
	reg := catalog.Registration(model.Endpoint{InstanceRef: st.InstanceRef, Cell: a.cfg.CellID, Address: a.cfg.Address, Port: st.HostPort, Routes: run.Routes, Balance: run.Balance}, run.HealthCheck, a.cfg.CheckInterval)
	if err := a.cfg.Consul.Agent().ServiceRegister(reg); err != nil {
		return fmt.Errorf("registering %s/%d in consul: %w", st.App, st.Index, err)
	}
	return nil
}

// registerCell registers the cell's own service, whose TTL check every
// instance registration aliases (catalog.CellRegistration).
func (a *Agent) registerCell() error {
	if err := a.cfg.Consul.Agent().ServiceRegister(catalog.CellRegistration(a.cfg.CellID, a.cfg.Address, a.cfg.CellTTL)); err != nil {
		return fmt.Errorf("registering the cell in consul: %w", err)
	}
	return nil
}

// renewCell keeps the cell's check passing; when the check is gone
// (Consul restarted, or it was deleted by hand) the cell registers again.
func (a *Agent) renewCell() {
	err := a.cfg.Consul.Agent().UpdateTTL(catalog.CellCheckID(a.cfg.CellID), "agent running", consul.HealthPassing)
	if err == nil {
		return
	}
	a.log.Debug("renewing the cell check", "err", err)
	if err := a.registerCell(); err != nil {
		a.log.Warn("registering the cell again", "err", err)
	}
}

// deregister takes an instance out of Consul (and so out of the routers).
func (a *Agent) deregister(guid string) {
	if err := a.cfg.Consul.Agent().ServiceDeregister(guid); err != nil {
		a.log.Debug("deregistering instance", "guid", guid, "err", err)
	}
}

// registrySyncLoop repairs drift every interval: a driftless container
// in the cell's containerd namespace that is no instance of the cell
// (started by hand, or left by a failed removal) is removed, and between
// the cell and Consul: a RUNNING instance missing from Consul (deleted by hand, or
// Consul restarted) is registered again, a registration of this cell with
// no RUNNING instance behind it is removed, and process-type checks (TTL)
// are kept passing while their process runs.
func (a *Agent) registrySyncLoop(ctx context.Context) {
	ticks.Every(ctx, a.cfg.SyncInterval, func() {
		if err := a.syncRegistry(); err != nil {
			a.log.Warn("comparing registrations with consul", "err", err)
		}
		if err := a.syncContainers(ctx); err != nil {
			a.log.Warn("comparing containers with instances", "err", err)
		}
	})
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
		if in.status.State == model.StateRunning && !in.stopping {
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
		if in.run.HealthCheck.Kind() == model.HealthProcess {
			if err := a.cfg.Consul.Agent().UpdateTTL(catalog.CheckID(guid), "process running", "pass"); err != nil {
				a.log.Warn("passing process check", "guid", guid, "err", err)
			}
		}
	}
	for guid, svc := range services {
		if guid == catalog.CellServiceID(a.cfg.CellID) {
			continue
		}
		if _, ok := running[guid]; !ok && catalog.IsDriftless(svc.Tags) {
			a.log.Info("registration without a running instance: removing it", "guid", guid)
			a.deregister(guid)
		}
	}
	return nil
}

// syncContainers removes the containers labelled as driftless instances
// that are not instances of this cell. Instances are added to the cell's
// table before their container is created and removed from it after, so a
// container never in the table was not made by this agent process or the
// one it adopted from.
func (a *Agent) syncContainers(ctx context.Context) error {
	conts, err := a.rt.List(ctx)
	if err != nil {
		return fmt.Errorf("listing containers: %w", err)
	}
	for _, c := range conts {
		guid := c.Labels[LabelGUID]
		if guid == "" {
			continue
		}
		a.mu.Lock()
		_, known := a.insts[guid]
		a.mu.Unlock()
		if known {
			continue
		}
		a.log.Warn("container that is no instance of this cell: removing it", "container", guid, "app", c.Labels[LabelApp])
		if err := a.rt.Stop(ctx, guid, time.Second); err != nil {
			a.log.Warn("removing a foreign container", "container", guid, "err", err)
		}
	}
	return nil
}
