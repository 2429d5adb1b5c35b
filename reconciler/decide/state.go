package decide

import "github.com/driftless/driftless/model"

// State is the stored desired state the decisions look at: every app and
// the releases of each. Decisions never change it; they return what to
// change.
type State struct {
	Apps     map[model.AppKey]model.App
	Releases map[model.AppKey]map[string]model.Release
	// Services are the stored service instances (deleted ones included
	// until their broker is done with them).
	Services map[model.ServiceKey]model.ServiceInstance
}

// App returns the stored app of key.
func (s State) App(key model.AppKey) (model.App, bool) {
	a, ok := s.Apps[key]
	return a, ok
}

// Release returns release id of the app key, or nil.
func (s State) Release(key model.AppKey, id string) *model.Release {
	if id == "" {
		return nil
	}
	r, ok := s.Releases[key][id]
	if !ok {
		return nil
	}
	return &r
}
