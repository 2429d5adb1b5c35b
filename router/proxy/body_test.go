package proxy

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"testing"
	"time"
)

func TestBodyDeadline(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		cfg  Config
		now  time.Duration // after start
		got  int64
		want time.Duration // after start; -1: no deadline
	}{
		{"timeout only", Config{BodyTimeout: 30 * time.Second, MinBodyRate: -1}, time.Minute, 0, time.Minute + 30*time.Second},
		{"neither", Config{BodyTimeout: -1, MinBodyRate: -1}, time.Minute, 0, -1},
		{"rate within grace", Config{BodyTimeout: 30 * time.Second, MinBodyRate: 100, BodyRateGrace: 10 * time.Second}, 0, 0, 10 * time.Second},
		{"rate earned time", Config{BodyTimeout: 30 * time.Second, MinBodyRate: 100, BodyRateGrace: 10 * time.Second}, 5 * time.Second, 1000, 20 * time.Second},
		{"timeout before rate", Config{BodyTimeout: time.Second, MinBodyRate: 100, BodyRateGrace: 10 * time.Second}, 5 * time.Second, 1000, 6 * time.Second},
		{"below the rate: past", Config{BodyTimeout: 30 * time.Second, MinBodyRate: 100, BodyRateGrace: time.Second}, time.Minute, 100, 2 * time.Second},
		{"rate only", Config{BodyTimeout: -1, MinBodyRate: 1000, BodyRateGrace: time.Second}, 0, 1 << 40, time.Second + time.Duration(float64(1<<40)/1000*float64(time.Second))},
		{"rate: a huge body earned more than a Duration", Config{BodyTimeout: time.Second, MinBodyRate: 1, BodyRateGrace: time.Second}, 0, 1 << 62, time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.cfg.bodyDeadline(start, start.Add(tt.now), tt.got)
			want := time.Time{}
			if tt.want >= 0 {
				want = start.Add(tt.want)
			}
			if !got.Equal(want) {
				t.Fatalf("bodyDeadline = %v, want %v", got, want)
			}
		})
	}
}

func TestBodyAnswer(t *testing.T) {
	tests := []struct {
		name   string
		err    error
		status int
	}{
		{"deadline", bodyError(fmt.Errorf("read: %w", os.ErrDeadlineExceeded)), http.StatusRequestTimeout},
		{"cut", bodyError(io.ErrUnexpectedEOF), http.StatusBadRequest},
		{"eof", bodyError(io.EOF), http.StatusBadRequest},
		{"malformed", bodyError(errors.New("malformed chunked encoding")), http.StatusBadRequest},
		{"instance's", errors.New("broken pipe"), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, _, ok := bodyAnswer(tt.err)
			if status != tt.status || ok != (tt.status != 0) {
				t.Fatalf("bodyAnswer = %d %v, want %d", status, ok, tt.status)
			}
		})
	}
}

// bodyResult is what a bodyServer's instance read of a request.
type bodyResult struct {
	body string
	err  error
	// closed is set when the router closed the connection (after the
	// result, within 5 s).
	closed bool
}

// bodyServer is an instance that reads each request's body whole and
// answers 200 with its length; it reports every body it read (or the
// error reading it) on the channel, then waits for the router to close the
// connection when reading failed.
func bodyServer(t *testing.T) (string, <-chan bodyResult) {
	results := make(chan bodyResult, 16)
	addr := connServer(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		for {
			req, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			body, err := io.ReadAll(req.Body)
			res := bodyResult{body: string(body), err: err}
			if err != nil {
				_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
				_, rerr := c.Read(make([]byte, 1))
				res.closed = rerr != nil && !errors.Is(rerr, os.ErrDeadlineExceeded)
				results <- res
				return
			}
			results <- res
			if _, err := fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%d", len(fmt.Sprint(len(body))), len(body)); err != nil {
				return
			}
		}
	})
	return addr, results
}

// sendBody sends a request head and body pieces (a pause before each
// after the first), half-closes when cut, and reads the router's answer.
// elapsed is the time from the head's sending to the answer.
func sendBody(t *testing.T, addr, head string, pieces []string, pause time.Duration, cut bool) (resp *http.Response, body string, elapsed time.Duration) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(15 * time.Second))
	start := time.Now()
	if _, err := io.WriteString(c, head); err != nil {
		t.Fatal(err)
	}
	go func() {
		for i, p := range pieces {
			if i > 0 {
				time.Sleep(pause)
			}
			if _, err := io.WriteString(c, p); err != nil {
				return
			}
		}
		if cut {
			_ = c.(*net.TCPConn).CloseWrite()
		}
	}()
	resp, err = http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("reading the answer: %v (after %s)", err, time.Since(start))
	}
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b), time.Since(start)
}

