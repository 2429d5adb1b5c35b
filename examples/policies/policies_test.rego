package driftless.examples_test

import rego.v1

import data.driftless.preview
import data.driftless.routes

quotas := {"default": {"domains": ["apps.localhost"]}, "spaces": {}}

test_route_on_allowed_domain if {
	count(routes.deny) == 0 with input as {"space": "dev", "apps": [{"name": "a", "routes": ["a.apps.localhost/api"]}]}
		with data.quotas as quotas
}

test_route_on_other_domain if {
	some v in routes.deny with input as {"space": "dev", "apps": [{"name": "a", "routes": ["a.example.com"]}]}
		with data.quotas as quotas
	v.app == "a"
}

test_preview_one_small_instance if {
	count(preview.deny) == 0 with input as {"space": "dev-pr-42", "preview": {"number": 42, "branch": "feature"}, "apps": [{"name": "a", "instances": 1, "memory_mb": 128}]}
}

test_preview_too_big if {
	count(preview.deny) == 2 with input as {"space": "dev-pr-42", "preview": {"number": 42, "branch": "feature"}, "apps": [{"name": "a", "instances": 3, "memory_mb": 512}]}
}

test_not_a_preview if {
	count(preview.deny) == 0 with input as {"space": "dev", "preview": null, "apps": [{"name": "a", "instances": 3, "memory_mb": 512}]}
}
