package postgres

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
)

// databaseName is the database of an instance: "dl_", the instance id
// lowercased with anything but [a-z0-9_] made "_" (at most 40 characters),
// and 12 hex digits of its SHA-256, so that ids differing only in what was
// replaced get different databases. It fits PostgreSQL's 63 bytes.
func databaseName(instanceID string) string {
	return "dl_" + sanitize(instanceID, 40) + "_" + shortHash(instanceID)
}

// ownerRole is the NOLOGIN role owning an instance's database.
func ownerRole(database string) string { return database + "_owner" }

// bindingRole is the LOGIN role of a binding.
func bindingRole(instanceID, bindingID string) string {
	return "dlb_" + sanitize(bindingID, 40) + "_" + shortHash(instanceID+"/"+bindingID)
}

func sanitize(s string, max int) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		if b.Len() >= max {
			break
		}
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') || r == '_' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	return b.String()
}

func shortHash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:6])
}

// ident quotes a name as an SQL identifier.
func ident(name string) string { return pgx.Identifier{name}.Sanitize() }

// literal quotes s as an SQL string literal (standard_conforming_strings is
// on by default since PostgreSQL 9.1).
func literal(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// newPassword is 32 random bytes, base64url without padding.
func newPassword() (string, error) {
	buf := make([]byte, 32)
	if _, err := rand.Read(buf); err != nil {
		return "", fmt.Errorf("making a password: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(buf), nil
}

// scramIterations is PostgreSQL's default scram_iterations.
const scramIterations = 4096

// scramVerifier is the SCRAM-SHA-256 verifier of password, in the form
// PostgreSQL stores in pg_authid (RFC 5802, 7677): sent as the role's
// PASSWORD, PostgreSQL keeps it as is, so the plain password never reaches
// the server. password is ASCII, which SASLprep leaves unchanged.
func scramVerifier(password string) (string, error) {
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("making a salt: %w", err)
	}
	salted, err := pbkdf2.Key(sha256.New, password, salt, scramIterations, sha256.Size)
	if err != nil {
		return "", fmt.Errorf("deriving the SCRAM key: %w", err)
	}
	mac := func(key []byte, msg string) []byte {
		h := hmac.New(sha256.New, key)
		h.Write([]byte(msg))
		return h.Sum(nil)
	}
	clientKey := mac(salted, "Client Key")
	storedKey := sha256.Sum256(clientKey)
	serverKey := mac(salted, "Server Key")
	enc := base64.StdEncoding.EncodeToString
	return fmt.Sprintf("SCRAM-SHA-256$%d:%s$%s:%s", scramIterations, enc(salt), enc(storedKey[:]), enc(serverKey)), nil
}
