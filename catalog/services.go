// Package catalog is driftless's contract with Consul: the KV keys under
// which desired state and releases live, and the shape of the service
// registration that makes a running instance routable.
//
// Agents write registrations (agents/registry.go), the router reads them
// (router/registry), the controller reads and writes KV (reconciler/store.go),
// each with a Consul ACL token whose policy allows that and no more (acl.go).
package catalog

import (
	"slices"
	"strconv"
	"strings"

	consul "github.com/hashicorp/consul/api"

	"github.com/driftless/driftless/model"
)

// Tags and metadata keys of instance registrations.
const (
	// Tag marks every service registered by driftless: apps, cells and
	// controllers.
	Tag = "driftless"
	// AppTag marks the services of apps, the only ones that carry routes:
	// routers watch these and nothing else.
	AppTag = "driftless-app"
	// RouteTagPrefix prefixes one tag per route: "route:hello.apps.localhost/api".
	RouteTagPrefix = "route:"
	// HTTP2TagPrefix prefixes one tag per route (also tagged with
	// RouteTagPrefix) that routers reach over h2c: "http2:grpc.apps.localhost".
	HTTP2TagPrefix = "http2:"

	MetaSpace   = "driftless_space"
	MetaApp     = "driftless_app"
	MetaIndex   = "driftless_index"
	MetaRelease = "driftless_release"
	MetaCommit  = "driftless_commit"
	MetaCell    = "driftless_cell"
	// MetaProcess is the instance's process type, left out for web.
	MetaProcess = "driftless_process"
	// MetaBalance optionally names the load-balancing algorithm for the
	// app's routes ("round-robin", "least-connections").
	MetaBalance = "driftless_balance"
)

// ServiceName is the Consul service that holds the instances of one app.
func ServiceName(space, app string) string { return space + "-" + app }

// CellNode is the Consul catalog node under which a cell's instances and
// its own service are registered. It is a node of the catalog alone, with
// no Consul agent behind it (as consul-esm's external nodes): no agent's
// anti-entropy owns its services, so a cell writes them in batches (Writer),
// and its health is what the cell reports.
func CellNode(cell string) string { return CellNodePrefix + cell }

// CellNodePrefix prefixes every CellNode: the cells' ACL grants write on
// it.
const CellNodePrefix = "driftless-cell-"

// Instance is the Consul service of a running instance: the app's
// service, its routes as tags, its identity as metadata.
func Instance(in model.Endpoint) consul.AgentService {
	tags := []string{Tag, AppTag}
	for _, r := range in.Routes {
		tags = append(tags, RouteTagPrefix+r)
	}
	for _, r := range in.HTTP2Routes {
		tags = append(tags, HTTP2TagPrefix+r)
	}
	meta := map[string]string{
		MetaSpace:   in.Space,
		MetaApp:     in.App,
		MetaIndex:   strconv.Itoa(in.Index),
		MetaRelease: in.ReleaseID,
		MetaCommit:  in.Commit,
		MetaCell:    in.Cell,
	}
	if in.Balance != model.BalanceDefault {
		meta[MetaBalance] = string(in.Balance)
	}
	if in.Process != "" {
		meta[MetaProcess] = in.Process
	}
	return consul.AgentService{
		ID:      in.GUID,
		Service: ServiceName(in.Space, in.App),
		Tags:    tags,
		Address: in.Address,
		Port:    in.Port,
		Meta:    meta,
	}
}

// InstanceOps registers a running instance under node (CellNode): its
// service (Instance) and, for an instance with a port or http health
// check, a check the cell sets as its own probes say (HealthOp), passing
// because a cell registers an instance only once a probe passed. Consul
// does not probe: the cell already does, and crashes an instance that fails
// LivenessFailures probes in a row; a probe that fails turns the check
// critical and takes the instance out of the routers at once. A "process"
// instance has no check: the cell deregisters it the moment its process
// exits. An instance with a readiness check has a second one (ReadyOp).
// No instance carries its cell's liveness: routers drop the instances of a
// cell that no longer holds its key (cells.go), one write for the whole
// cell instead of a check per instance. Consul's passing filter, which the
// routers' blocking queries use, leaves out an instance whose check is
// critical.
func InstanceOps(node string, in model.Endpoint, hc model.HealthCheck) consul.TxnOps {
	ops := consul.TxnOps{{Service: &consul.ServiceTxnOp{Verb: consul.ServiceSet, Node: node, Service: Instance(in)}}}
	if hc.Kind() != model.HealthProcess {
		ops = append(ops, HealthOp(node, in.InstanceRef, true))
	}
	if hc.Readiness.Probed() {
		ops = append(ops, ReadyOp(node, in.InstanceRef, !in.NotReady))
	}
	return ops
}

