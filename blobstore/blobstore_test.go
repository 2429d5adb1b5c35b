package blobstore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

func digestOf(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

func newServer(t *testing.T) (*Store, *httptest.Server, *Client) {
	t.Helper()
	st, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(st.Handler())
	t.Cleanup(srv.Close)
	return st, srv, NewClient(srv.URL)
}

func TestStorePutOpen(t *testing.T) {
	st, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	body := []byte("hello blobs")
	d, n, err := st.Put(ctx, bytes.NewReader(body))
	if err != nil || d != digestOf(body) || n != int64(len(body)) {
		t.Fatalf("Put = %s %d %v", d, n, err)
	}
	if _, _, err := st.Put(ctx, bytes.NewReader(body)); err != nil {
		t.Fatalf("second Put: %v", err)
	}
	rc, size, err := st.Open(d)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(rc)
	rc.Close()
	if !bytes.Equal(got, body) || size != int64(len(body)) {
		t.Fatalf("Open = %q (%d)", got, size)
	}
	if _, err := st.PutDigest(ctx, digestOf([]byte("other")), bytes.NewReader(body)); !errors.Is(err, ErrBadDigest) {
		t.Fatalf("PutDigest with wrong digest: %v", err)
	}
	list, err := st.List()
	if err != nil || len(list) != 1 || list[0] != d {
		t.Fatalf("List = %v %v", list, err)
	}
	if err := st.Delete(d); err != nil || st.Has(d) {
		t.Fatalf("Delete: %v, Has after: %v", err, st.Has(d))
	}
	if _, _, err := st.Open(d); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Open after delete: %v", err)
	}
}

func TestHandlerUploadAndFetch(t *testing.T) {
	_, srv, c := newServer(t)
	ctx := context.Background()
	body := []byte("source tar, say")
	d, err := c.Put(ctx, bytes.NewReader(body))
	if err != nil || d != digestOf(body) {
		t.Fatalf("Put = %s, %v", d, err)
	}
	if ok, err := c.Has(ctx, d); !ok || err != nil {
		t.Fatalf("Has = %v %v", ok, err)
	}
	rc, err := c.Get(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(rc)
	rc.Close()
	if !bytes.Equal(got, body) {
		t.Fatalf("Get = %q", got)
	}
	if err := c.PutBytes(ctx, digestOf([]byte("x")), []byte("y")); err == nil || !strings.Contains(err.Error(), "400") {
		t.Fatalf("PutBytes with wrong digest: %v", err)
	}

	tests := []struct {
		method, path string
		want         int
	}{
		{"GET", "/v2/", 200},
		{"GET", "/v2/droplets/dev/hello/blobs/" + d, 200},
		{"HEAD", "/v2/droplets/dev/hello/blobs/" + d, 200},
		{"GET", "/v2/droplets/dev/hello/blobs/sha256:nothex", 400},
		{"GET", "/v2/droplets/dev/hello/blobs/" + digestOf([]byte("absent")), 404},
		{"GET", "/v2/droplets/dev/hello/manifests/latest", 404},
		{"GET", "/v2/droplets/dev/hello/manifests/" + d, 404}, // not JSON: not a manifest
		{"DELETE", "/v2/droplets/dev/hello/blobs/" + d, 405},
		{"GET", "/v1/blobs/../etc/passwd", 400},
		{"GET", "/elsewhere", 404},
	}
	for _, tt := range tests {
		req, _ := http.NewRequest(tt.method, srv.URL+tt.path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tt.want {
			t.Errorf("%s %s = %d, want %d", tt.method, tt.path, resp.StatusCode, tt.want)
		}
	}
}

// TestPushAndPullImage pushes an image with the client and pulls it back
// with go-containerregistry's registry client, as containerd would.
func TestPushAndPullImage(t *testing.T) {
	_, srv, c := newServer(t)
	img, err := random.Image(2048, 3)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	d, err := c.PushImage(ctx, img)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := img.Digest()
	if d != want.String() {
		t.Fatalf("PushImage digest %s, want %s", d, want)
	}
	ref := ImageRef(srv.URL, "Dev", "Hello_App", d)
	if !strings.HasPrefix(ref, strings.TrimPrefix(srv.URL, "http://")+"/droplets/dev/hello-app@sha256:") {
		t.Fatalf("ImageRef = %s", ref)
	}
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	pulled, err := remote.Image(r, remote.WithContext(ctx))
	if err != nil {
		t.Fatalf("pulling %s: %v", ref, err)
	}
	wl, _ := img.Layers()
	pl, err := pulled.Layers()
	if err != nil || len(pl) != len(wl) {
		t.Fatalf("pulled layers %d (%v), want %d", len(pl), err, len(wl))
	}
	for i := range wl {
		a, _ := wl[i].Digest()
		b, _ := pl[i].Digest()
		if a != b {
			t.Errorf("layer %d: %s != %s", i, a, b)
		}
		rc, err := pl[i].Compressed()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(io.Discard, rc); err != nil {
			t.Fatalf("reading pulled layer: %v", err)
		}
		rc.Close()
	}
	// A second push uploads nothing new and names the same image.
	if d2, err := c.PushImage(ctx, img); err != nil || d2 != d {
		t.Fatalf("second push = %s, %v", d2, err)
	}
}

// TestClientRetriesTransientReads: a read refused with 401 (a Consul
// getting the platform's tokens back) succeeds when the store accepts it
// again; a lasting refusal and a refused upload are not retried forever.
func TestClientRetriesTransientReads(t *testing.T) {
	dir := t.TempDir()
	store, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	body := []byte("source")
	d, _, err := store.Put(context.Background(), bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	var refusals, calls atomic.Int32
	h := store.Handler()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		if refusals.Load() > 0 {
			refusals.Add(-1)
			http.Error(w, `{"error":"unknown token"}`, http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	}))
	defer srv.Close()
	c := NewClient(srv.URL)
	ctx := context.Background()

	refusals.Store(2)
	rc, err := c.Get(ctx, d)
	if err != nil {
		t.Fatalf("Get after two 401s: %v", err)
	}
	rc.Close()
	if calls.Load() != 3 {
		t.Errorf("%d calls, want 3", calls.Load())
	}

	refusals.Store(100)
	calls.Store(0)
	if _, err := c.Get(ctx, d); err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("Get under a lasting refusal: %v", err)
	}
	if calls.Load() != readAttempts {
		t.Errorf("%d calls, want %d", calls.Load(), readAttempts)
	}
	calls.Store(0)
	if _, err := c.Put(ctx, bytes.NewReader(body)); err == nil {
		t.Fatal("a refused upload succeeded")
	}
	if calls.Load() != 1 {
		t.Errorf("an upload was sent %d times", calls.Load())
	}
}
