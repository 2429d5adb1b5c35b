// Package wire reads HTTP/1.1 message heads and chunked bodies in place:
// a parsed head is slices of the bytes it came in, so the router's fast
// path forwards a request without copying or allocating per field. It
// parses what RFC 9112 allows and refuses the rest (the caller then hands
// the connection to net/http, which answers the odd cases in full).
package wire

import (
	"bytes"
	"errors"
	"unsafe"
)

// Errors of ParseRequest and ParseResponse.
var (
	// ErrMalformed is a head that is not HTTP/1.x.
	ErrMalformed = errors.New("malformed HTTP head")
	// ErrTooManyFields is a head with more fields than allowed.
	ErrTooManyFields = errors.New("too many header fields")
	// ErrContentLength is a bad or contradictory Content-Length.
	ErrContentLength = errors.New("bad Content-Length")
)

// Field is one header field; Name and Value point into the head.
type Field struct{ Name, Value []byte }

// HeadEnd returns the length of the head at the start of b, up to and
// including the empty line that ends it (CRLF CRLF, or bare LFs), or -1
// when b does not hold a whole head yet. from is where to start looking
// (what an earlier call with a shorter b already searched).
func HeadEnd(b []byte, from int) int {
	from = max(from-3, 0) // the end may straddle what was searched before
	for i := from; ; {
		j := bytes.IndexByte(b[i:], '\n')
		if j < 0 {
			return -1
		}
		i += j + 1
		if i < len(b) && b[i] == '\n' {
			return i + 1
		}
		if i+1 < len(b) && b[i] == '\r' && b[i+1] == '\n' {
			return i + 2
		}
		if i >= len(b) {
			return -1
		}
	}
}

// Request is a parsed request head.
type Request struct {
	Method, Target, Version []byte
	// Fields are the header fields in order.
	Fields []Field
	// Host is the Host field's value (nil when absent).
	Host []byte
	// ContentLength is the body's length: 0 without a body, -1 when the
	// body is chunked (Transfer-Encoding).
	ContentLength int64
	// TransferEncoding is set when the request has a Transfer-Encoding.
	TransferEncoding bool
	// Close is Connection: close (or HTTP/1.0 without keep-alive).
	Close bool
	// Upgrade and Expect are set when those fields are present.
	Upgrade, Expect bool
	// Connection holds the Connection fields' values (the names of more
	// hop-by-hop fields).
	Connection [][]byte
}

// Response is a parsed response head.
type Response struct {
	Version []byte
	// Code is the status code; Status the status line after the version
	// ("200 OK").
	Code   int
	Status []byte
	Fields []Field
	// ContentLength is -1 when absent.
	ContentLength    int64
	TransferEncoding bool
	// Chunked is a Transfer-Encoding whose last coding is chunked.
	Chunked    bool
	Close      bool
	Connection [][]byte
}

