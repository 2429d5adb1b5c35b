package executor

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/driftless/driftless/bus"
	"github.com/driftless/driftless/model"
	"github.com/driftless/driftless/reconciler/plan"
)

// call is one request a fakeRequester received.
type call struct {
	subject string
	req     any
	timeout time.Duration
	ctxErr  error // ctx.Err() when the request was made
}

// fakeRequester records requests and answers them with reply (or err), or
// with answer when set. It tracks the most requests in flight at once.
type fakeRequester struct {
	reply  bus.Reply
	err    error
	answer func(ctx context.Context, subject string, req any) (bus.Reply, error)
	hold   time.Duration // how long each request stays in flight

	mu          sync.Mutex
	calls       []call
	inFlight    atomic.Int32
	maxInFlight atomic.Int32
}

func (f *fakeRequester) Request(ctx context.Context, subject string, req, resp any, timeout time.Duration) error {
	n := f.inFlight.Add(1)
	defer f.inFlight.Add(-1)
	for {
		m := f.maxInFlight.Load()
		if n <= m || f.maxInFlight.CompareAndSwap(m, n) {
			break
		}
	}
	f.mu.Lock()
	f.calls = append(f.calls, call{subject: subject, req: req, timeout: timeout, ctxErr: ctx.Err()})
	f.mu.Unlock()
	if f.hold > 0 {
		time.Sleep(f.hold)
	}
	reply, err := f.reply, f.err
	if f.answer != nil {
		reply, err = f.answer(ctx, subject, req)
	}
	if err != nil {
		return err
	}
	r, ok := resp.(*bus.Reply)
	if !ok {
		return fmt.Errorf("fake: reply type %T, want *bus.Reply", resp)
	}
	*r = reply
	return nil
}

func (f *fakeRequester) taken() []call {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]call(nil), f.calls...)
}

var guidV4 = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func startAction(cell, guid string, index int) plan.Action {
	return plan.Action{
		Kind: plan.Start, Cell: cell,
		Instance: model.InstanceRef{GUID: guid, Space: "dev", App: "hello", Index: index, ReleaseID: "r1"},
		Run:      &model.RunSpec{Droplet: "127.0.0.1:7070/droplets/dev/hello@sha256:ab", MemoryMB: 256, DiskMB: 512},
		Cause:    plan.CausePlace, Reason: "index has no instance",
	}
}

func stopAction(cell, guid string, index int, reason string) plan.Action {
	return plan.Action{
		Kind: plan.Stop, Cell: cell,
		Instance: model.InstanceRef{GUID: guid, Space: "dev", App: "hello", Index: index, ReleaseID: "r1"},
		Cause:    plan.CauseCleanup, Reason: reason,
	}
}

