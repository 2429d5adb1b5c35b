package store

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/driftless/driftless/catalog"
	"github.com/driftless/driftless/model"
)

// Staging is what one finished staging writes: its release (with its
// droplet), the app when the release became current, and the staging
// cache's entry.
type Staging struct {
	Release model.Release
	// App, when set, is the app moved to Release.
	App *model.App
	// CacheKey, when set, records Cached under it in the staging cache
	// (Store.Cached reads it).
	CacheKey string
	Cached   Staged
}

// PutStagings writes what finished stagings wrote one by one before, in
// as few Consul transactions as fit (catalog.MaxTxnOps writes and
// catalog.MaxTxnBytes each), never splitting one staging across two: a
// staging is stored whole or not at all. It returns the stagings not
// stored with the error that stopped them; the others are stored and in
// the store's view.
func (s *Store) PutStagings(ctx context.Context, stagings []Staging) (failed []Staging, err error) {
	s.write.Lock()
	defer s.write.Unlock()
	groups := make([]group, 0, len(stagings))
	for _, st := range stagings {
		key, data, err := s.encodeRelease(st.Release)
		if err != nil {
			return stagings, err
		}
		g := group{values: map[string][]byte{key: data}, size: len(data)}
		add := func(key string, v any) error {
			data, err := encode(key, v)
			if err == nil {
				g.values[key], g.size = data, g.size+len(data)
			}
			return err
		}
		if st.App != nil {
			err = add(catalog.AppKey(st.App.Space, st.App.Name), *st.App)
		}
		if err == nil && st.CacheKey != "" {
			err = add(catalog.DropletKey(st.CacheKey), st.Cached)
		}
		if err != nil {
			return stagings, fmt.Errorf("saving release %s of %s: %w", st.Release.ID, st.Release.Key(), err)
		}
		groups = append(groups, g)
	}
	written, err := s.writeGroups(ctx, groups)
	s.mu.Lock()
	for _, st := range stagings[:written] {
		s.keepRelease(st.Release)
		if st.App != nil {
			s.apps[st.App.Key()] = *st.App
		}
	}
	s.mu.Unlock()
	if err != nil {
		failed = stagings[written:]
		return failed, fmt.Errorf("saving %d staged releases: %w", len(failed), err)
	}
	return nil, nil
}

// group is encoded values to write together.
type group struct {
	values map[string][]byte
	size   int
}

// writeGroups writes groups in order, in as few Consul transactions as
// fit (catalog.MaxTxnOps writes and catalog.MaxTxnBytes each), never
// splitting a group across two, and returns how many groups were written
// when it stopped.
func (s *Store) writeGroups(ctx context.Context, groups []group) (int, error) {
	written := 0
	for written < len(groups) {
		values, size, n := map[string][]byte{}, 0, 0
		for written+n < len(groups) {
			g := groups[written+n]
			if n > 0 && (len(values)+len(g.values) > catalog.MaxTxnOps || size+g.size > catalog.MaxTxnBytes) {
				break
			}
			for k, v := range g.values {
				values[k] = v
			}
			size += g.size
			n++
		}
		if err := s.putAll(ctx, values, size); err != nil {
			return written, err
		}
		written += n
	}
	return written, nil
}

// encode is v as Consul stores it at key, refusing what Consul would.
func encode(key string, v any) ([]byte, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encoding %s: %w", key, err)
	}
	if len(data) > model.MaxStoredValueBytes {
		return nil, fmt.Errorf("%s is %d bytes, more than the %d Consul stores in one value", key, len(data), model.MaxStoredValueBytes)
	}
	return data, nil
}

// putAll writes values in one transaction, or one by one when they are
// too large for one (a single staging with a release of hundreds of KiB),
// as every write was before transactions.
func (s *Store) putAll(ctx context.Context, values map[string][]byte, size int) error {
	if size <= catalog.MaxTxnBytes && len(values) <= catalog.MaxTxnOps {
		return s.kv.PutAll(ctx, values)
	}
	for key, data := range values {
		if err := s.kv.Put(ctx, key, json.RawMessage(data)); err != nil {
			return err
		}
	}
	return nil
}
