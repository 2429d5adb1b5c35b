package api

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
)

// maxWebhookBody is the largest delivery read; GitHub caps its payloads at
// 25 MB, but a push or pull request event of a sane repository is far
// smaller.
const maxWebhookBody = 5 << 20

// seenDeliveries is how many delivery ids are remembered, to act on a
// delivery sent again (a forge's retry or redelivery) only once.
const seenDeliveries = 10000

// WebhookResult is POST /v1/webhook's answer to an authenticated delivery.
type WebhookResult struct {
	Forge    Forge     `json:"forge"`
	Event    string    `json:"event"`
	Kind     EventKind `json:"kind"`
	Delivery string    `json:"delivery,omitempty"`
	// Status says what was done, in words.
	Status string `json:"status"`
	// Sources are the sources that fetch because of a push.
	Sources []string `json:"sources,omitempty"`
	// Previews are the previews a pull request event deployed or removed.
	Previews []string `json:"previews,omitempty"`
	// PullRequest is the pull request an event was about.
	PullRequest *PullRequest `json:"pull_request,omitempty"`
}

// webhook serves POST /v1/webhook.
type webhook struct {
	secret  string
	backend Backend
	log     *slog.Logger
	seen    *recentIDs
}

func newWebhook(cfg ServerConfig) *webhook {
	return &webhook{secret: cfg.WebhookSecret, backend: cfg.Backend, log: cfg.Log.With("component", "webhook"),
		seen: newRecentIDs(seenDeliveries)}
}

// serve authenticates a delivery and acts on it: a push fetches the
// sources of its repository; a pull request deploys or removes its
// previews (Backend.PullRequest); ping and other events do nothing.
func (h *webhook) serve(w http.ResponseWriter, r *http.Request) {
	if h.secret == "" {
		writeError(w, http.StatusNotFound, "webhooks are disabled: start the controller with --webhook-secret")
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxWebhookBody+1))
	if err != nil {
		writeError(w, http.StatusBadRequest, "reading the webhook body: "+err.Error())
		return
	}
	if len(body) > maxWebhookBody {
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("a webhook body is at most %d bytes", maxWebhookBody))
		return
	}
	d, err := ParseDelivery(r.Header, body, h.secret)
	if errors.Is(err, ErrUnauthorized) {
		h.log.Warn("webhook refused", "remote", r.RemoteAddr, "reason", err)
		writeError(w, http.StatusUnauthorized, err.Error())
		return
	}
	if err != nil {
		h.log.Warn("webhook unreadable", "remote", r.RemoteAddr, "err", err)
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	res := WebhookResult{Forge: d.Forge, Event: d.Event, Kind: d.Kind, Delivery: d.ID, PullRequest: d.PullRequest}
	log := h.log.With("forge", d.Forge, "event", d.Event, "delivery", d.ID)
	if d.ID != "" && !h.seen.add(string(d.Forge)+"/"+d.ID) {
		log.Info("webhook delivery seen before: not acted on again")
		res.Status = "delivery " + d.ID + " was received before: nothing done again"
		writeJSON(w, http.StatusAccepted, res)
		return
	}
	if d.Repo.Path != "" {
		for _, u := range d.RepoURLs {
			ref := d.Repo
			ref.URL = u
			h.backend.SawRepository(ref)
		}
	}
	switch d.Kind {
	case EventPing:
		log.Info("webhook ping")
		res.Status = "pong"
		writeJSON(w, http.StatusOK, res)
	case EventPush:
		res.Sources = h.backend.Trigger(r.Context(), d.RepoURLs)
		if len(res.Sources) == 0 {
			log.Info("webhook push matches no source", "repository", d.RepoURLs, "ref", d.Ref)
			res.Status = "no source matches " + strings.Join(d.RepoURLs, ", ") + ": nothing fetched"
		} else {
			log.Info("webhook push: fetching", "sources", res.Sources, "ref", d.Ref, "after", d.After)
			res.Status = "fetching " + strings.Join(res.Sources, ", ")
		}
		writeJSON(w, http.StatusAccepted, res)
	case EventPullRequest:
		pr := d.PullRequest
		log = log.With("number", pr.Number, "action", pr.Action, "head", pr.HeadSHA)
		res.Previews = h.backend.PullRequest(r.Context(), *pr, d.RepoURLs)
		switch {
		case len(res.Previews) > 0 && pr.Action.Closed():
			log.Info("webhook pull request closed: previews removed", "previews", res.Previews)
			res.Status = "previews removed: " + strings.Join(res.Previews, ", ")
		case len(res.Previews) > 0:
			log.Info("webhook pull request: previews acted on", "previews", res.Previews)
			res.Status = "previews acted on: " + strings.Join(res.Previews, ", ") + " (their preview-deployed events say what was applied)"
		case !pr.Action.Open() && !pr.Action.Closed() && pr.Action != PRLabeled:
			log.Debug("webhook pull request: nothing to do for its action", "raw", pr.RawAction)
			res.Status = "pull request " + pr.RawAction + ": nothing to do for previews"
		default:
			log.Info("webhook pull request: no preview", "repository", d.RepoURLs)
			res.Status = "no preview acted on: no source matches " + strings.Join(d.RepoURLs, ", ") + " (or the pull request has no preview to relabel)"
		}
		writeJSON(w, http.StatusAccepted, res)
	default:
		log.Debug("webhook event ignored")
		res.Status = "event " + d.Event + " is ignored"
		writeJSON(w, http.StatusAccepted, res)
	}
}

// recentIDs remembers the last n ids added.
type recentIDs struct {
	mu   sync.Mutex
	set  map[string]struct{}
	ring []string // the ids in the order added; next is the oldest's slot
	next int
}

func newRecentIDs(n int) *recentIDs {
	return &recentIDs{set: make(map[string]struct{}, n), ring: make([]string, n)}
}

// add records id and reports whether it is new; the oldest id is
// forgotten when n are remembered.
func (r *recentIDs) add(id string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.set[id]; ok {
		return false
	}
	if old := r.ring[r.next]; old != "" {
		delete(r.set, old)
	}
	r.ring[r.next] = id
	r.next = (r.next + 1) % len(r.ring)
	r.set[id] = struct{}{}
	return true
}
