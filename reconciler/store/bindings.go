package store

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/driftless/driftless/catalog"
	"github.com/driftless/driftless/model"
)

// loadBindings reads every service binding record; unreadable ones are
// skipped and returned as warnings.
func (s *Store) loadBindings(ctx context.Context) (map[model.BindingKey]model.ServiceBinding, []error, error) {
	return loadRecords(ctx, s.kv, catalog.BindingsPrefix, "service bindings", model.ServiceBinding.Key)
}

// PutBinding stores one service binding.
func (s *Store) PutBinding(ctx context.Context, b model.ServiceBinding) error {
	s.write.Lock()
	defer s.write.Unlock()
	key := b.Key()
	if err := put(ctx, s.kv, catalog.BindingKey(key.Space, key.App, key.Service), b); err != nil {
		return fmt.Errorf("saving service binding %s: %w", key, err)
	}
	s.mu.Lock()
	s.bindings[key] = b
	s.mu.Unlock()
	return nil
}

// ForgetBinding removes an unbound binding's record.
func (s *Store) ForgetBinding(ctx context.Context, key model.BindingKey) error {
	s.write.Lock()
	defer s.write.Unlock()
	if err := s.kv.Delete(ctx, catalog.BindingKey(key.Space, key.App, key.Service)); err != nil {
		return fmt.Errorf("forgetting service binding %s: %w", key, err)
	}
	s.mu.Lock()
	delete(s.bindings, key)
	s.mu.Unlock()
	return nil
}

// Binding returns one binding.
func (s *Store) Binding(key model.BindingKey) (model.ServiceBinding, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	b, ok := s.bindings[key]
	return b, ok
}

// Bindings lists every binding, by key.
func (s *Store) Bindings() []model.ServiceBinding {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]model.ServiceBinding, 0, len(s.bindings))
	for _, b := range s.bindings {
		out = append(out, b)
	}
	slices.SortFunc(out, func(a, b model.ServiceBinding) int { return strings.Compare(a.Key().String(), b.Key().String()) })
	return out
}
