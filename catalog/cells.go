package catalog

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	consul "github.com/hashicorp/consul/api"
)

// Cell liveness. A cell is alive while it holds its key (CellKey) with a
// Consul session it renews (Presence). Routers follow CellsPrefix with one
// blocking query and route only to the instances of cells that hold their
// key (LiveCells). A session is renewed against the Consul servers, not
// through the local agent's state, so a renewal never waits behind the
// agent syncing a backlog of registrations (a TTL check did, and lapsed
// under load), and a renewal is not a Raft write. When the cell stops
// renewing, or its host's agent fails its serf health, Consul invalidates
// the session and deletes the key: one write takes all of the cell's
// instances out of the routers, where an alias check per instance cost one
// write each.

// CellsPrefix is the prefix of every CellKey.
const CellsPrefix = KVPrefix + "cells/"

// CellKey is the key a live cell holds with its session.
func CellKey(cell string) string { return CellsPrefix + cell }

// minSessionTTL is Consul's least session TTL.
const minSessionTTL = 10 * time.Second

// CellSessionTTL is the TTL of the session of a cell that wants its
// instances out of the routers ttl after its last renewal: Consul
// invalidates a session twice its TTL after the last renewal, so half of
// ttl, and at least Consul's minimum of 10 s (a ttl under 20 s is 20 s).
func CellSessionTTL(ttl time.Duration) time.Duration {
	return max(ttl/2, minSessionTTL)
}

// LiveCells is the set of cells holding their key among pairs (a list of
// CellsPrefix).
func LiveCells(pairs consul.KVPairs) map[string]bool {
	live := make(map[string]bool, len(pairs))
	for _, p := range pairs {
		if cell, ok := strings.CutPrefix(p.Key, CellsPrefix); ok && cell != "" && p.Session != "" {
			live[cell] = true
		}
	}
	return live
}

// ErrPresenceLost says a cell's session or key is gone: Hold takes them
// again.
var ErrPresenceLost = errors.New("the cell's consul session or key is gone")

// Presence is one cell's liveness in Consul: a session with a TTL,
// renewed by Renew, holding CellKey.
type Presence struct {
	client  *consul.Client
	cell    string
	address string
	ttl     time.Duration

	mu      sync.Mutex
	session string
}

// NewPresence prepares the presence of cell (advertised at address) whose
// instances leave the routers about ttl after it stops renewing.
func NewPresence(client *consul.Client, cell, address string, ttl time.Duration) *Presence {
	return &Presence{client: client, cell: cell, address: address, ttl: ttl}
}

// Hold takes the cell's key with a session: the one already holding it
// when that session is still valid (a restarted agent adopts it, so its
// instances never leave the routers), else a new one. A session of the
// cell's that has lapsed is destroyed first; its key went with it.
func (p *Presence) Hold() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	key := CellKey(p.cell)
	kv, sessions := p.client.KV(), p.client.Session()
	pair, _, err := kv.Get(key, nil)
	if err != nil {
		return fmt.Errorf("reading the cell's key %s: %w", key, err)
	}
	if pair != nil && pair.Session != "" {
		if entry, _, err := sessions.Renew(pair.Session, nil); err == nil && entry != nil {
			p.session = pair.Session
			return nil
		}
	}
	if p.session != "" {
		_, _ = sessions.Destroy(p.session, nil)
		p.session = ""
	}
	id, _, err := sessions.Create(&consul.SessionEntry{
		Name: "driftless cell " + p.cell, TTL: CellSessionTTL(p.ttl).String(),
		Behavior: consul.SessionBehaviorDelete, LockDelay: time.Millisecond,
	}, nil)
	if err != nil {
		return fmt.Errorf("creating the cell's consul session: %w", err)
	}
	ok, _, err := kv.Acquire(&consul.KVPair{Key: key, Value: []byte(p.address), Session: id}, nil)
	if err != nil || !ok {
		_, _ = sessions.Destroy(id, nil)
		if err == nil {
			err = fmt.Errorf("held by another session")
		}
		return fmt.Errorf("taking the cell's key %s: %w", key, err)
	}
	p.session = id
	return nil
}

// Renew keeps the session alive; ErrPresenceLost (wrapped) when the
// session or the key is gone and Hold must take them again.
func (p *Presence) Renew() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.session == "" {
		return ErrPresenceLost
	}
	entry, _, err := p.client.Session().Renew(p.session, nil)
	if err != nil {
		return fmt.Errorf("renewing the cell's consul session: %w", err)
	}
	if entry == nil {
		return fmt.Errorf("renewing the cell's consul session: %w", ErrPresenceLost)
	}
	pair, _, err := p.client.KV().Get(CellKey(p.cell), nil)
	if err != nil {
		return fmt.Errorf("reading the cell's key: %w", err)
	}
	if pair == nil || pair.Session != p.session {
		return fmt.Errorf("the cell's key: %w", ErrPresenceLost)
	}
	return nil
}

// ForgetCells deregisters the node (CellNode) of every cell that holds no
// key (its session lapsed: silent for its TTL at least) and that keep
// does not vouch for (the controller keeps the cells it hears), with
// every registration on it: a cell that is gone for good leaves nothing in
// the catalog. A cell that comes back registers its node and instances
// again (its registry sync). It returns the cells forgotten.
func ForgetCells(client *consul.Client, keep func(cell string) bool) ([]string, error) {
	nodes, _, err := client.Catalog().Nodes(&consul.QueryOptions{Filter: fmt.Sprintf("Node matches %q", "^"+CellNodePrefix)})
	if err != nil {
		return nil, fmt.Errorf("listing the cells' nodes: %w", err)
	}
	pairs, _, err := client.KV().List(CellsPrefix, nil)
	if err != nil {
		return nil, fmt.Errorf("listing the live cells: %w", err)
	}
	live := LiveCells(pairs)
	var forgotten []string
	for _, n := range nodes {
		cell, ok := strings.CutPrefix(n.Node, CellNodePrefix)
		if !ok || live[cell] || keep(cell) {
			continue
		}
		if _, err := client.Catalog().Deregister(&consul.CatalogDeregistration{Node: n.Node}, nil); err != nil {
			return forgotten, fmt.Errorf("deregistering the node of cell %s: %w", cell, err)
		}
		forgotten = append(forgotten, cell)
	}
	return forgotten, nil
}
