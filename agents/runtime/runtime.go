// Package runtime runs a cell's app instances as containerd containers:
// it pulls droplet images, creates and starts containers locked down
// (non-root user, no capabilities, no new privileges, memory and pids
// limits, containerd's masked and read-only paths, private namespaces),
// lists, waits for and stops them.
//
// Containers and their tasks live in containerd, not in this process: each
// task writes its output straight to a log file (the shim holds it), so an
// agent that restarts finds its instances with List, follows them with
// Wait and stops them with Stop, exactly as if it had started them.
package runtime

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/containerd/containerd"
	"github.com/containerd/containerd/errdefs"
	"github.com/containerd/containerd/remotes"
	"github.com/containerd/containerd/remotes/docker"
)

// Defaults for Config.
const (
	DefaultNamespace   = "driftless"
	DefaultSnapshotter = "overlayfs"
	DefaultPullTimeout = 10 * time.Minute
)

// Config configures a Runtime.
type Config struct {
	// Address is containerd's gRPC socket. Required.
	Address string
	// Namespace is the containerd namespace holding the cell's images and
	// containers, DefaultNamespace by default. Agents sharing a containerd
	// need different namespaces: List returns every container in it.
	Namespace string
	// Snapshotter unpacks images and makes container root filesystems,
	// DefaultSnapshotter by default.
	Snapshotter string
	// LogDir holds one log file per instance, <LogDir>/<id>.log. Required.
	LogDir string
	// PlainHTTPHosts says which registry hosts ("host" or "host:port") are
	// pulled from over plain HTTP; by default loopback hosts only.
	PlainHTTPHosts func(host string) bool
	// PullTimeout bounds one pull, DefaultPullTimeout by default. A pull
	// is shared by every caller asking for the same image and goes on when
	// one of them gives up.
	PullTimeout time.Duration
	// RegistryToken is the cell's credential (a driftless token of role
	// cell), sent as HTTP Basic password, user "cell", to the registries
	// named by TrustRegistry (the controller's blob store) and to no other.
	RegistryToken string
	// RegistryCAs are the roots a registry's HTTPS certificate is checked
	// against (the controller's CA); nil for the system's.
	RegistryCAs *x509.CertPool
}

// Runtime runs containers in one containerd namespace. Its methods are safe
// for concurrent use.
type Runtime struct {
	cfg      Config
	client   *containerd.Client
	resolver remotes.Resolver

	mu    sync.Mutex
	pulls map[string]*pullCall
	// trusted are the registry hosts the cell's credential goes to.
	trusted map[string]bool
}

type pullCall struct {
	done chan struct{}
	err  error
}

// New connects to containerd at cfg.Address and checks that it answers.
func New(ctx context.Context, cfg Config) (*Runtime, error) {
	if cfg.Address == "" {
		return nil, errors.New("runtime config: Address is required")
	}
	if cfg.LogDir == "" {
		return nil, errors.New("runtime config: LogDir is required")
	}
	if cfg.Namespace == "" {
		cfg.Namespace = DefaultNamespace
	}
	if cfg.Snapshotter == "" {
		cfg.Snapshotter = DefaultSnapshotter
	}
	if cfg.PlainHTTPHosts == nil {
		cfg.PlainHTTPHosts = IsLoopbackHost
	}
	if cfg.PullTimeout <= 0 {
		cfg.PullTimeout = DefaultPullTimeout
	}
	abs, err := filepath.Abs(cfg.LogDir)
	if err != nil {
		return nil, fmt.Errorf("runtime config: log dir: %w", err)
	}
	cfg.LogDir = abs
	if err := os.MkdirAll(cfg.LogDir, 0o750); err != nil {
		return nil, fmt.Errorf("creating the instance log folder: %w", err)
	}
	client, err := containerd.New(cfg.Address, containerd.WithDefaultNamespace(cfg.Namespace),
		containerd.WithTimeout(10*time.Second))
	if err != nil {
		return nil, fmt.Errorf("connecting to containerd at %s: %w", cfg.Address, err)
	}
	vctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := client.Version(vctx); err != nil {
		client.Close()
		return nil, fmt.Errorf("asking containerd at %s for its version: %w", cfg.Address, err)
	}
	plain := cfg.PlainHTTPHosts
	r := &Runtime{cfg: cfg, client: client, pulls: map[string]*pullCall{}, trusted: map[string]bool{}}
	opts := []docker.RegistryOpt{docker.WithPlainHTTP(func(host string) (bool, error) { return plain(host), nil }),
		docker.WithAuthorizer(docker.NewDockerAuthorizer(docker.WithAuthCreds(r.credentials)))}
	if cfg.RegistryCAs != nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = &tls.Config{RootCAs: cfg.RegistryCAs, MinVersion: tls.VersionTLS12}
		opts = append(opts, docker.WithClient(&http.Client{Transport: tr}))
	}
	r.resolver = docker.NewResolver(docker.ResolverOptions{Hosts: docker.ConfigureDefaultRegistries(opts...)})
	return r, nil
}

