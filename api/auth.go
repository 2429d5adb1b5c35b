package api

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/driftless/driftless/model"
	"github.com/driftless/driftless/policies"
	"github.com/driftless/driftless/tokens"
)

// TokenStore is where the API's credentials live (tokens.Store, in
// Consul KV).
type TokenStore interface {
	Verify(ctx context.Context, tok string) (tokens.Token, error)
	Create(ctx context.Context, req tokens.Request) (string, tokens.Token, error)
	List(ctx context.Context) ([]tokens.Listed, error)
	Lookup(ctx context.Context, name string) (tokens.Token, bool, error)
	Revoke(ctx context.Context, name string) (tokens.Token, error)
}

// Verbs and resources the API asks the policies about (driftless.authz;
// docs/security.md lists who may do which).
const (
	VerbRead   = "read"
	VerbSync   = "sync"
	VerbManage = "manage"
	VerbPull   = "pull"
	VerbPush   = "push"

	ResourceApps      = "apps"
	ResourceEnv       = "env"
	ResourceLogs      = "logs"
	ResourceEvents    = "events"
	ResourcePreviews  = "previews"
	ResourceServices  = "services"
	ResourceSources   = "sources"
	ResourceStatus    = "status"
	ResourceBrokers   = "brokers"
	ResourcePublicKey = "public-key"
	ResourceTokens    = "tokens"
	ResourceBlobs     = "blobs"
)

// Failed authentication is limited per client address: a burst of
// failBurst, then one every failEvery; past that the address gets 429.
const (
	failBurst = 10
	failEvery = 6 * time.Second
)

type subjectKey struct{}

// subjectOf is the token a request was authenticated with.
func subjectOf(ctx context.Context) (tokens.Token, bool) {
	t, ok := ctx.Value(subjectKey{}).(tokens.Token)
	return t, ok
}

// auth authenticates requests and asks the policies about them.
type auth struct {
	store   TokenStore
	backend Backend
	mu      sync.Mutex
	fails   map[string]*rate.Limiter
}

func newAuth(store TokenStore, backend Backend) *auth {
	return &auth{store: store, backend: backend, fails: map[string]*rate.Limiter{}}
}

// clientAddr is the address a request came from, without its port.
func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// limiter is the failure budget of one client address.
func (a *auth) limiter(addr string) *rate.Limiter {
	a.mu.Lock()
	defer a.mu.Unlock()
	l := a.fails[addr]
	if l == nil {
		if len(a.fails) > 10000 { // forget addresses whose budget is whole again
			for k, v := range a.fails {
				if v.Tokens() >= failBurst {
					delete(a.fails, k)
				}
			}
		}
		l = rate.NewLimiter(rate.Every(failEvery), failBurst)
		a.fails[addr] = l
	}
	return l
}

// bearer is the token a request carries: "Authorization: Bearer T", or
// HTTP Basic with T as the password (how registry clients such as
// containerd send credentials to the blob store).
func bearer(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if t, ok := strings.CutPrefix(h, "Bearer "); ok {
		return strings.TrimSpace(t)
	}
	if _, pass, ok := r.BasicAuth(); ok {
		return pass
	}
	return ""
}

