package router_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	consul "github.com/hashicorp/consul/api"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/driftless/driftless/bus"
	"github.com/driftless/driftless/catalog"
	"github.com/driftless/driftless/internal/testenv"
	"github.com/driftless/driftless/model"
	"github.com/driftless/driftless/router"
)

// sleepEnv is a router following sleeping apps, with NATS unless the
// config leaves it nil.
type sleepEnv struct {
	rtr     *router.Router
	consul  *consul.Client
	kv      *catalog.KV
	nc      *nats.Conn // the router's connection, nil without NATS
	url     string
	metrics *prometheus.Registry
}

// natsConns connects a router and, standing in for the controller, the
// test to a fresh NATS server, each with its role's permissions.
func natsConns(t *testing.T, n *testenv.NATS) (routerNC, controllerNC *nats.Conn) {
	t.Helper()
	return n.Connect(t, bus.Identity{Role: bus.RoleRouter}), n.Connect(t, bus.Identity{Role: bus.RoleController})
}

// startSleeping starts Consul with the sleeping apps asleep in its KV,
// then a router with cfg, and waits until it is ready.
func startSleeping(t *testing.T, cfg router.Config, asleep ...model.Sleeping) *sleepEnv {
	t.Helper()
	c := testenv.StartConsul(t)
	kv := catalog.NewKV(c.Client)
	for _, s := range asleep {
		if err := kv.Put(context.Background(), catalog.SleepingKey(s.Space, s.App), s); err != nil {
			t.Fatal(err)
		}
	}
	reg := prometheus.NewRegistry()
	cfg.Consul, cfg.Listen, cfg.Metrics = c.Client, "127.0.0.1:0", reg
	rtr, err := router.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- rtr.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	select {
	case <-rtr.Ready():
	case err := <-done:
		t.Fatalf("router stopped: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("router not ready")
	}
	return &sleepEnv{rtr: rtr, consul: c.Client, kv: kv, nc: cfg.NATS, url: "http://" + rtr.Addr(), metrics: reg}
}

// answer is a response the router gave.
type answer struct {
	status     int
	body       string
	retryAfter string
	took       time.Duration
	err        error
}

// do sends GET host+path to the router.
func (e *sleepEnv) do(host, path string) answer {
	req, _ := http.NewRequest(http.MethodGet, e.url+path, nil)
	req.Host = host
	start := time.Now()
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		return answer{err: err}
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{status: resp.StatusCode, body: string(b), retryAfter: resp.Header.Get("Retry-After"), took: time.Since(start)}
}

// held is how many requests the router held so far.
func (e *sleepEnv) held(t *testing.T) int {
	t.Helper()
	mfs, err := e.metrics.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "driftless_router_requests_held_total" {
			return int(mf.GetMetric()[0].GetCounter().GetValue())
		}
	}
	return 0
}

// wakes is how many wakes ended with outcome.
func (e *sleepEnv) wakes(t *testing.T, outcome string) int {
	t.Helper()
	mfs, err := e.metrics.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "driftless_router_wakes_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			if m.GetLabel()[0].GetValue() == outcome {
				return int(m.GetCounter().GetValue())
			}
		}
	}
	return 0
}

// subscribe receives the messages on subject in a channel.
func subscribe(t *testing.T, nc *nats.Conn, subject string) chan *nats.Msg {
	t.Helper()
	ch := make(chan *nats.Msg, 64)
	sub, err := nc.ChanSubscribe(subject, ch)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return ch
}

// noMore checks that no message is left on ch once the router's and the
// subscriber's connections flushed (what the router sent has arrived).
func noMore(t *testing.T, routerNC, nc *nats.Conn, ch chan *nats.Msg) {
	t.Helper()
	if err := routerNC.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-ch:
		t.Errorf("unexpected message on %s: %s", m.Subject, m.Data)
	default:
	}
}

