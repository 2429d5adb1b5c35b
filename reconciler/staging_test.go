package reconciler

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"context"
	"io"
	"io/fs"
	"strings"
	"testing"
)

// folderCommit is a commit that records the folder WriteTar was asked for.
type folderCommit struct {
	commit
	tarred *string
}

func (c folderCommit) WriteTar(_ context.Context, p string, w io.Writer, exclude ...string) error {
	*c.tarred = p + " without " + strings.Join(exclude, ",")
	return nil
}

// TestWriteSource: the source sent to the stager is the app's folder, or
// for a .jar, .war or .zip file the archive's contents with their modes;
// an archive with an unsafe entry is refused with the entry named, and
// nothing of it is written.
func TestWriteSource(t *testing.T) {
	zipped := func(entries ...struct {
		name string
		mode fs.FileMode
		body string
	}) string {
		var buf bytes.Buffer
		zw := zip.NewWriter(&buf)
		for _, e := range entries {
			h := &zip.FileHeader{Name: e.name, Method: zip.Deflate}
			h.SetMode(e.mode)
			w, err := zw.CreateHeader(h)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.WriteString(w, e.body); err != nil {
				t.Fatal(err)
			}
		}
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
		return buf.String()
	}
	type ent = struct {
		name string
		mode fs.FileMode
		body string
	}
	good := zipped(ent{"WEB-INF/web.xml", 0o644, "<web-app/>"}, ent{"bin/start", 0o755, "#!/bin/sh\n"})
	evil := zipped(ent{"index.html", 0o644, "hi"}, ent{"../../etc/evil", 0o644, "x"})
	link := zipped(ent{"link", fs.ModeSymlink | 0o777, "/etc/passwd"})
	tests := []struct {
		name    string
		path    string
		want    []string // tar entries "name mode body", or the folder tarred
		wantErr string
	}{
		{name: "folder", path: "web", want: []string{"web without manifest.yml,manifest.yaml,vars.yml,vars-preview.yml"}},
		{name: "folder named like an archive", path: "site.zip", want: []string{"site.zip without manifest.yml,manifest.yaml,vars.yml,vars-preview.yml"}},
		{name: "war", path: "web/target/app.WAR", want: []string{
			"WEB-INF/ -rwxr-xr-x ", "WEB-INF/web.xml -rw-r--r-- <web-app/>", "bin/ -rwxr-xr-x ", "bin/start -rwxr-xr-x #!/bin/sh\n",
		}},
		{name: "entry leaving the root", path: "web/evil.zip", wantErr: `commit c1: archive web/evil.zip: entry "../../etc/evil": unsafe archive entry: its name leaves the archive's root`},
		{name: "symlink", path: "web/link.jar", wantErr: `commit c1: archive web/link.jar: entry "link": unsafe archive entry: symlinks are not unpacked`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var tarred string
			c := folderCommit{newCommit("c1", map[string]string{
				"web/manifest.yml": "applications: []\n", "web/target/app.WAR": good,
				"web/evil.zip": evil, "web/link.jar": link, "site.zip/index.html": "hi",
			}), &tarred}
			var buf bytes.Buffer
			err := writeSource(context.Background(), c, tt.path, &buf)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr || buf.Len() != 0 {
					t.Fatalf("err %v (%d bytes written), want %s and nothing written", err, buf.Len(), tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := []string{tarred}
			if tarred == "" {
				got = nil
				tr := tar.NewReader(&buf)
				for {
					h, err := tr.Next()
					if err == io.EOF {
						break
					}
					if err != nil {
						t.Fatal(err)
					}
					body, _ := io.ReadAll(tr)
					got = append(got, h.Name+" "+fs.FileMode(h.Mode).String()+" "+string(body))
				}
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("source:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}
