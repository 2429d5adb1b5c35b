package forge

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// syncBuffer is a log buffer safe for the Reporter's goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// waitFor polls cond for up to 5 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

// runReporter starts a Reporter against f, and stops it at the end of the
// test.
func runReporter(t *testing.T, f *fakeForge, opts ReporterOptions) (*Reporter, *syncBuffer, func()) {
	t.Helper()
	logs := &syncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	r := NewReporter(&Client{API: f.URL, Token: testToken}, log, opts)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	start := func() {
		go func() { r.Run(ctx); close(done) }()
	}
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Error("Run did not return after its context ended")
		}
		if strings.Contains(logs.String(), testToken) {
			t.Errorf("the token is in the reporter's log:\n%s", logs)
		}
	})
	return r, logs, start
}

// sequence answers with codes in turn, then with the last one.
func sequence(codes ...int) http.HandlerFunc {
	var n atomic.Int64
	return func(w http.ResponseWriter, r *http.Request) {
		i := int(n.Add(1)) - 1
		code := codes[min(i, len(codes)-1)]
		w.WriteHeader(code)
		if code >= 300 {
			fmt.Fprintf(w, `{"message":"code %d; auth %s"}`, code, r.Header.Get("Authorization"))
		}
	}
}

var repo = Repo{Kind: GitHub, Path: "octo/app"}

func TestReporterRetries(t *testing.T) {
	tests := []struct {
		name      string
		codes     []int
		attempts  int
		wantCalls int
		wantLog   string
	}{
		{"500 twice then 201 succeeds", []int{500, 500, 201}, 6, 3, "posted a commit status"},
		{"422 is not retried", []int{422, 201}, 6, 1, "not retrying"},
		{"404 is not retried", []int{404, 201}, 6, 1, "not retrying"},
		{"408 is retried", []int{408, 201}, 6, 2, "posted a commit status"},
		{"gives up after MaxAttempts", []int{502}, 3, 3, "giving up"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeForge(t, sequence(tt.codes...))
			r, logs, start := runReporter(t, f, ReporterOptions{InitialBackoff: time.Millisecond, MaxBackoff: 4 * time.Millisecond, MaxAttempts: tt.attempts})
			start()
			r.Post(repo, "abc", Status{State: Success, Context: "driftless", Description: "deployed"})
			waitFor(t, tt.wantLog, func() bool { return strings.Contains(logs.String(), tt.wantLog) })
			time.Sleep(50 * time.Millisecond) // no further call comes
			if got := len(f.requests()); got != tt.wantCalls {
				t.Errorf("the forge got %d calls, want %d; log:\n%s", got, tt.wantCalls, logs)
			}
			if r.Pending() != 0 {
				t.Errorf("%d statuses still pending", r.Pending())
			}
		})
	}
}

func TestReporterRetryAfter(t *testing.T) {
	var mu sync.Mutex
	var times []time.Time
	f := newFakeForge(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		times = append(times, time.Now())
		first := len(times) == 1
		mu.Unlock()
		if first {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		w.WriteHeader(http.StatusCreated)
	})
	// The backoff alone would retry after 1 ms: the wait must come from
	// Retry-After.
	r, logs, start := runReporter(t, f, ReporterOptions{InitialBackoff: time.Millisecond})
	start()
	r.Post(repo, "abc", Status{State: Pending, Context: "driftless"})
	waitFor(t, "the retry", func() bool { return strings.Contains(logs.String(), "posted a commit status") })
	mu.Lock()
	defer mu.Unlock()
	if len(times) != 2 {
		t.Fatalf("%d calls, want 2", len(times))
	}
	if d := times[1].Sub(times[0]); d < 900*time.Millisecond {
		t.Errorf("retried after %v, want about Retry-After's 1 s", d)
	}
}

