package tokens

import (
	"strings"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	_, good, err := newSecret()
	if err != nil {
		t.Fatal(err)
	}
	id, secret, err := Parse(good)
	if err != nil || len(id) != 12 || len(secret) != 43 || good != Prefix+id+"_"+secret {
		t.Fatalf("Parse(%q) = %q, %q, %v", good, id, secret, err)
	}
	bad := []string{
		"", "dlt_", "dlt__", "abc", strings.TrimPrefix(good, Prefix),
		Prefix + "0123456789AB_" + secret,            // upper-case id
		Prefix + "0123456789a_" + secret,             // short id
		Prefix + "0123456789ab_" + secret[:42],       // short secret
		Prefix + "0123456789ab_" + secret + "A",      // long secret
		Prefix + "0123456789ab_" + secret[:42] + "=", // not base64url
		Prefix + "0123456789ab_" + secret[:42] + "+",
		Prefix + "zz23456789ab_" + secret,
		"Bearer " + good,
	}
	for _, s := range bad {
		if _, _, err := Parse(s); err == nil {
			t.Errorf("Parse(%q) accepted", s)
		}
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name, role string
		spaces     []string
		ok         bool
	}{
		{"ci-web", RoleCI, []string{"web"}, true},
		{"root", RoleAdmin, nil, true},
		{"cell-a", RoleCell, nil, true},
		{"all", RoleSpaceDeveloper, []string{AllSpaces}, true},
		{"dev", RoleSpaceDeveloper, nil, false}, // a space role names its spaces
		{"Bad Name", RoleAdmin, nil, false},
		{"x", "Admin!", nil, false},
		{"x", RoleCI, []string{""}, false},
	}
	for _, tt := range tests {
		if err := Validate(tt.name, tt.role, tt.spaces); (err == nil) != tt.ok {
			t.Errorf("Validate(%q, %q, %v) = %v, want ok %v", tt.name, tt.role, tt.spaces, err, tt.ok)
		}
	}
}

func TestTokenScope(t *testing.T) {
	tok := Token{Spaces: []string{"dev"}, ExpiresAt: time.Unix(100, 0)}
	if !tok.InSpace("dev") || tok.InSpace("prod") || !tok.InSpace("") {
		t.Error("InSpace")
	}
	if !(Token{Spaces: []string{AllSpaces}}).InSpace("prod") {
		t.Error("* is every space")
	}
	if tok.Expired(time.Unix(99, 0)) || !tok.Expired(time.Unix(100, 0)) {
		t.Error("Expired")
	}
}

// FuzzParse: Parse never panics, and what it accepts is exactly a token's
// shape (its parts put back together give the input).
func FuzzParse(f *testing.F) {
	_, good, _ := newSecret()
	for _, s := range []string{good, "", "dlt_", "dlt_0123456789ab_", Prefix + strings.Repeat("a", 12) + "_" + strings.Repeat("A", 43)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, secret, err := Parse(s)
		if err != nil {
			return
		}
		if Prefix+id+"_"+secret != s || len(id) != 12 || len(secret) != 43 {
			t.Fatalf("Parse(%q) accepted parts %q, %q", s, id, secret)
		}
		if hash(secret) == "" {
			t.Fatal("no hash")
		}
	})
}
