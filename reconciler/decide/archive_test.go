package decide

import (
	"archive/zip"
	"bytes"
	"io"
	"strings"
	"testing"
)

// zipOf builds a zip archive of name → body.
func zipOf(t *testing.T, files ...string) string {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for i := 0; i+1 < len(files); i += 2 {
		w, err := zw.Create(files[i])
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(w, files[i+1]); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

const jarYAML = `applications:
- name: music
  instances: 1
  path: build/libs/music.jar
`

// TestArchiveSourceRelease: an app whose path names an archive gets a
// release whose source is the archive: its tree is the archive's hash, so
// a new archive is a new release (and staging) and the same archive, or an
// edit of the manifest that does not touch the run spec, is the same.
func TestArchiveSourceRelease(t *testing.T) {
	v1 := zipOf(t, "BOOT-INF/classes/App.class", "v1")
	base := map[string]string{"music/manifest.yml": jarYAML, "music/build/libs/music.jar": v1, "music/src/App.java": "class App {}"}
	r0 := onlyRelease(t, build(t, base), "music")
	if r0.SourcePath != "music/build/libs/music.jar" || r0.SourceTree == "" {
		t.Fatalf("release %+v", r0)
	}
	tests := []struct {
		name   string
		change func(map[string]string)
		same   bool
	}{
		{"nothing", func(map[string]string) {}, true},
		{"the same archive rebuilt byte for byte", func(f map[string]string) {
			f["music/build/libs/music.jar"] = zipOf(t, "BOOT-INF/classes/App.class", "v1")
		}, true},
		{"instance count", func(f map[string]string) {
			f["music/manifest.yml"] = strings.Replace(jarYAML, "instances: 1", "instances: 3", 1)
		}, true},
		{"a file beside the archive", func(f map[string]string) { f["music/src/App.java"] = "class App { int x; }" }, true},
		{"a new archive", func(f map[string]string) {
			f["music/build/libs/music.jar"] = zipOf(t, "BOOT-INF/classes/App.class", "v2")
		}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			files := map[string]string{}
			for k, v := range base {
				files[k] = v
			}
			tc.change(files)
			r := onlyRelease(t, build(t, files), "music")
			if (r.ID == r0.ID) != tc.same || (r.SourceTree == r0.SourceTree) != tc.same || (StagingKey(r) == StagingKey(r0)) != tc.same {
				t.Fatalf("release %s tree %s vs %s tree %s: want same=%v", r.ID, r.SourceTree, r0.ID, r0.SourceTree, tc.same)
			}
		})
	}
}

// TestArchiveSourceRefused: a missing, corrupt or unsafe archive refuses
// the whole commit at the manifest's path line, naming the archive (and
// the entry).
func TestArchiveSourceRefused(t *testing.T) {
	tests := []struct {
		name    string
		archive string // "" for none
		wantMsg string
	}{
		{"missing", "", `app "music": source archive "music/build/libs/music.jar" is not in the commit`},
		{"corrupt", "PK\x03\x04 not really a zip", `app "music": source archive music/build/libs/music.jar: not a readable zip file: zip: not a valid zip file`},
		{"entry leaving the root", zipOf(t, "ok.txt", "x", "../evil", "x"),
			`app "music": source archive music/build/libs/music.jar: entry "../evil": unsafe archive entry: its name leaves the archive's root`},
		{"absolute entry", zipOf(t, "/etc/evil", "x"),
			`app "music": source archive music/build/libs/music.jar: entry "/etc/evil": unsafe archive entry: absolute name`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			files := map[string]string{"other/manifest.yml": helloYAML, "music/manifest.yml": jarYAML}
			if tc.archive != "" {
				files["music/build/libs/music.jar"] = tc.archive
			}
			p := build(t, files)
			if len(p.Apps) != 0 || len(p.Releases) != 0 || len(p.Errors) != 1 {
				t.Fatalf("apps %d, releases %d, errors %+v: want the commit refused", len(p.Apps), len(p.Releases), p.Errors)
			}
			e := p.Errors[0]
			if e.File != "music/manifest.yml" || e.Line != 4 || e.Col != 3 || e.App != "music" || e.Message != tc.wantMsg {
				t.Fatalf("error %s:%d:%d %q\nwant music/manifest.yml:4:3 %q", e.File, e.Line, e.Col, e.Message, tc.wantMsg)
			}
		})
	}
}
