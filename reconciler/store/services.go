package store

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/driftless/driftless/catalog"
	"github.com/driftless/driftless/model"
)

// loadServices reads every service instance record; unreadable ones are
// skipped and returned as warnings.
func (s *Store) loadServices(ctx context.Context) (map[model.ServiceKey]model.ServiceInstance, []error, error) {
	return loadRecords(ctx, s.kv, catalog.ServicesPrefix, "service instances", model.ServiceInstance.Key)
}

// PutService stores one service instance.
func (s *Store) PutService(ctx context.Context, si model.ServiceInstance) error {
	s.write.Lock()
	defer s.write.Unlock()
	return s.putService(ctx, si)
}

func (s *Store) putService(ctx context.Context, si model.ServiceInstance) error {
	key := si.Key()
	if err := put(ctx, s.kv, catalog.ServiceKey(key.Space, key.Name), si); err != nil {
		return fmt.Errorf("saving service instance %s: %w", key, err)
	}
	s.mu.Lock()
	s.services[key] = si
	s.mu.Unlock()
	return nil
}

// ForgetService removes a deprovisioned service instance's record.
func (s *Store) ForgetService(ctx context.Context, key model.ServiceKey) error {
	s.write.Lock()
	defer s.write.Unlock()
	if err := s.kv.Delete(ctx, catalog.ServiceKey(key.Space, key.Name)); err != nil {
		return fmt.Errorf("forgetting service instance %s: %w", key, err)
	}
	s.mu.Lock()
	delete(s.services, key)
	s.mu.Unlock()
	return nil
}

// Service returns one service instance.
func (s *Store) Service(key model.ServiceKey) (model.ServiceInstance, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	si, ok := s.services[key]
	return si, ok
}

// Services lists every service instance, by space and name.
func (s *Store) Services() []model.ServiceInstance {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]model.ServiceInstance, 0, len(s.services))
	for _, si := range s.services {
		out = append(out, si)
	}
	slices.SortFunc(out, func(a, b model.ServiceInstance) int {
		return strings.Compare(a.Key().String(), b.Key().String())
	})
	return out
}
