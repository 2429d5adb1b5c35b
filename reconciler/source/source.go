// Package source watches git repositories of Cloud Foundry manifests with
// go-git: it fetches one branch on a poll interval or on demand and exposes
// the head commit as a [Snapshot] whose files, tree hashes and tar streams are
// read straight from git objects, without a checkout.
//
// A source is one of:
//   - a plain filesystem path to a work tree or a bare repository, read in
//     place: only committed content counts, uncommitted edits are ignored;
//   - a file://, http:// or https:// URL, cloned bare into [Config.Dir] the
//     first time (the clone is reused after a restart) and then fetched one
//     branch at a time, force-updating the local ref so force-pushes are
//     followed. http basic auth may be given as user:password in the URL; the
//     password is sent as an Authorization header, never written to the clone,
//     and redacted (see [Redact]) in logs and errors.
//
// file:// URLs are fetched by go-git running the git-upload-pack binary, so
// they need git installed; plain paths and http(s) URLs do not.
package source

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
)

// DefaultTimeout bounds one fetch when [Config.Timeout] is zero.
const DefaultTimeout = 5 * time.Minute

// ErrRunning is returned by [Source.Run] when Run is already running for the
// same source.
var ErrRunning = errors.New("source is already running")

// Config describes one git source.
type Config struct {
	// Name identifies the source in logs and status; it must be unique
	// among the controller's sources.
	Name string
	// URL is "file:///path/repo.git", "http(s)://[user[:password]@]host/repo.git",
	// or a plain filesystem path to a git work tree or bare repository.
	URL string
	// Branch is the branch to follow. "" means: for a plain path, the branch
	// HEAD points at, re-read on every fetch (a detached HEAD is followed as
	// is); for a URL, the remote's HEAD branch, re-read on every fetch.
	// A "refs/heads/" prefix is accepted and stripped.
	Branch string
	// Dir is where a URL source keeps its bare clone; it is created if
	// missing and must be the source's own. Unused for plain paths.
	Dir string
	// Poll is the interval between fetches in [Source.Run]; 0 disables
	// polling (fetches then happen only at start and on Trigger or Sync).
	Poll time.Duration
	// Timeout bounds one fetch; 0 means [DefaultTimeout].
	Timeout time.Duration
	// Log receives the source's logs; nil discards them.
	Log *slog.Logger
}

// Source is one watched git branch. Its methods are safe for concurrent use;
// git operations of one source are serialized.
type Source struct {
	cfg      Config
	log      *slog.Logger
	redacted string // cfg.URL with credentials redacted

	remote   bool               // URL source cloned into cfg.Dir
	path     string             // plain path (absolute), for !remote
	endpoint string             // URL without credentials, for remote
	auth     *githttp.BasicAuth // from the URL's user info, or nil

	// cache holds the git objects its snapshots decoded (cache.go).
	cache *objectCache

	sem     chan struct{} // held during a fetch: serializes git operations
	trigger chan struct{} // pending Trigger, capacity 1
	syncs   chan *syncRequest
	fetches atomic.Int64 // fetch attempts, for tests

	mu        sync.Mutex
	lastErr   error
	lastFetch time.Time
	branch    string        // branch resolved by the last successful fetch
	runDone   chan struct{} // non-nil while Run runs; closed when it returns
}

type syncRequest struct {
	done chan syncResult // capacity 1
}

type syncResult struct {
	snap *Snapshot
	err  error
}

