// Package storetest has an in-memory key-value store for unit tests of
// the controller and its store: no Consul, and writes that can be made to
// fail.
package storetest

import (
	"context"
	"encoding/json"
	"maps"
	"strings"
	"sync"
	"testing"

	"github.com/driftless/driftless/secrets"
)

// KV is an in-memory store.KV for unit tests. Refuse makes it refuse
// writes, as a Consul that is down or full would.
type KV struct {
	mu   sync.Mutex
	data map[string][]byte
	fail func(key string) error
}

// New returns an empty KV.
func New() *KV { return &KV{data: map[string][]byte{}} }

// Refuse makes every write (puts and deletes) fail with what fail returns for its key (nil:
// the write goes through); Refuse(nil) heals the store.
func (f *KV) Refuse(fail func(key string) error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail = fail
}

// Put is store.KV's.
func (f *KV) Put(_ context.Context, key string, v any) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		if err := f.fail(key); err != nil {
			return err
		}
	}
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	f.data[key] = data
	return nil
}

// PutAll is store.KV's: nothing is written if a key is refused.
func (f *KV) PutAll(_ context.Context, values map[string][]byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for key := range values {
		if f.fail != nil {
			if err := f.fail(key); err != nil {
				return err
			}
		}
	}
	for key, data := range values {
		f.data[key] = data
	}
	return nil
}

// Get is store.KV's.
func (f *KV) Get(_ context.Context, key string, v any) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	data, ok := f.data[key]
	if !ok {
		return false, nil
	}
	return true, json.Unmarshal(data, v)
}

// List is store.KV's.
func (f *KV) List(_ context.Context, prefix string) (map[string][]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string][]byte{}
	for k, v := range f.data {
		if strings.HasPrefix(k, prefix) {
			out[k] = v
		}
	}
	return out, nil
}

// Delete is store.KV's.
func (f *KV) Delete(_ context.Context, key string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		if err := f.fail(key); err != nil {
			return err
		}
	}
	delete(f.data, key)
	return nil
}

// DeleteTree is store.KV's.
func (f *KV) DeleteTree(_ context.Context, prefix string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		if err := f.fail(prefix); err != nil {
			return err
		}
	}
	maps.DeleteFunc(f.data, func(k string, _ []byte) bool { return strings.HasPrefix(k, prefix) })
	return nil
}

// Value returns what is stored at key.
func (f *KV) Value(key string) ([]byte, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	v, ok := f.data[key]
	return v, ok
}

// Keys returns platform keys made for the test (in a temporary folder of
// it), for a store.New.
func Keys(t testing.TB) *secrets.Keys {
	t.Helper()
	keys, err := secrets.LoadOrCreate(t.TempDir())
	if err != nil {
		t.Fatalf("making the platform's keys: %v", err)
	}
	return keys
}
