package e2e

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/driftless/driftless/api"
	"github.com/driftless/driftless/bus"
	"github.com/driftless/driftless/catalog"
	"github.com/driftless/driftless/internal/testenv"
	"github.com/driftless/driftless/model"
)

// TestEnginesCluster runs the platform on its engines as production runs
// them (docs/operations.md, "Production layout"): three Consul servers
// and a client agent per host, three NATS nodes with JetStream keeping
// the streams in three copies, two controllers and two cells. Under a
// load loop through the router it kills (SIGKILL) the Consul server that
// leads raft, the NATS node with the most clients, then the leading
// controller: no request fails, every process finds a surviving server,
// no instance is restarted or replaced, the events kept before the kills
// are still read, and a commit made afterwards is applied.
func TestEnginesCluster(t *testing.T) {
	c, e := startEngines(t, []string{"ea", "eb"}, 2)
	c.addHello("apps/hello")
	c.write(map[string]string{"apps/hello/manifest.yml": helloManifest(4, "Hi")})
	c.commit("four instances")
	before := c.waitRunning(t, 180*time.Second, 4, func(insts []api.Instance) error {
		if pc := perCell(insts); pc["ea"] != 2 || pc["eb"] != 2 {
			return fmt.Errorf("instances per cell %v, want 2 and 2", pc)
		}
		return nil
	})
	e.registeredByCell(t, before)
	containers := sorted(c.containers())
	placed := len(eventsOf(t, c.leaderClient(), model.EventPlaced))
	if placed < 4 {
		t.Fatalf("%d placed events before the kills, want at least 4", placed)
	}
	first := time.Now()

	l := startLoad(c.get, 8*time.Minute)

	// 1. The Consul server that leads raft.
	leader, err := e.consulLeader()
	if err != nil {
		t.Fatal(err)
	}
	e.consulServers[leader].kill()
	killed := time.Now()
	testenv.Eventually(t, 60*time.Second, 250*time.Millisecond, "another Consul server leads", func() error {
		now, err := e.consulLeader()
		if err == nil && now == leader {
			return fmt.Errorf("server %d still leads", leader+1)
		}
		return err
	})
	t.Logf("Consul server %d (leader) killed; a new leader after %s", leader+1, time.Since(killed).Round(100*time.Millisecond))
	e.settle(t, 10*time.Second)

	// 2. The NATS node with the most clients.
	clients := e.natsClients()
	victim, total := 0, 0
	for i, n := range clients {
		total += n
		if n > clients[victim] {
			victim = i
		}
	}
	if clients[victim] < 1 || slices.Contains(clients, -1) {
		t.Fatalf("NATS clients per node %v: want all three up, one with clients", clients)
	}
	streams, err := e.natsStreams(victim)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := streams[bus.EventStream]; !ok {
		t.Fatalf("NATS node %d holds no event stream: %v", victim+1, streams)
	}
	for name, n := range streams {
		if n != 3 {
			t.Errorf("stream %s is kept in %d copies, want 3 (--log-replicas 3)", name, n)
		}
	}
	e.natsNodes[victim].kill()
	killed = time.Now()
	testenv.Eventually(t, 60*time.Second, 250*time.Millisecond, "every NATS client reconnects to a surviving node", func() error {
		now := e.natsClients()
		sum := 0
		for i, n := range now {
			if i != victim {
				sum += n
			}
		}
		if now[victim] != -1 || sum < total {
			return fmt.Errorf("clients per node %v, want %d on the two others", now, total)
		}
		return nil
	})
	t.Logf("NATS node %d killed with %d of %d clients; all on the others after %s", victim+1, clients[victim], total,
		time.Since(killed).Round(100*time.Millisecond))
	e.settle(t, 10*time.Second)

	// 3. The leading controller.
	ctl, err := c.leader()
	if err != nil {
		t.Fatal(err)
	}
	standby := c.other(ctl)
	c.ctls[ctl].kill()
	killed = time.Now()
	c.waitLeads(t, standby, 60*time.Second)
	t.Logf("controller %s (leader) killed; %s leads after %s", ctl, standby, time.Since(killed).Round(100*time.Millisecond))
	c.client = c.apiClient(c.apis[standby])
	e.settle(t, 15*time.Second)

	requests := l.ok.Load()
	l.finish(t, "three engines' servers killed in turn")
	if requests < 200 {
		t.Errorf("only %d requests answered across the kills: the load loop did not load", requests)
	}

	// Nothing restarted: the same instances, in the same containers.
	after := c.waitRunning(t, 60*time.Second, 4, nil)
	if g := instanceGUIDs(after); !slices.Equal(g, instanceGUIDs(before)) {
		t.Errorf("instances changed across the kills:\nbefore %v\nafter  %v", instanceGUIDs(before), g)
	}
	for _, in := range after {
		i := slices.IndexFunc(before, func(b api.Instance) bool { return b.GUID == in.GUID })
		if i >= 0 && !in.Since.Equal(before[i].Since) {
			t.Errorf("instance %s is RUNNING since %s, was since %s: restarted", in.GUID, in.Since, before[i].Since)
		}
	}
	if now := c.containers(); !slices.Equal(sorted(now), containers) {
		t.Errorf("containers changed across the kills:\nbefore %v\nafter  %v", containers, sorted(now))
	}
	// The events kept before the kills are still there (streams of three
	// copies, one lost), and none says an instance was placed, stopped or
	// crashed since.
	evs := eventsRetried(t, c)
	if n := len(slices.DeleteFunc(slices.Clone(evs), func(ev model.Event) bool { return ev.Kind != model.EventPlaced })); n < placed {
		t.Errorf("%d placed events after the kills, %d before: the event stream lost some", n, placed)
	}
	for _, ev := range evs {
		if ev.Time.After(first) && ev.Kind == model.EventLeader {
			t.Logf("during the kills: %s %s", ev.Time.Format(time.TimeOnly), ev.Message) // a Consul election may cost the lock
		}
		if ev.Time.After(first) && slices.Contains([]model.EventKind{model.EventPlaced, model.EventStopped, model.EventCrashed, model.EventRestarted, model.EventEvacuated, model.EventCellLost}, ev.Kind) {
			t.Errorf("an instance moved during the kills: %+v", ev)
		}
	}

	// The next commit is applied by the controller that took over.
	c.write(map[string]string{"apps/hello/manifest.yml": helloManifest(4, "Hello")})
	c.commit("a new greeting")
	testenv.Eventually(t, 240*time.Second, time.Second, "the new release serves", func() error {
		seen, err := sampleVia(c.http, helloHost, 24)
		if err != nil {
			return err
		}
		for g, in := range seen {
			if in.Greeting != "Hello" {
				return fmt.Errorf("instance %s greets %q", g, in.Greeting)
			}
		}
		if len(seen) != 4 {
			return fmt.Errorf("%d instances answer", len(seen))
		}
		return nil
	})
}

