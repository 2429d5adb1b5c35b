package platform

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/driftless/driftless/bus"
	"github.com/driftless/driftless/internal/testenv"
	"github.com/driftless/driftless/tokens"
)

// TestTokenNATSAuth: a controller's embedded NATS server (the real one)
// takes a cell's driftless token as its NATS password, for that cell
// only; a router token makes a router; other tokens, revoked ones and
// anonymous clients are refused; other passwords are left to the next
// authenticator.
func TestTokenNATSAuth(t *testing.T) {
	c := testenv.StartConsul(t)
	ctx := context.Background()
	store := tokens.NewStore(c.Client)
	mk := func(name, role string) string {
		tok, _, err := store.Create(ctx, tokens.Request{Name: name, Role: role})
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	cellA, router, admin := mk("cell-a", tokens.RoleCell), mk("router-1", tokens.RoleRouter), mk("root", tokens.RoleAdmin)
	revoked := mk("cell-b", tokens.RoleCell)
	if _, err := store.Revoke(ctx, "cell-b"); err != nil {
		t.Fatal(err)
	}
	auth := tokenNATSAuth(store)
	if _, err := auth("a", "not-a-token"); !errors.Is(err, bus.ErrUnknownUser) {
		t.Errorf("a password that is no token: %v, want ErrUnknownUser", err)
	}

	cfg := DefaultControllerConfig()
	cfg.NATSListen = "127.0.0.1:0"
	cfg.NATSAuth = auth
	own := newCredential(ownControllerUser, bus.Identity{Role: bus.RoleController})
	srv, err := embeddedNATS(cfg, own, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()
	tests := []struct {
		name, user, pw string
		ok             bool
		// sub is a subject the client may subscribe to ("" to skip).
		sub string
	}{
		{"cell token as its cell", "a", cellA, true, bus.CellCommand("a", bus.VerbStart)},
		{"cell token as another cell", "b", cellA, false, ""},
		{"revoked cell token", "b", revoked, false, ""},
		{"router token", "router-1", router, true, ""},
		{"admin token", "root", admin, false, ""},
		{"anonymous", "", "", false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var opts []nats.Option
			if tt.user != "" {
				opts = append(opts, nats.UserInfo(tt.user, tt.pw))
			}
			nc, err := nats.Connect(srv.URL(), opts...)
			if (err == nil) != tt.ok {
				t.Fatalf("connect as %q: %v, want ok=%v", tt.user, err, tt.ok)
			}
			if err != nil {
				if strings.Contains(err.Error(), tt.pw) && tt.pw != "" {
					t.Errorf("the error shows the token")
				}
				return
			}
			defer nc.Close()
			if tt.sub != "" {
				if _, err := nc.SubscribeSync(tt.sub); err != nil {
					t.Fatal(err)
				}
				if err := nc.Flush(); err != nil || nc.LastError() != nil {
					t.Errorf("cell a subscribing to its own commands: %v %v", err, nc.LastError())
				}
			}
		})
	}
}
