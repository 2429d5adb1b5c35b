package osb

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Defaults of [Config].
const (
	// DefaultTimeout bounds one request to a broker (the specification's
	// "typically 60 seconds").
	DefaultTimeout = 60 * time.Second
	// DefaultPollInterval is the first wait between polls of last_operation
	// when the broker sends no Retry-After.
	DefaultPollInterval = 2 * time.Second
	// DefaultMaxPollInterval caps the doubling wait between polls.
	DefaultMaxPollInterval = 30 * time.Second
	// DefaultMitigationTimeout bounds the retries of one orphan mitigation.
	DefaultMitigationTimeout = 10 * time.Minute
	// maxBody bounds a broker's answer.
	maxBody = 16 << 20
)

// Config configures a [Client].
type Config struct {
	// Name names the broker in errors and logs.
	Name string
	// URL is the broker's base URL (http or https). User info in it is used
	// as the credentials when Username is empty, and never sent in the URL.
	URL string
	// Username and Password are the broker's basic auth credentials.
	Username, Password string
	// HTTP is the client requests go through; nil means a new http.Client.
	HTTP *http.Client
	// Timeout bounds each request; 0 means DefaultTimeout.
	Timeout time.Duration
	// OriginatingIdentity, when set, names the user a request acts for:
	// platform (e.g. "driftless") and value, a JSON object the client
	// base64-encodes. Returning an empty platform sends no header. It is not
	// called for orphan mitigation, which acts for no user.
	OriginatingIdentity func(ctx context.Context) (platform, value string)
	// Logger logs orphan mitigations; nil means slog.Default().
	Logger *slog.Logger
	// PollInterval is the first wait between polls without Retry-After;
	// 0 means DefaultPollInterval.
	PollInterval time.Duration
	// MaxPollInterval caps the doubling wait; 0 means DefaultMaxPollInterval.
	MaxPollInterval time.Duration
	// MitigationTimeout bounds each orphan mitigation's retries; 0 means
	// DefaultMitigationTimeout.
	MitigationTimeout time.Duration
	// OnMitigation, when set, is called with the outcome of every orphan
	// mitigation, from the goroutine that ran it.
	OnMitigation func(Mitigation)
}

// String prints the configuration without the password or URL user info.
func (c Config) String() string {
	return fmt.Sprintf("osb.Config{Name:%s URL:%s Username:%s Password:%s}",
		c.Name, redactURL(c.URL), c.Username, redacted)
}

// GoString prints the configuration without the password or URL user info.
func (c Config) GoString() string { return c.String() }

// LogValue logs the configuration without the password or URL user info.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(slog.String("name", c.Name), slog.String("url", redactURL(c.URL)),
		slog.String("username", c.Username))
}

func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return redacted
	}
	u.User = nil
	return u.String()
}

// Client calls one service broker. It is safe for concurrent use.
type Client struct {
	name     string
	base     *url.URL
	username string
	password string
	http     *http.Client
	cfg      Config
	log      *slog.Logger

	mu    sync.Mutex
	plans map[string]time.Duration // plan id → maximum_polling_duration, from Catalog
}

// New checks cfg and returns a client of the broker it names.
func New(cfg Config) (*Client, error) {
	if cfg.URL == "" {
		return nil, fmt.Errorf("osb client for broker %s: no URL", cfg.Name)
	}
	u, err := url.Parse(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("osb client for broker %s: parse URL %s: invalid", cfg.Name, redacted)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("osb client for broker %s: URL %s: want http(s)://host[/path]", cfg.Name, redactURL(cfg.URL))
	}
	c := &Client{name: cfg.Name, username: cfg.Username, password: cfg.Password, http: cfg.HTTP,
		cfg: cfg, log: cfg.Logger, plans: map[string]time.Duration{}}
	if u.User != nil && c.username == "" {
		c.username = u.User.Username()
		c.password, _ = u.User.Password()
	}
	u.User = nil
	u.RawQuery, u.Fragment = "", ""
	u.Path = strings.TrimSuffix(u.Path, "/")
	u.RawPath = ""
	c.base = u
	if c.name == "" {
		c.name = u.Host
	}
	if c.http == nil {
		c.http = &http.Client{}
	}
	if c.log == nil {
		c.log = slog.Default()
	}
	c.log = c.log.With("broker", c.name)
	if c.cfg.Timeout <= 0 {
		c.cfg.Timeout = DefaultTimeout
	}
	if c.cfg.PollInterval <= 0 {
		c.cfg.PollInterval = DefaultPollInterval
	}
	if c.cfg.MaxPollInterval <= 0 {
		c.cfg.MaxPollInterval = DefaultMaxPollInterval
	}
	if c.cfg.MitigationTimeout <= 0 {
		c.cfg.MitigationTimeout = DefaultMitigationTimeout
	}
	return c, nil
}

