package store_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"testing"

	"github.com/driftless/driftless/catalog"
	"github.com/driftless/driftless/internal/testenv"
	"github.com/driftless/driftless/model"
	"github.com/driftless/driftless/reconciler/decide"
	"github.com/driftless/driftless/reconciler/store"
	"github.com/driftless/driftless/reconciler/store/storetest"
)

// TestEnvSealedInConsul: over a real Consul, the raw KV value of a release
// holds neither its env's names nor its values, and a store loading it
// reads the env back.
func TestEnvSealedInConsul(t *testing.T) {
	ctx := context.Background()
	c := testenv.StartConsul(t)
	kv := catalog.NewKV(c.Client)
	ch := withEnv()
	want := maps.Clone(ch.Releases[0].Run.Env)
	if err := newStore(t, kv).Apply(ctx, ch); err != nil {
		t.Fatal(err)
	}
	pair, _, err := c.Client.KV().Get(catalog.ReleaseKey("dev", "hello", "r1"), nil)
	if err != nil || pair == nil {
		t.Fatalf("reading the release's raw KV value: %v (%v)", err, pair)
	}
	if !bytes.Contains(pair.Value, []byte(`"sealed_env":"v1:`)) || !bytes.Contains(pair.Value, []byte(`"id":"r1"`)) {
		t.Fatalf("the stored release has no sealed env: %s", pair.Value)
	}
	for _, plain := range []string{envName, envValue} {
		if bytes.Contains(pair.Value, []byte(plain)) {
			t.Errorf("Consul holds %q in clear: %s", plain, pair.Value)
		}
	}
	again := newStore(t, kv)
	if warnings, err := again.Load(ctx); err != nil || len(warnings) != 0 {
		t.Fatalf("load: %v %v", warnings, err)
	}
	if r := again.Release(hello, "r1"); r == nil || !maps.Equal(r.Run.Env, want) {
		t.Fatalf("loaded %+v, want its env back", r)
	}
}

// TestPutStagingsInConsul: finished stagings are written in Consul
// transactions, many at once (more than one transaction's worth here),
// each whole; a store loading them reads them all back, apps moved to
// their release and the staging cache filled; a release's env is sealed
// there as with one write at a time.
func TestPutStagingsInConsul(t *testing.T) {
	ctx := context.Background()
	c := testenv.StartConsul(t)
	kv := catalog.NewKV(c.Client)
	s := newStore(t, kv)
	var stagings []store.Staging
	for i := range 50 { // 50 × 3 writes: three transactions at least
		name := fmt.Sprintf("app%d", i)
		rel := model.Release{ID: "r1", Space: "dev", App: name, State: model.ReleaseStaged, DropletDigest: "sha256:d" + name,
			Run: model.RunSpec{Env: map[string]string{envName: envValue}}}
		app := model.App{Space: "dev", Name: name, ReleaseID: "r1", CurrentID: "r1"}
		stagings = append(stagings, store.Staging{Release: rel, App: &app, CacheKey: "k-" + name, Cached: store.Staged{Droplet: rel.DropletDigest}})
	}
	failed, err := s.PutStagings(ctx, stagings)
	if err != nil || len(failed) != 0 {
		t.Fatalf("PutStagings: %v (%d failed)", err, len(failed))
	}
	again := newStore(t, kv)
	if warnings, err := again.Load(ctx); err != nil || len(warnings) != 0 {
		t.Fatalf("load: %v %v", warnings, err)
	}
	for i := range 50 {
		key := model.AppKey{Space: "dev", Name: fmt.Sprintf("app%d", i)}
		if a, ok := again.App(key); !ok || a.CurrentID != "r1" {
			t.Fatalf("app %s: %+v %v, want current r1", key, a, ok)
		}
		if r := again.Release(key, "r1"); r == nil || !r.Staged() || r.Run.Env[envName] != envValue {
			t.Fatalf("release of %s: %+v", key, r)
		}
		if e, found, err := again.Cached(ctx, "k-"+key.Name); err != nil || !found || e.Droplet != "sha256:d"+key.Name {
			t.Fatalf("staging cache of %s: %+v %v %v", key, e, found, err)
		}
	}
	pair, _, err := c.Client.KV().Get(catalog.ReleaseKey("dev", "app7", "r1"), nil)
	if err != nil || pair == nil || bytes.Contains(pair.Value, []byte(envValue)) {
		t.Fatalf("release in Consul: %v, %s (want its env sealed)", err, pair.Value)
	}
}

// TestPutStagingsRefused: a store that refuses the writes keeps none of
// the stagings, in Consul or in its view, and says which failed.
func TestPutStagingsRefused(t *testing.T) {
	kv := storetest.New()
	s := newStore(t, kv)
	kv.Refuse(func(key string) error {
		if strings.HasSuffix(key, "/app1") {
			return errors.New("consul: 500")
		}
		return nil
	})
	var stagings []store.Staging
	for i := range 3 {
		app := model.App{Space: "dev", Name: fmt.Sprintf("app%d", i), ReleaseID: "r1", CurrentID: "r1"}
		stagings = append(stagings, store.Staging{Release: model.Release{ID: "r1", Space: "dev", App: app.Name, State: model.ReleaseStaged}, App: &app})
	}
	failed, err := s.PutStagings(context.Background(), stagings)
	if err == nil || len(failed) != 3 {
		t.Fatalf("PutStagings = %d failed, %v; want all 3 refused (one transaction)", len(failed), err)
	}
	for _, st := range stagings {
		if _, ok := s.App(st.App.Key()); ok {
			t.Errorf("app %s in the store's view after a refused write", st.App.Name)
		}
	}
}

// TestApplyManyInConsul: a commit of many apps is stored in several
// Consul transactions and read back whole.
func TestApplyManyInConsul(t *testing.T) {
	ctx := context.Background()
	c := testenv.StartConsul(t)
	kv := catalog.NewKV(c.Client)
	var ch decide.Changes
	for i := range 100 { // 200 writes: four transactions at least
		name := fmt.Sprintf("app%d", i)
		ch.Releases = append(ch.Releases, model.Release{ID: "r1", Space: "dev", App: name, State: model.ReleaseStaging})
		ch.Apps = append(ch.Apps, model.App{Space: "dev", Name: name, ReleaseID: "r1"})
	}
	if err := newStore(t, kv).Apply(ctx, ch); err != nil {
		t.Fatal(err)
	}
	again := newStore(t, kv)
	if warnings, err := again.Load(ctx); err != nil || len(warnings) != 0 {
		t.Fatalf("load: %v %v", warnings, err)
	}
	if n := len(again.Apps()); n != 100 {
		t.Fatalf("%d apps read back, want 100", n)
	}
	for _, a := range again.Apps() {
		if again.Release(a.Key(), "r1") == nil {
			t.Fatalf("release of %s missing", a.Key())
		}
	}
}
