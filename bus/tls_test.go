package bus

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// selfSigned writes a certificate for 127.0.0.1, its own authority, and
// its key; it returns their paths.
func selfSigned(t *testing.T) (cert, key string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "nats-test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cert, key = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(key, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	return cert, key
}

// TestEmbeddedTLS: given a certificate, the embedded server speaks TLS; a
// client trusting its authority connects, one that does not fails.
func TestEmbeddedTLS(t *testing.T) {
	cert, key := selfSigned(t)
	auth, err := StaticUsers(Credential{User: "ctl", Password: "pw", Identity: Identity{Role: RoleController}})
	if err != nil {
		t.Fatal(err)
	}
	e, err := StartEmbedded(EmbeddedConfig{Listen: "127.0.0.1:0", Auth: auth, TLSCert: cert, TLSKey: key, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Shutdown()
	if !strings.HasPrefix(e.URL(), "tls://") {
		t.Errorf("URL %s, want tls://", e.URL())
	}
	tests := []struct {
		name, url, ca string
		ok            bool
	}{
		{"trusting the authority", e.URL(), cert, true},
		{"without the authority", e.URL(), "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			nc, err := Connect(ClientConfig{URL: tt.url, User: "ctl", Password: "pw", Identity: Identity{Role: RoleController}, CAFile: tt.ca,
				ErrorHandler: func(*nats.Conn, *nats.Subscription, error) {}}, slog.New(slog.DiscardHandler))
			if err == nil {
				defer nc.Close()
				err = nc.FlushTimeout(3 * time.Second)
			}
			if (err == nil) != tt.ok {
				t.Errorf("connected: %v, want ok=%v", err, tt.ok)
			}
		})
	}
	if _, err := StartEmbedded(EmbeddedConfig{Listen: "127.0.0.1:0", Auth: auth, TLSCert: cert, TLSKey: cert}); err == nil {
		t.Error("started with a certificate for a key")
	}
}
