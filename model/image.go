package model

import "strings"

// DockerImage is an app's manifest `docker:` entry: the app runs this
// image from a registry instead of a droplet staged from its source.
// The controller's staging resolves Image to a digest and copies the
// image into the blob store as the release's droplet, so cells pull it
// pinned by digest like any droplet and never see registry credentials.
// The password is the controller's configuration (never in git or in a
// release): see reconciler.Config.DockerPasswords.
type DockerImage struct {
	// Image is the reference as written, e.g. "registry.example.com/team/app:v1"
	// or "…@sha256:…"; Docker Hub's short names ("nginx") are allowed.
	Image string `json:"image"`
	// Username authenticates to the image's registry ("" for anonymous
	// pulls).
	Username string `json:"username,omitempty"`
}

// DockerBuildpack is what a release staged from a docker image records as
// its buildpack.
const DockerBuildpack = "docker"

// IsRootUser reports whether an image config's User (as in `USER` of a
// Dockerfile: "name", "uid", "name:group" or "uid:gid") names root: "0",
// "root", "0:…" or "root:…". An empty User is the image's default,
// root for the image but not for driftless, which runs every instance as
// VcapUID: only an explicit root counts.
func IsRootUser(user string) bool {
	u, _, _ := strings.Cut(strings.TrimSpace(user), ":")
	return u == "0" || u == "root"
}
