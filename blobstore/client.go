package blobstore

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Client talks to a blob store over HTTP: stagers fetch app sources and
// push droplets with it.
type Client struct {
	// BaseURL is the store's base URL, e.g. "http://127.0.0.1:7070".
	BaseURL string
	HTTP    *http.Client
	// Token is the credential sent with every request (a cell's token;
	// the API refuses anonymous blob requests).
	Token string
}

// NewClient returns a client of the store at baseURL.
func NewClient(baseURL string) *Client { return NewClientTLS(baseURL, nil) }

// NewClientTLS returns a client of the store at baseURL whose HTTPS
// certificate is checked against roots (nil for the system's).
func NewClientTLS(baseURL string, roots *x509.CertPool) *Client {
	tr := &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 8, IdleConnTimeout: 30 * time.Second,
		ResponseHeaderTimeout: 5 * time.Minute}
	if roots != nil {
		tr.TLSClientConfig = &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	}
	return &Client{BaseURL: strings.TrimSuffix(baseURL, "/"), HTTP: &http.Client{Transport: tr}}
}

func (c *Client) do(ctx context.Context, method, path string, body io.Reader, size int64) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.BaseURL+path, body)
	if err != nil {
		return nil, fmt.Errorf("blob store request: %w", err)
	}
	if size >= 0 && body != nil {
		req.ContentLength = size
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	for attempt := 1; ; attempt++ {
		resp, err := hc.Do(req)
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", method, c.BaseURL+path, err)
		}
		if body != nil || attempt == readAttempts || !transient(resp.StatusCode) {
			return resp, nil
		}
		// A read refused for a passing reason (the store's credentials
		// being restored, its controller busy) is tried again.
		resp.Body.Close()
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%s %s: %w", method, c.BaseURL+path, ctx.Err())
		case <-time.After(readRetryPause):
		}
	}
}

// Reads (no body) are tried readAttempts times, readRetryPause apart,
// while the store answers with a transient status.
const (
	readAttempts   = 4
	readRetryPause = time.Second
)

// transient reports whether a status may pass by itself: 401 while a
// Consul that lost its state gets the platform's tokens back, 429, and a
// controller or proxy that is busy or restarting.
func transient(code int) bool {
	switch code {
	case http.StatusUnauthorized, http.StatusTooManyRequests, http.StatusBadGateway,
		http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// statusError turns a failed response into an error and closes its body.
func statusError(resp *http.Response, what string) error {
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	return fmt.Errorf("%s: blob store answered %s: %s", what, resp.Status, strings.TrimSpace(string(msg)))
}

// Put uploads r and returns its digest.
func (c *Client) Put(ctx context.Context, r io.Reader) (string, error) {
	resp, err := c.do(ctx, http.MethodPost, "/v1/blobs", r, -1)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusCreated {
		return "", statusError(resp, "uploading blob")
	}
	defer resp.Body.Close()
	var out struct {
		Digest string `json:"digest"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return "", fmt.Errorf("uploading blob: reading answer: %w", err)
	}
	return out.Digest, nil
}

// PutDigest uploads size bytes of r, whose digest is digest.
func (c *Client) PutDigest(ctx context.Context, digest string, r io.Reader, size int64) error {
	resp, err := c.do(ctx, http.MethodPut, "/v1/blobs/"+digest, r, size)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusCreated {
		return statusError(resp, "uploading blob "+digest)
	}
	resp.Body.Close()
	return nil
}

// PutBytes uploads b under its digest.
func (c *Client) PutBytes(ctx context.Context, digest string, b []byte) error {
	return c.PutDigest(ctx, digest, bytes.NewReader(b), int64(len(b)))
}

// Get returns a blob's content; the caller closes it.
func (c *Client) Get(ctx context.Context, digest string) (io.ReadCloser, error) {
	resp, err := c.do(ctx, http.MethodGet, "/v1/blobs/"+url.PathEscape(digest), nil, -1)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, statusError(resp, "fetching blob "+digest)
	}
	return resp.Body, nil
}

// Has reports whether the store holds a blob.
func (c *Client) Has(ctx context.Context, digest string) (bool, error) {
	resp, err := c.do(ctx, http.MethodHead, "/v1/blobs/"+url.PathEscape(digest), nil, -1)
	if err != nil {
		return false, err
	}
	resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
		return true, nil
	case http.StatusNotFound:
		return false, nil
	default:
		return false, fmt.Errorf("checking blob %s: blob store answered %s", digest, resp.Status)
	}
}

// PushImage uploads an image's layers, config and manifest (skipping blobs
// the store holds) and returns the manifest's digest, which names the image.
func (c *Client) PushImage(ctx context.Context, img v1.Image) (string, error) {
	layers, err := img.Layers()
	if err != nil {
		return "", fmt.Errorf("pushing image: listing layers: %w", err)
	}
	for _, l := range layers {
		d, err := l.Digest()
		if err != nil {
			return "", fmt.Errorf("pushing image: layer digest: %w", err)
		}
		if ok, err := c.Has(ctx, d.String()); err != nil {
			return "", err
		} else if ok {
			continue
		}
		size, err := l.Size()
		if err != nil {
			return "", fmt.Errorf("pushing image: layer size: %w", err)
		}
		rc, err := l.Compressed()
		if err != nil {
			return "", fmt.Errorf("pushing image: reading layer %s: %w", d, err)
		}
		err = c.PutDigest(ctx, d.String(), rc, size)
		rc.Close()
		if err != nil {
			return "", err
		}
	}
	cfg, err := img.RawConfigFile()
	if err != nil {
		return "", fmt.Errorf("pushing image: config: %w", err)
	}
	cfgName, err := img.ConfigName()
	if err != nil {
		return "", fmt.Errorf("pushing image: config digest: %w", err)
	}
	if err := c.PutBytes(ctx, cfgName.String(), cfg); err != nil {
		return "", err
	}
	man, err := img.RawManifest()
	if err != nil {
		return "", fmt.Errorf("pushing image: manifest: %w", err)
	}
	d, err := img.Digest()
	if err != nil {
		return "", fmt.Errorf("pushing image: manifest digest: %w", err)
	}
	if err := c.PutBytes(ctx, d.String(), man); err != nil {
		return "", err
	}
	return d.String(), nil
}

// ImageRef is the reference containerd pulls a droplet by:
// "<host:port>/droplets/<space>/<app>@sha256:…".
func ImageRef(blobStoreURL, space, app, digest string) string {
	host := blobStoreURL
	if u, err := url.Parse(blobStoreURL); err == nil && u.Host != "" {
		host = u.Host
	}
	return fmt.Sprintf("%s/droplets/%s/%s@%s", host, repoComponent(space), repoComponent(app), digest)
}

// repoComponent makes s a valid OCI repository path component.
func repoComponent(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
	}
	out := strings.Trim(b.String(), "-")
	if out == "" {
		return "app"
	}
	return out
}