func TestReporterReplacesQueued(t *testing.T) {
	f := newFakeForge(t, created)
	r, _, start := runReporter(t, f, ReporterOptions{})
	other := Repo{Kind: GitLab, Path: "group/app"}
	r.Post(repo, "abc", Status{State: Pending, Context: "driftless/preview", Description: "staging"})
	r.Post(repo, "abc", Status{State: Pending, Context: "driftless/other", Description: "other context"})
	r.Post(repo, "def", Status{State: Pending, Context: "driftless/preview", Description: "other commit"})
	r.Post(other, "abc", Status{State: Pending, Context: "driftless/preview", Description: "other repo"})
	r.Post(repo, "abc", Status{State: Success, Context: "driftless/preview", Description: "serving"})
	if got := r.Pending(); got != 4 {
		t.Errorf("Pending = %d, want 4 (the newer status replaced the older)", got)
	}
	start()
	waitFor(t, "4 calls", func() bool { return len(f.requests()) >= 4 })
	time.Sleep(50 * time.Millisecond)
	var got []string
	for _, req := range f.requests() {
		got = append(got, fmt.Sprint(req.Body["description"]))
	}
	want := []string{"serving", "other context", "other commit", "other repo"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("posted %q, want %q (in the order first queued, the replaced one never)", got, want)
	}
}

func TestReporterQueueBound(t *testing.T) {
	f := newFakeForge(t, created)
	r, logs, start := runReporter(t, f, ReporterOptions{QueueSize: 2})
	for i := range 3 {
		r.Post(repo, fmt.Sprint("sha", i), Status{State: Success, Context: "c", Description: fmt.Sprint(i)})
	}
	if got := r.Pending(); got != 2 {
		t.Errorf("Pending = %d, want 2", got)
	}
	if !strings.Contains(logs.String(), "queue full") || !strings.Contains(logs.String(), "commit=sha0") {
		t.Errorf("no warning naming the dropped status:\n%s", logs)
	}
	start()
	waitFor(t, "2 calls", func() bool { return len(f.requests()) >= 2 })
	time.Sleep(50 * time.Millisecond)
	var got []string
	for _, req := range f.requests() {
		got = append(got, req.URI)
	}
	if want := []string{"/repos/octo/app/statuses/sha1", "/repos/octo/app/statuses/sha2"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("posted %v, want %v", got, want)
	}
}

func TestReporterPostDoesNotBlock(t *testing.T) {
	release := make(chan struct{})
	f := newFakeForge(t, func(w http.ResponseWriter, _ *http.Request) {
		<-release
		w.WriteHeader(http.StatusCreated)
	})
	defer close(release)
	r, _, start := runReporter(t, f, ReporterOptions{})
	start()
	begin := time.Now()
	for i := range 100 {
		r.Post(repo, fmt.Sprint("sha", i), Status{State: Success, Context: "c"})
	}
	if d := time.Since(begin); d > time.Second {
		t.Errorf("100 Posts took %v while the forge hangs", d)
	}
}

func TestReporterBackoff(t *testing.T) {
	r := NewReporter(&Client{}, nil, ReporterOptions{})
	tests := []struct {
		attempts int
		err      error
		want     time.Duration
	}{
		{1, fmt.Errorf("x"), time.Second},
		{2, fmt.Errorf("x"), 2 * time.Second},
		{5, fmt.Errorf("x"), 16 * time.Second},
		{7, fmt.Errorf("x"), time.Minute},
		{60, fmt.Errorf("x"), time.Minute},
		{1, &HTTPError{StatusCode: 429, RetryAfter: 30 * time.Second}, 30 * time.Second},
		{1, &HTTPError{StatusCode: 403, RetryAfter: time.Hour}, DefaultMaxRetryAfter},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.attempts, tt.err), func(t *testing.T) {
			if got := r.backoff(tt.attempts, tt.err); got != tt.want {
				t.Errorf("backoff(%d, %v) = %v, want %v", tt.attempts, tt.err, got, tt.want)
			}
		})
	}
}
