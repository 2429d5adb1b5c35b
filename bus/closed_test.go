package bus

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// lockedBuffer is a bytes.Buffer safe for the connection's callbacks.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestConnectRefusedCredential: a client whose password the server
// refuses ends with its connection closed and says why in its log,
// without the password.
func TestConnectRefusedCredential(t *testing.T) {
	s := startAuthServer(t)
	var logs lockedBuffer
	nc, err := Connect(ClientConfig{URL: s.url, User: "cell-a", Password: "not-pw-a", Identity: Identity{Role: RoleCell, Cell: "cell-a"}},
		slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatalf("Connect (which retries in the background) = %v", err)
	}
	defer nc.Close()
	if err := nc.Flush(); err == nil {
		t.Fatal("a refused client flushed")
	}
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(strings.ToLower(logs.String()), "authorization violation") && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if !strings.Contains(strings.ToLower(logs.String()), "authorization violation") {
		t.Errorf("the log does not say the credential was refused:\n%s", logs.String())
	}
	if strings.Contains(logs.String(), "not-pw-a") {
		t.Errorf("the log shows the password:\n%s", logs.String())
	}
}
