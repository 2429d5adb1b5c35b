package archive

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"strings"
	"testing"
	"testing/fstest"
)

// zipEntry is one entry of a zip built for a test.
type zipEntry struct {
	name string
	mode fs.FileMode // 0: no Unix mode recorded (as made on Windows)
	body string
	raw  *zip.FileHeader // written as is with CreateRaw when set
}

// makeZip builds a zip archive of entries.
func makeZip(t *testing.T, entries ...zipEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, e := range entries {
		var w io.Writer
		var err error
		switch {
		case e.raw != nil:
			w, err = zw.CreateRaw(e.raw)
		case e.mode != 0:
			h := &zip.FileHeader{Name: e.name, Method: zip.Deflate}
			h.SetMode(e.mode)
			w, err = zw.CreateHeader(h)
		default:
			w, err = zw.CreateHeader(&zip.FileHeader{Name: e.name, Method: zip.Deflate, CreatorVersion: 0})
		}
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
	return buf.Bytes()
}

// readTar lists a tar as "name mode type [body]" lines.
func readTar(t *testing.T, data []byte) []string {
	t.Helper()
	tr := tar.NewReader(bytes.NewReader(data))
	var out []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		line := h.Name + " " + fs.FileMode(h.Mode).String() + " " + string(h.Typeflag)
		if h.Typeflag == tar.TypeReg {
			line += " " + string(body)
		}
		if !h.ModTime.Equal(Epoch) || h.Uid != 0 || h.Gid != 0 {
			t.Errorf("%s: mtime %v uid %d gid %d", h.Name, h.ModTime, h.Uid, h.Gid)
		}
		out = append(out, line)
	}
}

