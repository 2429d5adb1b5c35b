package postgres_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/driftless/driftless/brokers/osb"
	"github.com/driftless/driftless/brokers/postgres"
)

// TestLifecycle drives the broker through brokers/osb's client, against a
// real PostgreSQL: catalog, provision (again alike), fetch, bind, use,
// isolation between instances, rotation, unbind, update, deprovision.
func TestLifecycle(t *testing.T) {
	e := newEnv(t)
	ctx := e.ctx()

	cat, err := e.client.Catalog(ctx)
	if err != nil {
		t.Fatalf("catalog: %v", err)
	}
	if len(cat.Services) != 1 {
		t.Fatalf("catalog has %d offerings, want 1", len(cat.Services))
	}
	svc := cat.Services[0]
	if svc.Name != "postgresql" || !svc.Bindable || !svc.PlanUpdateable || !svc.BindingsRetrievable ||
		!svc.InstancesRetrievable || strings.Join(svc.Tags, ",") != "postgresql,relational" {
		t.Errorf("offering = %+v", svc)
	}
	names := map[string]osb.Plan{}
	for _, p := range svc.Plans {
		names[p.Name] = p
		if p.BindingRotatable == nil || !*p.BindingRotatable {
			t.Errorf("plan %s is not binding_rotatable", p.Name)
		}
		if p.Metadata["connection_limit"] == nil || p.Metadata["size_limit_bytes"] == nil {
			t.Errorf("plan %s has no limits in its metadata: %v", p.Name, p.Metadata)
		}
	}
	for _, n := range []string{"tiny", "small", "medium"} {
		if _, ok := names[n]; !ok {
			t.Errorf("no plan %q", n)
		}
	}

	e.provision("inst-a", postgres.PlanSmall)
	e.provision("inst-a", postgres.PlanSmall) // 200: it exists alike
	e.provision("inst-b", postgres.PlanSmall)
	ref := osb.PlanRef{ServiceID: postgres.ServiceID, PlanID: postgres.PlanSmall}
	inst, err := e.client.GetInstance(ctx, "inst-a", ref)
	if err != nil {
		t.Fatalf("get instance: %v", err)
	}
	attrs := inst.Metadata.Attributes
	if inst.PlanID != postgres.PlanSmall || attrs["size_bytes"].(float64) <= 0 || attrs["connection_limit"].(float64) != 5 {
		t.Errorf("instance = %+v, attributes %v", inst, attrs)
	}
	db, _ := attrs["database"].(string)
	if !e.exists(`SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, db) {
		t.Fatalf("database %s was not created", db)
	}

	a1 := e.bind("inst-a", "bind-a1", "")
	for _, k := range []string{"uri", "jdbcUrl", "host", "port", "name", "database", "username", "password"} {
		if a1[k] == nil || a1[k] == "" {
			t.Errorf("credentials lack %q", k)
		}
	}
	if a1["database"] != db || !strings.HasPrefix(a1["jdbcUrl"].(string), "jdbc:postgresql://") {
		t.Errorf("credentials name %v, jdbcUrl %v", a1["database"], a1["jdbcUrl"])
	}
	conn, err := connect(ctx, a1)
	if err != nil {
		t.Fatalf("connecting with the binding's credentials: %v", err)
	}
	for _, q := range []string{`CREATE TABLE notes (id int PRIMARY KEY, body text)`, `INSERT INTO notes VALUES (1, 'hello')`} {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	var body string
	if err := conn.QueryRow(ctx, `SELECT body FROM notes WHERE id = 1`).Scan(&body); err != nil || body != "hello" {
		t.Fatalf("reading the table back: %q, %v", body, err)
	}
	conn.Close(ctx)

	// The binding reaches its own database only.
	b1 := e.bind("inst-b", "bind-b1", "")
	crossed := strings.Replace(a1["uri"].(string), "/"+db+"?", "/"+b1["database"].(string)+"?", 1)
	if c, err := connect(ctx, osb.Credentials{"uri": crossed}); err == nil {
		c.Close(ctx)
		t.Fatal("instance a's credentials connected to instance b's database")
	} else if sqlState(err) != "42501" {
		t.Errorf("connecting to another instance's database: %v, want permission denied (42501)", err)
	}

	// The "postgres" database is open to every role, but not the broker's records.
	other := strings.Replace(a1["uri"].(string), "/"+db+"?", "/postgres?", 1)
	if c, err := connect(ctx, osb.Credentials{"uri": other}); err == nil {
		var n int
		err := c.QueryRow(ctx, `SELECT count(*) FROM driftless_broker.instances`).Scan(&n)
		c.Close(ctx)
		if sqlState(err) != "42501" {
			t.Errorf("a binding reading the broker's records: %v, want permission denied (42501)", err)
		}
	}

	// Rotation: the successor reads what the predecessor made; the
	// predecessor works until it is unbound.
	a2 := e.bind("inst-a", "bind-a2", "bind-a1")
	if a2["username"] == a1["username"] || a2["password"] == a1["password"] {
		t.Error("the rotated binding has its predecessor's credentials")
	}
	conn, err = connect(ctx, a2)
	if err != nil {
		t.Fatalf("connecting with the successor: %v", err)
	}
	if err := conn.QueryRow(ctx, `SELECT body FROM notes WHERE id = 1`).Scan(&body); err != nil {
		t.Fatalf("the successor reading the predecessor's table: %v", err)
	}
	conn.Close(ctx)
	if c, err := connect(ctx, a1); err != nil {
		t.Fatalf("the predecessor no longer connects before its unbind: %v", err)
	} else {
		c.Close(ctx)
	}
	got, err := e.client.GetBinding(ctx, "inst-a", "bind-a2", ref)
	if err != nil || got.Credentials["username"] != a2["username"] || got.Credentials["password"] != nil {
		t.Errorf("get binding: %v (password shown: %v), %v", got.Credentials["username"], got.Credentials["password"] != nil, err)
	}

	if _, err := e.client.Unbind(ctx, "inst-a", "bind-a1", ref); err != nil {
		t.Fatalf("unbind: %v", err)
	}
	if c, err := connect(ctx, a1); err == nil {
		c.Close(ctx)
		t.Fatal("the unbound credentials still connect")
	}
	if e.exists(`SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)`, a1["username"]) {
		t.Error("the unbound binding's role still exists")
	}
	if c, err := connect(ctx, a2); err != nil {
		t.Fatalf("the successor stopped working when its predecessor was unbound: %v", err)
	} else {
		c.Close(ctx)
	}
	if _, err := e.client.Unbind(ctx, "inst-a", "bind-a1", ref); err != nil {
		t.Errorf("a second unbind (410, success for the client): %v", err)
	}

	if _, _, err := e.client.Update(ctx, "inst-a", osb.UpdateRequest{ServiceID: postgres.ServiceID, PlanID: postgres.PlanMedium}); err != nil {
		t.Fatalf("update: %v", err)
	}
	if inst, err = e.client.GetInstance(ctx, "inst-a", ref); err != nil || inst.PlanID != postgres.PlanMedium ||
		inst.Metadata.Attributes["connection_limit"].(float64) != 20 {
		t.Errorf("after the update: %+v, %v", inst, err)
	}
	var limit int
	if err := e.super().QueryRow(ctx, `SELECT datconnlimit FROM pg_database WHERE datname = $1`, db).Scan(&limit); err != nil || limit != 20 {
		t.Errorf("datconnlimit = %d, %v; want 20", limit, err)
	}

	for _, id := range []string{"inst-a", "inst-b"} {
		if _, err := e.client.Deprovision(ctx, id, ref); err != nil {
			t.Fatalf("deprovision %s: %v", id, err)
		}
	}
	if e.exists(`SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname LIKE 'dl\_%')`) {
		t.Error("a database remains after deprovision")
	}
	if e.exists(`SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname LIKE 'dl%\_%')`) {
		t.Error("a role remains after deprovision")
	}
	if c, err := connect(ctx, a2); err == nil {
		c.Close(ctx)
		t.Error("a binding of a deprovisioned instance still connects")
	}
	if _, err := e.client.GetInstance(ctx, "inst-a", ref); !errors.Is(err, osb.ErrNotFound) {
		t.Errorf("get of a deprovisioned instance: %v, want not found", err)
	}
	e.checkNoSecrets(a1["password"].(string), a2["password"].(string), b1["password"].(string))
}

// TestConnectionLimit: the plan's connection limit holds — one session
// more than the limit is refused — and an update to a larger plan lifts it.
func TestConnectionLimit(t *testing.T) {
	e := newEnv(t)
	ctx := e.ctx()
	e.provision("inst-tiny", postgres.PlanTiny)
	creds := e.bind("inst-tiny", "bind-1", "")
	limits, _ := postgres.Limits(postgres.PlanTiny)
	var open []func()
	defer func() {
		for _, c := range open {
			c()
		}
	}()
	for i := range limits.Connections {
		c, err := connect(ctx, creds)
		if err != nil {
			t.Fatalf("session %d of %d: %v", i+1, limits.Connections, err)
		}
		open = append(open, func() { c.Close(context.Background()) })
	}
	if c, err := connect(ctx, creds); err == nil {
		c.Close(ctx)
		t.Fatalf("session %d connected over the plan's limit of %d", limits.Connections+1, limits.Connections)
	} else if sqlState(err) != "53300" {
		t.Errorf("over the limit: %v, want too many connections (53300)", err)
	}
	if _, _, err := e.client.Update(ctx, "inst-tiny", osb.UpdateRequest{ServiceID: postgres.ServiceID, PlanID: postgres.PlanSmall}); err != nil {
		t.Fatalf("update: %v", err)
	}
	c, err := connect(ctx, creds)
	if err != nil {
		t.Fatalf("after an update to a larger plan: %v", err)
	}
	c.Close(ctx)
}

// TestSizeQuota: an instance over its plan's size is refused new sessions
// after CheckQuotas, reports it, and gets them back on a larger plan.
func TestSizeQuota(t *testing.T) {
	e := newEnv(t)
	ctx := e.ctx()
	e.provision("inst-q", postgres.PlanTiny)
	creds := e.bind("inst-q", "bind-1", "")
	conn, err := connect(ctx, creds)
	if err != nil {
		t.Fatal(err)
	}
	// About 25 MB of incompressible rows, over tiny's 20 MB.
	_, err = conn.Exec(ctx, `CREATE TABLE filler AS
		SELECT g, (SELECT string_agg(md5(random()::text || g::text || i::text), '') FROM generate_series(1, 30) i) AS junk
		FROM generate_series(1, 25000) g`)
	conn.Close(ctx)
	if err != nil {
		t.Fatalf("filling the database: %v", err)
	}
	if err := e.broker.CheckQuotas(ctx); err != nil {
		t.Fatalf("check quotas: %v", err)
	}
	if c, err := connect(ctx, creds); err == nil {
		c.Close(ctx)
		t.Fatal("an instance over its size quota still accepts sessions")
	} else if sqlState(err) != "42501" {
		t.Errorf("over quota: %v, want permission denied (42501)", err)
	}
	ref := osb.PlanRef{ServiceID: postgres.ServiceID, PlanID: postgres.PlanTiny}
	inst, err := e.client.GetInstance(ctx, "inst-q", ref)
	if err != nil || inst.Metadata.Attributes["over_quota"] != true {
		t.Errorf("instance over quota reports %v, %v", inst.Metadata, err)
	}
	if _, _, err := e.client.Update(ctx, "inst-q", osb.UpdateRequest{ServiceID: postgres.ServiceID, PlanID: postgres.PlanSmall}); err != nil {
		t.Fatalf("update: %v", err)
	}
	c, err := connect(ctx, creds)
	if err != nil {
		t.Fatalf("after an update to a larger plan: %v", err)
	}
	c.Close(ctx)
}

// TestRestart: a broker restarted over the same PostgreSQL knows the
// instances and bindings the previous one made.
func TestRestart(t *testing.T) {
	e := newEnv(t)
	ctx := e.ctx()
	e.provision("inst-r", postgres.PlanSmall)
	creds := e.bind("inst-r", "bind-r", "")
	e.stop()
	e.start()
	ref := osb.PlanRef{ServiceID: postgres.ServiceID, PlanID: postgres.PlanSmall}
	if inst, err := e.client.GetInstance(ctx, "inst-r", ref); err != nil || inst.PlanID != postgres.PlanSmall {
		t.Fatalf("the restarted broker does not know the instance: %+v, %v", inst, err)
	}
	// Provisioning it again alike is a 200 (the client cannot tell 200 from
	// 201), with another plan a 409.
	e.provision("inst-r", postgres.PlanSmall)
	_, _, err := e.client.Provision(ctx, "inst-r", osb.ProvisionRequest{ServiceID: postgres.ServiceID, PlanID: postgres.PlanMedium})
	if !errors.Is(err, osb.ErrConflict) {
		t.Errorf("provision with another plan after the restart: %v, want conflict", err)
	}
	if _, err := e.client.GetBinding(ctx, "inst-r", "bind-r", ref); err != nil {
		t.Errorf("the restarted broker does not know the binding: %v", err)
	}
	if _, err := e.client.Unbind(ctx, "inst-r", "bind-r", ref); err != nil {
		t.Fatalf("unbind after the restart: %v", err)
	}
	if c, err := connect(ctx, creds); err == nil {
		c.Close(ctx)
		t.Error("credentials unbound by the restarted broker still connect")
	}
	if _, err := e.client.Deprovision(ctx, "inst-r", ref); err != nil {
		t.Fatalf("deprovision after the restart: %v", err)
	}
	e.checkNoSecrets(creds["password"].(string))
}