// TestWake covers requests to sleeping apps: held while the controller
// (here the test, on bus.SubjectWake) wakes the app, then served by its
// new instance; 503 with Retry-After when it does not serve in time; 503
// when the controller refuses; 404, as before, where nothing sleeps.
func TestWake(t *testing.T) {
	n := testenv.StartNATS(t)
	routerNC, nc := natsConns(t, n)
	sleeping := func(app string, timeout time.Duration, routes ...string) model.Sleeping {
		return model.Sleeping{Space: "dev", App: app, Routes: routes, WakeTimeout: timeout, Since: time.Now().UTC()}
	}
	asleep := []model.Sleeping{
		sleeping("pr-1", 20*time.Second, "pr-1.apps.test"),
		sleeping("pr-2", 20*time.Second, "pr-2.apps.test/api"),
		sleeping("pr-3", 20*time.Second, "pr-3.apps.test"),
		sleeping("pr-4", time.Second, "pr-4.apps.test"),
		sleeping("pr-5", time.Second, "*.pr-5.apps.test"),
	}
	e := startSleeping(t, router.Config{NATS: routerNC, Name: "router-test", ActivityInterval: 100 * time.Millisecond}, asleep...)
	wakeCh := subscribe(t, nc, bus.SubjectWake)
	activityCh := subscribe(t, nc, bus.SubjectActivity)

	cases := []struct {
		name       string
		app        string // "" when nothing sleeps at the host
		host, path string
		requests   int
		reply      *bus.Reply // nil: the controller does not answer
		serve      bool       // register an instance and delete the key after replying
		want       int
		wantBody   string
		retryAfter string
		outcome    string
	}{
		{name: "woken", app: "pr-1", host: "pr-1.apps.test", path: "/", requests: 5, reply: &bus.Reply{OK: true}, serve: true,
			want: 200, wantBody: "pr-1 host=pr-1.apps.test", outcome: "woken"},
		{name: "woken, path route", app: "pr-2", host: "PR-2.apps.test:80", path: "/api/x", requests: 1, reply: &bus.Reply{OK: true}, serve: true,
			want: 200, wantBody: "path=/api/x", outcome: "woken"},
		{name: "refused", app: "pr-3", host: "pr-3.apps.test", path: "/", requests: 2, reply: &bus.Reply{Error: "no such app"},
			want: 503, wantBody: "pr-3 is asleep and could not be woken", outcome: "refused"},
		{name: "no instance in time", app: "pr-4", host: "pr-4.apps.test", path: "/", requests: 2, reply: &bus.Reply{OK: true},
			want: 503, wantBody: "pr-4 is waking up", retryAfter: "1", outcome: "timeout"},
		{name: "no answer in time, wildcard route", app: "pr-5", host: "a.pr-5.apps.test", path: "/", requests: 1,
			want: 503, wantBody: "pr-5 is waking up", retryAfter: "1", outcome: "timeout"},
		{name: "not sleeping", host: "nothing.apps.test", path: "/x", requests: 1,
			want: 404, wantBody: "no app is routed at nothing.apps.test/x"},
		{name: "not sleeping, other path", host: "pr-2.apps.test", path: "/apix", requests: 1,
			want: 404, wantBody: "no app is routed at pr-2.apps.test/apix"},
	}
	activity := map[string]int64{}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			heldBefore, wakesBefore := e.held(t), e.wakes(t, tc.outcome)
			answers := make(chan answer, tc.requests)
			for range tc.requests {
				go func() { answers <- e.do(tc.host, tc.path) }()
			}
			if tc.app != "" {
				var m *nats.Msg
				select {
				case m = <-wakeCh:
				case <-time.After(10 * time.Second):
					t.Fatal("no wake request")
				}
				var req bus.WakeRequest
				if err := bus.Decode(m, &req); err != nil {
					t.Fatal(err)
				}
				if want := (bus.WakeRequest{Space: "dev", App: tc.app, Router: "router-test"}); req != want {
					t.Fatalf("wake request %+v, want %+v", req, want)
				}
				// Every request is held before the wake is answered: they
				// share it.
				testenv.Eventually(t, 10*time.Second, 10*time.Millisecond, "requests held", func() error {
					if got := e.held(t) - heldBefore; got != tc.requests {
						return fmt.Errorf("%d held, want %d", got, tc.requests)
					}
					return nil
				})
				if tc.reply != nil {
					if err := bus.Respond(m, *tc.reply); err != nil {
						t.Fatal(err)
					}
				}
				if tc.serve {
					route := asleep[0].Routes[0]
					for _, s := range asleep {
						if s.App == tc.app {
							route = s.Routes[0]
						}
					}
					register(t, e.consul, tc.app+"-0", tc.app, 0, backend(t, tc.app).Listener.Addr().String(), route)
					if err := e.kv.Delete(context.Background(), catalog.SleepingKey("dev", tc.app)); err != nil {
						t.Fatal(err)
					}
				}
			}
			for range tc.requests {
				a := <-answers
				if a.err != nil {
					t.Fatal(a.err)
				}
				if a.status != tc.want || !strings.Contains(a.body, tc.wantBody) || a.retryAfter != tc.retryAfter {
					t.Errorf("got %d %q Retry-After %q, want %d %q Retry-After %q", a.status, a.body, a.retryAfter, tc.want, tc.wantBody, tc.retryAfter)
				}
			}
			noMore(t, routerNC, nc, wakeCh) // one wake request for all of them
			if tc.outcome != "" {
				testenv.Eventually(t, 5*time.Second, 10*time.Millisecond, "wake counted", func() error {
					if got := e.wakes(t, tc.outcome) - wakesBefore; got != 1 {
						return fmt.Errorf("%d wakes %s, want 1", got, tc.outcome)
					}
					return nil
				})
			}
			if tc.want == 200 {
				// The held requests count as the app's activity.
				testenv.Eventually(t, 5*time.Second, 10*time.Millisecond, "activity", func() error {
					for {
						select {
						case m := <-activityCh:
							var msg bus.RouterActivity
							if err := bus.Decode(m, &msg); err != nil {
								return err
							}
							if msg.Router != "router-test" {
								return fmt.Errorf("activity from %q", msg.Router)
							}
							for _, a := range msg.Apps {
								activity[a.Space+"/"+a.App] += a.Requests
							}
							continue
						default:
						}
						if got := activity["dev/"+tc.app]; got != int64(tc.requests) {
							return fmt.Errorf("activity of %s: %d requests, want %d", tc.app, got, tc.requests)
						}
						return nil
					}
				})
			}
		})
	}
}

