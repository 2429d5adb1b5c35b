// Package store is the controller's desired state: every app, its
// releases and every source's status, kept in memory for reads and in
// Consul KV (catalog keys) for the next controller. A write goes to Consul
// first and into memory only once Consul took it, so what is read is what
// is stored; a write that fails returns its error to the caller, who must
// not go on as if it had happened.
//
// Reads take a read lock that is never held across I/O: writes are
// serialised by a lock of their own while they talk to Consul.
//
// A release's env (its run spec's Env, which may hold secrets) is stored
// sealed with the platform's keys (env.go), as binding credentials are:
// never in clear in Consul, and opened as it is read, so that what the
// store returns is the release as it was given.
package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"

	"github.com/driftless/driftless/catalog"
	"github.com/driftless/driftless/model"
	"github.com/driftless/driftless/reconciler/decide"
	"github.com/driftless/driftless/secrets"
)

// KV is the key-value store underneath: catalog.KV over Consul, or a fake
// in tests.
type KV interface {
	Put(ctx context.Context, key string, v any) error
	// PutAll writes encoded values all at once or not at all
	// (catalog.MaxTxnOps and catalog.MaxTxnBytes at most).
	PutAll(ctx context.Context, values map[string][]byte) error
	Get(ctx context.Context, key string, v any) (bool, error)
	List(ctx context.Context, prefix string) (map[string][]byte, error)
	Delete(ctx context.Context, key string) error
	DeleteTree(ctx context.Context, prefix string) error
}

// Store is the desired state.
type Store struct {
	kv KV
	// keys seal the releases' envs (env.go).
	keys *secrets.Keys
	// write serialises writes, held across their I/O; mu guards the maps
	// and is held only to read or update them.
	write    sync.Mutex
	mu       sync.RWMutex
	apps     map[model.AppKey]model.App
	releases map[model.AppKey]map[string]model.Release
	// sleeping are the apps put to sleep (sleep.go).
	sleeping map[model.AppKey]model.Sleeping
	// services are the service instances (services.go), bindings their
	// bindings (bindings.go).
	services map[model.ServiceKey]model.ServiceInstance
	bindings map[model.BindingKey]model.ServiceBinding
}

// New returns an empty store over kv whose releases' envs are sealed with
// keys (the platform's, those that seal binding credentials); Load fills
// it. Keys are required: no env is ever stored in clear.
func New(kv KV, keys *secrets.Keys) (*Store, error) {
	if kv == nil || keys == nil {
		return nil, errors.New("the desired state's store needs a KV store and the platform's keys (to seal the apps' env)")
	}
	return &Store{kv: kv, keys: keys, apps: map[model.AppKey]model.App{}, releases: map[model.AppKey]map[string]model.Release{},
		sleeping: map[model.AppKey]model.Sleeping{}, services: map[model.ServiceKey]model.ServiceInstance{},
		bindings: map[model.BindingKey]model.ServiceBinding{}}, nil
}

// Load replaces what is in memory with what Consul holds. Unreadable
// records are skipped and returned as warnings. A release whose env does
// not open (other keys, or a sealed env moved from another release) is an
// error naming it: skipped, its app would lose its release. A release
// stored by an older version, its env in clear, is sealed now (a failed
// rewrite is a warning: it is sealed on its next write).
func (s *Store) Load(ctx context.Context) (warnings []error, err error) {
	s.write.Lock()
	defer s.write.Unlock()
	appData, err := s.kv.List(ctx, catalog.AppsPrefix)
	if err != nil {
		return nil, fmt.Errorf("loading desired state: %w", err)
	}
	relData, err := s.kv.List(ctx, catalog.AllReleasesPrefix)
	if err != nil {
		return nil, fmt.Errorf("loading releases: %w", err)
	}
	apps := make(map[model.AppKey]model.App, len(appData))
	for key, data := range appData {
		var a model.App
		if err := json.Unmarshal(data, &a); err != nil {
			warnings = append(warnings, fmt.Errorf("ignoring unreadable app record %s: %w", key, err))
			continue
		}
		apps[a.Key()] = a
	}
	rels := make(map[model.AppKey]map[string]model.Release)
	for key, data := range relData {
		r, inClear, err := s.openRelease(data)
		if errors.Is(err, errEnv) {
			return nil, fmt.Errorf("loading releases: %w", err)
		}
		if err != nil {
			warnings = append(warnings, fmt.Errorf("ignoring unreadable release %s: %w", key, err))
			continue
		}
		if inClear {
			if err := s.storeRelease(ctx, r); err != nil {
				warnings = append(warnings, fmt.Errorf("release %s of %s keeps its env in clear until it is next written: %w", r.ID, r.Key(), err))
			}
		}
		if rels[r.Key()] == nil {
			rels[r.Key()] = map[string]model.Release{}
		}
		rels[r.Key()][r.ID] = r
	}
	sleeping, warned, err := s.loadSleeping(ctx)
	if err != nil {
		return nil, err
	}
	services, warnedS, err := s.loadServices(ctx)
	if err != nil {
		return nil, err
	}
	bindings, warnedB, err := s.loadBindings(ctx)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.apps, s.releases, s.sleeping, s.services, s.bindings = apps, rels, sleeping, services, bindings
	s.mu.Unlock()
	return slices.Concat(warnings, warned, warnedS, warnedB), nil
}

