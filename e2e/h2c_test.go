package e2e

import (
	"context"
	"strings"
	"testing"
	"time"
)

// TestH2CRoute deploys an app that speaks only HTTP/2 over cleartext on a
// route declared with protocol: http2: the router (spoken to in HTTP/1.1)
// reaches it over h2c, and the app saw HTTP/2.0.
func TestH2CRoute(t *testing.T) {
	p := startDev(t)
	p.addReadyApp("apps/grpc")
	p.write(map[string]string{"apps/grpc/manifest.yml": `applications:
- name: grpc
  memory: 64M
  disk_quota: 128M
  buildpacks: [binary_buildpack]
  command: ./readyapp
  health-check-type: port
  env:
    MODE: h2c
  routes:
  - route: grpc.apps.localhost
    protocol: http2
`})
	p.commitAll("an app that speaks only h2c")
	_, _ = p.client.Sync(context.Background(), false, 0)
	p.waitAnswer(t, 120*time.Second, "grpc.apps.localhost", "proto=HTTP/2.0")
	for range 5 { // kept-alive connections to the router and to the instance
		code, body, err := p.get("grpc.apps.localhost", "/again")
		if err != nil || code != 200 || !strings.Contains(string(body), "proto=HTTP/2.0") {
			t.Fatalf("GET again: %d %q %v", code, body, err)
		}
	}
}
