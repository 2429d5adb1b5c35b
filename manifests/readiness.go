package manifests

import (
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/driftless/driftless/model"
)

// The readiness check (readiness-health-check-*) and the liveness check's
// interval (health-check-interval), as Cloud Foundry spells them.

// readReadinessType reads readiness-health-check-type: port, http or
// process (none is not one: Cloud Foundry refuses it there too).
func readReadinessType(a *appState, k, v *yaml.Node) {
	if t, ok := readinessType(a, k, v); ok {
		a.app.HealthCheck.Readiness.Type = t
	}
}

// readinessType reads a readiness check's type.
func readinessType(a *appState, k, v *yaml.Node) (model.HealthCheckType, bool) {
	s, ok := a.str(k, v, false)
	if !ok {
		return "", false
	}
	switch t := model.HealthCheckType(s); t {
	case model.HealthPort, model.HealthHTTP, model.HealthProcess:
		return t, true
	}
	a.errorf(resolve(v), "readiness-health-check-type %q is not one of port, http, process", s)
	return "", false
}

// readReadinessEndpoint reads readiness-health-check-http-endpoint.
func readReadinessEndpoint(a *appState, k, v *yaml.Node) {
	s, ok := a.str(k, v, false)
	if !ok {
		return
	}
	if !strings.HasPrefix(s, "/") {
		a.errorf(resolve(v), "readiness-health-check-http-endpoint %q must start with /", s)
		return
	}
	a.app.HealthCheck.Readiness.Endpoint = s
}

// finishReadiness applies what depends on several readiness attributes:
// an endpoint needs the http type, the http type defaults its endpoint
// to "/", and the other attributes mean nothing for a process check.
func (a *appState) finishReadiness() {
	rc := &a.app.HealthCheck.Readiness
	if pos, ok := a.app.Fields["readiness-health-check-http-endpoint"]; ok && rc.Type != model.HealthHTTP {
		kind := rc.Type
		if kind == "" {
			kind = model.HealthProcess
		}
		a.warnf(nodeAt(pos), "readiness-health-check-http-endpoint is only used when readiness-health-check-type is http (it is %s)", kind)
	}
	if rc.Type == model.HealthHTTP && rc.Endpoint == "" {
		rc.Endpoint = "/"
	}
	if !rc.Probed() {
		for _, key := range []string{"readiness-health-check-invocation-timeout", "readiness-health-check-interval"} {
			if pos, ok := a.app.Fields[key]; ok {
				a.warnf(nodeAt(pos), "%s is only used with readiness-health-check-type port or http", key)
			}
		}
		*rc = model.ReadinessCheck{Type: rc.Type}
	}
}
