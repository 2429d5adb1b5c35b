package bus

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Embedded is a NATS server running inside this process, used by
// `driftless dev` and by a controller that was given no NATS URL. Past one
// host, run a real NATS cluster instead and pass its URL.
type Embedded struct {
	srv *server.Server
}

// EmbeddedConfig configures an embedded NATS server.
type EmbeddedConfig struct {
	// Listen is "host:port"; port 0 picks a free one.
	Listen string
	// Auth decides who each client is; anonymous clients and clients it
	// refuses are disconnected. Required.
	Auth Authenticator
	// TLSCert and TLSKey, when both are given, make the server speak TLS
	// (and require it of every client).
	TLSCert, TLSKey string
	// Log gets a line for each refused client (never its password).
	Log *slog.Logger
	// StoreDir, when set, turns JetStream on with its files there: the
	// kept logs and events (journal) survive the server's restarts.
	StoreDir string
	// MaxStore bounds what JetStream keeps on disk (0: what the server
	// picks from the free space).
	MaxStore int64

	// perms replaces Permissions, for the package's own encoding tests.
	perms func(Identity) (*server.Permissions, error)
}

// StartEmbedded starts a NATS server as cfg says and waits until it
// accepts connections.
func StartEmbedded(cfg EmbeddedConfig) (*Embedded, error) {
	if cfg.Auth == nil {
		return nil, errors.New("embedded NATS server: an authenticator is required (no anonymous clients)")
	}
	host, portStr, err := net.SplitHostPort(cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("embedded NATS address %q: %w", cfg.Listen, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("embedded NATS port %q: %w", portStr, err)
	}
	if port == 0 {
		port = server.RANDOM_PORT
	}
	log := cfg.Log
	if log == nil {
		log = slog.Default()
	}
	perms := cfg.perms
	if perms == nil {
		perms = serverPermissions
	}
	opts := &server.Options{
		ServerName: "driftless-embedded",
		Host:       host,
		Port:       port,
		NoSigs:     true,
		NoLog:      true,
		// Heartbeats and staging replies can be larger than the default.
		MaxPayload:                 8 << 20,
		CustomClientAuthentication: &authHook{auth: cfg.Auth, perms: perms, log: log},
	}
	if cfg.StoreDir != "" {
		opts.JetStream, opts.StoreDir, opts.JetStreamMaxStore = true, cfg.StoreDir, cfg.MaxStore
	}
	if cfg.TLSCert != "" || cfg.TLSKey != "" {
		tc, err := server.GenTLSConfig(&server.TLSConfigOpts{CertFile: cfg.TLSCert, KeyFile: cfg.TLSKey, Timeout: 2})
		if err != nil {
			return nil, fmt.Errorf("embedded NATS server TLS (--nats-tls-cert, --nats-tls-key): %w", err)
		}
		tc.MinVersion = tls.VersionTLS12
		opts.TLSConfig, opts.TLSTimeout = tc, 2
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("creating embedded NATS server: %w", err)
	}
	srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		return nil, fmt.Errorf("embedded NATS server on %s did not become ready", cfg.Listen)
	}
	return &Embedded{srv: srv}, nil
}

// URL is the nats:// URL clients connect to (tls:// when it speaks TLS).
func (e *Embedded) URL() string { return e.srv.ClientURL() }

// Messages is how many messages the server has received from clients
// and delivered to them since it started (benchmarks read it).
func (e *Embedded) Messages() (in, out int64) {
	v, err := e.srv.Varz(nil)
	if err != nil {
		return 0, 0
	}
	return v.InMsgs, v.OutMsgs
}

// Shutdown stops the server and waits for it to finish.
func (e *Embedded) Shutdown() {
	e.srv.Shutdown()
	e.srv.WaitForShutdown()
}

// authHook is the server's custom client authentication: the user and
// password of the CONNECT go through the Authenticator, and the client
// gets its identity's permissions.
type authHook struct {
	auth  Authenticator
	perms func(Identity) (*server.Permissions, error)
	log   *slog.Logger
}

// Check accepts a client the authenticator knows, with its permissions.
func (h *authHook) Check(c server.ClientAuthentication) bool {
	if c.Kind() != server.CLIENT {
		return false // no routes, gateways or leaf nodes
	}
	o := c.GetOpts()
	if o.Username == "" || o.Password == "" {
		h.log.Warn("NATS client refused: anonymous", "remote", addr(c))
		return false
	}
	id, err := h.auth(o.Username, o.Password)
	if err == nil {
		err = id.Validate()
	}
	var p *server.Permissions
	if err == nil {
		p, err = h.perms(id)
	}
	if err != nil {
		h.log.Warn("NATS client refused", "user", o.Username, "remote", addr(c), "err", err)
		return false
	}
	c.RegisterUser(&server.User{Username: o.Username, Permissions: p})
	return true
}

// addr is the client's remote address for logs.
func addr(c server.ClientAuthentication) string {
	if a := c.RemoteAddress(); a != nil {
		return a.String()
	}
	return ""
}

// serverPermissions is Permissions in nats-server's terms.
func serverPermissions(id Identity) (*server.Permissions, error) {
	p, err := Permissions(id)
	if err != nil {
		return nil, err
	}
	sp := &server.Permissions{
		Publish:   &server.SubjectPermission{Allow: p.Publish},
		Subscribe: &server.SubjectPermission{Allow: p.Subscribe},
	}
	if p.Responses {
		sp.Response = &server.ResponsePermission{MaxMsgs: 1, Expires: ResponseTTL}
	}
	return sp, nil
}
