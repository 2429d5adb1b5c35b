package wire

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"net/http/httputil"
	"strings"
	"testing"
)

func TestHeadEnd(t *testing.T) {
	tests := []struct {
		in   string
		want int
	}{
		{"GET / HTTP/1.1\r\nHost: a\r\n\r\nrest", 27},
		{"GET / HTTP/1.1\nHost: a\n\nrest", 24},
		{"GET / HTTP/1.1\r\nHost: a\r\n\r", -1},
		{"GET / HTTP/1.1\r\nHost: a\r\n", -1},
		{"GET / HTTP/1.1", -1},
		{"", -1},
	}
	for _, tt := range tests {
		if got := HeadEnd([]byte(tt.in), 0); got != tt.want {
			t.Errorf("HeadEnd(%q) = %d, want %d", tt.in, got, tt.want)
		}
	}
	// Searching again from where a shorter read stopped finds an end
	// that straddles the two reads.
	full := []byte("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	for cut := 1; cut < len(full); cut++ {
		if HeadEnd(full[:cut], 0) >= 0 {
			continue
		}
		if got := HeadEnd(full, cut); got != len(full) {
			t.Fatalf("from %d: %d, want %d", cut, got, len(full))
		}
	}
}

func TestParseRequest(t *testing.T) {
	tests := []struct {
		name    string
		head    string
		err     error
		check   func(*Request) bool
		explain string
	}{
		{name: "simple", head: "GET /a?b=1 HTTP/1.1\r\nHost: x.example\r\nAccept: */*\r\n\r\n",
			check: func(r *Request) bool {
				return string(r.Host) == "x.example" && string(r.Target) == "/a?b=1" && len(r.Fields) == 2 && !r.Close
			},
			explain: "host, target, two fields, keep-alive"},
		{name: "body", head: "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 12\r\n\r\n",
			check: func(r *Request) bool { return r.ContentLength == 12 }, explain: "length 12"},
		{name: "chunked wins", head: "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 12\r\nTransfer-Encoding: chunked\r\n\r\n",
			check: func(r *Request) bool { return r.ContentLength == -1 && r.TransferEncoding }, explain: "chunked"},
		{name: "close", head: "GET / HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, Close\r\n\r\n",
			check: func(r *Request) bool { return r.Close && len(r.Connection) == 1 }, explain: "close"},
		{name: "http/1.0 closes", head: "GET / HTTP/1.0\r\n\r\n",
			check: func(r *Request) bool { return r.Close && r.Host == nil }, explain: "close, no host"},
		{name: "upgrade and expect", head: "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nExpect: 100-continue\r\n\r\n",
			check: func(r *Request) bool { return r.Upgrade && r.Expect }, explain: "both set"},
		{name: "bare LF", head: "GET / HTTP/1.1\nHost: x\n\n",
			check: func(r *Request) bool { return string(r.Host) == "x" }, explain: "host x"},
		{name: "value whitespace trimmed", head: "GET / HTTP/1.1\r\nHost: \t x \t\r\n\r\n",
			check: func(r *Request) bool { return string(r.Host) == "x" }, explain: "host x"},
		{name: "two hosts", head: "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", err: ErrMalformed},
		{name: "two lengths", head: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", err: ErrContentLength},
		{name: "bad length", head: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", err: ErrContentLength},
		{name: "folded", head: "GET / HTTP/1.1\r\nHost: a\r\n x\r\n\r\n", err: ErrMalformed},
		{name: "space before colon", head: "GET / HTTP/1.1\r\nHost : a\r\n\r\n", err: ErrMalformed},
		{name: "absolute form", head: "GET http://a/ HTTP/1.1\r\nHost: a\r\n\r\n", err: ErrMalformed},
		{name: "HTTP/2", head: "GET / HTTP/2.0\r\n\r\n", err: ErrMalformed},
		{name: "control in value", head: "GET / HTTP/1.1\r\nHost: a\x01\r\n\r\n", err: ErrMalformed},
		{name: "too many", head: "GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n", err: ErrTooManyFields},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r Request
			err := ParseRequest([]byte(tt.head), &r, 3)
			if err != tt.err {
				t.Fatalf("err %v, want %v", err, tt.err)
			}
			if err == nil && !tt.check(&r) {
				t.Fatalf("parsed %+v; want %s", r, tt.explain)
			}
		})
	}
}

