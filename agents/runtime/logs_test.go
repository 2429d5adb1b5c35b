package runtime

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestTailLines(t *testing.T) {
	var many strings.Builder
	for i := 1; i <= 5000; i++ {
		fmt.Fprintf(&many, "line %d\n", i)
	}
	long := strings.Repeat("x", 3<<20) // longer than TailLines reads
	cases := []struct {
		name    string
		content *string // nil: no file
		n       int
		want    []string
	}{
		{"missing file", nil, 3, nil},
		{"empty file", ptr(""), 3, nil},
		{"n zero", ptr("a\nb\n"), 0, nil},
		{"fewer lines than n", ptr("a\nb\n"), 5, []string{"a", "b"}},
		{"exactly n", ptr("a\nb\nc\n"), 3, []string{"a", "b", "c"}},
		{"last n", ptr("a\nb\nc\nd\n"), 2, []string{"c", "d"}},
		{"no final newline", ptr("a\nb\nc"), 2, []string{"b", "c"}},
		{"empty lines kept", ptr("a\n\nb\n"), 3, []string{"a", "", "b"}},
		{"crlf", ptr("a\r\nb\r\n"), 2, []string{"a", "b"}},
		{"across chunks", ptr(many.String()), 3, []string{"line 4998", "line 4999", "line 5000"}},
		{"many lines wanted", ptr(many.String()), 4000, nil}, // checked by length below
		{"line cut by the read limit is left out", ptr("first\n" + long + "\nend\n"), 3, []string{"end"}},
	}
	dir := t.TempDir()
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(dir, fmt.Sprintf("%d.log", i))
			if c.content != nil {
				if err := os.WriteFile(path, []byte(*c.content), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			got := TailLines(path, c.n)
			if c.name == "many lines wanted" {
				if len(got) != 4000 || got[0] != "line 1001" || got[3999] != "line 5000" {
					t.Fatalf("got %d lines from %q to %q", len(got), got[0], got[len(got)-1])
				}
				return
			}
			if strings.Join(got, "|") != strings.Join(c.want, "|") || len(got) != len(c.want) {
				short := func(s []string) []string {
					out := make([]string, len(s))
					for i, l := range s {
						if len(l) > 40 {
							l = fmt.Sprintf("%s…(%d bytes)", l[:20], len(l))
						}
						out[i] = l
					}
					return out
				}
				t.Fatalf("TailLines(%d) = %q; want %q", c.n, short(got), short(c.want))
			}
		})
	}
}

func ptr(s string) *string { return &s }

func TestIsLoopbackHost(t *testing.T) {
	cases := map[string]bool{
		"127.0.0.1:7070": true, "127.0.0.1": true, "localhost:5000": true, "LOCALHOST": true,
		"[::1]:5000": true, "::1": true, "127.1.2.3:80": true,
		"10.0.0.1:7070": false, "registry.example.com": false, "localhost.example.com:80": false, "": false,
	}
	for host, want := range cases {
		if got := IsLoopbackHost(host); got != want {
			t.Errorf("IsLoopbackHost(%q) = %v; want %v", host, got, want)
		}
	}
}

// TestSettledTail: lines written just after the call are in the tail, and
// a log that keeps growing is read after the limit.
func TestSettledTail(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "i.log")
	if err := os.WriteFile(path, []byte("listening\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	go func() {
		time.Sleep(30 * time.Millisecond)
		f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
		if err == nil {
			f.WriteString("last words\n")
			f.Close()
		}
	}()
	if got := SettledTail(path, 10, 100*time.Millisecond, 2*time.Second); len(got) != 2 || got[1] != "last words" {
		t.Fatalf("SettledTail = %q, want the late line", got)
	}
	start := time.Now()
	if got := SettledTail(filepath.Join(dir, "none.log"), 10, 10*time.Millisecond, time.Second); got != nil || time.Since(start) > 500*time.Millisecond {
		t.Fatalf("a missing log: %q after %v", got, time.Since(start))
	}
}
