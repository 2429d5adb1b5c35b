package tokens

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	consul "github.com/hashicorp/consul/api"
)

// Keys in Consul KV. A record is found by its id; a name index keeps
// names unique (written first, with check-and-set).
const (
	recordsPrefix = "driftless/tokens/"
	namesPrefix   = "driftless/token-names/"
	usePrefix     = "driftless/token-use/"
	// bootstrapKey marks that the first admin token was made: only one
	// controller of several starting together makes it.
	bootstrapKey = "driftless/token-bootstrap"
)

// Errors of Verify. None of them carries the token.
var (
	ErrUnknown = errors.New("unknown token (revoked, or never made here)")
	ErrExpired = errors.New("token expired")
)

// Store keeps tokens in Consul KV. Every controller reads the same
// records on every check, so a revocation holds at once everywhere.
type Store struct {
	kv  *consul.KV
	now func() time.Time
	// touched throttles last-use writes to one a minute per token.
	mu      sync.Mutex
	touched map[string]time.Time
}

// NewStore keeps tokens in c's KV store.
func NewStore(c *consul.Client) *Store {
	return &Store{kv: c.KV(), now: time.Now, touched: map[string]time.Time{}}
}

// Request asks for a new token.
type Request struct {
	Name   string   `json:"name"`
	Role   string   `json:"role"`
	Spaces []string `json:"spaces,omitempty"`
	// TTL is its lifetime; zero means DefaultTTL.
	TTL time.Duration `json:"ttl,omitempty"`
	// CreatedBy names the token that asks.
	CreatedBy string `json:"created_by,omitempty"`
}

// ErrNameTaken is Create's error for a name another token has.
var ErrNameTaken = errors.New("a token of that name exists: revoke it first or choose another name")

// Create makes a token and returns it (the only time it is seen) with its
// record.
func (s *Store) Create(ctx context.Context, req Request) (string, Token, error) {
	if err := Validate(req.Name, req.Role, req.Spaces); err != nil {
		return "", Token{}, err
	}
	if req.TTL < 0 {
		return "", Token{}, errors.New("a token's lifetime must be positive")
	}
	if req.TTL == 0 {
		req.TTL = DefaultTTL
	}
	id, tok, err := newSecret()
	if err != nil {
		return "", Token{}, err
	}
	_, secret, _ := Parse(tok)
	now := s.now().UTC().Truncate(time.Second)
	t := Token{ID: id, Name: req.Name, Role: req.Role, Spaces: slices.Compact(slices.Sorted(slices.Values(req.Spaces))),
		Hash: hash(secret), CreatedAt: now, ExpiresAt: now.Add(req.TTL), CreatedBy: req.CreatedBy}
	ok, _, err := s.kv.CAS(&consul.KVPair{Key: namesPrefix + req.Name, Value: []byte(id)}, writeOpts(ctx))
	if err != nil {
		return "", Token{}, fmt.Errorf("reserving token name %s: %w", req.Name, err)
	}
	if !ok {
		return "", Token{}, fmt.Errorf("token %s: %w", req.Name, ErrNameTaken)
	}
	data, err := json.Marshal(t)
	if err != nil {
		return "", Token{}, fmt.Errorf("encoding token %s: %w", req.Name, err)
	}
	if _, err := s.kv.Put(&consul.KVPair{Key: recordsPrefix + id, Value: data}, writeOpts(ctx)); err != nil {
		_, _ = s.kv.Delete(namesPrefix+req.Name, writeOpts(ctx))
		return "", Token{}, fmt.Errorf("storing token %s: %w", req.Name, err)
	}
	return tok, t, nil
}

// Verify finds whose tok is: its record, if the token is well formed,
// known, its secret matches and it has not expired.
func (s *Store) Verify(ctx context.Context, tok string) (Token, error) {
	id, secret, err := Parse(tok)
	if err != nil {
		return Token{}, err
	}
	t, found, err := s.get(ctx, id)
	if err != nil {
		return Token{}, err
	}
	if !found || !t.matches(secret) {
		return Token{}, ErrUnknown
	}
	if t.Expired(s.now()) {
		return Token{}, fmt.Errorf("%w on %s", ErrExpired, t.ExpiresAt.Format(time.RFC3339))
	}
	s.touch(ctx, id)
	return t, nil
}

