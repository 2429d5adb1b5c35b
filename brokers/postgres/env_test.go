package postgres_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/driftless/driftless/brokers/osb"
	"github.com/driftless/driftless/brokers/postgres"
	"github.com/driftless/driftless/internal/testenv"
)

const (
	brokerUser = "broker"
	brokerPass = "broker-pass-7f3a"
)

// syncBuffer is a log sink written by the broker's handlers concurrently.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

// env is a PostgreSQL server and a broker over it, served on loopback.
type env struct {
	t      *testing.T
	pg     *testenv.Postgres
	log    *syncBuffer
	broker *postgres.Broker
	url    string
	client *osb.Client
	stopFn func()
}

// stop stops the broker (not the server).
func (e *env) stop() { e.stopFn() }

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{t: t, pg: testenv.StartPostgres(t), log: &syncBuffer{}}
	e.start()
	return e
}

// start starts a broker over e's server (again, after stop).
func (e *env) start() {
	t := e.t
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := postgres.New(ctx, postgres.Config{
		DSN: e.pg.DSN, Username: brokerUser, Password: brokerPass,
		Log: slog.New(slog.NewTextHandler(e.log, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	if err != nil {
		t.Fatalf("starting the broker: %v", err)
	}
	srv := httptest.NewServer(b)
	e.broker, e.url = b, srv.URL
	c, err := osb.New(osb.Config{Name: "postgresql", URL: srv.URL, Username: brokerUser, Password: brokerPass,
		Logger: slog.New(slog.NewTextHandler(e.log, nil))})
	if err != nil {
		t.Fatal(err)
	}
	e.client = c
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			srv.Close()
			b.Close()
		}
	}
	t.Cleanup(stop)
	e.stopFn = stop
}

// ctx is a context bounded for one test step.
func (e *env) ctx() context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	e.t.Cleanup(cancel)
	return ctx
}

// super opens a superuser session to the "postgres" database.
func (e *env) super() *pgx.Conn {
	e.t.Helper()
	conn, err := pgx.Connect(e.ctx(), e.pg.DSN)
	if err != nil {
		e.t.Fatalf("connecting as the superuser: %v", err)
	}
	e.t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// exists runs a superuser query answering one boolean.
func (e *env) exists(q string, args ...any) bool {
	e.t.Helper()
	var ok bool
	if err := e.super().QueryRow(e.ctx(), q, args...).Scan(&ok); err != nil {
		e.t.Fatalf("%s: %v", q, err)
	}
	return ok
}

// provision provisions an instance through the client, failing the test
// on error.
func (e *env) provision(id, plan string) {
	e.t.Helper()
	_, op, err := e.client.Provision(e.ctx(), id, osb.ProvisionRequest{ServiceID: postgres.ServiceID, PlanID: plan})
	if err != nil || op != nil {
		e.t.Fatalf("provision %s: op %v, %v", id, op, err)
	}
}

// bind binds an instance through the client and returns the credentials.
func (e *env) bind(id, bid, predecessor string) osb.Credentials {
	e.t.Helper()
	b, op, err := e.client.Bind(e.ctx(), id, bid, osb.BindRequest{ServiceID: postgres.ServiceID, PlanID: postgres.PlanSmall,
		BindResource: &osb.BindResource{AppGUID: "app-1"}, PredecessorBindingID: predecessor})
	if err != nil || op != nil {
		e.t.Fatalf("bind %s/%s: op %v, %v", id, bid, op, err)
	}
	return b.Credentials
}

// connect opens a session with a binding's credentials.
func connect(ctx context.Context, creds osb.Credentials) (*pgx.Conn, error) {
	uri, _ := creds["uri"].(string)
	return pgx.Connect(ctx, uri)
}

// sqlState is the SQLSTATE of a PostgreSQL error, "" for another error.
func sqlState(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code
	}
	return ""
}

// checkNoSecrets fails the test if the broker's or the client's log shows a
// password or the superuser's DSN.
func (e *env) checkNoSecrets(secrets ...string) {
	e.t.Helper()
	logs := e.log.String()
	// The server's own log too: passwords reach it only as SCRAM verifiers.
	serverLog, err := os.ReadFile(e.pg.Proc.LogPath())
	if err != nil {
		e.t.Fatal(err)
	}
	if !strings.Contains(logs, "osb request") {
		e.t.Fatal("the broker logged no request: the log is not captured")
	}
	cfg, err := pgx.ParseConfig(e.pg.DSN)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, s := range append(secrets, cfg.Password, brokerPass) {
		if s != "" && strings.Contains(logs, s) {
			e.t.Errorf("a secret appears in the log:\n%s", logs)
		}
		if s != "" && strings.Contains(string(serverLog), s) {
			e.t.Errorf("a secret appears in PostgreSQL's log (%s)", e.pg.Proc.LogPath())
		}
	}
}
