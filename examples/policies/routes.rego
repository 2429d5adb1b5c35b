# Routes must be on a domain the space may use: quotas.yml `domains`.
package driftless.routes

import rego.v1

domains := d if {
	d := data.quotas.spaces[input.space].domains
} else := data.quotas["default"].domains

allowed(route) if {
	host := split(route, "/")[0]
	some d in domains
	endswith(host, concat("", [".", d]))
}

deny contains v if {
	domains
	some a in input.apps
	some r in a.routes
	not allowed(r)
	v := {"app": a.name, "msg": sprintf("route %s of app %s is not on an allowed domain (%s)", [r, a.name, concat(", ", domains)])}
}
