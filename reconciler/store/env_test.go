package store_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"maps"
	"strings"
	"testing"

	"github.com/driftless/driftless/model"
	"github.com/driftless/driftless/reconciler/decide"
	"github.com/driftless/driftless/reconciler/store"
	"github.com/driftless/driftless/reconciler/store/storetest"
)

// envName and envValue are an env variable whose name and value must not
// be stored in clear.
const (
	envName  = "ENVSEAL_DATABASE_PASSWORD_NAME"
	envValue = "envseal-s3cret-value-7f3a9c"
)

// withEnv is changes() whose release r1 has an env.
func withEnv() decide.Changes {
	ch := changes()
	ch.Releases[0].Run.Env = map[string]string{envName: envValue, "PORT_HINT": "8080"}
	return ch
}

// TestEnvSealed: a release's env is read back as it was given (by the
// writer and by a store loading the same KV), while the stored record
// holds neither an env name nor a value in clear.
func TestEnvSealed(t *testing.T) {
	ctx := context.Background()
	kv := storetest.New()
	s := newStore(t, kv)
	ch := withEnv()
	want := maps.Clone(ch.Releases[0].Run.Env)
	if err := s.Apply(ctx, ch); err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(ch.Releases[0].Run.Env, want) {
		t.Fatal("storing a release changed the caller's env")
	}
	raw, found := kv.Value("driftless/releases/dev/hello/r1")
	if !found {
		t.Fatal("no release record in the KV store")
	}
	for _, plain := range []string{envName, envValue, "PORT_HINT", "8080"} {
		if bytes.Contains(raw, []byte(plain)) {
			t.Errorf("the stored release holds %q in clear: %s", plain, raw)
		}
	}
	if !bytes.Contains(raw, []byte(`"sealed_env":"v1:`)) {
		t.Errorf("the stored release has no sealed env: %s", raw)
	}
	again := newStore(t, kv)
	if warnings, err := again.Load(ctx); err != nil || len(warnings) != 0 {
		t.Fatalf("load: %v %v", warnings, err)
	}
	for name, st := range map[string]*store.Store{"writer": s, "loaded": again} {
		if r := st.Release(hello, "r1"); r == nil || !maps.Equal(r.Run.Env, want) {
			t.Errorf("%s: release %+v, want its env back", name, r)
		}
		if got := st.State().Release(hello, "r1"); got == nil || !maps.Equal(got.Run.Env, want) {
			t.Errorf("%s: the decisions' state lost the env", name)
		}
	}
	// A release without env stores no sealed env.
	if err := s.PutRelease(ctx, model.Release{ID: "r2", Space: "dev", App: "hello"}); err != nil {
		t.Fatal(err)
	}
	if raw, _ := kv.Value("driftless/releases/dev/hello/r2"); bytes.Contains(raw, []byte("sealed_env")) {
		t.Errorf("a release without env: %s", raw)
	}
}

// TestEnvClearRecordMigrated: a release an older version stored, its env
// in clear, reads with its env and is sealed as the store loads it.
func TestEnvClearRecordMigrated(t *testing.T) {
	ctx := context.Background()
	kv := storetest.New()
	old := model.Release{ID: "r1", Space: "dev", App: "hello", State: model.ReleaseStaged, DropletDigest: "sha256:d",
		Run: model.RunSpec{Env: map[string]string{envName: envValue}}}
	if err := kv.Put(ctx, "driftless/releases/dev/hello/r1", old); err != nil {
		t.Fatal(err)
	}
	s := newStore(t, kv)
	if warnings, err := s.Load(ctx); err != nil || len(warnings) != 0 {
		t.Fatalf("load: %v %v", warnings, err)
	}
	if r := s.Release(hello, "r1"); r == nil || r.Run.Env[envName] != envValue || r.DropletDigest != "sha256:d" {
		t.Fatalf("the old record read as %+v", r)
	}
	raw, _ := kv.Value("driftless/releases/dev/hello/r1")
	if bytes.Contains(raw, []byte(envValue)) || bytes.Contains(raw, []byte(envName)) || !bytes.Contains(raw, []byte("sealed_env")) {
		t.Fatalf("the old record was not sealed on load: %s", raw)
	}
	again := newStore(t, kv)
	if _, err := again.Load(ctx); err != nil {
		t.Fatal(err)
	}
	if r := again.Release(hello, "r1"); r == nil || r.Run.Env[envName] != envValue {
		t.Fatalf("the migrated record read as %+v", r)
	}
}

