package forge

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// DefaultTimeout bounds each HTTP request a Client makes: the timeout of
// the http.Client used when Client.HTTP is nil, and the deadline put on
// every request's context whatever the client.
const DefaultTimeout = 10 * time.Second

// maxBody is the most of a response body read; excerptLen the most of it
// put into an error.
const (
	maxBody    = 8 << 20
	excerptLen = 200
)

// Client calls one forge's REST API. Its zero HTTP is a client with
// DefaultTimeout. It is safe for concurrent use.
type Client struct {
	// API is the base URL of the API: "https://api.github.com",
	// "https://gitea.example/api/v1", "https://gitlab.example/api/v4".
	API string
	// Token authenticates the calls: GitHub "Authorization: Bearer",
	// Gitea "Authorization: token", GitLab "PRIVATE-TOKEN". It is never
	// part of an error, a log line or String().
	Token string
	// HTTP makes the requests (nil: one with DefaultTimeout). Redirects to
	// another scheme or host than API's are refused, so that the token
	// never leaves API's host.
	HTTP *http.Client
}

// String describes the client without its token.
func (c *Client) String() string {
	if c == nil {
		return "forge.Client(nil)"
	}
	return fmt.Sprintf("forge.Client{API: %s, Token: %s}", c.apiShown(), c.tokenShown())
}

// LogValue is how slog logs the client: its API, and whether it has a
// token, never the token.
func (c *Client) LogValue() slog.Value {
	if c == nil {
		return slog.StringValue("<nil>")
	}
	return slog.GroupValue(slog.String("api", c.apiShown()), slog.String("token", c.tokenShown()))
}

// GoString is String, so that %#v does not print the token either.
func (c *Client) GoString() string { return c.String() }

func (c *Client) tokenShown() string {
	if c.Token == "" {
		return "none"
	}
	return redacted
}

const redacted = "[redacted]"

// apiShown is API with any user info in it and the token redacted.
func (c *Client) apiShown() string {
	if u, err := url.Parse(c.API); err == nil && u.User != nil {
		u.User = url.User("xxxxx")
		return c.redact(u.String())
	}
	return c.redact(c.API)
}

// redact removes the token from s.
func (c *Client) redact(s string) string {
	if c.Token == "" {
		return s
	}
	s = strings.ReplaceAll(s, c.Token, redacted)
	if q := url.QueryEscape(c.Token); q != c.Token {
		s = strings.ReplaceAll(s, q, redacted)
	}
	return s
}

// HTTPError is a forge's answer other than 2xx.
type HTTPError struct {
	// Op is what was being done ("posting a commit status to github:o/r").
	Op string
	// StatusCode is the HTTP status; Body a short excerpt of the answer,
	// the token redacted.
	StatusCode int
	Body       string
	// RetryAfter is how long the forge asked to wait (Retry-After, or until
	// GitHub's X-RateLimit-Reset when no requests remain), 0 if it did not.
	RetryAfter time.Duration
}

// Error says what was being done, the status and the excerpt.
func (e *HTTPError) Error() string {
	msg := fmt.Sprintf("%s: %d %s", e.Op, e.StatusCode, http.StatusText(e.StatusCode))
	if e.Body != "" {
		msg += ": " + e.Body
	}
	return msg
}

// Temporary reports whether the same call may succeed later: a 5xx, 408,
// 429, or a 403 that is a rate limit (it said when to retry).
func (e *HTTPError) Temporary() bool {
	switch {
	case e.StatusCode >= 500, e.StatusCode == http.StatusRequestTimeout, e.StatusCode == http.StatusTooManyRequests:
		return true
	case e.StatusCode == http.StatusForbidden:
		return e.RetryAfter > 0
	}
	return false
}

