package api

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/driftless/driftless/model"
)

// DefaultAddress is where the API listens unless told otherwise.
const DefaultAddress = "127.0.0.1:7070"

// Client talks to a controller's API.
type Client struct {
	base  string
	hc    *http.Client
	token string
}

// NewClient returns a client for the API at addr ("host:port" or a URL).
func NewClient(addr string) *Client {
	base := strings.TrimRight(addr, "/")
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	return &Client{base: base, hc: &http.Client{}}
}

// WithToken is a copy of c that authenticates with tok (a driftless API
// token; `driftless token create`).
func (c *Client) WithToken(tok string) *Client {
	cp := *c
	cp.token = tok
	return &cp
}

// WithRoots is a copy of c that checks the API's HTTPS certificate
// against roots (a private CA, such as the one `driftless dev` makes).
func (c *Client) WithRoots(roots *x509.CertPool) *Client {
	cp := *c
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	cp.hc = &http.Client{Transport: tr}
	return &cp
}

// newRequest builds a request to path with the client's credentials.
func (c *Client) newRequest(ctx context.Context, method, path string, q url.Values, body io.Reader) (*http.Request, error) {
	u := c.base + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, fmt.Errorf("building request: %w", err)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return req, nil
}

// send POSTs in as JSON and decodes the answer into out.
func (c *Client) send(ctx context.Context, method, path string, in, out any) error {
	data, err := json.Marshal(in)
	if err != nil {
		return fmt.Errorf("encoding request: %w", err)
	}
	req, err := c.newRequest(ctx, method, path, nil, bytes.NewReader(data))
	if err != nil {
		return err
	}
	return c.roundTrip(req, out)
}

func (c *Client) do(ctx context.Context, method, path string, q url.Values, out any) error {
	req, err := c.newRequest(ctx, method, path, q, nil)
	if err != nil {
		return err
	}
	return c.roundTrip(req, out)
}

func (c *Client) roundTrip(req *http.Request, out any) error {
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("calling the driftless API at %s (is the controller running? set --api or DRIFTLESS_API): %w", c.base, err)
	}
	defer resp.Body.Close()
	return decode(resp, out)
}

func decode(resp *http.Response, out any) error {
	if resp.StatusCode >= 300 {
		var e Error
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		if json.Unmarshal(body, &e) == nil && e.Error != "" {
			return &StatusError{Code: resp.StatusCode, Message: e.Error}
		}
		return fmt.Errorf("API answered %s: %s", resp.Status, strings.TrimSpace(string(body)))
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("decoding API answer: %w", err)
	}
	return nil
}

// StatusError is an error the API answered, with its HTTP status.
type StatusError struct {
	Code    int
	Message string
}

func (e *StatusError) Error() string { return e.Message }

func spaceQuery(space string) url.Values {
	q := url.Values{}
	if space != "" {
		q.Set("space", space)
	}
	return q
}

// Apps lists apps ("" space for all).
func (c *Client) Apps(ctx context.Context, space string) ([]App, error) {
	var out []App
	return out, c.do(ctx, http.MethodGet, "/v1/apps", spaceQuery(space), &out)
}

// App describes one app.
func (c *Client) App(ctx context.Context, space, name string) (AppDetail, error) {
	var out AppDetail
	return out, c.do(ctx, http.MethodGet, "/v1/apps/"+url.PathEscape(name), spaceQuery(space), &out)
}

// Status describes sources and cells.
func (c *Client) Status(ctx context.Context) (Status, error) {
	var out Status
	return out, c.do(ctx, http.MethodGet, "/v1/status", nil, &out)
}

// Sync fetches every source now; with wait, it returns once every app runs
// its target release or timeout passes.
func (c *Client) Sync(ctx context.Context, wait bool, timeout time.Duration) (SyncResult, error) {
	return c.SyncSpace(ctx, "", wait, timeout)
}

// SyncSpace is Sync of the sources of one space ("" for every source): a
// token scoped to spaces may sync only those.
func (c *Client) SyncSpace(ctx context.Context, space string, wait bool, timeout time.Duration) (SyncResult, error) {
	q := spaceQuery(space)
	if wait {
		q.Set("wait", "1")
		q.Set("timeout", timeout.String())
	}
	var out SyncResult
	return out, c.do(ctx, http.MethodPost, "/v1/sync", q, &out)
}

