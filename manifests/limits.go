package manifests

import (
	"encoding/json"
	"fmt"
	"unicode/utf8"

	"gopkg.in/yaml.v3"

	"github.com/driftless/driftless/model"
)

// Sizes the engines underneath refuse are refused here, at the manifest's
// file:line:col, instead of later when a release is saved in Consul (512
// KiB a value) or a start command is sent over NATS (1 MiB a message by
// default). model/limits.go holds the platform's limits; these are the
// manifest's own.
const (
	// maxStringBytes bounds every string attribute (a name, a route, a
	// buildpack, a path…): the longest legitimate one is a start command,
	// so it is model.MaxCommandBytes. Env and annotation values have their
	// own bounds.
	maxStringBytes = model.MaxCommandBytes
	// maxAnnotationBytes bounds one annotation value, as Cloud Foundry's
	// 5000 characters do.
	maxAnnotationBytes = 5000
	// maxHostBytes bounds a route's host name, as DNS does.
	maxHostBytes = 253
	// maxReleaseBytes bounds what one app puts in its release (environment,
	// command, routes, buildpacks, labels…) once encoded as JSON: half of a
	// Consul value, leaving the rest to what the platform adds (ids,
	// digests, the staging log). JSON escaping makes this more than the
	// raw sizes checked one by one: a control character in an env value
	// is six bytes once encoded.
	maxReleaseBytes = model.MaxStoredValueBytes / 2
	// maxMessageBytes bounds one diagnostic's message: a message quoting a
	// huge value must not itself be too large to store with the source's
	// status.
	maxMessageBytes = 1024
)

// sizeText writes a byte count for people, in Cloud Foundry's units
// (1 KB = 1024 bytes): "512 B", "130 KB", "10.5 MB".
func sizeText(n int) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MB", n>>20)
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MB", float64(n)/(1<<20))
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KB", n>>10)
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// tooLong says why a string attribute of n bytes is refused.
func tooLong(what string, n, limit int) string {
	return fmt.Sprintf("%s is %s (%d bytes); at most %s (%d bytes) is allowed", what, sizeText(n), n, sizeText(limit), limit)
}

// clip shortens a diagnostic's message to maxMessageBytes, at a rune
// boundary, saying how long it was.
func clip(msg string) string {
	if len(msg) <= maxMessageBytes {
		return msg
	}
	cut := maxMessageBytes
	for cut > 0 && !utf8.RuneStart(msg[cut]) {
		cut--
	}
	return fmt.Sprintf("%s… (message cut, %d bytes in all)", msg[:cut], len(msg))
}

// checkEnvSize refuses an environment larger than model.MaxEnvBytes, at
// the env key.
func (a *appState) checkEnvSize(key *yaml.Node, env map[string]string) {
	if n := model.EnvBytes(env); n > model.MaxEnvBytes {
		a.errorf(key, "env is %s (%d bytes of names and values); the environment may be at most %s (%d bytes), as in Cloud Foundry",
			sizeText(n), n, sizeText(model.MaxEnvBytes), model.MaxEnvBytes)
	}
}

// checkRouteCount refuses more routes than model.MaxRoutes, at the
// attribute that declared them (routes, or the legacy host and domain
// attributes, whose product can be large).
func (a *appState) checkRouteCount() {
	if n := len(a.app.Routes); n > model.MaxRoutes {
		pos, ok := a.app.Fields["routes"]
		if !ok && a.legacyNode != nil {
			pos = a.pos(a.legacyNode)
		}
		a.errorf(nodeAt(pos), "the app has %d routes; at most %d are allowed", n, model.MaxRoutes)
	}
}

// releaseShape is what of an app its release carries, encoded as the
// release is: the measure of maxReleaseBytes.
type releaseShape struct {
	Buildpacks  []string          `json:"buildpacks,omitempty"`
	Stack       string            `json:"stack,omitempty"`
	Run         model.RunSpec     `json:"run"`
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// checkReleaseSize refuses an app whose release would be larger than
// maxReleaseBytes once encoded, at the app's entry. It is only run on an
// app without other errors, so that one oversized value gives one error.
func (a *appState) checkReleaseSize() {
	routes := make([]string, len(a.app.Routes))
	for i, r := range a.app.Routes {
		routes[i] = r.Route
	}
	data, err := json.Marshal(releaseShape{
		Buildpacks: a.app.Buildpacks, Stack: a.app.Stack, Labels: a.app.Labels, Annotations: a.app.Annotations,
		Run: model.RunSpec{Command: a.app.Command, Env: a.app.Env, Routes: routes, HealthCheck: a.app.HealthCheck, Sidecars: a.app.Sidecars},
	})
	if err != nil {
		a.errorf(nodeAt(a.app.Pos), "encoding app %q as its release would be: %v", a.app.Name, err)
		return
	}
	if len(data) > maxReleaseBytes {
		a.errorf(nodeAt(a.app.Pos), "app %q is %s once encoded (env, command, routes, metadata); a release may be at most %s, half of what Consul keeps in one value",
			a.app.Name, sizeText(len(data)), sizeText(maxReleaseBytes))
	}
}