func TestParseResponse(t *testing.T) {
	tests := []struct {
		head   string
		code   int
		length int64
		chunk  bool
		close  bool
		err    error
	}{
		{head: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", code: 200, length: 5},
		{head: "HTTP/1.1 204\r\n\r\n", code: 204, length: -1},
		{head: "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\nContent-Length: 5\r\n\r\n", code: 200, length: -1, chunk: true},
		{head: "HTTP/1.0 200 OK\r\n\r\n", code: 200, length: -1, close: true},
		{head: "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n", code: 200, length: 0},
		{head: "HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n", code: 103, length: -1},
		{head: "HTTP/1.1 2000 OK\r\n\r\n", err: ErrMalformed},
		{head: "HTTP/1.1 OK\r\n\r\n", err: ErrMalformed},
		{head: "ICY 200 OK\r\n\r\n", err: ErrMalformed},
	}
	for _, tt := range tests {
		var r Response
		err := ParseResponse([]byte(tt.head), &r, 10)
		if err != tt.err {
			t.Errorf("%q: err %v, want %v", tt.head, err, tt.err)
			continue
		}
		if err == nil && (r.Code != tt.code || r.ContentLength != tt.length || r.Chunked != tt.chunk || r.Close != tt.close) {
			t.Errorf("%q: code %d length %d chunked %v close %v", tt.head, r.Code, r.ContentLength, r.Chunked, r.Close)
		}
	}
}

func TestHopByHop(t *testing.T) {
	conn := [][]byte{[]byte("keep-alive, X-Secret")}
	for name, want := range map[string]bool{"Connection": true, "keep-alive": true, "TE": true, "Transfer-Encoding": true,
		"Upgrade": true, "Proxy-Authorization": true, "x-secret": true, "Host": false, "Trailers": false, "X-Secrets": false} {
		if got := HopByHop([]byte(name), conn); got != want {
			t.Errorf("HopByHop(%s) = %v", name, got)
		}
	}
}

func TestChunked(t *testing.T) {
	tests := []struct {
		body string
		end  int // where the body ends; -1 not yet
		err  bool
	}{
		{body: "5\r\nhello\r\n0\r\n\r\nNEXT", end: 15},
		{body: "5;ext=1\r\nhello\r\n0\r\nTrailer: x\r\n\r\n", end: 33},
		{body: "a\r\n0123456789\r\n0\r\n\r\n", end: 20},
		{body: "5\nhello\n0\n\n", end: 11},
		{body: "5\r\nhello\r\n", end: -1},
		{body: "5\r\nhelloXX", err: true},
		{body: "zz\r\n", err: true},
		{body: "\r\n", err: true},
		{body: "10000000000000000\r\n", err: true},
	}
	for _, tt := range tests {
		// Whole, and a byte at a time: the same end.
		for _, step := range []int{len(tt.body), 1} {
			var c Chunked
			at, done, failed := 0, false, false
			for at < len(tt.body) && !done {
				n, d, err := c.Scan([]byte(tt.body[at:min(at+step, len(tt.body))]))
				if err != nil {
					failed = true
					break
				}
				at, done = at+n, d
			}
			switch {
			case failed != tt.err:
				t.Errorf("%q step %d: failed %v", tt.body, step, failed)
			case !tt.err && tt.end < 0 && done:
				t.Errorf("%q step %d: done early", tt.body, step)
			case !tt.err && tt.end >= 0 && (!done || at != tt.end):
				t.Errorf("%q step %d: done %v at %d, want %d", tt.body, step, done, at, tt.end)
			}
		}
	}
}

// FuzzParseRequest checks ParseRequest against net/http: a head it
// accepts, net/http reads too, with the same method, target, host and
// body length. (It may refuse heads net/http takes: those are handed to
// net/http.)
func FuzzParseRequest(f *testing.F) {
	for _, s := range []string{
		"GET / HTTP/1.1\r\nHost: a.example\r\n\r\n",
		"POST /x?y HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc",
		"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\nCookie: __VCAP_ID__=x; b=c\r\n\r\n",
		"GET / HTTP/1.0\r\nHost: a\r\nConnection: keep-alive\r\n\r\n",
		"PUT /a HTTP/1.1\nHost: a\nTransfer-Encoding: chunked\n\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		end := HeadEnd(in, 0)
		if end < 0 {
			return
		}
		var r Request
		if ParseRequest(in[:end], &r, 100) != nil {
			return
		}
		if r.Host == nil || r.TransferEncoding || r.Version[7] != '1' {
			return // the fast path hands these over to net/http
		}
		req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(in)))
		if err != nil {
			t.Fatalf("accepted %q, net/http: %v", in[:end], err)
		}
		if req.Method != string(r.Method) || req.RequestURI != string(r.Target) {
			t.Fatalf("%q: method/target %s %s vs %s %s", in[:end], r.Method, r.Target, req.Method, req.RequestURI)
		}
		if r.Host != nil && req.Host != string(r.Host) {
			t.Fatalf("%q: host %q vs %q", in[:end], r.Host, req.Host)
		}
		if !r.TransferEncoding && req.ContentLength != r.ContentLength {
			t.Fatalf("%q: length %d vs %d", in[:end], r.ContentLength, req.ContentLength)
		}
	})
}

// FuzzChunked checks Chunked against net/http's chunked reader: where
// that reads a body to its end, Scan finds the same end.
func FuzzChunked(f *testing.F) {
	for _, s := range []string{"5\r\nhello\r\n0\r\n\r\n", "3;x=y\r\nabc\r\n0\r\nA: b\r\n\r\nafter", "0\r\n\r\n", "f\r\n0123456789abcde\r\n0\r\n\r\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		var c Chunked
		n, done, err := c.Scan(in)
		br := bufio.NewReader(bytes.NewReader(in))
		_, rerr := io.Copy(io.Discard, httputil.NewChunkedReader(br))
		if rerr != nil || err != nil || !done {
			return
		}
		// net/http's reader stops after the last chunk's CRLF; the
		// trailer section follows, up to an empty line.
		rest := in[len(in)-br.Buffered():]
		tp := bufio.NewReader(bytes.NewReader(rest))
		consumed := 0
		for {
			line, err := tp.ReadString('\n')
			if err != nil {
				return // not a complete trailer section for net/http
			}
			consumed += len(line)
			if strings.TrimRight(line, "\r\n") == "" {
				break
			}
		}
		if want := len(in) - len(rest) + consumed; n != want {
			t.Fatalf("%q: Scan ends the body at %d, net/http at %d", in, n, want)
		}
	})
}
