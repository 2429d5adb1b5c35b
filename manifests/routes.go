package manifests

import (
	"fmt"
	"regexp"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/driftless/driftless/model"
)

// labelRE is one DNS label of a route's host; "*" is a wildcard host.
var labelRE = regexp.MustCompile(`^(\*|[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)$`)

// routeProtocols are the protocols a route may declare.
var routeProtocols = map[string]bool{"http1": true, "http2": true, "tcp": true}

func readRoutes(a *appState, k, v *yaml.Node) {
	a.hasRoutes = true
	list := resolve(v)
	if list.Kind != yaml.SequenceNode {
		a.errorf(list, "routes must be a list of {route: host.domain[/path]}, not a %s", kindName(list))
		return
	}
	for _, item := range list.Content {
		it := resolve(item)
		if it.Kind != yaml.MappingNode {
			a.errorf(it, "a route is a mapping like {route: host.domain/path}, not a %s", kindName(it))
			continue
		}
		var rt Route
		var routeNode *yaml.Node
		for _, p := range a.pairs(it) {
			switch p.key.Value {
			case "route":
				rt.Route, _ = a.str(p.key, p.val, false)
				routeNode = resolve(p.val)
			case "protocol":
				proto, ok := a.str(p.key, p.val, false)
				if !ok {
					continue
				}
				if !routeProtocols[proto] {
					a.errorf(resolve(p.val), "route protocol %q is not one of http1, http2, tcp", proto)
					continue
				}
				if proto == "tcp" {
					a.warnf(resolve(p.val), "route protocol tcp is not supported yet; the router speaks HTTP/1.1 to instances")
				}
				rt.Protocol = proto
			case "options":
				opts, ok := a.mapping(p.key, p.val)
				if !ok {
					continue
				}
				for _, o := range a.pairs(opts) {
					switch o.key.Value {
					case "loadbalancing":
						lb, ok := a.str(o.key, o.val, false)
						if !ok {
							continue
						}
						switch lb { // Cloud Foundry's spellings
						case "round-robin":
							rt.LoadBalancing = model.BalanceRoundRobin
						case "least-connection":
							rt.LoadBalancing = model.BalanceLeastConnections
						default:
							a.errorf(resolve(o.val), "route option loadbalancing %q is not round-robin or least-connection", lb)
						}
					default:
						a.warnf(o.key, "route option %q is not supported and is ignored (loadbalancing is)", o.key.Value)
					}
				}
			default:
				a.errorf(p.key, "unknown route attribute %q (route, protocol, options)", p.key.Value)
			}
		}
		if routeNode == nil {
			a.errorf(it, "a route entry needs route: host.domain[/path]")
			continue
		}
		if rt.Route == "" {
			continue
		}
		if err := splitRoute(&rt); err != nil {
			a.errorf(routeNode, "route %q: %v", rt.Route, err)
			continue
		}
		if rt.Protocol == "" {
			rt.Protocol = "http1"
		}
		rt.Pos = a.pos(routeNode)
		a.app.Routes = append(a.app.Routes, rt)
	}
}

// splitRoute fills a route's Host, Domain and Path from Route.
func splitRoute(rt *Route) error {
	s := rt.Route
	if strings.Contains(s, "://") {
		return fmt.Errorf("write the route without a scheme")
	}
	host, p, hasPath := strings.Cut(s, "/")
	if hasPath {
		p = "/" + p
		if strings.ContainsAny(p, "?#") || strings.Contains(p, "//") {
			return fmt.Errorf("path %q is not a plain path", p)
		}
	}
	if strings.Contains(host, ":") {
		return fmt.Errorf("ports in routes (TCP routes) are not supported yet")
	}
	host = strings.ToLower(host)
	if len(host) > maxHostBytes {
		return fmt.Errorf("the host name is %d characters; DNS allows at most %d", len(host), maxHostBytes)
	}
	labels := strings.Split(host, ".")
	if len(labels) < 2 {
		return fmt.Errorf("needs a domain: write host.domain, e.g. %s.apps.localhost", host)
	}
	for i, l := range labels {
		if !labelRE.MatchString(l) || (l == "*" && i != 0) {
			return fmt.Errorf("%q is not a valid host name label", l)
		}
	}
	rt.Host, rt.Domain, rt.Path = labels[0], strings.Join(labels[1:], "."), strings.TrimSuffix(p, "/")
	return nil
}