func TestApplyOneAction(t *testing.T) {
	ok := bus.Reply{OK: true, BootID: "boot-1", Generation: 7}
	tests := []struct {
		name   string
		action plan.Action
		reply  bus.Reply
		reqErr error
		// wantSubject is the subject of the one request; "" means no request.
		wantSubject string
		// check looks at the request sent and the result.
		check func(t *testing.T, sent any, r Result)
		// wantErr lists substrings of the result's error; nil means no error.
		wantErr []string
		// wantIs is an error the result's error must wrap.
		wantIs error
	}{
		{
			name: "start with no GUID gets a new v4 GUID", action: startAction("cell-a", "", 3), reply: ok,
			wantSubject: bus.CellCommand("cell-a", bus.VerbStart),
			check: func(t *testing.T, sent any, r Result) {
				req, isStart := sent.(bus.StartInstance)
				if !isStart {
					t.Fatalf("sent %T, want bus.StartInstance", sent)
				}
				if !guidV4.MatchString(req.Instance.GUID) {
					t.Errorf("GUID %q is not an RFC 4122 v4 id", req.Instance.GUID)
				}
				if r.Action.Instance.GUID != req.Instance.GUID {
					t.Errorf("result GUID %q, sent %q", r.Action.Instance.GUID, req.Instance.GUID)
				}
				want := startAction("cell-a", req.Instance.GUID, 3)
				if req.Instance != want.Instance {
					t.Errorf("sent instance %+v, want %+v", req.Instance, want.Instance)
				}
				if req.Run.Droplet != want.Run.Droplet || req.Run.MemoryMB != 256 || req.Run.DiskMB != 512 {
					t.Errorf("sent run %+v, want %+v", req.Run, *want.Run)
				}
				if r.Reply != ok {
					t.Errorf("reply %+v, want %+v", r.Reply, ok)
				}
			},
		},
		{
			name: "start keeps an existing GUID", action: startAction("cell-b", "given-guid", 0), reply: ok,
			wantSubject: bus.CellCommand("cell-b", bus.VerbStart),
			check: func(t *testing.T, sent any, r Result) {
				if g := sent.(bus.StartInstance).Instance.GUID; g != "given-guid" {
					t.Errorf("sent GUID %q, want given-guid", g)
				}
				if g := r.Action.Instance.GUID; g != "given-guid" {
					t.Errorf("result GUID %q, want given-guid", g)
				}
			},
		},
		{
			name: "stop sends the GUID and reason", action: stopAction("cell-c", "g-1", 2, "duplicate at index 2"), reply: ok,
			wantSubject: bus.CellCommand("cell-c", bus.VerbStop),
			check: func(t *testing.T, sent any, r Result) {
				want := bus.StopInstance{GUID: "g-1", Reason: "duplicate at index 2"}
				if got, isStop := sent.(bus.StopInstance); !isStop || got != want {
					t.Errorf("sent %#v, want %#v", sent, want)
				}
				if r.Reply != ok {
					t.Errorf("reply %+v, want %+v", r.Reply, ok)
				}
			},
		},
		{
			name: "refused start names the cell and its error", action: startAction("cell-d", "g-2", 1),
			reply:       bus.Reply{OK: false, Error: "out of memory"},
			wantSubject: bus.CellCommand("cell-d", bus.VerbStart),
			wantErr:     []string{"start", "hello/1", "cell-d", "refused", "out of memory"},
			check: func(t *testing.T, _ any, r Result) {
				if r.Reply.OK || r.Reply.Error != "out of memory" {
					t.Errorf("reply %+v, want the refusal", r.Reply)
				}
			},
		},
		{
			name: "refused stop names the cell and its error", action: stopAction("cell-d", "g-3", 4, "surplus"),
			reply:       bus.Reply{OK: false, Error: "no such instance"},
			wantSubject: bus.CellCommand("cell-d", bus.VerbStop),
			wantErr:     []string{"stop", "hello/4", "cell-d", "no such instance"},
		},
		{
			name: "request error is wrapped with action, app/index and cell", action: startAction("cell-e", "g-4", 5),
			reqErr:      errSentinel,
			wantSubject: bus.CellCommand("cell-e", bus.VerbStart),
			wantErr:     []string{"start hello/5 on cell cell-e", errSentinel.Error()},
			wantIs:      errSentinel,
		},
		{
			name: "stop request error is wrapped", action: stopAction("cell-f", "g-5", 6, "surplus"),
			reqErr:      errSentinel,
			wantSubject: bus.CellCommand("cell-f", bus.VerbStop),
			wantErr:     []string{"stop hello/6 on cell cell-f"},
			wantIs:      errSentinel,
		},
		{
			name: "start without a run spec sends nothing",
			action: func() plan.Action {
				a := startAction("cell-g", "g-6", 0)
				a.Run = nil
				return a
			}(),
			reply:   ok,
			wantErr: []string{"start hello/0", "no run spec"},
		},
		{
			name:    "unknown action kind sends nothing",
			action:  plan.Action{Kind: "restart", Cell: "cell-h", Instance: model.InstanceRef{GUID: "g-7", App: "hello"}},
			reply:   ok,
			wantErr: []string{`unknown action "restart"`},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeRequester{reply: tc.reply, err: tc.reqErr}
			e := NewWith(f)
			e.Timeout = 1234 * time.Millisecond
			results := e.Apply(context.Background(), []plan.Action{tc.action})
			if len(results) != 1 {
				t.Fatalf("got %d results, want 1", len(results))
			}
			r := results[0]
			calls := f.taken()
			var sent any
			switch {
			case tc.wantSubject == "" && len(calls) != 0:
				t.Fatalf("sent %d requests (%s), want none", len(calls), calls[0].subject)
			case tc.wantSubject != "" && len(calls) != 1:
				t.Fatalf("sent %d requests, want 1", len(calls))
			case tc.wantSubject != "":
				if calls[0].subject != tc.wantSubject {
					t.Errorf("subject %q, want %q", calls[0].subject, tc.wantSubject)
				}
				if calls[0].timeout != e.Timeout {
					t.Errorf("timeout %v, want %v", calls[0].timeout, e.Timeout)
				}
				sent = calls[0].req
			}
			if tc.wantErr == nil && r.Err != nil {
				t.Fatalf("unexpected error: %v", r.Err)
			}
			if tc.wantErr != nil {
				if r.Err == nil {
					t.Fatalf("no error, want one containing %q", tc.wantErr)
				}
				for _, s := range tc.wantErr {
					if !strings.Contains(r.Err.Error(), s) {
						t.Errorf("error %q does not contain %q", r.Err, s)
					}
				}
			}
			if tc.wantIs != nil && !errors.Is(r.Err, tc.wantIs) {
				t.Errorf("error %v does not wrap %v", r.Err, tc.wantIs)
			}
			if tc.check != nil {
				tc.check(t, sent, r)
			}
		})
	}
}

