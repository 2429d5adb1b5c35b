package proxy

import (
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/driftless/driftless/router/handlers"
)

// TestRequestIDs: a client's X-Request-Id reaches the app and comes back
// when it is 8 to 128 bytes of letters, digits and "._:-"; any other is
// replaced by a new id, the same on the fast path (HTTP/1.1, both
// drivers) and on net/http (HTTP/1.0, handed over).
func TestRequestIDs(t *testing.T) {
	tests := []struct {
		name string
		id   string
		keep bool
	}{
		{"good", "abc-123_x.y:z", true},
		{"longest", strings.Repeat("a", 128), true},
		{"uuid", "0f8fad5b-d9cb-469f-a165-70867728950e", true},
		{"too short", "abc", false},
		{"too long", strings.Repeat("a", 129), false},
		{"markup", "abc<script>alert(1)</script>", false},
		{"spaces", "abc def ghi", false},
		{"non-ASCII", "idé12345678", false},
		{"log injection", "abcdefgh\" level=ERROR msg=x", false},
	}
	protos := []struct{ name, version string }{{"fast path", "HTTP/1.1"}, {"net/http", "HTTP/1.0"}}
	forDrivers(t, func(t *testing.T, d driver) {
		inst := rawBackend(t, func(req *http.Request) (string, bool) {
			id := req.Header.Get(handlers.RequestIDHeader)
			return "HTTP/1.1 200 OK\r\nContent-Length: " + strconv.Itoa(len(id)) + "\r\n\r\n" + id, false
		})
		addr, _ := serveFast(t, d, Config{}, inst)
		for _, p := range protos {
			for _, tt := range tests {
				t.Run(p.name+"/"+tt.name, func(t *testing.T) {
					resps, bodies := roundTrips(t, addr, "GET / "+p.version+"\r\nHost: "+testHost+"\r\nX-Request-Id: "+tt.id+"\r\nConnection: close\r\n\r\n", 1)
					seen, back := bodies[0], resps[0].Header.Get(handlers.RequestIDHeader)
					if resps[0].StatusCode != http.StatusOK || seen != back {
						t.Fatalf("%d: the app saw %q, the client got %q", resps[0].StatusCode, seen, back)
					}
					if tt.keep && seen != tt.id {
						t.Fatalf("a good id %q became %q", tt.id, seen)
					}
					if !tt.keep && (seen == tt.id || len(seen) != 32 || !handlers.ValidRequestID(seen)) {
						t.Fatalf("a bad id %q became %q, want a new one", tt.id, seen)
					}
				})
			}
		}
	})
}