// Retryable reports whether a call that failed with err may succeed if
// made again: a network error, a timeout, or a temporary HTTPError; not an
// ErrInvalid, a cancelled context or any other 4xx.
func Retryable(err error) bool {
	var he *HTTPError
	switch {
	case err == nil, errors.Is(err, ErrInvalid), errors.Is(err, context.Canceled):
		return false
	case errors.As(err, &he):
		return he.Temporary()
	}
	return true
}

// redactedError is an error whose message has had the token removed; it
// still unwraps to the cause for errors.Is.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// httpClient returns the client to make requests with, refusing redirects
// off API's scheme and host.
func (c *Client) httpClient(base *url.URL) *http.Client {
	hc := http.Client{Timeout: DefaultTimeout}
	if c.HTTP != nil {
		hc = *c.HTTP
	}
	next := hc.CheckRedirect
	hc.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if !sameOrigin(base, req.URL) {
			return fmt.Errorf("refusing a redirect to another host than the forge API's: %s", req.URL.Host)
		}
		if next != nil {
			return next(req, via)
		}
		if len(via) >= 10 {
			return errors.New("stopped after 10 redirects")
		}
		return nil
	}
	return &hc
}

func sameOrigin(a, b *url.URL) bool {
	return strings.EqualFold(a.Scheme, b.Scheme) && strings.EqualFold(a.Host, b.Host)
}

// base parses API.
func (c *Client) base() (*url.URL, error) {
	u, err := url.Parse(strings.TrimRight(c.API, "/"))
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, fmt.Errorf("%w: forge API URL %q is not an http(s) URL", ErrInvalid, c.apiShown())
	}
	return u, nil
}

