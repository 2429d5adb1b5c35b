package postgres

import (
	"strings"
	"testing"
)

// TestNames: databases and roles are valid PostgreSQL names (at most 63
// bytes of [a-z0-9_]), and ids that sanitise alike still get their own.
func TestNames(t *testing.T) {
	long := strings.Repeat("Instance-", 30)
	cases := []struct{ a, b string }{
		{"a-b", "a_b"},
		{"A", "a"},
		{"données", "donn_es"},
		{long, long + "x"},
		{"x\"; DROP DATABASE postgres; --", "x"},
	}
	valid := func(name string) {
		t.Helper()
		if len(name) > 63 {
			t.Errorf("%q is longer than 63 bytes", name)
		}
		for _, r := range name {
			if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_') {
				t.Errorf("%q has %q", name, r)
			}
		}
	}
	for _, c := range cases {
		da, db := databaseName(c.a), databaseName(c.b)
		ra, rb := bindingRole(c.a, "b-1"), bindingRole(c.b, "b-1")
		for _, n := range []string{da, db, ownerRole(da), ownerRole(db), ra, rb, bindingRole(c.a, long)} {
			valid(n)
		}
		if da == db || ra == rb {
			t.Errorf("%q and %q share a database (%s) or a role (%s)", c.a, c.b, da, ra)
		}
		if databaseName(c.a) != da {
			t.Errorf("databaseName(%q) is not stable", c.a)
		}
	}
}

// TestScramVerifier: the verifier has PostgreSQL's form and never holds the
// password; two verifiers of one password differ (a salt each).
func TestScramVerifier(t *testing.T) {
	pw, err := newPassword()
	if err != nil {
		t.Fatal(err)
	}
	if len(pw) != 43 {
		t.Errorf("password of %d characters, want 43 (32 bytes base64url)", len(pw))
	}
	v1, err := scramVerifier(pw)
	if err != nil {
		t.Fatal(err)
	}
	v2, _ := scramVerifier(pw)
	if !strings.HasPrefix(v1, "SCRAM-SHA-256$4096:") || strings.Count(v1, "$") != 2 || strings.Count(v1, ":") != 2 {
		t.Errorf("verifier %q is not in PostgreSQL's form", v1)
	}
	if strings.Contains(v1, pw) || v1 == v2 {
		t.Error("the verifier holds the password, or is not salted")
	}
}
