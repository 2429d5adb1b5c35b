package proxy

// Tests of the HTTP/2 connection itself, driven frame by frame.

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"net"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// h2Dial opens a TLS connection to addr that chose h2, with a 5 s
// deadline, closed when the test ends.
func h2Dial(t *testing.T, addr string) *tls.Conn {
	t.Helper()
	c, err := tls.Dial("tcp", addr, &tls.Config{ServerName: testHost, InsecureSkipVerify: true, NextProtos: []string{"h2"}}) //nolint:gosec // test certificate
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if p := c.ConnectionState().NegotiatedProtocol; p != "h2" {
		t.Fatalf("negotiated %q", p)
	}
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	return c
}

// h2Open opens an h2 connection to addr (h2Dial) and starts it as a
// client does: the preface, then SETTINGS with settings.
func h2Open(t *testing.T, addr string, settings ...http2.Setting) *http2.Framer {
	t.Helper()
	c := h2Dial(t, addr)
	fr := http2.NewFramer(c, c)
	_, _ = io.WriteString(c, http2.ClientPreface)
	if err := fr.WriteSettings(settings...); err != nil {
		t.Fatal(err)
	}
	return fr
}

// h2Fields is the HPACK block of the fields given as name, value pairs.
func h2Fields(fields ...string) []byte {
	var b bytes.Buffer
	e := hpack.NewEncoder(&b)
	for i := 0; i+1 < len(fields); i += 2 {
		_ = e.WriteField(hpack.HeaderField{Name: fields[i], Value: fields[i+1]})
	}
	return b.Bytes()
}

// lastGoAway reads frames until the connection ends and returns the last
// GOAWAY among them (nil if none).
func lastGoAway(fr *http2.Framer) *http2.GoAwayFrame {
	var goAway *http2.GoAwayFrame
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			return goAway
		}
		if g, ok := f.(*http2.GoAwayFrame); ok {
			goAway = g
		}
	}
}

// TestH2Refusals: a connection that does not speak HTTP/2 properly is
// closed, with a GOAWAY when it got as far as frames.
func TestH2Refusals(t *testing.T) {
	addr, _, _, _ := h2Router(t, h2App(t, nil))
	for _, tt := range []struct {
		name   string
		send   func(fr *http2.Framer, c net.Conn)
		goAway http2.ErrCode // -1: closed without one
	}{
		{"bad preface", func(_ *http2.Framer, c net.Conn) { _, _ = io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n") }, ^http2.ErrCode(0)},
		{"DATA on stream 0", func(fr *http2.Framer, c net.Conn) {
			_, _ = io.WriteString(c, http2.ClientPreface)
			_ = fr.WriteSettings()
			_ = fr.WriteData(0, true, []byte("x"))
		}, http2.ErrCodeProtocol},
		{"preface without SETTINGS", func(fr *http2.Framer, c net.Conn) {
			_, _ = io.WriteString(c, http2.ClientPreface)
			_ = fr.WritePing(false, [8]byte{})
		}, http2.ErrCodeProtocol},
		{"HEADERS on an even stream", func(fr *http2.Framer, c net.Conn) {
			_, _ = io.WriteString(c, http2.ClientPreface)
			_ = fr.WriteSettings()
			_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 2, BlockFragment: []byte{0x82}, EndHeaders: true, EndStream: true})
		}, http2.ErrCodeProtocol},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := h2Dial(t, addr)
			fr := http2.NewFramer(c, c)
			fr.AllowIllegalWrites = true
			tt.send(fr, c)
			goAway := lastGoAway(fr)
			switch {
			case tt.goAway == ^http2.ErrCode(0) && goAway != nil:
				t.Errorf("GOAWAY %v, want the connection closed without one", goAway.ErrCode)
			case tt.goAway != ^http2.ErrCode(0) && goAway == nil:
				t.Errorf("no GOAWAY, want %v", tt.goAway)
			case goAway != nil && goAway.ErrCode != tt.goAway:
				t.Errorf("GOAWAY %v, want %v", goAway.ErrCode, tt.goAway)
			}
		})
	}
}

// TestH2StreamErrors: a malformed request resets its stream only; the
// connection goes on.
func TestH2StreamErrors(t *testing.T) {
	addr, _, _, _ := h2Router(t, h2App(t, nil))
	fr := h2Open(t, addr)
	// Stream 1: a connection-specific field (malformed, RFC 9113 8.2.2).
	// Stream 3: a good request.
	_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, EndHeaders: true, EndStream: true,
		BlockFragment: h2Fields(":method", "GET", ":scheme", "https", ":authority", testHost, ":path", "/echo", "connection", "close")})
	_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 3, EndHeaders: true, EndStream: true,
		BlockFragment: h2Fields(":method", "GET", ":scheme", "https", ":authority", testHost, ":path", "/echo")})
	var reset1, ok3 bool
	for !(reset1 && ok3) {
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatalf("reset of stream 1 %v, stream 3 answered %v: %v", reset1, ok3, err)
		}
		switch f := f.(type) {
		case *http2.RSTStreamFrame:
			if f.StreamID == 1 && f.ErrCode == http2.ErrCodeProtocol {
				reset1 = true
			}
		case *http2.DataFrame:
			if f.StreamID == 3 && f.StreamEnded() {
				ok3 = true
			}
		case *http2.GoAwayFrame:
			t.Fatalf("GOAWAY %v", f.ErrCode)
		}
	}
}

// TestH2Shutdown: Shutdown says GOAWAY to an idle HTTP/2 connection and
// closes it at once; a stream in flight finishes first.
func TestH2Shutdown(t *testing.T) {
	addr, _, _, srv := h2Router(t, h2App(t, nil))
	fr := h2Open(t, addr)
	_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, EndHeaders: true, EndStream: true,
		BlockFragment: h2Fields(":method", "GET", ":scheme", "https", ":authority", testHost, ":path", "/download?n=100")})
	for done := false; !done; {
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatal(err)
		}
		done = f.Header().Type == http2.FrameData && f.Header().Flags.Has(http2.FlagDataEndStream)
	}
	start := time.Now()
	shut := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		shut <- srv.Shutdown(ctx)
	}()
	goAway := lastGoAway(fr)
	if goAway == nil || goAway.ErrCode != http2.ErrCodeNo || goAway.LastStreamID != 1 {
		t.Errorf("GOAWAY %+v, want NO_ERROR after stream 1", goAway)
	}
	if err := <-shut; err != nil || time.Since(start) > 2*time.Second {
		t.Errorf("Shutdown: %v after %s", err, time.Since(start))
	}
}
