package model

import "time"

// ReadinessCheck says how a cell decides that a running instance is ready
// for traffic (Cloud Foundry's readiness-health-check-*): an instance that
// fails it stays running but leaves the routers until it passes again; it
// is never restarted for it (the liveness HealthCheck does that). The zero
// value, like Type HealthProcess, means always ready.
type ReadinessCheck struct {
	// Type is port, http or process ("" is process: always ready).
	Type HealthCheckType `json:"type,omitempty"`
	// Endpoint is the HTTP path for HealthHTTP ("/" when empty).
	Endpoint string `json:"endpoint,omitempty"`
	// InvocationTimeoutSec bounds one probe (DefaultProbeTimeout when 0).
	InvocationTimeoutSec int `json:"invocation_timeout_sec,omitempty"`
	// IntervalSec is the time between probes (the platform's when 0).
	IntervalSec int `json:"interval_sec,omitempty"`
}

// Probed reports whether the check probes the instance (port or http):
// a process check (or none) is always ready.
func (r ReadinessCheck) Probed() bool { return r.Type == HealthPort || r.Type == HealthHTTP }

// Probe is the check as a HealthCheck, for agents/health's probes.
func (r ReadinessCheck) Probe() HealthCheck {
	return HealthCheck{Type: r.Type, Endpoint: r.Endpoint, InvocationTimeoutSec: r.InvocationTimeoutSec}
}

// Interval is the time between probes: IntervalSec, or platform when 0.
func (r ReadinessCheck) Interval(platform time.Duration) time.Duration {
	if r.IntervalSec > 0 {
		return time.Duration(r.IntervalSec) * time.Second
	}
	return platform
}

// Interval is the time between liveness probes of a running instance:
// IntervalSec (Cloud Foundry's health-check-interval), or platform when 0.
func (h HealthCheck) Interval(platform time.Duration) time.Duration {
	if h.IntervalSec > 0 {
		return time.Duration(h.IntervalSec) * time.Second
	}
	return platform
}

// Route protocols (a manifest route's protocol): how routers speak to an
// app's instances on that route.
const (
	// ProtocolHTTP1 is HTTP/1.1, the default.
	ProtocolHTTP1 = "http1"
	// ProtocolHTTP2 is HTTP/2 over cleartext (h2c, prior knowledge).
	ProtocolHTTP2 = "http2"
)
