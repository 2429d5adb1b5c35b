package e2e

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/driftless/driftless/agents/network"
	"github.com/driftless/driftless/internal/children"
	"github.com/driftless/driftless/internal/testenv"
)

// addWallProbe builds e2e/testdata/wallprobe into dir of the platform's
// repository with a manifest for the binary buildpack, routed at host.
func (p *platform) addWallProbe(dir, name, host string) {
	p.t.Helper()
	root, err := children.RepoRoot()
	if err != nil {
		p.t.Fatal(err)
	}
	out := filepath.Join(p.repo, dir, "wallprobe")
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		p.t.Fatal(err)
	}
	cmd := exec.Command("go", "build", "-o", out, "./e2e/testdata/wallprobe")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		p.t.Fatalf("building wallprobe: %v\n%s", err, b)
	}
	p.write(map[string]string{dir + "/manifest.yml": `applications:
- name: ` + name + `
  memory: 64M
  disk_quota: 128M
  buildpacks: [binary_buildpack]
  command: ./wallprobe
  health-check-type: http
  health-check-http-endpoint: /health
  routes:
  - route: ` + host + `
`})
}

// dialFrom asks the wall probe at host (through the router) to open a TCP
// connection to addr from inside its instance.
func (p *platform) dialFrom(t *testing.T, host, addr string) string {
	t.Helper()
	code, body, err := p.get(host, "/dial?addr="+url.QueryEscape(addr))
	if err != nil || code != 200 {
		t.Fatalf("asking %s to dial %s: %d %q %v", host, addr, code, body, err)
	}
	return strings.TrimSpace(string(body))
}

// flagValue is the value of flag in the platform's command line.
func (p *platform) flagValue(flag string) string {
	if i := slices.Index(p.cmd.Args, flag); i >= 0 && i+1 < len(p.cmd.Args) {
		return p.cmd.Args[i+1]
	}
	return ""
}

// TestWalls deploys two wall probes with dev's PostgreSQL and checks, from
// inside one probe's container, that the host and the other app are walled
// off (issue 16): the other instance's address, the bridge gateway's
// platform ports (API, NATS, Consul, and a port the test listens on on
// every address of the host), and — once the test gives the instance's
// network namespace a route for 127.0.0.0/8 through the gateway, as a
// container with network-admin rights could — the host's 127.0.0.1
// Consul, NATS and API all time out (dropped), while the router reaches
// both apps and PostgreSQL on the gateway stays reachable.
func TestWalls(t *testing.T) {
	p := startDev(t, "--postgres")
	p.addWallProbe("apps/walla", "walla", "walla.apps.localhost")
	p.addWallProbe("apps/wallb", "wallb", "wallb.apps.localhost")
	p.commitAll("two wall probes")
	_, _ = p.client.Sync(context.Background(), false, 0)

	ident := map[string]string{}
	for _, host := range []string{"walla.apps.localhost", "wallb.apps.localhost"} {
		testenv.Eventually(t, 120*time.Second, 300*time.Millisecond, host+" serves through the router", func() error {
			code, body, err := p.get(host, "/")
			if err != nil || code != 200 || !strings.Contains(string(body), "ip=10.") {
				return fmt.Errorf("%d %q %v", code, body, err)
			}
			ident[host] = strings.TrimSpace(string(body))
			return nil
		})
	}
	field := func(host, key string) string {
		for _, f := range strings.Fields(ident[host]) {
			if v, ok := strings.CutPrefix(f, key+"="); ok {
				return v
			}
		}
		t.Fatalf("no %s in %q", key, ident[host])
		return ""
	}
	const a = "walla.apps.localhost"
	aGUID, aIP, bIP := field(a, "guid"), field(a, "ip"), field("wallb.apps.localhost", "ip")
	gw, _, err := network.Gateway(p.subnet)
	if err != nil {
		t.Fatal(err)
	}
	// A host service on every address of the host, as a platform port
	// bound to 0.0.0.0 would be.
	ln, err := net.Listen("tcp4", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	anyPort := fmt.Sprint(ln.Addr().(*net.TCPAddr).Port)
	port := func(addr string) string { _, pt, _ := net.SplitHostPort(addr); return pt }
	apiPort, natsPort, consulPort := port(p.api), port(p.flagValue("--nats")), port(p.consul)

	check := func(what, addr, want string) {
		t.Helper()
		if got := p.dialFrom(t, a, addr); got != want {
			t.Errorf("%s (%s) from inside walla: %s; want %s", what, addr, got, want)
		}
	}
	// The probe works: its own address and PostgreSQL on the gateway.
	check("its own instance", net.JoinHostPort(aIP, "8080"), "connected")
	check("PostgreSQL on the gateway", net.JoinHostPort(gw, "5432"), "connected")
	// Walled off.
	check("the other app's instance", net.JoinHostPort(bIP, "8080"), "timeout")
	check("a host service on every address, at the gateway", net.JoinHostPort(gw, anyPort), "timeout")
	check("the API port at the gateway", net.JoinHostPort(gw, apiPort), "timeout")
	check("the NATS port at the gateway", net.JoinHostPort(gw, natsPort), "timeout")
	check("the Consul port at the gateway", net.JoinHostPort(gw, consulPort), "timeout")

	// Martian loopback: walla's namespace sends 127.0.0.0/8 to the gateway.
	ns := ""
	out, _ := exec.Command("ip", "netns", "list").Output()
	for _, l := range strings.Split(string(out), "\n") {
		if f := strings.Fields(l); len(f) > 0 && strings.HasSuffix(f[0], "-"+aGUID) {
			ns = f[0]
		}
	}
	if ns == "" {
		t.Fatalf("no network namespace of walla's instance %s in:\n%s", aGUID, out)
	}
	script := "echo 1 > /proc/sys/net/ipv4/conf/eth0/route_localnet && echo 1 > /proc/sys/net/ipv4/conf/all/route_localnet && " +
		"ip addr del 127.0.0.1/8 dev lo && ip route add 127.0.0.0/8 via " + gw + " dev eth0"
	if b, err := exec.Command("ip", "netns", "exec", ns, "sh", "-c", script).CombinedOutput(); err != nil {
		t.Fatalf("routing 127.0.0.0/8 through the gateway in %s: %v\n%s", ns, err, b)
	}
	check("the host's 127.0.0.1 Consul", p.consul, "timeout")
	check("the host's 127.0.0.1 NATS", p.flagValue("--nats"), "timeout")
	check("the host's 127.0.0.1 API", p.api, "timeout")
	// Still served, and still reaching PostgreSQL.
	for _, host := range []string{a, "wallb.apps.localhost"} {
		if code, body, err := p.get(host, "/"); err != nil || code != 200 {
			t.Errorf("%s through the router after the probes: %d %q %v", host, code, body, err)
		}
	}
	check("PostgreSQL on the gateway, at the end", net.JoinHostPort(gw, "5432"), "connected")
}
