package driftless.authz_test

import rego.v1

import data.driftless.authz

tok(role, spaces) := {"name": "t", "role": role, "spaces": spaces}

ask(role, spaces, verb, resource, space) := {"subject": tok(role, spaces), "verb": verb, "resource": resource, "space": space}

test_admin_does_everything if {
	authz.allow with input as ask("admin", [], "manage", "tokens", "")
	authz.allow with input as ask("admin", [], "read", "env", "prod")
}

test_developer_reads_env_of_its_space_only if {
	authz.allow with input as ask("space-developer", ["dev"], "read", "env", "dev")
	not authz.allow with input as ask("space-developer", ["dev"], "read", "env", "prod")
	authz.reasons["token t is scoped to space(s) dev, not prod"] with input as ask("space-developer", ["dev"], "read", "env", "prod")
}

test_auditor_never_sees_env_or_logs if {
	authz.allow with input as ask("space-auditor", ["dev"], "read", "apps", "dev")
	not authz.allow with input as ask("space-auditor", ["dev"], "read", "env", "dev")
	not authz.allow with input as ask("space-auditor", ["dev"], "read", "logs", "dev")
	not authz.allow with input as ask("space-auditor", ["dev"], "sync", "sources", "dev")
	authz.reasons["role space-auditor may not read env"] with input as ask("space-auditor", ["dev"], "read", "env", "dev")
}

test_ci_syncs_its_space if {
	authz.allow with input as ask("ci", ["web"], "sync", "sources", "web")
	not authz.allow with input as ask("ci", ["web"], "sync", "sources", "dev")
	not authz.allow with input as ask("ci", ["web"], "sync", "sources", "")
	authz.allow with input as ask("ci", ["*"], "sync", "sources", "dev")
}

test_platform_reads if {
	authz.allow with input as ask("space-auditor", ["dev"], "read", "status", "")
	not authz.allow with input as ask("space-auditor", ["dev"], "manage", "tokens", "")
	not authz.allow with input as ask("cell", [], "read", "apps", "dev")
}

test_cells_move_blobs_only if {
	authz.allow with input as ask("cell", [], "pull", "blobs", "")
	authz.allow with input as ask("cell", [], "push", "blobs", "")
	not authz.allow with input as ask("space-developer", ["*"], "pull", "blobs", "")
}
