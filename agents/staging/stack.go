package staging

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// StackTiny is driftless's base stack: Debian's static busybox with its
// common applets, a vcap user, /tmp and the host's CA certificates.
const StackTiny = "tiny"

// stackAliases are stack names manifests may give that run on StackTiny.
var stackAliases = map[string]string{"": StackTiny, StackTiny: StackTiny, "cflinuxfs3": StackTiny, "cflinuxfs4": StackTiny}

// BusyboxPath is where Debian's busybox-static puts busybox.
const BusyboxPath = "/bin/busybox"

// CACertsPath is the host's CA bundle copied into the stack.
const CACertsPath = "/etc/ssl/certs/ca-certificates.crt"

// applets are the busybox commands the stack links in /bin.
var applets = []string{"[", "awk", "basename", "cat", "chmod", "cp", "cut", "date", "dirname", "echo", "env", "expr",
	"false", "find", "grep", "gunzip", "gzip", "head", "hostname", "id", "kill", "ln", "ls", "mkdir", "mv", "nc",
	"printf", "ps", "pwd", "readlink", "rm", "sed", "seq", "sh", "sleep", "sort", "tail", "tar", "tee", "test",
	"timeout", "touch", "tr", "true", "uname", "uniq", "wc", "wget", "xargs"}

// resolveStack maps a manifest's stack to the stack that runs it.
func resolveStack(name string) (string, error) {
	if s, ok := stackAliases[strings.ToLower(name)]; ok {
		return s, nil
	}
	return "", fmt.Errorf("unknown stack %q (driftless has %q; cflinuxfs3 and cflinuxfs4 map to it)", name, StackTiny)
}

// stackLayer returns the tar of the tiny stack, built once per busybox and
// CA bundle and cached on disk under cacheDir.
func stackLayer(cacheDir string) ([]byte, error) {
	bb, err := os.ReadFile(BusyboxPath)
	if err != nil {
		return nil, fmt.Errorf("reading %s for the stack (apt-get install busybox-static): %w", BusyboxPath, err)
	}
	certs, err := os.ReadFile(CACertsPath)
	if err != nil {
		certs = nil // no CA bundle on this host: the stack goes without
	}
	sum := sha256.New()
	sum.Write(bb)
	sum.Write(certs)
	cache := filepath.Join(cacheDir, "stack-"+StackTiny+"-"+hex.EncodeToString(sum.Sum(nil))[:16]+".tar")
	if b, err := os.ReadFile(cache); err == nil {
		return b, nil
	}
	var buf bytes.Buffer
	if err := writeStack(&buf, bb, certs); err != nil {
		return nil, err
	}
	tmp := cache + ".tmp"
	if err := os.WriteFile(tmp, buf.Bytes(), 0o644); err == nil {
		_ = os.Rename(tmp, cache)
	}
	return buf.Bytes(), nil
}

func writeStack(buf *bytes.Buffer, busybox, certs []byte) error {
	t := newTarWriter(buf)
	steps := []func() error{
		func() error { return t.dir("bin", 0o755, 0) },
		func() error { return t.file("bin/busybox", 0o755, 0, busybox) },
	}
	for _, a := range applets {
		steps = append(steps, func() error { return t.symlink("bin/"+a, "busybox") })
	}
	passwd := fmt.Sprintf("root:x:0:0:root:/root:/bin/sh\nvcap:x:%d:%d:vcap:/home/vcap:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n", VcapUID, VcapUID)
	group := fmt.Sprintf("root:x:0:\nvcap:x:%d:\nnogroup:x:65534:\n", VcapUID)
	steps = append(steps,
		func() error { return t.dir("etc", 0o755, 0) },
		func() error { return t.file("etc/group", 0o644, 0, []byte(group)) },
		func() error {
			return t.file("etc/nsswitch.conf", 0o644, 0, []byte("passwd: files\ngroup: files\nhosts: files dns\n"))
		},
		func() error { return t.file("etc/passwd", 0o644, 0, []byte(passwd)) },
	)
	if certs != nil {
		steps = append(steps,
			func() error { return t.dir("etc/ssl", 0o755, 0) },
			func() error { return t.dir("etc/ssl/certs", 0o755, 0) },
			func() error { return t.file("etc/ssl/certs/ca-certificates.crt", 0o644, 0, certs) },
		)
	}
	steps = append(steps,
		func() error { return t.dir("home", 0o755, 0) },
		func() error { return t.dir("home/vcap", 0o755, VcapUID) },
		func() error { return t.dir("root", 0o700, 0) },
		func() error { return t.header(tarDir("tmp", 0o1777)) },
		func() error { return t.dir("usr", 0o755, 0) },
		func() error { return t.dir("usr/bin", 0o755, 0) },
		func() error { return t.dir("usr/local", 0o755, 0) },
		func() error { return t.dir("usr/local/bin", 0o755, 0) },
		func() error { return t.dir("var", 0o755, 0) },
		func() error { return t.symlink("var/tmp", "../tmp") },
	)
	for _, s := range steps {
		if err := s(); err != nil {
			return err
		}
	}
	return t.close()
}

// tarDir is a root-owned folder entry with mode (sticky bit allowed).
func tarDir(name string, mode int64) *tar.Header {
	return &tar.Header{Typeflag: tar.TypeDir, Name: name + "/", Mode: mode}
}
