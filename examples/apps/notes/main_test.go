package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestDatabaseURI(t *testing.T) {
	const vcap = `{"user-provided":[{"label":"user-provided","name":"keys","binding_guid":"b-1","credentials":{"token":"t"}}],
		"postgresql":[{"label":"postgresql","name":"db","binding_guid":"b-2","instance_name":"db","plan":"small",
		"credentials":{"uri":"postgres://u:secret@10.0.0.1:5432/d","password":"secret"}}]}`
	files := map[string]string{"db/type": "postgresql", "db/uri": "postgres://u:secret@h/d\n", "db/password": "secret",
		"keys/type": "user-provided", "keys/token": "t"}
	cases := []struct {
		name, vcap   string
		files        bool
		wantURI      string
		wantSource   string
		wantBindings []string
	}{
		{"VCAP_SERVICES", vcap, true, "postgres://u:secret@10.0.0.1:5432/d", "VCAP_SERVICES", []string{"db", "keys"}},
		{"files without VCAP_SERVICES", "", true, "postgres://u:secret@h/d", "SERVICE_BINDING_ROOT", []string{"db", "keys"}},
		{"files when VCAP_SERVICES has no postgresql", `{"user-provided":[]}`, true, "postgres://u:secret@h/d", "SERVICE_BINDING_ROOT", []string{"db", "keys"}},
		{"nothing bound", "{}", false, "", "", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			root := t.TempDir()
			if c.files {
				for name, content := range files {
					p := filepath.Join(root, name)
					if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
						t.Fatal(err)
					}
					if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
						t.Fatal(err)
					}
				}
			}
			t.Setenv("VCAP_SERVICES", c.vcap)
			t.Setenv("SERVICE_BINDING_ROOT", root)
			var in info
			uri, err := databaseURI(&in)
			if c.wantURI == "" {
				if err == nil {
					t.Fatalf("found %q with nothing bound", uri)
				}
				return
			}
			if err != nil || uri != c.wantURI || in.Source != c.wantSource || in.Database == nil || in.Database.Name != "db" {
				t.Fatalf("uri %q, info %+v, err %v", uri, in, err)
			}
			var names []string
			for _, b := range in.Bindings {
				names = append(names, b.Name)
				for _, k := range b.CredentialKeys {
					if strings.Contains(k, "secret") {
						t.Fatalf("a credential's value in /info: %+v", b)
					}
				}
			}
			slices.Sort(names)
			if !slices.Equal(names, c.wantBindings) {
				t.Fatalf("bindings %v, want %v", names, c.wantBindings)
			}
		})
	}
}
