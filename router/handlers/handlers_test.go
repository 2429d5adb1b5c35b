package handlers

import (
	"bytes"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

func TestValidRequestID(t *testing.T) {
	for id, want := range map[string]bool{
		"abcdefgh": true, "0123456789abcdef0123456789abcdef": true, "a.b_c:d-e": true,
		"short": false, "has space1": false, "new\nline1": false, strings.Repeat("x", 129): false,
	} {
		if ValidRequestID(id) != want || ValidRequestID([]byte(id)) != want {
			t.Errorf("ValidRequestID(%q) != %v", id, want)
		}
	}
	if a, b := NewRequestID(), NewRequestID(); a == b || !ValidRequestID(a) || len(a) != 32 {
		t.Fatalf("ids %q %q", a, b)
	}
}

func TestObserve(t *testing.T) {
	var log bytes.Buffer
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	obs := NewObserver(Config{AccessLog: &log, Metrics: m})
	start := time.Date(2026, 11, 26, 7, 0, 0, 0, time.UTC)
	info := &Info{ID: "req-12345", App: "web", Route: "web.apps.localhost", Upstream: "10.0.0.1:8080", Instance: "web-0", UpstreamTime: 2 * time.Millisecond}
	for _, status := range []int{200, 201, 503} {
		obs.Observe(&Exchange{Start: start, End: start.Add(3 * time.Millisecond), Remote: "127.0.0.1:5000", Method: "GET", URI: "/x?y=1",
			Proto: "HTTP/1.1", UserAgent: "curl", Status: status, Bytes: 42, Info: info})
	}
	line := strings.SplitN(log.String(), "\n", 2)[0]
	want := `127.0.0.1 - - [26/Nov/2026:07:00:00 +0000] "GET /x?y=1 HTTP/1.1" 200 42 "" "curl" route="web.apps.localhost" app="web" instance="web-0" upstream="10.0.0.1:8080" upstream_ms=2.000 duration_ms=3.000 request_id=req-12345`
	if line != want {
		t.Fatalf("access log line\n%s\nwant\n%s", line, want)
	}
	count := func(class string) float64 {
		var d dto.Metric
		if err := m.Requests.WithLabelValues("web.apps.localhost", class).Write(&d); err != nil {
			t.Fatal(err)
		}
		return d.GetCounter().GetValue()
	}
	if count("2xx") != 2 || count("5xx") != 1 {
		t.Fatalf("requests counted: 2xx %v, 5xx %v; want 2 and 1", count("2xx"), count("5xx"))
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == "driftless_router_request_duration_seconds" {
			var n uint64
			for _, s := range f.GetMetric() {
				n += s.GetHistogram().GetSampleCount()
			}
			if n != 3 {
				t.Fatalf("%d latencies observed, want 3", n)
			}
		}
	}
}

// TestObserveAllocs: counting a request allocates nothing once its
// route's series exist (the fast path allocates nothing per request).
func TestObserveAllocs(t *testing.T) {
	obs := NewObserver(Config{Metrics: NewMetrics(prometheus.NewRegistry())})
	start := time.Now()
	x := &Exchange{Start: start, End: start.Add(time.Millisecond), Status: 200, Info: &Info{Route: "web.apps.localhost", Upstream: "10.0.0.1:8080"}}
	obs.Observe(x)
	if n := testing.AllocsPerRun(100, func() { obs.Observe(x) }); n != 0 {
		t.Fatalf("%v allocations per observed request", n)
	}
}

func TestLogRejectedID(t *testing.T) {
	long := strings.Repeat("<script>", 1000)
	tests := []struct {
		name     string
		rejected string
		level    slog.Level
		want     []string
		wantNot  []string
	}{
		{"short", "abc", slog.LevelDebug, []string{`msg="request id replaced"`, "len=3", `prefix="\"abc\""`, "request_id=new"}, nil},
		{"long value truncated", long, slog.LevelDebug, []string{"len=8000", "prefix=" + strconv.Quote(strconv.Quote(long[:32]))}, []string{long[:33]}},
		{"control bytes quoted", "a\x1b[31mb\r\nc", slog.LevelDebug, []string{`\\x1b[31mb\\r\\nc`}, []string{"\x1b", "\r\n"}},
		{"not at info", "abc", slog.LevelInfo, nil, []string{"request id"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			log := slog.New(slog.NewTextHandler(&out, &slog.HandlerOptions{Level: tt.level}))
			LogRejectedID(log, "127.0.0.1:1", tt.rejected, []byte("new"))
			LogRejectedID(log, "127.0.0.1:1", []byte(tt.rejected), []byte("new"))
			for _, w := range tt.want {
				if strings.Count(out.String(), w) != 2 {
					t.Errorf("log %q lacks %q (twice)", out.String(), w)
				}
			}
			for _, w := range tt.wantNot {
				if strings.Contains(out.String(), w) {
					t.Errorf("log %q has %q", out.String(), w)
				}
			}
		})
	}
}

type appLines []string

func (a *appLines) AppLine(info *Info, _ time.Time, line string) {
	*a = append(*a, info.Space+"/"+info.App+"/"+fmt.Sprint(info.Index)+" "+line)
}

// TestObserveAppLog: a request routed to an app gives the app one RTR
// line (the access line), also without an access log; one routed to no
// app gives none.
func TestObserveAppLog(t *testing.T) {
	var lines appLines
	obs := NewObserver(Config{AppLog: &lines})
	if !obs.Logs() {
		t.Fatal("an observer with an app log does not ask for the request's strings")
	}
	start := time.Date(2026, 12, 1, 7, 0, 0, 0, time.UTC)
	for _, info := range []*Info{{Space: "dev", App: "web", Index: 2, Route: "web.apps.localhost"}, {Route: "nowhere"}} {
		obs.Observe(&Exchange{Start: start, Method: "GET", URI: "/", Proto: "HTTP/1.1", Status: 200, Remote: "127.0.0.1:1", Info: info})
	}
	if len(lines) != 1 || !strings.HasPrefix(lines[0], `dev/web/2 127.0.0.1 - - [01/Dec/2026:07:00:00 +0000] "GET / HTTP/1.1" 200`) {
		t.Fatalf("app lines %q, want one for dev/web instance 2", lines)
	}
}
