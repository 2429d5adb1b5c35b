package bus

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"strings"
)

// Role is what a NATS client is to the platform; its subject permissions
// (Permissions) follow from it.
type Role string

// The roles of NATS clients.
const (
	// RoleController is a controller: it sends cell commands and staging
	// requests and handles heartbeats, instance changes, logs, wake
	// requests and router activity.
	RoleController Role = "controller"
	// RoleCell is a cell's agent: it sends its own heartbeats, instance
	// changes and logs and handles its own commands and staging requests.
	RoleCell Role = "cell"
	// RoleRouter is a router: it sends wake requests and its activity.
	RoleRouter Role = "router"
)

// Identity is who an authenticated NATS client is: its role and, for
// RoleCell, the cell id it speaks for (empty for the other roles).
type Identity struct {
	Role Role
	Cell string
}

// Validate checks that the identity names a known role, and a cell
// exactly when the role is RoleCell.
func (id Identity) Validate() error {
	switch id.Role {
	case RoleController, RoleRouter:
		if id.Cell != "" {
			return fmt.Errorf("NATS identity of role %s names a cell (%q): only cells do", id.Role, id.Cell)
		}
	case RoleCell:
		// Its subjects and inbox hold Token(Cell): a '.' (a host's full
		// name) becomes '_', so cells "a.b" and "a_b" are one to NATS.
		if id.Cell == "" || strings.ContainsAny(id.Cell, "*> \t\r\n") {
			return fmt.Errorf("NATS identity of role cell needs a cell id without '*', '>' or spaces, got %q", id.Cell)
		}
	default:
		return fmt.Errorf("NATS identity has unknown role %q (want controller, cell or router)", id.Role)
	}
	return nil
}

// String names the identity for logs: "controller", "router" or
// "cell <id>".
func (id Identity) String() string {
	if id.Role == RoleCell {
		return "cell " + id.Cell
	}
	return string(id.Role)
}

// Authenticator decides who a connecting NATS client is from the user and
// password it presents. It returns ErrUnknownUser for a user it does not
// know (so that FirstOf may ask the next one) and another error to refuse
// the client outright. Its errors must never carry the password.
type Authenticator func(user, password string) (Identity, error)

// Errors of authenticators.
var (
	// ErrUnknownUser is returned for a user an authenticator does not know.
	ErrUnknownUser = errors.New("unknown NATS user")
	// ErrBadPassword is returned for a known user with a wrong password.
	ErrBadPassword = errors.New("wrong NATS password")
)

// FirstOf asks each authenticator in turn; the first that knows the user
// (returns anything but ErrUnknownUser) decides. Nil authenticators are
// skipped.
func FirstOf(auths ...Authenticator) Authenticator {
	return func(user, password string) (Identity, error) {
		for _, a := range auths {
			if a == nil {
				continue
			}
			id, err := a(user, password)
			if errors.Is(err, ErrUnknownUser) {
				continue
			}
			return id, err
		}
		return Identity{}, fmt.Errorf("NATS user %q: %w", user, ErrUnknownUser)
	}
}

// Credential is one NATS user of a static table: its name, password and
// identity.
type Credential struct {
	User     string
	Password string
	Identity Identity
}

// StaticUsers authenticates against a fixed table of credentials,
// comparing passwords in constant time (as SHA-256 sums, so that neither
// length nor content leaks through timing). Every credential must have a
// user, a password and a valid identity, and user names must be unique.
func StaticUsers(creds ...Credential) (Authenticator, error) {
	type entry struct {
		sum [sha256.Size]byte
		id  Identity
	}
	table := make(map[string]entry, len(creds))
	for _, c := range creds {
		if c.User == "" || c.Password == "" {
			return nil, fmt.Errorf("NATS user %q: a user and a password are both needed", c.User)
		}
		if err := c.Identity.Validate(); err != nil {
			return nil, fmt.Errorf("NATS user %q: %w", c.User, err)
		}
		if _, dup := table[c.User]; dup {
			return nil, fmt.Errorf("NATS user %q is given twice", c.User)
		}
		table[c.User] = entry{sha256.Sum256([]byte(c.Password)), c.Identity}
	}
	return func(user, password string) (Identity, error) {
		e, ok := table[user]
		sum := sha256.Sum256([]byte(password))
		if !ok {
			subtle.ConstantTimeCompare(sum[:], sum[:]) // the same work as a known user
			return Identity{}, fmt.Errorf("NATS user %q: %w", user, ErrUnknownUser)
		}
		if subtle.ConstantTimeCompare(sum[:], e.sum[:]) != 1 {
			return Identity{}, fmt.Errorf("NATS user %q: %w", user, ErrBadPassword)
		}
		return e.id, nil
	}, nil
}
