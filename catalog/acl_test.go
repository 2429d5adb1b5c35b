package catalog_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	consul "github.com/hashicorp/consul/api"

	"github.com/driftless/driftless/catalog"
	"github.com/driftless/driftless/internal/testenv"
	"github.com/driftless/driftless/model"
)

// aclConsul starts a Consul with ACLs (default deny), gives its agent its
// own token, mints one token per role and returns a client per role and
// one without a token ("anonymous").
func aclConsul(t *testing.T) (*testenv.Consul, map[string]*consul.Client) {
	t.Helper()
	c := testenv.StartConsulACL(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := catalog.EnsureAgentToken(ctx, c.Client); err != nil {
		t.Fatal(err)
	}
	var grants []catalog.Grant
	clients := map[string]*consul.Client{}
	for _, r := range catalog.Roles {
		secret, err := catalog.NewSecret()
		if err != nil {
			t.Fatal(err)
		}
		grants = append(grants, catalog.Grant{Secret: secret, Description: "test " + string(r), Policies: []catalog.Policy{r.Policy()}})
		if clients[string(r)], err = catalog.NewClient(c.Addr, secret); err != nil {
			t.Fatal(err)
		}
	}
	if err := catalog.EnsureTokens(ctx, c.Client, grants...); err != nil {
		t.Fatal(err)
	}
	// Idempotent: minting them again changes nothing and fails nothing.
	before, _, err := c.Client.ACL().TokenList(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := catalog.EnsureTokens(ctx, c.Client, grants...); err != nil {
		t.Fatalf("minting the tokens again: %v", err)
	}
	if err := catalog.EnsureAgentToken(ctx, c.Client); err != nil {
		t.Fatalf("setting the agent's token again: %v", err)
	}
	after, _, err := c.Client.ACL().TokenList(nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(after) != len(before) {
		t.Fatalf("minting again made tokens: %d → %d", len(before), len(after))
	}
	var err2 error
	if clients["anonymous"], err2 = catalog.NewClient(c.Addr, ""); err2 != nil {
		t.Fatal(err2)
	}
	return c, clients
}

// TestRolePolicies runs, against a real Consul with ACLs and default
// deny, what each role does in Consul with its own token (each must be
// allowed) and what it must not do (each must be refused with 403).
func TestRolePolicies(t *testing.T) {
	c, cl := aclConsul(t)
	ctx := context.Background()
	ctl, cell, rtr, anon := cl["controller"], cl["cell"], cl["router"], cl["anonymous"]
	// The management token sets the scene: desired state and a sleeper.
	mkv := catalog.NewKV(c.Client)
	if err := mkv.Put(ctx, catalog.AppKey("dev", "hello"), map[string]int{"instances": 1}); err != nil {
		t.Fatal(err)
	}
	if err := mkv.Put(ctx, catalog.SleepingKey("dev", "sleepy"), map[string]int{"instances": 1}); err != nil {
		t.Fatal(err)
	}
	ep := model.Endpoint{InstanceRef: model.InstanceRef{GUID: "g-1", Space: "dev", App: "hello"}, Address: "127.0.0.1", Port: 1, Cell: "c1",
		Routes: []string{"hello.apps.localhost"}}
	var session string
	kvGet := func(c *consul.Client, key string) error {
		var v any
		_, err := catalog.NewKV(c).Get(ctx, key, &v)
		return err
	}
	kvPut := func(c *consul.Client, key string) error { return catalog.NewKV(c).Put(ctx, key, 1) }
	register := func(c *consul.Client, reg *consul.AgentServiceRegistration) error {
		return c.Agent().ServiceRegister(reg)
	}
	// write writes ops as cell's Writer does (after the cell's node); txn
	// sends them alone.
	write := func(c *consul.Client, cell string, ops ...*consul.TxnOp) error {
		return catalog.NewWriter(c, cell, "127.0.0.1").Apply(ops)
	}
	txn := func(c *consul.Client, ops ...*consul.TxnOp) error {
		ok, resp, _, err := c.Txn().Txn(ops, nil)
		if err == nil && !ok {
			for _, e := range resp.Errors {
				err = errors.Join(err, errors.New(e.What))
			}
		}
		return err
	}
	node := catalog.CellNode("c1")
	deregister := catalog.DeregisterOp(node, ep.InstanceRef)
	steps := []struct {
		name    string
		allowed bool
		do      func() error
	}{
		// Anonymous: nothing.
		{"anonymous reads desired state", false, func() error { return kvGet(anon, catalog.AppKey("dev", "hello")) }},
		{"anonymous writes desired state", false, func() error { return kvPut(anon, catalog.AppKey("dev", "x")) }},
		{"anonymous registers a cell", false, func() error { return write(anon, "c9", catalog.CellOp("c9", "127.0.0.1")) }},
		{"anonymous takes a cell's key", false, func() error { return catalog.NewPresence(anon, "c9", "127.0.0.1", time.Minute).Hold() }},
		{"anonymous creates a session", false, func() error { _, _, err := anon.Session().Create(&consul.SessionEntry{}, nil); return err }},
		// Cell: register, hold its key, renew, list, deregister; no other KV.
		{"cell registers itself", true, func() error { return write(cell, "c1", catalog.CellOp("c1", "127.0.0.1")) }},
		{"cell registers a node not a cell's", false, func() error {
			return txn(cell, &consul.TxnOp{Node: &consul.NodeTxnOp{Verb: consul.NodeSet, Node: consul.Node{Node: "web-1", Address: "127.0.0.1"}}})
		}},
		{"cell takes its key with a session", true, func() error { return catalog.NewPresence(cell, "c1", "127.0.0.1", time.Minute).Hold() }},
		{"cell renews its session", true, func() error {
			p := catalog.NewPresence(cell, "c1", "127.0.0.1", time.Minute)
			if err := p.Hold(); err != nil {
				return err
			}
			return p.Renew()
		}},
		{"cell registers an instance", true, func() error {
			hc := model.HealthCheck{Type: model.HealthProcess, Readiness: model.ReadinessCheck{Type: model.HealthPort}}
			return write(cell, "c1", catalog.InstanceOps(node, ep, hc)...)
		}},
		{"cell sets the instance's readiness", true, func() error {
			return write(cell, "c1", catalog.ReadyOp(node, ep.InstanceRef, true))
		}},
		{"cell lists its services", true, func() error {
			l, _, err := cell.Catalog().NodeServiceList(node, nil)
			if err == nil && (l == nil || len(l.Services) != 2) {
				return fmt.Errorf("the cell sees %+v, want its cell and instance", l)
			}
			return err
		}},
		{"cell reads desired state", false, func() error { return kvGet(cell, catalog.AppKey("dev", "hello")) }},
		{"cell reads the sleepers", false, func() error { return kvGet(cell, catalog.SleepingKey("dev", "sleepy")) }},
		{"cell writes desired state", false, func() error { return kvPut(cell, catalog.AppKey("dev", "x")) }},
		{"cell writes the leader key", false, func() error { return kvPut(cell, catalog.LeaderKey) }},
		{"cell reads the leader key", false, func() error { return kvGet(cell, catalog.LeaderKey) }},
		// Router: services, health, live cells, sleepers; nothing else.
		{"router lists services", true, func() error {
			s, _, err := rtr.Catalog().Services(nil)
			if _, ok := s[catalog.ServiceName("dev", "hello")]; err == nil && !ok {
				return errors.New("the router does not see dev-hello")
			}
			return err
		}},
		{"router reads passing instances", true, func() error {
			return eventually(func() error {
				e, _, err := rtr.Health().Service(catalog.ServiceName("dev", "hello"), catalog.AppTag, true, nil)
				if err == nil && len(e) != 1 {
					return errors.New("the router sees no passing instance of dev-hello")
				}
				return err
			})
		}},
		{"router lists the live cells", true, func() error {
			p, _, err := rtr.KV().List(catalog.CellsPrefix, nil)
			if err == nil && len(catalog.LiveCells(p)) != 1 {
				return errors.New("the router does not see cell c1 live")
			}
			return err
		}},
		{"router takes a cell's key", false, func() error { return catalog.NewPresence(rtr, "c3", "127.0.0.1", time.Minute).Hold() }},
		{"router lists the sleepers", true, func() error {
			p, _, err := rtr.KV().List(catalog.SleepingPrefix, nil)
			if err == nil && len(p) != 1 {
				return errors.New("the router does not see the sleeper")
			}
			return err
		}},
		{"router reads desired state", false, func() error { return kvGet(rtr, catalog.AppKey("dev", "hello")) }},
		{"router writes a sleeper", false, func() error { return kvPut(rtr, catalog.SleepingKey("dev", "x")) }},
		{"router registers a cell", false, func() error { return write(rtr, "c2", catalog.CellOp("c2", "127.0.0.1")) }},
		{"router fails an instance's check", false, func() error { return txn(rtr, catalog.HealthOp(node, ep.InstanceRef, false)) }},
		{"router deregisters an instance", false, func() error { return txn(rtr, deregister) }},
		{"router creates a session", false, func() error { _, _, err := rtr.Session().Create(&consul.SessionEntry{}, nil); return err }},
		// Controller: desired state, its service, the leader lock.
		{"controller writes desired state", true, func() error { return kvPut(ctl, catalog.AppKey("dev", "x")) }},
		{"controller reads desired state", true, func() error { return kvGet(ctl, catalog.AppKey("dev", "hello")) }},
		{"controller writes a sleeper", true, func() error { return kvPut(ctl, catalog.SleepingKey("dev", "x")) }},
		{"controller registers itself", true, func() error {
			return register(ctl, &consul.AgentServiceRegistration{ID: "ctl-1", Name: catalog.ControllerServiceName,
				Check: &consul.AgentServiceCheck{CheckID: "ctl-1:alive", TTL: "10s", Status: consul.HealthPassing}})
		}},
		{"controller renews its check", true, func() error { return ctl.Agent().UpdateTTL("ctl-1:alive", "ok", consul.HealthPassing) }},
		{"controller creates its session", true, func() error {
			var err error
			session, _, err = ctl.Session().Create(&consul.SessionEntry{Behavior: consul.SessionBehaviorRelease,
				Checks: []string{"serfHealth", "ctl-1:alive"}}, nil)
			return err
		}},
		{"controller takes the leader lock", true, func() error {
			lock, err := ctl.LockOpts(&consul.LockOptions{Key: catalog.LeaderKey, Value: []byte("ctl-1"), Session: session, LockWaitTime: time.Second})
			if err != nil {
				return err
			}
			stop := make(chan struct{})
			time.AfterFunc(10*time.Second, func() { close(stop) })
			lost, err := lock.Lock(stop)
			if err == nil && lost == nil {
				return errors.New("no lock within 10 s")
			}
			if err == nil {
				err = lock.Unlock()
			}
			return err
		}},
		{"controller writes outside driftless/", false, func() error { return kvPut(ctl, "other/x") }},
		{"controller registers an app's service", false, func() error {
			return txn(ctl, catalog.InstanceOps(node, ep, model.HealthCheck{Type: model.HealthProcess})...)
		}},
		{"controller deregisters an instance", false, func() error { return txn(ctl, deregister) }},
		{"controller forgets a cell gone for good", true, func() error {
			if err := write(cell, "c5", catalog.CellOp("c5", "127.0.0.1")); err != nil {
				return err
			}
			gone, err := catalog.ForgetCells(ctl, func(string) bool { return false })
			if err == nil && !slices.Equal(gone, []string{"c5"}) {
				return fmt.Errorf("forgot %v, want c5 (c1 holds its key)", gone)
			}
			return err
		}},
		{"controller deregisters a node not a cell's", false, func() error {
			_, err := ctl.Catalog().Deregister(&consul.CatalogDeregistration{Node: "web-1"}, nil)
			return err
		}},
		// And the cell takes its instance away.
		{"cell deregisters the instance", true, func() error { return write(cell, "c1", deregister) }},
	}
	for _, s := range steps {
		err := s.do()
		switch {
		case s.allowed && err != nil:
			t.Errorf("%s: refused: %v", s.name, err)
		case !s.allowed && !testenv.ConsulDenied(err):
			t.Errorf("%s: want 403, got %v", s.name, err)
		}
	}
	// A listing the token may only partly read is an error, not a short
	// list (the store would take it for the whole desired state).
	if _, err := catalog.NewKV(rtr).List(ctx, catalog.KVPrefix); err == nil || !strings.Contains(err.Error(), "ACLs hide keys") {
		t.Errorf("the router lists %s: %v, want an error saying the ACLs hide keys", catalog.KVPrefix, err)
	}
	if all, err := catalog.NewKV(ctl).List(ctx, catalog.KVPrefix); err != nil || len(all) == 0 {
		t.Errorf("the controller lists %s: %d keys (%v)", catalog.KVPrefix, len(all), err)
	}
	// A query loop says when the ACLs hide part of its answer, and when
	// they stop: the cell's token may read no node but the cells' (not the
	// controller's), the router's reads them all.
	var logs strings.Builder
	log := slog.New(slog.NewTextHandler(&logs, nil))
	var hidden catalog.Hidden
	for _, c := range []*consul.Client{cell, cell, rtr, rtr} {
		_, meta, err := c.Health().Service(catalog.ControllerServiceName, "", false, nil)
		if err != nil {
			t.Fatal(err)
		}
		hidden.Check(log, meta, "the cells", catalog.RoleRouter)
	}
	warn, info := strings.Count(logs.String(), "level=WARN"), strings.Count(logs.String(), "level=INFO")
	if warn != 1 || info != 1 || !strings.Contains(logs.String(), "driftless-router policy") {
		t.Errorf("want one warning naming the policy, then one notice it ended; logged:\n%s", logs.String())
	}
	// What default deny leaves anonymous: no service, no desired state.
	if s, _, err := anon.Catalog().Services(nil); err != nil || len(s) != 0 {
		t.Errorf("anonymous lists services %v (%v), want none", keys(s), err)
	}
	if p, _, err := anon.KV().List(catalog.KVPrefix, nil); err != nil || len(p) != 0 {
		t.Errorf("anonymous lists %d keys under %s (%v), want none", len(p), catalog.KVPrefix, err)
	}
}

// TestPoliciesDocumented keeps docs/operations.md's policies those the
// code mints: each role's rules appear there as they are.
func TestPoliciesDocumented(t *testing.T) {
	data, err := os.ReadFile("../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(data)
	for _, r := range catalog.Roles {
		p := r.Policy()
		block := "```hcl\n# " + p.Name + "\n" + p.Rules + "```"
		if !strings.Contains(doc, block) {
			t.Errorf("docs/operations.md does not show the %s policy as the code makes it:\n%s", r, block)
		}
	}
	agent := catalog.AgentPolicy("NODE")
	if block := "```hcl\n# " + agent.Name + "\n" + agent.Rules + "```"; !strings.Contains(doc, block) {
		t.Errorf("docs/operations.md does not show the Consul agent's policy as the code makes it:\n%s", block)
	}
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// eventually retries f for up to 10 s (Consul runs a new check a moment
// after its registration).
func eventually(f func() error) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := f()
		if err == nil || time.Now().After(deadline) || testenv.ConsulDenied(err) {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
}
