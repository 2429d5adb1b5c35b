package platform

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/driftless/driftless/bus"
)

func writeUsers(t *testing.T, body string, mode os.FileMode) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "nats-users.yml")
	if err := os.WriteFile(path, []byte(body), mode); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestLoadNATSUsers(t *testing.T) {
	good := "users:\n  - {user: cell-1, password: s3cret-1, role: cell, cell: cell-1}\n  - {user: rtr, password: s3cret-2, role: router}\n"
	tests := []struct {
		name, body string
		mode       os.FileMode
		want       string // error part; "" loads
	}{
		{"good", good, 0o600, ""},
		{"readable by others", good, 0o644, "make it 0600"},
		{"readable by the group", good, 0o640, "make it 0600"},
		{"not YAML", "users: [s3cret-x", 0o600, "is not YAML"},
		{"unknown field", "users:\n  - {user: u, pass: s3cret-x, role: router}\n", 0o600, "pass"},
		{"no users", "users: []\n", 0o600, "lists no users"},
		{"no password", "users:\n  - {user: u, role: router}\n", 0o600, "a user and a password"},
		{"unknown role", "users:\n  - {user: u, password: s3cret-x, role: admin}\n", 0o600, "unknown role"},
		{"cell without id", "users:\n  - {user: u, password: s3cret-x, role: cell}\n", 0o600, "needs a cell id"},
		{"the controller's own user", "users:\n  - {user: " + ownControllerUser + ", password: s3cret-x, role: controller}\n", 0o600, "controller's own"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			auth, err := LoadNATSUsers(writeUsers(t, tt.body, tt.mode))
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if id, err := auth("cell-1", "s3cret-1"); err != nil || id != (bus.Identity{Role: bus.RoleCell, Cell: "cell-1"}) {
					t.Errorf("cell-1 = %v, %v", id, err)
				}
				if _, err := auth("cell-1", "s3cret-2"); err == nil {
					t.Error("cell-1 authenticated with the router's password")
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("LoadNATSUsers = %v, want an error with %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Errorf("the error %q shows a password", err)
			}
		})
	}
}

// TestControllerEmbeddedNATS starts the controller's embedded server (the
// real nats-server) and connects: its own in-memory credential, a user of
// the users file, one of NATSAuth; the own user's name is not NATSAuth's
// to grant, and anonymous clients are refused.
func TestControllerEmbeddedNATS(t *testing.T) {
	cfg := DefaultControllerConfig()
	cfg.NATSListen = "127.0.0.1:0"
	cfg.NATSUsersFile = writeUsers(t, "users:\n  - {user: cell-1, password: pw-1, role: cell, cell: cell-1}\n", 0o600)
	cfg.NATSAuth = func(user, password string) (bus.Identity, error) {
		if password != "token-"+user {
			return bus.Identity{}, bus.ErrUnknownUser
		}
		return bus.Identity{Role: bus.RoleCell, Cell: user}, nil
	}
	own := newCredential(ownControllerUser, bus.Identity{Role: bus.RoleController})
	log := slog.New(slog.DiscardHandler)
	srv, err := embeddedNATS(cfg, own, log)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()
	tests := []struct {
		name     string
		user, pw string
		ok       bool
	}{
		{"own credential", own.User, own.Password, true},
		{"users file", "cell-1", "pw-1", true},
		{"NATSAuth", "cell-2", "token-cell-2", true},
		{"own user through NATSAuth", ownControllerUser, "token-" + ownControllerUser, false},
		{"wrong password", "cell-1", "pw-2", false},
		{"anonymous", "", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var opts []nats.Option
			if tt.user != "" {
				opts = append(opts, nats.UserInfo(tt.user, tt.pw))
			}
			nc, err := nats.Connect(srv.URL(), opts...)
			if err == nil {
				nc.Close()
			}
			if (err == nil) != tt.ok {
				t.Errorf("connect as %q: %v, want ok=%v", tt.user, err, tt.ok)
			}
		})
	}
	if nc, err := ConnectNATS(srv.URL(), "controller", own.Identity, inProcess(own), log); err != nil {
		t.Error(err)
	} else {
		defer nc.Close()
		if err := nc.Flush(); err != nil {
			t.Errorf("the controller's own connection: %v", err)
		}
	}
}
