// Package scimapptest starts the demo SCIM application in-process for tests:
// the real server (github.com/elimity-com/scim plus the scimapp handlers)
// behind httptest, with its data in a PostgreSQL schema of its own that is
// dropped when the test ends. It holds no fake: an optional wrapper lets a
// test inject faults or rewrite traffic in front of the real server.
//
// Options.IgnoreDeactivate turns the app into a broken SaaS product that
// answers a deactivation (active set to false by PATCH or PUT) with success
// and leaves the user active, so tests of verified revocation (connectors,
// activities, end-to-end workflows) can prove a read-back catches it. The
// request is rewritten before the real app sees it; the app itself is
// unchanged.
package scimapptest