// Previews lists the deployed pull-request previews.
func (c *Client) Previews(ctx context.Context) ([]Preview, error) {
	var out []Preview
	return out, c.do(ctx, http.MethodGet, "/v1/previews", nil, &out)
}

// Events lists the controller's recent events, optionally of one app.
func (c *Client) Events(ctx context.Context, space, app string) ([]model.Event, error) {
	return c.EventsSince(ctx, EventOptions{Space: space, App: app})
}

// EventsSince fetches the kept events opts selects (not following).
func (c *Client) EventsSince(ctx context.Context, opts EventOptions) ([]model.Event, error) {
	q := LogOptions{Space: opts.Space, Recent: opts.Recent, Since: opts.Since, After: opts.After}.query()
	if opts.App != "" {
		q.Set("app", opts.App)
	}
	var out []model.Event
	return out, c.do(ctx, http.MethodGet, "/v1/events", q, &out)
}

// LogOptions selects log lines.
type LogOptions struct {
	Space string
	// Follow keeps streaming new lines until ctx ends.
	Follow bool
	// Source keeps only lines of one source (model.LogStaging…).
	Source model.LogSource
	// Instance keeps only lines of one instance index (nil for all).
	Instance *int
	// Recent starts with the last Recent lines (0: the server's default,
	// 1,000; -1: none, only new ones); Since with those kept from that
	// time; After after that seq.
	Recent int
	Since  time.Time
	After  uint64
}

func (o LogOptions) query() url.Values {
	q := spaceQuery(o.Space)
	if o.Follow {
		q.Set("follow", "1")
	}
	if o.Source != "" {
		q.Set("source", string(o.Source))
	}
	if o.Instance != nil {
		q.Set("instance", strconv.Itoa(*o.Instance))
	}
	switch {
	case o.After > 0:
		q.Set("after", strconv.FormatUint(o.After, 10))
	case !o.Since.IsZero():
		q.Set("since", o.Since.UTC().Format(time.RFC3339Nano))
	case o.Recent > 0:
		q.Set("recent", strconv.Itoa(o.Recent))
	case o.Recent < 0:
		q.Set("recent", "0")
	}
	return q
}

// Logs calls fn for each kept log line of app as opts selects, then, when
// following, for new ones until ctx ends.
func (c *Client) Logs(ctx context.Context, app string, opts LogOptions, fn func(model.LogLine)) error {
	return readNDJSON(ctx, c, "/v1/logs/"+url.PathEscape(app), opts.query(), fn)
}

// EventOptions selects events.
type EventOptions struct {
	Space, App string
	Follow     bool
	// Recent, Since and After start the read as LogOptions' do.
	Recent int
	Since  time.Time
	After  uint64
}

// FollowEvents calls fn for each kept event opts selects, then for new
// ones until ctx ends (the timeline: `driftless events -f`).
func (c *Client) FollowEvents(ctx context.Context, opts EventOptions, fn func(model.Event)) error {
	q := LogOptions{Space: opts.Space, Recent: opts.Recent, Since: opts.Since, After: opts.After, Follow: true}.query()
	if opts.App != "" {
		q.Set("app", opts.App)
	}
	return readNDJSON(ctx, c, "/v1/events", q, fn)
}

// readNDJSON reads an NDJSON answer, calling fn with each entry.
func readNDJSON[T any](ctx context.Context, c *Client, path string, q url.Values, fn func(T)) error {
	req, err := c.newRequest(ctx, http.MethodGet, path, q, nil)
	if err != nil {
		return err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("calling the driftless API at %s: %w", c.base, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		return decode(resp, nil)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var v T
		if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
			return fmt.Errorf("decoding %s: %w", path, err)
		}
		fn(v)
	}
	if err := sc.Err(); err != nil && ctx.Err() == nil {
		return fmt.Errorf("reading %s: %w", path, err)
	}
	return nil
}

// Env fetches an app's environment (`driftless env APP`).
func (c *Client) Env(ctx context.Context, space, name string) (AppEnv, error) {
	var out AppEnv
	return out, c.do(ctx, http.MethodGet, "/v1/apps/"+url.PathEscape(name)+"/env", spaceQuery(space), &out)
}
