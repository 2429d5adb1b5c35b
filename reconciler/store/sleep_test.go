package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/driftless/driftless/model"
	"github.com/driftless/driftless/reconciler/decide"
	"github.com/driftless/driftless/reconciler/store/storetest"
)

// TestSleepWake: a sleeping record is stored for the routers, read back by
// a restarted controller, deleted on wake and with its app; a refused
// write leaves the app as it was.
func TestSleepWake(t *testing.T) {
	ctx := context.Background()
	kv := storetest.New()
	s := newStore(t, kv)
	if err := s.Apply(ctx, changes()); err != nil {
		t.Fatal(err)
	}
	sl := model.Sleeping{Space: "dev", App: "hello", Routes: []string{"hello.apps.localhost"}, WakeTimeout: time.Minute, Since: time.Now().UTC()}
	if err := s.Sleep(ctx, sl); err != nil {
		t.Fatal(err)
	}
	if _, found := kv.Value("driftless/sleeping/dev/hello"); !found {
		t.Fatal("no sleeping record in the KV store")
	}
	again := newStore(t, kv)
	if _, err := again.Load(ctx); err != nil {
		t.Fatal(err)
	}
	if got, ok := again.Sleeping(hello); !ok || got.Routes[0] != "hello.apps.localhost" || got.WakeTimeout != time.Minute {
		t.Fatalf("loaded sleeping %+v (%v)", got, ok)
	}
	kv.Refuse(func(string) error { return errors.New("consul down") })
	if err := again.Wake(ctx, hello); err == nil {
		t.Fatal("wake with Consul refusing: no error")
	}
	if _, ok := again.Sleeping(hello); !ok {
		t.Fatal("a wake Consul refused forgot the app sleeps")
	}
	kv.Refuse(nil)
	if err := again.Wake(ctx, hello); err != nil {
		t.Fatal(err)
	}
	if _, ok := again.Sleeping(hello); ok || len(again.AllSleeping()) != 0 {
		t.Fatal("awake app still sleeps")
	}
	if _, found := kv.Value("driftless/sleeping/dev/hello"); found {
		t.Fatal("the sleeping record is still in the KV store")
	}
	if err := again.Sleep(ctx, sl); err != nil {
		t.Fatal(err)
	}
	if err := again.Apply(ctx, decide.Changes{Removed: []model.AppKey{hello}}); err != nil {
		t.Fatal(err)
	}
	if _, found := kv.Value("driftless/sleeping/dev/hello"); found {
		t.Fatal("a removed app's sleeping record is still there")
	}
}
