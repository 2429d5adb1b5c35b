package agents

import (
	"context"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/driftless/driftless/agents/health"
	"github.com/driftless/driftless/agents/network"
	"github.com/driftless/driftless/agents/runtime"
	"github.com/driftless/driftless/bus"
	"github.com/driftless/driftless/model"
)

// The cell's side effects live behind the interfaces of this file, so that
// an instance's lifecycle, its stop, adoption and the drift loops run in
// unit tests against fakes: no containerd, CNI, iptables, Consul or NATS.

// Networks gives containers their network namespace, address and host-port
// mapping (*network.Network).
type Networks interface {
	// Attach makes id's namespace, with hostPort mapped to containerPort
	// (no mapping when both are 0).
	Attach(ctx context.Context, id string, hostPort, containerPort int) (*network.Attachment, error)
	// Detach undoes Attach; detaching what is not attached is no error.
	Detach(ctx context.Context, id string, hostPort, containerPort int) error
	// Lookup finds id's attachment.
	Lookup(id string) (*network.Attachment, bool)
	// Attachments lists every attachment of the cell.
	Attachments() ([]*network.Attachment, error)
	// SetPolicyRules makes the network policy rules of the cell's bridge
	// exactly rules (container-to-container traffic they allow).
	SetPolicyRules(ctx context.Context, rules []network.PolicyRule) error
}

// HostPorts hands out the host ports instances are mapped on
// (*network.Ports: each held by a listening socket).
type HostPorts interface {
	// Allocate takes a free port.
	Allocate(ctx context.Context) (int, error)
	// Reserve takes a given port (an adopted instance's).
	Reserve(port int) error
	// Release gives a port back.
	Release(port int)
}

// Registry makes the cell's healthy instances routable and keeps the
// cell alive in the routers' eyes (Consul, see consulRegistry).
type Registry interface {
	// RegisterCell registers the cell's service and takes its liveness
	// (catalog.Presence): routers route to the instances of live cells.
	RegisterCell() error
	// RenewCell keeps the cell live; an error says RegisterCell must take
	// its liveness again.
	RenewCell() error
	// Register makes an instance routable, with a health check (port or
	// http kinds of hc) and a readiness check (hc.Readiness) that the cell
	// sets (SetHealthy, SetReady) as its probes say.
	Register(ep model.Endpoint, hc model.HealthCheck) error
	// Deregister takes an instance out; a missing one is no error.
	Deregister(ref model.InstanceRef) error
	// SetReady passes (ready) or fails the readiness check of an instance
	// with one: an instance that is not ready stays registered but out of
	// the routers.
	SetReady(ref model.InstanceRef, ready bool) error
	// SetHealthy passes or fails the health check of an instance with a
	// port or http one: an instance whose liveness probe failed leaves the
	// routers until one passes again (or the cell crashes it).
	SetHealthy(ref model.InstanceRef, healthy bool) error
	// Instances lists the instance registrations of this cell, by guid.
	Instances() (map[string]model.InstanceRef, error)
}

// Publisher sends the cell's reports: state changes, heartbeats, log lines.
type Publisher interface {
	Publish(subject string, v any) error
}

// natsPublisher publishes on NATS with bus's encoding.
type natsPublisher struct{ nc *nats.Conn }

// Publish implements Publisher.
func (p natsPublisher) Publish(subject string, v any) error { return bus.Publish(p.nc, subject, v) }

// Prober checks instance health (agents/health); fakes in unit tests.
type Prober interface {
	// WaitHealthy probes every interval until a probe passes or ctx ends.
	WaitHealthy(ctx context.Context, hc model.HealthCheck, addr string, interval time.Duration) error
	// Probe checks once.
	Probe(ctx context.Context, hc model.HealthCheck, addr string) error
}

// healthProber is agents/health.
type healthProber struct{}

// WaitHealthy implements Prober.
func (healthProber) WaitHealthy(ctx context.Context, hc model.HealthCheck, addr string, interval time.Duration) error {
	return health.WaitHealthy(ctx, hc, addr, interval)
}

// Probe implements Prober.
func (healthProber) Probe(ctx context.Context, hc model.HealthCheck, addr string) error {
	return health.Probe(ctx, hc, addr)
}

// parts are the side effects an Agent is made of; New makes the real ones.
type parts struct {
	engine   runtime.Engine
	net      Networks
	ports    HostPorts
	registry Registry
	pub      Publisher
	probe    Prober
}
