package api

import (
	"net/http"

	"github.com/driftless/driftless/journal"
	"github.com/driftless/driftless/model"
)

// events answers the kept events (the timeline): of one app with
// ?app= (and its space's commits), of one ?space=, or all the token may
// read; from ?after=, ?since= or the last ?recent=N (default 1,000).
// Without ?follow=1 the answer is a JSON array; with it, a stream of
// events (NDJSON, or server-sent events) that goes on until the client
// goes away.
func (s *server) events(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	start, err := readStart(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	readable := s.auth.filter(r.Context(), VerbRead, ResourceEvents)
	eq := journal.EventQuery{Space: q.Get("space"), App: q.Get("app"), Start: start, Follow: q.Get("follow") != ""}
	if eq.App != "" && eq.Space == "" {
		if space, err := s.resolveSpace(r.Context(), eq.App, ""); err == nil {
			eq.Space = space
		}
	}
	if !eq.Follow {
		evs := []model.Event{}
		err := s.cfg.Journal.Events(r.Context(), eq, func(ev model.Event) error {
			if readable.in(ev.Space) {
				evs = append(evs, ev)
			}
			return nil
		})
		if err != nil {
			writeError(w, http.StatusServiceUnavailable, "reading events: "+err.Error())
			return
		}
		writeJSON(w, http.StatusOK, evs)
		return
	}
	out := newStream(w, r)
	err = s.cfg.Journal.Events(r.Context(), eq, func(ev model.Event) error {
		if !readable.in(ev.Space) {
			return nil
		}
		return out.send(ev.Seq, ev)
	})
	out.end(err, s.cfg.Log, "reading events")
}
