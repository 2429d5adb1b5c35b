package proxy

// Tests of the streams served on the read loop's goroutine (h2inline.go).

import (
	"io"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"github.com/driftless/driftless/model"
	"github.com/driftless/driftless/router/route"
)

// inlineApp is an instance whose /slow and /drip wait for release, before
// the head and in the middle of the body.
func inlineApp(t *testing.T, release <-chan struct{}) string {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("/small", func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "small") })
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		<-release
		_, _ = io.WriteString(w, "slow")
	})
	mux.HandleFunc("/drip", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "10")
		_, _ = io.WriteString(w, "01234")
		w.(http.Flusher).Flush()
		<-release
		_, _ = io.WriteString(w, "56789")
	})
	mux.HandleFunc("/window", func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write(pattern(100)) })
	return serveApp(t, mux)
}

// h2Streams reads a connection's events and counts each stream's DATA
// bytes, whichever stream is awaited.
type h2Streams struct {
	events <-chan h2Event
	got    map[uint32]int
	ended  map[uint32]bool
}

// awaitEnd reads events until stream sid ends and returns the DATA bytes
// it carried, failing on a reset.
func (s *h2Streams) awaitEnd(t *testing.T, sid uint32) int {
	t.Helper()
	for !s.ended[sid] {
		ev := next(t, s.events)
		if ev.typ == http2.FrameRSTStream {
			t.Fatalf("stream %d reset (%v)", ev.sid, ev.code)
		}
		s.got[ev.sid] += ev.n
		if ev.end {
			s.ended[ev.sid] = true
		}
	}
	return s.got[sid]
}

// streamsOf reads fr's events (h2Events).
func streamsOf(fr *http2.Framer) *h2Streams {
	return &h2Streams{events: h2Events(fr), got: map[uint32]int{}, ended: map[uint32]bool{}}
}

// TestH2Inline: a stream served on the read loop's goroutine gives the
// loop to another goroutine before it waits, so the connection's next
// stream is served while it waits: for a response head slower than
// h2InlineWait, for a body not whole yet, for a closed flow control
// window. Without that the second stream would wait for the first.
func TestH2Inline(t *testing.T) {
	for _, tt := range []struct {
		name, path string
		// settings are the client's: a stream window of 16 bytes closes
		// it on /window's 100.
		settings []http2.Setting
		want     int
	}{
		{"response head slower than the inline wait", "/slow", nil, len("slow")},
		{"body not whole in the buffer", "/drip", nil, 10},
		{"flow control window closed", "/window", []http2.Setting{{ID: http2.SettingInitialWindowSize, Val: 16}}, 100},
	} {
		t.Run(tt.name, func(t *testing.T) {
			release := make(chan struct{})
			free := sync.OnceFunc(func() { close(release) })
			defer free()
			app := inlineApp(t, release)
			addr, srv := h2FastRouter(t, []route.Entry{{Route: testHost,
				Endpoint: route.Endpoint{InstanceRef: model.InstanceRef{GUID: "app-0", App: "app"}, Addr: app}}}, func(*Server) {})
			fr := h2Open(t, addr, tt.settings...)
			ss := streamsOf(fr)
			// A first request leaves an instance connection in the pool:
			// the next is forwarded over it without a dial (which gives
			// the loop away by itself).
			h2Get(t, fr, 1, "/small")
			if n := ss.awaitEnd(t, 1); n != len("small") {
				t.Fatalf("stream 1 carried %d bytes", n)
			}
			awaitPooled(t, srv, app)
			h2Get(t, fr, 3, tt.path)
			h2Get(t, fr, 5, "/small")
			if n := ss.awaitEnd(t, 5); n != len("small") {
				t.Fatalf("stream 5 carried %d bytes", n)
			}
			free()
			if tt.settings != nil {
				if err := fr.WriteWindowUpdate(3, 1<<20); err != nil {
					t.Fatal(err)
				}
			}
			if n := ss.awaitEnd(t, 3); n != tt.want {
				t.Fatalf("stream 3 carried %d bytes, want %d", n, tt.want)
			}
			// The connection goes on.
			h2Get(t, fr, 7, "/small")
			ss.awaitEnd(t, 7)
		})
	}
}

