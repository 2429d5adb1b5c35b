# Service plans per space, from quotas.yml's `service_plans:` (offering →
# the plans a space may use; a space's own list replaces the default's),
# and previews on the smallest plans only (a services.yml's preview-plan
# gives them their own).
package driftless.services

import rego.v1

plans(offering) := p if {
	p := data.quotas.spaces[input.space].service_plans[offering]
} else := data.quotas["default"].service_plans[offering]

deny contains v if {
	some s in input.services
	not s.user_provided
	allowed := plans(s.service)
	not s.plan in allowed
	v := {"service": s.name, "msg": sprintf("service %s asks for plan %s of %s; space %s may use %s", [s.name, s.plan, s.service, input.space, concat(", ", allowed)])}
}

deny contains v if {
	some s in input.services
	not s.user_provided
	not plans(s.service)
	v := {"service": s.name, "msg": sprintf("service %s: offering %s is not allowed in space %s (quotas.yml service_plans)", [s.name, s.service, input.space])}
}

deny contains v if {
	input.preview != null
	some s in input.services
	not s.user_provided
	s.plan != "tiny"
	v := {"service": s.name, "msg": sprintf("preview service %s asks for plan %s; previews get plan tiny (give it preview-plan: tiny in services.yml)", [s.name, s.plan])}
}
