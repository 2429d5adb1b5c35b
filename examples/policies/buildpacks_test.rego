package driftless.buildpacks_test

import rego.v1

import data.driftless.buildpacks

quotas := {"default": {"buildpacks": ["go_buildpack", "binary_buildpack"], "stacks": ["tiny"]}, "spaces": {"free": {}}}

test_allowed_buildpack if {
	count(buildpacks.deny) == 0 with input as {"space": "dev", "apps": [{"name": "a", "buildpacks": ["go_buildpack"], "stack": "tiny"}]}
		with data.quotas as quotas
}

test_other_buildpack if {
	some v in buildpacks.deny with input as {"space": "dev", "apps": [{"name": "a", "buildpacks": ["nodejs_buildpack"], "stack": ""}]}
		with data.quotas as quotas
	contains(v.msg, "uses buildpack nodejs_buildpack")
}

test_other_stack if {
	some v in buildpacks.deny with input as {"space": "dev", "apps": [{"name": "a", "buildpacks": [], "stack": "bookworm"}]}
		with data.quotas as quotas
	contains(v.msg, "stack bookworm")
}

test_no_list_allows_all if {
	count(buildpacks.deny) == 0 with input as {"space": "dev", "apps": [{"name": "a", "buildpacks": ["x"], "stack": "y"}]}
		with data.quotas as {"default": {}, "spaces": {}}
}
