package catalog

import (
	"time"

	consul "github.com/hashicorp/consul/api"

	"github.com/driftless/driftless/model"
)

// ReadyCheckID is the id of an instance's readiness check (a TTL its
// agent keeps up to date).
func ReadyCheckID(guid string) string { return CheckID(guid) + ":ready" }

// ReadinessTTL is how long an instance's readiness check stays as its
// agent last set it: three probe rounds (interval and probe timeout), at
// least ten seconds. An agent that stops probing lets it go critical.
func ReadinessTTL(hc model.HealthCheck, interval time.Duration) time.Duration {
	rc := hc.Readiness
	return max(3*(rc.Interval(interval)+rc.Probe().ProbeTimeout()), 10*time.Second)
}

// readinessCheck is the TTL check of an instance with a port or http
// readiness check, passing unless in.NotReady; nil for other instances
// (always ready). It has no DeregisterCriticalServiceAfter: an instance
// that is not ready is kept, out of the routers, not removed.
func readinessCheck(in model.Endpoint, hc model.HealthCheck, interval time.Duration) *consul.AgentServiceCheck {
	if !hc.Readiness.Probed() {
		return nil
	}
	status, notes := consul.HealthPassing, "ready"
	if in.NotReady {
		status, notes = consul.HealthCritical, "not ready"
	}
	return &consul.AgentServiceCheck{
		CheckID: ReadyCheckID(in.GUID), Name: "driftless instance ready",
		TTL: ReadinessTTL(hc, interval).String(), Status: status, Notes: notes,
	}
}