// New validates cfg and returns a source. It does not touch the network or
// the repository.
func New(cfg Config) (*Source, error) {
	s := &Source{
		cfg:      cfg,
		log:      cfg.Log,
		redacted: Redact(cfg.URL),
		cache:    newObjectCache(),
		sem:      make(chan struct{}, 1),
		trigger:  make(chan struct{}, 1),
		syncs:    make(chan *syncRequest),
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if cfg.Name == "" {
		return nil, fmt.Errorf("source %s: name is empty", s.redacted)
	}
	if cfg.URL == "" {
		return nil, fmt.Errorf("source %q: URL is empty", cfg.Name)
	}
	if cfg.Poll < 0 || cfg.Timeout < 0 {
		return nil, fmt.Errorf("source %q: negative poll interval or timeout", cfg.Name)
	}
	if s.cfg.Timeout == 0 {
		s.cfg.Timeout = DefaultTimeout
	}
	s.cfg.Branch = strings.TrimPrefix(cfg.Branch, "refs/heads/")
	if s.cfg.Branch != "" {
		if err := plumbing.NewBranchReferenceName(s.cfg.Branch).Validate(); err != nil {
			return nil, fmt.Errorf("source %q: branch %q: %w", cfg.Name, s.cfg.Branch, err)
		}
	}
	s.log = s.log.With("source", cfg.Name, "url", s.redacted)

	scheme, _, hasScheme := strings.Cut(cfg.URL, "://")
	if !hasScheme {
		if first, _, _ := strings.Cut(cfg.URL, "/"); strings.Contains(first, ":") {
			return nil, fmt.Errorf("source %q: %s looks like an scp-style URL, which is not supported: use file://, http(s):// or a plain path",
				cfg.Name, s.redacted)
		}
		abs, err := filepath.Abs(cfg.URL)
		if err != nil {
			return nil, fmt.Errorf("source %q: path %s: %w", cfg.Name, cfg.URL, err)
		}
		s.path = abs
		return s, nil
	}

	u, err := url.Parse(cfg.URL)
	if err != nil {
		// url.Error repeats the raw URL: keep only the cause.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("source %q: parse URL %s: %w", cfg.Name, s.redacted, err)
	}
	switch strings.ToLower(scheme) {
	case "file":
		if u.User != nil || u.Host != "" && u.Host != "localhost" {
			return nil, fmt.Errorf("source %q: file URL %s must be file:///absolute/path", cfg.Name, s.redacted)
		}
		u.Host = "" // file://localhost/p is file:///p
	case "http", "https":
		if u.Host == "" {
			return nil, fmt.Errorf("source %q: URL %s has no host", cfg.Name, s.redacted)
		}
		if u.User != nil {
			pw, _ := u.User.Password()
			s.auth = &githttp.BasicAuth{Username: u.User.Username(), Password: pw}
			u.User = nil
		}
	default:
		return nil, fmt.Errorf("source %q: URL %s: unsupported scheme %q (want file, http, https or a plain path)",
			cfg.Name, s.redacted, scheme)
	}
	if cfg.Dir == "" {
		return nil, fmt.Errorf("source %q: URL %s needs a Dir for its clone", cfg.Name, s.redacted)
	}
	dir, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("source %q: clone dir %s: %w", cfg.Name, cfg.Dir, err)
	}
	s.cfg.Dir = dir
	s.remote = true
	s.endpoint = u.String()
	return s, nil
}

// Redact returns raw with any credentials in a URL's user info replaced by
// "xxxxx": "https://user:secret@host/r.git" becomes
// "https://user:xxxxx@host/r.git", and a lone user name, which is often a
// token ("https://TOKEN@host/r.git"), becomes "https://xxxxx@host/r.git".
// Plain paths and URLs without user info are returned unchanged. It is safe
// on malformed input.
func Redact(raw string) string {
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return raw
	}
	// The authority ends at the first '/', '?' or '#'; user info is what
	// precedes its last '@' (a password may itself contain '@').
	end := strings.IndexAny(rest, "/?#")
	if end < 0 {
		end = len(rest)
	}
	at := strings.LastIndex(rest[:end], "@")
	if at < 0 {
		return raw
	}
	user := "xxxxx"
	if name, _, hasPassword := strings.Cut(rest[:at], ":"); hasPassword {
		user = name + ":xxxxx"
	}
	return scheme + "://" + user + rest[at:]
}

// Name returns the source's name.
func (s *Source) Name() string { return s.cfg.Name }

// URL returns the source's URL or path with credentials redacted.
func (s *Source) URL() string { return s.redacted }

// Branch returns the configured branch or, when none was configured, the
// branch resolved by the last successful fetch ("" before it, or when a plain
// path's HEAD is detached).
func (s *Source) Branch() string {
	if s.cfg.Branch != "" {
		return s.cfg.Branch
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.branch
}

// LastError returns the error of the most recent fetch, or nil if it
// succeeded (or none has finished yet).
func (s *Source) LastError() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastErr
}

// LastFetch returns when the most recent successful fetch finished; zero if
// none has.
func (s *Source) LastFetch() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastFetch
}

// Fetch fetches the branch now (for a plain path: reads it in place) and
// returns its head. Concurrent calls are serialized. The outcome is recorded
// for LastError and LastFetch unless ctx ended first. Fetch does not call
// Run's onChange; Run notices a new head on its next fetch (see Sync).
func (s *Source) Fetch(ctx context.Context) (*Snapshot, error) {
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	select {
	case s.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("source %q: fetch %s: wait for the previous fetch: %w", s.cfg.Name, s.redacted, ctx.Err())
	}
	defer func() { <-s.sem }()

	s.fetches.Add(1)
	var snap *Snapshot
	var err error
	if s.remote {
		snap, err = s.fetchRemote(ctx)
	} else {
		snap, err = s.readLocal()
	}
	if err != nil {
		err = fmt.Errorf("source %q: fetch %s: %w", s.cfg.Name, s.redacted, err)
	}
	if parent.Err() == nil {
		s.mu.Lock()
		s.lastErr = err
		if err == nil {
			s.lastFetch = time.Now()
			s.branch = snap.Branch
		}
		s.mu.Unlock()
	}
	if err != nil {
		return nil, err
	}
	return snap, nil
}

