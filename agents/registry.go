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

// consulRegistry is the cell's Registry in the Consul catalog, under the
// cell's node (catalog.CellNode): one service per instance
// (catalog.InstanceOps), the cell's own service (catalog.CellOp), written
// in batches (catalog.Writer), and its liveness, a key held with a
// session (catalog.Presence).
type consulRegistry struct {
	client   *consul.Client
	cellID   string
	address  string
	node     string
	writer   *catalog.Writer
	presence *catalog.Presence
}

// NewConsulRegistry is the Registry a cell keeps in Consul through
// client: cellID's node, service and presence, whose session lapses about
// cellTTL after the last renewal, and one service per instance on address.
// The agent uses it, and so do the hollow cells of scale tests (package
// sim), so that both register alike.
func NewConsulRegistry(client *consul.Client, cellID, address string, cellTTL time.Duration) Registry {
	return &consulRegistry{client: client, cellID: cellID, address: address, node: catalog.CellNode(cellID),
		writer:   catalog.NewWriter(client, cellID, address),
		presence: catalog.NewPresence(client, cellID, address, cellTTL)}
}

// RegisterCell implements Registry.
// The key first: a cell node without a key is one the controller may
// forget (catalog.ForgetCells).
func (r *consulRegistry) RegisterCell() error {
	if err := r.presence.Hold(); err != nil {
		return fmt.Errorf("registering the cell in consul: %w", err)
	}
	if err := r.writer.Apply(consul.TxnOps{catalog.CellOp(r.cellID, r.address)}); err != nil {
		return fmt.Errorf("registering the cell in consul: %w", err)
	}
	return nil
}

// RenewCell implements Registry.
func (r *consulRegistry) RenewCell() error {
	return r.presence.Renew()
}

// Register implements Registry.
func (r *consulRegistry) Register(ep model.Endpoint, hc model.HealthCheck) error {
	if err := r.writer.Apply(catalog.InstanceOps(r.node, ep, hc)); err != nil {
		return fmt.Errorf("registering %s/%d in consul: %w", ep.App, ep.Index, err)
	}
	return nil
}

// Deregister implements Registry.
func (r *consulRegistry) Deregister(ref model.InstanceRef) error {
	if err := r.writer.Apply(consul.TxnOps{catalog.DeregisterOp(r.node, ref)}); err != nil {
		return fmt.Errorf("deregistering %s from consul: %w", ref.GUID, err)
	}
	return nil
}

// SetHealthy implements Registry.
func (r *consulRegistry) SetHealthy(ref model.InstanceRef, healthy bool) error {
	if err := r.writer.Apply(consul.TxnOps{catalog.HealthOp(r.node, ref, healthy)}); err != nil {
		return fmt.Errorf("setting the health check of %s: %w", ref.GUID, err)
	}
	return nil
}

// SetReady implements Registry.
func (r *consulRegistry) SetReady(ref model.InstanceRef, ready bool) error {
	if err := r.writer.Apply(consul.TxnOps{catalog.ReadyOp(r.node, ref, ready)}); err != nil {
		return fmt.Errorf("setting the readiness check of %s: %w", ref.GUID, err)
	}
	return nil
}

// Instances implements Registry.
func (r *consulRegistry) Instances() (map[string]model.InstanceRef, error) {
	// Any server may answer: a registration it has not seen yet is written
	// again, one it still shows is deleted again; both are harmless.
	list, _, err := r.client.Catalog().NodeServiceList(r.node, &consul.QueryOptions{AllowStale: true})
	if err != nil {
		return nil, fmt.Errorf("listing the cell's services in consul: %w", err)
	}
	out := make(map[string]model.InstanceRef)
	if list == nil {
		return out, nil
	}
	for _, svc := range list.Services {
		if in, ok := catalog.FromService(svc); ok && in.Cell == r.cellID {
			out[in.GUID] = in.InstanceRef
		}
	}
	return out, nil
}

// register makes a healthy instance routable: a registration with the
// app's routes and the checks the cell sets from its probes.
func (a *Agent) register(in *instance) error {
	a.mu.Lock()
	st, run := in.status, in.run
	a.mu.Unlock()
	ep := model.Endpoint{InstanceRef: st.InstanceRef, Cell: a.cfg.CellID, Address: a.cfg.Address,
		Port: st.HostPort, Routes: run.Routes, Balance: run.Balance, HTTP2Routes: run.HTTP2Routes, NotReady: st.NotReady}
	return a.registry.Register(ep, run.HealthCheck)
}

// cellCheckLoop keeps the cell live, three renewals per CellTTL: on its
// own clock, so that a slow Consul never delays a heartbeat, and not on
// every heartbeat, which would cost Consul a call per cell per second for
// a session that holds for CellTTL.
func (a *Agent) cellCheckLoop(ctx context.Context) {
	ticks.NowAndEvery(ctx, a.cfg.CellTTL/3, a.renewCell)
}

// renewCell keeps the cell live; when its session or key is gone (Consul
// restarted, or the session lapsed while Consul was out of reach) the cell
// registers again.
func (a *Agent) renewCell() {
	err := a.registry.RenewCell()
	if err == nil {
		return
	}
	a.log.Debug("renewing the cell's liveness", "err", err)
	if err := a.registry.RegisterCell(); err != nil {
		a.log.Warn("registering the cell again", "err", err)
	}
}

// deregister takes an instance out of the registry (and so out of the
// routers).
func (a *Agent) deregister(ref model.InstanceRef) {
	if err := a.registry.Deregister(ref); err != nil {
		a.log.Debug("deregistering instance", "guid", ref.GUID, "err", err)
	}
}

// registrySyncLoop repairs drift between the cell and Consul every
// interval (syncRegistry).
func (a *Agent) registrySyncLoop(ctx context.Context) {
	ticks.Every(ctx, a.cfg.SyncInterval, func() {
		if err := a.syncRegistry(); err != nil {
			a.log.Warn("comparing registrations with consul", "err", err)
		}
	})
}

// syncRegistry compares the cell's instances with their registrations: a
// RUNNING instance missing (deleted by hand, or Consul restarted) is
// registered again, and a registration of this cell with no RUNNING
// instance behind it is removed.
func (a *Agent) syncRegistry() error {
	registered, err := a.registry.Instances()
	if err != nil {
		return err
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
		if _, ok := registered[guid]; !ok {
			a.log.Info("instance missing from consul: registering it again", "guid", guid, "app", in.status.App)
			if err := a.register(in); err != nil {
				a.log.Warn("re-registering instance", "err", err)
			}
		}
	}
	for guid, ref := range registered {
		if _, ok := running[guid]; !ok {
			a.log.Info("registration without a running instance: removing it", "guid", guid)
			a.deregister(ref)
		}
	}
	return nil
}
