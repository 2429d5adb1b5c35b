package forge

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"
)

// ReporterOptions tune a Reporter; a zero field takes its default.
type ReporterOptions struct {
	// QueueSize is the most statuses waiting (default 256): posting one
	// more drops the oldest, with a warning.
	QueueSize int
	// InitialBackoff is the wait before the first retry (default 1 s),
	// doubled after each failure up to MaxBackoff (default 1 min).
	InitialBackoff time.Duration
	MaxBackoff     time.Duration
	// MaxAttempts is the most calls made for one status (default 6), the
	// first included.
	MaxAttempts int
	// MaxRetryAfter caps the wait a forge's Retry-After or rate-limit
	// reset asks for (default 10 min).
	MaxRetryAfter time.Duration
}

// The defaults of ReporterOptions.
const (
	DefaultQueueSize      = 256
	DefaultInitialBackoff = time.Second
	DefaultMaxBackoff     = time.Minute
	DefaultMaxAttempts    = 6
	DefaultMaxRetryAfter  = 10 * time.Minute
)

func (o ReporterOptions) withDefaults() ReporterOptions {
	if o.QueueSize <= 0 {
		o.QueueSize = DefaultQueueSize
	}
	if o.InitialBackoff <= 0 {
		o.InitialBackoff = DefaultInitialBackoff
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = DefaultMaxBackoff
	}
	o.MaxBackoff = max(o.MaxBackoff, o.InitialBackoff)
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = DefaultMaxAttempts
	}
	if o.MaxRetryAfter <= 0 {
		o.MaxRetryAfter = DefaultMaxRetryAfter
	}
	return o
}

// Reporter posts commit statuses in the background, so that reporting
// never holds up a deploy: Post queues a status and returns at once, Run
// posts them one at a time and retries the failures. It is safe for
// concurrent use.
type Reporter struct {
	client *Client
	log    *slog.Logger
	opts   ReporterOptions
	wake   chan struct{}

	mu    sync.Mutex
	queue []*job // in the order posted
	seq   uint64
}

// job is one status waiting to be posted.
type job struct {
	key      string
	repo     Repo
	sha      string
	st       Status
	attempts int       // calls made so far
	due      time.Time // not before
	seq      uint64    // the order Post was called in
}

// NewReporter returns a Reporter posting with client and logging to log
// (nil: slog.Default()). Nothing is posted until Run.
func NewReporter(client *Client, log *slog.Logger, opts ReporterOptions) *Reporter {
	if log == nil {
		log = slog.Default()
	}
	return &Reporter{client: client, log: log.With("component", "forge-reporter"),
		opts: opts.withDefaults(), wake: make(chan struct{}, 1)}
}

// Post queues st for commit sha of repo and returns at once. A status
// still queued for the same repository, commit and context is replaced by
// st (and its attempts start again). When the queue is full the oldest
// status is dropped, with a warning.
func (r *Reporter) Post(repo Repo, sha string, st Status) {
	j := &job{key: jobKey(repo, sha, st.Context), repo: repo, sha: sha, st: st}
	r.mu.Lock()
	r.seq++
	j.seq = r.seq
	replaced := false
	for i, q := range r.queue {
		if q.key == j.key {
			r.queue[i] = j
			replaced = true
			break
		}
	}
	if !replaced {
		r.enqueueLocked(j)
	}
	r.mu.Unlock()
	if replaced {
		r.log.Debug("replaced a queued commit status", j.attrs()...)
	}
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// enqueueLocked appends j, dropping the oldest when the queue is full.
func (r *Reporter) enqueueLocked(j *job) {
	for len(r.queue) >= r.opts.QueueSize {
		old := r.queue[0]
		r.queue = r.queue[1:]
		r.log.Warn("commit status queue full: dropping the oldest status",
			append(old.attrs(), "queue_size", r.opts.QueueSize)...)
	}
	r.queue = append(r.queue, j)
}

// Pending returns how many statuses wait to be posted (the one being
// posted not included).
func (r *Reporter) Pending() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.queue)
}

