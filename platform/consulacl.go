package platform

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	consul "github.com/hashicorp/consul/api"

	"github.com/driftless/driftless/catalog"
	"github.com/driftless/driftless/internal/children"
)

// Dev's own Consul runs with ACLs on and default deny. Its management token
// is kept in ManagementTokenFile (0600) under the data folder, the same
// across dev runs: the operator's break-glass (`CONSUL_HTTP_TOKEN=$(cat
// …) consul kv get -recurse driftless/`). Each role of dev gets a token of
// its own, minted at every start with catalog's policies: dev's Consul
// keeps nothing in memory across its restarts, and a token nobody holds
// any more is worth nothing.

// ManagementTokenFile is where dev keeps the management token of the
// Consul it starts, under its data folder.
const ManagementTokenFile = "consul/management.token"

// consulTokens is the Consul token of each role in one process.
type consulTokens struct {
	controller, cell, router string
}

// sameToken gives every role token: dev on a Consul it did not start.
func sameToken(token string) consulTokens { return consulTokens{token, token, token} }

var uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// managementToken reads the management token kept under dataDir, or makes
// and keeps one (0600) when there is none.
func managementToken(dataDir string) (string, error) {
	path := filepath.Join(dataDir, ManagementTokenFile)
	data, err := os.ReadFile(path)
	switch {
	case err == nil && uuidRE.MatchString(strings.TrimSpace(string(data))):
		if err := os.Chmod(path, 0o600); err != nil {
			return "", fmt.Errorf("restricting the Consul management token file: %w", err)
		}
		return strings.TrimSpace(string(data)), nil
	case err != nil && !errors.Is(err, os.ErrNotExist):
		return "", fmt.Errorf("reading the Consul management token: %w", err)
	}
	token, err := catalog.NewSecret()
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", fmt.Errorf("creating the Consul folder: %w", err)
	}
	if err := os.WriteFile(path, []byte(token+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("keeping the Consul management token: %w", err)
	}
	return token, nil
}

// startDevConsul starts dev's own Consul with ACLs (default deny), gives
// its agent a token of its own and mints a token per role; it returns
// them and the function that stops Consul.
func startDevConsul(ctx context.Context, dataDir, addr string, log *slog.Logger) (consulTokens, func(), error) {
	mgmt, err := managementToken(dataDir)
	if err != nil {
		return consulTokens{}, nil, err
	}
	p, err := children.StartConsul(ctx, children.ConsulOptions{HTTPAddr: addr, Node: "driftless-dev",
		LogPath: filepath.Join(dataDir, "logs", "consul.log"),
		ACL:     &children.ConsulACL{ManagementToken: mgmt, ConfigDir: filepath.Join(dataDir, "consul")}})
	if err != nil {
		return consulTokens{}, nil, fmt.Errorf("starting consul: %w", err)
	}
	stop := func() { _ = p.Stop(10 * time.Second) }
	log.Info("started consul with ACLs (default deny)", "addr", addr, "log", p.LogPath(),
		"management_token_file", filepath.Join(dataDir, ManagementTokenFile))
	tokens, err := mintDevTokens(ctx, addr, mgmt)
	if err != nil {
		stop()
		return consulTokens{}, nil, err
	}
	return tokens, stop, nil
}

// mintDevTokens gives the Consul agent at addr its own token and mints a
// token per role with catalog's policies, through the management token.
func mintDevTokens(ctx context.Context, addr, mgmt string) (consulTokens, error) {
	mc, err := catalog.NewClient(addr, mgmt)
	if err != nil {
		return consulTokens{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := catalog.EnsureAgentToken(ctx, mc); err != nil {
		return consulTokens{}, fmt.Errorf("dev's consul: %w", err)
	}
	// A Consul that outlived its dev (killed) still holds the tokens:
	// they are taken again, not doubled.
	have, _, err := mc.ACL().TokenList((&consul.QueryOptions{}).WithContext(ctx))
	if err != nil {
		return consulTokens{}, fmt.Errorf("listing dev's consul tokens: %w", err)
	}
	byDesc := map[string]string{}
	for _, t := range have {
		byDesc[t.Description] = t.SecretID
	}
	var t consulTokens
	var grants []catalog.Grant
	for _, r := range []struct {
		role   catalog.Role
		secret *string
	}{{catalog.RoleController, &t.controller}, {catalog.RoleCell, &t.cell}, {catalog.RoleRouter, &t.router}} {
		desc := "driftless dev: " + string(r.role)
		if *r.secret = byDesc[desc]; *r.secret == "" {
			if *r.secret, err = catalog.NewSecret(); err != nil {
				return consulTokens{}, err
			}
		}
		grants = append(grants, catalog.Grant{Secret: *r.secret, Description: desc,
			Policies: []catalog.Policy{r.role.Policy()}})
	}
	if err := catalog.EnsureTokens(ctx, mc, grants...); err != nil {
		return consulTokens{}, fmt.Errorf("dev's consul: %w", err)
	}
	return t, nil
}

// devConsulTokens are the tokens of dev's roles on a Consul that answers
// at addr before dev starts: token, when given (an external Consul), for
// every role; else, when the management token kept under dataDir works
// there (dev's own Consul, left running by a dev that was killed), tokens
// minted with it; else none (a Consul without ACLs).
func devConsulTokens(ctx context.Context, dataDir, addr, token string, log *slog.Logger) (consulTokens, error) {
	if token != "" {
		return sameToken(token), nil
	}
	data, err := os.ReadFile(filepath.Join(dataDir, ManagementTokenFile))
	if err != nil {
		return consulTokens{}, nil
	}
	mgmt := strings.TrimSpace(string(data))
	mc, err := catalog.NewClient(addr, mgmt)
	if err != nil {
		return consulTokens{}, err
	}
	if _, _, err := mc.ACL().TokenReadSelf((&consul.QueryOptions{}).WithContext(ctx)); err != nil {
		return consulTokens{}, nil // not dev's: no ACLs, or another management token
	}
	log.Info("the consul that answers is dev's own, left running: minting the roles' tokens again", "addr", addr)
	return mintDevTokens(ctx, addr, mgmt)
}
