package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"

	"github.com/nats-io/nats.go"

	"github.com/driftless/driftless/bus"
	"github.com/driftless/driftless/model"
)

// recentLines is how many lines per app the hub remembers.
const recentLines = 500

// LogHub follows every app's log subject on NATS, remembers the latest
// lines of each app and fans lines out to followers (`driftless logs`).
type LogHub struct {
	sub *nats.Subscription

	mu        sync.Mutex
	recent    map[string][]model.LogLine
	followers map[string]map[chan model.LogLine]struct{}
}

// NewLogHub subscribes to the log subjects of every app.
func NewLogHub(nc *nats.Conn) (*LogHub, error) {
	h := &LogHub{recent: make(map[string][]model.LogLine), followers: make(map[string]map[chan model.LogLine]struct{})}
	sub, err := nc.Subscribe(bus.LogsWildcard, func(m *nats.Msg) {
		var l model.LogLine
		if bus.Decode(m, &l) == nil { // a line that does not decode is dropped
			h.add(l)
		}
	})
	if err != nil {
		return nil, fmt.Errorf("subscribing to app logs: %w", err)
	}
	h.sub = sub
	return h, nil
}

// Close stops following.
func (h *LogHub) Close() { _ = h.sub.Unsubscribe() }

func hubKey(space, app string) string { return space + "/" + app }

func (h *LogHub) add(l model.LogLine) {
	k := hubKey(l.Space, l.App)
	h.mu.Lock()
	defer h.mu.Unlock()
	r := append(h.recent[k], l)
	if len(r) > recentLines {
		r = r[len(r)-recentLines:]
	}
	h.recent[k] = r
	for ch := range h.followers[k] {
		select {
		case ch <- l:
		default: // a slow follower misses lines rather than blocking the hub
		}
	}
}

// Recent returns the remembered lines of an app, oldest first.
func (h *LogHub) Recent(space, app string) []model.LogLine {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]model.LogLine(nil), h.recent[hubKey(space, app)]...)
}

// Follow returns a channel of the app's new lines and a function that
// stops following.
func (h *LogHub) Follow(space, app string) (<-chan model.LogLine, func()) {
	k := hubKey(space, app)
	ch := make(chan model.LogLine, 256)
	h.mu.Lock()
	if h.followers[k] == nil {
		h.followers[k] = make(map[chan model.LogLine]struct{})
	}
	h.followers[k][ch] = struct{}{}
	h.mu.Unlock()
	return ch, func() {
		h.mu.Lock()
		delete(h.followers[k], ch)
		h.mu.Unlock()
	}
}

// logs streams an app's log lines as JSON, one per line: the recent ones,
// then (with follow) new ones until the client goes away. ?source=STG keeps
// only staging lines.
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
	source := model.LogSource(q.Get("source"))
	keep := func(l model.LogLine) bool { return source == "" || l.Source == source }
	var lines <-chan model.LogLine
	if q.Get("follow") != "" {
		ch, stop := s.cfg.Logs.Follow(space, name)
		defer stop()
		lines = ch
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	enc := json.NewEncoder(w)
	flusher, _ := w.(http.Flusher)
	for _, l := range s.cfg.Logs.Recent(space, name) {
		if keep(l) {
			_ = enc.Encode(l)
		}
	}
	if flusher != nil {
		flusher.Flush()
	}
	if lines == nil {
		return
	}
	for {
		select {
		case <-r.Context().Done():
			return
		case l := <-lines:
			if !keep(l) {
				continue
			}
			if err := enc.Encode(l); err != nil {
				return
			}
			if flusher != nil {
				flusher.Flush()
			}
		}
	}
}
