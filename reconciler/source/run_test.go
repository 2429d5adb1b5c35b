package source

import (
	"context"
	"errors"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

// recorder collects the commits Run delivers.
type recorder struct {
	mu      sync.Mutex
	commits []string
}

func (r *recorder) onChange(_ context.Context, snap *Snapshot) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.commits = append(r.commits, snap.Commit)
}

func (r *recorder) list() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.commits...)
}

func (r *recorder) has(c string) bool {
	for _, got := range r.list() {
		if got == c {
			return true
		}
	}
	return false
}

// startRun runs s.Run until the test ends and returns a function that stops
// it and reports Run's result.
func startRun(t *testing.T, s *Source, onChange func(context.Context, *Snapshot)) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, onChange) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case err = <-done:
			case <-time.After(30 * time.Second):
				err = errors.New("Run did not return 30s after its context ended")
			}
		})
		return err
	}
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Error(err)
		}
	})
	// Wait until Run has registered, so Sync goes through it.
	eventually(t, 10*time.Second, "Run to start", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.runDone != nil
	})
	return stop
}

func TestRunDeliversEachCommitOnce(t *testing.T) {
	work := newWorkTree(t)
	want := []string{commit(t, work, "c0", map[string]string{"x": "0"})}
	s := mustNew(t, Config{URL: work, Poll: 5 * time.Millisecond})
	var rec recorder
	startRun(t, s, rec.onChange)
	eventually(t, 10*time.Second, "the first delivery", func() bool { return rec.has(want[0]) })

	for i := 1; i <= 3; i++ {
		c := commit(t, work, "c", map[string]string{"x": strings.Repeat("x", i)})
		want = append(want, c)
		eventually(t, 10*time.Second, "delivery of "+c, func() bool { return rec.has(c) })
	}
	// Many more polls of an unchanged head deliver nothing.
	polled := s.fetches.Load()
	eventually(t, 10*time.Second, "ten more polls", func() bool { return s.fetches.Load() >= polled+10 })
	if got := rec.list(); !reflect.DeepEqual(got, want) {
		t.Fatalf("delivered %v, want each commit once: %v", got, want)
	}
}

func TestRunCoalescesTriggers(t *testing.T) {
	work := newWorkTree(t)
	c0 := commit(t, work, "c0", nil)
	s := mustNew(t, Config{URL: work}) // no polling
	s.Trigger()                        // before Run: absorbed by the initial fetch
	entered, release := make(chan struct{}), make(chan struct{})
	var rec recorder
	startRun(t, s, func(ctx context.Context, snap *Snapshot) {
		rec.onChange(ctx, snap)
		if snap.Commit == c0 {
			close(entered)
			<-release
		}
	})
	select {
	case <-entered:
	case <-time.After(10 * time.Second):
		t.Fatal("no first delivery")
	}
	for range 50 {
		s.Trigger()
	}
	close(release)
	eventually(t, 10*time.Second, "the coalesced fetch", func() bool { return s.fetches.Load() == 2 })
	time.Sleep(200 * time.Millisecond) // room for wrongly queued extra fetches
	if n := s.fetches.Load(); n != 2 {
		t.Fatalf("%d fetches after 50 triggers during one delivery, want 2", n)
	}

	c1 := commit(t, work, "c1", nil)
	s.Trigger()
	eventually(t, 10*time.Second, "delivery of c1 after a trigger", func() bool { return rec.has(c1) })
	if got := rec.list(); !reflect.DeepEqual(got, []string{c0, c1}) {
		t.Fatalf("delivered %v, want [%s %s]", got, c0, c1)
	}
}