// awaitPooled waits until srv's pool holds an idle connection to addr.
func awaitPooled(t *testing.T, srv *Server, addr string) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		if pooled(srv, addr) > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no idle connection to %s in the pool", addr)
		}
	}
}

// pooled is the number of idle connections to addr in srv's pool.
func pooled(srv *Server, addr string) int {
	p := srv.Proxy.pool
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.conns[addr])
}

// workers counts the goroutines that serve streams handed over by the read
// loop (h2conn.spawn).
func workers() int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return strings.Count(string(buf[:n]), "(*h2conn).spawn.func")
		}
		buf = make([]byte, 2*len(buf))
	}
}

// quickRouter is a fast-path router with HTTP/2, routing testHost to an
// inlineApp whose slow paths are never released: for tests of requests
// answered at once.
func quickRouter(t *testing.T) (string, *Server) {
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	app := inlineApp(t, release)
	return h2FastRouter(t, []route.Entry{{Route: testHost,
		Endpoint: route.Endpoint{InstanceRef: model.InstanceRef{GUID: "app-0", App: "app"}, Addr: app}}}, func(*Server) {})
}

// TestH2InlineSequential: requests sent one after another on a
// connection are served by its read loop's goroutine: no stream
// goroutine is started for them.
func TestH2InlineSequential(t *testing.T) {
	addr, _ := quickRouter(t)
	before := workers()
	fr := h2Open(t, addr)
	ss := streamsOf(fr)
	for id := uint32(1); id < 40; id += 2 {
		h2Get(t, fr, id, "/small")
		if n := ss.awaitEnd(t, id); n != len("small") {
			t.Fatalf("stream %d carried %d bytes", id, n)
		}
	}
	if after := workers(); after > before {
		t.Errorf("%d stream goroutines after 20 requests one after another, %d before: the streams were handed over", after, before)
	}
}

// TestH2IdleHoldsNoBuffer: a connection waiting for its client's next
// request holds no buffer: the one its request was read into went back
// to the pool once read, the one its response was written into with the
// flush that sent it, the out buffer its request was sent to the
// instance from once the stream ended; the connection's own HTTP/1.1
// buffers were dropped when it turned HTTP/2.
func TestH2IdleHoldsNoBuffer(t *testing.T) {
	addr, srv := quickRouter(t)
	before := h2BuffersOut.Load()
	const conns = 10
	for range conns {
		fr := h2Open(t, addr)
		ss := streamsOf(fr)
		h2Get(t, fr, 1, "/small")
		if n := ss.awaitEnd(t, 1); n != len("small") {
			t.Fatalf("the stream carried %d bytes", n)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for h2BuffersOut.Load() > before {
		if time.Now().After(deadline) {
			t.Fatalf("%d buffers held with %d connections idle, %d before them", h2BuffersOut.Load(), conns, before)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if held, seen := heldBuffers(srv); seen != conns || held != 0 {
		t.Errorf("%d of %d HTTP/2 connections (%d idle) hold exchange buffers", held, seen, conns)
	}
}

// heldBuffers counts the HTTP/2 connections of srv whose own
// exchange or ended streams (kept for reuse) hold an in or out buffer.
func heldBuffers(srv *Server) (held, seen int) {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	for c := range srv.conns {
		h := c.h2c
		if h == nil {
			continue
		}
		seen++
		h.mu.Lock()
		holds := c.in.b != nil || c.out != nil
		for _, st := range h.free {
			holds = holds || st.in.b != nil || st.out != nil
		}
		h.mu.Unlock()
		if holds {
			held++
		}
	}
	return held, seen
}
