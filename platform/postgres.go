package platform

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/driftless/driftless/agents/network"
	"github.com/driftless/driftless/brokers/postgres"
	"github.com/driftless/driftless/internal/children"
)

// PostgresBrokerConfig configures the role `driftless broker postgres`:
// the built-in PostgreSQL service broker (brokers/postgres) over a
// PostgreSQL server reached as a superuser.
type PostgresBrokerConfig struct {
	postgres.Config
}

// DefaultPostgresBrokerConfig is the broker role's configuration when no
// flag says otherwise.
func DefaultPostgresBrokerConfig() PostgresBrokerConfig {
	return PostgresBrokerConfig{Config: postgres.Config{Listen: "127.0.0.1:9090", Username: "driftless"}}
}

// RunPostgresBroker runs the built-in PostgreSQL broker until ctx ends.
func RunPostgresBroker(ctx context.Context, cfg PostgresBrokerConfig) error {
	c := cfg.Config
	c.Log = orDefault(c.Log).With("component", "broker", "broker", "postgres")
	if c.DSN == "" || c.Password == "" {
		return fmt.Errorf("the postgres broker needs --dsn (or DRIFTLESS_POSTGRES_DSN) and --password (or DRIFTLESS_BROKER_PASSWORD)")
	}
	return postgres.Run(ctx, c)
}

// DefaultPostgresPort is the port dev's PostgreSQL listens on, on the
// cells' bridge gateway.
const DefaultPostgresPort = 5432

// devPostgres starts dev's PostgreSQL and its broker: the server listens
// on the gateway of the cells' bridge (made now if the cell has not made
// it yet), where app instances reach it and nothing outside the host does;
// the broker listens on loopback for the controller alone, with a random
// password. It returns the broker's --broker spec and what stops both.
func devPostgres(ctx context.Context, dataDir string, net network.Config, log *slog.Logger) (spec string, stop func(), err error) {
	gw, err := network.EnsureBridge(ctx, net)
	if err != nil {
		return "", nil, fmt.Errorf("dev --postgres: %w", err)
	}
	listen := joinHostPort(gw, DefaultPostgresPort)
	p, dsn, err := children.StartPostgres(ctx, children.PostgresOptions{Dir: postgresDir(dataDir), Listen: listen,
		LogPath: filepath.Join(dataDir, "logs", "postgres.log")})
	if err != nil {
		return "", nil, fmt.Errorf("dev --postgres: starting PostgreSQL: %w", err)
	}
	log.Info("started postgresql", "listen", listen, "log", filepath.Join(dataDir, "logs", "postgres.log"))
	ln, err := (&netListenConfig).Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		_ = p.Stop(15 * time.Second)
		return "", nil, fmt.Errorf("dev --postgres: the broker's port: %w", err)
	}
	addr := ln.Addr().String()
	ln.Close()
	pw := make([]byte, 24)
	if _, err := rand.Read(pw); err != nil {
		_ = p.Stop(15 * time.Second)
		return "", nil, err
	}
	password := base64.RawURLEncoding.EncodeToString(pw)
	bctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan error, 1)
	go func() {
		done <- postgres.Run(bctx, postgres.Config{Listen: addr, DSN: dsn, PublicHost: gw, PublicPort: DefaultPostgresPort,
			Username: "driftless", Password: password, Log: log.With("component", "broker", "broker", "postgres")})
	}()
	if err := waitListening(ctx, addr, 10*time.Second); err != nil {
		cancel()
		_ = p.Stop(15 * time.Second)
		return "", nil, fmt.Errorf("dev --postgres: the broker did not start: %w (%v)", err, brokerErr(done))
	}
	stop = func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				log.Warn("postgres broker stopped", "err", err)
			}
		case <-time.After(10 * time.Second):
		}
		_ = p.Stop(15 * time.Second)
	}
	log.Info("started the postgres service broker", "listen", addr)
	return "postgres=http://driftless:" + password + "@" + addr, stop, nil
}

// waitListening waits until addr accepts connections.
func waitListening(ctx context.Context, addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		c, err := (&net.Dialer{Timeout: time.Second}).DialContext(ctx, "tcp", addr)
		if err == nil {
			return c.Close()
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("nothing listens on %s after %s: %w", addr, timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// brokerErr is the broker's error if it already stopped.
func brokerErr(done <-chan error) error {
	select {
	case err := <-done:
		return err
	default:
		return nil
	}
}

// postgresDir is where dev keeps its PostgreSQL cluster: under the data
// folder when every user can traverse it (PostgreSQL runs as its own
// user), else in a folder of its own under DefaultDataDir named after the
// data folder (a checkout under /root, a temporary folder of mode 0700).
func postgresDir(dataDir string) string {
	abs, err := filepath.Abs(dataDir)
	if err != nil {
		abs = dataDir
	}
	if traversable(abs) {
		return filepath.Join(abs, "postgres")
	}
	sum := sha256.Sum256([]byte(abs))
	return filepath.Join(DefaultDataDir, "postgres-"+hex.EncodeToString(sum[:6]))
}

// traversable reports whether every existing folder from dir up is
// searchable by any user.
func traversable(dir string) bool {
	for d := dir; ; d = filepath.Dir(d) {
		if st, err := os.Stat(d); err == nil && st.Mode().Perm()&0o001 == 0 {
			return false
		}
		if d == filepath.Dir(d) {
			return true
		}
	}
}

// netListenConfig picks the broker's free port.
var netListenConfig net.ListenConfig

func joinHostPort(host string, port int) string { return net.JoinHostPort(host, strconv.Itoa(port)) }
