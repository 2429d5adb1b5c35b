// Package postgres is driftless's built-in PostgreSQL service broker: an Open
// Service Broker API 2.17 server (brokers/osb's wire types) that hands out
// databases on one PostgreSQL server it reaches as a superuser.
//
// In driftless, a space's services.yml declares service instances and an
// app's manifest binds them; the controller calls brokers through
// brokers/osb's Client. This package is the broker a platform gets without
// any other: `driftless broker postgres` serves it over a PostgreSQL server of
// the operator's, and `driftless dev --postgres` over one started by
// internal/children.
//
// What it makes on the server:
//
//   - an instance is a database named "dl_" + the instance id (lowercased,
//     anything but [a-z0-9_] made "_", cut to 40 characters) + "_" + 12 hex
//     digits of the id's SHA-256, owned by a NOLOGIN owner role (the
//     database's name + "_owner"), with the plan's CONNECTION LIMIT, and
//     every privilege of PUBLIC on it revoked;
//   - a binding is a LOGIN role with a random password (32 bytes from
//     crypto/rand, base64url), member of the instance's owner role and
//     nothing else: it reaches that database only. Its sessions start as the
//     owner role (ALTER ROLE … SET role), so what one binding creates the next
//     one (a rotation, predecessor_binding_id) can use. The password is sent to
//     PostgreSQL as a SCRAM-SHA-256 verifier, so the plain password never
//     reaches the server, its log or the broker's;
//   - what it made (instances, plans, parameters, bindings' role names, never
//     passwords) is recorded in the schema driftless_broker of the "postgres"
//     database, created on start, so a restarted broker knows its instances.
//     PUBLIC has no access to the schema (binding roles can still connect to
//     the "postgres" database, as PostgreSQL lets every role by default, and
//     see nothing of the broker's there).
//
// Every operation is synchronous: accepts_incomplete is accepted and
// ignored, as the specification allows, and last_operation reports
// "succeeded" for what exists (410 Gone otherwise).
//
// The size quota of a plan is enforced by a periodic check (Broker.CheckQuotas,
// every Config.QuotaInterval in Run): an instance whose pg_database_size is
// over its plan's limit loses CONNECT (for its owner role, hence for every
// binding) until it is back under the limit, after an update to a larger plan
// or data deleted by a session already open (open sessions are left alone).
// GET on an instance reports its size, limits and whether it is over quota.
//
// Because passwords are never stored, GET on a binding returns its
// credentials without the password (host, port, database, username), and a
// repeated identical bind (a platform retrying) sets a new password for the
// binding's role and returns it with 200.
package postgres
