package bus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
)

// Connect dials NATS at url and keeps reconnecting for as long as the
// process lives: components survive the bus restarting.
func Connect(url, name string, log *slog.Logger) (*nats.Conn, error) {
	nc, err := nats.Connect(url,
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250*time.Millisecond),
		nats.RetryOnFailedConnect(true),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("nats disconnected", "err", err)
			}
		}),
		nats.ReconnectHandler(func(c *nats.Conn) {
			log.Info("nats reconnected", "url", c.ConnectedUrlRedacted())
		}),
	)
	if err != nil {
		return nil, fmt.Errorf("connecting to NATS at %s: %w", url, err)
	}
	return nc, nil
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
