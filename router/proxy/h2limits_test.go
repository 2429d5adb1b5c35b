package proxy

// Tests of the HTTP/2 server's bounds: the write timeout of a stream
// whose client keeps its window closed, and the limit of streams.

import (
	"io"
	"net/http"
	"strconv"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"github.com/driftless/driftless/model"
	"github.com/driftless/driftless/router/route"
)

// h2Event is a frame the client read, or the error that ended the
// reading (the last event).
type h2Event struct {
	typ  http2.FrameType
	sid  uint32
	end  bool          // END_STREAM
	n    int           // DATA payload bytes
	code http2.ErrCode // RST_STREAM's or GOAWAY's
	err  error
}

// h2Events reads fr's frames on a goroutine of its own until the
// connection ends.
func h2Events(fr *http2.Framer) <-chan h2Event {
	events := make(chan h2Event, 1024)
	go func() {
		defer close(events)
		for {
			f, err := fr.ReadFrame()
			if err != nil {
				events <- h2Event{err: err}
				return
			}
			ev := h2Event{typ: f.Header().Type, sid: f.Header().StreamID}
			switch f := f.(type) {
			case *http2.DataFrame:
				ev.end, ev.n = f.StreamEnded(), len(f.Data())
			case *http2.HeadersFrame:
				ev.end = f.StreamEnded()
			case *http2.RSTStreamFrame:
				ev.code = f.ErrCode
			case *http2.GoAwayFrame:
				ev.code = f.ErrCode
			}
			events <- ev
		}
	}()
	return events
}

// next is the next event, failing the test when the reading ended or
// nothing came within 5 s.
func next(t *testing.T, events <-chan h2Event) h2Event {
	t.Helper()
	var ev h2Event
	ok := true
	select {
	case ev, ok = <-events:
	case <-time.After(5 * time.Second):
		t.Fatal("no frame within 5 s")
	}
	switch {
	case !ok:
		t.Fatal("the connection's frames ended")
	case ev.err != nil:
		t.Fatalf("reading frames: %v", ev.err)
	case ev.typ == http2.FrameGoAway:
		t.Fatalf("GOAWAY %v", ev.code)
	}
	return ev
}

// nextOn is the next event of stream sid (next), those of other streams
// skipped.
func nextOn(t *testing.T, events <-chan h2Event, sid uint32) h2Event {
	t.Helper()
	for {
		if ev := next(t, events); ev.sid == sid {
			return ev
		}
	}
}

// h2Get opens stream id with a GET of path at testHost.
func h2Get(t *testing.T, fr *http2.Framer, id uint32, path string) {
	t.Helper()
	if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, EndHeaders: true, EndStream: true,
		BlockFragment: h2Fields(":method", "GET", ":scheme", "https", ":authority", testHost, ":path", path)}); err != nil {
		t.Fatal(err)
	}
}

// h2FastRouter is the fast path over TLS with FastH2 in front of entries,
// tweaked by tweak.
func h2FastRouter(t *testing.T, entries []route.Entry, tweak func(*Server)) (string, *Server) {
	t.Helper()
	tc := testTLSConfig(t)
	return startFast(t, driver{"goroutines", true}, entries, Config{}, func(s *Server) {
		s.TLSConfig, s.FastH2 = tc, true
		s.Fallback.TLSConfig = tc
		tweak(s)
	})
}

// TestH2WindowTimeout: a stream whose client never opens its window
// again is reset (CANCEL) after the write timeout (IdleTimeout), its
// instance connection closed rather than pooled, while another stream of
// the connection is served, and the connection goes on.
func TestH2WindowTimeout(t *testing.T) {
	const timeout = time.Second
	const big = 64 << 20 // more than the kernel's socket buffers hold
	wrote := make(chan error, 1)
	mux := http.NewServeMux()
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(big))
		chunk := pattern(1 << 20)
		var err error
		for i := 0; i < big/len(chunk) && err == nil; i++ {
			_, err = w.Write(chunk)
		}
		wrote <- err
	})
	mux.HandleFunc("/small", func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "small") })
	app := serveApp(t, mux)
	addr, srv := h2FastRouter(t, []route.Entry{{Route: testHost,
		Endpoint: route.Endpoint{InstanceRef: model.InstanceRef{GUID: "app-0", App: "app"}, Addr: app}}},
		func(s *Server) { s.IdleTimeout = timeout })

	fr := h2Open(t, addr)
	// The connection's window wide open: only stream 1's stays closed.
	_ = fr.WriteWindowUpdate(0, 1<<30)
	events := h2Events(fr)
	h2Get(t, fr, 1, "/big")
	for got := 0; got < 65535; { // the stream's initial window
		if ev := next(t, events); ev.typ == http2.FrameData && ev.sid == 1 {
			got += ev.n
		} else if ev.typ == http2.FrameRSTStream {
			t.Fatalf("stream %d reset (%v) before its window closed", ev.sid, ev.code)
		}
	}
	closed := time.Now()
	h2Get(t, fr, 3, "/small")
	var reset time.Time
	small := false
	for reset.IsZero() || !small {
		ev := next(t, events)
		switch {
		case ev.typ == http2.FrameRSTStream && ev.sid == 1:
			if ev.code != http2.ErrCodeCancel {
				t.Fatalf("stream 1 reset with %v, want CANCEL", ev.code)
			}
			reset = time.Now()
		case ev.typ == http2.FrameRSTStream:
			t.Fatalf("stream %d reset (%v)", ev.sid, ev.code)
		case ev.sid == 3 && ev.end:
			small = true
		case ev.sid == 1 && ev.typ == http2.FrameData:
			t.Fatal("DATA on stream 1 beyond its window")
		}
	}
	if d := reset.Sub(closed); d < timeout-200*time.Millisecond || d > timeout+2*time.Second {
		t.Errorf("stream 1 reset %s after its window closed, want about %s", d, timeout)
	}
	select {
	case err := <-wrote:
		if err == nil {
			t.Error("the instance wrote the whole body: its connection was not closed")
		}
	case <-time.After(3 * time.Second):
		t.Error("the instance's connection of the reset stream is still open")
	}
	if idle := pooled(srv, app); idle != 1 {
		t.Errorf("%d idle instance connections, want 1 (stream 3's)", idle)
	}
	h2Get(t, fr, 5, "/small")
	for ev := next(t, events); !(ev.sid == 5 && ev.end); ev = next(t, events) {
		if ev.typ == http2.FrameRSTStream {
			t.Fatalf("stream %d reset (%v) after the timeout", ev.sid, ev.code)
		}
	}
}

