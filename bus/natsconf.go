package bus

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"golang.org/x/crypto/bcrypt"
)

// ServerConfig is one node of a nats-server cluster that serves driftless
// (docs/operations.md, "Production layout"): its clients are the users of
// Users with their roles' Permissions, the nodes reach each other on
// authenticated cluster routes, and JetStream keeps the log and event
// streams (the controller makes them with --log-replicas copies).
type ServerConfig struct {
	// Name is the node's server_name, unique in the cluster (JetStream
	// needs it stable across restarts).
	Name string
	// Listen is where clients connect ("host:port").
	Listen string
	// Monitor, when set, is the monitoring endpoint ("host:port").
	Monitor string
	// Cluster names the cluster; ClusterListen is where the node takes
	// routes from the others, Routes every node's ClusterListen (its own
	// may be among them: a server ignores the route to itself).
	Cluster, ClusterListen string
	Routes                 []string
	// RouteUser and RoutePassword authenticate the routes both ways.
	RouteUser, RoutePassword string
	// StoreDir is JetStream's folder; MaxFileStore, when set, its limit
	// in bytes.
	StoreDir     string
	MaxFileStore int64
	// Users are the platform's clients: each gets its identity's
	// Permissions. Passwords are written as bcrypt hashes.
	Users []Credential
}

// Render writes the node's configuration in nats-server's format (JSON,
// which nats-server reads). It holds the route password: keep it 0600.
func (c ServerConfig) Render() ([]byte, error) {
	if c.Name == "" || c.Listen == "" || c.Cluster == "" || c.ClusterListen == "" || c.StoreDir == "" {
		return nil, errors.New("a NATS server needs a name, a listen address, a cluster name, a cluster address and a JetStream folder")
	}
	if c.RouteUser == "" || c.RoutePassword == "" {
		return nil, errors.New("a NATS cluster's routes need a user and a password")
	}
	if _, err := StaticUsers(c.Users...); err != nil { // names unique, identities valid
		return nil, fmt.Errorf("NATS server %s: %w", c.Name, err)
	}
	users := make([]map[string]any, 0, len(c.Users))
	for _, u := range slices.SortedFunc(slices.Values(c.Users), func(a, b Credential) int { return strings.Compare(a.User, b.User) }) {
		p, err := Permissions(u.Identity)
		if err != nil {
			return nil, fmt.Errorf("NATS user %s: %w", u.User, err)
		}
		hash, err := bcrypt.GenerateFromPassword([]byte(u.Password), bcrypt.DefaultCost)
		if err != nil {
			return nil, fmt.Errorf("hashing the password of NATS user %s: %w", u.User, err)
		}
		perms := map[string]any{"publish": map[string]any{"allow": p.Publish}, "subscribe": map[string]any{"allow": p.Subscribe}}
		if p.Responses {
			perms["allow_responses"] = map[string]any{"max": 1, "expires": ResponseTTL.String()}
		}
		users = append(users, map[string]any{"user": u.User, "password": string(hash), "permissions": perms})
	}
	routes := make([]string, 0, len(c.Routes))
	for _, r := range c.Routes {
		routes = append(routes, (&url.URL{Scheme: "nats", User: url.UserPassword(c.RouteUser, c.RoutePassword), Host: r}).String())
	}
	js := map[string]any{"store_dir": c.StoreDir}
	if c.MaxFileStore > 0 {
		js["max_file_store"] = c.MaxFileStore
	}
	cfg := map[string]any{
		"server_name": c.Name,
		"listen":      c.Listen,
		"jetstream":   js,
		"cluster": map[string]any{
			"name": c.Cluster, "listen": c.ClusterListen, "routes": routes,
			"authorization": map[string]any{"user": c.RouteUser, "password": c.RoutePassword},
		},
		"authorization": map[string]any{"users": users},
	}
	if c.Monitor != "" {
		cfg["http"] = c.Monitor
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false) // nats-server reads no \u escapes, and subjects hold '>'
	enc.SetIndent("", "  ")
	if err := enc.Encode(cfg); err != nil {
		return nil, fmt.Errorf("encoding NATS server %s's configuration: %w", c.Name, err)
	}
	return b.Bytes(), nil
}