// Trigger asks Run for an immediate fetch. It never blocks; triggers that
// arrive while one is pending or a fetch is under way are coalesced into one
// more fetch. Without a running Run the trigger waits for the next Run, whose
// initial fetch absorbs it.
func (s *Source) Trigger() {
	select {
	case s.trigger <- struct{}{}:
	default:
	}
}

// Sync fetches now and returns the head.
//
// If Run is running, the fetch is done by Run's goroutine, started after Sync
// was called (so it sees anything pushed before the call); when the head
// differs from the last one delivered, onChange is called and has returned
// before Sync returns. So when Sync returns a snapshot without error while Run
// runs, onChange has been called for that commit and has returned — in this
// call or, if the head was already delivered, earlier; an onChange for it
// (or for any older commit) is never still in progress. Concurrent Syncs
// (and pending Triggers) are coalesced into one fetch. onChange receives
// Run's context, not Sync's: if ctx ends first Sync returns ctx's error and
// the fetch and delivery carry on in Run.
//
// If Run is not running, or returns before taking the request, Sync is
// Fetch and nothing is delivered.
func (s *Source) Sync(ctx context.Context) (*Snapshot, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("source %q: sync %s: %w", s.cfg.Name, s.redacted, err)
	}
	s.mu.Lock()
	runDone := s.runDone
	s.mu.Unlock()
	if runDone == nil {
		return s.Fetch(ctx)
	}
	req := &syncRequest{done: make(chan syncResult, 1)}
	select {
	case s.syncs <- req:
	case <-runDone:
		return s.Fetch(ctx)
	case <-ctx.Done():
		return nil, fmt.Errorf("source %q: sync %s: %w", s.cfg.Name, s.redacted, ctx.Err())
	}
	// Run always answers a request it has taken.
	select {
	case res := <-req.done:
		return res.snap, res.err
	case <-ctx.Done():
		return nil, fmt.Errorf("source %q: sync %s: wait for delivery: %w", s.cfg.Name, s.redacted, ctx.Err())
	}
}

// Run fetches at start, then after every Poll interval (measured from the end
// of the previous fetch) and on every Trigger or Sync, until ctx ends; it then
// returns nil. It calls onChange, from Run's goroutine and one call at a
// time, with Run's ctx whenever the fetched head commit differs from the last
// one delivered; the first successful fetch always delivers. A commit is
// delivered once even if onChange fails to apply it: retrying is the
// caller's business. A force-push back to an earlier commit is a change and
// is delivered. Fetch errors are recorded (LastError), logged when they first
// appear or change, and retried on the next tick; they never stop Run.
// Run returns ErrRunning if it is already running for this source.
// onChange must not call Sync, which would wait for Run, hence for itself.
func (s *Source) Run(ctx context.Context, onChange func(context.Context, *Snapshot)) error {
	done := make(chan struct{})
	s.mu.Lock()
	if s.runDone != nil {
		s.mu.Unlock()
		return fmt.Errorf("source %q: %w", s.cfg.Name, ErrRunning)
	}
	s.runDone = done
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.runDone = nil
		s.mu.Unlock()
		close(done)
	}()
	select { // the initial fetch absorbs a trigger given before Run
	case <-s.trigger:
	default:
	}

	var tick <-chan time.Time
	var timer *time.Timer
	if s.cfg.Poll > 0 {
		timer = time.NewTimer(s.cfg.Poll)
		defer timer.Stop()
		tick = timer.C
	}
	var last, lastLogged string
	round := func(reqs []*syncRequest) {
		snap, err := s.Fetch(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			if msg := err.Error(); msg != lastLogged {
				s.log.Warn("git fetch failed; retrying on the next tick", "err", err)
				lastLogged = msg
			} else {
				s.log.Debug("git fetch still failing", "err", err)
			}
		case err == nil:
			if lastLogged != "" {
				s.log.Info("git fetch recovered")
				lastLogged = ""
			}
			if snap.Commit != last {
				s.log.Info("new head", "commit", snap.Commit, "branch", snap.Branch)
				onChange(ctx, snap)
				last = snap.Commit
			}
		}
		for _, r := range reqs {
			r.done <- syncResult{snap: snap, err: err}
		}
		if timer != nil {
			timer.Reset(s.cfg.Poll)
		}
	}

	round(nil)
	for {
		var reqs []*syncRequest
		select {
		case <-ctx.Done():
			return nil
		case <-tick:
		case <-s.trigger:
		case r := <-s.syncs:
			reqs = append(reqs, r)
		}
	drain: // coalesce whatever else is pending into this round
		for {
			select {
			case r := <-s.syncs:
				reqs = append(reqs, r)
			case <-s.trigger:
			default:
				break drain
			}
		}
		round(reqs)
	}
}
