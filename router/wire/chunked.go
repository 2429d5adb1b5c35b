package wire

import "errors"

// ErrChunked is a chunked body that breaks the chunked coding's grammar.
var ErrChunked = errors.New("malformed chunked body")

// maxChunkLine bounds a chunk-size line and a trailer line.
const maxChunkLine = 4096

// Chunked follows a chunked body as it streams past, without decoding
// it: the proxy forwards the bytes as they are and needs only to know
// where the body ends. The zero value is at the start of a body.
type Chunked struct {
	state   int
	size    int64 // the chunk being read: bytes left
	digits  int
	lineLen int
	empty   bool // the trailer line so far is empty
}

const (
	chunkSize = iota // in the chunk-size line (digits, then extensions)
	chunkExt
	chunkData
	chunkDataCR // after the data: CRLF
	chunkDataLF
	trailer // in the trailer section, a line at a time
	chunkDone
)

// Scan consumes the next bytes of the body from b and returns how many of
// them belong to it; done is set once the body's last byte (the empty
// line after the trailers) was among them.
func (c *Chunked) Scan(b []byte) (n int, done bool, err error) {
	for n < len(b) {
		switch c.state {
		case chunkData:
			take := int64(len(b) - n)
			if take > c.size {
				take = c.size
			}
			n += int(take)
			c.size -= take
			if c.size == 0 {
				c.state = chunkDataCR
			}
			continue
		case chunkDone:
			return n, true, nil
		}
		ch := b[n]
		n++
		switch c.state {
		case chunkSize:
			switch v := unhex(ch); {
			case v >= 0:
				if c.digits++; c.digits > 15 {
					return n, false, ErrChunked
				}
				c.size = c.size<<4 | int64(v)
			case c.digits == 0:
				return n, false, ErrChunked
			case ch == '\n':
				c.endSizeLine()
			case ch == ';' || ch == ' ' || ch == '\t' || ch == '\r':
				c.state, c.lineLen = chunkExt, 0
			default:
				return n, false, ErrChunked
			}
		case chunkExt:
			if ch == '\n' {
				c.endSizeLine()
			} else if c.lineLen++; c.lineLen > maxChunkLine {
				return n, false, ErrChunked
			}
		case chunkDataCR:
			switch ch {
			case '\r':
				c.state = chunkDataLF
			case '\n':
				c.state = chunkSize
			default:
				return n, false, ErrChunked
			}
		case chunkDataLF:
			if ch != '\n' {
				return n, false, ErrChunked
			}
			c.state = chunkSize
		case trailer:
			switch {
			case ch == '\n':
				if c.empty {
					c.state = chunkDone
					return n, true, nil
				}
				c.empty, c.lineLen = true, 0
			case ch == '\r' && c.empty:
			default:
				c.empty = false
				if c.lineLen++; c.lineLen > maxChunkLine {
					return n, false, ErrChunked
				}
			}
		}
	}
	return n, c.state == chunkDone, nil
}

// endSizeLine starts the chunk whose size line just ended (the trailer
// section after the last, empty chunk).
func (c *Chunked) endSizeLine() {
	c.digits, c.lineLen = 0, 0
	if c.size == 0 {
		c.state, c.empty = trailer, true
		return
	}
	c.state = chunkData
}

func unhex(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10
	case c >= 'A' && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}
