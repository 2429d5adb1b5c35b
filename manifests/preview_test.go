package manifests

import (
	"testing"
	"testing/fstest"
)

// TestLoadPreviewVars: a preview reads vars-preview.yml beside a manifest
// instead of vars.yml when it is there, and vars.yml when it is not; the
// default load never reads vars-preview.yml.
func TestLoadPreviewVars(t *testing.T) {
	const manifest = "applications:\n- name: web\n  env:\n    GREETING: ((greeting))\n"
	tests := []struct {
		name    string
		files   map[string]string
		preview bool
		want    string
	}{
		{"default reads vars.yml", map[string]string{"vars.yml": "greeting: prod", "vars-preview.yml": "greeting: preview"}, false, "prod"},
		{"preview prefers vars-preview.yml", map[string]string{"vars.yml": "greeting: prod", "vars-preview.yml": "greeting: preview"}, true, "preview"},
		{"preview without vars-preview.yml", map[string]string{"vars.yml": "greeting: prod"}, true, "prod"},
		{"preview with vars-preview.yml alone", map[string]string{"vars-preview.yml": "greeting: preview"}, true, "preview"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fsys := fstest.MapFS{"app/manifest.yml": {Data: []byte(manifest)}}
			for name, body := range tt.files {
				fsys["app/"+name] = &fstest.MapFile{Data: []byte(body)}
			}
			set := LoadFSWith(fsys, ".", LoadOptions{Preview: tt.preview})
			if len(set.Diagnostics) != 0 {
				t.Fatalf("diagnostics: %v", set.Diagnostics)
			}
			apps := set.Apps()
			if len(apps) != 1 || apps[0].Env["GREETING"] != tt.want {
				t.Fatalf("apps %+v, want GREETING=%s", apps, tt.want)
			}
		})
	}
}
