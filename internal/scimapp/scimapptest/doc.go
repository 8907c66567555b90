// Package scimapptest starts the demo SCIM application in-process for tests:
// the real server (github.com/elimity-com/scim plus the scimapp handlers)
// behind httptest, with its data in a PostgreSQL schema of its own that is
// dropped when the test ends. It holds no fake: an optional wrapper lets a
// test inject faults or rewrite traffic in front of the real server.
package scimapptest
