package catalog

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	consul "github.com/hashicorp/consul/api"
)

// KVPrefix starts every key driftless writes in Consul's KV store.
const KVPrefix = "driftless/"

// AppKey holds the desired state of one app (model.App).
func AppKey(space, app string) string { return KVPrefix + "apps/" + space + "/" + app }

// AppsPrefix is the prefix of every AppKey.
const AppsPrefix = KVPrefix + "apps/"

// AllReleasesPrefix is the prefix of every release of every app.
const AllReleasesPrefix = KVPrefix + "releases/"

// ReleaseKey holds one release of an app (model.Release).
func ReleaseKey(space, app, id string) string {
	return AllReleasesPrefix + space + "/" + app + "/" + id
}

// ReleasesPrefix is the prefix of every release of one app.
func ReleasesPrefix(space, app string) string {
	return AllReleasesPrefix + space + "/" + app + "/"
}

// SourceKey holds the status of one git source (what was seen, applied, refused).
func SourceKey(name string) string { return KVPrefix + "sources/" + name }

// DropletKey maps a staging cache key (source tree, buildpacks, stack) to
// the digest of the droplet built from it.
func DropletKey(cacheKey string) string { return DropletsPrefix + cacheKey }

// DropletsPrefix is the prefix of the staging cache.
const DropletsPrefix = KVPrefix + "droplets/"

// ServiceKey holds a service instance (model.ServiceInstance).
func ServiceKey(space, name string) string { return ServicesPrefix + space + "/" + name }

// ServicesPrefix is the prefix of every ServiceKey.
const ServicesPrefix = KVPrefix + "services/"

// BindingKey holds a service binding (model.ServiceBinding, its
// credentials sealed).
func BindingKey(space, app, service string) string {
	return BindingsPrefix + space + "/" + app + "/" + service
}

// BindingsPrefix is the prefix of every BindingKey.
const BindingsPrefix = KVPrefix + "bindings/"

// SleepingKey holds a model.Sleeping while the app is asleep (scaled to
// zero until its next request); the routers follow SleepingPrefix.
func SleepingKey(space, app string) string { return SleepingPrefix + space + "/" + app }

// SleepingPrefix is the prefix of every SleepingKey.
const SleepingPrefix = KVPrefix + "sleeping/"

// LeaderKey is the lock that elects the acting controller.
const LeaderKey = KVPrefix + "leader"

// KV reads and writes JSON values in Consul's KV store.
type KV struct {
	kv *consul.KV
}

// NewKV wraps a Consul client's KV endpoint.
func NewKV(c *consul.Client) *KV { return &KV{kv: c.KV()} }

// Put stores v as JSON at key.
func (k *KV) Put(ctx context.Context, key string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encoding %s: %w", key, err)
	}
	opts := (&consul.WriteOptions{}).WithContext(ctx)
	if _, err := k.kv.Put(&consul.KVPair{Key: key, Value: data}, opts); err != nil {
		return fmt.Errorf("writing %s to consul: %w", key, err)
	}
	return nil
}

// MaxTxnOps is the most operations driftless puts in one Consul
// transaction (Consul takes up to 128).
const MaxTxnOps = 64

// MaxTxnBytes is the most value bytes PutAll sends in one transaction,
// under Consul's default limit of 512 KiB a request (txn_max_req_len).
const MaxTxnBytes = 384 << 10

// PutAll stores every value (already encoded JSON) in one Consul
// transaction: all are written or none. It refuses more than MaxTxnOps
// values or MaxTxnBytes of them.
func (k *KV) PutAll(ctx context.Context, values map[string][]byte) error {
	if len(values) > MaxTxnOps {
		return fmt.Errorf("writing %d keys to consul at once: at most %d", len(values), MaxTxnOps)
	}
	ops := make(consul.KVTxnOps, 0, len(values))
	size := 0
	for key, data := range values {
		size += len(data)
		ops = append(ops, &consul.KVTxnOp{Verb: consul.KVSet, Key: key, Value: data})
	}
	if size > MaxTxnBytes {
		return fmt.Errorf("writing %d bytes to consul at once: at most %d", size, MaxTxnBytes)
	}
	opts := (&consul.QueryOptions{}).WithContext(ctx)
	ok, resp, _, err := k.kv.Txn(ops, opts)
	if err != nil {
		return fmt.Errorf("writing %d keys to consul: %w", len(values), err)
	}
	if !ok {
		return fmt.Errorf("writing %d keys to consul: %w", len(values), refused(resp.Errors))
	}
	return nil
}

// Get decodes the JSON at key into v; found is false when the key is absent.
func (k *KV) Get(ctx context.Context, key string, v any) (found bool, err error) {
	opts := (&consul.QueryOptions{}).WithContext(ctx)
	pair, _, err := k.kv.Get(key, opts)
	if err != nil {
		return false, fmt.Errorf("reading %s from consul: %w", key, err)
	}
	if pair == nil {
		return false, nil
	}
	if err := json.Unmarshal(pair.Value, v); err != nil {
		return true, fmt.Errorf("decoding %s: %w", key, err)
	}
	return true, nil
}

// List returns the raw JSON of every key under prefix, by key.
func (k *KV) List(ctx context.Context, prefix string) (map[string][]byte, error) {
	opts := (&consul.QueryOptions{}).WithContext(ctx)
	pairs, meta, err := k.kv.List(prefix, opts)
	if err != nil {
		return nil, fmt.Errorf("listing %s in consul: %w", prefix, err)
	}
	if meta != nil && meta.ResultsFilteredByACLs {
		// Consul answers with what the token may read: a partial list
		// taken for the whole would lose the rest.
		return nil, fmt.Errorf("listing %s in consul: its ACLs hide keys from this token (the controller's needs the %s policy)",
			prefix, RoleController.Policy().Name)
	}
	out := make(map[string][]byte, len(pairs))
	for _, p := range pairs {
		if strings.HasSuffix(p.Key, "/") {
			continue
		}
		out[p.Key] = p.Value
	}
	return out, nil
}

// Delete removes key.
func (k *KV) Delete(ctx context.Context, key string) error {
	opts := (&consul.WriteOptions{}).WithContext(ctx)
	if _, err := k.kv.Delete(key, opts); err != nil {
		return fmt.Errorf("deleting %s in consul: %w", key, err)
	}
	return nil
}

// DeleteTree removes every key under prefix.
func (k *KV) DeleteTree(ctx context.Context, prefix string) error {
	opts := (&consul.WriteOptions{}).WithContext(ctx)
	if _, err := k.kv.DeleteTree(prefix, opts); err != nil {
		return fmt.Errorf("deleting %s in consul: %w", prefix, err)
	}
	return nil
}

// NewClient connects to the Consul agent's HTTP API at addr ("host:port")
// with token (a role's ACL token; empty for Consul's anonymous token). The
// token is this one, never CONSUL_HTTP_TOKEN or CONSUL_HTTP_TOKEN_FILE read
// behind the caller's back: the roles read the variable into their config.
func NewClient(addr, token string) (*consul.Client, error) {
	cfg := consul.DefaultConfig()
	cfg.Address, cfg.Token, cfg.TokenFile = addr, token, ""
	c, err := consul.NewClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("consul client for %s: %w", addr, err)
	}
	return c, nil
}
