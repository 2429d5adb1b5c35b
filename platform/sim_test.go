package platform

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/driftless/driftless/bus"
	"github.com/driftless/driftless/catalog"
	"github.com/driftless/driftless/internal/testenv"
)

// TestRunSimCells: `driftless sim cells` connects each hollow cell as its
// own user of a users file (the one the controller's NATS server knows),
// so heartbeats arrive on each cell's own subject and each cell's service
// is in Consul; too few cell users, or none given, is refused.
func TestRunSimCells(t *testing.T) {
	cs := testenv.StartConsul(t)
	users := filepath.Join(t.TempDir(), "users.yml")
	creds := append(SimNATSUsers("hollow-", 3), bus.Credential{User: "rtr", Password: "s3cret-r", Identity: bus.Identity{Role: bus.RoleRouter}})
	if err := WriteNATSUsers(users, creds); err != nil {
		t.Fatal(err)
	}
	own := newCredential("ctl", bus.Identity{Role: bus.RoleController})
	ownAuth, err := bus.StaticUsers(own)
	if err != nil {
		t.Fatal(err)
	}
	fileAuth, err := LoadNATSUsers(users)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := bus.StartEmbedded(bus.EmbeddedConfig{Listen: "127.0.0.1:0", Auth: bus.FirstOf(ownAuth, fileAuth), Log: slog.New(slog.DiscardHandler), StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	ctl, err := ConnectNATS(srv.URL(), "test", own.Identity, inProcess(own), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer ctl.Close()

	tests := []struct {
		name    string
		count   int
		users   string
		wantErr string
	}{
		{name: "three cells", count: 3, users: users},
		{name: "more cells than cell users", count: 4, users: users, wantErr: "has 3 user(s) of role cell, --count asks for 4"},
		{name: "no users file", count: 1, wantErr: "give --nats-users"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var mu sync.Mutex
			seen := map[string]bool{}
			sub, err := ctl.Subscribe(bus.HeartbeatWildcard, func(m *nats.Msg) {
				var hb bus.CellHeartbeat
				if bus.Decode(m, &hb) == nil && bus.SubjectCell(m.Subject) == bus.Token(hb.CellID) {
					mu.Lock()
					seen[hb.CellID] = true
					mu.Unlock()
				}
			})
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = sub.Unsubscribe() }()
			cfg := DefaultSimCellsConfig()
			cfg.Count, cfg.NATSUsersFile, cfg.NATSURL, cfg.ConsulAddr = tt.count, tt.users, srv.URL(), cs.Addr
			cfg.Log = slog.New(slog.DiscardHandler)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			ready := make(chan []string, 1)
			cfg.Ready = func(ids []string) { ready <- ids }
			errs := make(chan error, 1)
			go func() { errs <- RunSimCells(ctx, cfg) }()
			if tt.wantErr != "" {
				if err := <-errs; err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("RunSimCells = %v, want an error with %q", err, tt.wantErr)
				}
				return
			}
			select {
			case err := <-errs:
				t.Fatalf("RunSimCells ended: %v", err)
			case <-ready:
			}
			testenv.Eventually(t, 20*time.Second, 50*time.Millisecond, "a heartbeat of each cell and its service in Consul", func() error {
				mu.Lock()
				defer mu.Unlock()
				svcs, _, err := cs.Client.Catalog().Service(catalog.CellServiceName, "", nil)
				if err != nil {
					return err
				}
				if len(seen) != tt.count || len(svcs) != tt.count {
					return fmt.Errorf("heartbeats of %d cell(s), %d in Consul, want %d", len(seen), len(svcs), tt.count)
				}
				return nil
			})
			cancel()
			if err := <-errs; err != nil {
				t.Errorf("RunSimCells after ctx ended: %v", err)
			}
		})
	}
}
