# Who may do what through the API: the built-in roles. A policy source
# with its own `package driftless.authz` replaces this one as a whole.
#
# input.subject is the token ({"name", "role", "spaces"}), input.verb and
# input.resource what it asks (docs/security.md lists them), input.space
# the space it acts in ("" for the platform). allow decides; reasons
# explains a refusal (`driftless can` prints them).
package driftless.authz

import rego.v1

default allow := false

# Spaces a token acts in; "*" is every space.
in_scope if input.subject.spaces[_] == input.space

in_scope if input.subject.spaces[_] == "*"

# What each space role may do in its spaces, by verb.
grants := {
	"space-developer": {
		"read": {"apps", "env", "logs", "events", "previews", "services"},
		"sync": {"sources"},
	},
	# Cloud Foundry's Space Auditor: sees apps, never their env, service
	# credentials or logs.
	"space-auditor": {"read": {"apps", "events", "previews", "services"}},
	# A pipeline: syncs its space and watches the rollout.
	"ci": {
		"read": {"apps", "events"},
		"sync": {"sources"},
	},
}

# What the platform shows everyone who holds a token of a built-in role.
platform_reads := {"status", "brokers", "public-key"}

allow if input.subject.role == "admin"

allow if {
	input.space != ""
	in_scope
	input.resource in grants[input.subject.role][input.verb]
}

allow if {
	input.space == ""
	input.verb == "read"
	input.resource in platform_reads
	input.subject.role in {"space-developer", "space-auditor", "ci"}
}

# Cells move app code: they pull droplets and stacks and push staging
# results.
allow if {
	input.subject.role == "cell"
	input.resource == "blobs"
	input.verb in {"pull", "push"}
}

reasons contains msg if {
	input.space != ""
	grants[input.subject.role]
	not in_scope
	msg := sprintf("token %s is scoped to space(s) %s, not %s", [input.subject.name, concat(", ", input.subject.spaces), input.space])
}

reasons contains msg if {
	not input.resource in object.get(object.get(grants, input.subject.role, {}), input.verb, set())
	input.subject.role != "admin"
	msg := sprintf("role %s may not %s %s", [input.subject.role, input.verb, input.resource])
}

reasons contains msg if {
	input.space == ""
	grants[input.subject.role]
	not input.resource in platform_reads
	msg := sprintf("token %s acts in spaces (%s): say which one (--space)", [input.subject.name, concat(", ", input.subject.spaces)])
}
