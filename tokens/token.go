// Package tokens is the platform's API credentials: bearer tokens printed
// once when made, kept only as a hash in Consul KV (store.go), each with a
// name, a role, the spaces it is scoped to and an expiry. Who may do what
// with a role is not decided here but by the policies (package
// driftless.authz, policies/authz.go); this package only says whose a
// token is.
//
// A token reads "dlt_<id>_<secret>": the id (12 hex digits) finds the
// record, the secret (32 random bytes, base64url) is checked against the
// record's SHA-256 in constant time. A 256-bit random secret needs no
// slow hash: nothing can be guessed from its digest.
package tokens

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
)

// Prefix starts every token, so that leaked ones are easy to find by
// secret scanners and a token is never mistaken for another credential.
const Prefix = "dlt_"

const (
	idBytes     = 6
	secretBytes = 32
)

// DefaultTTL is how long a token lives when its maker gives no expiry.
const DefaultTTL = 90 * 24 * time.Hour

// Built-in roles (policies/bundle/authz.rego says what each may do). A
// platform's own policies may define others: any name matching RoleRE.
const (
	RoleAdmin          = "admin"
	RoleSpaceDeveloper = "space-developer"
	RoleSpaceAuditor   = "space-auditor"
	RoleCI             = "ci"
	// RoleCell is a cell's credential: it pulls droplets and stacks and
	// uploads staging results (the blob store).
	RoleCell = "cell"
	// RoleRouter is a router's NATS credential (to wake sleeping apps and
	// report activity to a controller's embedded server); no API rights.
	RoleRouter = "router"
)

// AllSpaces scopes a token of a space role to every space.
const AllSpaces = "*"

// SpaceRoles are the built-in roles that act in spaces: their tokens must
// name the spaces they may act in.
var SpaceRoles = map[string]bool{RoleSpaceDeveloper: true, RoleSpaceAuditor: true, RoleCI: true}

// NameRE is what a token's name and RoleRE a role's look like.
var (
	NameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,62}$`)
	RoleRE = regexp.MustCompile(`^[a-z][a-z0-9-]{0,30}$`)
)

// Token is a token's record: everything about it but its secret.
type Token struct {
	ID     string   `json:"id"`
	Name   string   `json:"name"`
	Role   string   `json:"role"`
	Spaces []string `json:"spaces,omitempty"`
	// Hash is the hex SHA-256 of the secret.
	Hash      string    `json:"hash"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
	// CreatedBy names the token that made this one ("" for the first).
	CreatedBy string `json:"created_by,omitempty"`
}

// Expired reports whether the token is past its expiry at now.
func (t Token) Expired(now time.Time) bool { return !now.Before(t.ExpiresAt) }

// InSpace reports whether the token is scoped to space ("" is the
// platform, which every token is in).
func (t Token) InSpace(space string) bool {
	if space == "" {
		return true
	}
	for _, s := range t.Spaces {
		if s == space || s == AllSpaces {
			return true
		}
	}
	return false
}

// Validate checks a token request's name, role and spaces.
func Validate(name, role string, spaces []string) error {
	if !NameRE.MatchString(name) {
		return fmt.Errorf("token name %q: use 1-63 lower-case letters, digits, '.', '_' or '-'", name)
	}
	if !RoleRE.MatchString(role) {
		return fmt.Errorf("role %q: use lower-case letters, digits and '-'", role)
	}
	if SpaceRoles[role] && len(spaces) == 0 {
		return fmt.Errorf("role %s acts in spaces: give --space (or --space '*' for every space)", role)
	}
	for _, s := range spaces {
		if s == "" {
			return errors.New("an empty space name")
		}
	}
	return nil
}

// newSecret makes a token's id and the whole token string.
func newSecret() (id, token string, err error) {
	b := make([]byte, idBytes+secretBytes)
	if _, err := rand.Read(b); err != nil {
		return "", "", fmt.Errorf("reading random bytes for a token: %w", err)
	}
	id = hex.EncodeToString(b[:idBytes])
	return id, Prefix + id + "_" + base64.RawURLEncoding.EncodeToString(b[idBytes:]), nil
}

// ErrMalformed is Parse's error for a string that is not a token.
var ErrMalformed = errors.New("not a driftless token (they read dlt_<id>_<secret>)")

// Parse splits a token into its id and secret, checking only its form.
func Parse(s string) (id, secret string, err error) {
	rest, ok := strings.CutPrefix(s, Prefix)
	if !ok {
		return "", "", ErrMalformed
	}
	id, secret, ok = strings.Cut(rest, "_")
	if !ok || len(id) != 2*idBytes || len(secret) != base64.RawURLEncoding.EncodedLen(secretBytes) {
		return "", "", ErrMalformed
	}
	if _, err := hex.DecodeString(id); err != nil || strings.ToLower(id) != id {
		return "", "", ErrMalformed
	}
	if _, err := base64.RawURLEncoding.Strict().DecodeString(secret); err != nil {
		return "", "", ErrMalformed
	}
	return id, secret, nil
}

// hash is the hex SHA-256 of a secret, as records keep it.
func hash(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// matches compares a secret with a record's hash in constant time.
func (t Token) matches(secret string) bool {
	return subtle.ConstantTimeCompare([]byte(hash(secret)), []byte(t.Hash)) == 1
}
