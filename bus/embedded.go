package bus

import (
	"fmt"
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

// StartEmbedded starts a NATS server listening on addr ("host:port"; port 0
// picks a free one) and waits until it accepts connections.
func StartEmbedded(addr string) (*Embedded, error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("embedded NATS address %q: %w", addr, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("embedded NATS port %q: %w", portStr, err)
	}
	if port == 0 {
		port = server.RANDOM_PORT
	}
	srv, err := server.NewServer(&server.Options{
		ServerName: "driftless-embedded",
		Host:       host,
		Port:       port,
		NoSigs:     true,
		NoLog:      true,
		// Heartbeats and staging replies can be larger than the default.
		MaxPayload: 8 << 20,
	})
	if err != nil {
		return nil, fmt.Errorf("creating embedded NATS server: %w", err)
	}
	srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		return nil, fmt.Errorf("embedded NATS server on %s did not become ready", addr)
	}
	return &Embedded{srv: srv}, nil
}

// URL is the nats:// URL clients connect to.
func (e *Embedded) URL() string { return e.srv.ClientURL() }

// Shutdown stops the server and waits for it to finish.
func (e *Embedded) Shutdown() {
	e.srv.Shutdown()
	e.srv.WaitForShutdown()
}
