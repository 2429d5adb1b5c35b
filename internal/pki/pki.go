// Package pki makes the certificate authority and the API's certificate
// that `driftless dev` serves HTTPS with: a private CA kept in dev's data
// folder, which the CLI (through its configuration) and the cell trust.
// Past one host, operators bring their own certificates (--tls-cert,
// --tls-key) and CA (--ca).
package pki

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/driftless/driftless/internal/files"
)

// Files of a Dir.
const (
	CAFile      = "ca.pem"
	caKeyFile   = "ca-key.pem"
	CertFile    = "api.pem"
	KeyFile     = "api-key.pem"
	caLifetime  = 10 * 365 * 24 * time.Hour
	leafLife    = 365 * 24 * time.Hour
	renewBefore = 30 * 24 * time.Hour
)

// Paths are the files a Dir holds.
type Paths struct {
	CA, Cert, Key string
}

// Ensure keeps, in dir, a CA and a server certificate for hosts (names or
// IP addresses), making or renewing what is missing, expiring within 30
// days or no longer naming every host. Keys are readable by their owner
// only.
func Ensure(dir string, hosts []string) (Paths, error) {
	p := Paths{CA: filepath.Join(dir, CAFile), Cert: filepath.Join(dir, CertFile), Key: filepath.Join(dir, KeyFile)}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return p, fmt.Errorf("creating the TLS folder: %w", err)
	}
	ca, caKey, err := ensureCA(dir)
	if err != nil {
		return p, err
	}
	if leaf, err := readCert(p.Cert); err == nil && fresh(leaf) && covers(leaf, hosts) && leaf.CheckSignatureFrom(ca) == nil {
		return p, nil
	}
	if err := issue(p, ca, caKey, hosts); err != nil {
		return p, err
	}
	return p, nil
}

func fresh(c *x509.Certificate) bool { return time.Until(c.NotAfter) > renewBefore }

// covers reports whether c names every host.
func covers(c *x509.Certificate, hosts []string) bool {
	for _, h := range hosts {
		if c.VerifyHostname(h) != nil {
			return false
		}
	}
	return true
}

func ensureCA(dir string) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	certPath, keyPath := filepath.Join(dir, CAFile), filepath.Join(dir, caKeyFile)
	if c, err := readCert(certPath); err == nil && fresh(c) {
		if k, err := readKey(keyPath); err == nil {
			return c, k, nil
		}
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("making the CA's key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "driftless dev CA", Organization: []string{"driftless"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(caLifetime),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("making the CA: %w", err)
	}
	if err := writeKey(keyPath, key); err != nil {
		return nil, nil, err
	}
	if err := writePEM(certPath, "CERTIFICATE", der, 0o644); err != nil {
		return nil, nil, err
	}
	c, err := x509.ParseCertificate(der)
	return c, key, err
}

func issue(p Paths, ca *x509.Certificate, caKey *ecdsa.PrivateKey, hosts []string) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("making the API's key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: "driftless API", Organization: []string{"driftless"}},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(leafLife),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, h := range slices.Compact(slices.Sorted(slices.Values(hosts))) {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else if h != "" {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return fmt.Errorf("making the API's certificate: %w", err)
	}
	if err := writeKey(p.Key, key); err != nil {
		return err
	}
	return writePEM(p.Cert, "CERTIFICATE", der, 0o644)
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	return n
}

func readCert(path string) (*x509.Certificate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	b, _ := pem.Decode(data)
	if b == nil || b.Type != "CERTIFICATE" {
		return nil, errors.New(path + ": no certificate")
	}
	return x509.ParseCertificate(b.Bytes)
}

func readKey(path string) (*ecdsa.PrivateKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	b, _ := pem.Decode(data)
	if b == nil {
		return nil, errors.New(path + ": no key")
	}
	return x509.ParseECPrivateKey(b.Bytes)
}

func writeKey(path string, key *ecdsa.PrivateKey) error {
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return fmt.Errorf("encoding a key: %w", err)
	}
	return writePEM(path, "EC PRIVATE KEY", der, 0o600)
}

func writePEM(path, kind string, der []byte, mode os.FileMode) error {
	var buf bytes.Buffer
	_ = pem.Encode(&buf, &pem.Block{Type: kind, Bytes: der})
	return files.WriteAtomic(path, buf.Bytes(), mode)
}

// Pool reads the PEM certificates of path into a pool of roots.
func Pool(path string) (*x509.CertPool, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading the CA %s: %w", path, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("the CA %s holds no PEM certificate", path)
	}
	return pool, nil
}
