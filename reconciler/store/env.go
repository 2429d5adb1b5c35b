package store

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/driftless/driftless/model"
)

// storedRelease is a release as it is stored in Consul KV: its run spec's
// env (names and values: both may be secret) is left out and sealed with
// the platform's keys into SealedEnv, bound to the release (envAAD), so
// that a sealed env moved into another release's record does not open.
type storedRelease struct {
	model.Release
	SealedEnv string `json:"sealed_env,omitempty"`
}

// envAAD binds a release's sealed env to the release: its space, app and
// id (a hash of its run spec, env included).
func envAAD(r model.Release) string {
	return "env/" + r.Space + "/" + r.App + "/" + r.ID
}

// sealRelease returns r as stored: without its env in clear, the env
// sealed. r (and its env map) are not changed.
func (s *Store) sealRelease(r model.Release) (storedRelease, error) {
	env := r.Run.Env
	r.Run.Env = nil
	out := storedRelease{Release: r}
	if len(env) == 0 {
		return out, nil
	}
	plain, err := json.Marshal(env)
	if err != nil {
		return storedRelease{}, fmt.Errorf("encoding the env of release %s of %s: %w", r.ID, r.Key(), err)
	}
	if out.SealedEnv, err = s.keys.Seal(plain, envAAD(r)); err != nil {
		return storedRelease{}, fmt.Errorf("sealing the env of release %s of %s: %w", r.ID, r.Key(), err)
	}
	return out, nil
}

// errEnv marks a release whose record reads but whose env does not open:
// not a record to skip (the app would lose its release), but a reason not
// to go on.
var errEnv = errors.New("the env of a stored release does not open")

// openRelease reads a stored release record, opening its sealed env.
// inClear reports a record written before envs were sealed (its env in
// clear: it reads as it is, and is sealed when written again). An error
// wrapping errEnv names the release whose env does not open; other errors
// are a record that does not decode.
func (s *Store) openRelease(data []byte) (r model.Release, inClear bool, err error) {
	var st storedRelease
	if err := json.Unmarshal(data, &st); err != nil {
		return model.Release{}, false, err
	}
	r = st.Release
	if st.SealedEnv == "" {
		return r, len(r.Run.Env) > 0, nil
	}
	if len(r.Run.Env) > 0 {
		return model.Release{}, false, fmt.Errorf("%w: release %s of %s holds both a sealed env and one in clear", errEnv, r.ID, r.Key())
	}
	plain, err := s.keys.Open(st.SealedEnv, envAAD(r))
	if err != nil {
		return model.Release{}, false, fmt.Errorf("%w: release %s of %s (are this controller's keys, --secrets, those it was stored with?): %w",
			errEnv, r.ID, r.Key(), err)
	}
	if err := json.Unmarshal(plain, &r.Run.Env); err != nil {
		return model.Release{}, false, fmt.Errorf("%w: release %s of %s: its opened env is not a JSON object", errEnv, r.ID, r.Key())
	}
	return r, false, nil
}
