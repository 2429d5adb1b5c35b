package staging

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/driftless/driftless/model"
)

// Stacks.
const (
	// StackTiny is driftless's smallest stack: Debian's static busybox
	// with its common applets, a vcap user, /tmp and the host's CA
	// certificates. Static binaries run on it.
	StackTiny = "tiny"
	// StackBookworm is Debian 12 (debootstrap minbase) with
	// ca-certificates, tzdata, nodejs, npm and python3, built on the cell
	// by scripts/build-stack.sh into <stacks>/bookworm/rootfs.
	StackBookworm = "bookworm"
)

// stackAliases are the stack names manifests may give. Cloud Foundry's
// cflinuxfs stacks are full Ubuntu systems: bookworm is the closest.
var stackAliases = map[string]string{StackTiny: StackTiny, StackBookworm: StackBookworm,
	"cflinuxfs3": StackBookworm, "cflinuxfs4": StackBookworm}

// BusyboxPath is where Debian's busybox-static puts busybox.
const BusyboxPath = "/bin/busybox"

// CACertsPath is the host's CA bundle copied into the stack.
const CACertsPath = "/etc/ssl/certs/ca-certificates.crt"

// applets are the busybox commands the stack links in /bin.
var applets = []string{"[", "awk", "basename", "cat", "chmod", "cp", "cut", "date", "dirname", "echo", "env", "expr",
	"false", "find", "grep", "gunzip", "gzip", "head", "hostname", "id", "kill", "ln", "ls", "mkdir", "mv", "nc",
	"printf", "ps", "pwd", "readlink", "rm", "sed", "seq", "sh", "sleep", "sort", "tail", "tar", "tee", "test",
	"timeout", "touch", "tr", "true", "uname", "uniq", "wc", "wget", "xargs"}

// resolveStack maps a manifest's stack to the stack that runs the app with
// bp: the one named (it must be one bp supports), else bp's default.
func resolveStack(name string, bp Buildpack) (string, error) {
	if name == "" {
		return bp.Stacks()[0], nil
	}
	s, ok := stackAliases[strings.ToLower(name)]
	if !ok {
		return "", fmt.Errorf("unknown stack %q (driftless has %s and %s; cflinuxfs3 and cflinuxfs4 map to %s)",
			name, StackTiny, StackBookworm, StackBookworm)
	}
	if !slices.Contains(bp.Stacks(), s) {
		return "", fmt.Errorf("the %s buildpack does not run on stack %s (it runs on %s)", bp.Name(), s, strings.Join(bp.Stacks(), ", "))
	}
	return s, nil
}

// stackLayerFile returns the path of the stack's layer tar, built once and
// cached under cacheDir: tiny from busybox and the CA bundle, bookworm from
// the root file system under stacksDir, both with fixed times and order so
// that the layer (and every droplet on it) is reproducible.
func stackLayerFile(cacheDir, stacksDir, stack string) (string, error) {
	if stack == StackBookworm {
		return rootfsLayer(cacheDir, filepath.Join(stacksDir, StackBookworm))
	}
	return tinyLayer(cacheDir)
}

// cellLayerFile returns the path of the layer tar of a plan's named layer
// over stack (LayerJRE: <stacksDir>/<stack>-jre, built by
// `scripts/build-stack.sh --jre`), cached like a stack's. The layer must
// have been built over the stack as it is now (its base-stamp).
func cellLayerFile(cacheDir, stacksDir, stack, name string) (string, error) {
	if name != LayerJRE || stack != StackBookworm {
		return "", fmt.Errorf("no %s layer for stack %s on this cell", name, stack)
	}
	dir := filepath.Join(stacksDir, stack+"-"+name)
	base, err := os.ReadFile(filepath.Join(dir, "base-stamp"))
	if err != nil {
		return "", fmt.Errorf("the JRE layer is not installed on this cell (run scripts/build-stack.sh --jre %s, part of `make setup`): %w", dir, err)
	}
	stamp, err := os.ReadFile(filepath.Join(stacksDir, stack, "stamp"))
	if err != nil {
		return "", fmt.Errorf("stack %s is not installed on this cell (run scripts/build-stack.sh, part of `make setup`): %w", stack, err)
	}
	if !bytes.Equal(base, stamp) {
		return "", fmt.Errorf("the JRE layer in %s was built over another %s stack than this cell's: rebuild it (make stacks)", dir, stack)
	}
	return rootfsLayer(cacheDir, dir)
}

// rootfsLayer packs <dir>/rootfs, keyed by <dir>/stamp (written by
// scripts/build-stack.sh with the list of installed packages) and, for a
// layer over a stack, <dir>/base-stamp.
func rootfsLayer(cacheDir, dir string) (string, error) {
	stamp, err := os.ReadFile(filepath.Join(dir, "stamp"))
	if err != nil {
		return "", fmt.Errorf("stack %s is not installed on this cell (run scripts/build-stack.sh %s, part of `make setup`): %w",
			filepath.Base(dir), dir, err)
	}
	if base, err := os.ReadFile(filepath.Join(dir, "base-stamp")); err == nil {
		stamp = append(append(stamp, 0), base...)
	}
	sum := sha256.Sum256(stamp)
	cache := filepath.Join(cacheDir, "stack-"+filepath.Base(dir)+"-"+hex.EncodeToString(sum[:])[:16]+".tar")
	if _, err := os.Stat(cache); err == nil {
		return cache, nil
	}
	tmp := cache + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return "", fmt.Errorf("packing stack %s: %w", filepath.Base(dir), err)
	}
	err = writeTree(f, filepath.Join(dir, "rootfs"))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, cache)
	}
	if err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("packing stack %s: %w", filepath.Base(dir), err)
	}
	return cache, nil
}

// tinyLayer returns the tar of the tiny stack, built once per busybox and
// CA bundle and cached on disk under cacheDir.
func tinyLayer(cacheDir string) (string, error) {
	bb, err := os.ReadFile(BusyboxPath)
	if err != nil {
		return "", fmt.Errorf("reading %s for the stack (apt-get install busybox-static): %w", BusyboxPath, err)
	}
	certs, err := os.ReadFile(CACertsPath)
	if err != nil {
		certs = nil // no CA bundle on this host: the stack goes without
	}
	sum := sha256.New()
	sum.Write(bb)
	sum.Write(certs)
	cache := filepath.Join(cacheDir, "stack-"+StackTiny+"-"+hex.EncodeToString(sum.Sum(nil))[:16]+".tar")
	if _, err := os.Stat(cache); err == nil {
		return cache, nil
	}
	var buf bytes.Buffer
	if err := writeStack(&buf, bb, certs); err != nil {
		return "", err
	}
	tmp := cache + ".tmp"
	if err := os.WriteFile(tmp, buf.Bytes(), 0o644); err != nil {
		return "", fmt.Errorf("caching the tiny stack: %w", err)
	}
	if err := os.Rename(tmp, cache); err != nil {
		return "", fmt.Errorf("caching the tiny stack: %w", err)
	}
	return cache, nil
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
	passwd := fmt.Sprintf("root:x:0:0:root:/root:/bin/sh\nvcap:x:%d:%d:vcap:/home/vcap:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n", model.VcapUID, model.VcapUID)
	group := fmt.Sprintf("root:x:0:\nvcap:x:%d:\nnogroup:x:65534:\n", model.VcapUID)
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
		func() error { return t.dir("home/vcap", 0o755, model.VcapUID) },
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
