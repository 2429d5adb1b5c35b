package platform

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/driftless/driftless/api"
	"github.com/driftless/driftless/bus"
	"github.com/driftless/driftless/internal/files"
	"github.com/driftless/driftless/internal/ticks"
	"github.com/driftless/driftless/tokens"
)

// AdminTokenFile is the file, in a controller's data folder, that the
// platform's first admin token is written to (mode 0600).
const AdminTokenFile = "admin.token"

// bootstrapAdmin makes the platform's first admin token when no
// controller has, and writes it to dataDir/admin.token.
func bootstrapAdmin(ctx context.Context, store *tokens.Store, dataDir string, log *slog.Logger) error {
	tok, err := store.Bootstrap(ctx, "admin", 0)
	if err != nil || tok == "" {
		return err
	}
	path := filepath.Join(dataDir, AdminTokenFile)
	if err := writeSecretFile(path, tok); err != nil {
		return err
	}
	log.Info("made the platform's first admin token (role admin, 90 days): make others with `driftless token create`", "file", path)
	return nil
}

// devToken is the token named name that `driftless dev` keeps in path:
// the one already there if it is still good, else a new one (any of that
// name revoked first).
func devToken(ctx context.Context, store *tokens.Store, path string, req tokens.Request) (string, error) {
	if data, err := os.ReadFile(path); err == nil {
		tok := strings.TrimSpace(string(data))
		if t, err := store.Verify(ctx, tok); err == nil && t.Name == req.Name && t.Role == req.Role {
			return tok, nil
		}
	}
	tok, err := store.Replace(ctx, req)
	if err != nil {
		return "", fmt.Errorf("making dev's %s token: %w", req.Name, err)
	}
	return tok, writeSecretFile(path, tok)
}

// writeSecretFile writes a secret readable by its owner only.
func writeSecretFile(path, secret string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("creating %s: %w", filepath.Dir(path), err)
	}
	return files.WriteAtomic(path, []byte(secret+"\n"), 0o600)
}

// ReadTokenFile reads a token kept in a file (--token-file), refusing a
// file others may read.
func ReadTokenFile(path string) (string, error) {
	data, err := files.ReadPrivate(path)
	if err != nil {
		return "", fmt.Errorf("reading the token file: %w", err)
	}
	tok := strings.TrimSpace(string(data))
	if tok == "" {
		return "", errors.New("token file " + path + " is empty")
	}
	return tok, nil
}

// writeClientConfigs writes the CLI's configuration to path and, when dev
// runs under sudo, to the invoking user's own configuration too (owned by
// them), so that the README's commands work without sudo.
func writeClientConfigs(path string, cfg api.ClientConfig, log *slog.Logger) {
	if err := api.WriteClientConfig(path, cfg); err != nil {
		log.Warn("the CLI's configuration was not written: give --api and --token (or DRIFTLESS_API and DRIFTLESS_TOKEN)", "err", err)
		return
	}
	log.Info("wrote the CLI's configuration (API address and admin token)", "file", path)
	uid, gid := os.Getenv("SUDO_UID"), os.Getenv("SUDO_GID")
	if uid == "" || uid == "0" {
		return
	}
	u, err := user.LookupId(uid)
	if err != nil {
		return
	}
	own := filepath.Join(u.HomeDir, ".config", "driftless", "config.yml")
	if own == path {
		return
	}
	if err := api.WriteClientConfig(own, cfg); err != nil {
		log.Warn("the sudo user's CLI configuration was not written", "file", own, "err", err)
		return
	}
	nuid, _ := strconv.Atoi(uid)
	ngid, _ := strconv.Atoi(gid)
	for _, p := range []string{filepath.Dir(own), own} {
		_ = os.Chown(p, nuid, ngid)
	}
	log.Info("wrote the CLI's configuration for the user who ran sudo", "file", own)
}

// tokenNATSAuth authenticates cells and routers to a controller's embedded
// NATS server with their driftless tokens (the password): a token of role
// cell named after the cell ("cell-<id>" or "<id>") is that cell, whatever
// else it is refused; a token of role router is a router. Other passwords
// are left to the next authenticator (the --nats-users file).
func tokenNATSAuth(store *tokens.Store) bus.Authenticator {
	return func(user, password string) (bus.Identity, error) {
		if _, _, err := tokens.Parse(password); err != nil {
			return bus.Identity{}, bus.ErrUnknownUser
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		t, err := store.Verify(ctx, password)
		if err != nil {
			return bus.Identity{}, fmt.Errorf("NATS user %s: %w", user, err)
		}
		switch {
		case t.Role == tokens.RoleCell && (t.Name == "cell-"+user || t.Name == user):
			return bus.Identity{Role: bus.RoleCell, Cell: user}, nil
		case t.Role == tokens.RoleCell:
			return bus.Identity{}, fmt.Errorf("NATS user %s: token %s is another cell's (name cell tokens cell-<cell id>)", user, t.Name)
		case t.Role == tokens.RoleRouter:
			return bus.Identity{Role: bus.RoleRouter}, nil
		}
		return bus.Identity{}, fmt.Errorf("NATS user %s: a token of role %s is not a NATS credential (cell or router)", user, t.Role)
	}
}

// heldToken is a token dev holds and the record it was made with.
type heldToken struct {
	token string
	req   tokens.Request
}

// keepDevTokens puts dev's own tokens back when Consul lost its state (a
// dev Consul, in memory, restarted empty) until ctx ends: the CLI's
// configuration and the cell keep working. A token revoked from a Consul
// that kept its state stays revoked.
func keepDevTokens(ctx context.Context, store *tokens.Store, held []heldToken, every time.Duration, log *slog.Logger) {
	ticks.Every(ctx, every, func() {
		if wiped, err := store.Wiped(ctx); err != nil || !wiped {
			return
		}
		for _, h := range held {
			if err := store.Restore(ctx, h.token, h.req); err != nil {
				log.Warn("restoring dev's token", "name", h.req.Name, "err", err)
			}
		}
		log.Warn("Consul lost the platform's tokens (started empty?): dev's admin and cell tokens are restored; others must be made again")
	})
}