// TestBadRequestBodies: a request body that is malformed or ends early
// is answered 400 and one that stalls or trickles 408, on the fast path
// (Content-Length bodies, both drivers) and on net/http (chunked bodies);
// the instance never reads a complete request and its connection is
// closed. Slow but steady bodies still arrive whole.
func TestBadRequestBodies(t *testing.T) {
	const (
		lengthHead  = "POST /up HTTP/1.1\r\nHost: " + testHost + "\r\nContent-Length: 20\r\n\r\n"
		chunkedHead = "POST /up HTTP/1.1\r\nHost: " + testHost + "\r\nTransfer-Encoding: chunked\r\n\r\n"
	)
	short := Config{BodyTimeout: 300 * time.Millisecond, MinBodyRate: -1}
	rate := Config{BodyTimeout: 5 * time.Second, MinBodyRate: 100, BodyRateGrace: 200 * time.Millisecond}
	tests := []struct {
		name   string
		cfg    Config
		head   string
		pieces []string
		pause  time.Duration
		cut    bool
		// status is the router's answer; body, when status is 200, what
		// the instance read; within bounds the answer's wait.
		status int
		body   string
		within time.Duration
	}{
		{"length: cut", Config{}, lengthHead, []string{"0123456789"}, 0, true, 400, "", 3 * time.Second},
		{"length: cut after a pause", Config{}, lengthHead, []string{"01234", "56789"}, 100 * time.Millisecond, true, 400, "", 3 * time.Second},
		{"length: stalled", short, lengthHead, []string{"0123456789"}, 0, false, 408, "", 2 * time.Second},
		{"length: below the minimum rate", rate, lengthHead, []string{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "a", "b", "c", "d", "e", "f", "g", "h", "i", "j"},
			150 * time.Millisecond, false, 408, "", 2500 * time.Millisecond},
		{"length: slow but steady", short, lengthHead, []string{"01234", "56789", "abcde", "fghij"}, 150 * time.Millisecond, false, 200, "0123456789abcdefghij", 5 * time.Second},
		{"chunked: bad size line", Config{}, chunkedHead, []string{"5\r\nhello\r\n", "zz\r\nworld\r\n0\r\n\r\n"}, 50 * time.Millisecond, false, 400, "", 3 * time.Second},
		{"chunked: missing CRLF", Config{}, chunkedHead, []string{"5\r\nhello", "XX5\r\nworld\r\n0\r\n\r\n"}, 50 * time.Millisecond, false, 400, "", 3 * time.Second},
		{"chunked: cut before the last chunk", Config{}, chunkedHead, []string{"5\r\nhello\r\n"}, 0, true, 400, "", 3 * time.Second},
		{"chunked: stalled", short, chunkedHead, []string{"5\r\nhello\r\n"}, 0, false, 408, "", 2 * time.Second},
		{"chunked: below the minimum rate", rate, chunkedHead, []string{"1\r\na\r\n", "1\r\nb\r\n", "1\r\nc\r\n", "1\r\nd\r\n", "1\r\ne\r\n", "1\r\nf\r\n", "1\r\ng\r\n", "1\r\nh\r\n", "1\r\ni\r\n", "1\r\nj\r\n", "1\r\nk\r\n", "1\r\nl\r\n", "1\r\nm\r\n", "1\r\nn\r\n", "1\r\no\r\n", "1\r\np\r\n", "1\r\nq\r\n", "1\r\nr\r\n", "0\r\n\r\n"},
			150 * time.Millisecond, false, 408, "", 2500 * time.Millisecond},
		{"chunked: slow but steady", short, chunkedHead, []string{"5\r\nhello\r\n", "6\r\n world\r\n", "0\r\n\r\n"}, 150 * time.Millisecond, false, 200, "hello world", 5 * time.Second},
	}
	forDrivers(t, func(t *testing.T, d driver) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				inst, results := bodyServer(t)
				addr, _ := serveFast(t, d, tt.cfg, inst)
				resp, body, elapsed := sendBody(t, addr, tt.head, tt.pieces, tt.pause, tt.cut)
				if resp.StatusCode != tt.status || elapsed > tt.within {
					t.Fatalf("got %d %q after %s; want %d within %s", resp.StatusCode, body, elapsed, tt.status, tt.within)
				}
				if tt.status != http.StatusOK && resp.Header.Get("X-Request-Id") == "" {
					t.Errorf("the router's %d has no request id", tt.status)
				}
				select {
				case res := <-results:
					switch {
					case tt.status == http.StatusOK && (res.err != nil || res.body != tt.body):
						t.Fatalf("the instance read %q (%v); want %q", res.body, res.err, tt.body)
					case tt.status != http.StatusOK && res.err == nil:
						t.Fatalf("the instance read a complete request (body %q)", res.body)
					case tt.status != http.StatusOK && !res.closed:
						t.Fatalf("the instance's connection stays open after the body failed (%v)", res.err)
					}
				case <-time.After(8 * time.Second):
					// The router may fail before it sent anything: then the
					// instance never saw a request, which is fine for a
					// failure.
					if tt.status == http.StatusOK {
						t.Fatal("the instance got no request")
					}
				}
			})
		}
	})
}