var errSentinel = errors.New("nats: no responders available for request")

func TestApplyManyKeepsOrder(t *testing.T) {
	const n = 40
	actions := make([]plan.Action, n)
	for i := range actions {
		cell := fmt.Sprintf("cell-%02d", i)
		if i%2 == 0 {
			actions[i] = startAction(cell, fmt.Sprintf("g-%02d", i), i)
		} else {
			actions[i] = stopAction(cell, fmt.Sprintf("g-%02d", i), i, "surplus")
		}
	}
	// Each cell answers with its own number as generation, after a delay
	// that makes later actions finish first.
	f := &fakeRequester{answer: func(_ context.Context, subject string, _ any) (bus.Reply, error) {
		var i int
		if _, err := fmt.Sscanf(subject[strings.Index(subject, "cell-"):], "cell-%02d", &i); err != nil {
			return bus.Reply{}, err
		}
		time.Sleep(time.Duration(n-i) * 100 * time.Microsecond)
		if i%5 == 0 {
			return bus.Reply{}, fmt.Errorf("failure %d", i)
		}
		return bus.Reply{OK: true, Generation: uint64(i)}, nil
	}}
	e := NewWith(f)
	e.Parallel = 8
	results := e.Apply(context.Background(), actions)
	if len(results) != n {
		t.Fatalf("got %d results, want %d", len(results), n)
	}
	if c := len(f.taken()); c != n {
		t.Errorf("sent %d requests, want %d", c, n)
	}
	for i, r := range results {
		if r.Action.Cell != actions[i].Cell || r.Action.Kind != actions[i].Kind || r.Action.Instance != actions[i].Instance {
			t.Errorf("result %d is for %s %s, want %s %s", i, r.Action.Kind, r.Action.Cell, actions[i].Kind, actions[i].Cell)
		}
		if i%5 == 0 {
			if r.Err == nil || !strings.Contains(r.Err.Error(), fmt.Sprintf("failure %d", i)) {
				t.Errorf("result %d: error %v, want failure %d", i, r.Err, i)
			}
			continue
		}
		if r.Err != nil || r.Reply.Generation != uint64(i) {
			t.Errorf("result %d: reply %+v err %v, want generation %d", i, r.Reply, r.Err, i)
		}
	}
}