// TestEnvClearRecordNotRewritten: a clear record whose sealing write Consul
// refuses still loads, with a warning naming it and without its env.
func TestEnvClearRecordNotRewritten(t *testing.T) {
	ctx := context.Background()
	kv := storetest.New()
	old := model.Release{ID: "r1", Space: "dev", App: "hello", Run: model.RunSpec{Env: map[string]string{envName: envValue}}}
	if err := kv.Put(ctx, "driftless/releases/dev/hello/r1", old); err != nil {
		t.Fatal(err)
	}
	kv.Refuse(func(string) error { return errors.New("consul down") })
	s := newStore(t, kv)
	warnings, err := s.Load(ctx)
	if err != nil || len(warnings) != 1 || !strings.Contains(warnings[0].Error(), "release r1 of dev/hello keeps its env in clear") ||
		strings.Contains(warnings[0].Error(), envValue) {
		t.Fatalf("load: %v %v", warnings, err)
	}
	if r := s.Release(hello, "r1"); r == nil || r.Run.Env[envName] != envValue {
		t.Fatalf("the old record read as %+v", r)
	}
	kv.Refuse(nil)
	if err := s.PutRelease(ctx, *s.Release(hello, "r1")); err != nil {
		t.Fatal(err)
	}
	if raw, _ := kv.Value("driftless/releases/dev/hello/r1"); bytes.Contains(raw, []byte(envValue)) {
		t.Fatalf("the next write left the env in clear: %s", raw)
	}
}

// TestEnvDoesNotOpen: a sealed env that does not open — other keys, a
// sealed env moved into another release's record, a record with an env
// both sealed and in clear — fails the load with an error naming the
// release, never an empty env (nor a panic); and never quotes the env.
func TestEnvDoesNotOpen(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name    string
		load    func(t *testing.T, kv *storetest.KV) *store.Store
		tamper  func(t *testing.T, kv *storetest.KV)
		wantErr string
	}{
		{"other keys", func(t *testing.T, kv *storetest.KV) *store.Store {
			s, err := store.New(kv, storetest.Keys(t))
			if err != nil {
				t.Fatal(err)
			}
			return s
		}, nil, "release r1 of dev/hello"},
		{"moved to another release", nil, func(t *testing.T, kv *storetest.KV) {
			move(t, kv, "driftless/releases/dev/hello/r1", "driftless/releases/dev/hello/r9", func(m map[string]any) { m["id"] = "r9" })
		}, "release r9 of dev/hello"},
		{"moved to another app", nil, func(t *testing.T, kv *storetest.KV) {
			move(t, kv, "driftless/releases/dev/hello/r1", "driftless/releases/dev/other/r1", func(m map[string]any) { m["app"] = "other" })
		}, "release r1 of dev/other"},
		{"sealed and in clear", nil, func(t *testing.T, kv *storetest.KV) {
			move(t, kv, "driftless/releases/dev/hello/r1", "driftless/releases/dev/hello/r1", func(m map[string]any) {
				m["run"].(map[string]any)["env"] = map[string]string{"OTHER": "x"}
			})
		}, "release r1 of dev/hello holds both"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kv := storetest.New()
			if err := newStore(t, kv).Apply(ctx, withEnv()); err != nil {
				t.Fatal(err)
			}
			if tt.tamper != nil {
				tt.tamper(t, kv)
			}
			s := newStore(t, kv)
			if tt.load != nil {
				s = tt.load(t, kv)
			}
			_, err := s.Load(ctx)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("load: %v, want an error with %q", err, tt.wantErr)
			}
			if strings.Contains(err.Error(), envValue) || strings.Contains(err.Error(), envName) {
				t.Fatalf("the error quotes the env: %v", err)
			}
		})
	}
}

// move rewrites the JSON record at from (changed by edit) at to.
func move(t *testing.T, kv *storetest.KV, from, to string, edit func(map[string]any)) {
	t.Helper()
	raw, found := kv.Value(from)
	if !found {
		t.Fatalf("no record at %s", from)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	edit(m)
	if err := kv.Put(context.Background(), to, m); err != nil {
		t.Fatal(err)
	}
}

// TestNewNeedsKeys: a store is never made without keys to seal envs.
func TestNewNeedsKeys(t *testing.T) {
	if _, err := store.New(storetest.New(), nil); err == nil || !strings.Contains(err.Error(), "keys") {
		t.Fatalf("store.New without keys: %v", err)
	}
}