// TestWakeMaxHeld: past MaxHeld requests held for an app, the next is
// answered 503 at once; the held one is served once the app wakes.
func TestWakeMaxHeld(t *testing.T) {
	n := testenv.StartNATS(t)
	routerNC, nc := natsConns(t, n)
	app := model.Sleeping{Space: "dev", App: "pr-9", Routes: []string{"pr-9.apps.test"}, WakeTimeout: 20 * time.Second}
	e := startSleeping(t, router.Config{NATS: routerNC, MaxHeld: 1}, app)
	wakeCh := subscribe(t, nc, bus.SubjectWake)

	first := make(chan answer, 1)
	go func() { first <- e.do("pr-9.apps.test", "/") }()
	var m *nats.Msg
	select {
	case m = <-wakeCh:
	case <-time.After(10 * time.Second):
		t.Fatal("no wake request")
	}
	testenv.Eventually(t, 10*time.Second, 10*time.Millisecond, "first request held", func() error {
		if e.held(t) != 1 {
			return fmt.Errorf("%d held", e.held(t))
		}
		return nil
	})
	over := e.do("pr-9.apps.test", "/")
	if over.err != nil || over.status != 503 || !strings.Contains(over.body, "too many requests") || over.took > 5*time.Second {
		t.Errorf("over MaxHeld: %+v, want an immediate 503", over)
	}
	if err := bus.Respond(m, bus.Reply{OK: true}); err != nil {
		t.Fatal(err)
	}
	register(t, e.consul, "pr-9-0", "pr-9", 0, backend(t, "pr-9").Listener.Addr().String(), "pr-9.apps.test")
	if a := <-first; a.err != nil || a.status != 200 || !strings.HasPrefix(a.body, "pr-9 ") {
		t.Errorf("held request: %+v, want 200 from pr-9", a)
	}
}