func (s *Store) get(ctx context.Context, id string) (Token, bool, error) {
	p, _, err := s.kv.Get(recordsPrefix+id, readOpts(ctx))
	if err != nil {
		return Token{}, false, fmt.Errorf("reading token %s: %w", id, err)
	}
	if p == nil {
		return Token{}, false, nil
	}
	var t Token
	if err := json.Unmarshal(p.Value, &t); err != nil {
		return Token{}, false, fmt.Errorf("decoding token %s: %w", id, err)
	}
	return t, true, nil
}

// touch records that id was used, at most once a minute per token.
func (s *Store) touch(ctx context.Context, id string) {
	now := s.now()
	s.mu.Lock()
	last := s.touched[id]
	if now.Sub(last) < time.Minute {
		s.mu.Unlock()
		return
	}
	s.touched[id] = now
	s.mu.Unlock()
	_, _ = s.kv.Put(&consul.KVPair{Key: usePrefix + id, Value: []byte(now.UTC().Format(time.RFC3339))}, writeOpts(ctx))
}

// Listed is a token as `driftless token list` shows it.
type Listed struct {
	Token
	// LastUsed is when it was last accepted (to the minute); zero if never.
	LastUsed time.Time `json:"last_used,omitzero"`
}

// List returns every token, by name.
func (s *Store) List(ctx context.Context) ([]Listed, error) {
	pairs, _, err := s.kv.List(recordsPrefix, readOpts(ctx))
	if err != nil {
		return nil, fmt.Errorf("listing tokens: %w", err)
	}
	uses, _, err := s.kv.List(usePrefix, readOpts(ctx))
	if err != nil {
		return nil, fmt.Errorf("listing token uses: %w", err)
	}
	used := map[string]time.Time{}
	for _, u := range uses {
		if at, err := time.Parse(time.RFC3339, string(u.Value)); err == nil {
			used[strings.TrimPrefix(u.Key, usePrefix)] = at
		}
	}
	out := make([]Listed, 0, len(pairs))
	for _, p := range pairs {
		var t Token
		if err := json.Unmarshal(p.Value, &t); err != nil {
			return nil, fmt.Errorf("decoding token %s: %w", p.Key, err)
		}
		t.Hash = ""
		out = append(out, Listed{Token: t, LastUsed: used[t.ID]})
	}
	slices.SortFunc(out, func(a, b Listed) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// Lookup finds a token's record by name.
func (s *Store) Lookup(ctx context.Context, name string) (Token, bool, error) {
	p, _, err := s.kv.Get(namesPrefix+name, readOpts(ctx))
	if err != nil {
		return Token{}, false, fmt.Errorf("reading token name %s: %w", name, err)
	}
	if p == nil {
		return Token{}, false, nil
	}
	t, found, err := s.get(ctx, string(p.Value))
	t.Hash = ""
	return t, found, err
}

// ErrNoSuchToken is Revoke's error for a name no token has.
var ErrNoSuchToken = errors.New("no token of that name")

// Revoke deletes the token named name: from the next request on, no
// controller accepts it.
func (s *Store) Revoke(ctx context.Context, name string) (Token, error) {
	p, _, err := s.kv.Get(namesPrefix+name, readOpts(ctx))
	if err != nil {
		return Token{}, fmt.Errorf("reading token name %s: %w", name, err)
	}
	if p == nil {
		return Token{}, fmt.Errorf("token %s: %w", name, ErrNoSuchToken)
	}
	id := string(p.Value)
	t, _, err := s.get(ctx, id)
	if err != nil {
		return Token{}, err
	}
	// The record first: once it is gone the token is refused.
	if _, err := s.kv.Delete(recordsPrefix+id, writeOpts(ctx)); err != nil {
		return Token{}, fmt.Errorf("revoking token %s: %w", name, err)
	}
	_, _ = s.kv.Delete(usePrefix+id, writeOpts(ctx))
	if _, err := s.kv.Delete(namesPrefix+name, writeOpts(ctx)); err != nil {
		return Token{}, fmt.Errorf("freeing token name %s: %w", name, err)
	}
	t.Hash = ""
	return t, nil
}

// Bootstrap makes the platform's first admin token, named name, if no
// controller has made one yet; it returns "" when one had.
func (s *Store) Bootstrap(ctx context.Context, name string, ttl time.Duration) (string, error) {
	ok, _, err := s.kv.CAS(&consul.KVPair{Key: bootstrapKey, Value: []byte(s.now().UTC().Format(time.RFC3339))}, writeOpts(ctx))
	if err != nil {
		return "", fmt.Errorf("marking the first admin token: %w", err)
	}
	if !ok {
		return "", nil
	}
	tok, _, err := s.Create(ctx, Request{Name: name, Role: RoleAdmin, TTL: ttl})
	if err != nil {
		_, _ = s.kv.Delete(bootstrapKey, writeOpts(ctx)) // the next start tries again
		return "", fmt.Errorf("making the first admin token: %w", err)
	}
	return tok, nil
}

// Wiped reports whether the store lost its tokens: no first admin token
// was ever marked made (a Consul started empty, its state gone).
func (s *Store) Wiped(ctx context.Context) (bool, error) {
	p, _, err := s.kv.Get(bootstrapKey, readOpts(ctx))
	if err != nil {
		return false, fmt.Errorf("reading %s: %w", bootstrapKey, err)
	}
	return p == nil, nil
}

// Restore stores tok again under req (its name, role, spaces and a
// lifetime from now) and marks the first admin token made: how a holder
// of tokens puts them back into a Consul that lost its state. It never
// brings back a token that was revoked from a store that kept its state:
// callers restore only a Wiped store.
func (s *Store) Restore(ctx context.Context, tok string, req Request) error {
	id, secret, err := Parse(tok)
	if err != nil {
		return err
	}
	if err := Validate(req.Name, req.Role, req.Spaces); err != nil {
		return err
	}
	if req.TTL <= 0 {
		req.TTL = DefaultTTL
	}
	now := s.now().UTC().Truncate(time.Second)
	t := Token{ID: id, Name: req.Name, Role: req.Role, Spaces: req.Spaces, Hash: hash(secret), CreatedAt: now,
		ExpiresAt: now.Add(req.TTL), CreatedBy: req.CreatedBy}
	data, err := json.Marshal(t)
	if err != nil {
		return fmt.Errorf("encoding token %s: %w", req.Name, err)
	}
	for _, p := range []*consul.KVPair{
		{Key: recordsPrefix + id, Value: data},
		{Key: namesPrefix + req.Name, Value: []byte(id)},
		{Key: bootstrapKey, Value: []byte(now.Format(time.RFC3339))},
	} {
		if _, err := s.kv.Put(p, writeOpts(ctx)); err != nil {
			return fmt.Errorf("restoring token %s: %w", req.Name, err)
		}
	}
	return nil
}

// Replace revokes the token named name, if any, and makes a new one: how
// `driftless dev` renews its own admin and cell tokens at every start.
func (s *Store) Replace(ctx context.Context, req Request) (string, error) {
	if _, err := s.Revoke(ctx, req.Name); err != nil && !errors.Is(err, ErrNoSuchToken) {
		return "", err
	}
	tok, _, err := s.Create(ctx, req)
	return tok, err
}

func readOpts(ctx context.Context) *consul.QueryOptions {
	return (&consul.QueryOptions{}).WithContext(ctx)
}

func writeOpts(ctx context.Context) *consul.WriteOptions {
	return (&consul.WriteOptions{}).WithContext(ctx)
}
