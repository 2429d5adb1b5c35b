package pki

import (
	"crypto/tls"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
)

// TestEnsure makes a CA and a certificate once, keeps them, reissues the
// certificate for new hosts, and serves HTTPS that a client trusting the
// CA accepts and one trusting the system roots refuses.
func TestEnsure(t *testing.T) {
	dir := t.TempDir()
	p, err := Ensure(dir, []string{"127.0.0.1", "localhost"})
	if err != nil {
		t.Fatal(err)
	}
	for path, mode := range map[string]os.FileMode{p.Key: 0o600, dir + "/ca-key.pem": 0o600, p.CA: 0o644} {
		st, err := os.Stat(path)
		if err != nil || st.Mode().Perm() != mode {
			t.Fatalf("%s: %v, %v (want mode %v)", path, st, err, mode)
		}
	}
	first, _ := os.ReadFile(p.Cert)
	if _, err := Ensure(dir, []string{"localhost", "127.0.0.1"}); err != nil {
		t.Fatal(err)
	}
	if again, _ := os.ReadFile(p.Cert); string(again) != string(first) {
		t.Fatal("a good certificate was made again")
	}
	ca, _ := os.ReadFile(p.CA)
	if _, err := Ensure(dir, []string{"127.0.0.1", "10.0.0.5"}); err != nil {
		t.Fatal(err)
	}
	if again, _ := os.ReadFile(p.Cert); string(again) == string(first) {
		t.Fatal("the certificate was not reissued for a new host")
	}
	if again, _ := os.ReadFile(p.CA); string(again) != string(ca) {
		t.Fatal("the CA changed")
	}

	cert, err := tls.LoadX509KeyPair(p.Cert, p.Key)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") }))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	srv.StartTLS()
	defer srv.Close()
	pool, err := Pool(p.CA)
	if err != nil {
		t.Fatal(err)
	}
	trusting := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := trusting.Get(srv.URL)
	if err != nil {
		t.Fatalf("a client trusting the CA: %v", err)
	}
	resp.Body.Close()
	if _, err := (&http.Client{Transport: &http.Transport{}}).Get(srv.URL); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("a client not trusting the CA: %v, want a certificate error", err)
	}
	if _, err := Pool(p.Key); err == nil {
		t.Fatal("a key read as a CA")
	}
}
