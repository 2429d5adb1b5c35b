package model

import (
	"net"
	"net/url"
	"strings"
)

// NormalizeRepoURL returns the form in which two names of one git
// repository compare equal: the form a source's URL and the repository
// URLs of a forge's webhook are matched in.
//
//   - The scheme and host are lower-cased, user info (credentials, or the
//     "git@" of an ssh URL) is dropped, and so are a scheme's default port,
//     a query and a fragment.
//   - An scp-style address ("git@host:owner/repo.git", a forge's ssh_url)
//     becomes "ssh://host/owner/repo".
//   - An absolute path is the file:// URL of that path, and
//     "file://localhost/p" is "file:///p"; a file URL's path is otherwise
//     kept as it is (its case matters).
//   - Trailing "/" and then one ".git" are removed (and a "/" before it):
//     "https://Host/o/r.git/" is "https://host/o/r".
//
// The path's case is kept. Anything else it cannot read (a relative path,
// an unparsable URL) is returned with only the trailing "/" and ".git"
// removed. It does no I/O.
func NormalizeRepoURL(raw string) string {
	s := strings.TrimSpace(raw)
	if s == "" {
		return ""
	}
	scheme, rest, hasScheme := strings.Cut(s, "://")
	switch {
	case !hasScheme && strings.HasPrefix(s, "/"):
		return "file://" + trimRepoSuffix(s)
	case !hasScheme:
		// scp-style: [user@]host:path, where host has no '/'.
		if host, path, ok := strings.Cut(s, ":"); ok && !strings.Contains(host, "/") {
			if _, h, ok := strings.Cut(host, "@"); ok {
				host = h
			}
			return "ssh://" + strings.ToLower(host) + "/" + strings.TrimPrefix(trimRepoSuffix(path), "/")
		}
		return trimRepoSuffix(s)
	}
	scheme = strings.ToLower(scheme)
	if scheme == "file" {
		if p, ok := strings.CutPrefix(rest, "localhost/"); ok {
			rest = "/" + p
		}
		return "file://" + trimRepoSuffix(rest)
	}
	u, err := url.Parse(scheme + "://" + rest)
	if err != nil || u.Host == "" {
		return scheme + "://" + trimRepoSuffix(rest)
	}
	host := strings.ToLower(u.Hostname())
	if port := u.Port(); port != "" && port != defaultPorts[scheme] {
		host = net.JoinHostPort(host, port)
	} else if strings.Contains(host, ":") {
		host = "[" + host + "]" // IPv6 literal without its port
	}
	return scheme + "://" + host + trimRepoSuffix(u.EscapedPath())
}

// defaultPorts are the ports a URL of each scheme names by default.
var defaultPorts = map[string]string{"http": "80", "https": "443", "ssh": "22", "git": "9418"}

// trimRepoSuffix removes trailing slashes, then one ".git", then the
// slashes before it.
func trimRepoSuffix(p string) string {
	p = strings.TrimRight(p, "/")
	p = strings.TrimSuffix(p, ".git")
	return strings.TrimRight(p, "/")
}