// TestWriteTar: the tar holds the archive's files with their modes,
// folders the archive leaves out made before their content.
func TestWriteTar(t *testing.T) {
	tests := []struct {
		name    string
		entries []zipEntry
		want    []string
	}{
		{
			name: "jar with Unix modes",
			entries: []zipEntry{
				{name: "META-INF/", mode: fs.ModeDir | 0o755},
				{name: "META-INF/MANIFEST.MF", mode: 0o644, body: "Main-Class: App\n"},
				{name: "bin/run", mode: 0o755, body: "#!/bin/sh\n"},
				{name: "conf/secret.txt", mode: 0o600, body: "s"},
			},
			want: []string{
				"META-INF/ -rwxr-xr-x 5",
				"META-INF/MANIFEST.MF -rw-r--r-- 0 Main-Class: App\n",
				"bin/ -rwxr-xr-x 5",
				"bin/run -rwxr-xr-x 0 #!/bin/sh\n",
				"conf/ -rwxr-xr-x 5",
				"conf/secret.txt -rw------- 0 s",
			},
		},
		{
			name:    "zip without Unix modes",
			entries: []zipEntry{{name: "a/b/c.txt", body: "c"}, {name: "./top.txt", body: "t"}, {name: "a\\win.txt", body: "w"}},
			want: []string{
				"a/ -rwxr-xr-x 5", "a/b/ -rwxr-xr-x 5", "a/b/c.txt -rw-r--r-- 0 c",
				"top.txt -rw-r--r-- 0 t", "a/win.txt -rw-r--r-- 0 w",
			},
		},
		{name: "empty", entries: nil, want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := makeZip(t, tt.entries...)
			var buf bytes.Buffer
			if err := WriteTar(context.Background(), "app.jar", bytes.NewReader(data), int64(len(data)), &buf); err != nil {
				t.Fatal(err)
			}
			got := readTar(t, buf.Bytes())
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("tar:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

// TestRefused: an archive with an entry that escapes the root, an
// absolute name, a symlink, more than MaxBytes, or that is not a zip is
// refused by Check and WriteTar, naming the archive and the entry, and
// WriteTar writes nothing.
func TestRefused(t *testing.T) {
	ok := zipEntry{name: "ok.txt", mode: 0o644, body: "fine"}
	tests := []struct {
		name    string
		data    func(t *testing.T) []byte
		want    string
		wantErr error
	}{
		{"parent", func(t *testing.T) []byte { return makeZip(t, ok, zipEntry{name: "../evil", body: "x"}) },
			`archive b/app.jar: entry "../evil": unsafe archive entry: its name leaves the archive's root`, ErrUnsafeEntry},
		{"parent inside", func(t *testing.T) []byte { return makeZip(t, zipEntry{name: "a/../../evil", body: "x"}) },
			`archive b/app.jar: entry "a/../../evil": unsafe archive entry: its name leaves the archive's root`, ErrUnsafeEntry},
		{"absolute", func(t *testing.T) []byte { return makeZip(t, zipEntry{name: "/etc/cron.d/evil", body: "x"}) },
			`archive b/app.jar: entry "/etc/cron.d/evil": unsafe archive entry: absolute name`, ErrUnsafeEntry},
		{"drive letter", func(t *testing.T) []byte { return makeZip(t, zipEntry{name: "C:\\evil", body: "x"}) },
			`archive b/app.jar: entry "C:\\evil": unsafe archive entry: absolute name`, ErrUnsafeEntry},
		{"symlink", func(t *testing.T) []byte {
			return makeZip(t, ok, zipEntry{name: "link", mode: fs.ModeSymlink | 0o777, body: "/etc/passwd"})
		}, `archive b/app.jar: entry "link": unsafe archive entry: symlinks are not unpacked`, ErrUnsafeEntry},
		{"named pipe", func(t *testing.T) []byte { return makeZip(t, zipEntry{name: "fifo", mode: fs.ModeNamedPipe | 0o644}) },
			`archive b/app.jar: entry "fifo": unsafe archive entry: p--------- is not a file or a folder`, ErrUnsafeEntry},
		{"too large", func(t *testing.T) []byte {
			return makeZip(t, zipEntry{raw: &zip.FileHeader{Name: "big", Method: zip.Store, UncompressedSize64: MaxBytes + 1}})
		}, `archive b/app.jar: unpacks to more than 1024 MiB: archive too large`, ErrTooLarge},
		{"not a zip", func(*testing.T) []byte { return []byte("this is not a zip file at all") },
			`archive b/app.jar: not a readable zip file: zip: not a valid zip file`, zip.ErrFormat},
		{"truncated", func(t *testing.T) []byte { d := makeZip(t, ok); return d[:len(d)-10] },
			`archive b/app.jar: not a readable zip file: zip: not a valid zip file`, zip.ErrFormat},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := tt.data(t)
			err := Check("b/app.jar", bytes.NewReader(data), int64(len(data)))
			if err == nil || err.Error() != tt.want || !errors.Is(err, tt.wantErr) {
				t.Errorf("Check: %v\nwant: %s (%v)", err, tt.want, tt.wantErr)
			}
			var buf bytes.Buffer
			err = WriteTar(context.Background(), "b/app.jar", bytes.NewReader(data), int64(len(data)), &buf)
			if err == nil || err.Error() != tt.want {
				t.Errorf("WriteTar: %v\nwant: %s", err, tt.want)
			}
			if buf.Len() != 0 {
				t.Errorf("WriteTar wrote %d bytes of a refused archive", buf.Len())
			}
		})
	}
}

// noReaderAt hides the io.ReaderAt of an fs's files.
type noReaderAt struct{ fs.FS }

func (n noReaderAt) Open(name string) (fs.File, error) {
	f, err := n.FS.Open(name)
	if err != nil {
		return nil, err
	}
	return struct{ fs.File }{f}, nil
}

// TestOpen: an archive is read in place or from a temporary copy; a
// folder or a missing file is refused.
func TestOpen(t *testing.T) {
	data := makeZip(t, zipEntry{name: "a.txt", mode: 0o644, body: "a"})
	files := fstest.MapFS{"x/app.zip": {Data: data}, "x/dir.zip/f": {Data: []byte("f")}}
	tests := []struct {
		name    string
		fsys    fs.FS
		path    string
		wantErr string
	}{
		{"in place", files, "x/app.zip", ""},
		{"copied", noReaderAt{files}, "x/app.zip", ""},
		{"folder", files, "x/dir.zip", "archive x/dir.zip: not a regular file (d---------)"},
		{"missing", files, "x/none.zip", "archive x/none.zip: open x/none.zip: file does not exist"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := Open(tt.fsys, tt.path)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("Open: %v, want %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if f.Size != int64(len(data)) {
				t.Errorf("size %d, want %d", f.Size, len(data))
			}
			if err := Check(tt.path, f, f.Size); err != nil {
				t.Error(err)
			}
		})
	}
}
