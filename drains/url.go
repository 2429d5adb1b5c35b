// Package drains forwards an app's log lines to syslog drains: a
// `syslog_drain_url` of a user-provided service or of a broker's binding
// (syslog:// over TCP, syslog-tls:// over TLS, as Cloud Foundry) gets the
// lines the journal keeps of each app bound to it, as RFC 5424 messages
// framed by octet counting (RFC 6587). Each drain has a bounded queue: a
// drain that is slow or away makes lines wait there, and once it is full
// new lines are dropped and counted (driftless_drain_lines_dropped_total),
// never held up in the platform.
//
// A drain URL may hold credentials: it is never logged, shown or put in an
// error; a drain is named by its service and app, and its metrics by a
// short hash of its URL.
package drains

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
)

// Schemes of drain URLs.
const (
	SchemeTCP = "syslog"
	SchemeTLS = "syslog-tls"
)

// Endpoint is where a drain URL sends lines.
type Endpoint struct {
	// Addr is host:port.
	Addr string
	// TLS says to speak TLS (syslog-tls://); ServerName is the name its
	// certificate must have.
	TLS        bool
	ServerName string
}

// ParseURL checks a drain URL and returns where it sends lines. Its
// errors never quote the URL (it may hold credentials).
func ParseURL(raw string) (Endpoint, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil || u.Scheme == "" || u.Opaque != "" {
		return Endpoint{}, errors.New("a syslog drain URL must look like syslog://host:port or syslog-tls://host:port")
	}
	var ep Endpoint
	switch strings.ToLower(u.Scheme) {
	case SchemeTCP:
	case SchemeTLS:
		ep.TLS = true
	case "https", "http":
		return Endpoint{}, fmt.Errorf("%s:// syslog drains are not supported: use syslog://host:port (TCP) or syslog-tls://host:port (TLS)", strings.ToLower(u.Scheme))
	case "syslog-udp", "udp":
		return Endpoint{}, errors.New("UDP syslog drains are not supported (lines would be lost without a word): use syslog://host:port (TCP) or syslog-tls://host:port (TLS)")
	default:
		return Endpoint{}, fmt.Errorf("syslog drain scheme %q is not supported: use syslog://host:port (TCP) or syslog-tls://host:port (TLS)", safeScheme(u.Scheme))
	}
	host, port := u.Hostname(), u.Port()
	if host == "" {
		return Endpoint{}, errors.New("a syslog drain URL needs a host: syslog://host:port")
	}
	if port == "" {
		return Endpoint{}, errors.New("a syslog drain URL needs a port: syslog://host:port (514 is syslog's, 6514 syslog over TLS's)")
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return Endpoint{}, errors.New("a syslog drain URL's port must be 1 to 65535")
	}
	ep.Addr, ep.ServerName = net.JoinHostPort(host, port), host
	return ep, nil
}

// safeScheme is a scheme fit to quote: short, and only what schemes are
// made of.
func safeScheme(s string) string {
	if len(s) > 20 || strings.ContainsFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '+' || r == '-' || r == '.')
	}) {
		return "?"
	}
	return s
}

// ID is a short hash of a drain URL: how metrics and logs name a drain
// without showing its URL.
func ID(raw string) string {
	sum := sha256.Sum256([]byte(raw))
	return hex.EncodeToString(sum[:])[:12]
}