// ParseRequest parses a request head (as delimited by HeadEnd) into r,
// reusing r's slices. At most maxFields fields are accepted.
func ParseRequest(head []byte, r *Request, maxFields int) error {
	*r = Request{Fields: r.Fields[:0], Connection: r.Connection[:0]}
	line, rest := nextLine(head)
	// Method SP target SP version, each non-empty, nothing else.
	sp1 := bytes.IndexByte(line, ' ')
	if sp1 <= 0 {
		return ErrMalformed
	}
	sp2 := bytes.IndexByte(line[sp1+1:], ' ')
	if sp2 <= 0 {
		return ErrMalformed
	}
	sp2 += sp1 + 1
	r.Method, r.Target, r.Version = line[:sp1], line[sp1+1:sp2], line[sp2+1:]
	if !isToken(r.Method) || !validTarget(r.Target) || !isVersion(r.Version) {
		return ErrMalformed
	}
	var err error
	if r.Fields, _, err = parseFields(rest, r.Fields, maxFields); err != nil {
		return err
	}
	hosts := 0
	keepAlive := false
	for _, f := range r.Fields {
		switch {
		case EqualFold(f.Name, "Host"):
			r.Host = f.Value
			hosts++
		case EqualFold(f.Name, "Content-Length"):
			n, err := parseLength(f.Value)
			if err != nil || (r.ContentLength > 0 && n != r.ContentLength) {
				return ErrContentLength
			}
			r.ContentLength = n
		case EqualFold(f.Name, "Transfer-Encoding"):
			r.TransferEncoding = true
		case EqualFold(f.Name, "Connection"):
			r.Connection = append(r.Connection, f.Value)
			r.Close = r.Close || HasToken(f.Value, "close")
			keepAlive = keepAlive || HasToken(f.Value, "keep-alive")
		case EqualFold(f.Name, "Upgrade"):
			r.Upgrade = true
		case EqualFold(f.Name, "Expect"):
			r.Expect = true
		}
	}
	if hosts > 1 {
		return ErrMalformed
	}
	if r.Version[7] == '0' && !keepAlive {
		r.Close = true
	}
	if r.TransferEncoding {
		r.ContentLength = -1 // it wins over Content-Length (RFC 9112 6.3)
	}
	return nil
}

// ParseResponse parses a response head into r, reusing r's slices.
func ParseResponse(head []byte, r *Response, maxFields int) error {
	*r = Response{Fields: r.Fields[:0], Connection: r.Connection[:0], ContentLength: -1}
	line, rest := nextLine(head)
	if len(line) < 12 || !isVersion(line[:8]) || line[8] != ' ' {
		return ErrMalformed
	}
	r.Version, r.Status = line[:8], line[9:]
	for _, c := range r.Status[:3] {
		if c < '0' || c > '9' {
			return ErrMalformed
		}
		r.Code = r.Code*10 + int(c-'0')
	}
	if len(r.Status) > 3 && r.Status[3] != ' ' || r.Code < 100 {
		return ErrMalformed
	}
	var err error
	if r.Fields, _, err = parseFields(rest, r.Fields, maxFields); err != nil {
		return err
	}
	keepAlive := false
	for _, f := range r.Fields {
		switch {
		case EqualFold(f.Name, "Content-Length"):
			n, err := parseLength(f.Value)
			if err != nil || (r.ContentLength >= 0 && n != r.ContentLength) {
				return ErrContentLength
			}
			r.ContentLength = n
		case EqualFold(f.Name, "Transfer-Encoding"):
			r.TransferEncoding = true
			r.Chunked = lastToken(f.Value, "chunked")
		case EqualFold(f.Name, "Connection"):
			r.Connection = append(r.Connection, f.Value)
			r.Close = r.Close || HasToken(f.Value, "close")
			keepAlive = keepAlive || HasToken(f.Value, "keep-alive")
		}
	}
	if r.Version[7] == '0' && !keepAlive {
		r.Close = true
	}
	if r.TransferEncoding {
		r.ContentLength = -1
	}
	return nil
}

// BodyLess reports whether a response with code, to a HEAD request when
// head is set, has no body whatever its fields say (RFC 9112 6.3).
func BodyLess(head bool, code int) bool {
	return head || code < 200 || code == 204 || code == 304
}

// HopByHop reports whether the field name concerns one connection only:
// the standard ones (Connection, Keep-Alive, Proxy-Connection,
// Proxy-Authenticate, Proxy-Authorization, TE, Trailer,
// Transfer-Encoding, Upgrade) and those a Connection field names
// (connection holds the Connection fields' values).
func HopByHop(name []byte, connection [][]byte) bool {
	var std bool
	switch len(name) {
	case 2:
		std = EqualFold(name, "Te")
	case 7:
		std = EqualFold(name, "Trailer") || EqualFold(name, "Upgrade")
	case 10:
		std = EqualFold(name, "Connection") || EqualFold(name, "Keep-Alive")
	case 16:
		std = EqualFold(name, "Proxy-Connection")
	case 17:
		std = EqualFold(name, "Transfer-Encoding")
	case 18:
		std = EqualFold(name, "Proxy-Authenticate")
	case 19:
		std = EqualFold(name, "Proxy-Authorization")
	}
	if std {
		return true
	}
	for _, v := range connection {
		if HasToken(v, Transient(name)) {
			return true
		}
	}
	return false
}

