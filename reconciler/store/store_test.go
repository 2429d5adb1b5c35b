package store_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/driftless/driftless/model"
	"github.com/driftless/driftless/reconciler/decide"
	"github.com/driftless/driftless/reconciler/store"
	"github.com/driftless/driftless/reconciler/store/storetest"
)

var hello = model.AppKey{Space: "dev", Name: "hello"}

func changes() decide.Changes {
	return decide.Changes{
		Releases: []model.Release{{ID: "r1", Space: "dev", App: "hello", State: model.ReleaseStaging}},
		Apps:     []model.App{{Space: "dev", Name: "hello", Source: "apps", Instances: 2, ReleaseID: "r1"}},
	}
}

// TestApplyAndLoad: what Apply stores is read back, by this store and by a
// new one loading the same KV (a restarted controller).
func TestApplyAndLoad(t *testing.T) {
	ctx := context.Background()
	kv := storetest.New()
	s := newStore(t, kv)
	if err := s.Apply(ctx, changes()); err != nil {
		t.Fatal(err)
	}
	again := newStore(t, kv)
	if warnings, err := again.Load(ctx); err != nil || len(warnings) != 0 {
		t.Fatalf("load: %v %v", warnings, err)
	}
	for name, st := range map[string]*store.Store{"writer": s, "loaded": again} {
		if a, ok := st.App(hello); !ok || a.Instances != 2 || a.ReleaseID != "r1" {
			t.Errorf("%s: app %+v (%v)", name, a, ok)
		}
		if r := st.Release(hello, "r1"); r == nil || r.State != model.ReleaseStaging {
			t.Errorf("%s: release %+v", name, r)
		}
	}
	if err := s.Apply(ctx, decide.Changes{Removed: []model.AppKey{hello}}); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.App(hello); ok || len(s.Releases(hello)) != 0 {
		t.Error("a removed app or its releases are still there")
	}
	if _, found := kv.Value("driftless/releases/dev/hello/r1"); found {
		t.Error("a removed app's release is still in the KV store")
	}
}

// TestWriteFailures: a refused write returns its error naming what was
// being saved, and memory keeps what was stored before it (nothing of a
// refused transaction); an oversized value is refused before Consul sees
// it.
func TestWriteFailures(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name    string
		refuse  string // key prefix the KV refuses
		ch      decide.Changes
		wantErr string
		release bool // the release was stored before the failure
	}{
		// A commit's releases and apps go to Consul in transactions: a
		// refused one stores none of its writes.
		{"release refused", "driftless/releases/", changes(), "saving the releases and apps of a commit (0 of 2 written)", false},
		{"app refused with its release", "driftless/apps/", changes(), "saving the releases and apps of a commit (0 of 2 written)", false},
		{"value over Consul's limit", "", decide.Changes{Apps: []model.App{{Space: "dev", Name: "hello",
			Labels: map[string]string{"big": strings.Repeat("x", model.MaxStoredValueBytes)}}}},
			"more than the 524288 Consul stores in one value", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kv := storetest.New()
			s := newStore(t, kv)
			kv.Refuse(func(key string) error {
				if tt.refuse != "" && strings.HasPrefix(key, tt.refuse) {
					return errors.New("500 from consul")
				}
				return nil
			})
			err := s.Apply(ctx, tt.ch)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %v, want one with %q", err, tt.wantErr)
			}
			if _, ok := s.App(hello); ok {
				t.Error("an app whose write failed is in memory")
			}
			if got := s.Release(hello, "r1") != nil; got != tt.release {
				t.Errorf("release in memory: %v, want %v", got, tt.release)
			}
		})
	}
}

// TestStateIsACopy: decisions get a copy that later writes do not change.
func TestStateIsACopy(t *testing.T) {
	ctx := context.Background()
	s := newStore(t, storetest.New())
	if err := s.Apply(ctx, changes()); err != nil {
		t.Fatal(err)
	}
	st := s.State()
	if err := s.PutRelease(ctx, model.Release{ID: "r1", Space: "dev", App: "hello", State: model.ReleaseFailed}); err != nil {
		t.Fatal(err)
	}
	if st.Release(hello, "r1").State != model.ReleaseStaging {
		t.Error("a state handed out changed with a later write")
	}
	if s.Release(hello, "r1").State != model.ReleaseFailed {
		t.Error("the update was not stored")
	}
}