// State is a copy of the desired state, for decisions.
func (s *Store) State() decide.State {
	s.mu.RLock()
	defer s.mu.RUnlock()
	st := decide.State{Apps: maps.Clone(s.apps), Releases: make(map[model.AppKey]map[string]model.Release, len(s.releases)),
		Services: maps.Clone(s.services)}
	for k, rs := range s.releases {
		st.Releases[k] = maps.Clone(rs)
	}
	return st
}

// Apps lists every app.
func (s *Store) Apps() []model.App {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]model.App, 0, len(s.apps))
	for _, a := range s.apps {
		out = append(out, a)
	}
	return out
}

// App returns one app.
func (s *Store) App(key model.AppKey) (model.App, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	a, ok := s.apps[key]
	return a, ok
}

// Release returns one release of an app, or nil.
func (s *Store) Release(key model.AppKey, id string) *model.Release {
	s.mu.RLock()
	defer s.mu.RUnlock()
	r, ok := s.releases[key][id]
	if !ok {
		return nil
	}
	return &r
}

// Releases lists the releases of an app.
func (s *Store) Releases(key model.AppKey) []model.Release {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]model.Release, 0, len(s.releases[key]))
	for _, r := range s.releases[key] {
		out = append(out, r)
	}
	return out
}

// Droplets lists the droplet digests of every stored release.
func (s *Store) Droplets() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []string
	for _, rs := range s.releases {
		for _, r := range rs {
			if r.DropletDigest != "" {
				out = append(out, r.DropletDigest)
			}
		}
	}
	return out
}

// Apply stores what a commit changes: the service instances and new
// releases first, then the apps (so a stored app never names a release or
// binds a service that is not stored), then the removals. It stops at the first write Consul refuses and returns its
// error; what was written before it is stored, and applying the same
// changes again completes it (every write is idempotent).
func (s *Store) Apply(ctx context.Context, ch decide.Changes) error {
	s.write.Lock()
	defer s.write.Unlock()
	for _, si := range ch.Services {
		if err := s.putService(ctx, si); err != nil {
			return err
		}
	}
	if err := s.putReleasesAndApps(ctx, ch.Releases, ch.Apps); err != nil {
		return err
	}
	for _, key := range ch.Removed {
		if err := s.removeApp(ctx, key); err != nil {
			return err
		}
	}
	return nil
}

// PutApp stores one app.
func (s *Store) PutApp(ctx context.Context, a model.App) error {
	s.write.Lock()
	defer s.write.Unlock()
	return s.putApp(ctx, a)
}

// PutRelease stores one release.
func (s *Store) PutRelease(ctx context.Context, r model.Release) error {
	s.write.Lock()
	defer s.write.Unlock()
	return s.putRelease(ctx, r)
}

// DeleteReleases forgets releases of an app.
func (s *Store) DeleteReleases(ctx context.Context, key model.AppKey, ids []string) error {
	s.write.Lock()
	defer s.write.Unlock()
	for _, id := range ids {
		if err := s.kv.Delete(ctx, catalog.ReleaseKey(key.Space, key.Name, id)); err != nil {
			return fmt.Errorf("deleting release %s of %s: %w", id, key, err)
		}
		s.mu.Lock()
		delete(s.releases[key], id)
		s.mu.Unlock()
	}
	return nil
}

func (s *Store) putApp(ctx context.Context, a model.App) error {
	if err := put(ctx, s.kv, catalog.AppKey(a.Space, a.Name), a); err != nil {
		return fmt.Errorf("saving app %s: %w", a.Key(), err)
	}
	s.mu.Lock()
	s.apps[a.Key()] = a
	s.mu.Unlock()
	return nil
}

func (s *Store) putRelease(ctx context.Context, r model.Release) error {
	if err := s.storeRelease(ctx, r); err != nil {
		return err
	}
	s.mu.Lock()
	s.keepRelease(r)
	s.mu.Unlock()
	return nil
}

// keepRelease puts r in the store's view. Caller holds s.mu.
func (s *Store) keepRelease(r model.Release) {
	if s.releases[r.Key()] == nil {
		s.releases[r.Key()] = map[string]model.Release{}
	}
	s.releases[r.Key()][r.ID] = r
}

// storeRelease writes r to Consul, its env sealed.
func (s *Store) storeRelease(ctx context.Context, r model.Release) error {
	key, data, err := s.encodeRelease(r)
	if err != nil {
		return err
	}
	if err := s.kv.Put(ctx, key, json.RawMessage(data)); err != nil {
		return fmt.Errorf("saving release %s of %s: %w", r.ID, r.Key(), err)
	}
	return nil
}