// String names the broker and its URL, without credentials.
func (c *Client) String() string { return fmt.Sprintf("osb.Client{%s %s}", c.name, c.base) }

// GoString is String: it never shows the credentials.
func (c *Client) GoString() string { return c.String() }

// Name is the broker's name.
func (c *Client) Name() string { return c.name }

// response is a broker's answer, read whole.
type response struct {
	status int
	header http.Header
	body   []byte
}

// errNoAnswer marks an error where no answer was read: the request timed out,
// was cancelled or failed on the network. Unless unsent (the context had
// ended before it was sent, or no connection could be made), the broker may
// have received it and acted on it.
type errNoAnswer struct {
	err    error
	unsent bool
}

func (e *errNoAnswer) Error() string { return e.err.Error() }
func (e *errNoAnswer) Unwrap() error { return e.err }

// request options.
type call struct {
	method   string
	path     string // escaped, below the base URL
	query    url.Values
	body     any
	identity bool // send the originating identity
}

// do sends one request and reads the answer. Errors are wrapped with op and
// are *errNoAnswer when no answer was read.
func (c *Client) do(ctx context.Context, op string, r call) (response, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	var body io.Reader
	if r.body != nil {
		b, err := json.Marshal(r.body)
		if err != nil {
			return response{}, fmt.Errorf("broker %s: %s: encode request: %w", c.name, op, err)
		}
		body = bytes.NewReader(b)
	}
	target := c.base.String() + r.path
	if q := r.query.Encode(); q != "" {
		target += "?" + q
	}
	req, err := http.NewRequestWithContext(ctx, r.method, target, body)
	if err != nil {
		return response{}, fmt.Errorf("broker %s: %s: build request: %w", c.name, op, err)
	}
	req.Header.Set(HeaderAPIVersion, APIVersion)
	req.Header.Set(HeaderRequestIdentity, newUUID())
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.username != "" || c.password != "" {
		req.SetBasicAuth(c.username, c.password)
	}
	if r.identity && c.cfg.OriginatingIdentity != nil {
		if platform, value := c.cfg.OriginatingIdentity(ctx); platform != "" {
			req.Header.Set(HeaderOriginatingIdentity, platform+" "+base64.StdEncoding.EncodeToString([]byte(value)))
		}
	}
	if err := ctx.Err(); err != nil {
		return response{}, &errNoAnswer{err: fmt.Errorf("broker %s: %s: not sent: %w", c.name, op, context.Cause(ctx)), unsent: true}
	}
	resp, err := c.http.Do(req)
	if err != nil {
		var ne *net.OpError
		unsent := errors.As(err, &ne) && ne.Op == "dial"
		return response{}, &errNoAnswer{err: fmt.Errorf("broker %s: %s: %w", c.name, op, scrub(err)), unsent: unsent}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return response{}, &errNoAnswer{err: fmt.Errorf("broker %s: %s: read answer (status %d): %w", c.name, op, resp.StatusCode, scrub(err))}
	}
	return response{status: resp.StatusCode, header: resp.Header, body: b}, nil
}

// scrub drops the URL from a *url.Error (the request's URL carries no user
// info, but its query may carry ids a caller did not mean to log twice).
func scrub(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// decode reads a success body into v; an empty body is "{}".
func decode(body []byte, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("%w: %w", ErrMalformedResponse, redactJSONError(err))
	}
	return nil
}

// redactJSONError keeps a JSON error's kind and drops any value it quotes.
func redactJSONError(err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Errorf("field %s: cannot decode a JSON %s into %s", te.Field, te.Value, te.Type)
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Errorf("invalid JSON at offset %d", se.Offset)
	}
	return errors.New("invalid JSON")
}

// newUUID returns a random (version 4) UUID.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand panics instead)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// pathID escapes one path segment.
func pathID(id string) string { return url.PathEscape(id) }
