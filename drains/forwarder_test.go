package drains

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/driftless/driftless/bus"
	"github.com/driftless/driftless/internal/pki"
	"github.com/driftless/driftless/internal/testenv"
	"github.com/driftless/driftless/journal"
	"github.com/driftless/driftless/model"
)

// syslogServer is a syslog drain on 127.0.0.1 reading octet-counted
// messages (RFC 6587), which it can stop, start again on the same
// address, or stall (accept and never read).
type syslogServer struct {
	t    testing.TB
	addr string
	tls  *tls.Config
	msgs chan string

	mu    sync.Mutex
	ln    net.Listener
	conns []net.Conn
	stall bool
}

func newSyslogServer(t testing.TB, tlsConf *tls.Config) *syslogServer {
	s := &syslogServer{t: t, addr: "127.0.0.1:0", tls: tlsConf, msgs: make(chan string, 100_000)}
	s.start()
	t.Cleanup(s.stop)
	return s
}

func (s *syslogServer) start() {
	s.t.Helper()
	ln, err := net.Listen("tcp", s.addr)
	if err != nil {
		s.t.Fatalf("syslog listener: %v", err)
	}
	s.addr = ln.Addr().String()
	if s.tls != nil {
		ln = tls.NewListener(ln, s.tls)
	}
	s.mu.Lock()
	s.ln = ln
	s.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns = append(s.conns, c)
			stall := s.stall
			s.mu.Unlock()
			if stall {
				if tc, ok := c.(*net.TCPConn); ok {
					_ = tc.SetReadBuffer(4096)
				}
				continue // never read
			}
			go s.read(c)
		}
	}()
}

// read takes framed messages off c: "LEN SP MSG".
func (s *syslogServer) read(c net.Conn) {
	r := bufio.NewReader(c)
	for {
		n, err := r.ReadString(' ')
		if err != nil {
			return
		}
		size, err := strconv.Atoi(strings.TrimSuffix(n, " "))
		if err != nil {
			s.msgs <- "BAD FRAME " + n
			return
		}
		buf := make([]byte, size)
		if _, err := io.ReadFull(r, buf); err != nil {
			return
		}
		s.msgs <- string(buf)
	}
}

func (s *syslogServer) stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln != nil {
		s.ln.Close()
		s.ln = nil
	}
	for _, c := range s.conns {
		c.Close()
	}
	s.conns = nil
}

// expect reads n messages and checks each ends with want(i).
func (s *syslogServer) expect(t *testing.T, n int, want func(i int) string) {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for i := range n {
		select {
		case m := <-s.msgs:
			if !strings.HasSuffix(m, want(i)) {
				t.Fatalf("message %d is %q, want one ending %q", i, m, want(i))
			}
		case <-deadline:
			t.Fatalf("got %d messages of %d", i, n)
		}
	}
}

// logEnv is a NATS server with JetStream, the controller's journal and a
// cell's connection that publishes lines.
type logEnv struct {
	j    *journal.Journal
	cell *nats.Conn
}

