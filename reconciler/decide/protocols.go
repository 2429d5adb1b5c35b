package decide

import (
	"slices"

	"github.com/driftless/driftless/manifests"
	"github.com/driftless/driftless/model"
)

// HTTP2Routes are the routes of app (as Routes writes them) declared with
// protocol http2: routers reach the app's instances on them over h2c.
func HTTP2Routes(app manifests.App, domain string) []string {
	if app.NoRoute {
		return nil
	}
	var out []string
	for _, r := range app.Routes {
		if r.Protocol != model.ProtocolHTTP2 {
			continue
		}
		switch {
		case r.Domain != "":
			out = append(out, model.NormalizeRoute(r.Route))
		case r.Host != "":
			out = append(out, model.NormalizeRoute(r.Host+"."+domain+r.Path))
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// previewHTTP2Routes are a preview's http2 routes: those of production
// the preview serves, as PreviewRoute writes them.
func previewHTTP2Routes(routes []string, number int) []string {
	var out []string
	for _, route := range routes {
		if pv, ok := PreviewRoute(route, number); ok {
			out = append(out, pv)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}
