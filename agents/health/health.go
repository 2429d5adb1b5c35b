// Package health probes app instances the way Cloud Foundry's health
// checks do: "port" connects over TCP, "http" expects a 2xx answer from an
// endpoint, "process" only needs the process to be alive.
package health

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/driftless/driftless/model"
)

var client = &http.Client{
	Transport: &http.Transport{DisableKeepAlives: true, Proxy: nil},
	CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	},
}

// Probe checks an instance reachable at addr ("host:port") once.
func Probe(ctx context.Context, hc model.HealthCheck, addr string) error {
	ctx, cancel := context.WithTimeout(ctx, hc.ProbeTimeout())
	defer cancel()
	switch hc.Kind() {
	case model.HealthProcess:
		return nil
	case model.HealthHTTP:
		endpoint := hc.Path()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+endpoint, nil)
		if err != nil {
			return fmt.Errorf("http health check request: %w", err)
		}
		req.Header.Set("User-Agent", "driftless-health-check")
		resp, err := client.Do(req)
		if err != nil {
			return fmt.Errorf("http health check of %s: %w", endpoint, err)
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		if resp.StatusCode < 200 || resp.StatusCode > 299 {
			return fmt.Errorf("http health check of %s: status %d", endpoint, resp.StatusCode)
		}
		return nil
	default:
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return fmt.Errorf("port health check: %w", err)
		}
		return conn.Close()
	}
}

// WaitHealthy probes every interval until a probe passes (nil) or ctx ends
// (the last probe's error, wrapped with ctx's).
func WaitHealthy(ctx context.Context, hc model.HealthCheck, addr string, interval time.Duration) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		err := Probe(ctx, hc, addr)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last probe: %w)", ctx.Err(), err)
		case <-t.C:
		}
	}
}