// settle lets the load run for d after a kill, failing t as soon as the
// router stops answering.
func (e *engines) settle(t testing.TB, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if _, err := sampleVia(e.c.http, helloHost, 1); err != nil {
			t.Fatalf("the app stopped answering: %v", err)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// registeredByCell checks that each instance is in Consul's catalog under
// its cell's node (catalog.CellNode), where the cell's batched writes put
// it.
func (e *engines) registeredByCell(t testing.TB, insts []api.Instance) {
	t.Helper()
	mc, err := catalog.NewClient(e.c.consul, e.c.consulMgmt)
	if err != nil {
		t.Fatal(err)
	}
	entries, _, err := mc.Catalog().Service(catalog.ServiceName("dev", "hello"), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	node := map[string]string{}
	for _, en := range entries {
		node[en.ServiceID] = en.Node
	}
	for _, in := range insts {
		if node[in.GUID] != catalog.CellNode(in.Cell) {
			t.Errorf("instance %s of cell %s is registered on node %q, want %q", in.GUID, in.Cell, node[in.GUID], catalog.CellNode(in.Cell))
		}
	}
}

// eventsRetried reads every event from the leading controller, for up to
// 30 s: a read of a stream just after a NATS node was lost may find no
// responder for a moment (logged, so that it shows).
func eventsRetried(t testing.TB, c *cluster) []model.Event {
	t.Helper()
	var evs []model.Event
	var failures []string
	testenv.Eventually(t, 30*time.Second, time.Second, "the events are read", func() error {
		var err error
		if evs, err = c.leaderClient().Events(context.Background(), "", ""); err != nil {
			failures = append(failures, err.Error())
		}
		return err
	})
	if len(failures) > 0 {
		t.Logf("reading the events failed %d times before it worked: %q", len(failures), failures)
	}
	return evs
}

// instanceGUIDs are the instances' GUIDs, sorted.
func instanceGUIDs(insts []api.Instance) []string {
	set := map[string]bool{}
	for _, in := range insts {
		set[in.GUID] = true
	}
	return slices.Sorted(maps.Keys(set))
}

// sorted sorts s and returns it.
func sorted(s []string) []string { slices.Sort(s); return s }