// Transient views b as a string without copying, for a lookup or a
// comparison that does not keep the string past b's next change.
func Transient(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

// nextLine splits b after its first line; the line is returned without
// its CRLF or LF.
func nextLine(b []byte) (line, rest []byte) {
	i := bytes.IndexByte(b, '\n')
	if i < 0 {
		return b, nil
	}
	line, rest = b[:i], b[i+1:]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, rest
}

// parseFields appends the fields of b (the lines after the start line, up
// to the empty line) to fields.
func parseFields(b []byte, fields []Field, max int) ([]Field, []byte, error) {
	for {
		var line []byte
		line, b = nextLine(b)
		if len(line) == 0 {
			return fields, b, nil
		}
		if line[0] == ' ' || line[0] == '\t' {
			return fields, b, ErrMalformed // obsolete line folding
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 || !isToken(line[:colon]) {
			return fields, b, ErrMalformed
		}
		if len(fields) == max {
			return fields, b, ErrTooManyFields
		}
		v := trimOWS(line[colon+1:])
		for _, c := range v {
			if c < ' ' && c != '\t' || c == 0x7f {
				return fields, b, ErrMalformed
			}
		}
		fields = append(fields, Field{Name: line[:colon], Value: v})
	}
}

func trimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// parseLength parses a Content-Length value: digits only, at most 18.
func parseLength(b []byte) (int64, error) {
	if len(b) == 0 || len(b) > 18 {
		return 0, ErrContentLength
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, ErrContentLength
		}
		n = n*10 + int64(c-'0')
	}
	return n, nil
}

func isVersion(b []byte) bool {
	return len(b) == 8 && string(b[:7]) == "HTTP/1." && (b[7] == '0' || b[7] == '1')
}

// validTarget accepts the origin form ("/path?query") and "*", visible
// ASCII only; the absolute and authority forms are left to net/http.
func validTarget(b []byte) bool {
	if len(b) == 0 || (b[0] != '/' && !(len(b) == 1 && b[0] == '*')) {
		return false
	}
	for _, c := range b {
		if c <= ' ' || c >= 0x7f {
			return false
		}
	}
	return true
}

// isToken reports whether b is an RFC 9110 token.
func isToken(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if int(c) >= len(tokenChars) || !tokenChars[c] {
			return false
		}
	}
	return true
}

var tokenChars = func() (t [127]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c], t[c-'a'+'A'] = true, true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return t
}()

// EqualFold reports whether b equals s, ignoring ASCII case.
func EqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := 0; i < len(b); i++ {
		if lower(b[i]) != lower(s[i]) {
			return false
		}
	}
	return true
}

func lower(c byte) byte {
	if c >= 'A' && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// HasToken reports whether the comma-separated list v holds token,
// ignoring ASCII case.
func HasToken(v []byte, token string) bool {
	for len(v) > 0 {
		var item []byte
		item, v = NextItem(v, ',')
		if EqualFold(trimOWS(item), token) {
			return true
		}
	}
	return false
}

// NextItem splits a sep-separated list: its first item, and the rest
// after the separator (nil after the last item).
func NextItem(v []byte, sep byte) (item, rest []byte) {
	if i := bytes.IndexByte(v, sep); i >= 0 {
		return v[:i], v[i+1:]
	}
	return v, nil
}

// lastToken reports whether the last item of the comma-separated list v
// is token.
func lastToken(v []byte, token string) bool {
	if i := bytes.LastIndexByte(v, ','); i >= 0 {
		v = v[i+1:]
	}
	return EqualFold(trimOWS(v), token)
}
