package policies

import (
	"context"
	"strings"
	"testing"
	"testing/fstest"
	"time"
)

func TestPreviewBudget(t *testing.T) {
	tests := []struct {
		name    string
		quotas  string
		want    PreviewBudget
		wantErr string
	}{
		{"absent: one instance, 72 h, no limits", "default:\n  instances: 3\n", PreviewBudget{Instances: 1, TTL: 72 * time.Hour}, ""},
		{"every key", "previews:\n  per_source: 2\n  memory: 1G\n  instances: 3\n  ttl: 3d\n",
			PreviewBudget{PerSource: 2, MemoryMB: 1024, Instances: 3, TTL: 72 * time.Hour}, ""},
		{"ttl in minutes", "previews:\n  ttl: 90m\n", PreviewBudget{Instances: 1, TTL: 90 * time.Minute}, ""},
		{"unknown key", "previews:\n  per_pr: 2\n", PreviewBudget{}, "previews.per_pr: unknown key (the keys are instances, memory, per_source, ttl)"},
		{"bad ttl", "previews:\n  ttl: soon\n", PreviewBudget{}, `previews.ttl: "soon" is not a duration`},
		{"zero instances", "previews:\n  instances: 0\n", PreviewBudget{}, "previews.instances: 0 is not a whole number of at least 1"},
		{"bad memory", "previews:\n  memory: lots\n", PreviewBudget{}, "previews.memory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			set, err := Load(context.Background(), fstest.MapFS{QuotasFile: {Data: []byte(tt.quotas)}})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), QuotasFile) {
					t.Fatalf("error %v, want one naming %s and %q", err, QuotasFile, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if set.Previews != tt.want {
				t.Errorf("budget %+v, want %+v", set.Previews, tt.want)
			}
		})
	}
}

// TestPreviewBudgetDenies checks the built-in rules on a quotas-only
// source: per_source and memory refuse a preview, never production.
func TestPreviewBudgetDenies(t *testing.T) {
	set, err := Load(context.Background(), fstest.MapFS{QuotasFile: {Data: []byte("previews:\n  per_source: 1\n  memory: 256M\n")}})
	if err != nil {
		t.Fatal(err)
	}
	pr := func(open int) *Preview {
		return &Preview{Number: 4, Branch: "b", Labels: []string{}, Open: open, Source: "web"}
	}
	tests := []struct {
		name    string
		in      Input
		wantMsg string
	}{
		{"within", Input{Space: "dev-pr-4", Preview: pr(1), Apps: []App{{Name: "a", Instances: 1, MemoryMB: 256}}}, ""},
		{"second preview", Input{Space: "dev-pr-4", Preview: pr(2), Apps: []App{{Name: "a", Instances: 1, MemoryMB: 64}}}, "source web already has 1 preview(s) deployed; its budget is 1"},
		{"memory", Input{Space: "dev-pr-4", Preview: pr(1), Apps: []App{{Name: "a", Instances: 1, MemoryMB: 300}}}, "would use 300 MB"},
		{"production", Input{Space: "dev", Apps: []App{{Name: "a", Instances: 2, MemoryMB: 512}}}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vs, err := set.Evaluate(context.Background(), tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if tt.wantMsg == "" {
				if len(vs) > 0 {
					t.Fatalf("violations %+v, want none", vs)
				}
				return
			}
			if len(vs) != 1 || !strings.Contains(vs[0].Message, tt.wantMsg) || vs[0].Policy != "previews" {
				t.Fatalf("violations %+v, want one of policy previews saying %q", vs, tt.wantMsg)
			}
		})
	}
}

// TestServiceViolationsLocated: a violation naming a service instance is
// located at its services.yml entry; the built-in quota counts services.
func TestServiceViolationsLocated(t *testing.T) {
	const rules = "package driftless.plans\n\nimport rego.v1\n\ndeny contains v if {\n\tsome s in input.services\n\ts.plan == \"huge\"\n\tv := {\"service\": s.name, \"msg\": \"no huge plans\"}\n}\n"
	set, err := Load(context.Background(), fstest.MapFS{"plans.rego": {Data: []byte(rules)}})
	if err != nil {
		t.Fatal(err)
	}
	vs, err := set.Evaluate(context.Background(), Input{Space: "dev", Services: []Service{
		{Name: "db", Service: "postgresql", Plan: "huge", File: "services.yml", Line: 4},
		{Name: "cache", Service: "redis", Plan: "small", File: "services.yml", Line: 8}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(vs) != 1 || vs[0].Service != "db" || vs[0].File != "services.yml" || vs[0].Line != 4 {
		t.Fatalf("violations %+v", vs)
	}
	def, err := Load(context.Background(), fstest.MapFS{QuotasFile: {Data: []byte("default:\n  services: 1\n")}})
	if err != nil {
		t.Fatal(err)
	}
	vs, err = def.Evaluate(context.Background(), Input{Space: "dev", Services: []Service{{Name: "a"}, {Name: "b"}}})
	if err != nil || len(vs) != 1 || !strings.Contains(vs[0].Message, "2 service instances; its quota is 1") {
		t.Fatalf("quota violations %+v %v", vs, err)
	}
}
