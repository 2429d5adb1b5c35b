package manifests

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/driftless/driftless/model"
)

// envOf is an env of one variable BIG whose names and values are n bytes
// as model.EnvBytes counts them.
func envOf(n int) string {
	return "  env:\n    BIG: " + strings.Repeat("x", n-len("BIG")-2) + "\n"
}

// routesOf is a routes list of n routes, each with a path of pathLen.
func routesOf(n, pathLen int) string {
	var b strings.Builder
	b.WriteString("  routes:\n")
	for i := range n {
		fmt.Fprintf(&b, "  - route: r%d.example.com/%s\n", i, strings.Repeat("p", pathLen))
	}
	return b.String()
}

func TestParseLimits(t *testing.T) {
	const app = "applications:\n- name: web\n"
	tenMB := 10 << 20
	tests := []struct {
		name string
		yaml string
		want []string // every error, in order; none: the manifest passes
	}{
		{
			name: "a 10 MB env value",
			yaml: app + "  env:\n    BLOB: " + strings.Repeat("x", tenMB) + "\n",
			want: []string{fmt.Sprintf("m.yml:3:3: error: env is 10.0 MB (%d bytes of names and values); the environment may be at most 130 KB (133120 bytes), as in Cloud Foundry", tenMB+len("BLOB")+2)},
		},
		{
			name: "env, command and routes just at their limits",
			yaml: app + envOf(model.MaxEnvBytes) + "  command: " + strings.Repeat("c", model.MaxCommandBytes) + "\n" + routesOf(model.MaxRoutes, 0),
		},
		{
			name: "env one byte over",
			yaml: app + envOf(model.MaxEnvBytes+1),
			want: []string{"m.yml:3:3: error: env is 130.0 KB (133121 bytes of names and values); the environment may be at most 130 KB (133120 bytes), as in Cloud Foundry"},
		},
		{
			name: "env of many variables over",
			yaml: app + "  env:\n    A: " + strings.Repeat("v", 1000) + "\n" + func() string {
				var b strings.Builder
				for i := range 140 {
					fmt.Fprintf(&b, "    V%d: %s\n", i, strings.Repeat("v", 1000))
				}
				return b.String()
			}(),
			want: []string{"m.yml:3:3: error: env is 138.4 KB (141733 bytes of names and values); the environment may be at most 130 KB (133120 bytes), as in Cloud Foundry"},
		},
		{
			name: "a global env over is refused at its key",
			yaml: "env:\n  BIG: " + strings.Repeat("x", model.MaxEnvBytes) + "\n" + app,
			want: []string{"m.yml:1:1: error: env is 130.0 KB (133125 bytes of names and values); the environment may be at most 130 KB (133120 bytes), as in Cloud Foundry"},
		},
		{
			name: "a command one byte over",
			yaml: app + "  command: " + strings.Repeat("c", model.MaxCommandBytes+1) + "\n",
			want: []string{"m.yml:3:12: error: command is 16.0 KB (16385 bytes); at most 16 KB (16384 bytes) is allowed"},
		},
		{
			name: "a huge name is refused without quoting it",
			yaml: "applications:\n- name: " + strings.Repeat("n", tenMB) + "\n",
			want: []string{
				"m.yml:2:9: error: name is 10 MB (10485760 bytes); at most 16 KB (16384 bytes) is allowed",
			},
		},
		{
			name: "one route too many",
			yaml: app + routesOf(model.MaxRoutes+1, 0),
			want: []string{"m.yml:3:3: error: the app has 1001 routes; at most 1000 are allowed"},
		},
		{
			name: "legacy hosts on domains that make too many routes",
			yaml: app + "  hosts: [" + strings.TrimSuffix(strings.Repeat("h,", 40), ",") + "]\n  domains: [" + func() string {
				var d []string
				for i := range 26 {
					d = append(d, fmt.Sprintf("d%d.example.com", i))
				}
				return strings.Join(d, ", ")
			}() + "]\n",
			want: []string{"m.yml:3:3: error: the app has 1040 routes; at most 1000 are allowed"},
		},
		{
			name: "a host name longer than DNS allows",
			yaml: app + "  routes:\n  - route: " + strings.Repeat("a.", 127) + "com\n",
			want: []string{fmt.Sprintf("m.yml:4:12: error: route %q: the host name is 257 characters; DNS allows at most 253", strings.Repeat("a.", 127)+"com")},
		},
		{
			name: "an annotation over Cloud Foundry's 5000 characters",
			yaml: app + "  metadata:\n    annotations: {note: " + strings.Repeat("a", 5001) + "}\n",
			want: []string{"m.yml:4:18: error: annotation note is 4.9 KB (5001 bytes); at most 4.9 KB (5000 bytes) is allowed"},
		},
		{
			name: "routes each within limits that together make a release too large",
			yaml: app + routesOf(model.MaxRoutes, 300),
			want: []string{"m.yml:2:3: error: app \"web\" is 312.5 KB once encoded (env, command, routes, metadata); a release may be at most 256 KB, half of what Consul keeps in one value"},
		},
		{
			name: "an env of control characters, within the raw limit, too large once encoded",
			yaml: app + "  env:\n    CTL: \"" + strings.Repeat(`\x01`, model.MaxEnvBytes-100) + "\"\n",
			want: []string{"m.yml:2:3: error: app \"web\" is 779.5 KB once encoded (env, command, routes, metadata); a release may be at most 256 KB, half of what Consul keeps in one value"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, got := parseErrors(tt.yaml)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("errors:\n%s\nwant:\n%s", clip(strings.Join(got, "\n")), strings.Join(tt.want, "\n"))
			}
			if len(tt.want) == 0 && len(m.Apps) != 1 {
				t.Errorf("the app was not accepted: %d apps", len(m.Apps))
			}
		})
	}
}

func TestDiagnosticsAreBounded(t *testing.T) {
	huge := strings.Repeat("k", 1<<20)
	tests := []struct {
		name string
		yaml string
	}{
		// YAML limits plain keys to 1024 characters: explicit keys (? k) are not.
		{"unknown attribute", "applications:\n- name: web\n  ? " + huge + "\n  : 1\n"},
		{"unknown top-level attribute (a warning)", "? " + huge + "\n: 1\napplications:\n- name: web\n"},
		{"bad env name", "applications:\n- name: web\n  env:\n    ? " + huge + "=x\n    : 1\n"},
		{"bad label value", "applications:\n- name: web\n  metadata: {labels: {a: " + huge + "}}\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := Parse("m.yml", []byte(tt.yaml), nil)
			if len(m.Diagnostics) == 0 {
				t.Fatal("no diagnostic")
			}
			for _, d := range m.Diagnostics {
				if len(d.Message) > maxMessageBytes+64 {
					t.Errorf("message of %d bytes: %.200s…", len(d.Message), d.Message)
				}
			}
		})
	}
}

func TestSizeText(t *testing.T) {
	tests := []struct {
		n    int
		want string
	}{
		{0, "0 B"}, {1023, "1023 B"}, {1024, "1 KB"}, {1536, "1.5 KB"}, {130 * 1024, "130 KB"},
		{130*1024 + 1, "130.0 KB"}, {1 << 20, "1 MB"}, {10<<20 + 7, "10.0 MB"}, {3 << 19, "1.5 MB"},
	}
	for _, tt := range tests {
		if got := sizeText(tt.n); got != tt.want {
			t.Errorf("sizeText(%d) = %q, want %q", tt.n, got, tt.want)
		}
	}
}