// encodeRelease is r as Consul stores it, its env sealed, and its key.
func (s *Store) encodeRelease(r model.Release) (key string, data []byte, err error) {
	st, err := s.sealRelease(r)
	if err != nil {
		return "", nil, err
	}
	key = catalog.ReleaseKey(r.Space, r.App, r.ID)
	if data, err = encode(key, st); err != nil {
		return "", nil, fmt.Errorf("saving release %s of %s: %w", r.ID, r.Key(), err)
	}
	return key, data, nil
}

func (s *Store) removeApp(ctx context.Context, key model.AppKey) error {
	if err := s.kv.Delete(ctx, catalog.AppKey(key.Space, key.Name)); err != nil {
		return fmt.Errorf("removing app %s: %w", key, err)
	}
	s.mu.Lock()
	delete(s.apps, key)
	s.mu.Unlock()
	if err := s.kv.DeleteTree(ctx, catalog.ReleasesPrefix(key.Space, key.Name)); err != nil {
		return fmt.Errorf("removing the releases of %s: %w", key, err)
	}
	s.mu.Lock()
	delete(s.releases, key)
	s.mu.Unlock()
	return s.wake(ctx, key)
}

// putReleasesAndApps writes releases, then apps, in as few Consul
// transactions as fit (a commit of 1,000 apps is ~40 writes to Consul,
// not 2,000 one after another), every release before any app that may
// ask for it. What was written is in the store's view, even on error.
func (s *Store) putReleasesAndApps(ctx context.Context, rels []model.Release, apps []model.App) error {
	groups := make([]group, 0, len(rels)+len(apps))
	for _, r := range rels {
		key, data, err := s.encodeRelease(r)
		if err != nil {
			return err
		}
		groups = append(groups, group{values: map[string][]byte{key: data}, size: len(data)})
	}
	for _, a := range apps {
		key := catalog.AppKey(a.Space, a.Name)
		data, err := encode(key, a)
		if err != nil {
			return fmt.Errorf("saving app %s: %w", a.Key(), err)
		}
		groups = append(groups, group{values: map[string][]byte{key: data}, size: len(data)})
	}
	written, err := s.writeGroups(ctx, groups)
	s.mu.Lock()
	for i := range written {
		if i < len(rels) {
			s.keepRelease(rels[i])
		} else {
			a := apps[i-len(rels)]
			s.apps[a.Key()] = a
		}
	}
	s.mu.Unlock()
	if err != nil {
		return fmt.Errorf("saving the releases and apps of a commit (%d of %d written): %w", written, len(groups), err)
	}
	return nil
}

// put writes v at key, refusing a value Consul would refuse (encode).
func put(ctx context.Context, kv KV, key string, v any) error {
	data, err := encode(key, v)
	if err != nil {
		return err
	}
	return kv.Put(ctx, key, json.RawMessage(data))
}

// SourceStatus reads the stored status of a source.
func (s *Store) SourceStatus(ctx context.Context, name string) (model.SourceStatus, bool, error) {
	var st model.SourceStatus
	found, err := s.kv.Get(ctx, catalog.SourceKey(name), &st)
	if err != nil {
		return model.SourceStatus{}, false, fmt.Errorf("reading the status of source %s: %w", name, err)
	}
	return st, found, nil
}

// PutSourceStatus stores the status of a source.
func (s *Store) PutSourceStatus(ctx context.Context, st model.SourceStatus) error {
	if err := put(ctx, s.kv, catalog.SourceKey(st.Name), st); err != nil {
		return fmt.Errorf("saving the status of source %s: %w", st.Name, err)
	}
	return nil
}

// DeleteSourceStatus removes the stored status of a source (a preview's,
// when it is torn down).
func (s *Store) DeleteSourceStatus(ctx context.Context, name string) error {
	if err := s.kv.Delete(ctx, catalog.SourceKey(name)); err != nil {
		return fmt.Errorf("deleting the status of source %s: %w", name, err)
	}
	return nil
}

// Staged is a staging cache entry: the droplet built from a source tree
// with some buildpacks and stack (decide.StagingKey), and the buildpack
// that built it.
type Staged struct {
	Droplet   string `json:"droplet"`
	Buildpack string `json:"buildpack"`
	// Procfile is the source's Procfile by process type.
	Procfile map[string]string `json:"procfile,omitempty"`
}

// Cached looks a staging key up in the staging cache.
func (s *Store) Cached(ctx context.Context, stagingKey string) (Staged, bool, error) {
	var e Staged
	found, err := s.kv.Get(ctx, catalog.DropletKey(stagingKey), &e)
	if err != nil {
		return Staged{}, false, fmt.Errorf("reading the staging cache: %w", err)
	}
	return e, found, nil
}

// ForgetCached drops the staging cache entries whose droplet gone says
// is gone.
func (s *Store) ForgetCached(ctx context.Context, gone func(droplet string) bool) error {
	cache, err := s.kv.List(ctx, catalog.DropletsPrefix)
	if err != nil {
		return fmt.Errorf("listing the staging cache: %w", err)
	}
	for k, data := range cache {
		var e Staged
		if json.Unmarshal(data, &e) == nil && gone(e.Droplet) {
			if err := s.kv.Delete(ctx, k); err != nil {
				return fmt.Errorf("dropping a staging cache entry: %w", err)
			}
		}
	}
	return nil
}
