package model

import "strings"

// SplitRoute splits a route "Host.Domain[:port]/a/b/" into its host as
// NormalizeHost makes it and its path without trailing slash, starting
// with "/" ("" for none).
func SplitRoute(route string) (host, path string) {
	host, path, _ = strings.Cut(route, "/")
	host = NormalizeHost(host)
	path = strings.TrimSuffix(path, "/")
	if path != "" {
		path = "/" + path
	}
	return host, path
}

// NormalizeRoute writes a route the one way routes are stored and
// compared: "host[/path]", host as NormalizeHost makes it, no trailing
// slash.
func NormalizeRoute(route string) string {
	host, path := SplitRoute(route)
	return host + path
}

// NormalizeHost lower-cases a host (of a route or a Host header) and drops
// its port and a trailing dot.
func NormalizeHost(host string) string {
	// As net.SplitHostPort would split it, without its error allocation
	// for the common Host without a port.
	if strings.HasPrefix(host, "[") {
		if end := strings.IndexByte(host, ']'); end > 0 && end+1 < len(host) && host[end+1] == ':' && strings.IndexByte(host[end+2:], ':') < 0 {
			host = host[1:end]
		}
	} else if i := strings.IndexByte(host, ':'); i >= 0 && strings.IndexByte(host[i+1:], ':') < 0 {
		host = host[:i]
	}
	return strings.TrimSuffix(strings.ToLower(host), ".")
}
