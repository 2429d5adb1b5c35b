package drains

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/driftless/driftless/journal"
	"github.com/driftless/driftless/model"
)

func TestParseURL(t *testing.T) {
	tests := []struct {
		name, url string
		want      Endpoint
		err       string
	}{
		{"tcp", "syslog://logs.example.com:514", Endpoint{Addr: "logs.example.com:514", ServerName: "logs.example.com"}, ""},
		{"tls", "syslog-tls://logs.example.com:6514/?drain-type=all", Endpoint{Addr: "logs.example.com:6514", TLS: true, ServerName: "logs.example.com"}, ""},
		{"ipv6", "syslog://[::1]:514", Endpoint{Addr: "[::1]:514", ServerName: "::1"}, ""},
		{"upper scheme", "SYSLOG://127.0.0.1:514", Endpoint{Addr: "127.0.0.1:514", ServerName: "127.0.0.1"}, ""},
		{"https", "https://user:s3cret@logs.example.com/drain", Endpoint{}, "https:// syslog drains are not supported"},
		{"udp", "syslog-udp://logs.example.com:514", Endpoint{}, "UDP syslog drains are not supported"},
		{"other scheme", "ftp://s3cret@logs.example.com:21", Endpoint{}, `syslog drain scheme "ftp" is not supported`},
		{"odd scheme", "s3cret-token-aaaaaaaaaaaaaaa://x:1", Endpoint{}, `syslog drain scheme "?" is not supported`},
		{"no port", "syslog://logs.example.com", Endpoint{}, "needs a port"},
		{"bad port", "syslog://logs.example.com:99999", Endpoint{}, "port must be 1 to 65535"},
		{"no host", "syslog://:514", Endpoint{}, "needs a host"},
		{"not a URL", "s3cret logs", Endpoint{}, "must look like syslog://host:port"},
		{"opaque", "syslog:s3cret@host:514", Endpoint{}, "must look like syslog://host:port"},
		{"bad escape", "syslog://s3cret%zz@host:514", Endpoint{}, "must look like syslog://host:port"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseURL(tt.url)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("ParseURL: %v, want an error with %q", err, tt.err)
				}
				if strings.Contains(err.Error(), "s3cret") {
					t.Fatalf("the error shows the URL: %v", err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseURL = %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

func TestFormat(t *testing.T) {
	at := time.Date(2026, 12, 1, 20, 15, 4, 123456789, time.FixedZone("CET", 3600))
	frame := func(msg string) string { return fmt.Sprintf("%d %s", len(msg), msg) }
	tests := []struct {
		name string
		line model.LogLine
		want string
	}{
		{"stdout of web", model.LogLine{Time: at, Space: "dev", App: "hello", Source: model.LogApp, Index: 0, Stream: "stdout", Text: "GET / 200"},
			frame("<14>1 2026-12-01T19:15:04.123456Z dev.hello hello [APP/PROC/WEB/0] - - GET / 200\n")},
		{"stderr of a worker", model.LogLine{Time: at, Space: "dev", App: "hello", Source: model.LogApp, Index: 2, Stream: "stderr", Process: "worker", Text: "boom"},
			frame("<11>1 2026-12-01T19:15:04.123456Z dev.hello hello [APP/PROC/WORKER/2] - - boom\n")},
		{"router", model.LogLine{Time: at, Space: "dev", App: "hello", Source: model.LogRouter, Index: 1, Text: "hello.local - [..] \"GET / HTTP/1.1\" 200"},
			frame("<14>1 2026-12-01T19:15:04.123456Z dev.hello hello [RTR/1] - - hello.local - [..] \"GET / HTTP/1.1\" 200\n")},
		{"staging", model.LogLine{Time: at, Space: "dev", App: "hello", Source: model.LogStaging, Text: "-----> Go buildpack"},
			frame("<14>1 2026-12-01T19:15:04.123456Z dev.hello hello [STG/0] - - -----> Go buildpack\n")},
		{"newline kept, NUL removed", model.LogLine{Time: at, Space: "dev", App: "hello", Source: model.LogCell, Text: "a\x00b\n"},
			frame("<14>1 2026-12-01T19:15:04.123456Z dev.hello hello [CELL/0] - - ab\n")},
		{"no time, odd names", model.LogLine{Space: "s p", App: "h\u00e9", Source: model.LogAPI, Text: "é"},
			frame("<14>1 - s_p.h__ h__ [API/0] - - é\n")},
		{"long app name", model.LogLine{Time: at, Space: "dev", App: strings.Repeat("a", 60), Source: model.LogApp, Text: "x"},
			frame("<14>1 2026-12-01T19:15:04.123456Z dev." + strings.Repeat("a", 60) + " " + strings.Repeat("a", 48) + " [APP/PROC/WEB/0] - - x\n")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(Format(tt.line)); got != tt.want {
				t.Fatalf("Format =\n%q\nwant\n%q", got, tt.want)
			}
		})
	}
}

func TestQueue(t *testing.T) {
	type op struct {
		push   []string // messages pushed
		peek   int      // then peeked (0: none)
		commit int      // then committed
	}
	tests := []struct {
		name      string
		size      int
		ops       []op
		wantPeek  []string // what the last peek returned
		wantLen   int
		wantDrops uint64
	}{
		{"in order", 3, []op{{push: []string{"a", "b"}, peek: 5}}, []string{"a", "b"}, 2, 0},
		{"full drops the new ones", 2, []op{{push: []string{"a", "b", "c", "d"}, peek: 5}}, []string{"a", "b"}, 2, 2},
		{"peek leaves, commit takes", 3, []op{{push: []string{"a", "b", "c"}, peek: 2, commit: 0}, {peek: 3, commit: 2}, {push: []string{"d"}, peek: 3}}, []string{"c", "d"}, 2, 0},
		{"wraps around", 3, []op{{push: []string{"a", "b", "c"}, peek: 2, commit: 2}, {push: []string{"d", "e", "f"}, peek: 3}}, []string{"c", "d", "e"}, 3, 1},
		{"a batch not written is sent again", 4, []op{{push: []string{"a", "b"}, peek: 2}, {push: []string{"c"}, peek: 4}}, []string{"a", "b", "c"}, 3, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := newQueue(tt.size)
			var last [][]byte
			for _, o := range tt.ops {
				for _, m := range o.push {
					q.push([]byte(m))
				}
				if o.peek > 0 {
					last = q.peek(o.peek)
				}
				q.commit(o.commit)
			}
			var got []string
			for _, m := range last {
				got = append(got, string(m))
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.wantPeek) || q.len() != tt.wantLen || q.drops() != tt.wantDrops {
				t.Fatalf("peek %q len %d drops %d; want %q %d %d", got, q.len(), q.drops(), tt.wantPeek, tt.wantLen, tt.wantDrops)
			}
		})
	}
}

func TestQueueWait(t *testing.T) {
	q := newQueue(1)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if q.wait(ctx) {
		t.Fatal("wait on an empty queue returned true")
	}
	go func() { time.Sleep(10 * time.Millisecond); q.push([]byte("x")) }()
	ctx2, cancel2 := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel2()
	if !q.wait(ctx2) {
		t.Fatal("wait did not see a push")
	}
}

func TestMetricsRegistered(t *testing.T) {
	reg := prometheus.NewRegistry()
	a, b := NewMetrics(reg), NewMetrics(reg) // a second registration reuses the first's counters
	a.dropped.WithLabelValues(ID("syslog://h:1")).Add(2)
	b.dropped.WithLabelValues(ID("syslog://h:1")).Inc()
	NewMetrics(nil).sent.WithLabelValues("x").Inc() // nil-safe
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var series int
	for _, mf := range mfs {
		if mf.GetName() == "driftless_drain_lines_dropped_total" {
			series = len(mf.GetMetric())
		}
	}
	if series != 1 {
		t.Fatalf("dropped series %d, want 1", series)
	}
	if v := counterValue(t, a.dropped.WithLabelValues(ID("syslog://h:1"))); v != 3 {
		t.Fatalf("dropped %v, want 3", v)
	}
	if id := ID("syslog://user:s3cret@h:1"); len(id) != 12 || strings.Contains(id, "s3cret") {
		t.Fatalf("ID %q", id)
	}
}

// counterValue is a counter's value.
func counterValue(t testing.TB, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// blockingSource follows nothing until ctx ends, counting the readers.
type blockingSource struct {
	mu      sync.Mutex
	readers int
}

func (s *blockingSource) Logs(ctx context.Context, _ journal.LogQuery, _ func(model.LogLine) error) error {
	s.mu.Lock()
	s.readers++
	s.mu.Unlock()
	<-ctx.Done()
	s.mu.Lock()
	s.readers--
	s.mu.Unlock()
	return nil
}

func (s *blockingSource) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.readers
}

// TestManagerSync: Sync starts a forwarder per new target, stops those
// gone (their readers end before it returns), and refuses a target whose
// URL it cannot forward to, logging that once without the URL.
func TestManagerSync(t *testing.T) {
	var logs bytes.Buffer
	src := &blockingSource{}
	m := NewManager(src, Config{Log: slog.New(slog.NewTextHandler(&logs, nil))})
	a := Target{Space: "dev", App: "hello", Service: "logs", URL: "syslog://127.0.0.1:1/?token=s3cret-a"}
	b := Target{Space: "dev", App: "notes", Service: "logs", URL: "syslog-tls://127.0.0.1:1"}
	bad := Target{Space: "dev", App: "hello", Service: "web-logs", URL: "https://user:s3cret-b@logs.example.com/drain"}
	steps := []struct {
		name    string
		targets []Target
		want    []string // services/apps forwarded to
	}{
		{"two and a refused one", []Target{a, b, bad}, []string{"hello/logs", "notes/logs"}},
		{"again: nothing new", []Target{a, b, bad}, []string{"hello/logs", "notes/logs"}},
		{"one gone", []Target{b, bad}, []string{"notes/logs"}},
		{"a new URL is a new drain", []Target{{Space: "dev", App: "notes", Service: "logs", URL: "syslog://127.0.0.1:2"}}, []string{"notes/logs"}},
		{"none", nil, nil},
	}
	for _, st := range steps {
		m.Sync(st.targets)
		var got []string
		for _, t := range m.Targets() {
			got = append(got, t.App+"/"+t.Service)
		}
		slices.Sort(got)
		if fmt.Sprint(got) != fmt.Sprint(st.want) {
			t.Fatalf("%s: forwarding to %v, want %v", st.name, got, st.want)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for src.count() != 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := src.count(); n != 0 {
		t.Fatalf("%d readers left after every drain stopped", n)
	}
	out := logs.String()
	if strings.Count(out, "not forwarding to a syslog drain") != 1 || !strings.Contains(out, "https:// syslog drains are not supported") {
		t.Fatalf("want the refused drain logged once:\n%s", out)
	}
	if strings.Contains(out, "s3cret") {
		t.Fatalf("a drain URL is logged:\n%s", out)
	}
}
