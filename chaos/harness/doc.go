// Package harness runs the fault tests of `make chaos` and of the short
// version inside `make test` (internal/e2e/chaos_test.go): it starts
// private instances of everything it breaks, drives HR events through
// events.Starter while it injects faults, waits for every run to finish
// and compares what the applications hold with what policy and the events
// say they should hold (internal/verify).
//
// Private instances, so that nothing shared is ever stopped: a PostgreSQL
// cluster (initdb/pg_ctl) that is both the PostgreSQL target application
// and the provisio store, an OpenLDAP server (deployments/slapd/slapd.sh
// with its own DATA_DIR and port), a Temporal launcher on free ports with
// its own SQLite file, and the demo SCIM application in-process (its data
// in a schema of its own on the shared PostgreSQL, dropped at the end).
// The worker is the production binary (go build ./worker), run as a child
// process so it can be killed with SIGKILL.
//
// The faults: SIGKILL of the worker at random moments (it is restarted at
// once), a stop and restart of the Temporal launcher, an outage of slapd
// and then of PostgreSQL, and a partial failure: the PostgreSQL
// connector's role loses SUPERUSER (so it may no longer create roles)
// while a few people are hired, whose onboardings must fail and
// compensation remove what LDAP and SCIM gave them.
//
// What must not live here: anything the worker or the CLI needs. It is
// test tooling, Linux only (runuser, pg_ctl, process signals).
package harness