// emptyLegacy reports whether a legacy route attribute is given without
// a value (null, "" or []), and if so warns that it is ignored: Cloud
// Foundry ignores it too, also beside routes (where a value is refused).
func (a *appState) emptyLegacy(k, v *yaml.Node) bool {
	rv := resolve(v)
	if a.unfilled[rv] {
		return false
	}
	empty := rv.Kind == yaml.ScalarNode && (rv.Tag == "!!null" || rv.Tag == "!!str" && rv.Value == "") ||
		rv.Kind == yaml.SequenceNode && len(rv.Content) == 0
	if empty {
		a.warnf(k, "%s is empty and is ignored, as Cloud Foundry ignores it", k.Value)
	}
	return empty
}

// legacy reads host, hosts, domain or domains.
func (a *appState) legacy(k, v *yaml.Node, into *[]string, list bool) {
	if a.emptyLegacy(k, v) {
		return
	}
	if a.legacyNode == nil {
		a.legacyNode = k
	}
	if list {
		if l, ok := a.strList(k, v); ok {
			*into = append(*into, l...)
		}
		return
	}
	if s, ok := a.str(k, v, false); ok && s != "" {
		*into = append(*into, s)
	}
}

func readNoHostname(a *appState, k, v *yaml.Node) {
	if a.emptyLegacy(k, v) {
		return
	}
	if b, ok := a.boolean(k, v); ok && b {
		a.noHostname = true
		if a.legacyNode == nil {
			a.legacyNode = k
		}
	}
}

// convertLegacyRoutes turns host(s), domain(s) and no-hostname into routes,
// as Cloud Foundry did: every host on every domain; no domain means the
// platform's default domain; no host means the app's name.
func (a *appState) convertLegacyRoutes() {
	if a.hasRoutes {
		a.errorf(a.legacyNode, "routes cannot be combined with the deprecated host, hosts, domain, domains or no-hostname")
		return
	}
	hosts := a.legacyHosts
	if len(hosts) == 0 && !a.noHostname {
		hosts = []string{strings.ToLower(a.app.Name)}
	}
	var written []string
	add := func(rt Route) {
		rt.Protocol, rt.Pos = "http1", a.pos(a.legacyNode)
		a.app.Routes = append(a.app.Routes, rt)
		if rt.Route != "" {
			written = append(written, rt.Route)
		} else {
			written = append(written, rt.Host+".<default domain>")
		}
	}
	switch {
	case len(a.legacyDomains) == 0 && a.noHostname:
		a.errorf(a.legacyNode, "no-hostname needs a domain")
		return
	case len(a.legacyDomains) == 0:
		for _, h := range hosts {
			if !labelRE.MatchString(strings.ToLower(h)) {
				a.errorf(a.legacyNode, "host %q is not a valid host name label", h)
				continue
			}
			add(Route{Host: strings.ToLower(h)})
		}
	default:
		for _, d := range a.legacyDomains {
			if a.noHostname {
				rt := Route{Route: d}
				if err := splitRoute(&rt); err != nil {
					a.errorf(a.legacyNode, "domain %q: %v", d, err)
					continue
				}
				add(rt)
			}
			for _, h := range hosts {
				if a.noHostname && len(a.legacyHosts) == 0 {
					break
				}
				rt := Route{Route: strings.ToLower(h + "." + d)}
				if err := splitRoute(&rt); err != nil {
					a.errorf(a.legacyNode, "host %q on domain %q: %v", h, d, err)
					continue
				}
				add(rt)
			}
		}
	}
	if len(written) > 0 {
		a.warnf(a.legacyNode, "host, hosts, domain, domains and no-hostname are deprecated; write routes: instead (here: %s)", strings.Join(written, ", "))
	}
}
