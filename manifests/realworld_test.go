package manifests

import (
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// TestRealWorldShapes parses manifests in the shapes public repositories
// give them (testdata/realworld, written for this test, not copied): each
// one Cloud Foundry accepts is accepted with the warnings listed and no
// error, and real typos still error at file:line:col with a suggestion.
func TestRealWorldShapes(t *testing.T) {
	const ignored = `is not a manifest attribute and is ignored, as Cloud Foundry's CLI ignores it`
	tests := []struct {
		file     string
		apps     []string // "name memoryMB diskMB routes", in order
		env      map[string]string
		path     string // every app's path, when given
		warnings []string
		errors   []string
	}{
		{
			file: "spring-music.yml",
			apps: []string{"spring-music 1024 1024 0"},
			path: "build/libs/spring-music.jar",
			env: map[string]string{"JBP_CONFIG_SPRING_AUTO_RECONFIGURATION": "{enabled: false}", "SPRING_PROFILES_ACTIVE": "http2",
				"JBP_CONFIG_OPEN_JDK_JRE": "{ jre: { version: 17.+ } }"},
		},
		{
			file: "cats-asset.yml",
			apps: []string{"dora 256 512 0"},
			env:  map[string]string{"will-be-overridden": "from-manifest", "a.b": "dotted", "SOME_VAR": "ok"},
		},
		{
			file:     "cloudgov.yml",
			apps:     []string{"web 512 1536 1"},
			warnings: []string{`cloudgov.yml:4:1: warning: top-level "declared-services" ` + ignored},
		},
		{
			file: "anchors.yml",
			apps: []string{"api 513 1024 1", "worker 513 1024 0"},
			env:  map[string]string{"NODE_ENV": "production", "npm-config-production": "true"},
			warnings: []string{
				`anchors.yml:4:1: warning: top-level "defaults" ` + ignored + ` (it holds the anchor &defaults; name it x-defaults to say it is only that)`,
				`anchors.yml:10:1: warning: top-level "common" ` + ignored + ` (it holds the anchor &timeout; name it x-common to say it is only that)`,
			},
		},
		{
			file: "sap-features.yml",
			apps: []string{"bookshop-srv 1536 1024 1"},
			warnings: []string{
				`sap-features.yml:9:5: warning: feature "ssh" is ignored: SSH into instances is not offered by driftless`,
				`sap-features.yml:10:5: warning: feature "revisions" is ignored: every commit is a release, and a revert is a rollback`,
				`sap-features.yml:11:5: warning: feature "file-based-vcap-services" is ignored: bindings are always also files under SERVICE_BINDING_ROOT (/bindings), beside VCAP_SERVICES in the environment`,
				`sap-features.yml:12:5: warning: feature "service-binding-k8s" is ignored: bindings are always also files under SERVICE_BINDING_ROOT (/bindings), as servicebinding.io lays them out`,
			},
		},
		{
			file: "empty-host.yml",
			apps: []string{"shop 256 1024 1"},
			warnings: []string{
				"empty-host.yml:6:3: warning: host is empty and is ignored, as Cloud Foundry ignores it",
				"empty-host.yml:7:3: warning: domain is empty and is ignored, as Cloud Foundry ignores it",
				"empty-host.yml:8:3: warning: hosts is empty and is ignored, as Cloud Foundry ignores it",
				"empty-host.yml:9:3: warning: no-hostname is empty and is ignored, as Cloud Foundry ignores it",
			},
		},
		{
			file:   "typo-application.yml",
			errors: []string{`typo-application.yml:2:1: error: unknown top-level attribute "application" (did you mean "applications"?)`},
		},
		{
			file:     "typo-attribute.yml",
			warnings: []string{`typo-attribute.yml:2:1: warning: top-level "defaults" ` + ignored + ` (it holds the anchor &defaults; name it x-defaults to say it is only that)`},
			errors: []string{
				`typo-attribute.yml:7:3: error: unknown attribute "instanses" (did you mean "instances"?)`,
				`typo-attribute.yml:8:15: error: disk_quota: size "1.5Q" has an unknown unit "Q" (use K, M, G or T, optionally with B)`,
				`typo-attribute.yml:10:5: error: env: "" is not a valid variable name: it is empty`,
			},
		},
		{
			file:   "legacy-with-routes.yml",
			errors: []string{"legacy-with-routes.yml:4:3: error: routes cannot be combined with the deprecated host, hosts, domain, domains or no-hostname"},
		},
		{
			file: "bad-features.yml",
			warnings: []string{
				`bad-features.yml:8:5: warning: feature "sssh" is not a Cloud Foundry app feature driftless knows, and is ignored (did you mean "ssh"?)`,
			},
			errors: []string{
				"bad-features.yml:4:13: error: features must be a mapping, not a list",
				"bad-features.yml:7:10: error: features.ssh must be true or false, not a string",
			},
		},
	}
	for _, tt := range tests {
		t.Run(strings.TrimSuffix(tt.file, ".yml"), func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata", "realworld", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			m := Parse(tt.file, data, nil)
			var warns, errs, apps []string
			for _, d := range m.Diagnostics.Warnings() {
				warns = append(warns, d.Diagnostic())
			}
			for _, d := range m.Diagnostics.Errors() {
				errs = append(errs, d.Diagnostic())
			}
			for _, a := range m.Apps {
				apps = append(apps, strings.Join([]string{a.Name, strconv.Itoa(a.MemoryMB), strconv.Itoa(a.DiskMB), strconv.Itoa(len(a.Routes))}, " "))
				if tt.path != "" && a.Path != tt.path {
					t.Errorf("app %s path %q, want %q", a.Name, a.Path, tt.path)
				}
				if tt.env != nil && !reflect.DeepEqual(a.Env, tt.env) {
					t.Errorf("app %s env %v, want %v", a.Name, a.Env, tt.env)
				}
			}
			if !reflect.DeepEqual(errs, tt.errors) {
				t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(errs, "\n"), strings.Join(tt.errors, "\n"))
			}
			if !reflect.DeepEqual(warns, tt.warnings) {
				t.Errorf("warnings:\n%s\nwant:\n%s", strings.Join(warns, "\n"), strings.Join(tt.warnings, "\n"))
			}
			if !reflect.DeepEqual(apps, tt.apps) {
				t.Errorf("apps %q, want %q", apps, tt.apps)
			}
		})
	}
}