// do makes one request to target (a full URL) with the kind's
// authentication, and returns the 2xx answer's body and headers. A non-2xx
// answer is an *HTTPError; every error is the token redacted.
func (c *Client) do(ctx context.Context, kind Kind, op, method string, base *url.URL, target string, body any) ([]byte, http.Header, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: encoding the request: %w", op, err)
		}
		rd = bytes.NewReader(b)
	}
	ctx, cancel := context.WithTimeout(ctx, DefaultTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, target, rd)
	if err != nil {
		return nil, nil, c.wrap(op, "building the request", err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("User-Agent", "driftless")
	switch kind {
	case GitHub:
		req.Header.Set("Accept", "application/vnd.github+json")
		req.Header.Set("X-GitHub-Api-Version", "2022-11-28")
		if c.Token != "" {
			req.Header.Set("Authorization", "Bearer "+c.Token)
		}
	case Gitea:
		req.Header.Set("Accept", "application/json")
		if c.Token != "" {
			req.Header.Set("Authorization", "token "+c.Token)
		}
	case GitLab:
		req.Header.Set("Accept", "application/json")
		if c.Token != "" {
			req.Header.Set("PRIVATE-TOKEN", c.Token)
		}
	default:
		return nil, nil, fmt.Errorf("%s: %w: unknown forge kind %q", op, ErrInvalid, kind)
	}
	resp, err := c.httpClient(base).Do(req)
	if err != nil {
		return nil, nil, c.wrap(op, "sending the request", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, resp.Header, &HTTPError{Op: op, StatusCode: resp.StatusCode,
			Body: c.redact(excerpt(data)), RetryAfter: retryAfter(resp.Header, time.Now())}
	}
	if err != nil {
		return nil, nil, c.wrap(op, "reading the answer", err)
	}
	return data, resp.Header, nil
}

// wrap says what was being done, redacting the token from err's message.
func (c *Client) wrap(op, doing string, err error) error {
	return &redactedError{msg: c.redact(op + ": " + doing + ": " + err.Error()), err: err}
}

// excerpt returns the start of a body on one line.
func excerpt(b []byte) string {
	s := strings.ToValidUTF8(string(b), "?")
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > excerptLen {
		cut := excerptLen
		for cut > 0 && !isRuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	return s
}

func isRuneStart(b byte) bool { return b&0xC0 != 0x80 }

// retryAfter reads how long a forge asks to wait: Retry-After (seconds or
// an HTTP date), else, when GitHub says no requests remain, until
// X-RateLimit-Reset (Unix seconds). 0 when it says neither.
func retryAfter(h http.Header, now time.Time) time.Duration {
	if v := strings.TrimSpace(h.Get("Retry-After")); v != "" {
		if s, err := strconv.Atoi(v); err == nil && s >= 0 {
			return max(time.Duration(s)*time.Second, time.Second)
		}
		if t, err := http.ParseTime(v); err == nil {
			return max(t.Sub(now), time.Second)
		}
	}
	if h.Get("X-RateLimit-Remaining") == "0" {
		if s, err := strconv.ParseInt(h.Get("X-RateLimit-Reset"), 10, 64); err == nil {
			return max(time.Unix(s, 0).Sub(now), time.Second)
		}
	}
	return 0
}

// PostStatus posts a commit status on commit sha of repo:
//
//   - GitHub and Gitea: POST {API}/repos/{owner}/{repo}/statuses/{sha} with
//     {state, target_url, description, context};
//   - GitLab: POST {API}/projects/{id}/statuses/{sha} with {state, name,
//     target_url, description}, failure and error posted as "failed".
//
// The description is cut to MaxDescription characters. GitLab refuses to
// post a state its status already has ("Cannot transition status"): that
// answer counts as success. A non-2xx answer is an *HTTPError.
func (c *Client) PostStatus(ctx context.Context, repo Repo, sha string, st Status) error {
	op := fmt.Sprintf("posting commit status %s=%s on %s of %s", st.Context, st.State, shortSHA(sha), repo)
	if err := st.validate(); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	sha = strings.TrimSpace(sha)
	if sha == "" || strings.ContainsAny(sha, "/?#% ") {
		return fmt.Errorf("%s: %w: commit %q is not a commit id", op, ErrInvalid, sha)
	}
	base, err := c.base()
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	desc := truncate(st.Description, MaxDescription)
	var path string
	var body any
	switch repo.Kind {
	case GitHub, Gitea:
		or, err := repo.ownerRepo()
		if err != nil {
			return fmt.Errorf("%s: %w", op, err)
		}
		path = "/repos/" + or + "/statuses/" + sha
		body = ghStatus{State: string(st.State), TargetURL: st.TargetURL, Description: desc, Context: st.Context}
	case GitLab:
		id, err := repo.projectID()
		if err != nil {
			return fmt.Errorf("%s: %w", op, err)
		}
		path = "/projects/" + id + "/statuses/" + sha
		body = glStatus{State: gitlabState(st.State), Name: st.Context, TargetURL: st.TargetURL, Description: desc}
	default:
		return fmt.Errorf("%s: %w: unknown forge kind %q", op, ErrInvalid, repo.Kind)
	}
	_, _, err = c.do(ctx, repo.Kind, op, http.MethodPost, base, base.String()+path, body)
	var he *HTTPError
	if repo.Kind == GitLab && errors.As(err, &he) && he.StatusCode == http.StatusBadRequest &&
		strings.Contains(he.Body, "Cannot transition status") {
		return nil // the commit already has this state
	}
	return err
}

// ghStatus is the body of GitHub's and Gitea's "create a commit status".
type ghStatus struct {
	State       string `json:"state"`
	TargetURL   string `json:"target_url,omitempty"`
	Description string `json:"description,omitempty"`
	Context     string `json:"context"`
}

// glStatus is the body of GitLab's "set the pipeline status of a commit".
type glStatus struct {
	State       string `json:"state"`
	Name        string `json:"name"`
	TargetURL   string `json:"target_url,omitempty"`
	Description string `json:"description,omitempty"`
}

// shortSHA abbreviates a commit id for messages.
func shortSHA(sha string) string {
	if len(sha) > 12 {
		return sha[:12]
	}
	return sha
}
