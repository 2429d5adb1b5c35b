package driftless.services_test

import rego.v1

import data.driftless.services

quotas := {
	"default": {"service_plans": {"postgresql": ["tiny", "small"]}},
	"spaces": {"team-a": {"service_plans": {"postgresql": ["tiny", "small", "medium"]}}},
}

db(plan) := {"name": "db", "service": "postgresql", "plan": plan, "broker": "", "user_provided": false, "tags": []}

test_allowed_plan if {
	count(services.deny) == 0 with input as {"space": "dev", "preview": null, "services": [db("small")]} with data.quotas as quotas
}

test_plan_not_allowed if {
	some v in services.deny with input as {"space": "dev", "preview": null, "services": [db("medium")]} with data.quotas as quotas
	v.service == "db"
	contains(v.msg, "space dev may use tiny, small")
}

test_space_allows_more if {
	count(services.deny) == 0 with input as {"space": "team-a", "preview": null, "services": [db("medium")]} with data.quotas as quotas
}

test_offering_not_allowed if {
	some v in services.deny with input as {"space": "dev", "preview": null, "services": [{"name": "q", "service": "rabbitmq", "plan": "s", "broker": "", "user_provided": false, "tags": []}]}
		with data.quotas as quotas
	contains(v.msg, "offering rabbitmq is not allowed")
}

test_user_provided_free if {
	count(services.deny) == 0 with input as {"space": "dev", "preview": null, "services": [{"name": "smtp", "service": "", "plan": "", "broker": "", "user_provided": true, "tags": []}]}
		with data.quotas as quotas
}

test_preview_tiny_only if {
	some v in services.deny with input as {"space": "dev-pr-3", "preview": {"number": 3}, "services": [db("small")]} with data.quotas as quotas
	contains(v.msg, "previews get plan tiny")
}

test_preview_tiny if {
	count(services.deny) == 0 with input as {"space": "dev-pr-3", "preview": {"number": 3}, "services": [db("tiny")]} with data.quotas as quotas
}
