// Command scimdemo is a STAND-IN for a SaaS application: a small SCIM 2.0
// service that provisio provisions through its SCIM connector, so the
// joiner/mover/leaver demos have a real SCIM endpoint. It is not a product,
// not a reference SCIM server, and must never hold real people's data.
//
// # README
//
// What it serves (see internal/scimapp for the details):
//
//	/             a page saying what this is (no authentication)
//	/healthz      "ok" while the database answers
//	/scim/v2/...  SCIM 2.0: /Users (core + enterprise extension), /Groups,
//	              /ServiceProviderConfig, /Schemas, /ResourceTypes;
//	              every request needs "Authorization: Bearer $SCIM_TOKEN"
//
// The SCIM protocol comes from github.com/elimity-com/scim. Data lives in
// PostgreSQL, in a database of its own (scimdemo, created when absent) and
// a schema scimdemo with tables users, groups and members, so it survives
// restarts. On the very first start it creates the groups engineering,
// sales, support, finance-admins and all-staff. SCIM defines no login; the
// app's rule is that a user may log in while it is active.
//
// Configuration:
//
//	SCIM_ADDR   listen address (flag -addr)    default 127.0.0.1:8280
//	SCIM_TOKEN  bearer token clients must send default dev-scim-token
//	PG_URL      PostgreSQL URL                 default postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable
//	-database   database for the app's data    default scimdemo
//	-schema     schema inside that database    default scimdemo
//
// The token and PG_URL are read from the environment only, never from
// flags, so they do not show in the process list.
//
// Running it:
//
//	deployments/scimdemo/scimdemo.sh start    # build if stale, start, wait for HTTP
//	deployments/scimdemo/scimdemo.sh status   # up (exit 0) or down (exit 3)
//	deployments/scimdemo/scimdemo.sh stop
//	curl -H "Authorization: Bearer dev-scim-token" http://127.0.0.1:8280/scim/v2/Groups
//
// SIGINT or SIGTERM shuts it down cleanly: requests in flight finish, then
// the database pool closes.
package main
