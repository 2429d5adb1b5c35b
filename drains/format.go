package drains

import (
	"strconv"
	"strings"

	"github.com/driftless/driftless/model"
)

// Priorities of the messages, as Cloud Foundry's syslog agent sets them:
// facility user (1), severity informational (6) for stdout and error (3)
// for stderr.
const (
	priStdout = 14
	priStderr = 11
)

// maxLine bounds a message's text (a line is at most 16 KiB already).
const maxLine = 64 << 10

// Format is one line as an RFC 5424 message, framed by octet counting
// (RFC 6587): "LEN <PRI>1 TIMESTAMP HOSTNAME APP-NAME [PROCID] - - MSG\n",
// the way Cloud Foundry's syslog agent writes app lines: HOSTNAME is
// space.app, APP-NAME the app, PROCID the source and instance
// ("[APP/PROC/WEB/0]", "[RTR/1]", "[STG/0]"), no MSGID and no
// structured data, and the text ends with a newline.
func Format(l model.LogLine) []byte {
	pri := priStdout
	if l.Stream == "stderr" {
		pri = priStderr
	}
	ts := "-"
	if !l.Time.IsZero() {
		ts = l.Time.UTC().Format("2006-01-02T15:04:05.000000Z07:00")
	}
	text := l.Text
	if len(text) > maxLine {
		text = text[:maxLine]
	}
	text = strings.ReplaceAll(text, "\x00", "")
	var b strings.Builder
	b.Grow(len(text) + 128)
	b.WriteByte('<')
	b.WriteString(strconv.Itoa(pri))
	b.WriteString(">1 ")
	b.WriteString(ts)
	b.WriteByte(' ')
	b.WriteString(header(l.Space+"."+l.App, 255))
	b.WriteByte(' ')
	b.WriteString(header(l.App, 48))
	b.WriteString(" [")
	b.WriteString(header(procID(l), 126))
	b.WriteString("] - - ")
	b.WriteString(text)
	if !strings.HasSuffix(text, "\n") {
		b.WriteByte('\n')
	}
	msg := b.String()
	return []byte(strconv.Itoa(len(msg)) + " " + msg)
}

// procID names what printed the line: APP/PROC/<PROCESS>/<index> for an
// app instance's lines (Cloud Foundry's), SOURCE/<index> otherwise.
func procID(l model.LogLine) string {
	idx := strconv.Itoa(l.Index)
	if l.Source == model.LogApp {
		p := l.Process
		if p == "" {
			p = "web"
		}
		return "APP/PROC/" + strings.ToUpper(p) + "/" + idx
	}
	if l.Source == "" {
		return "APP/" + idx
	}
	return string(l.Source) + "/" + idx
}

// header is s fit for an RFC 5424 header field: printable US-ASCII
// without spaces (others become '_'), at most max bytes, "-" when empty.
func header(s string, max int) string {
	if s == "" {
		return "-"
	}
	b := []byte(s)
	if len(b) > max {
		b = b[:max]
	}
	for i, c := range b {
		if c < 33 || c > 126 {
			b[i] = '_'
		}
	}
	return string(b)
}