// TestWakeWithoutNATS: a router without NATS cannot wake an app, and says
// so at once.
func TestWakeWithoutNATS(t *testing.T) {
	app := model.Sleeping{Space: "dev", App: "pr-7", Routes: []string{"pr-7.apps.test"}}
	e := startSleeping(t, router.Config{}, app)
	for _, tc := range []struct {
		host string
		want int
		body string
	}{
		{"pr-7.apps.test", 503, "pr-7 is asleep and this router cannot wake it"},
		{"pr-8.apps.test", 404, "no app is routed at pr-8.apps.test/"},
	} {
		a := e.do(tc.host, "/")
		if a.err != nil || a.status != tc.want || !strings.Contains(a.body, tc.body) || a.took > 5*time.Second {
			t.Errorf("%s: %+v, want %d %q at once", tc.host, a, tc.want, tc.body)
		}
	}
}

// TestRouterActivity: the router publishes the requests each app got
// every ActivityInterval, and nothing while no app gets any.
func TestRouterActivity(t *testing.T) {
	n := testenv.StartNATS(t)
	routerNC, nc := natsConns(t, n)
	const interval = 100 * time.Millisecond
	e := startSleeping(t, router.Config{NATS: routerNC, Name: "r1", ActivityInterval: interval})
	register(t, e.consul, "a-0", "a", 0, backend(t, "a").Listener.Addr().String(), "a.apps.test")
	register(t, e.consul, "b-0", "b", 0, backend(t, "b").Listener.Addr().String(), "b.apps.test")
	register(t, e.consul, "b-1", "b", 1, backend(t, "b").Listener.Addr().String(), "b.apps.test", "b2.apps.test")
	testenv.Eventually(t, 10*time.Second, 20*time.Millisecond, "routes in the table", func() error {
		if got, want := e.rtr.Table().Routes(), []string{"a.apps.test", "b.apps.test", "b2.apps.test"}; !slices.Equal(got, want) {
			return fmt.Errorf("routes %v, want %v", got, want)
		}
		return nil
	})
	ch := subscribe(t, nc, bus.SubjectActivity)
	counts := func() map[string]int64 {
		got := map[string]int64{}
		for {
			select {
			case m := <-ch:
				var msg bus.RouterActivity
				if err := bus.Decode(m, &msg); err != nil {
					t.Fatal(err)
				}
				if msg.Router != "r1" || msg.SentAt.IsZero() || len(msg.Apps) == 0 {
					t.Errorf("activity message %+v", msg)
				}
				for _, a := range msg.Apps {
					got[a.Space+"/"+a.App] += a.Requests
				}
			default:
				return got
			}
		}
	}
	time.Sleep(3 * interval) // the absence of a message cannot be awaited
	if got := counts(); len(got) != 0 {
		t.Errorf("router published %v before any request", got)
	}

	want := map[string]int64{"dev/a": 3, "dev/b": 5}
	for _, req := range []struct {
		host string
		n    int
	}{{"a.apps.test", 3}, {"b.apps.test", 3}, {"b2.apps.test", 2}} {
		for range req.n {
			if a := e.do(req.host, "/"); a.err != nil || a.status != 200 {
				t.Fatalf("%s: %+v", req.host, a)
			}
		}
	}
	total := map[string]int64{}
	testenv.Eventually(t, 5*time.Second, 20*time.Millisecond, "activity published", func() error {
		for k, v := range counts() {
			total[k] += v
		}
		if fmt.Sprint(total) != fmt.Sprint(want) {
			return fmt.Errorf("got %v, want %v", total, want)
		}
		return nil
	})
	// Idle: nothing more is published.
	time.Sleep(3 * interval) // the absence of a message cannot be awaited
	if got := counts(); len(got) != 0 {
		t.Errorf("idle router published %v", got)
	}
}
