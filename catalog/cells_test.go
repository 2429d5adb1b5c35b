package catalog_test

import (
	"errors"
	"slices"
	"testing"
	"time"

	consul "github.com/hashicorp/consul/api"

	"github.com/driftless/driftless/catalog"
	"github.com/driftless/driftless/internal/testenv"
	"github.com/driftless/driftless/model"
)

func TestCellSessionTTL(t *testing.T) {
	for _, tc := range []struct{ ttl, want time.Duration }{
		{15 * time.Second, 10 * time.Second},
		{30 * time.Second, 15 * time.Second},
		{2 * time.Minute, time.Minute},
		{time.Second, 10 * time.Second},
	} {
		if got := catalog.CellSessionTTL(tc.ttl); got != tc.want {
			t.Errorf("CellSessionTTL(%s) = %s, want %s", tc.ttl, got, tc.want)
		}
	}
}

func TestLiveCells(t *testing.T) {
	pairs := consul.KVPairs{
		{Key: catalog.CellKey("a"), Session: "s1"},
		{Key: catalog.CellKey("b")}, // not held: a cell that lost its session
		{Key: catalog.CellsPrefix},  // the prefix itself
		{Key: catalog.AppKey("dev", "x"), Session: "s2"},
	}
	live := catalog.LiveCells(pairs)
	if len(live) != 1 || !live["a"] {
		t.Fatalf("LiveCells = %v, want only a", live)
	}
}

// TestPresence holds, adopts, loses and takes again a cell's key in a
// real Consul.
func TestPresence(t *testing.T) {
	c := testenv.StartConsul(t)
	live := func() map[string]bool {
		t.Helper()
		pairs, _, err := c.Client.KV().List(catalog.CellsPrefix, nil)
		if err != nil {
			t.Fatal(err)
		}
		return catalog.LiveCells(pairs)
	}
	held := func() string {
		t.Helper()
		pair, _, err := c.Client.KV().Get(catalog.CellKey("cell-a"), nil)
		if err != nil || pair == nil {
			t.Fatalf("the cell's key: %v, %v", pair, err)
		}
		return pair.Session
	}

	p := catalog.NewPresence(c.Client, "cell-a", "10.0.0.1", 15*time.Second)
	if err := p.Renew(); !errors.Is(err, catalog.ErrPresenceLost) {
		t.Fatalf("Renew before Hold = %v, want ErrPresenceLost", err)
	}
	if err := p.Hold(); err != nil {
		t.Fatal(err)
	}
	if got := live(); !got["cell-a"] || len(got) != 1 {
		t.Fatalf("live cells after Hold: %v", got)
	}
	session := held()
	info, _, err := c.Client.Session().Info(session, nil)
	if err != nil || info == nil || info.TTL != "10s" || info.Behavior != consul.SessionBehaviorDelete {
		t.Fatalf("the cell's session: %+v (%v), want TTL 10s and behavior delete", info, err)
	}
	if err := p.Renew(); err != nil {
		t.Fatalf("Renew: %v", err)
	}

	// A restarted agent adopts the session still holding the key: the
	// cell never stops being live.
	again := catalog.NewPresence(c.Client, "cell-a", "10.0.0.1", 15*time.Second)
	if err := again.Hold(); err != nil {
		t.Fatal(err)
	}
	if got := held(); got != session {
		t.Fatalf("a second Hold took session %s, want the live %s adopted", got, session)
	}

	// The session gone (lapsed, or its node failed): the key goes with it,
	// Renew says so and Hold takes it again with a new session.
	if _, err := c.Client.Session().Destroy(session, nil); err != nil {
		t.Fatal(err)
	}
	if got := live(); len(got) != 0 {
		t.Fatalf("live cells after the session ended: %v, want none", got)
	}
	if err := p.Renew(); !errors.Is(err, catalog.ErrPresenceLost) {
		t.Fatalf("Renew after the session ended = %v, want ErrPresenceLost", err)
	}
	if err := p.Hold(); err != nil {
		t.Fatalf("Hold after the session ended: %v", err)
	}
	if got := held(); got == "" || got == session {
		t.Fatalf("the key is held by %q after Hold, want a new session", got)
	}
	if got := live(); !got["cell-a"] {
		t.Fatalf("live cells after Hold again: %v", got)
	}

	// The key deleted under a live session (by hand): Renew notices.
	if _, err := c.Client.KV().Delete(catalog.CellKey("cell-a"), nil); err != nil {
		t.Fatal(err)
	}
	if err := p.Renew(); !errors.Is(err, catalog.ErrPresenceLost) {
		t.Fatalf("Renew with the key deleted = %v, want ErrPresenceLost", err)
	}
	if err := p.Hold(); err != nil || !live()["cell-a"] {
		t.Fatalf("Hold with the key deleted: %v, live %v", err, live())
	}
}

// TestForgetCells: of three cells with instances registered, the one that
// holds its key and the one the controller still hears keep their nodes;
// the silent one without a key loses its node and its instances.
func TestForgetCells(t *testing.T) {
	c := testenv.StartConsul(t)
	for _, cell := range []string{"alive", "heard", "gone"} {
		w := catalog.NewWriter(c.Client, cell, "127.0.0.1")
		in := model.Endpoint{InstanceRef: model.InstanceRef{GUID: "i-" + cell, Space: "dev", App: "hello"}, Cell: cell, Address: "127.0.0.1", Port: 40000}
		ops := append(consul.TxnOps{catalog.CellOp(cell, "127.0.0.1")}, catalog.InstanceOps(catalog.CellNode(cell), in, model.HealthCheck{Type: "port"})...)
		if err := w.Apply(ops); err != nil {
			t.Fatal(err)
		}
	}
	if err := catalog.NewPresence(c.Client, "alive", "127.0.0.1", time.Minute).Hold(); err != nil {
		t.Fatal(err)
	}
	forgotten, err := catalog.ForgetCells(c.Client, func(cell string) bool { return cell == "heard" })
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(forgotten, []string{"gone"}) {
		t.Fatalf("forgot %v, want [gone]", forgotten)
	}
	entries, _, err := c.Client.Health().Service(catalog.ServiceName("dev", "hello"), "", false, nil)
	if err != nil {
		t.Fatal(err)
	}
	var left []string
	for _, e := range entries {
		left = append(left, e.Service.ID)
	}
	slices.Sort(left)
	if !slices.Equal(left, []string{"i-alive", "i-heard"}) {
		t.Fatalf("instances left %v, want i-alive and i-heard", left)
	}
	if again, err := catalog.ForgetCells(c.Client, func(string) bool { return false }); err != nil || !slices.Equal(again, []string{"heard"}) {
		t.Fatalf("second pass forgot %v (%v), want [heard]", again, err)
	}
}
