package bus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"time"

	"github.com/nats-io/nats.go"
)

// ClientConfig says how one component connects to NATS.
type ClientConfig struct {
	// URL is the server (nats:// or tls://).
	URL string
	// Name names the connection in the server's list.
	Name string
	// User and Password authenticate the client; both empty connects
	// anonymously (which driftless's embedded server refuses). The
	// password never appears in logs or errors.
	User, Password string
	// Identity is who the credential makes the client: replies to its
	// requests arrive under InboxPrefix(Identity), the only inbox its
	// permissions let it read. A zero Identity keeps nats.go's _INBOX.
	Identity Identity
	// CAFile, when given, is the PEM of the authorities the server's
	// certificate must chain to (and makes the connection TLS).
	CAFile string
	// CertFile and KeyFile, when given, are the client's certificate for
	// servers that verify clients.
	CertFile, KeyFile string
	// ErrorHandler, when set, gets the asynchronous errors of the
	// connection (permission violations among them); by default they are
	// logged.
	ErrorHandler nats.ErrHandler
}

// Connect dials NATS as cfg says and keeps reconnecting for as long as the
// process lives: components survive the bus restarting.
func Connect(cfg ClientConfig, log *slog.Logger) (*nats.Conn, error) {
	errs := cfg.ErrorHandler
	if errs == nil {
		errs = func(_ *nats.Conn, sub *nats.Subscription, err error) {
			if sub != nil {
				log.Warn("nats error", "subject", sub.Subject, "err", err)
				return
			}
			log.Warn("nats error", "err", err)
		}
	}
	opts := []nats.Option{
		nats.Name(cfg.Name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.RetryOnFailedConnect(true),
		nats.ErrorHandler(errs),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("nats disconnected", "err", err)
			}
		}),
		nats.ClosedHandler(func(c *nats.Conn) {
			// nats.go gives up after the server refused the credential twice.
			if err := c.LastError(); err != nil {
				log.Error("nats connection closed", "err", err)
			}
		}),
		nats.ReconnectHandler(func(c *nats.Conn) {
			log.Info("nats reconnected", "url", c.ConnectedUrlRedacted())
		}),
	}
	if cfg.User != "" || cfg.Password != "" {
		opts = append(opts, nats.UserInfo(cfg.User, cfg.Password))
	}
	if cfg.Identity.Role != "" {
		if err := cfg.Identity.Validate(); err != nil {
			return nil, fmt.Errorf("connecting to NATS as %s: %w", cfg.Identity, err)
		}
		opts = append(opts, nats.CustomInboxPrefix(InboxPrefix(cfg.Identity)))
	}
	if cfg.CAFile != "" {
		opts = append(opts, nats.RootCAs(cfg.CAFile))
	}
	if cfg.CertFile != "" || cfg.KeyFile != "" {
		opts = append(opts, nats.ClientCert(cfg.CertFile, cfg.KeyFile))
	}
	nc, err := nats.Connect(cfg.URL, opts...)
	if err != nil {
		return nil, fmt.Errorf("connecting to NATS at %s: %w", redactURL(cfg.URL), err)
	}
	return nc, nil
}

// redactURL drops a password from a URL's user info, for errors and logs.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return s
	}
	if _, has := u.User.Password(); has {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}

// Publish sends msg as JSON on subject.
func Publish(nc *nats.Conn, subject string, msg any) error {
	data, err := json.Marshal(msg)
	if err != nil {
		return fmt.Errorf("encoding message for %s: %w", subject, err)
	}
	if err := nc.Publish(subject, data); err != nil {
		return fmt.Errorf("publishing on %s: %w", subject, err)
	}
	return nil
}

// Request sends req as JSON on subject and decodes the JSON reply into
// resp. It gives up when ctx ends or after timeout, whichever comes first.
func Request(ctx context.Context, nc *nats.Conn, subject string, req, resp any, timeout time.Duration) error {
	data, err := json.Marshal(req)
	if err != nil {
		return fmt.Errorf("encoding request for %s: %w", subject, err)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	msg, err := nc.RequestWithContext(ctx, subject, data)
	if err != nil {
		if errors.Is(err, nats.ErrNoResponders) {
			return fmt.Errorf("request on %s: nobody is listening: %w", subject, err)
		}
		return fmt.Errorf("request on %s: %w", subject, err)
	}
	if err := json.Unmarshal(msg.Data, resp); err != nil {
		return fmt.Errorf("decoding reply from %s: %w", subject, err)
	}
	return nil
}

// Respond answers the request m with resp encoded as JSON.
func Respond(m *nats.Msg, resp any) error {
	data, err := json.Marshal(resp)
	if err != nil {
		return fmt.Errorf("encoding reply on %s: %w", m.Subject, err)
	}
	if err := m.Respond(data); err != nil {
		return fmt.Errorf("replying on %s: %w", m.Subject, err)
	}
	return nil
}

// Decode unmarshals the JSON payload of m into v, naming the subject in
// the error.
func Decode(m *nats.Msg, v any) error {
	if err := json.Unmarshal(m.Data, v); err != nil {
		return fmt.Errorf("decoding message on %s: %w", m.Subject, err)
	}
	return nil
}
