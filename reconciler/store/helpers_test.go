package store_test

import (
	"fmt"
	"os"
	"testing"

	"github.com/driftless/driftless/reconciler/store"
	"github.com/driftless/driftless/secrets"
)

// keys are the platform's keys of the package's tests (made in TestMain),
// so that a store loading what another wrote opens its envs.
var keys *secrets.Keys

func TestMain(m *testing.M) {
	os.Exit(func() int {
		dir, err := os.MkdirTemp("", "store-keys-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		if keys, err = secrets.LoadOrCreate(dir); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		return m.Run()
	}())
}

// newStore is a store over kv with the tests' keys.
func newStore(t testing.TB, kv store.KV) *store.Store {
	t.Helper()
	s, err := store.New(kv, keys)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
