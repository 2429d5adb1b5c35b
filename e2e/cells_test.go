package e2e

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/driftless/driftless/api"
	"github.com/driftless/driftless/internal/testenv"
	"github.com/driftless/driftless/model"
)

// appInstances returns hello's instances as the leading controller sees
// them, but those of lost cells.
func (c *cluster) appInstances() ([]api.Instance, error) {
	d, err := c.leaderClient().App(context.Background(), "dev", "hello")
	if err != nil {
		return nil, err
	}
	var out []api.Instance
	for _, in := range d.Instances {
		if in.State != model.StateLost {
			out = append(out, in)
		}
	}
	return out, nil
}

// waitRunning waits until hello has exactly n RUNNING instances, all
// answering through the router, and returns them.
func (c *cluster) waitRunning(t testing.TB, timeout time.Duration, n int, where func([]api.Instance) error) []api.Instance {
	t.Helper()
	var insts []api.Instance
	testenv.Eventually(t, timeout, 300*time.Millisecond, fmt.Sprintf("%d instances of hello run", n), func() error {
		var err error
		if insts, err = c.appInstances(); err != nil {
			return err
		}
		running := 0
		for _, in := range insts {
			if in.State == model.StateRunning {
				running++
			}
		}
		if running != n || len(insts) != n {
			return fmt.Errorf("%d instances, %d running", len(insts), running)
		}
		if where != nil {
			if err := where(insts); err != nil {
				return err
			}
		}
		seen, err := sampleVia(c.http, helloHost, 8*n)
		if err != nil {
			return err
		}
		if len(seen) != n {
			return fmt.Errorf("%d instances answer through the router", len(seen))
		}
		return nil
	})
	return insts
}

func perCell(insts []api.Instance) map[string]int {
	out := map[string]int{}
	for _, in := range insts {
		out[in.Cell]++
	}
	return out
}

// TestManyCells is the multi-cell acceptance: two cells in their own
// network namespaces, one controller, one router. Instances spread over
// both; a controller kill and restart restarts nothing; a cell killed with
// SIGKILL (its containers left running) has its instances placed on the
// other while the app keeps answering; when it comes back no duplicate
// remains.
func TestManyCells(t *testing.T) {
	c := startCluster(t, []string{"a", "b"}, 1)
	c.addHello("apps/hello")
	c.write(map[string]string{"apps/hello/manifest.yml": helloManifest(4, "Hi")})
	c.commit("four instances")

	insts := c.waitRunning(t, 120*time.Second, 4, func(insts []api.Instance) error {
		if pc := perCell(insts); pc["a"] != 2 || pc["b"] != 2 {
			return fmt.Errorf("instances per cell %v, want 2 and 2", pc)
		}
		return nil
	})
	before := c.containers()
	slices.Sort(before)

	// Controller kill -9 and restart: it rebuilds from heartbeats and
	// restarts nothing.
	c.ctls["ctl-1"].kill()
	time.Sleep(time.Second)
	restarted := time.Now()
	c.startController("ctl-1", "--lost-after", "4s")
	testenv.Eventually(t, 30*time.Second, 200*time.Millisecond, "the restarted controller leads", func() error {
		st, err := c.client.Status(context.Background())
		if err != nil {
			return err
		}
		if st.Controller.Role != "leader" {
			return fmt.Errorf("role %s", st.Controller.Role)
		}
		return nil
	})
	time.Sleep(8 * time.Second) // warm-up and a few convergence rounds
	after := c.containers()
	slices.Sort(after)
	if !slices.Equal(before, after) {
		t.Fatalf("containers changed across a controller restart:\nbefore %v\nafter  %v", before, after)
	}
	evs, err := c.client.Events(context.Background(), "dev", "hello")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range evs { // kept in JetStream: the first controller's are there too
		if (e.Kind == "placed" || e.Kind == "stopped") && e.Time.After(restarted) {
			t.Fatalf("the restarted controller acted: %+v", e)
		}
	}

	// Kill cell a's agent; its containers keep running.
	onA := map[string]bool{}
	for _, in := range insts {
		if in.Cell == "a" {
			onA[in.GUID] = true
		}
	}
	l := startLoad(c.get, 3*time.Minute)
	killed := time.Now()
	c.agents["a"].kill()
	c.waitRunning(t, 60*time.Second, 4, func(insts []api.Instance) error {
		if pc := perCell(insts); pc["b"] != 4 {
			return fmt.Errorf("instances per cell %v, want all 4 on b", pc)
		}
		return nil
	})
	t.Logf("all instances serve from cell b %s after cell a was killed", time.Since(killed).Round(100*time.Millisecond))
	// Cell a's registrations leave the routers (its session lapses, its key goes).
	testenv.Eventually(t, 40*time.Second, 500*time.Millisecond, "cell a's instances leave the router", func() error {
		seen, err := sampleVia(c.http, helloHost, 40)
		if err != nil {
			return err
		}
		for g := range seen {
			if onA[g] {
				return fmt.Errorf("instance %s of the lost cell still answers through the router", g)
			}
		}
		return nil
	})
	st, err := c.leaderClient().Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, cell := range st.Cells {
		if cell.ID == "a" && !cell.Lost {
			t.Fatal("cell a is not shown lost")
		}
	}
	if !slices.ContainsFunc(eventsAll(t, c.leaderClient()), func(e model.Event) bool { return e.Kind == "cell-lost" && e.Cell == "a" }) {
		t.Error("no cell-lost event for a")
	}
	if !slices.ContainsFunc(eventsAll(t, c.leaderClient()), func(e model.Event) bool { return e.Kind == "evacuated" }) {
		t.Error("no evacuated event")
	}

	// Cell a comes back and adopts its containers; the duplicates go.
	c.startAgent("a")
	testenv.Eventually(t, 60*time.Second, 300*time.Millisecond, "no duplicates remain", func() error {
		insts, err := c.appInstances()
		if err != nil {
			return err
		}
		if len(insts) != 4 {
			return fmt.Errorf("%d instances", len(insts))
		}
		if n := len(c.containers()); n != 4 {
			return fmt.Errorf("%d containers", n)
		}
		return nil
	})
	c.waitRunning(t, 30*time.Second, 4, nil)
	l.finish(t, "cell a killed and back")
}

func eventsAll(t testing.TB, c *api.Client) []model.Event {
	t.Helper()
	evs, err := c.Events(context.Background(), "", "")
	if err != nil {
		t.Fatal(err)
	}
	return evs
}
