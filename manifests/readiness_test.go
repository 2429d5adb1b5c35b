package manifests

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/driftless/driftless/model"
)

// TestParseReadiness reads the readiness check, the liveness interval and
// route protocols.
func TestParseReadiness(t *testing.T) {
	base := model.HealthCheck{Type: model.HealthPort, TimeoutSec: model.DefaultStartTimeout}
	with := func(f func(*model.HealthCheck)) model.HealthCheck { hc := base; f(&hc); return hc }
	tests := []struct {
		name      string
		attrs     string // the app's attributes besides name, indented by 4
		want      model.HealthCheck
		protocols []string // of the app's routes, in order
		diags     []string // every diagnostic's text (substring), in order
	}{
		{"nothing: always ready, platform interval", "", base, nil, nil},
		{"health-check-interval", "    health-check-interval: 7\n",
			with(func(h *model.HealthCheck) { h.IntervalSec = 7 }), nil, nil},
		{"http readiness with everything", "    readiness-health-check-type: http\n    readiness-health-check-http-endpoint: /ready\n" +
			"    readiness-health-check-invocation-timeout: 3\n    readiness-health-check-interval: 4\n",
			with(func(h *model.HealthCheck) {
				h.Readiness = model.ReadinessCheck{Type: model.HealthHTTP, Endpoint: "/ready", InvocationTimeoutSec: 3, IntervalSec: 4}
			}), nil, nil},
		{"http readiness defaults its endpoint", "    readiness-health-check-type: http\n",
			with(func(h *model.HealthCheck) { h.Readiness = model.ReadinessCheck{Type: model.HealthHTTP, Endpoint: "/"} }), nil, nil},
		{"port readiness", "    readiness-health-check-type: port\n    readiness-health-check-interval: 2\n",
			with(func(h *model.HealthCheck) { h.Readiness = model.ReadinessCheck{Type: model.HealthPort, IntervalSec: 2} }), nil, nil},
		{"process readiness drops the rest", "    readiness-health-check-type: process\n    readiness-health-check-interval: 2\n",
			with(func(h *model.HealthCheck) { h.Readiness = model.ReadinessCheck{Type: model.HealthProcess} }), nil,
			[]string{"warning: readiness-health-check-interval is only used with readiness-health-check-type port or http"}},
		{"endpoint without http type", "    readiness-health-check-http-endpoint: /ready\n", base, nil,
			[]string{"warning: readiness-health-check-http-endpoint is only used when readiness-health-check-type is http (it is process)"}},
		{"none is no readiness type", "    readiness-health-check-type: none\n", base, nil,
			[]string{`error: readiness-health-check-type "none" is not one of port, http, process`}},
		{"endpoint must be a path", "    readiness-health-check-type: http\n    readiness-health-check-http-endpoint: ready\n",
			with(func(h *model.HealthCheck) { h.Readiness = model.ReadinessCheck{Type: model.HealthHTTP, Endpoint: "/"} }), nil,
			[]string{`error: readiness-health-check-http-endpoint "ready" must start with /`}},
		{"intervals are positive", "    health-check-interval: 0\n    readiness-health-check-type: port\n    readiness-health-check-interval: -1\n",
			with(func(h *model.HealthCheck) { h.Readiness = model.ReadinessCheck{Type: model.HealthPort} }), nil,
			[]string{"error: health-check-interval must be more than 0 seconds, not 0", "error: readiness-health-check-interval must be more than 0 seconds, not -1"}},
		{"route protocols", "    routes:\n    - route: a.example.com\n    - {route: b.example.com, protocol: http2}\n" +
			"    - {route: c.example.com, protocol: http1}\n", base, []string{"http1", "http2", "http1"}, nil},
		{"tcp stays a warning", "    routes:\n    - {route: t.example.com, protocol: tcp}\n", base, []string{"tcp"},
			[]string{"warning: route protocol tcp is not supported yet"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := Parse("m.yml", []byte("applications:\n  - name: app\n"+tc.attrs), nil)
			var diags []string
			for _, d := range m.Diagnostics {
				diags = append(diags, d.Diagnostic())
			}
			if len(diags) != len(tc.diags) {
				t.Fatalf("diagnostics %q, want %q", diags, tc.diags)
			}
			for i, want := range tc.diags {
				if !strings.Contains(diags[i], want) {
					t.Fatalf("diagnostic %d is %q, want %q", i, diags[i], want)
				}
			}
			if len(m.Apps) != 1 {
				if slices.ContainsFunc(tc.diags, func(d string) bool { return strings.HasPrefix(d, "error") }) {
					return
				}
				t.Fatalf("apps: %+v", m.Apps)
			}
			if got := m.Apps[0].HealthCheck; !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("health check %+v, want %+v", got, tc.want)
			}
			var protocols []string
			for _, r := range m.Apps[0].Routes {
				protocols = append(protocols, r.Protocol)
			}
			if !slices.Equal(protocols, tc.protocols) {
				t.Fatalf("route protocols %q, want %q", protocols, tc.protocols)
			}
		})
	}
}