func startJournal(t *testing.T) *logEnv {
	t.Helper()
	n := testenv.StartNATS(t)
	j, err := journal.New(n.Connect(t, bus.Identity{Role: bus.RoleController}), journal.DefaultConfig(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if err := j.EnsureSpace(context.Background(), "dev"); err != nil {
		t.Fatal(err)
	}
	return &logEnv{j: j, cell: n.Connect(t, bus.Identity{Role: bus.RoleCell, Cell: "cell-1"})}
}

// publish publishes hello's lines "line from..to-1" as a cell does.
func (e *logEnv) publish(t *testing.T, from, to int, pad int) {
	t.Helper()
	for i := from; i < to; i++ {
		l := model.LogLine{Time: time.Now().UTC(), Space: "dev", App: "hello", Source: model.LogApp, Stream: "stdout",
			Text: fmt.Sprintf("line %d%s", i, strings.Repeat("x", pad))}
		if err := bus.Publish(e.cell, bus.LogSubject(l), l); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.cell.Flush(); err != nil {
		t.Fatal(err)
	}
}

func lineText(i int) string { return fmt.Sprintf("] - - line %d\n", i) }

// testCA is a CA and a certificate for 127.0.0.1 it issued.
func testCA(t *testing.T) (*tls.Config, *x509.CertPool) {
	t.Helper()
	p, err := pki.Ensure(t.TempDir(), []string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.LoadX509KeyPair(p.Cert, p.Key)
	if err != nil {
		t.Fatal(err)
	}
	pem, err := os.ReadFile(p.CA)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatal("no CA certificate")
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, pool
}

func testConfig(reg prometheus.Registerer) Config {
	return Config{MinBackoff: 50 * time.Millisecond, MaxBackoff: 200 * time.Millisecond, DialTimeout: 2 * time.Second,
		WriteTimeout: time.Second, Metrics: NewMetrics(reg), Log: slog.New(slog.DiscardHandler)}
}

// forward starts a forwarder of hello's lines to url until the test ends.
func forward(t *testing.T, e *logEnv, url string, cfg Config) *Forwarder {
	t.Helper()
	f, err := NewForwarder(e.j, Target{Space: "dev", App: "hello", Service: "logs", URL: url}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); f.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return f
}

// TestForwarder: hello's lines reach a TCP and a TLS drain in order, as
// RFC 5424; the drain going away and coming back loses none of the lines
// printed meanwhile (the queue had room); nothing is dropped.
func TestForwarder(t *testing.T) {
	tlsConf, pool := testCA(t)
	tests := []struct {
		name   string
		scheme string
		tls    *tls.Config
	}{
		{"tcp", "syslog", nil},
		{"tls", "syslog-tls", tlsConf},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := startJournal(t)
			srv := newSyslogServer(t, tt.tls)
			cfg := testConfig(prometheus.NewRegistry())
			cfg.RootCAs = pool
			url := tt.scheme + "://" + srv.addr
			f := forward(t, e, url, cfg)

			e.publish(t, 0, 100, 0)
			first := <-srv.msgs
			if want := regexpFirst(t, first); want != nil {
				t.Fatal(want)
			}
			srv.expect(t, 99, func(i int) string { return lineText(i + 1) })

			srv.stop()
			time.Sleep(300 * time.Millisecond) // the forwarder sees the drain leave
			e.publish(t, 100, 200, 0)
			time.Sleep(500 * time.Millisecond) // dials refused meanwhile
			srv.start()
			srv.expect(t, 100, func(i int) string { return lineText(100 + i) })

			if d := f.Dropped(); d != 0 {
				t.Fatalf("%d lines dropped", d)
			}
			testenv.Eventually(t, 5*time.Second, 20*time.Millisecond, "200 lines counted sent", func() error {
				if v := counterValue(t, cfg.Metrics.sent.WithLabelValues(ID(url))); v != 200 {
					return fmt.Errorf("sent %v", v)
				}
				return nil
			})
		})
	}
}

// regexpFirst checks the first message's header, bar its time stamp.
func regexpFirst(t *testing.T, m string) error {
	t.Helper()
	head, rest, ok := strings.Cut(m, " ") // "<14>1"
	if !ok || head != "<14>1" {
		return fmt.Errorf("first message %q: want PRI 14, version 1", m)
	}
	ts, rest, _ := strings.Cut(rest, " ")
	if _, err := time.Parse(time.RFC3339Nano, ts); err != nil {
		return fmt.Errorf("first message %q: time stamp: %w", m, err)
	}
	if want := "dev.hello hello [APP/PROC/WEB/0] - - line 0\n"; rest != want {
		return fmt.Errorf("first message %q: want %q after the time stamp", m, want)
	}
	return nil
}

// TestForwarderDropsWhenStalled: a drain that accepts and never reads
// fills the queue; the lines beyond it are dropped and counted, and the
// platform is not held up (every line is read from the journal).
func TestForwarderDropsWhenStalled(t *testing.T) {
	e := startJournal(t)
	srv := newSyslogServer(t, nil)
	srv.mu.Lock()
	srv.stall = true
	srv.mu.Unlock()
	reg := prometheus.NewRegistry()
	cfg := testConfig(reg)
	cfg.QueueSize = 50
	url := "syslog://" + srv.addr
	f := forward(t, e, url, cfg)

	// 12 MB: more than a connection's buffers can take (the sender's at
	// most 4 MB, tcp_wmem; the listener's 4 KiB).
	const lines = 6000
	e.publish(t, 0, lines, 2000)
	testenv.Eventually(t, 30*time.Second, 50*time.Millisecond, "lines dropped", func() error {
		if f.Dropped() == 0 {
			return errors.New("none dropped yet")
		}
		return nil
	})
	testenv.Eventually(t, 30*time.Second, 50*time.Millisecond, "every line taken or dropped", func() error {
		sent := counterValue(t, cfg.Metrics.sent.WithLabelValues(ID(url)))
		dropped := counterValue(t, cfg.Metrics.dropped.WithLabelValues(ID(url)))
		if uint64(dropped) != f.Dropped() {
			return fmt.Errorf("counter %v, forwarder %d", dropped, f.Dropped())
		}
		if got := int(sent) + int(dropped) + f.Queued(); got != lines {
			return fmt.Errorf("sent %v + dropped %v + queued %d of %d lines", sent, dropped, f.Queued(), lines)
		}
		return nil
	})
	if sent := counterValue(t, cfg.Metrics.sent.WithLabelValues(ID(url))); sent >= lines {
		t.Fatalf("all %v lines sent to a drain that never reads", sent)
	}
}
