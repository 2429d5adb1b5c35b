// Package catalog is driftless's contract with Consul: the KV keys under
// which desired state and releases live, and the shape of the service
// registration that makes a running instance routable.
//
// Agents write registrations (agents/registry.go), the router reads them
// (router/registry), the controller reads and writes KV (reconciler/store.go),
// each with a Consul ACL token whose policy allows that and no more (acl.go).
package catalog

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

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

// Registration builds the Consul service registration for a running
// instance, with a health check Consul performs itself: an HTTP GET of the
// endpoint for "http", a TCP connect for "port". A "process" instance has
// no check of its own: the cell deregisters it the moment its process
// exits (and its registry sync removes any registration left without a
// process), so a TTL the cell renewed would say nothing more and cost
// Consul one call per instance per interval. No instance carries its
// cell's liveness either: routers drop the instances of a cell that no
// longer holds its key (cells.go), one write for the whole cell instead of
// a check per instance. The check starts passing because the agent registers
// an instance only after its own health check passed. An instance with a
// readiness check (port or http) has a second check, a TTL the agent
// passes while the instance is ready and fails while it is not
// (readinessCheck): Consul's passing filter, which the routers' blocking
// queries use, then leaves it out, and no deregistration follows, so the
// instance keeps running.
func Registration(in model.Endpoint, hc model.HealthCheck, interval time.Duration) *consul.AgentServiceRegistration {
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
	reg := &consul.AgentServiceRegistration{
		ID:      in.GUID,
		Name:    ServiceName(in.Space, in.App),
		Tags:    tags,
		Address: in.Address,
		Port:    in.Port,
		Meta:    meta,
	}
	if hc.Kind() != model.HealthProcess {
		check := &consul.AgentServiceCheck{
			CheckID:                        CheckID(in.GUID),
			Name:                           "driftless instance health",
			Status:                         consul.HealthPassing,
			DeregisterCriticalServiceAfter: "1m",
			Timeout:                        hc.ProbeTimeout().String(),
			Interval:                       hc.Interval(interval).String(),
		}
		hostPort := fmt.Sprintf("%s:%d", in.Address, in.Port)
		if hc.Kind() == model.HealthHTTP {
			check.HTTP = "http://" + hostPort + hc.Path()
		} else {
			check.TCP = hostPort
		}
		reg.Checks = append(reg.Checks, check)
	}
	if rc := readinessCheck(in, hc, interval); rc != nil {
		reg.Checks = append(reg.Checks, rc)
	}
	return reg
}

// CellServiceName is the Consul service every cell registers: the cell in
// the catalog, for operators to see (address, cell id). Its liveness is
// not a check of it but its key (CellKey, Presence).
const CellServiceName = "driftless-cell"

// CellServiceID is the id of one cell's service.
func CellServiceID(cell string) string { return CellServiceName + ":" + cell }

// CellRegistration is the service of one cell.
func CellRegistration(cell, address string) *consul.AgentServiceRegistration {
	return &consul.AgentServiceRegistration{
		ID: CellServiceID(cell), Name: CellServiceName, Tags: []string{Tag}, Address: address,
		Meta: map[string]string{MetaCell: cell},
	}
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
