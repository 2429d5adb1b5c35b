package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"time"

	"github.com/driftless/driftless/model"
	"github.com/driftless/driftless/tokens"
)

// TokenRequest is POST /v1/tokens: a token to make.
type TokenRequest struct {
	Name   string   `json:"name"`
	Role   string   `json:"role"`
	Spaces []string `json:"spaces,omitempty"`
	// Expires is its lifetime as a Go duration ("24h"); "" is 90 days.
	Expires string `json:"expires,omitempty"`
}

// TokenInfo describes a token, never its secret.
type TokenInfo struct {
	Name      string    `json:"name"`
	Role      string    `json:"role"`
	Spaces    []string  `json:"spaces,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
	CreatedBy string    `json:"created_by,omitempty"`
	LastUsed  time.Time `json:"last_used,omitzero"`
	Expired   bool      `json:"expired,omitempty"`
}

// TokenCreated is the answer to POST /v1/tokens: the token, shown this
// once, and its description.
type TokenCreated struct {
	Token string    `json:"token"`
	Info  TokenInfo `json:"info"`
}

// CanResult is GET /v1/can: the policies' decision on a question, and why.
type CanResult struct {
	Token    string   `json:"token"`
	Role     string   `json:"role"`
	Spaces   []string `json:"spaces,omitempty"`
	Verb     string   `json:"verb"`
	Resource string   `json:"resource"`
	Space    string   `json:"space,omitempty"`
	Allow    bool     `json:"allow"`
	Reason   string   `json:"reason,omitempty"`
}

func tokenInfo(t tokens.Token, lastUsed time.Time) TokenInfo {
	return TokenInfo{Name: t.Name, Role: t.Role, Spaces: t.Spaces, CreatedAt: t.CreatedAt, ExpiresAt: t.ExpiresAt,
		CreatedBy: t.CreatedBy, LastUsed: lastUsed, Expired: t.Expired(time.Now())}
}

func (s *server) createToken(w http.ResponseWriter, r *http.Request) {
	var req TokenRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10)).Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, "decoding the token request: "+err.Error())
		return
	}
	var ttl time.Duration
	if req.Expires != "" {
		d, err := time.ParseDuration(req.Expires)
		if err != nil || d <= 0 {
			writeError(w, http.StatusBadRequest, "expires must be a positive duration such as 24h or 2160h")
			return
		}
		ttl = d
	}
	by, _ := subjectOf(r.Context())
	tok, t, err := s.cfg.Tokens.Create(r.Context(), tokens.Request{Name: req.Name, Role: req.Role, Spaces: req.Spaces, TTL: ttl, CreatedBy: by.Name})
	switch {
	case errors.Is(err, tokens.ErrNameTaken):
		writeError(w, http.StatusConflict, err.Error())
		return
	case err != nil:
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	s.cfg.Backend.RecordEvent(model.Event{Time: time.Now(), Kind: model.EventTokenCreated,
		Message: "token " + t.Name + " (role " + t.Role + ") made by " + by.Name + ", expires " + t.ExpiresAt.Format(time.RFC3339)})
	writeJSON(w, http.StatusCreated, TokenCreated{Token: tok, Info: tokenInfo(t, time.Time{})})
}

func (s *server) listTokens(w http.ResponseWriter, r *http.Request) {
	ls, err := s.cfg.Tokens.List(r.Context())
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	out := make([]TokenInfo, 0, len(ls))
	for _, l := range ls {
		out = append(out, tokenInfo(l.Token, l.LastUsed))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *server) revokeToken(w http.ResponseWriter, r *http.Request) {
	t, err := s.cfg.Tokens.Revoke(r.Context(), r.PathValue("name"))
	switch {
	case errors.Is(err, tokens.ErrNoSuchToken):
		writeError(w, http.StatusNotFound, err.Error())
		return
	case err != nil:
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	by, _ := subjectOf(r.Context())
	s.cfg.Backend.RecordEvent(model.Event{Time: time.Now(), Kind: model.EventTokenRevoked, Message: "token " + t.Name + " revoked by " + by.Name})
	writeJSON(w, http.StatusOK, tokenInfo(t, time.Time{}))
}

// can explains a decision: of the request's own token, or (for those who
// may read tokens) of the token named by ?token=.
func (s *server) can(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	verb, resource, space := q.Get("verb"), q.Get("resource"), q.Get("space")
	if verb == "" || resource == "" {
		writeError(w, http.StatusBadRequest, "say what to ask: ?verb=read&resource=apps[&space=dev][&token=NAME]")
		return
	}
	t, _ := subjectOf(r.Context())
	if name := q.Get("token"); name != "" && name != t.Name {
		if !s.auth.allowed(w, r, VerbRead, ResourceTokens, "") {
			return
		}
		other, found, err := s.cfg.Tokens.Lookup(r.Context(), name)
		if err != nil {
			writeError(w, http.StatusInternalServerError, err.Error())
			return
		}
		if !found {
			writeError(w, http.StatusNotFound, "no token named "+name)
			return
		}
		t = other
	}
	ctx := context.WithValue(r.Context(), subjectKey{}, t)
	d, in, err := s.auth.decide(ctx, verb, resource, space)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	res := CanResult{Token: t.Name, Role: t.Role, Spaces: t.Spaces, Verb: verb, Resource: resource, Space: space, Allow: d.Allow}
	if !d.Allow {
		res.Reason = d.Reason(in)
	}
	writeJSON(w, http.StatusOK, res)
}

// CreateToken makes a token; its secret is in the answer only.
func (c *Client) CreateToken(ctx context.Context, req TokenRequest) (TokenCreated, error) {
	var out TokenCreated
	return out, c.send(ctx, http.MethodPost, "/v1/tokens", req, &out)
}

// Tokens lists the tokens.
func (c *Client) Tokens(ctx context.Context) ([]TokenInfo, error) {
	var out []TokenInfo
	return out, c.do(ctx, http.MethodGet, "/v1/tokens", nil, &out)
}

// RevokeToken revokes the token named name.
func (c *Client) RevokeToken(ctx context.Context, name string) (TokenInfo, error) {
	var out TokenInfo
	return out, c.do(ctx, http.MethodDelete, "/v1/tokens/"+url.PathEscape(name), nil, &out)
}

// Can asks whether a token (this client's when tokenName is "") may do
// verb on resource in space, and why.
func (c *Client) Can(ctx context.Context, verb, resource, space, tokenName string) (CanResult, error) {
	q := url.Values{"verb": {verb}, "resource": {resource}}
	if space != "" {
		q.Set("space", space)
	}
	if tokenName != "" {
		q.Set("token", tokenName)
	}
	var out CanResult
	return out, c.do(ctx, http.MethodGet, "/v1/can", q, &out)
}
