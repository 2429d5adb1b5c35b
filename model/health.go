package model

import (
	"fmt"
	"time"
)

// HealthCheckType is how a cell decides that an instance is healthy.
type HealthCheckType string

// Health check types, as Cloud Foundry names them ("none" is read as
// HealthProcess by manifests).
const (
	// HealthPort connects over TCP to the instance's port.
	HealthPort HealthCheckType = "port"
	// HealthHTTP expects a 2xx answer to a GET of the endpoint.
	HealthHTTP HealthCheckType = "http"
	// HealthProcess only needs the process to be alive.
	HealthProcess HealthCheckType = "process"
	// DefaultHealthCheck is the type of an app that does not choose.
	DefaultHealthCheck = HealthPort
)

// ParseHealthCheckType reads a health check type as Cloud Foundry spells
// it: port, http, process, or none (process).
func ParseHealthCheckType(s string) (HealthCheckType, error) {
	switch HealthCheckType(s) {
	case HealthPort, HealthHTTP, HealthProcess:
		return HealthCheckType(s), nil
	case "none":
		return HealthProcess, nil
	}
	return "", fmt.Errorf("health check type %q is not one of port, http, process", s)
}

// DefaultProbeTimeout bounds one probe when the manifest does not (Cloud
// Foundry's health-check-invocation-timeout default).
const DefaultProbeTimeout = time.Second

// HealthCheck says how a cell decides that an instance is healthy.
type HealthCheck struct {
	// Type is HealthPort when empty.
	Type HealthCheckType `json:"type"`
	// Endpoint is the HTTP path for HealthHTTP ("/" when empty).
	Endpoint string `json:"endpoint,omitempty"`
	// TimeoutSec bounds how long an instance may take to become healthy
	// after it starts (DefaultStartTimeout when 0).
	TimeoutSec int `json:"timeout_sec"`
	// InvocationTimeoutSec bounds one probe (DefaultProbeTimeout when 0).
	InvocationTimeoutSec int `json:"invocation_timeout_sec,omitempty"`
	// IntervalSec is the time between liveness probes of a running
	// instance, seconds (health-check-interval; the platform's when 0).
	IntervalSec int `json:"interval_sec,omitempty"`
	// Readiness decides whether a running instance gets traffic
	// (readiness-health-check-*); its zero value is always ready.
	Readiness ReadinessCheck `json:"readiness,omitzero"`
}

// Kind is the check's type, DefaultHealthCheck when none is set.
func (h HealthCheck) Kind() HealthCheckType {
	if h.Type == "" {
		return DefaultHealthCheck
	}
	return h.Type
}

// Path is the HTTP path an http check probes.
func (h HealthCheck) Path() string {
	if h.Endpoint == "" {
		return "/"
	}
	return h.Endpoint
}

// ProbeTimeout bounds one probe.
func (h HealthCheck) ProbeTimeout() time.Duration {
	if h.InvocationTimeoutSec > 0 {
		return time.Duration(h.InvocationTimeoutSec) * time.Second
	}
	return DefaultProbeTimeout
}

// StartTimeout is how long an instance may take to become healthy.
func (h HealthCheck) StartTimeout() time.Duration {
	if h.TimeoutSec > 0 {
		return time.Duration(h.TimeoutSec) * time.Second
	}
	return DefaultStartTimeout * time.Second
}

// Balance is how routers spread requests over an app's instances.
type Balance string

// Balancing algorithms. An app that does not choose gets the router's
// default (BalanceDefault); a manifest that says round-robin gets it
// whatever the router's default.
const (
	BalanceDefault          Balance = ""
	BalanceRoundRobin       Balance = "round-robin"
	BalanceLeastConnections Balance = "least-connections"
)

// ParseBalance reads a balancing name as flags and Consul metadata spell
// it ("" is BalanceDefault). Manifests spell them as Cloud Foundry does
// and are read by manifests.
func ParseBalance(s string) (Balance, error) {
	switch b := Balance(s); b {
	case BalanceDefault, BalanceRoundRobin, BalanceLeastConnections:
		return b, nil
	}
	return "", fmt.Errorf("balancing %q is not round-robin or least-connections", s)
}
