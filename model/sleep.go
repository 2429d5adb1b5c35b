package model

import "time"

// Sleeping is an app scaled to zero because nobody asked for it for a while
// (an idle pull request's preview): the controller stores it in Consul
// (catalog.SleepingKey) when it puts the app to sleep and deletes it when
// it wakes the app; the routers follow those keys so that a request to one
// of its routes is held while the app wakes (bus.SubjectWake) instead of
// answered 404.
type Sleeping struct {
	Space string `json:"space"`
	App   string `json:"app"`
	// Routes are the app's routes ("host[/path]", as model.NormalizeRoute
	// makes them).
	Routes []string `json:"routes"`
	// WakeTimeout is how long a router holds a request while the app wakes
	// (the app's start timeout) before answering 503 with Retry-After.
	WakeTimeout time.Duration `json:"wake_timeout"`
	Since       time.Time     `json:"since"`
}

// Key is the sleeping app's key.
func (s Sleeping) Key() AppKey { return AppKey{Space: s.Space, Name: s.App} }
