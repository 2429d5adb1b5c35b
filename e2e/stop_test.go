package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/driftless/driftless/internal/testenv"
)

// Instances stopped while they are still starting (network being
// attached, container being created) are stopped whole: nothing of them
// stays on the host (the harness checks processes, network attachments
// and NAT rules once the platform has stopped).
func TestStopWhileStarting(t *testing.T) {
	p := startDev(t)
	p.write(map[string]string{"apps/hello/manifest.yml": helloManifest(6, "Hello")})
	p.addHello("apps/hello")
	p.commitAll("hello, six times")
	_, _ = p.client.Sync(context.Background(), false, 0)
	testenv.Eventually(t, 90*time.Second, 10*time.Millisecond, "a container of hello exists", func() error {
		if n := p.helloContainers(t); n == 0 {
			return fmt.Errorf("%d containers", n)
		}
		return nil
	})
	// At once: most of the six are still starting.
	p.write(map[string]string{"apps/hello/manifest.yml": helloManifest(1, "Hello")})
	p.commitAll("hello, once")
	if _, err := p.client.Sync(context.Background(), false, 0); err != nil {
		t.Fatal(err)
	}
	p.waitServing(t, 90*time.Second, 1, greetingIs("Hello"))
	testenv.Eventually(t, 30*time.Second, 200*time.Millisecond, "one container of hello is left", func() error {
		if n := p.helloContainers(t); n != 1 {
			return fmt.Errorf("%d containers", n)
		}
		return nil
	})
}

// helloContainers counts the containers of app hello.
func (p *platform) helloContainers(t testing.TB) int {
	n := 0
	for _, labels := range p.containers(t) {
		if labels["driftless.app"] == "hello" {
			n++
		}
	}
	return n
}