// HealthOp sets the health check of an instance (CheckID): passing or
// critical, as the cell's liveness probe last said.
func HealthOp(node string, in model.InstanceRef, passing bool) *consul.TxnOp {
	return checkOp(node, in, CheckID(in.GUID), "driftless instance health", passing, "healthy", "health check failed")
}

// ReadyOp sets the readiness check of an instance (ReadyCheckID).
func ReadyOp(node string, in model.InstanceRef, ready bool) *consul.TxnOp {
	return checkOp(node, in, ReadyCheckID(in.GUID), "driftless instance ready", ready, "ready", "not ready")
}

// checkOp sets a check of an instance's service, passing or critical.
func checkOp(node string, in model.InstanceRef, id, name string, passing bool, yes, no string) *consul.TxnOp {
	status, notes := consul.HealthPassing, yes
	if !passing {
		status, notes = consul.HealthCritical, no
	}
	return &consul.TxnOp{Check: &consul.CheckTxnOp{Verb: consul.CheckSet, Check: consul.HealthCheck{
		Node: node, CheckID: id, Name: name, Status: status, Notes: notes,
		ServiceID: in.GUID, ServiceName: ServiceName(in.Space, in.App),
	}}}
}

// DeregisterOp removes an instance and its checks. It names the service
// as well as its id: Consul's ACLs check the name.
func DeregisterOp(node string, in model.InstanceRef) *consul.TxnOp {
	return &consul.TxnOp{Service: &consul.ServiceTxnOp{Verb: consul.ServiceDelete, Node: node,
		Service: consul.AgentService{ID: in.GUID, Service: ServiceName(in.Space, in.App)}}}
}

// CellServiceName is the Consul service every cell registers: the cell in
// the catalog, for operators to see (address, cell id). Its liveness is
// not a check of it but its key (CellKey, Presence).
const CellServiceName = "driftless-cell"

// CellServiceID is the id of one cell's service.
func CellServiceID(cell string) string { return CellServiceName + ":" + cell }

// CellOp registers a cell's service under its node (CellNode).
func CellOp(cell, address string) *consul.TxnOp {
	return &consul.TxnOp{Service: &consul.ServiceTxnOp{Verb: consul.ServiceSet, Node: CellNode(cell), Service: consul.AgentService{
		ID: CellServiceID(cell), Service: CellServiceName, Tags: []string{Tag}, Address: address,
		Meta: map[string]string{MetaCell: cell},
	}}}
}

// NodeOp registers a cell's node: every batch of its Writer starts with it,
// so that a catalog that lost the node (a Consul without its data) gets it
// back with the first write; Consul skips a node that did not change.
func NodeOp(cell, address string) *consul.TxnOp {
	return &consul.TxnOp{Node: &consul.NodeTxnOp{Verb: consul.NodeSet, Node: consul.Node{
		Node: CellNode(cell), Address: address, Meta: map[string]string{MetaCell: cell},
	}}}
}

// CheckID is the id of an instance's health check.
func CheckID(guid string) string { return "driftless:" + guid }

// IsDriftless reports whether a service with these tags was registered by
// driftless (an app instance, a cell or a controller).
func IsDriftless(tags []string) bool { return slices.Contains(tags, Tag) }

// IsApp reports whether a service with these tags is an app instance.
func IsApp(tags []string) bool { return slices.Contains(tags, AppTag) }

// FromService reads an instance back from a registered service. ok is false
// for services that are not app instances of driftless.
func FromService(s *consul.AgentService) (in model.Endpoint, ok bool) {
	if s == nil || !IsApp(s.Tags) {
		return model.Endpoint{}, false
	}
	in = model.Endpoint{
		InstanceRef: model.InstanceRef{
			GUID:      s.ID,
			Space:     s.Meta[MetaSpace],
			App:       s.Meta[MetaApp],
			ReleaseID: s.Meta[MetaRelease],
			Commit:    s.Meta[MetaCommit],
			Process:   s.Meta[MetaProcess],
		},
		Cell:    s.Meta[MetaCell],
		Balance: model.Balance(s.Meta[MetaBalance]),
		Address: s.Address,
		Port:    s.Port,
	}
	in.Index, _ = strconv.Atoi(s.Meta[MetaIndex])
	for _, t := range s.Tags {
		if r, found := strings.CutPrefix(t, RouteTagPrefix); found {
			in.Routes = append(in.Routes, r)
		} else if r, found := strings.CutPrefix(t, HTTP2TagPrefix); found {
			in.HTTP2Routes = append(in.HTTP2Routes, r)
		}
	}
	return in, true
}

// FromHealthEntry reads an instance from a /v1/health/service entry; the
// service address falls back to the node's address as Consul does.
func FromHealthEntry(e *consul.ServiceEntry) (model.Endpoint, bool) {
	in, ok := FromService(e.Service)
	if ok && in.Address == "" && e.Node != nil {
		in.Address = e.Node.Address
	}
	return in, ok
}
