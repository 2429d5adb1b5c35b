package e2e

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/driftless/driftless/internal/testenv"
)

// leader returns the id of the controller that says it leads.
func (c *cluster) leader() (string, error) {
	for id, addr := range c.apis {
		st, err := c.apiClient(addr).Status(context.Background())
		if err == nil && st.Controller.Role == "leader" {
			return id, nil
		}
	}
	return "", fmt.Errorf("no controller leads")
}

// other is the id of a controller other than id.
func (c *cluster) other(id string) string {
	for other := range c.apis {
		if other != id {
			return other
		}
	}
	return ""
}

// waitLeads waits until controller id says it leads.
func (c *cluster) waitLeads(t testing.TB, id string, timeout time.Duration) {
	t.Helper()
	testenv.Eventually(t, timeout, 100*time.Millisecond, id+" takes over", func() error {
		st, err := c.apiClient(c.apis[id]).Status(context.Background())
		if err != nil {
			return err
		}
		if st.Controller.Role != "leader" {
			return fmt.Errorf("%s is %s", id, st.Controller.Role)
		}
		return nil
	})
}

// TestControllerFailover runs two controllers: one leads, the other stands
// by (and says so). Killing the leader with SIGKILL hands the lock to the
// other within 15 s; it restarts no instance and applies the next commit.
func TestControllerFailover(t *testing.T) {
	c := startCluster(t, []string{"a"}, 2)
	c.addHello("apps/hello")
	c.write(map[string]string{"apps/hello/manifest.yml": helloManifest(2, "Hi")})
	c.commit("two instances")
	c.waitRunning(t, 120*time.Second, 2, nil)

	first, err := c.leader()
	if err != nil {
		t.Fatal(err)
	}
	standby := c.other(first)
	st, err := c.apiClient(c.apis[standby]).Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.Controller.Role != "standby" || st.Controller.Leader != first {
		t.Fatalf("standby says %+v, want standby naming %s", st.Controller, first)
	}
	if _, err := c.apiClient(c.apis[standby]).Apps(context.Background(), "dev"); err == nil {
		t.Fatal("a standby answered /v1/apps")
	}
	before := c.containers()
	slices.Sort(before)

	killed := time.Now()
	c.ctls[first].kill()
	c.waitLeads(t, standby, 20*time.Second)
	t.Logf("%s took over %s after %s was killed", standby, time.Since(killed).Round(100*time.Millisecond), first)
	c.client = c.apiClient(c.apis[standby])

	time.Sleep(6 * time.Second) // warm-up and a few convergence rounds
	after := c.containers()
	slices.Sort(after)
	if !slices.Equal(before, after) {
		t.Fatalf("containers changed across the failover:\nbefore %v\nafter  %v", before, after)
	}
	c.write(map[string]string{"apps/hello/manifest.yml": helloManifest(3, "Hi")})
	c.commit("three instances")
	c.waitRunning(t, 60*time.Second, 3, nil)
	after = c.containers()
	for _, id := range before {
		if !slices.Contains(after, id) {
			t.Fatalf("container %s restarted by a scale-up after the failover", id)
		}
	}
}
