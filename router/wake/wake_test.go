package wake

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	consul "github.com/hashicorp/consul/api"

	"github.com/driftless/driftless/bus"
	"github.com/driftless/driftless/catalog"
	"github.com/driftless/driftless/model"
	"github.com/driftless/driftless/router/route"
)

func TestWakeTimeout(t *testing.T) {
	for _, tc := range []struct {
		in, want time.Duration
	}{
		{0, DefaultWakeTimeout},
		{time.Millisecond, MinWakeTimeout},
		{time.Second, time.Second},
		{3 * time.Minute, 3 * time.Minute},
	} {
		if got := WakeTimeout(model.Sleeping{WakeTimeout: tc.in}); got != tc.want {
			t.Errorf("WakeTimeout(%s) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

func pairs(t *testing.T, apps ...model.Sleeping) consul.KVPairs {
	t.Helper()
	var out consul.KVPairs
	for _, a := range apps {
		b, err := json.Marshal(a)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, &consul.KVPair{Key: catalog.SleepingKey(a.Space, a.App), Value: b})
	}
	return out
}

// TestSleepersLookup matches requests to sleeping routes as the route
// table does, and keeps an app whose key went away as waking for its wake
// timeout.
func TestSleepersLookup(t *testing.T) {
	s := NewSleepers(nil, 0, nil)
	now := time.Unix(1000, 0)
	s.now = func() time.Time { return now }
	root := model.Sleeping{Space: "s", App: "root", Routes: []string{"p.apps.test"}, WakeTimeout: 10 * time.Second}
	api := model.Sleeping{Space: "s", App: "api", Routes: []string{"p.apps.test/api"}}
	wild := model.Sleeping{Space: "s", App: "wild", Routes: []string{"*.w.apps.test", "other.apps.test/x"}}
	kv := pairs(t, root, api, wild)
	kv = append(kv, &consul.KVPair{Key: catalog.SleepingKey("s", "bad"), Value: []byte("{")},
		&consul.KVPair{Key: catalog.SleepingKey("s", "anon"), Value: []byte(`{"routes":["anon.apps.test"]}`)})
	s.update(kv)

	cases := []struct {
		host, path string
		want       string // "" for no sleeping app
		waking     bool
	}{
		{"p.apps.test", "/", "root", false},
		{"P.apps.test:8080", "/apix", "root", false},
		{"p.apps.test", "/api", "api", false},
		{"p.apps.test", "/api/v1", "api", false},
		{"a.w.apps.test", "/", "wild", false},
		{"b.a.w.apps.test", "/", "wild", false},
		{"w.apps.test", "/", "", false},
		{"other.apps.test", "/x/y", "wild", false},
		{"other.apps.test", "/", "", false},
		{"anon.apps.test", "/", "", false},
		{"nothing.test", "/", "", false},
	}
	check := func(step string) {
		t.Helper()
		for _, tc := range cases {
			app, ok := s.Lookup(tc.host, tc.path)
			if ok != (tc.want != "") || app.App != tc.want || app.Waking != tc.waking {
				t.Errorf("%s: Lookup(%s, %s) = %q waking %v, %v; want %q waking %v", step, tc.host, tc.path, app.App, app.Waking, ok, tc.want, tc.waking)
			}
		}
	}
	check("asleep")

	// root's key is deleted (woken): waking for 10 s, then gone.
	s.update(pairs(t, api, wild))
	cases[0].waking, cases[1].waking = true, true
	check("root woken")
	now = now.Add(11 * time.Second)
	cases[0].want, cases[1].want = "", ""
	cases[0].waking, cases[1].waking = false, false
	check("root gone")
	s.update(pairs(t, api, wild))
	if _, ok := s.apps[root.Key()]; ok {
		t.Error("root kept past its wake timeout")
	}
	// Asleep again.
	s.update(pairs(t, root, api, wild))
	cases[0].want, cases[1].want = "root", "root"
	check("root asleep again")
}

// TestActivity sums the requests the tables counted per app, those of a
// replaced table included, and is empty when idle.
func TestActivity(t *testing.T) {
	ep := func(app string, i int) route.Endpoint {
		return route.Endpoint{InstanceRef: model.InstanceRef{Space: "s", App: app, GUID: fmt.Sprint(app, i), Index: i}, Addr: fmt.Sprint("10.0.0.1:", 1000+i)}
	}
	entries := []route.Entry{
		{Route: "a.test", Endpoint: ep("a", 0)}, {Route: "a.test", Endpoint: ep("a", 1)},
		{Route: "a2.test", Endpoint: ep("a", 0)},
		{Route: "b.test", Endpoint: ep("b", 0)},
		{Route: "shared.test", Endpoint: ep("b", 0)}, {Route: "shared.test", Endpoint: ep("c", 0)},
	}
	send := func(tb *route.Table, host string, n int) {
		p := tb.Lookup(host, "/")
		for range n {
			i, _ := p.Pick(nil)
			p.Sent(i)
		}
	}
	a := NewActivity()
	if got := a.Collect(); got != nil {
		t.Errorf("no table: %v", got)
	}
	t1 := route.Build(entries)
	a.Updated(t1)
	send(t1, "a.test", 3)
	send(t1, "shared.test", 4) // 2 to b, 2 to c
	t2 := route.Build(entries)
	a.Updated(t2)
	send(t1, "b.test", 1) // routed by t1 just before the swap
	send(t2, "a2.test", 2)
	want := []bus.AppRequests{{Space: "s", App: "a", Requests: 5}, {Space: "s", App: "b", Requests: 3}, {Space: "s", App: "c", Requests: 2}}
	if got := a.Collect(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("Collect = %v, want %v", got, want)
	}
	if got := a.Collect(); got != nil {
		t.Errorf("idle Collect = %v, want none", got)
	}
	send(t2, "b.test", 1)
	if got, want := a.Collect(), []bus.AppRequests{{Space: "s", App: "b", Requests: 1}}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("Collect = %v, want %v", got, want)
	}
}

func TestRetryAfter(t *testing.T) {
	for _, tc := range []struct {
		in   time.Duration
		want int
	}{{time.Second, 1}, {1500 * time.Millisecond, 2}, {time.Minute, 10}} {
		if got := retryAfter(tc.in); got != tc.want {
			t.Errorf("retryAfter(%s) = %d, want %d", tc.in, got, tc.want)
		}
	}
}
