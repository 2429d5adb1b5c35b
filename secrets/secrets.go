// Package secrets holds the platform's own keys and what they protect:
// the credentials of service bindings, sealed (AES-256-GCM) before they
// are stored in Consul KV, and the credentials of user-provided services,
// committed to git encrypted to the platform's age public key (the SOPS
// model Flux uses) and decrypted only by the controller. Only controllers
// hold the keys (a folder of theirs; `driftless dev` makes one in its data
// folder); nothing here logs or returns a secret in an error.
package secrets

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"filippo.io/age"
	"filippo.io/age/armor"
)

// File names of the keys in their folder.
const (
	sealKeyFile = "seal.key"
	ageKeyFile  = "age.key"
)

// sealPrefix versions sealed values.
const sealPrefix = "v1:"

// Keys are the platform's keys.
type Keys struct {
	aead     cipher.AEAD
	identity *age.X25519Identity
}

// LoadOrCreate reads the keys in dir, making the ones missing (dir is
// created 0700, each key file 0600). Controllers that stand in for each
// other must share the folder's content.
func LoadOrCreate(dir string) (*Keys, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("making the keys folder %s: %w", dir, err)
	}
	seal, err := readOrMake(filepath.Join(dir, sealKeyFile), func() ([]byte, error) {
		key := make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			return nil, err
		}
		return []byte(base64.StdEncoding.EncodeToString(key) + "\n"), nil
	})
	if err != nil {
		return nil, err
	}
	ageKey, err := readOrMake(filepath.Join(dir, ageKeyFile), func() ([]byte, error) {
		id, err := age.GenerateX25519Identity()
		if err != nil {
			return nil, err
		}
		return []byte("# driftless: user-provided service credentials are encrypted to\n# public key: " + id.Recipient().String() + "\n" + id.String() + "\n"), nil
	})
	if err != nil {
		return nil, err
	}
	return parseKeys(seal, ageKey)
}

// readOrMake reads path, or writes what make returns there first.
func readOrMake(path string, make func() ([]byte, error)) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err == nil {
		return data, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("reading key %s: %w", path, err)
	}
	data, err = make()
	if err != nil {
		return nil, fmt.Errorf("making key %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return os.ReadFile(path) // another process made it first
	}
	if err != nil {
		return nil, fmt.Errorf("writing key %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return nil, fmt.Errorf("writing key %s: %w", path, err)
	}
	return data, f.Close()
}

// parseKeys reads the two key files' content.
func parseKeys(seal, ageKey []byte) (*Keys, error) {
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(seal)))
	if err != nil || len(raw) != 32 {
		return nil, errors.New("the seal key is not 32 bytes of base64")
	}
	block, err := aes.NewCipher(raw)
	if err != nil {
		return nil, fmt.Errorf("the seal key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("the seal key: %w", err)
	}
	var id *age.X25519Identity
	for _, line := range strings.Split(string(ageKey), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if id, err = age.ParseX25519Identity(line); err != nil {
			return nil, errors.New("the age key is not an age X25519 identity")
		}
		break
	}
	if id == nil {
		return nil, errors.New("the age key file holds no identity")
	}
	return &Keys{aead: aead, identity: id}, nil
}

// Seal encrypts plain for storage: "v1:" and the base64 of a random nonce
// and the AES-GCM ciphertext. aad binds it to where it is stored (a
// sealed value moved elsewhere does not open).
func (k *Keys) Seal(plain []byte, aad string) (string, error) {
	nonce := make([]byte, k.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return "", fmt.Errorf("sealing: %w", err)
	}
	out := k.aead.Seal(nonce, nonce, plain, []byte(aad))
	return sealPrefix + base64.StdEncoding.EncodeToString(out), nil
}

// Open decrypts what Seal made with the same aad.
func (k *Keys) Open(sealed, aad string) ([]byte, error) {
	b64, ok := strings.CutPrefix(sealed, sealPrefix)
	if !ok {
		return nil, errors.New("opening a sealed value: not sealed by this platform (no v1: prefix)")
	}
	data, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || len(data) < k.aead.NonceSize() {
		return nil, errors.New("opening a sealed value: malformed")
	}
	plain, err := k.aead.Open(nil, data[:k.aead.NonceSize()], data[k.aead.NonceSize():], []byte(aad))
	if err != nil {
		return nil, errors.New("opening a sealed value: wrong key, or the value was changed or moved")
	}
	return plain, nil
}

// Recipient is the platform's age public key ("age1…"): what user-provided
// credentials are encrypted to.
func (k *Keys) Recipient() string { return k.identity.Recipient().String() }

// Decrypt opens an armored age ciphertext encrypted to the platform.
func (k *Keys) Decrypt(armored string) ([]byte, error) {
	r, err := age.Decrypt(armor.NewReader(strings.NewReader(strings.TrimSpace(armored)+"\n")), k.identity)
	if err != nil {
		return nil, fmt.Errorf("decrypting with the platform's age key: %w", err)
	}
	plain, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("decrypting with the platform's age key: %w", err)
	}
	return plain, nil
}

// Encrypt encrypts plain to an age recipient ("age1…"), armored: what
// `driftless secrets encrypt` prints for a services.yml.
func Encrypt(recipient string, plain []byte) (string, error) {
	rs, err := age.ParseRecipients(strings.NewReader(recipient))
	if err != nil {
		return "", fmt.Errorf("the platform's public key %q: %w", recipient, err)
	}
	var buf bytes.Buffer
	aw := armor.NewWriter(&buf)
	w, err := age.Encrypt(aw, rs...)
	if err != nil {
		return "", fmt.Errorf("encrypting: %w", err)
	}
	if _, err := w.Write(plain); err != nil {
		return "", fmt.Errorf("encrypting: %w", err)
	}
	if err := w.Close(); err != nil {
		return "", fmt.Errorf("encrypting: %w", err)
	}
	if err := aw.Close(); err != nil {
		return "", fmt.Errorf("encrypting: %w", err)
	}
	return buf.String(), nil
}
