package store

import (
	"context"
	"fmt"
	"maps"

	"github.com/driftless/driftless/catalog"
	"github.com/driftless/driftless/model"
)

// Sleeping apps are scaled to zero without changing their desired state:
// the record (catalog.SleepingKey) says so to the convergence (which asks
// for no instance) and to the routers (which hold a request to one of its
// routes and wake it). Waking deletes the record.

// loadSleeping reads every sleeping record; unreadable ones are skipped
// and returned as warnings.
func (s *Store) loadSleeping(ctx context.Context) (map[model.AppKey]model.Sleeping, []error, error) {
	return loadRecords(ctx, s.kv, catalog.SleepingPrefix, "sleeping apps", model.Sleeping.Key)
}

// Sleep records that an app sleeps.
func (s *Store) Sleep(ctx context.Context, sl model.Sleeping) error {
	s.write.Lock()
	defer s.write.Unlock()
	if err := put(ctx, s.kv, catalog.SleepingKey(sl.Space, sl.App), sl); err != nil {
		return fmt.Errorf("putting %s to sleep: %w", sl.Key(), err)
	}
	s.mu.Lock()
	s.sleeping[sl.Key()] = sl
	s.mu.Unlock()
	return nil
}

// Wake records that an app is awake (nothing happens if it was).
func (s *Store) Wake(ctx context.Context, key model.AppKey) error {
	s.write.Lock()
	defer s.write.Unlock()
	return s.wake(ctx, key)
}

// wake deletes the sleeping record of key. Caller holds s.write.
func (s *Store) wake(ctx context.Context, key model.AppKey) error {
	s.mu.RLock()
	_, asleep := s.sleeping[key]
	s.mu.RUnlock()
	if !asleep {
		return nil
	}
	if err := s.kv.Delete(ctx, catalog.SleepingKey(key.Space, key.Name)); err != nil {
		return fmt.Errorf("waking %s: %w", key, err)
	}
	s.mu.Lock()
	delete(s.sleeping, key)
	s.mu.Unlock()
	return nil
}

// Sleeping returns the sleeping record of an app, if it sleeps.
func (s *Store) Sleeping(key model.AppKey) (model.Sleeping, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	sl, ok := s.sleeping[key]
	return sl, ok
}

// AllSleeping is every sleeping app.
func (s *Store) AllSleeping() map[model.AppKey]model.Sleeping {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return maps.Clone(s.sleeping)
}
