package store_test

import (
	"bytes"
	"context"
	"maps"
	"testing"

	"github.com/driftless/driftless/catalog"
	"github.com/driftless/driftless/internal/testenv"
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
