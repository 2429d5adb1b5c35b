package runtime

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/mutate"
)

// testExec: processes started in a running container (sidecars) share its
// user, environment and file system, have their own log, report their
// exit, are found again by a new runtime (an agent restart) and end with
// the container; their logs go with the container's.
func testExec(t *testing.T, r *Runtime, e *env) {
	s := start(t, r, e, Spec{Env: []string{"FOO=from-the-instance"}, Args: []string{"/bin/sh", "-c",
		`echo main; while true; do if [ -f /tmp/from-sidecar ]; then echo saw-the-sidecar-file; fi; sleep 0.2; done`}})
	waitLog(t, r.LogPath(s.ID), "main")

	long, err := r.Exec(timeout(t, 30*time.Second), s.ID, ExecSpec{ID: "sidecar-a", Args: []string{"/bin/sh", "-c",
		`echo "sidecar uid=$(id -u) gid=$(id -g) FOO=$FOO"; touch /tmp/from-sidecar; exec sleep 300`}})
	if err != nil {
		t.Fatal(err)
	}
	logA := ExecLogPath(r.LogPath(s.ID), "sidecar-a")
	waitLog(t, logA, "sidecar uid=2000 gid=2000 FOO=from-the-instance")
	waitLog(t, r.LogPath(s.ID), "saw-the-sidecar-file")
	if strings.Contains(readFile(t, r.LogPath(s.ID)), "sidecar uid") {
		t.Error("the sidecar's output is in the container's log")
	}

	short, err := r.Exec(timeout(t, 30*time.Second), s.ID, ExecSpec{ID: "sidecar-b", Args: []string{"/bin/sh", "-c", "sleep 0.5; exit 4"}})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case ex := <-short:
		if ex.Err != nil || ex.Status != 4 {
			t.Fatalf("sidecar-b's exit: %+v; want status 4", ex)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("sidecar-b's exit never came")
	}
	select {
	case ex := <-long:
		t.Fatalf("sidecar-a exited: %+v", ex)
	default:
	}

	// A new runtime (the agent restarted) watches sidecar-a again; it ends
	// with its container.
	r2 := newRuntime(t, e)
	again, err := r2.WatchExec(timeout(t, 30*time.Second), s.ID, "sidecar-a")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r2.WatchExec(timeout(t, 10*time.Second), s.ID, "sidecar-never"); !errors.Is(err, ErrNotFound) {
		t.Errorf("watching a process never started: %v; want ErrNotFound", err)
	}
	if _, err := r2.Exec(timeout(t, 10*time.Second), "i-never-started", ExecSpec{ID: "x", Args: []string{"true"}}); !errors.Is(err, ErrNotFound) {
		t.Errorf("exec in a missing container: %v; want ErrNotFound", err)
	}
	if _, err := r2.Exec(timeout(t, 10*time.Second), s.ID, ExecSpec{ID: "../x", Args: []string{"true"}}); err == nil {
		t.Error("an exec id with a path was taken")
	}
	if err := r2.Stop(timeout(t, 30*time.Second), s.ID, time.Second); err != nil {
		t.Fatal(err)
	}
	select {
	case ex := <-again:
		if ex.Err != nil {
			t.Fatalf("sidecar-a's exit with its container: %+v", ex)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("sidecar-a outlived its container")
	}
	if err := r2.RemoveLog(s.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(logA); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("sidecar-a's log after RemoveLog: %v", err)
	}
}

// testImageUser: an image's USER is never used (a docker image's `USER
// app` or `USER root` without an /etc/passwd entry does not stop it):
// the container runs as the spec's uid, with the image's command.
func testImageUser(t *testing.T, r *Runtime, e *env) {
	img := testImage(t, "user")
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.Config.User = "someone-unknown"
	cf.Config.Cmd = []string{"/bin/sh", "-c", "echo uid=$(id -u) gid=$(id -g) IMAGE_VAR=$IMAGE_VAR"}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatal(err)
	}
	ref := e.reg.push(t, "droplets/dev/user", img)
	if err := r.Pull(timeout(t, 60*time.Second), ref); err != nil {
		t.Fatal(err)
	}
	s := start(t, r, e, Spec{Image: ref})
	if ex := waitExit(t, r, s.ID, 30*time.Second); ex.Status != 0 {
		t.Fatalf("exit %+v; log:\n%s", ex, readFile(t, r.LogPath(s.ID)))
	}
	if log := readFile(t, r.LogPath(s.ID)); !strings.Contains(log, "uid=2000 gid=2000 IMAGE_VAR=from-image") {
		t.Errorf("log %q", log)
	}
}
