package platform

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	consul "github.com/hashicorp/consul/api"

	"github.com/driftless/driftless/catalog"
	"github.com/driftless/driftless/internal/testenv"
)

// TestManagementToken: dev makes the management token once, keeps it
// 0600, and reads the same one back at every start (tightening a file
// whose mode was loosened); a file that holds no token is replaced.
func TestManagementToken(t *testing.T) {
	tests := []struct {
		name    string
		before  string // the file's content before; "" for none
		mode    os.FileMode
		same    bool // the token read is the one before
		wantErr bool
	}{
		{"none yet", "", 0, false, false},
		{"kept", "0b7a5b9e-2f4c-4d1e-8a6b-3c2d1e0f9a8b\n", 0o600, true, false},
		{"kept, loosened", "0b7a5b9e-2f4c-4d1e-8a6b-3c2d1e0f9a8b\n", 0o644, true, false},
		{"not a token", "hello\n", 0o600, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, ManagementTokenFile)
			if tt.before != "" {
				if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, []byte(tt.before), tt.mode); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(path, tt.mode); err != nil {
					t.Fatal(err)
				}
			}
			got, err := managementToken(dir)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v", err)
			}
			if !uuidRE.MatchString(got) {
				t.Fatalf("token %q is not a UUID", got)
			}
			if same := got+"\n" == tt.before; same != tt.same {
				t.Errorf("token %q, before %q: same = %v, want %v", got, tt.before, same, tt.same)
			}
			st, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if st.Mode().Perm() != 0o600 {
				t.Errorf("mode %v, want 0600", st.Mode().Perm())
			}
			again, err := managementToken(dir)
			if err != nil || again != got {
				t.Errorf("read again: %q (%v), want %q", again, err, got)
			}
		})
	}
}

// TestDevConsulTokens: on a Consul with ACLs, dev's tokens are minted
// once per role with the role's policy; minting again (a dev restarted on
// the Consul its killed predecessor left) takes the same ones; a Consul
// whose management token dev does not hold, or a token given, is used as
// it is.
func TestDevConsulTokens(t *testing.T) {
	c := testenv.StartConsulACL(t)
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	first, err := mintDevTokens(ctx, c.Addr, c.ManagementToken)
	if err != nil {
		t.Fatal(err)
	}
	for role, secret := range map[catalog.Role]string{catalog.RoleController: first.controller, catalog.RoleCell: first.cell,
		catalog.RoleRouter: first.router} {
		tok, _, err := c.Client.ACL().TokenReadSelf(&consul.QueryOptions{Token: secret})
		if err != nil {
			t.Fatalf("%s's token: %v", role, err)
		}
		if len(tok.Policies) != 1 || tok.Policies[0].Name != role.Policy().Name {
			t.Errorf("%s's token has %v, want only %s", role, tok.Policies, role.Policy().Name)
		}
	}
	count := func() int {
		l, _, err := c.Client.ACL().TokenList(nil)
		if err != nil {
			t.Fatal(err)
		}
		return len(l)
	}
	n := count()

	dir := t.TempDir()
	tests := []struct {
		name  string
		mgmt  string // kept under the data folder; "" for none
		given string
		want  consulTokens
	}{
		{"a token given", c.ManagementToken, "given", sameToken("given")},
		{"no management token kept", "", "", consulTokens{}},
		{"another Consul's management token", "0b7a5b9e-2f4c-4d1e-8a6b-3c2d1e0f9a8b", "", consulTokens{}},
		{"dev's own Consul, left running", c.ManagementToken, "", first},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, ManagementTokenFile)
			_ = os.Remove(path)
			if tt.mgmt != "" {
				if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, []byte(tt.mgmt+"\n"), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			got, err := devConsulTokens(ctx, dir, c.Addr, tt.given, log)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("tokens %+v, want %+v", got, tt.want)
			}
			if m := count(); m != n {
				t.Errorf("%d tokens after, %d before: minting again made new ones", m, n)
			}
		})
	}
	// A Consul without ACLs, the management token kept: no token.
	open := testenv.StartConsul(t)
	if got, err := devConsulTokens(ctx, dir, open.Addr, "", log); err != nil || got != (consulTokens{}) {
		t.Errorf("on a Consul without ACLs: %+v (%v), want no tokens", got, err)
	}
}
