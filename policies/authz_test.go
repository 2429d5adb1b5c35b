package policies

import (
	"context"
	"slices"
	"testing"
	"testing/fstest"
)

// TestAuthorize asks the built-in roles and a policy source's own
// driftless.authz, which replaces them as a whole.
func TestAuthorize(t *testing.T) {
	ctx := context.Background()
	def, err := Default(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// A source with policies of its own but no authz keeps the built-in one.
	quotaOnly, err := Load(ctx, fstest.MapFS{"q.rego": {Data: []byte("package driftless.q\nimport rego.v1\ndeny contains v if { false; v := {} }\n")}})
	if err != nil {
		t.Fatal(err)
	}
	own, err := Load(ctx, fstest.MapFS{"authz.rego": {Data: []byte(`package driftless.authz
import rego.v1
default allow := false
allow if input.subject.role == "release-manager"
allow if input.subject.role == "admin"
reasons contains "only release managers here" if not allow
`)}})
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(quotaOnly.Files, "built-in:authz.rego") {
		t.Errorf("the built-in authz is listed as a file of the source: %v", quotaOnly.Files)
	}
	sub := func(role string, spaces ...string) Subject { return Subject{Name: "t", Role: role, Spaces: spaces} }
	tests := []struct {
		name   string
		set    *Set
		in     AuthzInput
		allow  bool
		reason string
	}{
		{"admin", def, AuthzInput{sub("admin"), "manage", "tokens", ""}, true, ""},
		{"developer env", def, AuthzInput{sub("space-developer", "dev"), "read", "env", "dev"}, true, ""},
		{"developer other space", def, AuthzInput{sub("space-developer", "dev"), "read", "env", "prod"}, false, "token t is scoped to space(s) dev, not prod"},
		{"auditor env", quotaOnly, AuthzInput{sub("space-auditor", "dev"), "read", "env", "dev"}, false, "role space-auditor may not read env"},
		{"ci sync", def, AuthzInput{sub("ci", "web"), "sync", "sources", "web"}, true, ""},
		{"unknown role", def, AuthzInput{sub("release-manager"), "sync", "sources", "web"}, false, "role release-manager may not sync sources"},
		{"own authz role", own, AuthzInput{sub("release-manager"), "sync", "sources", "web"}, true, ""},
		{"own authz replaces built-in", own, AuthzInput{sub("space-developer", "web"), "read", "apps", "web"}, false, "only release managers here"},
		{"nil set", nil, AuthzInput{sub("admin"), "read", "apps", "dev"}, false, "no authorization policy is loaded"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := tt.set.Authorize(ctx, tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if d.Allow != tt.allow {
				t.Fatalf("allow = %v (%v), want %v", d.Allow, d.Reasons, tt.allow)
			}
			if !tt.allow && d.Reason(tt.in) != tt.reason {
				t.Errorf("reason %q, want %q", d.Reason(tt.in), tt.reason)
			}
		})
	}
}