func TestSync(t *testing.T) {
	work := newWorkTree(t)
	c0 := commit(t, work, "c0", nil)
	s := mustNew(t, Config{URL: work})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// Without Run, Sync is Fetch.
	if snap, err := s.Sync(ctx); err != nil || snap.Commit != c0 {
		t.Fatalf("Sync without Run = %v, %v", snap, err)
	}

	var rec recorder
	slow := func(ctx context.Context, snap *Snapshot) {
		time.Sleep(50 * time.Millisecond) // an apply that takes a while
		rec.onChange(ctx, snap)
	}
	stop := startRun(t, s, slow)
	c1 := commit(t, work, "c1", nil)
	snap, err := s.Sync(ctx)
	if err != nil || snap.Commit != c1 {
		t.Fatalf("Sync = %v, %v; want %s", snap, err, c1)
	}
	if !rec.has(c1) {
		t.Fatalf("Sync returned before onChange(%s) did; delivered %v", c1, rec.list())
	}

	// Concurrent Syncs of a new head: all see it, it is delivered once.
	c2 := commit(t, work, "c2", nil)
	var wg sync.WaitGroup
	results := make(chan string, 5)
	for range 5 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			snap, err := s.Sync(ctx)
			if err != nil {
				t.Error(err)
				return
			}
			if !rec.has(snap.Commit) {
				t.Errorf("Sync returned %s before its delivery", snap.Commit)
			}
			results <- snap.Commit
		}()
	}
	wg.Wait()
	close(results)
	for c := range results {
		if c != c2 {
			t.Errorf("Sync returned %s, want %s", c, c2)
		}
	}
	if got := rec.list(); !reflect.DeepEqual(got, []string{c0, c1, c2}) {
		t.Fatalf("delivered %v, want [c0 c1 c2]", got)
	}

	// A canceled Sync returns its context's error.
	canceled, cancelNow := context.WithCancel(ctx)
	cancelNow()
	if _, err := s.Sync(canceled); !errors.Is(err, context.Canceled) {
		t.Errorf("Sync with a canceled context = %v", err)
	}

	// Run refuses to run twice, and returns nil when its context ends.
	if err := s.Run(ctx, slow); !errors.Is(err, ErrRunning) {
		t.Errorf("second Run = %v, want ErrRunning", err)
	}
	if err := stop(); err != nil {
		t.Fatalf("Run = %v, want nil", err)
	}
	if snap, err := s.Sync(ctx); err != nil || snap.Commit != c2 {
		t.Fatalf("Sync after Run = %v, %v", snap, err)
	}
}

func TestRunRecoversFromFetchErrors(t *testing.T) {
	tests := []struct {
		name string
		// make returns the source config and a function that fixes it.
		make func(t *testing.T) (Config, func() string)
	}{
		{"plain path appears", func(t *testing.T) (Config, func() string) {
			path := filepath.Join(t.TempDir(), "later")
			return Config{URL: path}, func() string {
				run(t, t.TempDir(), "init", "-q", "-b", "main", path)
				return commit(t, path, "c0", nil)
			}
		}},
		{"http remote appears", func(t *testing.T) (Config, func() string) {
			root := t.TempDir()
			url := serveGit(t, root, "", "") + "/r.git"
			return Config{URL: url, Dir: filepath.Join(t.TempDir(), "clone")}, func() string {
				work := newWorkTree(t)
				newBare(t, root, "r.git", work)
				c := commit(t, work, "c0", nil)
				run(t, work, "push", "-q", "origin", "main")
				return c
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, fix := tt.make(t)
			log, logs := testLogger()
			cfg.Poll, cfg.Log, cfg.Name = 5*time.Millisecond, log, "broken"
			s := mustNew(t, cfg)
			var rec recorder
			startRun(t, s, rec.onChange)

			eventually(t, 10*time.Second, "a recorded error", func() bool { return s.LastError() != nil })
			polled := s.fetches.Load()
			eventually(t, 10*time.Second, "more failing polls", func() bool { return s.fetches.Load() >= polled+5 })
			if err := s.LastError(); !strings.Contains(err.Error(), `source "broken": fetch`) {
				t.Errorf("LastError = %v", err)
			}
			if n := strings.Count(logs.String(), "level=WARN"); n != 1 {
				t.Errorf("%d warnings for one repeated error, want 1:\n%s", n, logs)
			}
			if len(rec.list()) != 0 || !s.LastFetch().IsZero() {
				t.Fatalf("delivered %v, LastFetch %v while failing", rec.list(), s.LastFetch())
			}

			c := fix()
			eventually(t, 10*time.Second, "recovery", func() bool { return rec.has(c) })
			if s.LastError() != nil || s.LastFetch().IsZero() || !strings.Contains(logs.String(), "recovered") {
				t.Errorf("after recovery: LastError %v, LastFetch %v, logs:\n%s", s.LastError(), s.LastFetch(), logs)
			}
		})
	}
}
