package e2e

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/driftless/driftless/catalog"
	"github.com/driftless/driftless/internal/children"
	"github.com/driftless/driftless/internal/testenv"
)

// Consul killed and started again empty (a dev agent keeps nothing):
// routers keep serving from their last table meanwhile; the agent
// registers its cell and instances again, without restarting them; the
// controller leads again and applies the next commit. The Consul runs
// with ACLs and default deny; dev's token (CONSUL_HTTP_TOKEN) is minted
// again with the same secret when Consul comes back, as the operator of a
// Consul that keeps nothing would.
func TestConsulRestart(t *testing.T) {
	testenv.RequireRoot(t)
	addr, dir := freeAddr(t), t.TempDir()
	// With ACLs, default deny; the token dev is given is minted again,
	// with the same secret, when the Consul (in memory) starts again.
	mgmt, devToken := newSecret(t), newSecret(t)
	var consul *children.Process
	start := func() {
		within(t, 45*time.Second, func(ctx context.Context) (err error) {
			consul, err = children.StartConsul(ctx, children.ConsulOptions{HTTPAddr: addr, LogPath: filepath.Join(dir, "consul.log"),
				ACL: &children.ConsulACL{ManagementToken: mgmt, ConfigDir: dir}})
			if err != nil {
				return err
			}
			return mintDevToken(ctx, addr, mgmt, devToken)
		})
	}
	start()
	t.Cleanup(func() { _ = consul.Stop(10 * time.Second) })
	t.Setenv("CONSUL_HTTP_TOKEN", devToken) // dev reads its token there
	p := startDev(t, "--consul", addr)      // dev uses the Consul that answers there
	p.consul, p.consulToken = addr, mgmt

	before := p.deployHello(t, 2, "Hello")

	consul.Kill()
	time.Sleep(time.Second) // the router's blocking query has failed
	if down, err := p.sample(helloHost, 16); err != nil || !slices.Equal(guids(down), guids(before)) {
		t.Fatalf("with Consul down, the router answers from %v (%v); want its last table's %v", guids(down), err, guids(before))
	}
	start()

	testenv.Eventually(t, 60*time.Second, 300*time.Millisecond, "hello registered in the new Consul", func() error {
		services, err := p.consulServices()
		if err != nil {
			return err
		}
		if !slices.Contains(services, catalog.ServiceName("dev", "hello")) {
			return errors.New("not yet")
		}
		return nil
	})
	after := p.waitServing(t, 60*time.Second, 2, greetingIs("Hello"))
	if !slices.Equal(guids(after), guids(before)) {
		t.Fatalf("instances restarted by a Consul restart: %v → %v", guids(before), guids(after))
	}

	p.write(map[string]string{"apps/hello/manifest.yml": helloManifest(3, "Hello")})
	p.commitAll("hello, three times")
	p.waitServing(t, 90*time.Second, 3, greetingIs("Hello"))
}

// NATS restarted (it keeps nothing): the controller, the agent and their
// subscriptions come back by themselves; the running instances are not
// touched, and the next commit reaches the cell.
func TestNATSRestart(t *testing.T) {
	c := startCluster(t, []string{"a"}, 1)
	c.addHello("apps/hello")
	c.write(map[string]string{"apps/hello/manifest.yml": helloManifest(2, "Hi")})
	c.commit("two instances")
	c.waitRunning(t, 120*time.Second, 2, nil)
	before := c.containers()
	slices.Sort(before)

	c.restartNATS(2 * time.Second)

	c.write(map[string]string{"apps/hello/manifest.yml": helloManifest(3, "Hi")})
	c.commit("three instances")
	c.waitRunning(t, 90*time.Second, 3, nil)
	after := c.containers()
	for _, id := range before {
		if !slices.Contains(after, id) {
			t.Fatalf("container %s of before the NATS restart is gone: %v → %v", id, before, after)
		}
	}
}

// containerd killed and started again on the same state: the instances
// kept running under their shims, and the agent does not take the
// broken watch of their exits for a crash: nothing is restarted.
func TestContainerdRestart(t *testing.T) {
	testenv.RequireRoot(t)
	dir := testenv.ShortTempDir(t, "dl-ctrd-")
	var ctrd *children.Process
	var addr string
	start := func() {
		within(t, 45*time.Second, func(ctx context.Context) (err error) {
			ctrd, addr, err = children.StartContainerd(ctx, children.ContainerdOptions{Dir: dir})
			return err
		})
	}
	start()
	t.Cleanup(func() { _ = ctrd.Stop(15 * time.Second) })
	p := startDev(t, "--containerd", addr) // dev uses the containerd that answers there
	p.sock = addr

	before := p.deployHello(t, 2, "Hello")

	ctrd.Kill()
	time.Sleep(time.Second)
	start()
	testenv.Eventually(t, 30*time.Second, 300*time.Millisecond, "containerd lists the instances again", func() error {
		if n := p.helloContainers(t); n != 2 {
			return fmt.Errorf("%d containers", n)
		}
		return nil
	})
	time.Sleep(5 * time.Second) // a few rounds of the agent's and the controller's loops
	after := p.waitServing(t, 30*time.Second, 2, greetingIs("Hello"))
	if !slices.Equal(guids(after), guids(before)) {
		t.Fatalf("instances replaced after a containerd restart: %v → %v", guids(before), guids(after))
	}
	if crashed := eventsOf(t, p.client, "crashed"); len(crashed) > 0 {
		t.Fatalf("a containerd restart was taken for crashes: %+v", crashed)
	}
}

// `driftless dev` stopped with Ctrl-C and started again on the same data
// (Consul's state is gone with it): the app containers kept running are
// adopted and serve on; none is restarted.
func TestDevRestart(t *testing.T) {
	p := startDev(t)
	before := p.deployHello(t, 2, "Hello")

	p.restart()
	after := p.waitServing(t, 60*time.Second, 2, greetingIs("Hello"))
	if !slices.Equal(guids(after), guids(before)) {
		t.Fatalf("instances replaced across a restart of dev: %v → %v", guids(before), guids(after))
	}
	time.Sleep(5 * time.Second) // the warm-up and a few convergence rounds
	if again := p.waitServing(t, 30*time.Second, 2, greetingIs("Hello")); !slices.Equal(guids(again), guids(before)) {
		t.Fatalf("instances replaced after the restart of dev: %v → %v", guids(before), guids(again))
	}
}

// deployHello commits app hello with n instances greeting g and waits
// until they all answer through the router.
func (p *platform) deployHello(t testing.TB, n int, g string) map[string]info {
	t.Helper()
	p.write(map[string]string{"apps/hello/manifest.yml": helloManifest(n, g)})
	p.addHello("apps/hello")
	p.commitAll(fmt.Sprintf("hello, %d instances", n))
	return p.waitServing(t, 120*time.Second, n, greetingIs(g))
}

// within runs f with a context that ends after d and fails the test on
// its error.
func within(t testing.TB, d time.Duration, f func(ctx context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	if err := f(ctx); err != nil {
		t.Fatal(err)
	}
}
