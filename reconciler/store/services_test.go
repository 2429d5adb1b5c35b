package store_test

import (
	"context"
	"testing"

	"github.com/driftless/driftless/model"
	"github.com/driftless/driftless/reconciler/store/storetest"
)

// TestServices: service instances a commit declares are stored before its
// apps, read back by a restarted controller, in the decisions' state, and
// forgotten once deprovisioned.
func TestServices(t *testing.T) {
	ctx := context.Background()
	kv := storetest.New()
	s := newStore(t, kv)
	db := model.ServiceInstance{Space: "dev", Source: "apps", GUID: "g-1", State: model.ServicePending,
		Decl: model.ServiceDecl{Name: "db", Service: "postgresql", Plan: "small"}}
	ch := changes()
	ch.Services = []model.ServiceInstance{db}
	if err := s.Apply(ctx, ch); err != nil {
		t.Fatal(err)
	}
	again := newStore(t, kv)
	if _, err := again.Load(ctx); err != nil {
		t.Fatal(err)
	}
	key := model.ServiceKey{Space: "dev", Name: "db"}
	if got, ok := again.Service(key); !ok || got.GUID != "g-1" || got.Decl.Plan != "small" {
		t.Fatalf("loaded %+v (%v)", got, ok)
	}
	if st := again.State(); st.Services[key].GUID != "g-1" {
		t.Fatalf("state %+v", st.Services)
	}
	if err := again.ForgetService(ctx, key); err != nil {
		t.Fatal(err)
	}
	if _, ok := again.Service(key); ok || len(again.Services()) != 0 {
		t.Fatal("a forgotten service is still there")
	}
	if _, found := kv.Value("driftless/services/dev/db"); found {
		t.Fatal("a forgotten service is still in the KV store")
	}
}