// TrustRegistry sends the cell's credential to host ("host:port") when it
// asks for one: the controller names its blob store in its commands.
func (r *Runtime) TrustRegistry(host string) {
	if host == "" || r.cfg.RegistryToken == "" {
		return
	}
	r.mu.Lock()
	r.trusted[host] = true
	r.mu.Unlock()
}

// credentials answers a registry's challenge: the cell's credential for a
// trusted host, none for the others.
func (r *Runtime) credentials(host string) (string, string, error) {
	r.mu.Lock()
	ok := r.trusted[host]
	r.mu.Unlock()
	if !ok {
		return "", "", nil
	}
	return "cell", r.cfg.RegistryToken, nil
}

// Close closes the connection to containerd. Containers keep running.
func (r *Runtime) Close() error {
	if err := r.client.Close(); err != nil {
		return fmt.Errorf("closing the containerd connection: %w", err)
	}
	return nil
}

// Config returns the runtime's configuration with defaults filled in.
func (r *Runtime) Config() Config { return r.cfg }

// IsLoopbackHost reports whether a registry host ("host" or "host:port")
// is localhost or a loopback address.
func IsLoopbackHost(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Pull fetches the image ref (e.g. "127.0.0.1:7070/droplets/dev/hello@sha256:…")
// and unpacks it for the snapshotter. An image already pulled and unpacked
// costs two metadata look-ups and no traffic; callers pulling the same ref
// at the same time share one pull. Refs should be pinned by digest: a tag
// is resolved once and then taken from the local store.
func (r *Runtime) Pull(ctx context.Context, ref string) error {
	if ready, err := r.imageReady(ctx, ref); err != nil {
		return fmt.Errorf("pulling %s: %w", ref, err)
	} else if ready {
		return nil
	}

	r.mu.Lock()
	call, ok := r.pulls[ref]
	if !ok {
		call = &pullCall{done: make(chan struct{})}
		r.pulls[ref] = call
		go func() {
			// Detached from the first caller: the others may still wait.
			pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.cfg.PullTimeout)
			defer cancel()
			call.err = r.pull(pctx, ref)
			r.mu.Lock()
			delete(r.pulls, ref)
			r.mu.Unlock()
			close(call.done)
		}()
	}
	r.mu.Unlock()

	select {
	case <-call.done:
		if call.err != nil {
			return fmt.Errorf("pulling %s: %w", ref, call.err)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("pulling %s: %w", ref, ctx.Err())
	}
}

// imageReady reports whether ref is in the image store and unpacked.
func (r *Runtime) imageReady(ctx context.Context, ref string) (bool, error) {
	img, err := r.client.GetImage(ctx, ref)
	if errdefs.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("looking up the image: %w", err)
	}
	ok, err := img.IsUnpacked(ctx, r.cfg.Snapshotter)
	if err != nil {
		// E.g. content removed behind our back: pulling again repairs it.
		slog.Warn("checking whether an image is unpacked", "ref", ref, "err", err)
		return false, nil
	}
	return ok, nil
}

func (r *Runtime) pull(ctx context.Context, ref string) error {
	start := time.Now()
	img, err := r.client.GetImage(ctx, ref)
	if err == nil {
		// Present but not unpacked (the snapshot was removed): unpack only.
		if err := img.Unpack(ctx, r.cfg.Snapshotter); err == nil {
			slog.Info("image unpacked", "ref", ref, "took", time.Since(start))
			return nil
		}
	}
	_, err = r.client.Pull(ctx, ref,
		containerd.WithPullUnpack,
		containerd.WithPullSnapshotter(r.cfg.Snapshotter),
		containerd.WithResolver(r.resolver))
	if err != nil {
		return err
	}
	slog.Info("image pulled", "ref", ref, "took", time.Since(start))
	return nil
}
