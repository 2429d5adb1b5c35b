package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/driftless/driftless/journal"
	"github.com/driftless/driftless/model"
)

// Journal reads the kept log lines and events (journal.Journal).
type Journal interface {
	Logs(ctx context.Context, q journal.LogQuery, emit func(model.LogLine) error) error
	Events(ctx context.Context, q journal.EventQuery, emit func(model.Event) error) error
}

// defaultRecent is how many lines or events a read without a start
// position returns (Cloud Foundry's `cf logs --recent` gives up to 1,000).
const defaultRecent = 1000

// maxRecent bounds ?recent=.
const maxRecent = 1_000_000

// logs streams an app's kept lines as JSON, one per line (or as
// server-sent events when the client accepts text/event-stream): from
// ?after=SEQ, ?since=1h|RFC 3339, or the last ?recent=N (default 1,000),
// then, with ?follow=1, new ones until the client goes away; ?source= and
// ?instance= keep one source's or one instance index's lines. Each line
// has its seq: a reader that reconnects with ?after= (or SSE's
// Last-Event-ID) misses nothing.
func (s *server) logs(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	q := r.URL.Query()
	space, err := s.resolveSpace(r.Context(), name, q.Get("space"))
	if errors.Is(err, errNotFound) {
		writeError(w, http.StatusNotFound, "no app named "+name+" is declared in any source")
		return
	}
	if err != nil {
		writeError(w, http.StatusConflict, err.Error())
		return
	}
	if !s.auth.allowed(w, r, VerbRead, ResourceLogs, space) {
		return
	}
	lq := journal.LogQuery{Space: space, App: name, Follow: q.Get("follow") != ""}
	if lq.Start, err = readStart(r); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if src := model.LogSource(q.Get("source")); src != "" {
		if !slices.Contains(model.LogSources, src) {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("unknown log source %q: one of %v", src, model.LogSources))
			return
		}
		lq.Source = src
	}
	if v := q.Get("instance"); v != "" {
		i, err := strconv.Atoi(v)
		if err != nil || i < 0 {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("instance %q is not an instance index", v))
			return
		}
		lq.Index = &i
	}
	out := newStream(w, r)
	err = s.cfg.Journal.Logs(r.Context(), lq, func(l model.LogLine) error { return out.send(l.Seq, l) })
	out.end(err, s.cfg.Log, "reading logs")
}

// readStart reads a read's start position from ?after=, Last-Event-ID,
// ?since= and ?recent=.
func readStart(r *http.Request) (journal.Start, error) {
	q := r.URL.Query()
	after := q.Get("after")
	if id := r.Header.Get("Last-Event-ID"); id != "" {
		after = id
	}
	if after != "" {
		seq, err := strconv.ParseUint(after, 10, 64)
		if err != nil {
			return journal.Start{}, fmt.Errorf("after %q is not a sequence number", after)
		}
		return journal.Start{After: seq}, nil
	}
	if v := q.Get("since"); v != "" {
		t, err := ParseSince(v)
		return journal.Start{Since: t}, err
	}
	n := defaultRecent
	if v := q.Get("recent"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 0 || n > maxRecent {
			return journal.Start{}, fmt.Errorf("recent %q is not a count from 0 to %d", v, maxRecent)
		}
	}
	return journal.Start{Last: n}, nil
}

// ParseSince reads a start time given as a duration back from now ("1h")
// or as a time (RFC 3339): ?since= and the CLI's --since.
func ParseSince(s string) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return time.Now().Add(-d), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("since %q is neither a duration (1h) nor a time (RFC 3339, e.g. 2026-12-01T10:00:00Z)", s)
	}
	return t, nil
}

// stream writes entries as NDJSON, or as server-sent events (each with
// its seq as id) when the client asks for text/event-stream.
type stream struct {
	w       http.ResponseWriter
	r       *http.Request
	sse     bool
	enc     *json.Encoder
	flusher http.Flusher
	started bool
	follow  bool
}

func newStream(w http.ResponseWriter, r *http.Request) *stream {
	s := &stream{w: w, r: r, sse: r.Header.Get("Accept") == "text/event-stream", enc: json.NewEncoder(w),
		follow: r.URL.Query().Get("follow") != ""}
	s.flusher, _ = w.(http.Flusher)
	if s.follow {
		s.start() // a follower knows at once it is connected
	}
	return s
}

func (s *stream) start() {
	if s.started {
		return
	}
	s.started = true
	if s.sse {
		s.w.Header().Set("Content-Type", "text/event-stream")
	} else {
		s.w.Header().Set("Content-Type", "application/x-ndjson")
	}
	s.w.Header().Set("Cache-Control", "no-store")
	s.w.WriteHeader(http.StatusOK)
	s.flush() // a follower sees the answer before the first line
}

func (s *stream) flush() {
	if s.flusher != nil {
		s.flusher.Flush()
	}
}

// send writes one entry; while following, each is flushed at once.
func (s *stream) send(seq uint64, v any) error {
	s.start()
	if s.sse {
		if _, err := fmt.Fprintf(s.w, "id: %d\ndata: ", seq); err != nil {
			return err
		}
	}
	if err := s.enc.Encode(v); err != nil { // Encode ends the JSON with "\n"
		return err
	}
	if s.sse {
		if _, err := fmt.Fprint(s.w, "\n"); err != nil {
			return err
		}
	}
	if s.follow {
		s.flush()
	}
	return nil
}

// end finishes the answer: an error before anything was sent is the
// answer's status; after (always when following), the stream just ends
// and the error is logged.
func (s *stream) end(err error, log *slog.Logger, doing string) {
	if err != nil && s.r.Context().Err() == nil {
		if !s.started {
			writeError(s.w, http.StatusServiceUnavailable, doing+": "+err.Error())
			return
		}
		log.Warn(doing, "err", err)
	}
	s.start()
	s.flush()
}