// TestH2StreamLimit: a client opening streams beyond the bounds of
// streams.headers is refused (RST_STREAM REFUSED_STREAM, RFC 9113 5.1.2)
// stream by stream while the streams under them are served: the open
// streams (SETTINGS_MAX_CONCURRENT_STREAMS, h2MaxStreams) and the
// streams the client reset whose goroutines did not end yet (twice as
// many, CVE-2023-44487). The handler holds every request until released,
// whatever its context says.
func TestH2StreamLimit(t *testing.T) {
	for _, tt := range []struct {
		name string
		// rounds of h2MaxStreams streams, each reset by the client
		// (cancelled) or left open once its requests reached the handler.
		rounds    int
		cancelled bool
	}{
		{"open streams", 1, false},
		{"reset streams still running", 2, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			entered, release := make(chan struct{}, 4*h2MaxStreams), make(chan struct{})
			addr, _ := h2FastRouter(t, nil, func(s *Server) {
				s.Fallback.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					entered <- struct{}{}
					<-release
					_, _ = io.WriteString(w, "served")
				})
			})
			released := false
			defer func() {
				if !released {
					close(release)
				}
			}()
			c := h2Dial(t, addr)
			_ = c.SetDeadline(time.Now().Add(20 * time.Second))
			fr := http2.NewFramer(c, c)
			_, _ = io.WriteString(c, http2.ClientPreface)
			_ = fr.WriteSettings()
			events := h2Events(fr)
			id := uint32(1)
			var open []uint32
			for range tt.rounds {
				for range h2MaxStreams {
					h2Get(t, fr, id, "/held")
					open = append(open, id)
					id += 2
				}
				for n := 0; n < h2MaxStreams; {
					select {
					case <-entered:
						n++
					case ev := <-events:
						if ev.err != nil || ev.sid != 0 {
							t.Fatalf("a stream under the limit was not served: %+v", ev)
						}
					}
				}
				if tt.cancelled {
					for _, sid := range open {
						_ = fr.WriteRSTStream(sid, http2.ErrCodeCancel)
					}
					open = open[:0]
				}
			}
			// One stream beyond the bound.
			h2Get(t, fr, id, "/held")
			ev := nextOn(t, events, id)
			if ev.typ != http2.FrameRSTStream || ev.sid != id || ev.code != http2.ErrCodeRefusedStream {
				t.Fatalf("stream %d beyond the limit: %+v, want RST_STREAM REFUSED_STREAM", id, ev)
			}
			if n := len(entered); n != 0 {
				t.Fatalf("%d requests beyond the limit reached the handler", n)
			}
			id += 2
			// Released, the open streams are answered, and new streams
			// are served again (once the reset streams' goroutines ended).
			close(release)
			released = true
			ended := map[uint32]bool{}
			for len(ended) < len(open) {
				ev := next(t, events)
				if ev.typ == http2.FrameRSTStream {
					t.Fatalf("stream %d reset (%v)", ev.sid, ev.code)
				}
				if ev.end {
					ended[ev.sid] = true
				}
			}
			for deadline := time.Now().Add(5 * time.Second); ; id += 2 {
				h2Get(t, fr, id, "/held")
				ev := nextOn(t, events, id)
				for ev.typ != http2.FrameRSTStream && !ev.end {
					ev = nextOn(t, events, id)
				}
				if ev.typ != http2.FrameRSTStream {
					break
				}
				if ev.code != http2.ErrCodeRefusedStream || time.Now().After(deadline) {
					t.Fatalf("stream %d after the release: reset %v", ev.sid, ev.code)
				}
				time.Sleep(10 * time.Millisecond)
			}
			if n := len(entered); n != 1 {
				t.Errorf("%d requests after the release reached the handler, want 1", n)
			}
		})
	}
}