// Run posts the queued statuses, oldest first, until ctx ends; what is
// still queued then is dropped. A failed post is retried after
// InitialBackoff, doubled each time up to MaxBackoff (or after the wait a
// rate limit asks for, up to MaxRetryAfter), at most MaxAttempts calls in
// all; an answer that cannot change (a 4xx other than 408, 429 and a rate
// limited 403; an invalid status) is not retried.
func (r *Reporter) Run(ctx context.Context) {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		j, wait := r.next(time.Now())
		if j == nil {
			var tc <-chan time.Time
			if wait > 0 {
				timer.Reset(wait)
				tc = timer.C
			}
			select {
			case <-ctx.Done():
				if n := r.Pending(); n > 0 {
					r.log.Info("stopping with commit statuses not posted", "pending", n)
				}
				return
			case <-r.wake:
			case <-tc:
			}
			if !timer.Stop() {
				select { // drain a fire not received
				case <-timer.C:
				default:
				}
			}
			continue
		}
		r.post(ctx, j)
		if ctx.Err() != nil {
			return
		}
	}
}

// next removes and returns the queued job due first if it is due at now;
// else it returns how long until one is (0: the queue is empty).
func (r *Reporter) next(now time.Time) (*job, time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	best := -1
	for i, j := range r.queue {
		if best < 0 || j.due.Before(r.queue[best].due) {
			best = i
		}
	}
	if best < 0 {
		return nil, 0
	}
	j := r.queue[best]
	if d := j.due.Sub(now); d > 0 {
		return nil, d
	}
	r.queue = append(r.queue[:best], r.queue[best+1:]...)
	return j, 0
}

// post makes one attempt at j and queues it again if it is worth retrying.
func (r *Reporter) post(ctx context.Context, j *job) {
	j.attempts++
	err := r.client.PostStatus(ctx, j.repo, j.sha, j.st)
	if err == nil {
		r.log.Debug("posted a commit status", append(j.attrs(), "attempts", j.attempts)...)
		return
	}
	if ctx.Err() != nil {
		return // stopping: not the forge's fault
	}
	attrs := append(j.attrs(), "attempts", j.attempts, "err", err.Error())
	if !Retryable(err) {
		r.log.Warn("could not post a commit status: not retrying", attrs...)
		return
	}
	if j.attempts >= r.opts.MaxAttempts {
		r.log.Warn("could not post a commit status: giving up", attrs...)
		return
	}
	delay := r.backoff(j.attempts, err)
	j.due = time.Now().Add(delay)
	r.mu.Lock()
	superseded := false
	for _, q := range r.queue {
		if q.key == j.key { // a newer status was posted meanwhile
			superseded = true
			break
		}
	}
	if !superseded {
		r.enqueueLocked(j)
	}
	r.mu.Unlock()
	if !superseded {
		r.log.Info("could not post a commit status: retrying", append(attrs, "retry_in", delay)...)
	}
}

// backoff returns the wait before the next attempt after attempts failed:
// the wait a rate limit asked for, else exponential.
func (r *Reporter) backoff(attempts int, err error) time.Duration {
	var he *HTTPError
	if errors.As(err, &he) && he.RetryAfter > 0 {
		return min(he.RetryAfter, r.opts.MaxRetryAfter)
	}
	d := r.opts.InitialBackoff
	for i := 1; i < attempts && d < r.opts.MaxBackoff; i++ {
		d *= 2
	}
	return min(d, r.opts.MaxBackoff)
}

// attrs are the log attributes of a job (never the client's token).
func (j *job) attrs() []any {
	return []any{"repo", j.repo.String(), "commit", shortSHA(j.sha), "context", j.st.Context, "state", string(j.st.State)}
}

// jobKey identifies the status a newer one replaces.
func jobKey(repo Repo, sha, context string) string {
	return string(repo.Kind) + "\x00" + repo.Path + "\x00" + repo.ProjectID + "\x00" + sha + "\x00" + context
}
