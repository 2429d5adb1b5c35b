package manifests

import (
	"strings"
	"testing"
	"testing/fstest"
)

// TestArchivePaths: path may name a folder or a .jar, .war or .zip file
// (in any case), never a file of another kind nor anything outside the
// repository; an archive that is not there is left to the commit's
// checks (decide.Desired refuses it at the same place).
func TestArchivePaths(t *testing.T) {
	files := fstest.MapFS{
		"build/libs/spring-music.jar": {Data: []byte("PK")},
		"dist/APP.WAR":                {Data: []byte("PK")},
		"dist/site.Zip":               {Data: []byte("PK")},
		"dist/lib.jar/main.go":        {Data: []byte("package main\n")}, // a folder so named
		"src/main.go":                 {Data: []byte("package main\n")},
		"src/app.tar.gz":              {Data: []byte("\x1f\x8b")},
	}
	tests := []struct {
		path     string
		wantPath string
		wantErr  string
	}{
		{path: "build/libs/spring-music.jar", wantPath: "build/libs/spring-music.jar"},
		{path: "./build/libs/../libs/spring-music.jar", wantPath: "build/libs/spring-music.jar"},
		{path: "dist/APP.WAR", wantPath: "dist/APP.WAR"},
		{path: "dist/site.Zip", wantPath: "dist/site.Zip"},
		{path: "dist/lib.jar", wantPath: "dist/lib.jar"},
		{path: "build/missing.jar", wantPath: "build/missing.jar"},
		{path: "src/main.go", wantErr: `m/manifest.yml:3:3: error: app "a": path "../src/main.go" names a file; point it at a folder or at a .jar, .war or .zip archive`},
		{path: "src/app.tar.gz", wantErr: `m/manifest.yml:3:3: error: app "a": path "../src/app.tar.gz" names a file; point it at a folder or at a .jar, .war or .zip archive`},
		{path: "../x.jar", wantErr: `m/manifest.yml:3:3: error: app "a": path "../../x.jar" leaves the repository`},
		{path: "/abs/x.jar", wantErr: `m/manifest.yml:3:9: error: path "/abs/x.jar" must be relative to the manifest's folder`},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			fsys := fstest.MapFS{}
			for k, v := range files {
				fsys[k] = v
			}
			p := tt.path
			if !strings.HasPrefix(p, "/") {
				p = "../" + p // the manifest is in m/
			}
			fsys["m/manifest.yml"] = &fstest.MapFile{Data: []byte("applications:\n- name: a\n  path: " + p + "\n")}
			set := LoadFS(fsys, ".")
			var diags []string
			for _, d := range set.Diagnostics {
				diags = append(diags, d.Diagnostic())
			}
			if tt.wantErr != "" {
				if len(diags) != 1 || diags[0] != tt.wantErr || len(set.Apps()) != 0 {
					t.Errorf("diagnostics %q, apps %d; want %q and no app", diags, len(set.Apps()), tt.wantErr)
				}
				return
			}
			if len(diags) != 0 || len(set.Apps()) != 1 {
				t.Fatalf("diagnostics %q, apps %d; want none and one app", diags, len(set.Apps()))
			}
			if got := "m/" + set.Apps()[0].Path; got != "m/../"+tt.wantPath {
				t.Errorf("path %q, want %q", got, "m/../"+tt.wantPath)
			}
		})
	}
}

func TestIsArchive(t *testing.T) {
	for name, want := range map[string]bool{
		"a.jar": true, "a.WAR": true, "b/c.Zip": true, "a.jar/": false, "a.tar.gz": false,
		"jar": false, "a.jarx": false, ".": false, "a.zip.txt": false,
	} {
		if got := IsArchive(name); got != want {
			t.Errorf("IsArchive(%q) = %v, want %v", name, got, want)
		}
	}
}