// authenticate wraps h: a request without a valid token gets 401 (and is
// recorded as an event); past its address's failure budget, 429. A valid
// token is served whatever its address's budget, so that a client failing
// behind the same address (a NAT, a misconfigured pipeline on the same
// host) cannot lock the others out; tokens are 256-bit random, so the
// budget is there against load and noise, not guessing.
func (a *auth) authenticate(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		addr := clientAddr(r)
		tok := bearer(r)
		var err error
		var t tokens.Token
		if tok == "" {
			err = errors.New("no token: send Authorization: Bearer <token> (driftless token create; `driftless dev` writes one into the CLI's configuration)")
		} else {
			t, err = a.store.Verify(r.Context(), tok)
		}
		if err == nil {
			h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), subjectKey{}, t)))
			return
		}
		if !a.limiter(addr).Allow() {
			w.Header().Set("Retry-After", strconv.Itoa(int(failEvery/time.Second)))
			writeError(w, http.StatusTooManyRequests, "too many failed authentications from "+addr+": try again later")
			return
		}
		a.backend.RecordEvent(model.Event{Time: time.Now(), Kind: model.EventAuthFailed,
			Message: fmt.Sprintf("refused %s %s from %s: %v%s", r.Method, r.URL.Path, addr, err, tokenHint(tok))})
		realm := "Bearer"
		if strings.HasPrefix(r.URL.Path, "/v2/") {
			realm = "Basic" // registry clients answer a Basic challenge
		}
		w.Header().Set("WWW-Authenticate", realm+` realm="driftless"`)
		writeError(w, http.StatusUnauthorized, err.Error())
	})
}

// tokenHint names the id of a well-formed token in an event (never its
// secret), so that an operator can tell which one fails.
func tokenHint(tok string) string {
	if id, _, err := tokens.Parse(tok); err == nil {
		return " (token id " + id + ")"
	}
	return ""
}

// asSubject is a token as the policies see it.
func asSubject(t tokens.Token) policies.Subject {
	return policies.Subject{Name: t.Name, Role: t.Role, Spaces: t.Spaces}
}

// decide asks the policies whether the request's token may do verb on
// resource in space.
func (a *auth) decide(ctx context.Context, verb, resource, space string) (policies.Decision, policies.AuthzInput, error) {
	t, ok := subjectOf(ctx)
	if !ok {
		return policies.Decision{Reasons: []string{"not authenticated"}}, policies.AuthzInput{}, nil
	}
	in := policies.AuthzInput{Subject: asSubject(t), Verb: verb, Resource: resource, Space: space}
	d, err := a.backend.Authorize(ctx, in)
	return d, in, err
}

// allowed reports whether the request may do verb on resource in space,
// and otherwise answers 403 with the reason.
func (a *auth) allowed(w http.ResponseWriter, r *http.Request, verb, resource, space string) bool {
	d, in, err := a.decide(r.Context(), verb, resource, space)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "deciding whether the token may "+verb+" "+resource+": "+err.Error())
		return false
	}
	if !d.Allow {
		writeError(w, http.StatusForbidden, d.Reason(in))
		return false
	}
	return true
}

// may reports, quietly, whether the request may do verb on resource in
// space (for filtering lists); decisions are remembered per request by
// the caller's filter.
func (a *auth) may(ctx context.Context, verb, resource, space string) bool {
	d, _, err := a.decide(ctx, verb, resource, space)
	return err == nil && d.Allow
}

// filter keeps the spaces in which the request may do verb on resource,
// asking the policies once per space.
type filter struct {
	a              *auth
	ctx            context.Context
	verb, resource string
	seen           map[string]bool
}

func (a *auth) filter(ctx context.Context, verb, resource string) *filter {
	return &filter{a: a, ctx: ctx, verb: verb, resource: resource, seen: map[string]bool{}}
}

// in reports whether space passes.
func (f *filter) in(space string) bool {
	ok, known := f.seen[space]
	if !known {
		ok = f.a.may(f.ctx, f.verb, f.resource, space)
		f.seen[space] = ok
	}
	return ok
}

// guard wraps h with a decision that does not depend on the request's
// body: verb on resource in the platform as a whole.
func (a *auth) guard(verb, resource string, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if a.allowed(w, r, verb, resource, "") {
			h(w, r)
		}
	}
}

// blobs guards the blob store: reading is pulling, anything else pushing.
func (a *auth) blobs(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		verb := VerbPush
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			verb = VerbPull
		}
		if a.allowed(w, r, verb, ResourceBlobs, "") {
			h.ServeHTTP(w, r)
		}
	})
}