func TestApplyBoundsConcurrency(t *testing.T) {
	tests := []struct {
		name     string
		parallel int
		wantMax  int32
	}{
		{name: "parallel 4", parallel: 4, wantMax: 4},
		{name: "parallel 1", parallel: 1, wantMax: 1},
		{name: "zero means one at a time", parallel: 0, wantMax: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			actions := make([]plan.Action, 50)
			for i := range actions {
				actions[i] = startAction("cell-a", "", i)
			}
			f := &fakeRequester{reply: bus.Reply{OK: true}, hold: 2 * time.Millisecond}
			e := NewWith(f)
			e.Parallel = tc.parallel
			results := e.Apply(context.Background(), actions)
			for i, r := range results {
				if r.Err != nil {
					t.Fatalf("result %d: %v", i, r.Err)
				}
			}
			if got := f.maxInFlight.Load(); got > tc.wantMax {
				t.Errorf("%d requests in flight at once, want at most %d", got, tc.wantMax)
			}
			// With 50 requests held 2 ms each the bound is reached: a
			// limit far below it would show here.
			if got := f.maxInFlight.Load(); got < tc.wantMax {
				t.Errorf("at most %d requests in flight, want %d (Parallel not used)", got, tc.wantMax)
			}
			if c := len(f.taken()); c != len(actions) {
				t.Errorf("sent %d requests, want %d", c, len(actions))
			}
		})
	}
}

func TestApplyGivesEachStartItsOwnGUID(t *testing.T) {
	actions := make([]plan.Action, 20)
	for i := range actions {
		actions[i] = startAction("cell-a", "", i)
	}
	results := NewWith(&fakeRequester{reply: bus.Reply{OK: true}}).Apply(context.Background(), actions)
	seen := make(map[string]int)
	for i, r := range results {
		g := r.Action.Instance.GUID
		if !guidV4.MatchString(g) {
			t.Errorf("result %d: GUID %q is not an RFC 4122 v4 id", i, g)
		}
		if j, dup := seen[g]; dup {
			t.Errorf("results %d and %d share GUID %s", j, i, g)
		}
		seen[g] = i
	}
}

func TestApplyPassesContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	f := &fakeRequester{answer: func(ctx context.Context, _ string, _ any) (bus.Reply, error) {
		if err := ctx.Err(); err != nil {
			return bus.Reply{}, err
		}
		return bus.Reply{OK: true}, nil
	}}
	actions := []plan.Action{startAction("cell-a", "", 0), stopAction("cell-b", "g-1", 1, "surplus")}
	results := NewWith(f).Apply(ctx, actions)
	calls := f.taken()
	if len(calls) != len(actions) {
		t.Fatalf("sent %d requests, want %d", len(calls), len(actions))
	}
	for i, c := range calls {
		if !errors.Is(c.ctxErr, context.Canceled) {
			t.Errorf("request %d saw ctx error %v, want context.Canceled", i, c.ctxErr)
		}
	}
	for i, r := range results {
		if !errors.Is(r.Err, context.Canceled) {
			t.Errorf("result %d: error %v, want one wrapping context.Canceled", i, r.Err)
		}
	}
}

func TestNewKeepsDefaults(t *testing.T) {
	for name, e := range map[string]*Executor{"New": New(nil), "NewWith": NewWith(&fakeRequester{})} {
		if e.Timeout != 5*time.Second || e.Parallel != 16 {
			t.Errorf("%s: Timeout %v Parallel %d, want 5s and 16", name, e.Timeout, e.Parallel)
		}
		if e.req == nil {
			t.Errorf("%s: no requester", name)
		}
	}
}

func TestNewGUID(t *testing.T) {
	seen := make(map[string]bool)
	for range 1000 {
		g := NewGUID()
		if !guidV4.MatchString(g) {
			t.Fatalf("%q is not an RFC 4122 v4 id", g)
		}
		if seen[g] {
			t.Fatalf("%q given twice", g)
		}
		seen[g] = true
	}
}
