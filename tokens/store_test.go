package tokens_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/driftless/driftless/internal/testenv"
	"github.com/driftless/driftless/tokens"
)

// TestStore makes, checks, lists and revokes tokens in a real Consul.
func TestStore(t *testing.T) {
	c := testenv.StartConsul(t)
	ctx := context.Background()
	s := tokens.NewStore(c.Client)

	first, err := s.Bootstrap(ctx, "admin", 0)
	if err != nil || first == "" {
		t.Fatalf("Bootstrap = %q, %v", first, err)
	}
	if again, err := s.Bootstrap(ctx, "admin", 0); err != nil || again != "" {
		t.Fatalf("second Bootstrap = %q, %v: the first admin token is made once", again, err)
	}
	admin, err := s.Verify(ctx, first)
	if err != nil || admin.Role != tokens.RoleAdmin || admin.ExpiresAt.Sub(admin.CreatedAt) != tokens.DefaultTTL {
		t.Fatalf("Verify(first) = %+v, %v", admin, err)
	}

	ci, rec, err := s.Create(ctx, tokens.Request{Name: "ci-web", Role: tokens.RoleCI, Spaces: []string{"web"}, TTL: time.Hour, CreatedBy: "admin"})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Create(ctx, tokens.Request{Name: "ci-web", Role: tokens.RoleCI, Spaces: []string{"web"}}); !errors.Is(err, tokens.ErrNameTaken) {
		t.Fatalf("a second ci-web: %v, want ErrNameTaken", err)
	}
	// The secret is nowhere in Consul: only its hash.
	pairs, _, err := c.Client.KV().List("driftless/", nil)
	if err != nil {
		t.Fatal(err)
	}
	_, secret, _ := tokens.Parse(ci)
	for _, p := range pairs {
		if strings.Contains(string(p.Value), secret) || strings.Contains(p.Key, secret) {
			t.Fatalf("the token's secret is stored at %s", p.Key)
		}
	}
	got, err := s.Verify(ctx, ci)
	if err != nil || got.Name != "ci-web" || got.ID != rec.ID || !got.InSpace("web") || got.InSpace("dev") {
		t.Fatalf("Verify(ci) = %+v, %v", got, err)
	}
	// A token with a wrong secret but a known id is refused.
	id, _, _ := tokens.Parse(ci)
	forged := tokens.Prefix + id + "_" + strings.Repeat("A", 43)
	if _, err := s.Verify(ctx, forged); !errors.Is(err, tokens.ErrUnknown) {
		t.Fatalf("forged secret: %v", err)
	}

	ls, err := s.List(ctx)
	if err != nil || len(ls) != 2 || ls[1].Name != "ci-web" || ls[1].Hash != "" || ls[1].LastUsed.IsZero() {
		t.Fatalf("List = %+v, %v (want admin and ci-web, no hashes, ci-web used)", ls, err)
	}

	if _, err := s.Revoke(ctx, "ci-web"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Verify(ctx, ci); !errors.Is(err, tokens.ErrUnknown) {
		t.Fatalf("revoked token: %v", err)
	}
	if _, err := s.Revoke(ctx, "ci-web"); !errors.Is(err, tokens.ErrNoSuchToken) {
		t.Fatalf("revoking twice: %v", err)
	}

	short, _, err := s.Create(ctx, tokens.Request{Name: "short", Role: tokens.RoleAdmin, TTL: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(2100 * time.Millisecond)
	if _, err := s.Verify(ctx, short); !errors.Is(err, tokens.ErrExpired) {
		t.Fatalf("expired token: %v", err)
	}
	renewed, err := s.Replace(ctx, tokens.Request{Name: "short", Role: tokens.RoleAdmin})
	if err != nil || renewed == short {
		t.Fatalf("Replace = %v", err)
	}
	if _, err := s.Verify(ctx, renewed); err != nil {
		t.Fatalf("replaced token: %v", err)
	}

	// Consul loses its state: the store says so, and a holder puts its
	// token back.
	if wiped, err := s.Wiped(ctx); err != nil || wiped {
		t.Fatalf("Wiped = %v, %v before the loss", wiped, err)
	}
	if _, err := c.Client.KV().DeleteTree("driftless/", nil); err != nil {
		t.Fatal(err)
	}
	if wiped, err := s.Wiped(ctx); err != nil || !wiped {
		t.Fatalf("Wiped = %v, %v after the loss", wiped, err)
	}
	if _, err := s.Verify(ctx, first); !errors.Is(err, tokens.ErrUnknown) {
		t.Fatalf("a lost token: %v", err)
	}
	if err := s.Restore(ctx, first, tokens.Request{Name: "admin", Role: tokens.RoleAdmin}); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Verify(ctx, first); err != nil || got.Name != "admin" {
		t.Fatalf("restored token: %+v, %v", got, err)
	}
	if wiped, _ := s.Wiped(ctx); wiped {
		t.Fatal("still wiped after a restore")
	}
}
