package blobstore

import (
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// DefaultMaxUpload bounds one upload.
const DefaultMaxUpload = 4 << 30

// Media types a stored manifest may declare.
const (
	MediaTypeOCIManifest    = "application/vnd.oci.image.manifest.v1+json"
	MediaTypeDockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
)

// Handler serves the store:
//
//	GET  /v2/                                   OCI API version check
//	GET|HEAD /v2/<name>/blobs/<digest>          a blob
//	GET|HEAD /v2/<name>/manifests/<digest>      a manifest, with its media type
//	POST /v1/blobs                              upload; answers {"digest":…,"size":…}
//	PUT  /v1/blobs/<digest>                     upload of known digest (verified)
//	GET|HEAD /v1/blobs/<digest>                 a blob
//
// Repository names are ignored: blobs are found by digest alone. Tags are
// not served; droplets are always referenced by digest.
func (s *Store) Handler() http.Handler {
	return &handler{s: s, maxUpload: DefaultMaxUpload}
}

type handler struct {
	s         *Store
	maxUpload int64
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	switch {
	case p == "/v2/" || p == "/v2":
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
		_, _ = io.WriteString(w, "{}")
	case strings.HasPrefix(p, "/v2/"):
		h.serveOCI(w, r, strings.TrimPrefix(p, "/v2/"))
	case p == "/v1/blobs" || p == "/v1/blobs/":
		if r.Method != http.MethodPost {
			methodNotAllowed(w, "POST")
			return
		}
		h.upload(w, r, "")
	case strings.HasPrefix(p, "/v1/blobs/"):
		digest := strings.TrimPrefix(p, "/v1/blobs/")
		switch r.Method {
		case http.MethodPut:
			h.upload(w, r, digest)
		case http.MethodGet, http.MethodHead:
			h.serveBlob(w, r, digest, "application/octet-stream")
		default:
			methodNotAllowed(w, "GET, HEAD, PUT")
		}
	default:
		http.NotFound(w, r)
	}
}

// serveOCI serves /v2/<name>/{blobs,manifests}/<reference>.
func (h *handler) serveOCI(w http.ResponseWriter, r *http.Request, rest string) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		ociError(w, http.StatusMethodNotAllowed, "UNSUPPORTED", "this registry is read-only")
		return
	}
	i := strings.LastIndex(rest, "/")
	if i < 0 {
		ociError(w, http.StatusNotFound, "NAME_UNKNOWN", "no such path")
		return
	}
	ref := rest[i+1:]
	rest = rest[:i]
	kind := rest[strings.LastIndex(rest, "/")+1:]
	ref, _ = url.PathUnescape(ref)
	switch kind {
	case "blobs":
		if !ValidDigest(ref) {
			ociError(w, http.StatusBadRequest, "DIGEST_INVALID", "blobs are addressed by sha256 digest")
			return
		}
		h.serveBlob(w, r, ref, "application/octet-stream")
	case "manifests":
		if !ValidDigest(ref) {
			ociError(w, http.StatusNotFound, "MANIFEST_UNKNOWN", "tags are not served; reference droplets by digest")
			return
		}
		h.serveBlob(w, r, ref, "")
	default:
		ociError(w, http.StatusNotFound, "NAME_UNKNOWN", "no such path")
	}
}

// serveBlob writes a blob. An empty contentType means a manifest: its type
// is read from its mediaType field.
func (h *handler) serveBlob(w http.ResponseWriter, r *http.Request, digest, contentType string) {
	if !ValidDigest(digest) {
		http.Error(w, "bad digest "+strconv.Quote(digest), http.StatusBadRequest)
		return
	}
	if r.Method == http.MethodHead {
		_ = h.s.Touch(digest) // a pusher checking for it will reference it
	}
	rc, size, err := h.s.Open(digest)
	if errors.Is(err, fs.ErrNotExist) {
		code := "BLOB_UNKNOWN"
		if contentType == "" {
			code = "MANIFEST_UNKNOWN"
		}
		ociError(w, http.StatusNotFound, code, "no blob "+digest)
		return
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	defer rc.Close()
	if contentType == "" {
		if size > 4<<20 {
			ociError(w, http.StatusNotFound, "MANIFEST_UNKNOWN", digest+" is not a manifest")
			return
		}
		body, err := io.ReadAll(rc)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		var m struct {
			MediaType string `json:"mediaType"`
		}
		if json.Unmarshal(body, &m) != nil {
			ociError(w, http.StatusNotFound, "MANIFEST_UNKNOWN", digest+" is not a manifest")
			return
		}
		contentType = m.MediaType
		if contentType == "" {
			contentType = MediaTypeOCIManifest
		}
		writeHeaders(w, contentType, digest, size)
		if r.Method != http.MethodHead {
			_, _ = w.Write(body)
		}
		return
	}
	writeHeaders(w, contentType, digest, size)
	if r.Method != http.MethodHead {
		_, _ = io.Copy(w, rc)
	}
}

func writeHeaders(w http.ResponseWriter, contentType, digest string, size int64) {
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Docker-Content-Digest", digest)
	w.Header().Set("Content-Length", strconv.FormatInt(size, 10))
	w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	w.WriteHeader(http.StatusOK)
}

// upload stores a request body; want is its digest when the client said it.
func (h *handler) upload(w http.ResponseWriter, r *http.Request, want string) {
	body := http.MaxBytesReader(w, r.Body, h.maxUpload)
	var (
		digest = want
		size   int64
		err    error
	)
	if want != "" {
		if !ValidDigest(want) {
			http.Error(w, "bad digest "+strconv.Quote(want), http.StatusBadRequest)
			return
		}
		if h.s.Has(want) {
			_, _ = io.Copy(io.Discard, body)
			_, size, _ = h.s.stat(want)
		} else {
			size, err = h.s.PutDigest(r.Context(), want, body)
		}
	} else {
		digest, size, err = h.s.Put(r.Context(), body)
	}
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		http.Error(w, "blob too large", http.StatusRequestEntityTooLarge)
		return
	case errors.Is(err, ErrBadDigest):
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	case err != nil:
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Docker-Content-Digest", digest)
	w.WriteHeader(http.StatusCreated)
	_ = json.NewEncoder(w).Encode(map[string]any{"digest": digest, "size": size})
}

// stat returns a stored blob's size.
func (s *Store) stat(digest string) (string, int64, error) {
	rc, n, err := s.Open(digest)
	if err != nil {
		return "", 0, err
	}
	rc.Close()
	return digest, n, nil
}

func methodNotAllowed(w http.ResponseWriter, allow string) {
	w.Header().Set("Allow", allow)
	http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
}

// ociError writes an error in the OCI distribution format.
func ociError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"errors": []map[string]string{{"code": code, "message": msg}}})
}
